// The stream bridge over real TCP connections on loopback: client ─▶ [bridge] ─▶ upstream, as a
// console or port-forward runs through the api-server and the node handler.
import { afterEach, describe, expect, it } from '@jest/globals';
import net from 'node:net';
import { eventually } from '../test/support/eventually.js';
import { bridge } from './stream-bridge.js';
import type { BridgeEnd } from './stream-bridge.js';

interface Chain {
  /** The far ends the test drives. */
  client: net.Socket;
  upstream: net.Socket;
  /** The bridge's own two sockets. */
  inner: { fromClient: net.Socket; toUpstream: net.Socket };
  ended: Promise<BridgeEnd>;
}

const servers: net.Server[] = [];
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(servers.splice(0).map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
});

function listen(onConnection: (socket: net.Socket) => void): Promise<number> {
  const server = net.createServer(onConnection);
  servers.push(server);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ host: '127.0.0.1', port }, () => resolve(socket));
    sockets.push(socket);
    socket.once('error', reject);
  });
}

async function chain(options: Parameters<typeof bridge>[2] = {}): Promise<Chain> {
  let upstream: net.Socket | undefined;
  const upstreamPort = await listen((socket) => {
    upstream = socket;
    sockets.push(socket);
  });
  let resolveInner: (value: { inner: Chain['inner']; ended: Promise<BridgeEnd> }) => void = () => undefined;
  const innerReady = new Promise<{ inner: Chain['inner']; ended: Promise<BridgeEnd> }>((resolve) => (resolveInner = resolve));
  const bridgePort = await listen((fromClient) => {
    void connect(upstreamPort).then((toUpstream) => resolveInner({ inner: { fromClient, toUpstream }, ended: bridge(fromClient, toUpstream, options) }));
  });
  const client = await connect(bridgePort);
  const { inner, ended } = await innerReady;
  const far = await eventually('the upstream accepted', 5000, () => upstream);
  return { client, upstream: far, inner, ended };
}

function collect(socket: net.Socket, until: (text: string) => boolean): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString();
      if (until(text)) {
        socket.off('data', onData);
        resolve(text);
      }
    };
    socket.on('data', onData);
  });
}

describe('bridge', () => {
  it('carries bytes both ways', async () => {
    const { client, upstream } = await chain();
    const atUpstream = collect(upstream, (t) => t.includes('ping'));
    client.write('ping');
    expect(await atUpstream).toBe('ping');
    const atClient = collect(client, (t) => t.includes('pong'));
    upstream.write('pong');
    expect(await atClient).toBe('pong');
  });

  it('pauses the reading side while the writer is full, holding a bounded amount, and loses nothing', async () => {
    const { client, upstream, inner } = await chain();
    upstream.pause(); // the upstream stops reading: its kernel buffer, then the bridge's, fill up
    const chunk = Buffer.alloc(64 * 1024, 7);
    const offered = 256 * 1024 * 1024;
    let written = 0;
    // Keep the client's own buffer topped up; its socket stops taking once the bridge stops reading.
    await eventually('the bridge paused reading from the client', 10_000, async () => {
      while (written < offered && client.writableLength < 8 * 1024 * 1024) {
        client.write(chunk);
        written += chunk.length;
      }
      await new Promise((resolve) => setImmediate(resolve));
      return inner.fromClient.isPaused();
    });
    // The bridge holds at most its sockets' high-water marks (plus one chunk), not what was offered.
    const held = inner.fromClient.readableLength + inner.toUpstream.writableLength;
    expect(held).toBeLessThan(1024 * 1024);
    expect(written).toBeLessThan(offered);
    // Once the upstream reads again, every byte arrives.
    let received = 0;
    upstream.on('data', (data: Buffer) => (received += data.length));
    upstream.resume();
    await eventually(() => `all ${written} bytes through (got ${received})`, 60_000, () => received === written);
  });

  it('closes the upstream when the client vanishes, and the client when the upstream does', async () => {
    const first = await chain();
    const upstreamClosed = new Promise((resolve) => first.upstream.once('close', resolve));
    first.client.destroy();
    await upstreamClosed;
    expect((await first.ended).side).toBe('a');

    const second = await chain();
    const clientClosed = new Promise((resolve) => second.client.once('close', resolve));
    second.upstream.destroy();
    await clientClosed;
    expect(await second.ended).toMatchObject({ side: 'b' });
  });

  it('ends a stream whose reader stalls longer than the stall timeout', async () => {
    const { client, upstream, ended } = await chain({ stallTimeoutMs: 300 });
    client.pause(); // the client stops reading its console
    const chunk = Buffer.alloc(64 * 1024, 1);
    const clientClosed = new Promise((resolve) => client.once('close', resolve));
    const writeUntilClosed = (): void => {
      while (!upstream.destroyed && upstream.write(chunk));
      if (!upstream.destroyed) upstream.once('drain', writeUntilClosed);
    };
    upstream.on('error', () => undefined);
    writeUntilClosed();
    expect(await ended).toMatchObject({ side: 'a', reason: 'stalled' });
    // The client, reading again, finds its connection closed after what was already sent.
    client.resume();
    await clientClosed;
  });
});
