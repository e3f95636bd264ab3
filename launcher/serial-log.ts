// Copies what the guest prints on its serial console into the launcher's own output, whole lines
// at a time, so `kubectl logs <launcher pod> -c compute` shows the guest's console as KubeVirt's
// guest-console-log container does. QEMU writes the console to a log file beside the socket
// (chardev logfile=), which leaves the socket itself free for interactive console sessions.
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';

export class SerialLogFollower {
  private offset = 0;
  private partial = '';
  private timer: NodeJS.Timeout | undefined;
  private file: FileHandle | undefined;
  private reading: Promise<void> = Promise.resolve();

  constructor(
    private readonly path: string,
    private readonly emit: (line: string) => void,
    private readonly intervalMs = 250,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.reading = this.reading.then(() => this.readNew());
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Stops following after reading what was written so far; a trailing partial line is emitted too. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.reading;
    await this.readNew();
    if (this.partial !== '') this.emit(this.partial);
    this.partial = '';
    await this.file?.close();
    this.file = undefined;
  }

  private async readNew(): Promise<void> {
    // The file appears when QEMU starts; until then there is nothing to follow.
    if (!this.file) this.file = await open(this.path, 'r').catch(() => undefined);
    if (!this.file) return;
    const buffer = Buffer.alloc(64 * 1024);
    for (;;) {
      const { bytesRead } = await this.file.read(buffer, 0, buffer.length, this.offset);
      if (bytesRead === 0) return;
      this.offset += bytesRead;
      const lines = (this.partial + buffer.subarray(0, bytesRead).toString('utf8')).split(/\r?\n/);
      this.partial = lines.pop() ?? '';
      for (const line of lines) this.emit(line);
    }
  }
}
