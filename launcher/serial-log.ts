// Copies what the guest prints on its serial console into the launcher's own output, whole lines
// at a time, so `kubectl logs <launcher pod> -c compute` shows the guest's console as KubeVirt's
// guest-console-log container does. QEMU writes the console to a log file beside the socket
// (chardev logfile=), which leaves the socket itself free for interactive console sessions.
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { GUEST_CONSOLE_LINE_PREFIX } from '../runtime/contracts/launcher-pod.js';
import { redactText } from '../runtime/redact.js';
import { LineSplitter } from './lines.js';

// C0 controls but tab, DEL and C1 controls: escape sequences, carriage returns and backspaces
// that would redraw a terminal reading the log, or hide the prefix.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/g;

/**
 * A guest console line as the launcher prints it: without control characters, redacted, and
 * prefixed, so that no guest output can pass for one of the launcher's own JSON log records.
 */
export function guestLogLine(line: string): string {
  return `${GUEST_CONSOLE_LINE_PREFIX}${redactText(line.replace(CONTROL_CHARACTERS, ''))}\n`;
}

export class SerialLogFollower {
  private offset = 0;
  private readonly lines: LineSplitter;
  private timer: NodeJS.Timeout | undefined;
  private file: FileHandle | undefined;
  private reading: Promise<void> = Promise.resolve();

  constructor(
    private readonly path: string,
    emit: (line: string) => void,
    private readonly intervalMs = 250,
  ) {
    this.lines = new LineSplitter(emit);
  }

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
    this.lines.end();
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
      this.lines.write(buffer.subarray(0, bytesRead));
    }
  }
}
