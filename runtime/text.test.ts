import { describe, expect, it } from '@jest/globals';
import { clip, storableText } from './text.js';

describe('clip', () => {
  it('leaves text within the limit alone', () => {
    expect(clip('', 3)).toBe('');
    expect(clip('abc', 3)).toBe('abc');
  });

  it('cuts longer text to the limit, marked with an ellipsis', () => {
    expect(clip('abcdef', 4)).toBe('abc…');
    expect(clip('abcdef', 4)).toHaveLength(4);
    expect(clip('x'.repeat(1_000_000), 100)).toHaveLength(100);
  });

  it('never leaves half of a surrogate pair', () => {
    const cut = clip('ab😀cd', 4); // 😀 is two code units, at 2 and 3
    expect(cut).toBe('ab…');
    expect(Buffer.from(cut).toString()).toBe(cut); // a lone surrogate would not survive UTF-8
    expect(clip('😀😀😀', 3)).toBe('😀…');
  });
});

describe('storableText', () => {
  it('drops control characters but tab and newline, then cuts', () => {
    expect(storableText('a\u0000b\u001bc\td\ne\u007f\u0085f', 100)).toBe('abc\td\nef');
    expect(storableText(`${'\u0001'.repeat(1_000)}abcdef`, 4)).toBe('abc…');
  });

  it('takes at most 3 bytes per code unit as JSON', () => {
    const worst = storableText(`"\\\u0001\u2028\uffff😀`.repeat(10_000), 1_000);
    expect(Buffer.byteLength(JSON.stringify(worst))).toBeLessThanOrEqual(3 * 1_000 + 2);
  });
});
