// The node handlers' migration roles with REAL launchers (QEMU, TCG) on two "nodes" of this
// machine, each with its own launcher connections as node-handler/main.ts makes them, and the real
// migration channel between them (the receiver serves with the node handlers' streams server
// name and accepts only the node handlers' migration client name, as the operator issues them):
// the target's MigrationTarget starts its
// launcher incoming and answers the VMI's migrationState with its address; the source's
// MigrationSource sees that address, migrates, and reports start and end in migrationState. The
// guest's serial counter continues on the target. A deleted migration is aborted: the source runs on.
// A handler restarted mid-migration cancels the migration it no longer carries and records it failed.
// Both handlers see the pods directory through a read-only bind mount, as in their pods.
// What is not here: the API server (the VMI's status is carried between the two roles by the test,
// as the informer would carry it; test/e2e/migration.test.ts is the whole path on two nodes).
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { pino } from 'pino';
import type { VirtualMachineInstanceMigrationState } from '../../runtime/api/index.js';
import { NODE_HANDLER_STREAM_SERVER_NAME } from '../../runtime/contracts/streams.js';
import { NODE_HANDLER_MIGRATION_CLIENT_NAME } from '../../runtime/contracts/migration-channel.js';
import { DomainStateCache } from '../../node-handler/domain-state.js';
import { launcherDialer, watchLauncherSocketDirectory } from '../../node-handler/launcher-client.js';
import { LauncherConnections } from '../../node-handler/launcher-connections.js';
import { MigrationReceiver } from '../../node-handler/migration-channel.js';
import { MigrationSource } from '../../node-handler/migration-source.js';
import type { MigrationObject } from '../../node-handler/migration-source.js';
import { MigrationTarget } from '../../node-handler/migration-target.js';
import type { VirtualMachineInstance } from '../../node-handler/vmi-handler.js';
import type { ResourceClient } from '../../runtime/kube.js';
import { eventually } from '../support/eventually.js';
import { countsOn, lastCount, makePodsDir, startLauncher, testVmi } from './harness.js';
import type { LauncherRun, PodsDir } from './harness.js';
import { migrationCertificates } from './migration-tls.js';

jest.setTimeout(300_000);

const log = pino({ level: 'silent' });
// Every node handler has the same two: the streams server certificate and the migration client certificate.
const certs = migrationCertificates([NODE_HANDLER_STREAM_SERVER_NAME, NODE_HANDLER_MIGRATION_CLIENT_NAME]);
const serverTls = certs[NODE_HANDLER_STREAM_SERVER_NAME];
const clientTls = certs[NODE_HANDLER_MIGRATION_CLIENT_NAME];
// Short uids: the launcher's socket paths must fit sun_path.
const SOURCE_POD = 'pod-src01';
const TARGET_POD = 'pod-dst01';

interface Nodes {
  key: string;
  source: LauncherRun;
  target: LauncherRun;
  sourceConnections: LauncherConnections;
  sourceRole: MigrationSource;
  targetRole: MigrationTarget;
  /** The VMI as both roles see it; the test writes each role's migrationState into it. */
  vmi: VirtualMachineInstance;
  migration: MigrationObject;
  /** Whether the migration object still exists (the source's informer). */
  exists: boolean;
  enqueued: string[];
}

describe('node handler migration roles (real launchers, real channel)', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function twoNodes(name: string): Promise<Nodes> {
    const pods: PodsDir = makePodsDir();
    cleanups.push(() => pods.remove());
    const key = `launcher-test/${name}`;
    const source = await startLauncher(testVmi(name), { runDir: pods.privateDir(SOURCE_POD) });
    cleanups.push(() => source.stop());
    const target = await startLauncher(testVmi(name), { runDir: pods.privateDir(TARGET_POD) });
    cleanups.push(() => target.stop());
    // The pods directory as the node handlers see it (read-only, SECURITY.md).
    const handlerPods = pods.readOnlyView();
    const connections = () => {
      const c = new LauncherConnections({ dial: launcherDialer(), watch: watchLauncherSocketDirectory, domains: new DomainStateCache(), podsDir: handlerPods });
      cleanups.push(() => c.closeAll());
      return c;
    };
    const sourceConnections = connections();
    const targetConnections = connections();

    // The source runs the guest, as its node handler had it started.
    sourceConnections.ensure(key, SOURCE_POD);
    await eventually('the source session', 15_000, () => sourceConnections.session(key, SOURCE_POD) !== undefined);
    await sourceConnections.session(key, SOURCE_POD)?.start();
    await source.waitForSerial(/KUBEVM-COUNT 2\b/, 90_000);

    const receiver = new MigrationReceiver({ tls: serverTls, log, host: '127.0.0.1', peerNames: [NODE_HANDLER_MIGRATION_CLIENT_NAME] });
    const address = await receiver.listen();
    cleanups.push(() => receiver.close());
    const uid = `uid-mig-${name}`;
    const migration: MigrationObject = {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstanceMigration',
      metadata: { name: `mig-${name}`, namespace: 'launcher-test', uid },
      spec: { vmiName: name },
      status: {
        phase: 'PreparingTarget',
        // 1 MiB/s: slow enough to delete the migration in the middle; the test of a whole
        // migration lifts it.
        migrationState: { migrationUid: uid, sourceNode: 'node-a', targetNode: 'node-b', targetPod: `virt-launcher-${name}-mig`, migrationConfiguration: { bandwidthPerMigration: '0', completionTimeoutPerGiB: 800 } },
      },
    };
    const seen = { exists: true, enqueued: [] as string[] };
    const sourceRole = new MigrationSource({
      nodeName: 'node-a',
      podsDir: handlerPods,
      tls: () => clientTls,
      findMigration: (u) => (seen.exists && u === uid ? migration : undefined),
      enqueue: (k) => seen.enqueued.push(k),
      log,
    });
    const targetRole = new MigrationTarget({
      nodeName: 'node-b',
      podIp: '127.0.0.1',
      port: address.port,
      podsDir: handlerPods,
      receiver,
      // Only prepare() is used here: reconcile reads the VMI from the API server.
      migrations: { get: () => undefined },
      vmis: undefined as unknown as ResourceClient<VirtualMachineInstance>,
      connections: targetConnections,
      log,
    });
    const vmi: VirtualMachineInstance = {
      ...(testVmi(name) as unknown as VirtualMachineInstance),
      status: { phase: 'Running', nodeName: 'node-a', activePods: { [SOURCE_POD]: 'node-a', [TARGET_POD]: 'node-b' } },
    };
    const nodes: Nodes = {
      key,
      source,
      target,
      sourceConnections,
      sourceRole,
      targetRole,
      vmi,
      migration,
      get exists() {
        return seen.exists;
      },
      set exists(value: boolean) {
        seen.exists = value;
      },
      enqueued: seen.enqueued,
    };
    cleanups.push(() => nodes.targetRole.close(`launcher-test/mig-${name}`));
    return nodes;
  }

  /** The target's pass until it answers with its address, written into the VMI as its handler would. */
  async function prepareTarget(n: Nodes): Promise<VirtualMachineInstanceMigrationState> {
    const state = await eventually('the target to be prepared', 30_000, async () => n.targetRole.prepare(`launcher-test/mig-${n.migration.spec.vmiName}`, n.migration, n.vmi, log));
    n.vmi.status = { ...n.vmi.status, migrationState: state };
    return state;
  }

  /** One pass of the source's role, its result written into the VMI as its handler would. */
  async function sourcePass(n: Nodes): Promise<VirtualMachineInstanceMigrationState | undefined> {
    const state = await n.sourceRole.migrationState(n.key, n.vmi, SOURCE_POD, n.sourceConnections.session(n.key, SOURCE_POD));
    n.vmi.status = { ...n.vmi.status, ...(state ? { migrationState: state } : {}) };
    return state;
  }

  async function untilEnded(n: Nodes): Promise<VirtualMachineInstanceMigrationState> {
    return eventually('the source to report the end of the migration', 240_000, async () => {
      const state = await sourcePass(n);
      return state?.endTimestamp ? state : undefined;
    });
  }

  /** The migration started at 1 MiB/s, slow enough to act in the middle, with bytes on their way. */
  async function migratingSlowly(n: Nodes): Promise<void> {
    n.migration.status = { ...n.migration.status, migrationState: { ...n.migration.status?.migrationState, migrationConfiguration: { bandwidthPerMigration: '1Mi' } } };
    await prepareTarget(n);
    await sourcePass(n);
    await eventually('bytes on their way', 60_000, async () => ((await n.source.client.call('queryMigration')).transferredBytes > 0 ? true : undefined));
  }

  it('the target answers with its address, the source migrates and reports it; the counter continues on the target', async () => {
    const n = await twoNodes('nhm-ok');
    // Nothing happens on the source before the target has answered.
    expect(await sourcePass(n)).toBeUndefined();
    const prepared = await prepareTarget(n);
    expect(prepared).toMatchObject({ migrationUid: 'uid-mig-nhm-ok', sourceNode: 'node-a', targetNode: 'node-b', targetNodeAddress: '127.0.0.1', targetNodeDomainDetected: true });
    expect(await n.target.client.call('status')).toMatchObject({ phase: 'Paused', reason: 'MigrationTarget' });
    // Preparing again changes nothing (level-triggered: the next pass of the same migration).
    expect(await n.targetRole.prepare('launcher-test/mig-nhm-ok', n.migration, n.vmi, log)).toEqual(prepared);

    const started = await sourcePass(n);
    expect(started).toMatchObject({ startTimestamp: expect.any(String), mode: 'PreCopy' });
    expect(started?.endTimestamp).toBeUndefined();
    // The handler knows it migrates the VMI before the VMI's status says so (its informer may lag
    // behind that write): the handler tells the launcher nothing meanwhile.
    expect(n.sourceRole.migrating(n.key)).toBe(true);
    const ended = await untilEnded(n);
    expect(ended).toMatchObject({ completed: true, startTimestamp: started?.startTimestamp });
    expect(ended.failed).toBeUndefined();
    expect(n.enqueued).toContain(n.key);

    const atMigration = lastCount(n.source.serialLog());
    await n.target.waitForSerial(new RegExp(`KUBEVM-COUNT ${atMigration + 2}\\b`), 30_000);
    expect(n.target.serialLog()).not.toMatch(/KUBEVM-READY|KUBEVM-COUNT 0\b/);
    // The source's copy stays paused: nothing may resume it.
    expect(await n.source.client.call('status')).toMatchObject({ phase: 'Paused', qemuStatus: 'postmigrate' });
    // Recorded: further passes say the same, and the handler's own record of it is gone.
    expect(await sourcePass(n)).toEqual(ended);
    expect(n.sourceRole.migrating(n.key)).toBe(false);
  });

  it('a migration deleted while it runs is aborted: Failed with abortStatus Succeeded, the source runs on', async () => {
    const n = await twoNodes('nhm-cancel');
    await migratingSlowly(n);
    n.exists = false;
    const aborting = await sourcePass(n);
    expect(aborting).toMatchObject({ abortRequested: true, abortStatus: 'Aborting' });
    const ended = await untilEnded(n);
    expect(ended).toMatchObject({ failed: true, abortRequested: true, abortStatus: 'Succeeded', failureReason: 'the migration was cancelled on request' });
    expect(ended.completed).toBeUndefined();
    expect(await n.source.client.call('status')).toMatchObject({ phase: 'Running', qemuStatus: 'running' });
    await countsOn(n.source);
  });

  it('a handler restarted mid-migration cancels the migration it no longer carries: Failed at once, the source runs on', async () => {
    const n = await twoNodes('nhm-restart');
    await migratingSlowly(n);
    // The restarted handler: a new MigrationSource that knows nothing of the migration in flight.
    const restarted = new MigrationSource({ nodeName: 'node-a', podsDir: '/nonexistent', tls: () => clientTls, findMigration: () => n.migration, enqueue: () => undefined, log });
    const state = await restarted.migrationState(n.key, n.vmi, SOURCE_POD, n.sourceConnections.session(n.key, SOURCE_POD));
    expect(state).toMatchObject({ failed: true, endTimestamp: expect.any(String), failureReason: expect.stringMatching(/^the source's node handler restarted during the migration, which cut its stream \(QEMU: cancell/) });
    expect(state?.completed).toBeUndefined();
    // QEMU's migration was cancelled, not left to run on: the source guest runs and counts on.
    await eventually('the source running again', 30_000, async () => {
      const status = await n.source.client.call('status');
      return status.phase === 'Running' && status.qemuStatus === 'running' && (await n.source.client.call('queryMigration')).status === 'cancelled' ? true : undefined;
    });
    await countsOn(n.source);
  });

  it('a node without the migration certificate reports the migration failed at once, and the guest stays', async () => {
    const n = await twoNodes('nhm-nocert');
    await prepareTarget(n);
    const noCert = new MigrationSource({ nodeName: 'node-a', podsDir: '/nonexistent', tls: () => undefined, findMigration: () => n.migration, enqueue: () => undefined, log });
    const state = await noCert.migrationState(n.key, n.vmi, SOURCE_POD, n.sourceConnections.session(n.key, SOURCE_POD));
    expect(state).toMatchObject({ failed: true, failureReason: expect.stringMatching(/^node node-a has no migration certificate/) });
    expect(await n.source.client.call('status')).toMatchObject({ phase: 'Running' });
  });
});
