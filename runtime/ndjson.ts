// Newline-delimited JSON framing, the one every socket protocol of kubevm speaks: QMP and the
// guest agent (launcher ↔ QEMU), and the launcher's command socket (node handler ↔ launcher).
// A line longer than the cap is never buffered whole: the reader reports the overflow once and
// stops, and the caller closes that connection, so one peer's endless line costs at most the cap.

/** Splits a byte stream into lines of at most `maxLineBytes` bytes (the newline not counted). */
export class NdjsonReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private stopped = false;

  constructor(
    private readonly options: {
      maxLineBytes: number;
      /** One line, without its newline, decoded as UTF-8; empty and blank lines are skipped. */
      onLine: (line: string) => void;
      /** The peer sent more than maxLineBytes without a newline; nothing is read after this. */
      onOverflow: (bufferedBytes: number) => void;
    },
  ) {}

  /** Feeds bytes; calls onLine for each complete line until stop() or an overflow. */
  push(chunk: Buffer): void {
    let start = 0;
    while (!this.stopped) {
      const newline = chunk.indexOf(0x0a, start);
      if (newline < 0) break;
      const piece = chunk.subarray(start, newline);
      start = newline + 1;
      if (this.buffered + piece.length > this.options.maxLineBytes) return this.overflow(this.buffered + piece.length);
      const line = this.buffered ? Buffer.concat([...this.chunks, piece]) : piece;
      this.chunks = [];
      this.buffered = 0;
      const text = line.toString('utf8').trim();
      if (text) this.options.onLine(text);
    }
    if (this.stopped) {
      // Whatever follows the line that stopped the reader belongs to the caller (see remainder()).
      if (start < chunk.length) this.chunks.push(chunk.subarray(start));
      return;
    }
    const rest = chunk.subarray(start);
    if (!rest.length) return;
    if (this.buffered + rest.length > this.options.maxLineBytes) return this.overflow(this.buffered + rest.length);
    this.chunks.push(rest);
    this.buffered += rest.length;
  }

  /**
   * Stops reading lines (e.g. when a connection switches to a raw byte stream); the bytes after
   * the current line are then available from remainder().
   */
  stop(): void {
    this.stopped = true;
  }

  /** The bytes received and not handed out as lines (after stop()). */
  remainder(): Buffer {
    const rest = Buffer.concat(this.chunks);
    this.chunks = [];
    this.buffered = 0;
    return rest;
  }

  private overflow(bytes: number): void {
    this.stopped = true;
    this.chunks = [];
    this.buffered = 0;
    this.options.onOverflow(bytes);
  }
}

/** One message as a line. */
export function ndjsonLine(message: unknown): string {
  return `${JSON.stringify(message)}\n`;
}

/** Parses a line as JSON; a line that is not JSON is an error result, never a throw. */
export function parseJsonLine(line: string): { ok: true; value: unknown } | { ok: false; error: string } {
  try {
    return { ok: true, value: JSON.parse(line) as unknown };
  } catch (error) {
    return { ok: false, error: (error as Error).message };
  }
}
