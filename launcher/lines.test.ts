import { describe, expect, it } from '@jest/globals';
import { LINE_MAX, LineSplitter } from './lines.js';

function split(chunks: Array<string | Buffer>, max?: number): string[] {
  const lines: string[] = [];
  const splitter = new LineSplitter((line) => lines.push(line), max);
  for (const chunk of chunks) splitter.write(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  splitter.end();
  return lines;
}

describe('LineSplitter', () => {
  it('joins a line written in pieces and drops the carriage return of CRLF', () => {
    expect(split(['qemu-system: war', 'ning: one\r\ntwo\n', 'three'])).toEqual(['qemu-system: warning: one', 'two', 'three']);
  });

  it('keeps a character whose UTF-8 bytes arrive in two chunks', () => {
    const bytes = Buffer.from('née\n');
    expect(split([bytes.subarray(0, 2), bytes.subarray(2)])).toEqual(['née']);
  });

  it('cuts output without newlines at the cap, never inside a surrogate pair', () => {
    expect(split(['abcdefgh', 'ij\n'], 4)).toEqual(['abcd', 'efgh', 'ij']);
    // '😀' is two UTF-16 code units: the pair is kept whole in the next line.
    expect(split(['abc😀d\n'], 4)).toEqual(['abc', '😀d']);
    const endless = split(['x'.repeat(LINE_MAX * 3 + 5)]);
    expect(endless.map((line) => line.length)).toEqual([LINE_MAX, LINE_MAX, LINE_MAX, 5]);
  });

  it('emits nothing at the end when the last line was complete', () => {
    expect(split(['a\n'])).toEqual(['a']);
    expect(split([])).toEqual([]);
  });
});
