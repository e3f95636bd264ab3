// The api-server's websocket streams over real TLS and real sockets: the front proxy's certificate
// and the authorizer decide before anything is opened; then KubeVirt's plain.kubevirt.io framing
// carries bytes both ways to an upstream (here a TCP server standing where the node handler's
// stream is: the route's open() is the seam), with backpressure, a stall timeout, teardown of the
// upstream when the client goes, and the active-stream gauge.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { WebSocket } from 'ws';
import { silentLogger } from '../runtime/logging.js';
import { eventually } from '../test/support/eventually.js';
import { streamGauges } from './metrics.js';
import { buildApiServer } from './server.js';
import type { SubresourceRoute } from './server.js';

let dir: string;
let app: FastifyInstance;
let port: number;
let upstreamServer: net.Server;
/** The upstream side of each opened stream, newest last. */
const upstreams: net.Socket[] = [];
let opened = 0;
const file = (name: string) => readFileSync(join(dir, name));

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kubevm-ws-streams-'));
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key');
  openssl('req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=ca', '-days', '1', '-out', 'ca.crt', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  for (const [name, cn] of [['server', 'localhost'], ['proxy', 'front-proxy-client']] as const) {
    openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`);
    openssl('req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`);
    writeFileSync(join(dir, `${name}.ext`), 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', `${name}.ext`, '-out', `${name}.crt`);
  }
  upstreamServer = net.createServer((socket) => {
    upstreams.push(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => upstreamServer.listen(0, '127.0.0.1', () => resolve()));
  const upstreamPort = (upstreamServer.address() as net.AddressInfo).port;
  const console: SubresourceRoute = {
    method: 'GET',
    resource: 'virtualmachineinstances',
    subresource: 'console',
    handle: async () => ({ code: 400 }),
    stream: {
      kind: 'console',
      open: async (request) => {
        opened += 1;
        const socket = net.createConnection({ host: '127.0.0.1', port: upstreamPort });
        await new Promise((resolve) => socket.once('connect', resolve));
        return { upstream: socket, vmi: request.name ?? '' };
      },
    },
  };
  app = buildApiServer({
    frontProxy: () => ({ clientCA: file('ca.crt').toString(), allowedNames: ['front-proxy-client'], usernameHeaders: ['X-Remote-User'], groupHeaders: ['X-Remote-Group'], extraHeaderPrefixes: ['X-Remote-Extra-'] }),
    authorizer: { authorize: async (user) => (user.username === 'alice' ? { allowed: true, reason: '' } : { allowed: false, reason: 'no RBAC policy matched' }) },
    routes: [console],
    log: silentLogger,
    version: {},
    health: async () => ({ healthy: true, body: {} }),
    tls: { cert: file('server.crt'), key: file('server.key') },
    streamStallTimeoutMs: 1000,
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  port = (app.server.address() as net.AddressInfo).port;
}, 30_000);

afterAll(async () => {
  await app?.close();
  for (const socket of upstreams) socket.destroy();
  await new Promise((resolve) => upstreamServer?.close(resolve));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A websocket to the console as the front proxy would open it for `user`. */
function connect(user: string): Promise<WebSocket | { refused: number; body: string }> {
  const socket = new WebSocket(`wss://localhost:${port}/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachineinstances/vm1/console`, ['plain.kubevirt.io'], {
    ca: file('ca.crt'),
    cert: file('proxy.crt'),
    key: file('proxy.key'),
    headers: { 'X-Remote-User': user, 'X-Remote-Group': 'system:authenticated' },
  });
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve(socket));
    socket.once('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ refused: response.statusCode ?? 0, body }));
    });
    socket.once('error', reject);
  });
}

async function open(): Promise<{ ws: WebSocket; upstream: net.Socket }> {
  const before = upstreams.length;
  const ws = await connect('alice');
  if (!(ws instanceof WebSocket)) throw new Error(`refused: ${ws.refused} ${ws.body}`);
  const upstream = await eventually('the upstream connection', 5000, () => (upstreams.length > before ? upstreams.at(-1) : undefined));
  return { ws, upstream };
}

const gauge = async () => (await streamGauges.console.get()).values.find((v) => v.labels['vmi'] === 'vm1')?.value ?? 0;

describe('websocket streams over TLS', () => {
  it('refuses a user the authorizer denies with a Status, opening nothing', async () => {
    const before = opened;
    const res = await connect('mallory');
    expect(res).toMatchObject({ refused: 403 });
    expect(JSON.parse((res as { body: string }).body)).toMatchObject({ kind: 'Status', reason: 'Forbidden' });
    expect(opened).toBe(before);
  });

  it('carries binary messages both ways with KubeVirt\'s subprotocol, counts the stream, and closes the upstream when the client goes', async () => {
    const { ws, upstream } = await open();
    expect(ws.protocol).toBe('plain.kubevirt.io');
    expect(await gauge()).toBe(1);
    const atUpstream = new Promise<string>((resolve) => upstream.once('data', (d: Buffer) => resolve(d.toString())));
    ws.send(Buffer.from('to the guest'));
    expect(await atUpstream).toBe('to the guest');
    const atClient = new Promise<{ text: string; binary: boolean }>((resolve) => ws.once('message', (d: Buffer, binary: boolean) => resolve({ text: d.toString(), binary })));
    upstream.write('from the guest');
    expect(await atClient).toEqual({ text: 'from the guest', binary: true });

    const upstreamClosed = new Promise((resolve) => upstream.once('close', resolve));
    ws.terminate(); // the client vanishes without a close frame
    await upstreamClosed;
    await eventually('the stream no longer counted', 5000, async () => (await gauge()) === 0);
  });

  it('stops reading the upstream while the client does not read, and ends the stream when that lasts', async () => {
    const { ws, upstream } = await open();
    ws.pause(); // the client stops reading
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    const upstreamClosed = new Promise((resolve) => upstream.once('close', resolve));
    // The upstream writes as fast as the api-server takes it: soon it takes nothing more, and the
    // bytes pile up on the upstream's side (4 MiB here), not in the api-server.
    await eventually('the api-server stopped reading the upstream', 20_000, async () => {
      while (!upstream.destroyed && upstream.writableLength < 4 * 1024 * 1024) {
        upstream.write(chunk);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
      return upstream.destroyed || upstream.writableLength >= 4 * 1024 * 1024;
    });
    // Past the stall timeout (1 s here) the stream is ended, upstream included.
    await upstreamClosed;
    ws.resume();
  });
});
