// test/support/png.ts against PNGs encoded here with each of the five row filters (the forward
// filters written out independently of the decoder), for random images.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { crc32, deflateSync } from 'node:zlib';
import { colourCount, decodePng, samePixels, type Pixels } from '../support/png.js';

function chunk(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), body])) >>> 0, 0);
  return Buffer.concat([head, body, crc]);
}

/** An 8-bit PNG of `channels` (1 grey, 3 RGB, 4 RGBA) with row y filtered by filters[y % n]. */
function encode(width: number, height: number, channels: 1 | 3 | 4, samples: number[], filters: number[]): Buffer {
  const stride = width * channels;
  const at = (x: number, y: number) => (x < 0 || y < 0 ? 0 : (samples[y * stride + x] ?? 0));
  const rows: number[] = [];
  for (let y = 0; y < height; y++) {
    const filter = filters[y % filters.length] ?? 0;
    rows.push(filter);
    for (let x = 0; x < stride; x++) {
      const [v, a, b, c] = [at(x, y), at(x - channels, y), at(x, y - 1), at(x - channels, y - 1)];
      const p = a + b - c;
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const predicted = [0, a, b, Math.floor((a + b) / 2), paeth][filter] ?? 0;
      rows.push((v - predicted + 256) % 256);
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, { 1: 0, 3: 2, 4: 6 }[channels], 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.from(rows))), chunk('IEND', Buffer.alloc(0))]);
}

const image = fc
  .record({ width: fc.integer({ min: 1, max: 9 }), height: fc.integer({ min: 1, max: 7 }), channels: fc.constantFrom<1 | 3 | 4>(1, 3, 4), filters: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 5 }) })
  .chain((shape) => fc.record({ shape: fc.constant(shape), samples: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: shape.width * shape.height * shape.channels, maxLength: shape.width * shape.height * shape.channels }) }));

describe('decodePng', () => {
  it('gives back the pixels whatever the row filters and colour type', () => {
    fc.assert(
      fc.property(image, ({ shape, samples }) => {
        const decoded = decodePng(encode(shape.width, shape.height, shape.channels, samples, shape.filters));
        expect({ width: decoded.width, height: decoded.height }).toEqual({ width: shape.width, height: shape.height });
        const expected = [];
        for (let i = 0; i < shape.width * shape.height; i++) {
          const px = samples.slice(i * shape.channels, (i + 1) * shape.channels);
          expected.push(...(shape.channels === 1 ? [px[0], px[0], px[0], 255] : shape.channels === 3 ? [...px, 255] : px));
        }
        expect([...decoded.rgba]).toEqual(expected);
      }),
    );
  });

  it('refuses what it does not decode, by name', () => {
    expect(() => decodePng(Buffer.from('GIF89a'))).toThrow(/not a PNG image/);
    const png = encode(2, 2, 3, new Array<number>(12).fill(7), [0]);
    png[24] = 16; // bit depth
    expect(() => decodePng(png)).toThrow(/bit depth 16/);
  });
});

describe('samePixels and colourCount', () => {
  const solid = (rgb: number[], width = 4, height = 2): Pixels => ({ width, height, rgba: Uint8Array.from({ length: width * height * 4 }, (_, i) => (i % 4 === 3 ? 255 : (rgb[i % 4] ?? 0))) });
  it('counts equal colours, ignoring alpha; different sizes share nothing', () => {
    const a = solid([1, 2, 3]);
    const b = solid([1, 2, 3]);
    b.rgba[0] = 9;
    b.rgba[7] = 0;
    expect(samePixels(a, b)).toBe(7 / 8);
    expect(samePixels(a, solid([1, 2, 3], 2, 4))).toBe(0);
    expect(colourCount(a)).toBe(1);
    expect(colourCount(b)).toBe(2);
  });
});
