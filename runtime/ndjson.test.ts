import { describe, expect, it } from '@jest/globals';
import { NdjsonReader } from './ndjson.js';

function reader(maxLineBytes = 16) {
  const lines: string[] = [];
  const overflows: number[] = [];
  const r = new NdjsonReader({ maxLineBytes, onLine: (line) => lines.push(line), onOverflow: (bytes) => overflows.push(bytes) });
  return { r, lines, overflows };
}

describe('NdjsonReader', () => {
  it('splits lines across chunks, skips blank ones, and keeps multi-byte characters whole', () => {
    const { r, lines } = reader(64);
    const euro = Buffer.from('"€"\n');
    r.push(Buffer.from('{"a":1}\n\n  \n{"b"'));
    r.push(Buffer.from(':2}\n'));
    r.push(euro.subarray(0, 2));
    r.push(euro.subarray(2));
    expect(lines).toEqual(['{"a":1}', '{"b":2}', '"€"']);
  });

  it('reports a line over the cap once, without waiting for its newline, and reads nothing after', () => {
    const { r, lines, overflows } = reader(16);
    r.push(Buffer.from('{"ok":1}\n'));
    r.push(Buffer.from('x'.repeat(10)));
    r.push(Buffer.from('x'.repeat(10)));
    expect(overflows).toEqual([20]);
    r.push(Buffer.from('\n{"later":1}\n'));
    expect(lines).toEqual(['{"ok":1}']);
    expect(overflows).toHaveLength(1);
  });

  it('refuses a long line that arrives whole with its newline', () => {
    const { r, lines, overflows } = reader(16);
    r.push(Buffer.from(`${'y'.repeat(17)}\n{"a":1}\n`));
    expect(lines).toEqual([]);
    expect(overflows).toEqual([17]);
  });

  it('accepts a line of exactly the cap', () => {
    const { r, lines, overflows } = reader(16);
    r.push(Buffer.from(`${'z'.repeat(16)}\n`));
    expect(lines).toEqual(['z'.repeat(16)]);
    expect(overflows).toEqual([]);
  });

  it('hands the bytes after a stopping line to the caller', () => {
    const lines: string[] = [];
    const r: NdjsonReader = new NdjsonReader({
      maxLineBytes: 64,
      onLine: (line) => {
        lines.push(line);
        r.stop();
      },
      onOverflow: () => undefined,
    });
    r.push(Buffer.from('{"command":"console"}\nraw\n bytes'));
    r.push(Buffer.from(' more'));
    expect(lines).toEqual(['{"command":"console"}']);
    expect(r.remainder().toString()).toBe('raw\n bytes more');
  });

  it('gives the rest of the current chunk to a caller asking from within onLine', () => {
    let rest = '';
    const r: NdjsonReader = new NdjsonReader({
      maxLineBytes: 64,
      onLine: () => {
        r.stop();
        rest = r.remainder().toString();
      },
      onOverflow: () => undefined,
    });
    r.push(Buffer.from('{"ok":true}\nRFB 003.008\n'));
    expect(rest).toBe('RFB 003.008\n');
    expect(r.remainder().length).toBe(0);
  });
});
