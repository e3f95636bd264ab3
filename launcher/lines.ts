// Output of a process we do not control (the guest's console, QEMU's stderr) cut into lines as it
// arrives: each byte is looked at once, and a line without a newline is cut at a cap, so nothing a
// writer sends is held unbounded or scanned again on the next chunk.
import { StringDecoder } from 'node:string_decoder';

/** The longest line emitted, in UTF-16 code units. */
export const LINE_MAX = 16 * 1024;

export class LineSplitter {
  private partial = '';
  private readonly decoder = new StringDecoder('utf8');

  constructor(
    private readonly emit: (line: string) => void,
    private readonly max = LINE_MAX,
  ) {}

  /** Emits the lines `chunk` completes (a trailing carriage return dropped). */
  write(chunk: Buffer): void {
    const text = this.decoder.write(chunk);
    let start = 0;
    for (;;) {
      const newline = text.indexOf('\n', start);
      if (newline < 0) return this.append(text.slice(start));
      this.append(text.slice(start, newline));
      this.emit(this.partial.endsWith('\r') ? this.partial.slice(0, -1) : this.partial);
      this.partial = '';
      start = newline + 1;
    }
  }

  /** Emits the trailing partial line, if any. */
  end(): void {
    this.append(this.decoder.end());
    if (this.partial !== '') this.emit(this.partial);
    this.partial = '';
  }

  /** Adds to the partial line, emitting it as a line of its own each time it reaches the cap. */
  private append(piece: string): void {
    let rest = piece;
    while (this.partial.length + rest.length > this.max) {
      let room = this.max - this.partial.length;
      // Not between the two halves of a surrogate pair.
      const code = rest.charCodeAt(room - 1);
      if (room > 1 && code >= 0xd800 && code <= 0xdbff) room -= 1;
      this.emit(this.partial + rest.slice(0, room));
      this.partial = '';
      rest = rest.slice(room);
    }
    this.partial += rest;
  }
}
