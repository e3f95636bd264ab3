// The client side of an RFB (VNC) handshake, for the suites that reach a VMI's display through
// different paths (the stream subresource, virtctl's and kubectl virt's local ports).
import { expect } from '@jest/globals';
import { eventually } from '../../support/eventually.js';

/** Reads what `subscribe` delivers, a piece at a time: each read waits until `done` accepts what is buffered. */
export function byteReader(subscribe: (push: (bytes: Buffer) => void) => void): (done: (b: Buffer) => boolean) => Promise<Buffer> {
  let buffered = Buffer.alloc(0);
  subscribe((bytes) => (buffered = Buffer.concat([buffered, bytes])));
  return async (done) => {
    const got = await eventually(() => `more bytes (have ${buffered.length})`, 30_000, () => (done(buffered) ? buffered : undefined), { intervalMs: 20 });
    buffered = Buffer.alloc(0);
    return got;
  };
}

/** RFB 3.8 up to ServerInit over `read`/`write`; returns the framebuffer size. */
export async function rfbHandshake(read: (done: (b: Buffer) => boolean) => Promise<Buffer>, write: (b: Buffer) => void): Promise<{ width: number; height: number }> {
  expect((await read((b) => b.length >= 12)).subarray(0, 12).toString('latin1')).toBe('RFB 003.008\n');
  write(Buffer.from('RFB 003.008\n'));
  const types = await read((b) => b.length >= 1 && b.length >= 1 + (b[0] ?? 0));
  expect([...types.subarray(1, 1 + (types[0] ?? 0))]).toContain(1);
  write(Buffer.from([1]));
  expect((await read((b) => b.length >= 4)).readUInt32BE(0)).toBe(0);
  write(Buffer.from([1]));
  const init = await read((b) => b.length >= 24 && b.length >= 24 + b.readUInt32BE(20));
  return { width: init.readUInt16BE(0), height: init.readUInt16BE(2) };
}
