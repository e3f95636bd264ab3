// Newline-delimited JSON framing, the one every socket protocol of kubevm speaks: QMP and the
// guest agent (launcher ↔ QEMU), and the launcher's command socket (node handler ↔ launcher).
// A line longer than the cap is never buffered whole: the reader reports the overflow once and
// stops, and the caller closes that connection, so one peer's endless line costs at most the cap.
// Nothing after an overflow is kept, and what arrives after stop() is kept only up to the cap: a
// peer that goes on writing to a connection its reader gave up on costs nothing more.
import type { Socket } from 'node:net';

/** Splits a byte stream into lines of at most `maxLineBytes` bytes (the newline not counted). */
export class NdjsonReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private stopped = false;
  private overflowed = false;
  /** The unread rest of the chunk being pushed. */
  private tail: Buffer | undefined;

  constructor(
    private readonly options: {
      maxLineBytes: number;
      /** One line, without its newline, decoded as UTF-8; empty and blank lines are skipped. */
      onLine: (line: string) => void;
      /**
       * The peer sent more than maxLineBytes without a newline, or after stop() more than
       * maxLineBytes waited for remainder(); nothing is read or kept after this.
       */
      onOverflow: (bufferedBytes: number) => void;
    },
  ) {}

  /** Feeds bytes; calls onLine for each complete line until stop() or an overflow. */
  push(chunk: Buffer): void {
    if (this.overflowed) return;
    if (this.stopped) return this.keep(chunk);
    this.tail = chunk;
    while (!this.stopped && this.tail) {
      const newline = this.tail.indexOf(0x0a);
      if (newline < 0) break;
      const piece = this.tail.subarray(0, newline);
      this.tail = this.tail.subarray(newline + 1);
      if (this.buffered + piece.length > this.options.maxLineBytes) return this.overflow(this.buffered + piece.length);
      const line = this.buffered ? Buffer.concat([...this.chunks, piece]) : piece;
      this.chunks = [];
      this.buffered = 0;
      const text = line.toString('utf8').trim();
      if (text) this.options.onLine(text);
    }
    const rest = this.tail;
    this.tail = undefined;
    if (!rest?.length) return;
    if (this.stopped) {
      // Whatever follows the line that stopped the reader belongs to the caller, this chunk's rest
      // whole: one read's worth, in memory already.
      this.chunks.push(rest);
      this.buffered += rest.length;
      return;
    }
    this.keep(rest);
  }

  /** Keeps bytes of the current line, or for remainder() after stop(), up to the cap. */
  private keep(bytes: Buffer): void {
    if (!bytes.length) return;
    if (this.buffered + bytes.length > this.options.maxLineBytes) return this.overflow(this.buffered + bytes.length);
    this.chunks.push(bytes);
    this.buffered += bytes.length;
  }

  /**
   * Stops reading lines (e.g. when a connection switches to a raw byte stream); the bytes after
   * the current line are then available from remainder(), also from within onLine. Bytes pushed
   * later are kept for remainder() up to maxLineBytes; more is an overflow.
   */
  stop(): void {
    this.stopped = true;
  }

  /** The bytes received and not handed out as lines (after stop()). */
  remainder(): Buffer {
    const rest = Buffer.concat(this.tail ? [...this.chunks, this.tail] : this.chunks);
    this.chunks = [];
    this.tail = undefined;
    this.buffered = 0;
    return rest;
  }

  private overflow(bytes: number): void {
    this.stopped = true;
    this.overflowed = true;
    this.tail = undefined;
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

/**
 * Reads a connection's first line as JSON (a hello, an answer), at most `maxLineBytes`, within
 * `timeoutMs`; the bytes after it stay unread in `rest` and the socket is left paused.
 */
export function readFirstLine(socket: Socket, timeoutMs: number, maxLineBytes: number): Promise<{ value: unknown; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`no line within ${timeoutMs} ms`)), timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    const fail = (error: Error) => {
      cleanup();
      reject(error);
    };
    const reader = new NdjsonReader({
      maxLineBytes,
      onOverflow: (bytes) => fail(new Error(`a first line of more than ${bytes} bytes`)),
      onLine: (line) => {
        reader.stop();
        cleanup();
        socket.pause();
        const json = parseJsonLine(line);
        if (!json.ok) reject(new Error(`not JSON (${json.error})`));
        else resolve({ value: json.value, rest: reader.remainder() });
      },
    });
    const onData = (chunk: Buffer) => reader.push(chunk);
    // An error is followed by 'close': the failure names the error, not only the close.
    let socketError: Error | undefined;
    const onError = (error: Error) => {
      socketError = error;
    };
    const onClose = () =>
      fail(new Error(`the connection closed before its first line${socketError ? ` (${socketError.message})` : ''}`, { cause: socketError }));
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
  });
}
