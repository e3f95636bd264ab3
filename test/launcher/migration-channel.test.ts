// The node handlers' migration channel with real sockets (no QEMU): the source launcher's real
// migration-out.sock (launcher/migration-out.ts) standing in for the launcher's relay, the real
// sender and receiver; mutual TLS from one CA, only expected migrations, bytes carried intact both
// ways, bounded buffers against a peer that does not read, a cut on one side cutting the other, and
// the handler's side never making anything in the pod's directory (it sees it read-only).
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { jest } from '@jest/globals';
import { pino } from 'pino';
import { MigrationOutlet } from '../../launcher/migration-out.js';
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
async function fakeIncoming(dir: string, name = 'migration-in.sock'): Promise<{ path: string; accepted: Promise<net.Socket>; close: () => Promise<void> }> {
  const socketPath = path.join(dir, name);
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

/** A directory's entries with their kinds, owners, modes and times: what a write there would change. */
function snapshot(d: string): unknown {
  const self = statSync(d);
  return {
    dir: [self.mtimeMs, self.ctimeMs],
    entries: readdirSync(d).sort().map((name) => {
      const e = lstatSync(path.join(d, name));
      return [name, e.mode, e.uid, e.mtimeMs, e.ctimeMs];
    }),
  };
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

  /** A source launcher's migration-out.sock in the run directory `run` of the pods directory `dir`. */
  async function outlet(run = 'run'): Promise<{ runDir: string; outlet: MigrationOutlet }> {
    const runDir = path.join(dir, run);
    mkdirSync(runDir, { recursive: true });
    const o = new MigrationOutlet(launcherSockets(runDir).migrationOut, log);
    await o.listen();
    cleanups.push(() => o.close());
    return { runDir, outlet: o };
  }

  /**
   * A sender joined to the launcher's migration-out.sock; `qemu` is the launcher's end of it, where
   * the launcher's relay writes QEMU's stream.
   */
  async function sender(migrationUid: string, creds: MigrationTls = certs['node-a'], run = 'run'): Promise<{ qemu: net.Socket; channel: MigrationSender }> {
    const { runDir, outlet: o } = await outlet(run);
    const channel = await MigrationSender.connect({ tls: creds, log, migrationUid, podsDir: dir, runDir, ownerUid: process.getuid?.() ?? 0, target: { ...address, serverName: 'node-b' } });
    cleanups.push(() => channel.close());
    const qemu = o.take();
    qemu.resume();
    cleanups.push(() => void qemu.destroy());
    return { qemu, channel };
  }

  it('carries a stream both ways, byte for byte', async () => {
    const incoming = await fakeIncoming(dir);
    cleanups.push(incoming.close);
    receiver.expect('m1', () => connectUnix(incoming.path));
    const { qemu } = await sender('m1');
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
    const { qemu, channel } = await sender('m2');
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
    const { qemu } = await sender('m3');
    qemu.write('x');
    const target = await incoming.accepted;
    const closed = new Promise<void>((resolve) => qemu.once('close', () => resolve()));
    target.destroy();
    await closed;
  });

  it('refuses a migration it does not expect, and a peer from another CA or with no certificate', async () => {
    const before = async (reason: string) => (await migrationChannelRefused.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
    const unexpected = await before('unexpected');
    await expect(sender('nobody-expects-me')).rejects.toThrow(/the target node refused the stream: this node expects no migration nobody-expects-me/);
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
    const rogueRun = await outlet('rogue');
    await expect(MigrationSender.connect({ tls: certs['node-a'], log, migrationUid: 'm4', podsDir: dir, runDir: rogueRun.runDir, ownerUid: process.getuid?.() ?? 0, target: { ...rogueAddress, serverName: 'stranger' } })).rejects.toThrow(/cannot carry the migration stream to the target node/);
    expect(reached).toBe(false);
    // The launcher's end was let go: it takes the next connection.
    await eventually('the refused connection to be gone from the launcher', 5000, () => (rogueRun.outlet.hasWaiting ? undefined : true));
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

  it('connects to the launcher\'s socket without following links the pod planted, and makes nothing in the pod\'s directory', async () => {
    const uid = process.getuid?.() ?? 0;
    const connect = (podsDir: string, runDir: string, ownerUid = uid) =>
      MigrationSender.connect({ tls: certs['node-a'], log, migrationUid: 'm5', podsDir, runDir, ownerUid, target: { ...address, serverName: 'node-b' } });
    const incoming = await fakeIncoming(dir);
    cleanups.push(incoming.close);
    receiver.expect('m5', () => connectUnix(incoming.path));
    // The run directory itself a link to a real launcher's directory elsewhere: refused.
    const elsewhere = mkdtempSync(path.join(os.tmpdir(), 'kubevm-elsewhere-'));
    cleanups.push(() => rmSync(elsewhere, { recursive: true, force: true }));
    const foreign = new MigrationOutlet(launcherSockets(elsewhere).migrationOut, log);
    await foreign.listen();
    cleanups.push(() => foreign.close());
    symlinkSync(elsewhere, path.join(dir, 'linked'));
    await expect(connect(dir, path.join(dir, 'linked'))).rejects.toThrow(/refusing launcher socket .*linked: linked is a symbolic link/);
    // The socket a link to that socket: refused.
    const planted = path.join(dir, 'planted');
    mkdirSync(planted);
    symlinkSync(launcherSockets(elsewhere).migrationOut, launcherSockets(planted).migrationOut);
    await expect(connect(dir, planted)).rejects.toThrow(/refusing launcher socket .*migration-out\.sock: it is a symbolic link/);
    // A socket of another uid than the launcher's: refused.
    const { runDir } = await outlet('real');
    await expect(connect(dir, runDir, 4242)).rejects.toThrow(/it is owned by uid \d+, not by the launcher's uid 4242/);
    expect(foreign.hasWaiting).toBe(false);

    // Through a read-only view of the pods directory, as the node handler mounts it: the whole
    // join works (a write there would fail with EROFS), and the directory is as the launcher left it.
    const view = `${dir}-ro`;
    mkdirSync(view);
    execFileSync('mount', ['--bind', dir, view]);
    cleanups.push(() => {
      execFileSync('umount', [view]);
      rmSync(view, { recursive: true, force: true });
    });
    execFileSync('mount', ['-o', 'remount,bind,ro', view]);
    const before = snapshot(runDir);
    const joined = await connect(view, path.join(view, 'real'));
    cleanups.push(() => joined.close());
    expect(snapshot(runDir)).toEqual(before);
  });

  it('the launcher refuses a second connection while one waits, and says why', async () => {
    const { runDir, outlet: o } = await outlet('second');
    const first = await connectUnix(launcherSockets(runDir).migrationOut);
    cleanups.push(() => void first.destroy());
    await eventually('the first connection to wait', 5000, () => (o.hasWaiting ? true : undefined));
    await expect(MigrationSender.connect({ tls: certs['node-a'], log, migrationUid: 'm7', podsDir: dir, runDir, ownerUid: process.getuid?.() ?? 0, target: { ...address, serverName: 'node-b' } })).rejects.toThrow(
      /the source launcher refused the migration connection: another connection already waits for the migration/,
    );
    // The waiting one gone, the next is taken.
    first.destroy();
    await eventually('the first connection to be let go', 5000, () => (o.hasWaiting ? undefined : true));
    const again = await connectUnix(launcherSockets(runDir).migrationOut);
    cleanups.push(() => void again.destroy());
    await eventually('the next connection to wait', 5000, () => (o.hasWaiting ? true : undefined));
    // Bytes before the migration are not a node handler's: the connection is closed.
    const closed = new Promise<void>((resolve) => again.once('close', () => resolve()));
    // Read, so its end is seen.
    again.resume();
    again.write('not yet');
    await closed;
    expect(o.hasWaiting).toBe(false);
  });

  it('carries each disk stream to the target launcher\'s disk socket: as many as the launcher asks for, the target speaking first', async () => {
    // The memory outlet's answer says how many disk streams to connect; the disk outlet holds
    // that many and refuses one more; each hello names its stream, and the target routes it.
    const runDir = path.join(dir, 'disks');
    mkdirSync(runDir, { recursive: true });
    const memoryOut = new MigrationOutlet(launcherSockets(runDir).migrationOut, log, { accepted: () => ({ ok: true, disks: 2 }) });
    const disksOut = new MigrationOutlet(launcherSockets(runDir).migrationDisksOut, log, { capacity: () => 2, peerSpeaksFirst: true });
    for (const o of [memoryOut, disksOut]) {
      await o.listen();
      cleanups.push(() => o.close());
    }
    const memoryIn = await fakeIncoming(dir, 'memory-in.sock');
    const disksIn = await fakeIncoming(dir, 'disks-in.sock');
    cleanups.push(memoryIn.close, disksIn.close);
    const routed: string[] = [];
    receiver.expect('m-disks', (stream) => {
      routed.push(stream);
      return connectUnix(stream === 'disks' ? disksIn.path : memoryIn.path);
    });
    const options = { tls: certs['node-a'], log, migrationUid: 'm-disks', podsDir: dir, runDir, ownerUid: process.getuid?.() ?? 0, target: { ...address, serverName: 'node-b' } };
    const memory = await MigrationSender.connect(options);
    cleanups.push(() => memory.close());
    expect(memory.diskStreams).toBe(2);
    for (let i = 0; i < 2; i++) {
      const disk = await MigrationSender.connect({ ...options, stream: 'disks' });
      cleanups.push(() => disk.close());
    }
    await expect(MigrationSender.connect({ ...options, stream: 'disks' })).rejects.toThrow(/refused the migration connection: the 2 connections this migration takes already wait/);
    expect(routed.sort()).toEqual(['disks', 'disks', 'memory']);
    // An NBD server greets before the client says anything: the greeting waits in the launcher's
    // socket, unread, and is the first thing the relay passes on.
    const target = await disksIn.accepted;
    target.write('NBDMAGIC');
    expect(() => disksOut.takeAll(3)).toThrow(/2 of the 3 connections of the node handler wait/);
    const [held] = disksOut.takeAll(2);
    held?.resume();
    expect((await readAll(held as net.Socket, 8)).subarray(0, 8).toString()).toBe('NBDMAGIC');
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
