// The node handlers' migration channel with real sockets (no QEMU): mutual TLS from one CA, only
// expected migrations, bytes carried intact both ways, bounded buffers against a peer that does not
// read, and a cut on one side cutting the other.
import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { jest } from '@jest/globals';
import { pino } from 'pino';
import { MigrationReceiver, MigrationSender, migrationChannelRefused } from '../../node-handler/migration-channel.js';
import type { MigrationTls } from '../../node-handler/migration-channel.js';
import { launcherSockets } from '../../runtime/contracts/launcher-pod.js';
import { MigrationChannelAnswer } from '../../runtime/contracts/migration-channel.js';
import { ndjsonLine } from '../../runtime/ndjson.js';
import { eventually } from '../support/eventually.js';
import { migrationCertificates } from './migration-tls.js';

jest.setTimeout(60_000);

const log = pino({ level: 'silent' });
const certs = migrationCertificates(['node-a', 'node-b']);

/** A unix socket server standing in for the target launcher's migration-in.sock. */
async function fakeIncoming(dir: string): Promise<{ path: string; accepted: Promise<net.Socket>; close: () => Promise<void> }> {
  const socketPath = path.join(dir, 'migration-in.sock');
  let accept: (s: net.Socket) => void = () => undefined;
  const accepted = new Promise<net.Socket>((resolve) => (accept = resolve));
  const server = net.createServer((s) => accept(s));
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return { path: socketPath, accepted, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

function connectUnix(p: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(p);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

function readAll(s: net.Socket, bytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      n += c.length;
      if (n >= bytes) resolve(Buffer.concat(chunks));
    });
    s.once('close', () => reject(new Error(`closed after ${n} of ${bytes} bytes`)));
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('migration channel (TCP + mutual TLS, real sockets)', () => {
  let dir: string;
  let receiver: MigrationReceiver;
  let address: { host: string; port: number };
  const cleanups: Array<() => Promise<void> | void> = [];

  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'kubevm-migration-channel-'));
    receiver = new MigrationReceiver({ tls: certs['node-b'], log, host: '127.0.0.1' });
    address = await receiver.listen();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A sender for a "launcher" run directory `run` in the pods directory `dir`. */
  async function sender(migrationUid: string, creds: MigrationTls = certs['node-a'], run = 'run'): Promise<{ socketPath: string; channel: MigrationSender }> {
    const runDir = path.join(dir, run);
    mkdirSync(runDir, { recursive: true });
    const channel = await MigrationSender.open({ tls: creds, log, migrationUid, podsDir: dir, runDir, owner: { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }, target: { ...address, serverName: 'node-b' } });
    cleanups.push(() => channel.close());
    return { socketPath: launcherSockets(runDir).migrationOut, channel };
  }

  it('carries a stream both ways, byte for byte', async () => {
    const incoming = await fakeIncoming(dir);
    cleanups.push(incoming.close);
    receiver.expect('m1', () => connectUnix(incoming.path));
    const { socketPath } = await sender('m1');
    const qemu = await connectUnix(socketPath);
    cleanups.push(() => void qemu.destroy());
    const forward = randomBytes(8 * 1024 * 1024);
    const back = randomBytes(64 * 1024);
    qemu.write(forward);
    const target = await incoming.accepted;
    const received = await readAll(target, forward.length);
    expect(sha(received.subarray(0, forward.length))).toBe(sha(forward));
    target.write(back);
    expect(sha((await readAll(qemu, back.length)).subarray(0, back.length))).toBe(sha(back));
  });

  it('holds a bounded amount when the target does not read', async () => {
    const incoming = await fakeIncoming(dir);
    cleanups.push(incoming.close);
    receiver.expect('m2', () => connectUnix(incoming.path));
    const { socketPath, channel } = await sender('m2');
    const qemu = await connectUnix(socketPath);
    cleanups.push(() => void qemu.destroy());
    const target = await incoming.accepted;
    target.pause();
    // Offer 64 MiB: the channel must push the writer back long before it holds that much.
    const total = 64 * 1024 * 1024;
    const chunk = Buffer.alloc(1024 * 1024, 7);
    for (let i = 0; i < total / chunk.length; i++) qemu.write(chunk);
    // Wait until nothing moves any more: the writer's own buffer stops shrinking.
    let previous = -1;
    await eventually('the channel to fill and stall', 20_000, () => {
      const now = qemu.writableLength;
      const stalled = now === previous;
      previous = now;
      return stalled || undefined;
    }, { intervalMs: 300 });
    const held = receiver.bufferedBytes() + channel.bufferedBytes();
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThan(4 * 1024 * 1024);
    // The rest waits in the writer (QEMU), pushed back.
    expect(qemu.writableLength).toBeGreaterThan(total - 8 * 1024 * 1024);
    // Everything comes through once the target reads.
    target.resume();
    let got = 0;
    target.on('data', (c: Buffer) => (got += c.length));
    await eventually('all 64 MiB to arrive', 30_000, () => got >= 64 * 1024 * 1024 || undefined);
  });

  it('cuts the source side when the target side goes away', async () => {
    const incoming = await fakeIncoming(dir);
    cleanups.push(incoming.close);
    receiver.expect('m3', () => connectUnix(incoming.path));
    const { socketPath } = await sender('m3');
    const qemu = await connectUnix(socketPath);
    qemu.write('x');
    const target = await incoming.accepted;
    const closed = new Promise<void>((resolve) => qemu.once('close', () => resolve()));
    target.destroy();
    await closed;
  });

  it('refuses a migration it does not expect, and a peer from another CA or with no certificate', async () => {
    const before = async (reason: string) => (await migrationChannelRefused.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
    const unexpected = await before('unexpected');
    const { socketPath } = await sender('nobody-expects-me');
    const qemu = await connectUnix(socketPath);
    qemu.write('data');
    await new Promise<void>((resolve) => qemu.once('close', () => resolve()));
    expect(await before('unexpected')).toBe(unexpected + 1);

    const tlsRefused = await before('tls');
    // A client certificate from another CA.
    const stranger = tls.connect({ ...address, servername: 'node-b', ca: certs['node-a'].ca, cert: certs.stranger.cert, key: certs.stranger.key });
    stranger.on('error', () => undefined);
    stranger.write(ndjsonLine({ protocol: 1, migrationUid: 'm' }));
    await new Promise<void>((resolve) => stranger.once('close', () => resolve()));
    // No client certificate at all.
    const anonymous = tls.connect({ ...address, servername: 'node-b', ca: certs['node-a'].ca });
    anonymous.on('error', () => undefined);
    anonymous.write(ndjsonLine({ protocol: 1, migrationUid: 'm' }));
    await new Promise<void>((resolve) => anonymous.once('close', () => resolve()));
    await eventually('both handshakes to be refused', 5000, async () => ((await before('tls')) >= tlsRefused + 2 ? true : undefined));

    // The sender checks the receiver too: a receiver of another CA gets no stream.
    const rogue = new MigrationReceiver({ tls: certs.stranger, log, host: '127.0.0.1' });
    const rogueAddress = await rogue.listen();
    cleanups.push(() => rogue.close());
    let reached = false;
    rogue.expect('m4', () => {
      reached = true;
      return connectUnix('/nonexistent');
    });
    mkdirSync(path.join(dir, 'rogue'));
    const s = await MigrationSender.open({ tls: certs['node-a'], log, migrationUid: 'm4', podsDir: dir, runDir: path.join(dir, 'rogue'), target: { ...rogueAddress, serverName: 'stranger' } });
    cleanups.push(() => s.close());
    const q = await connectUnix(launcherSockets(path.join(dir, 'rogue')).migrationOut);
    await new Promise<void>((resolve) => q.once('close', () => resolve()));
    expect(reached).toBe(false);
  });

  it('with peer names, refuses a certificate of the same CA for another name (another component\'s)', async () => {
    const strict = new MigrationReceiver({ tls: certs['node-b'], log, host: '127.0.0.1', peerNames: ['node-a'] });
    const strictAddress = await strict.listen();
    cleanups.push(() => strict.close());
    const before = (await migrationChannelRefused.get()).values.find((v) => v.labels.reason === 'peer')?.value ?? 0;
    let reached = false;
    strict.expect('m6', () => {
      reached = true;
      return connectUnix('/nonexistent');
    });
    // node-b's certificate is signed by the same CA but is not one the receiver accepts as a peer.
    const other = tls.connect({ ...strictAddress, servername: 'node-b', ca: certs['node-b'].ca, cert: certs['node-b'].cert, key: certs['node-b'].key });
    other.on('error', () => undefined);
    other.write(ndjsonLine({ protocol: 1, migrationUid: 'm6' }));
    const answer = await new Promise<string>((resolve) => {
      let text = '';
      other.on('data', (c: Buffer) => (text += c.toString()));
      other.once('close', () => resolve(text));
    });
    const parsed = MigrationChannelAnswer.parse(JSON.parse(answer));
    expect(!parsed.ok && parsed.message).toMatch(/a certificate for node-b.* is not a node handler's \(node-a\)/);
    expect(reached).toBe(false);
    expect((await migrationChannelRefused.get()).values.find((v) => v.labels.reason === 'peer')?.value).toBe(before + 1);

    // node-a's is accepted.
    const good = tls.connect({ ...strictAddress, servername: 'node-b', ca: certs['node-a'].ca, cert: certs['node-a'].cert, key: certs['node-a'].key });
    good.on('error', () => undefined);
    good.write(ndjsonLine({ protocol: 1, migrationUid: 'm6' }));
    await eventually('node-a\'s stream to reach the target', 5000, async () => (reached ? true : undefined));
    good.destroy();
  });

  it('makes its socket in the pod\'s directory without following links the pod planted', async () => {
    // The run directory itself a link to somewhere else: refused, nothing made there.
    const elsewhere = mkdtempSync(path.join(os.tmpdir(), 'kubevm-elsewhere-'));
    cleanups.push(() => rmSync(elsewhere, { recursive: true, force: true }));
    symlinkSync(elsewhere, path.join(dir, 'linked'));
    await expect(MigrationSender.open({ tls: certs['node-a'], log, migrationUid: 'm5', podsDir: dir, runDir: path.join(dir, 'linked'), target: { ...address, serverName: 'node-b' } })).rejects.toThrow(/refusing launcher socket .*linked: linked is a symbolic link/);
    expect(() => statSync(launcherSockets(elsewhere).migrationOut)).toThrow();
    // A link planted where the socket goes, to a file of the node: the link is replaced, the file untouched.
    const victim = path.join(elsewhere, 'victim');
    writeFileSync(victim, 'node file\n', { mode: 0o600 });
    const runDir = path.join(dir, 'planted');
    mkdirSync(runDir);
    symlinkSync(victim, launcherSockets(runDir).migrationOut);
    const s = await MigrationSender.open({ tls: certs['node-a'], log, migrationUid: 'm6', podsDir: dir, runDir, owner: { uid: 107, gid: 107 }, target: { ...address, serverName: 'node-b' } });
    cleanups.push(() => s.close());
    const made = lstatSync(launcherSockets(runDir).migrationOut);
    expect(made.isSocket()).toBe(true);
    expect([made.uid, made.mode & 0o777]).toEqual([107, 0o660]);
    const untouched = statSync(victim);
    expect([untouched.uid, untouched.mode & 0o777]).toEqual([0, 0o600]);
    expect(readFileSync(victim, 'utf8')).toBe('node file\n');
  });

  it('refuses a bad hello with the field named', async () => {
    const client = tls.connect({ ...address, servername: 'node-b', ca: certs['node-a'].ca, cert: certs['node-a'].cert, key: certs['node-a'].key });
    await new Promise<void>((resolve) => client.once('secureConnect', () => resolve()));
    client.write(ndjsonLine({ protocol: 1, migrationUid: '../../etc' }));
    const answer = await new Promise<string>((resolve) => {
      let text = '';
      client.on('data', (c: Buffer) => (text += c.toString()));
      client.once('close', () => resolve(text));
    });
    const parsed = MigrationChannelAnswer.parse(JSON.parse(answer));
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.message).toMatch(/^bad hello: migrationUid: /);
  });
});
