// Live migration between two real launchers (QEMU, TCG) over the node handlers' migration channel
// (TCP with mutual TLS), driven by the node handler's migration endpoints: the target's side starts
// its launcher incoming and expects the migration (node-handler/migration-endpoints.ts
// prepareIncoming), the source's side connects its launcher's migration-out.sock to the target
// node and tells the launcher to migrate (migrateOut), which relays QEMU's stream over it. The
// node handler's side sees the pods directory through a read-only bind mount, as in its pod
// (SECURITY.md): it only ever connects to the launchers' sockets, and a write there would fail.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { jest } from '@jest/globals';
import { pino } from 'pino';
import type { DomainEvent, MigrateArgs, MigrationProgress, MigrationResult } from '../../runtime/contracts/launcher-protocol.js';
import { MigrationReceiver } from '../../node-handler/migration-channel.js';
import { migrateOut, prepareIncoming } from '../../node-handler/migration-endpoints.js';
import { migrationDataProcessed, migrationDataRemaining, migrationDataTotal } from '../../node-handler/migration-metrics.js';
import { QEMU_UID, countsOn, lastCount, makePodsDir, startLauncher, testVmi, waitForEvent } from './harness.js';
import type { LauncherRun, LauncherRunOptions, PodsDir } from './harness.js';
import type { LauncherVmi } from '../../launcher/vmi.js';
import { migrationCertificates } from './migration-tls.js';

jest.setTimeout(300_000);

const log = pino({ level: 'silent' });
const tlsFor = migrationCertificates(['node-a', 'node-b']);

interface Pair {
  source: LauncherRun;
  target: LauncherRun;
  /** The source's migration events, in order. */
  progress: MigrationProgress[];
  /** Migrates source → target through the node handlers' channel (as the source's handler does). */
  migrate: (args: MigrateArgs) => Promise<MigrationResult>;
  /** Another launcher of the VMI in a pod of its own, not started. */
  another: (podUid: string) => Promise<LauncherRun>;
  /** Prepares `to` as the target of migration `migrationUid` and migrates `from` there. */
  hop: (from: LauncherRun, to: LauncherRun, migrationUid: string, args: MigrateArgs) => Promise<MigrationResult>;
}

/**
 * A guest with a containerDisk (a blank raw base under its overlay) and an emptyDisk, counting on
 * both (kubevm.diskcount: each second it reads the first block, then writes its count there).
 */
function diskCountingGuest(name: string): { vmi: LauncherVmi; prepare: LauncherRunOptions['prepare'] } {
  const vmi = testVmi(name, 'kubevm.diskcount=vda,vdb', {
    disks: [{ name: 'base', disk: {} }, { name: 'scratch', disk: {} }],
    volumes: [{ name: 'base', containerDisk: { image: 'example.org/blank:1' } }, { name: 'scratch', emptyDisk: { capacity: '16Mi' } }],
  });
  const prepare: LauncherRunOptions['prepare'] = ({ containerDiskDir }) => {
    const diskDir = path.join(containerDiskDir, 'base', 'disk');
    mkdirSync(diskDir, { recursive: true });
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', path.join(diskDir, 'disk.img'), '32M']);
  };
  return { vmi, prepare };
}

describe('launcher live migration over the migration channel (real QEMU, TCG)', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** Two launchers of one VMI on two "nodes", the source running and counting, the target incoming, the channel between them. */
  async function pair(name: string, incoming: { postCopy?: boolean } = {}, guest: { vmi?: LauncherVmi; prepare?: LauncherRunOptions['prepare'] } = {}): Promise<Pair> {
    const pods: PodsDir = makePodsDir();
    cleanups.push(() => pods.remove());
    const vmi = guest.vmi ?? testVmi(name);
    const prepare = guest.prepare ? { prepare: guest.prepare } : {};
    const source = await startLauncher(vmi, { runDir: pods.privateDir('src'), ...prepare });
    cleanups.push(() => source.stop());
    const target = await startLauncher(vmi, { runDir: pods.privateDir('dst'), ...prepare });
    cleanups.push(() => target.stop());
    expect((await source.client.call('start')).phase).toBe('Running');

    const receiver = new MigrationReceiver({ tls: tlsFor['node-b'], log, host: '127.0.0.1' });
    const address = await receiver.listen();
    cleanups.push(() => receiver.close());
    const migrationUid = `mig-${name}`;
    // The pods directory as the node handler sees it.
    const handlerPods = pods.readOnlyView();
    const seenByHandler = (dir: string) => path.join(handlerPods, path.relative(pods.path, dir));
    const { status } = await prepareIncoming(target.client, receiver, { migrationUid, podsDir: handlerPods, runDir: seenByHandler(target.runDir), ownerUid: QEMU_UID, ...incoming });
    expect(status).toMatchObject({ phase: 'Paused', reason: 'MigrationTarget' });
    const migrateFrom = (from: LauncherRun, uid: string, args: MigrateArgs) =>
      migrateOut(from.client, { migrationUid: uid, podsDir: handlerPods, runDir: seenByHandler(from.runDir), tls: tlsFor['node-a'], target: { ...address, serverName: 'node-b' }, args, log, ownerUid: QEMU_UID });
    const migrate = (args: MigrateArgs) => migrateFrom(source, migrationUid, args);
    const another = async (podUid: string) => {
      const run = await startLauncher(vmi, { runDir: pods.privateDir(podUid), ...prepare });
      cleanups.push(() => run.stop());
      return run;
    };
    const hop = async (from: LauncherRun, to: LauncherRun, uid: string, args: MigrateArgs) => {
      const prepared = await prepareIncoming(to.client, receiver, { migrationUid: uid, podsDir: handlerPods, runDir: seenByHandler(to.runDir), ownerUid: QEMU_UID, ...incoming });
      expect(prepared.status).toMatchObject({ phase: 'Paused', reason: 'MigrationTarget' });
      return migrateFrom(from, uid, args);
    };
    await source.waitForSerial(/KUBEVM-COUNT 2\b/, 60_000);
    const progress: MigrationProgress[] = [];
    await source.client.subscribe();
    source.client.on('event', (e: DomainEvent) => {
      if (e.type === 'migration') progress.push(e.progress);
    });
    return { source, target, progress, migrate, another, hop };
  }

  /** Resolves once the source reports bytes on their way (the migration is under way). */
  function underWay(p: Pair): Promise<DomainEvent> {
    return waitForEvent(p.source.client, (e) => e.type === 'migration' && e.progress.status === 'active' && e.progress.transferredBytes > 0, 60_000);
  }

  /** The source guest runs on, unpaused, and keeps counting. */
  async function sourceRunsOn(p: Pair): Promise<void> {
    const st = await p.source.client.call('status');
    expect(st).toMatchObject({ phase: 'Running', qemuStatus: 'running' });
    await countsOn(p.source);
  }

  it('moves a running guest: its counter continues on the target without a reset, with the policy applied', async () => {
    const p = await pair('mig-ok');
    const args: MigrateArgs = { bandwidthMiBps: 512, maxDowntimeMs: 300, autoConverge: true, completionTimeoutSeconds: 120 };
    // The target reports Running only once the migration completes, which may take up to its
    // completion timeout on a loaded machine: the wait covers that, not a fixed minute.
    const targetRunning = p.target.client.subscribe().then(() => waitForEvent(p.target.client, (e) => e.status.phase === 'Running', (args.completionTimeoutSeconds ?? 0) * 1000 + 60_000));
    const result = await p.migrate(args);
    expect(result).toMatchObject({ outcome: 'Succeeded', postCopy: false, progress: { status: 'completed' } });
    expect(result.reason).toBeUndefined();
    // QEMU took the policy: bandwidth in bytes/s, the downtime limit, auto-converge.
    expect(result.parameters).toMatchObject({ 'max-bandwidth': 512 * 1024 * 1024, 'downtime-limit': 300 });
    expect(result.capabilities).toMatchObject({ 'auto-converge': true, 'postcopy-ram': false, events: true });
    expect(result.progress.transferredBytes).toBeGreaterThan(1024 * 1024);
    expect(result.progress.totalTimeMs).toEqual(expect.any(Number));
    expect(result.progress.downtimeMs).toBeGreaterThanOrEqual(0);
    // The launcher relayed QEMU's stream (at least the guest's RAM went through it) and says what it cost.
    expect(result.relay?.bytesOut).toBeGreaterThan(result.progress.transferredBytes - 1);
    expect(result.relay?.launcherCpuMs).toEqual(expect.any(Number));
    // Torn down: QEMU's private socket is gone, the launcher's migration-out.sock listens again.
    expect(readdirSync(p.source.runDir)).not.toContain('migration-qemu.sock');
    expect(readdirSync(p.source.runDir)).toContain('migration-out.sock');
    // The last progress event is the completed one.
    expect(p.progress.at(-1)).toMatchObject({ status: 'completed' });
    // KubeVirt's metrics for the VMI, as the source's node handler exports them.
    const metric = async (g: typeof migrationDataProcessed) => (await g.get()).values.find((v) => v.labels.namespace === 'launcher-test' && v.labels.name === 'mig-ok')?.value;
    expect(await metric(migrationDataProcessed)).toBe(result.progress.transferredBytes);
    expect(await metric(migrationDataTotal)).toBe(result.progress.totalBytes);
    expect(await metric(migrationDataRemaining)).toBe(0);

    await targetRunning;
    const atMigration = lastCount(p.source.serialLog());
    const next = await p.target.waitForSerial(/KUBEVM-COUNT (\d+)/, 20_000);
    expect(Number(next[1])).toBeGreaterThanOrEqual(atMigration);
    await p.target.waitForSerial(new RegExp(`KUBEVM-COUNT ${atMigration + 2}\\b`), 20_000);
    // No boot on the target: it printed counts only, never the guest's start.
    expect(p.target.serialLog()).not.toMatch(/KUBEVM-READY|KUBEVM-COUNT 0\b/);
    expect(await p.source.client.call('status')).toMatchObject({ phase: 'Paused', qemuStatus: 'postmigrate' });
    await expect(p.source.client.call('migrateCancel')).rejects.toThrow(/no outgoing migration is running/);

    // The source's copy never runs again: an unpause is refused, and its shutdown (the pod's
    // SIGTERM once the migration is done) ends QEMU without resuming the guest for the power button.
    const resumed: string[] = [];
    p.source.client.on('event', (e: DomainEvent) => {
      if (e.type === 'qemu-event' && e.qemuEvent.event === 'RESUME') resumed.push(e.at);
    });
    await expect(p.source.client.call('unpause')).rejects.toThrow(/the guest cannot be unpaused: it migrated to another node and runs there/);
    expect((await p.source.client.call('shutdown', { gracePeriodSeconds: 30 })).graceful).toBe(true);
    expect((await p.source.exited).code).toBe(0);
    expect(resumed).toEqual([]);
    await countsOn(p.target);
  });

  it('a migrate with no node handler connection waiting fails clearly, and the guest runs on', async () => {
    const p = await pair('mig-nohandler');
    await expect(p.source.client.call('migrate', {})).rejects.toThrow(/no connection of the node handler waits on .*migration-out\.sock: the source's node handler connects there/);
    await sourceRunsOn(p);
    // The launcher still takes a migration afterwards.
    const migrating = p.migrate({ bandwidthMiBps: 1 });
    await underWay(p);
    await p.source.client.call('migrateCancel');
    expect((await migrating).outcome).toBe('Aborted');
    expect(readdirSync(p.source.runDir)).not.toContain('migration-qemu.sock');
  });

  it('copies the pod-local disks (a containerDisk overlay, an emptyDisk), each over its own channel stream: every write made before and during the migration is read back on the target', async () => {
    // The guest reads each disk's first block, then writes its counter there, every second:
    // "prev" must always be the count before, on the source and after the switch on the target,
    // whose own disks start blank (a fresh overlay over the same base, a fresh emptyDisk).
    const p = await pair('mig-disks', {}, diskCountingGuest('mig-disks'));
    await p.source.waitForSerial(/KUBEVM-DISKCOUNT vdb prev=\d+ now=3\b/, 60_000);
    const result = await p.migrate({ bandwidthMiBps: 512, completionTimeoutSeconds: 120 });
    expect(result).toMatchObject({ outcome: 'Succeeded', progress: { status: 'completed' } });
    expect(result.capabilities).toMatchObject({ 'pause-before-switchover': true });
    const atMigration = lastCount(p.source.serialLog());
    await p.target.waitForSerial(new RegExp(`KUBEVM-DISKCOUNT vdb prev=\\d+ now=${atMigration + 2}\\b`), 30_000);
    const lines = (serial: string) => [...serial.matchAll(/KUBEVM-DISKCOUNT (vd[ab]) prev=(\w+) now=(\d+)/g)].map((m) => ({ disk: m[1], prev: m[2], now: Number(m[3]) }));
    const onSource = lines(p.source.serialLog());
    const onTarget = lines(p.target.serialLog());
    expect(onTarget.length).toBeGreaterThanOrEqual(4);
    for (const line of [...onSource, ...onTarget]) expect(line).toEqual({ ...line, prev: line.now === 0 ? 'none' : String(line.now - 1) });
    // The target went on where the source stopped (a line cut in two by the switch is lost to
    // both logs, so the first whole one may be one further).
    const lastOnSource = Math.max(...onSource.filter((l) => l.disk === 'vdb').map((l) => l.now));
    expect(onTarget.every((l) => l.now > lastOnSource)).toBe(true);
    expect(onTarget.find((l) => l.disk === 'vdb')?.now).toBeLessThanOrEqual(lastOnSource + 2);
    expect(p.target.serialLog()).not.toMatch(/KUBEVM-READY/);
  });

  it('a guest that came in by a migration migrates on again, its disks with it', async () => {
    const p = await pair('mig-twice', {}, diskCountingGuest('mig-twice'));
    expect(await p.migrate({ completionTimeoutSeconds: 120 })).toMatchObject({ outcome: 'Succeeded' });
    const first = lastCount(p.source.serialLog());
    await p.target.waitForSerial(new RegExp(`KUBEVM-COUNT ${first + 2}\\b`), 30_000);
    // The target is the source now, to a third pod.
    const third = await p.another('dst2');
    const again = await p.hop(p.target, third, 'mig-twice-2', { completionTimeoutSeconds: 120 });
    expect({ outcome: again.outcome, reason: again.reason }).toEqual({ outcome: 'Succeeded', reason: undefined });
    const second = lastCount(p.target.serialLog());
    await third.waitForSerial(new RegExp(`KUBEVM-DISKCOUNT vdb prev=${second + 1} now=${second + 2}\\b`), 30_000);
    expect(third.serialLog()).not.toMatch(/KUBEVM-READY/);
  });

  it('a cancel leaves the source running, unpaused, and the answer Aborted', async () => {
    const p = await pair('mig-cancel');
    // 1 MiB/s: the guest's memory takes many seconds, time enough to cancel in the middle.
    const migrating = p.migrate({ bandwidthMiBps: 1 });
    await underWay(p);
    // Nothing resumes a guest while it migrates away (its switch-over stops it, and a resume then
    // would write memory the target never receives): neither an unpause nor a soft reboot.
    await expect(p.source.client.call('unpause')).rejects.toThrow(/the guest cannot be unpaused: it is migrating to another node/);
    await expect(p.source.client.call('softReboot')).rejects.toThrow(/the guest cannot be rebooted now: it is migrating to another node/);
    const atCancel = await p.source.client.call('migrateCancel');
    expect(['active', 'cancelling', 'cancelled']).toContain(atCancel.status);
    const result = await migrating;
    expect(result).toMatchObject({ outcome: 'Aborted', reason: 'the migration was cancelled on request', progress: { status: 'cancelled' } });
    await sourceRunsOn(p);
  });

  it('a shutdown during the migration cancels it first: the answer Aborted, then the guest powers off on the source', async () => {
    const p = await pair('mig-shutdown');
    const migrating = p.migrate({ bandwidthMiBps: 1 });
    await underWay(p);
    const shutdown = p.source.client.call('shutdown', { gracePeriodSeconds: 60 });
    expect(await migrating).toMatchObject({ outcome: 'Aborted', progress: { status: 'cancelled' } });
    expect((await shutdown).graceful).toBe(true);
    await p.source.exited;
    // The guest powered off on the power button (its last lines), not QEMU quitting under it.
    expect(p.source.serialLog()).toMatch(/KUBEVM-POWEROFF acpi power button/);
  });

  it('a target killed mid-migration leaves the source running and the answer Failed with a reason', async () => {
    const p = await pair('mig-kill');
    const migrating = p.migrate({ bandwidthMiBps: 1 });
    await underWay(p);
    if (p.target.proc.pid !== undefined) process.kill(-p.target.proc.pid, 'SIGKILL');
    const result = await migrating;
    expect(result.outcome).toBe('Failed');
    expect(result.reason).toMatch(/^the migration failed: /);
    expect(result.progress.status).toBe('failed');
    await sourceRunsOn(p);
  });

  it('a migration that cannot complete within its completion timeout is aborted, and the source runs on', async () => {
    const p = await pair('mig-slow');
    // 1 MiB/s against a 1 s completion timeout: it cannot finish in time.
    const result = await p.migrate({ bandwidthMiBps: 1, completionTimeoutSeconds: 1 });
    expect(result.outcome).toBe('Failed');
    expect(result.reason).toMatch(/did not complete within its completion timeout of 1 s/);
    await sourceRunsOn(p);
  });
});
