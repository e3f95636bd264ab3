import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from '@jest/globals';
import { NdjsonReader, readFirstLine } from './ndjson.js';

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

  it('keeps nothing a peer sends after an overflow', () => {
    const { r, lines, overflows } = reader(16);
    r.push(Buffer.from('x'.repeat(17)));
    for (let i = 0; i < 100; i++) r.push(Buffer.from('y'.repeat(10)));
    r.push(Buffer.from('\n{"later":1}\n'));
    expect(r.remainder().length).toBe(0);
    expect(lines).toEqual([]);
    expect(overflows).toEqual([17]);
  });

  it('keeps what arrives after stop() only up to the cap, then reports an overflow once and keeps nothing', () => {
    const overflows: number[] = [];
    const r: NdjsonReader = new NdjsonReader({ maxLineBytes: 16, onLine: () => r.stop(), onOverflow: (bytes) => overflows.push(bytes) });
    r.push(Buffer.from('{"vnc":1}\nRFB'));
    r.push(Buffer.from('0'.repeat(13)));
    expect(overflows).toEqual([]);
    r.push(Buffer.from('1'));
    expect(overflows).toEqual([17]);
    for (let i = 0; i < 100; i++) r.push(Buffer.from('z'.repeat(10)));
    expect(r.remainder().length).toBe(0);
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

describe('readFirstLine', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  });

  /** A loopback connection: the client end, and the server's end once accepted. */
  async function connection(): Promise<{ client: Socket; server: Socket }> {
    const listener = createServer();
    listener.listen(0, '127.0.0.1');
    await once(listener, 'listening');
    const accepted = once(listener, 'connection') as Promise<[Socket]>;
    const client = connect((listener.address() as AddressInfo).port, '127.0.0.1');
    const [server] = await accepted;
    cleanups.push(() => {
      client.destroy();
      server.destroy();
      listener.close();
    });
    return { client, server };
  }

  it('parses the first line and leaves what follows it unread', async () => {
    const { client, server } = await connection();
    const reading = readFirstLine(client, 5_000, 64);
    server.write('{"hello":1}\nafter');
    const { value, rest } = await reading;
    expect(value).toEqual({ hello: 1 });
    expect(rest.toString()).toBe('after');
  });

  it('names the error that ended the connection, not only the close', async () => {
    const { client } = await connection();
    const reading = readFirstLine(client, 5_000, 64);
    client.destroy(new Error('the peer went away'));
    await expect(reading).rejects.toThrow('the connection closed before its first line (the peer went away)');
  });

  it('reports a plain close as one', async () => {
    const { client, server } = await connection();
    const reading = readFirstLine(client, 5_000, 64);
    server.end();
    await expect(reading).rejects.toThrow(/^the connection closed before its first line$/);
  });
});
