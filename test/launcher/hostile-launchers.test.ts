// The node handler does not trust its launchers (SECURITY.md, "Launcher → node handler"). One
// handler's real connection code (LauncherConnections + launcherDialer, in-process) attaches to a
// REAL launcher running a real QEMU guest and, on the same node, to launchers that misbehave:
// garbage, an endless line, well-formed events with wrong types, symlinks to the real VM's socket
// or directory, sockets that are not the launcher's, a launcher claiming another VMI. Throughout,
// the real VM goes on being reported correctly and the handler process sees no uncaught exception
// or unhandled rejection.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { chownSync, linkSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Writable } from 'node:stream';
import pino from 'pino';
import { DomainStateCache } from '../../node-handler/domain-state.js';
import { launcherDialer, launcherMessagesDropped, launcherSocketsRefused, watchLauncherSocketDirectory } from '../../node-handler/launcher-client.js';
import { LauncherConnections } from '../../node-handler/launcher-connections.js';
import { LAUNCHER_MAX_LINE_BYTES, LAUNCHER_STATUS_LIMITS } from '../../runtime/contracts/launcher-protocol.js';
import type { DomainStatus } from '../../runtime/contracts/launcher-protocol.js';
import { lastCount, makePodsDir, QEMU_UID, startLauncher, testVmi } from './harness.js';
import type { LauncherRun, PodsDir } from './harness.js';
import { eventually } from '../support/eventually.js';

jest.setTimeout(180_000);

const namespace = 'launcher-test';
const keyOf = (name: string) => `${namespace}/${name}`;
const status = (name: string, phase: DomainStatus['phase'] = 'Running'): DomainStatus => ({ vmi: { name, namespace }, phase, volumes: [], conditions: [] });

/** What a fake launcher does with each connection; `request` is called per request line. */
type Behaviour = (socket: net.Socket, request: { id: unknown; command: string }) => void;

interface FakeLauncher {
  connections: number;
  closedByHandler: number;
  server: net.Server;
}

/** Every fake launcher made, closed after the suite (whether or not it got as far as using them). */
const fakes: FakeLauncher[] = [];

/** A launcher stand-in on a pod's socket, owned by the launcher's uid as a real one is. */
async function fakeLauncher(socketPath: string, behaviour: Behaviour, owner = QEMU_UID): Promise<FakeLauncher> {
  const fake: FakeLauncher = { connections: 0, closedByHandler: 0, server: net.createServer() };
  fakes.push(fake);
  fake.server.on('connection', (socket) => {
    fake.connections += 1;
    socket.on('error', () => undefined);
    socket.on('close', () => (fake.closedByHandler += 1));
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString();
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        behaviour(socket, JSON.parse(line) as { id: unknown; command: string });
      }
    });
  });
  await new Promise<void>((resolve) => fake.server.listen(socketPath, resolve));
  chownSync(socketPath, owner, owner);
  return fake;
}

const send = (socket: net.Socket, message: unknown) => socket.write(`${typeof message === 'string' ? message : JSON.stringify(message)}\n`);

describe('a node handler among hostile launchers', () => {
  let pods: PodsDir;
  let real: LauncherRun;
  const problems: unknown[] = [];
  const onProblem = (error: unknown) => problems.push(error);
  const logLines: string[] = [];

  beforeAll(() => {
    process.on('uncaughtException', onProblem);
    process.on('unhandledRejection', onProblem);
    pods = makePodsDir();
  });

  afterAll(async () => {
    process.off('uncaughtException', onProblem);
    process.off('unhandledRejection', onProblem);
    for (const fake of fakes) fake.server.close();
    await real?.stop();
    pods?.remove();
  });

  it('keeps reporting the real VM while every other launcher on the node misbehaves', async () => {
    // The real VM: a real launcher process with a real QEMU guest, uid 107.
    const realDir = pods.privateDir('pod-real');
    real = await startLauncher(testVmi('real'), { runDir: realDir });
    const realSocket = path.join(realDir, 'launcher.sock');

    // garbage: answers subscribe correctly, but wraps it in lines that are no protocol at all.
    const garbage = await fakeLauncher(path.join(pods.privateDir('pod-garbage'), 'launcher.sock'), (socket, request) => {
      for (const line of ['not json', '\u0000\u00ff\u00fe binary', '[1,2,3]', 'null', '42', '{"id":"x"}', '{"event":42}', `${'['.repeat(100_000)}${']'.repeat(100_000)}`, '{"__proto__":{"polluted":true},"event":{}}']) send(socket, line);
      send(socket, { id: request.id, ok: true, result: status('garbage') });
      for (let i = 0; i < 5000; i += 1) send(socket, `garbage line ${i}`);
    });
    // oversized: a valid subscribe answer, then one line that never ends.
    const oversized = await fakeLauncher(path.join(pods.privateDir('pod-oversized'), 'launcher.sock'), (socket, request) => {
      send(socket, { id: request.id, ok: true, result: status('oversized') });
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let sent = 0;
      const more = () => {
        while (sent <= 2 * LAUNCHER_MAX_LINE_BYTES && !socket.destroyed) {
          sent += chunk.length;
          if (!socket.write(chunk)) return void socket.once('drain', more);
        }
      };
      more();
    });
    // wrong types: well-formed JSON events whose fields have the wrong types or values.
    const wrongTypes = await fakeLauncher(path.join(pods.privateDir('pod-wrongtypes'), 'launcher.sock'), (socket, request) => {
      send(socket, { id: request.id, ok: true, result: status('wrongtypes', 'Paused') });
      const at = new Date().toISOString();
      const events = [
        { type: 'status', at, status: { ...status('wrongtypes'), phase: 'Exploded' } },
        { type: 'status', at, status: { ...status('wrongtypes'), guestInfo: { agentConnected: 'yes', interfaces: [] } } },
        { type: 'status', at, status: { ...status('wrongtypes'), conditions: 'all good' } },
        { type: 'status', at, status: { ...status('wrongtypes'), qemuPid: -1 } },
        { type: 'status', at, status: { ...status('wrongtypes'), error: { step: 'format-disk', message: 1, qemuStderr: 'x' } } },
        { type: 'status', at, status: null },
        { type: 'error', at, status: status('wrongtypes') },
        { type: 'self-destruct', at, status: status('wrongtypes') },
        { type: 'status', at: 5, status: status('wrongtypes') },
      ];
      for (const event of events) send(socket, { event });
      send(socket, { id: 999, ok: true, result: 'an answer to nothing' });
      send(socket, { id: request.id, ok: 'maybe' });
    });
    // wrong answer types: the subscribe answer itself is not a DomainStatus.
    await fakeLauncher(path.join(pods.privateDir('pod-badanswer'), 'launcher.sock'), (socket, request) => {
      send(socket, { id: request.id, ok: true, result: { ...status('badanswer'), phase: 17, volumes: 'none' } });
    });
    // impostor: a socket of its own, answering as the real VM.
    await fakeLauncher(path.join(pods.privateDir('pod-impostor'), 'launcher.sock'), (socket, request) => {
      send(socket, { id: request.id, ok: true, result: status('real') });
    });
    // not the launcher's: a socket owned by another uid (root here).
    const notOwned = await fakeLauncher(path.join(pods.privateDir('pod-rootowned'), 'launcher.sock'), (socket, request) => send(socket, { id: request.id, ok: true, result: status('rootowned') }), 0);
    // bloated: a valid status as large as a line may be, all of it guest data and reasons.
    const big = (length: number) => 'x'.repeat(length);
    const bloatedStatus: DomainStatus = {
      ...status('bloated'),
      accelerator: { accel: 'tcg', reason: big(350_000) },
      guestInfo: {
        agentConnected: true,
        os: { name: big(40_000), prettyName: big(40_000), version: big(40_000), kernelRelease: big(40_000) },
        interfaces: Array.from({ length: 300 }, (_, i) => ({ interfaceName: `eth${i}${big(100)}`, mac: big(100), ipAddress: big(100), ipAddresses: Array.from({ length: 10 }, () => big(60)) })),
      },
    };
    expect(JSON.stringify(bloatedStatus).length).toBeGreaterThan(LAUNCHER_MAX_LINE_BYTES * 0.75);
    expect(JSON.stringify(bloatedStatus).length).toBeLessThan(LAUNCHER_MAX_LINE_BYTES - 100);
    const bloated = await fakeLauncher(path.join(pods.privateDir('pod-bloated'), 'launcher.sock'), (socket, request) => send(socket, { id: request.id, ok: true, result: bloatedStatus }));

    // Links into the real VM's pod, planted in other pods' directories.
    symlinkSync(realSocket, path.join(pods.privateDir('pod-symlink'), 'launcher.sock'));
    const emptyDirs = path.join(pods.path, 'pod-dirlink', 'volumes', 'kubernetes.io~empty-dir');
    mkdirSync(emptyDirs, { recursive: true });
    symlinkSync(realDir, path.join(emptyDirs, 'private'));
    symlinkSync(path.join(pods.path, 'pod-real'), path.join(pods.path, 'pod-uidlink'));
    // A hard link to a launcher's socket under another name.
    const linked = await fakeLauncher(path.join(pods.privateDir('pod-linked'), 'launcher.sock'), (socket, request) => send(socket, { id: request.id, ok: true, result: status('hardlink') }));
    linkSync(path.join(pods.privateDir('pod-linked'), 'launcher.sock'), path.join(pods.privateDir('pod-hardlink'), 'launcher.sock'));
    // Not sockets at all.
    writeFileSync(path.join(pods.privateDir('pod-file'), 'launcher.sock'), '{"id":1,"ok":true}\n');
    chownSync(path.join(pods.privateDir('pod-file'), 'launcher.sock'), QEMU_UID, QEMU_UID);
    execFileSync('mkfifo', [path.join(pods.privateDir('pod-fifo'), 'launcher.sock')]);

    const logs = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logLines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    const domains = new DomainStateCache();
    const connections = new LauncherConnections({ dial: launcherDialer(), watch: watchLauncherSocketDirectory, domains, podsDir: pods.path, log: pino({ level: 'info' }, logs) });
    const pairs: [string, string][] = [
      ['real', 'pod-real'],
      ['garbage', 'pod-garbage'],
      ['oversized', 'pod-oversized'],
      ['wrongtypes', 'pod-wrongtypes'],
      ['badanswer', 'pod-badanswer'],
      ['bloated', 'pod-bloated'],
      ['impostor', 'pod-impostor'],
      ['rootowned', 'pod-rootowned'],
      ['symlink', 'pod-symlink'],
      ['dirlink', 'pod-dirlink'],
      ['uidlink', 'pod-uidlink'],
      ['hardlink', 'pod-hardlink'],
      ['file', 'pod-file'],
      ['fifo', 'pod-fifo'],
      ['escape', '../pod-real'],
    ];
    try {
      for (const [name, podUid] of pairs) connections.ensure(keyOf(name), podUid);
      const realKey = keyOf('real');
      await eventually(() => `the real launcher's session (${connections.lastError(realKey)})`, 15_000, () => connections.session(realKey, 'pod-real') !== undefined);
      void connections.session(realKey, 'pod-real')?.start();
      await eventually(() => `Running (${JSON.stringify(domains.get(realKey))})`, 90_000, () => domains.get(realKey)?.phase === 'Running');
      await real.waitForSerial(/KUBEVM-COUNT 1\b/, 60_000);

      const lastError = (name: string) => connections.lastError(keyOf(name)) ?? '';
      const refused = (name: string, why: RegExp) => eventually(() => `${name} refused with ${why} (last error: ${lastError(name)})`, 15_000, () => why.test(lastError(name)));
      // Links and look-alikes are never followed, so nothing reaches the real VM's launcher.
      await refused('symlink', /refusing launcher socket .*pod-symlink.*: it is a symbolic link/);
      await refused('dirlink', /pod-dirlink\/volumes\/kubernetes.io~empty-dir\/private is a symbolic link or not a directory/);
      await refused('uidlink', /pod-uidlink is a symbolic link or not a directory/);
      await refused('hardlink', /it has 2 names \(a hard link\)/);
      expect(linked.connections).toBe(0);
      await refused('file', /it is not a socket/);
      await refused('fifo', /it is not a socket/);
      await refused('rootowned', /it is owned by uid 0, not by the launcher's uid 107/);
      await refused('escape', /pod uid "..\/pod-real" is not a uid/);
      expect(notOwned.connections).toBe(0);
      // A launcher that answers for another VMI is dropped after it says so.
      await refused('impostor', /the launcher serves VMI launcher-test\/real, not launcher-test\/impostor/);
      expect(domains.get(keyOf('impostor'))).toBeUndefined();
      // An answer of the wrong shape fails the dial; it is retried, never believed.
      await refused('badanswer', /launcher subscribe: an invalid answer: result\.phase/);
      expect(domains.get(keyOf('badanswer'))).toBeUndefined();
      // An endless line closes that one connection (the handler redials, and is cut off again).
      await refused('oversized', /the launcher sent a line of more than \d+ bytes/);
      await eventually('the oversized connection closed', 15_000, () => oversized.closedByHandler >= 1);
      // Garbage is dropped line by line; the connection and the state it carries are kept.
      await eventually('the garbage launcher’s valid state', 15_000, () => domains.get(keyOf('garbage'))?.phase === 'Running');
      expect(garbage.closedByHandler).toBe(0);
      expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
      // Events with wrong types change nothing: the state is the subscribe answer's (Paused).
      await eventually('the wrong-types launcher’s valid state', 15_000, () => domains.get(keyOf('wrongtypes'))?.phase === 'Paused');
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(domains.get(keyOf('wrongtypes'))).toMatchObject({ phase: 'Paused', agentConnected: false });
      expect(wrongTypes.closedByHandler).toBe(0);
      expect(logLines.filter((line) => line.includes('dropped an invalid message')).length).toBeGreaterThanOrEqual(9);
      // 5000 garbage lines are a handful of log lines, not 5000.
      expect(logLines.filter((line) => line.includes('dropped an invalid message') && line.includes('garbage line')).length).toBeLessThanOrEqual(15);

      // A status as large as a line may be is taken, and only a bounded part of it kept: what the
      // VMI's status would get stays small (LAUNCHER_STATUS_LIMITS).
      await eventually('the bloated launcher’s state', 15_000, () => domains.get(keyOf('bloated'))?.phase === 'Running');
      const bloatedState = domains.get(keyOf('bloated'));
      expect(bloatedState?.interfaces).toHaveLength(LAUNCHER_STATUS_LIMITS.interfaces);
      expect(Buffer.byteLength(JSON.stringify(bloatedState))).toBeLessThan(64 * 1024);
      expect(bloated.closedByHandler).toBe(0);

      // Meanwhile the real VM is reported as it is and still obeys.
      const realSession = connections.session(realKey, 'pod-real');
      expect(domains.get(realKey)).toMatchObject({ podUid: 'pod-real', phase: 'Running', accelerator: 'tcg' });
      await realSession?.pause();
      await eventually('the real VM Paused', 15_000, () => domains.get(realKey)?.phase === 'Paused');
      await realSession?.unpause();
      await eventually('the real VM Running again', 15_000, () => domains.get(realKey)?.phase === 'Running');
      const before = lastCount(real.serialLog());
      await real.waitForSerial(new RegExp(`KUBEVM-COUNT ${before + 2}\\b`), 20_000);
      expect(connections.session(realKey, 'pod-real')).toBe(realSession);
      expect(problems).toEqual([]);
      // And an operator sees it in the metrics.
      const dropped: Record<string, number> = {};
      for (const v of (await launcherMessagesDropped.get()).values) dropped[String(v.labels.reason)] = v.value;
      expect(dropped).toMatchObject({ 'not-json': expect.any(Number), schema: expect.any(Number), unmatched: expect.any(Number), 'invalid-result': expect.any(Number), oversized: expect.any(Number) });
      expect((await launcherSocketsRefused.get()).values[0]?.value).toBeGreaterThanOrEqual(8);
    } finally {
      connections.closeAll();
    }
  });
});
