// The VirtualMachineInstanceMigration controller on the real API server and scheduler: the target
// launcher pod must not land on the source node, and the VMI's nodeSelector pins it to that node,
// so the target stays unschedulable on a cluster of any size (make test's has two nodes); the
// migration waits in Scheduling with the scheduler's message, then fails at its timeout and its
// target pod is removed. A VMI with a ReadWriteOnce PVC is refused at once with
// KubeVirt's DisksNotLiveMigratable message and no target pod. A matching MigrationPolicy is
// recorded. In a second namespace with its own KubeVirt CR (the controller's informers are scoped
// to it), the parallel limits: a migration over parallelOutboundMigrationsPerNode or
// parallelMigrationsPerCluster stays Pending with no target pod and starts when one in flight is
// cancelled or the limit is raised; KubeVirt's phase metrics count them. VMIs are given a Running
// status by hand (no launcher runs): what is tested is the controller against the API server and
// the scheduler. A migration whose VMI the controller's cache has not yet seen Running waits for it
// (the cache is confirmed against the API server before the migration fails).
// Needs the local cluster (make cluster-up), no installed kubevm; fails, never skips.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import { Controller } from '../../runtime/controller.js';
import type { ReconcileContext } from '../../runtime/controller.js';
import { ControllerExpectations } from '../../runtime/expectations.js';
import { Informer, ownerUidIndex } from '../../runtime/informer.js';
import type { KubeClient, KubeObject, ResourceDescriptor } from '../../runtime/kube.js';
import { coreResources } from '../../runtime/kube.js';
import { silentLogger } from '../../runtime/logging.js';
import type { EventRecorder } from '../../runtime/events.js';
import type { KubeVirtCR, VirtualMachineInstance } from '../../controller/api.js';
import { kubevirtResource } from '../../controller/manager.js';
import { vmiResource } from '../../controller/vmi/controller.js';
import { MigrationController, TARGET_POD_WAITING, migrationOfTargetPod, migrationPolicyResource, migrationResource, migrationsOfVmi, observeTargetPods, pendingMigrations, pendingMigrationsWhenOneMoves } from '../../controller/migration/controller.js';
import { MIGRATION_JOB_LABEL, migrationUidIndex } from '../../controller/migration/target-pod.js';
import { reportMigrationPhases } from '../../controller/migration/metrics.js';
import { registry } from '../../runtime/metrics.js';
import type { Migration } from '../../controller/migration/target-pod.js';
import { applyKubevmCrds, clusterClient, createTestNamespace, requireCluster, useLocalClusterKubeconfig } from './runtime-support.js';
import { deleteNamespaceWithoutController } from './kubevm-namespace.js';
import { eventually } from '../support/eventually.js';

jest.setTimeout(120_000);
useLocalClusterKubeconfig();

type Pod = V1Pod & KubeObject;
const nodes: ResourceDescriptor = { group: '', version: 'v1', resource: 'nodes', kind: 'Node', namespaced: false };
// Counted from the target pod's creation (as KubeVirt does): long enough that the scheduler's
// verdict comes well before it even on a loaded machine, so the waiting state is written at all.
const UNSCHEDULABLE_TIMEOUT_SECONDS = 15;
const POLICY = `kubevm-it-migration-${process.pid}`;

let client: KubeClient;
let namespace: string;
let nodeName: string;
let nodeCount: number;
let running: RunningController | undefined;
const recorded: Array<{ reason: string; message: string }> = [];

/** Where a test VMI runs: its namespace, the node its status names, and the node its nodeSelector pins it (and its target pod) to. */
interface Placement {
  namespace: string;
  nodeName: string;
  pinnedTo: string;
}
const here = (): Placement => ({ namespace, nodeName, pinnedTo: nodeName });

function vmi(name: string, volumes: VirtualMachineInstance['spec']['volumes'] = [], at: Placement = here()): VirtualMachineInstance {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: at.namespace, labels: { 'kubevm.io/migration-test': name } },
    // Only the source node (or no node at all): the target pod, kept off it, fits nowhere.
    spec: { domain: { memory: { guest: '128Mi' }, devices: {} }, volumes, nodeSelector: { 'kubernetes.io/hostname': at.pinnedTo } },
  };
}

/** A VMI that looks Running on its node, as the node handler would report it. */
async function runningVmi(name: string, volumes: VirtualMachineInstance['spec']['volumes'] = [], at: Placement = here()): Promise<void> {
  const vmis = client.resource<VirtualMachineInstance>(vmiResource);
  await vmis.create(vmi(name, volumes, at));
  await vmis.patchStatus(name, at.namespace, { status: { phase: 'Running', nodeName: at.nodeName } }, 'merge');
}

async function migrate(name: string, vmiName: string, ns = namespace): Promise<void> {
  await client.resource<Migration>(migrationResource).create({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstanceMigration', metadata: { name, namespace: ns }, spec: { vmiName } });
}

const migrationNow = (name: string, ns = namespace) => client.resource<Migration>(migrationResource).get(name, ns);
const targetPods = async (migrationUid: string, ns = namespace) => (await client.resource<Pod>(coreResources.pods).list({ namespace: ns, labelSelector: `${MIGRATION_JOB_LABEL}=${migrationUid}` })).items;

beforeAll(async () => {
  client = clusterClient();
  await requireCluster(client);
  await applyKubevmCrds(client, 'kubevm-migration-test');
  namespace = await createTestNamespace(client, 'kubevm-migration');
  const nodeList = await client.resource<KubeObject>(nodes).list();
  nodeCount = nodeList.items.length;
  nodeName = nodeList.items[0]?.metadata?.name ?? '';
  await client.resource<KubeObject>(migrationPolicyResource).create({
    apiVersion: 'migrations.kubevirt.io/v1alpha1',
    kind: 'MigrationPolicy',
    metadata: { name: POLICY },
    spec: { selectors: { virtualMachineInstanceSelector: { 'kubevm.io/migration-test': 'unschedulable' } }, allowAutoConverge: true },
  } as KubeObject);

  running = await startMigrationController(namespace, { unschedulableSeconds: UNSCHEDULABLE_TIMEOUT_SECONDS });
});

interface RunningController {
  controller: Controller;
  informers: Array<Informer<KubeObject>>;
  migrations: Informer<Migration>;
}

/** The migration controller in-process, its informers scoped to one namespace (its KubeVirt CR too). */
async function startMigrationController(ns: string, timeouts: { unschedulableSeconds: number }): Promise<RunningController> {
  const common = { client, log: silentLogger, namespace: ns };
  const migrations = new Informer<Migration>({ ...common, descriptor: migrationResource });
  const vmis = new Informer<VirtualMachineInstance>({ ...common, descriptor: vmiResource });
  const pods = new Informer<Pod>({ ...common, descriptor: coreResources.pods, labelSelector: 'kubevirt.io=virt-launcher', indexers: { ownerUid: ownerUidIndex, migrationUid: migrationUidIndex } });
  const kubevirts = new Informer<KubeVirtCR>({ ...common, descriptor: kubevirtResource });
  const informers = [migrations, vmis, pods, kubevirts] as Array<Informer<KubeObject>>;
  const expectations = new ControllerExpectations();
  const events: EventRecorder = { record: (_object, _type, reason, message) => void recorded.push({ reason, message }) };
  const migrationController = new MigrationController({
    client,
    migrations,
    vmis,
    pods,
    kubevirts,
    expectations,
    events,
    launcherConfig: () => ({ launcherImage: 'kubevm-it/never-runs:1', launcherImagePullPolicy: 'IfNotPresent', useEmulation: true }),
    timeouts,
  });
  observeTargetPods(pods, expectations);
  // As controller/manager.ts wires it, with two workers.
  const controller = new Controller({ name: `migration-test-${ns}`, kind: 'VirtualMachineInstanceMigration', reconcile: migrationController.reconcile, log: silentLogger, workers: 2 })
    .watch(migrations)
    .watch(migrations, pendingMigrationsWhenOneMoves(migrations))
    .watch(kubevirts, pendingMigrations(migrations))
    .watch(pods, migrationOfTargetPod)
    .watch(vmis, migrationsOfVmi(migrations));
  for (const informer of informers) informer.start();
  await controller.start();
  return { controller, informers, migrations };
}

async function stopMigrationController(r: RunningController | undefined): Promise<void> {
  await r?.controller.stop({ deadlineMs: 2000 });
  await Promise.all((r?.informers ?? []).map((informer) => informer.stop()));
}

afterAll(async () => {
  await stopMigrationController(running);
  await client.resource<KubeObject>(migrationPolicyResource).delete(POLICY).catch(() => undefined);
  // CRDs applied seconds ago may still answer 429 (storage is (re)initializing) to the cleanup's lists.
  if (namespace) await eventually('the test namespace cleaned up', 60_000, async () => (await deleteNamespaceWithoutController(client, namespace), true));
});

describe('VirtualMachineInstanceMigration controller (target pod unschedulable)', () => {
  it('keeps the target pod off the source node: Scheduling with the scheduler\'s reason, then Failed at the timeout, target removed', async () => {
    // Every version of the migration the controller writes, from the informer's watch: the waiting
    // state is seen even if the poll below would fall between it and the next write.
    const versions: Migration[] = [];
    const record = (m: Migration) => void (m.metadata?.name === 'mig-unschedulable' && versions.push(m));
    const stopRecording = running?.migrations.addEventHandler({ onAdd: record, onUpdate: (_old, m) => record(m) });
    try {
      await runningVmi('unschedulable');
      await migrate('mig-unschedulable', 'unschedulable');
      const waitingIn = (m: Migration) => {
        const condition = m.status?.conditions?.find((c) => c.type === TARGET_POD_WAITING);
        return m.status?.phase === 'Scheduling' && condition?.reason === 'Unschedulable' ? { m, condition } : undefined;
      };
      const waiting = await eventually('the migration to wait in Scheduling with the scheduler\'s reason', 30_000, () => versions.map(waitingIn).find((w) => w !== undefined));
      expect(waiting.condition.message).toMatch(new RegExp(`cannot be scheduled: 0/${nodeCount} nodes are available`));
      const uid = waiting.m.metadata?.uid ?? '';
      const [target] = await targetPods(uid);
      expect(target?.spec?.nodeName).toBeUndefined();
      expect(target?.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms).toEqual([{ matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: [nodeName] }] }]);
      expect(waiting.m.status?.migrationState).toMatchObject({ migrationUid: uid, sourceNode: nodeName, targetPod: target?.metadata?.name, migrationPolicyName: POLICY });
      // What the source's node handler will migrate with: the cluster's defaults and the policy's override.
      expect(waiting.m.status?.migrationState?.migrationConfiguration).toMatchObject({ allowAutoConverge: true, allowPostCopy: false, completionTimeoutPerGiB: 150, bandwidthPerMigration: '0' });

      const failed = await eventually('the migration to fail at its timeout', 30_000, async () => {
        const m = await migrationNow('mig-unschedulable');
        return m.status?.phase === 'Failed' ? m : undefined;
      });
      expect(failed.status?.migrationState?.failed).toBe(true);
      expect(failed.status?.migrationState?.endTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      expect(failed.status?.migrationState?.failureReason).toMatch(new RegExp(`cannot be scheduled: 0/${nodeCount} nodes are available.*\\(for ${UNSCHEDULABLE_TIMEOUT_SECONDS} s\\)$`));
      expect(failed.status?.conditions?.find((c) => c.type === TARGET_POD_WAITING)).toBeUndefined();
      expect(failed.status?.phaseTransitionTimestamps?.map((t) => t.phase)).toEqual(['Scheduling', 'Failed']);
      await eventually('the target pod to be removed', 30_000, async () => (await targetPods(uid)).length === 0);
      expect(recorded.some((e) => e.reason === 'FailedMigration' && /cannot be scheduled/.test(e.message))).toBe(true);
    } finally {
      stopRecording?.();
    }
  });

  it('refuses a VMI with a ReadWriteOnce PVC: Failed with DisksNotLiveMigratable, no target pod', async () => {
    await client.resource<KubeObject>(coreResources.persistentVolumeClaims).create({
      metadata: { name: 'rwo-disk', namespace },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, storageClassName: 'kubevm-it-none' },
    } as KubeObject);
    await runningVmi('rwo', [{ name: 'data', persistentVolumeClaim: { claimName: 'rwo-disk' } }]);
    await migrate('mig-rwo', 'rwo');
    const failed = await eventually('the migration to be refused', 30_000, async () => {
      const m = await migrationNow('mig-rwo');
      return m.status?.phase === 'Failed' ? m : undefined;
    });
    expect(failed.status?.migrationState?.failureReason).toBe(
      'DisksNotLiveMigratable: cannot migrate VMI: PVC rwo-disk is not shared, live migration requires that all PVCs must be shared (using ReadWriteMany access mode)',
    );
    expect(failed.status?.phaseTransitionTimestamps?.map((t) => t.phase)).toEqual(['Failed']);
    expect(await targetPods(failed.metadata?.uid ?? '')).toHaveLength(0);
  });

  it('fails a migration of a VMI that does not exist', async () => {
    await migrate('mig-nothing', 'no-such-vmi');
    const failed = await eventually('the migration to fail', 30_000, async () => {
      const m = await migrationNow('mig-nothing');
      return m.status?.phase === 'Failed' ? m : undefined;
    });
    expect(failed.status?.migrationState?.failureReason).toBe('VirtualMachineInstance no-such-vmi does not exist');
  });
});

describe('VirtualMachineInstanceMigration controller (a migration deleted while its target pod waits)', () => {
  // A namespace and a controller of its own, whose unschedulable timeout (10 minutes) cannot end
  // the migration first: on a loaded machine the 15 s of the suite's controller could pass before
  // the deletion, and the target pod would then be removed for the timeout, not the cancellation.
  let ns: string;
  let own: RunningController | undefined;

  beforeAll(async () => {
    ns = await createTestNamespace(client, 'kubevm-migration-cancel');
    own = await startMigrationController(ns, { unschedulableSeconds: 600 });
  });

  afterAll(async () => {
    await stopMigrationController(own);
    if (ns) await eventually('the cancel namespace cleaned up', 60_000, async () => (await deleteNamespaceWithoutController(client, ns), true));
  });

  it('cancels a migration that is deleted: its target pod (owned by the VMI) is removed, the VMI untouched', async () => {
    const at: Placement = { namespace: ns, nodeName, pinnedTo: nodeName };
    await runningVmi('cancelled', [], at);
    await migrate('mig-cancelled', 'cancelled', ns);
    let last = '';
    const scheduling = await eventually(() => `the migration to create its target pod (last seen: ${last})`, 60_000, async () => {
      const m = await migrationNow('mig-cancelled', ns);
      const pods = await targetPods(m.metadata?.uid ?? '', ns);
      last = `phase ${m.status?.phase ?? 'none'}${m.status?.migrationState?.failureReason ? ` (${m.status.migrationState.failureReason})` : ''}, ${pods.length} target pod(s)`;
      return m.status?.phase === 'Scheduling' && pods.length === 1 ? m : undefined;
    });
    const uid = scheduling.metadata?.uid ?? '';
    const [target] = await targetPods(uid, ns);
    expect(target?.metadata?.deletionTimestamp).toBeUndefined();
    expect(target?.metadata?.ownerReferences).toEqual([expect.objectContaining({ kind: 'VirtualMachineInstance', name: 'cancelled', controller: true })]);
    await client.resource<Migration>(migrationResource).delete('mig-cancelled', ns);
    await eventually('the deleted migration\'s target pod to be removed', 30_000, async () => (await targetPods(uid, ns)).every((pod) => pod.metadata?.deletionTimestamp !== undefined));
    const after = await client.resource<VirtualMachineInstance>(vmiResource).get('cancelled', ns);
    expect(after.status).toMatchObject({ phase: 'Running', nodeName });
  });
});

describe('VirtualMachineInstanceMigration controller (a VMI cache behind the API server)', () => {
  // A migration created a moment after its VMI was created or started may be reconciled before
  // the controller's VMI cache has seen that. Made certain here: the controller's VMI informer is
  // stopped after its first list, so its cache holds the VMI as it was then.
  let ns: string;
  const started: Array<Informer<KubeObject>> = [];
  const ctx = (name: string): ReconcileContext => ({ log: silentLogger, reconcileId: name, namespace: ns, name, signal: new AbortController().signal });

  beforeAll(async () => {
    ns = await createTestNamespace(client, 'kubevm-migration-stale');
  });

  afterAll(async () => {
    await Promise.all(started.map((informer) => informer.stop()));
    if (ns) await eventually('the stale-cache namespace cleaned up', 60_000, async () => (await deleteNamespaceWithoutController(client, ns), true));
  });

  async function synced<T extends KubeObject>(informer: Informer<T>): Promise<Informer<T>> {
    started.push(informer as unknown as Informer<KubeObject>);
    informer.start();
    expect(await informer.waitForSync()).toBe(true);
    return informer;
  }

  async function controllerWith(vmis: Informer<VirtualMachineInstance>): Promise<{ controller: MigrationController; migrations: Informer<Migration> }> {
    const common = { client, log: silentLogger, namespace: ns };
    const migrations = await synced(new Informer<Migration>({ ...common, descriptor: migrationResource }));
    const pods = await synced(new Informer<Pod>({ ...common, descriptor: coreResources.pods, labelSelector: 'kubevirt.io=virt-launcher', indexers: { ownerUid: ownerUidIndex, migrationUid: migrationUidIndex } }));
    const kubevirts = await synced(new Informer<KubeVirtCR>({ ...common, descriptor: kubevirtResource }));
    const controller = new MigrationController({
      client,
      migrations,
      vmis,
      pods,
      kubevirts,
      expectations: new ControllerExpectations(),
      events: { record: () => undefined },
      launcherConfig: () => ({ launcherImage: 'kubevm-it/never-runs:1', launcherImagePullPolicy: 'IfNotPresent', useEmulation: true }),
      timeouts: { unschedulableSeconds: 600 },
    });
    return { controller, migrations };
  }

  const vmiInformer = () => new Informer<VirtualMachineInstance>({ client, log: silentLogger, namespace: ns, descriptor: vmiResource });

  it('waits, not fails, while its cache lags the VMI; fails only when the API server agrees the VMI cannot migrate', async () => {
    const at: Placement = { namespace: ns, nodeName, pinnedTo: nodeName };
    // Cached before it started: created, no phase yet.
    await client.resource<VirtualMachineInstance>(vmiResource).create(vmi('starting', [], at));
    const frozen = await synced(vmiInformer());
    await frozen.stop();
    expect(frozen.get(`${ns}/starting`)?.status?.phase).toBeUndefined();
    await client.resource<VirtualMachineInstance>(vmiResource).patchStatus('starting', ns, { status: { phase: 'Running', nodeName } }, 'merge');
    // Not cached at all: created after the cache's list.
    await runningVmi('created-late', [], at);

    const stale = await controllerWith(frozen);
    for (const name of ['starting', 'created-late']) {
      await migrate(`mig-${name}`, name, ns);
      await eventually(`the migration informer to hold mig-${name}`, 10_000, () => stale.migrations.get(`${ns}/mig-${name}`));
      const result = await stale.controller.reconcile(`${ns}/mig-${name}`, ctx(`mig-${name}`));
      expect(result).toEqual({ requeueAfter: expect.any(Number) });
      const m = await migrationNow(`mig-${name}`, ns);
      expect(m.status?.phase).toBeUndefined();
      expect(await targetPods(m.metadata?.uid ?? '', ns)).toHaveLength(0);
    }

    // Once the cache has caught up, the same migrations go on.
    const current = await controllerWith(await synced(vmiInformer()));
    for (const name of ['starting', 'created-late']) {
      await current.controller.reconcile(`${ns}/mig-${name}`, ctx(`mig-${name}`));
      const m = await migrationNow(`mig-${name}`, ns);
      expect(m.status?.phase).toBe('Scheduling');
      expect(await targetPods(m.metadata?.uid ?? '', ns)).toHaveLength(1);
    }

    // A cache that is current is believed: a VMI that is not Running fails its migration at once.
    await client.resource<VirtualMachineInstance>(vmiResource).create(vmi('stopped', [], at));
    await client.resource<VirtualMachineInstance>(vmiResource).patchStatus('stopped', ns, { status: { phase: 'Succeeded', nodeName } }, 'merge');
    const upToDate = await controllerWith(await synced(vmiInformer()));
    await migrate('mig-stopped', 'stopped', ns);
    await eventually('the migration informer to hold mig-stopped', 10_000, () => upToDate.migrations.get(`${ns}/mig-stopped`));
    await upToDate.controller.reconcile(`${ns}/mig-stopped`, ctx('mig-stopped'));
    const failed = await migrationNow('mig-stopped', ns);
    expect(failed.status?.phase).toBe('Failed');
    expect(failed.status?.migrationState?.failureReason).toBe('VirtualMachineInstance stopped is Succeeded; only a Running VMI is migrated');
  });
});

describe('VirtualMachineInstanceMigration controller (parallel migration limits)', () => {
  const NODE_A = 'kubevm-it-node-a';
  const NODE_B = 'kubevm-it-node-b';
  let ns: string;
  let limited: RunningController | undefined;
  let unreport: (() => void) | undefined;
  // Pinned to no node: every target pod stays unschedulable, so every migration that started stays
  // in flight (Scheduling) for the whole test (its unschedulable timeout is 10 minutes here).
  const at = (node: string): Placement => ({ namespace: ns, nodeName: node, pinnedTo: 'kubevm-it-nowhere' });
  const kubevirts = () => client.resource<KubeVirtCR>(kubevirtResource);
  const waitingReason = (m: Migration) => m.status?.conditions?.find((c) => c.type === TARGET_POD_WAITING);
  const gauge = async (name: string) => (await registry.getSingleMetric(name)?.get())?.values[0]?.value;

  beforeAll(async () => {
    ns = await createTestNamespace(client, 'kubevm-migration-limits');
    await kubevirts().create({
      apiVersion: 'kubevirt.io/v1',
      kind: 'KubeVirt',
      metadata: { name: 'kubevirt', namespace: ns },
      spec: { configuration: { migrations: { parallelMigrationsPerCluster: 3, parallelOutboundMigrationsPerNode: 2 } } },
    });
    limited = await startMigrationController(ns, { unschedulableSeconds: 600 });
    unreport = reportMigrationPhases(limited.migrations);
  });

  afterAll(async () => {
    unreport?.();
    await stopMigrationController(limited);
    if (ns) await eventually('the limits namespace cleaned up', 60_000, async () => (await deleteNamespaceWithoutController(client, ns), true));
  });

  it('keeps a migration over parallelOutboundMigrationsPerNode or parallelMigrationsPerCluster Pending without a target pod, and starts it when a slot frees or the limit rises', async () => {
    for (const [name, node] of [['a1', NODE_A], ['a2', NODE_A], ['a3', NODE_A], ['b1', NODE_B], ['b2', NODE_B]] as const) await runningVmi(name, [], at(node));
    const inPhase = (name: string, phase: string) => eventually(`${name} to be ${phase}`, 30_000, async () => {
      const m = await migrationNow(name, ns);
      return m.status?.phase === phase ? m : undefined;
    });
    const waitingFor = (name: string, reason: string) => eventually(`${name} to wait Pending for ${reason}`, 30_000, async () => {
      const m = await migrationNow(name, ns);
      return m.status?.phase === 'Pending' && waitingReason(m)?.reason === reason ? m : undefined;
    });

    // Two out of node A; the third waits for the node's limit.
    for (const name of ['a1', 'a2', 'a3']) await migrate(`mig-${name}`, name, ns);
    const a3 = await waitingFor('mig-a3', 'ParallelOutboundMigrationsPerNodeLimit');
    expect(waitingReason(a3)?.message).toBe(
      `waiting for a free slot: 2 migrations are in flight out of node ${NODE_A}, the limit (KubeVirt CR spec.configuration.migrations.parallelOutboundMigrationsPerNode) is 2`,
    );
    await inPhase('mig-a1', 'Scheduling');
    await inPhase('mig-a2', 'Scheduling');
    expect(await targetPods(a3.metadata?.uid ?? '', ns)).toHaveLength(0);

    // Node B takes the cluster's third slot; its next migration waits for the cluster's limit.
    await migrate('mig-b1', 'b1', ns);
    await inPhase('mig-b1', 'Scheduling');
    await migrate('mig-b2', 'b2', ns);
    const b2 = await waitingFor('mig-b2', 'ParallelMigrationsPerClusterLimit');
    expect(waitingReason(b2)?.message).toBe('waiting for a free slot: 3 migrations are in flight in the cluster, the limit (KubeVirt CR spec.configuration.migrations.parallelMigrationsPerCluster) is 3');
    expect(await targetPods(b2.metadata?.uid ?? '', ns)).toHaveLength(0);
    // KubeVirt's phase metrics, from the controller's cache.
    await eventually('the phase metrics to count 2 Pending and 3 Scheduling', 10_000, async () => (await gauge('kubevirt_vmi_migrations_in_pending_phase')) === 2 && (await gauge('kubevirt_vmi_migrations_in_scheduling_phase')) === 3);

    // A migration in flight is cancelled: its slot goes to one waiting migration, and only one.
    await client.resource<Migration>(migrationResource).delete('mig-a1', ns);
    const started = await eventually('one waiting migration to start', 30_000, async () => {
      const phases = await Promise.all(['mig-a3', 'mig-b2'].map(async (name) => ({ name, phase: (await migrationNow(name, ns)).status?.phase })));
      const moved = phases.filter((p) => p.phase === 'Scheduling');
      return moved.length > 0 ? moved : undefined;
    });
    expect(started).toHaveLength(1);
    const other = started[0]?.name === 'mig-a3' ? 'mig-b2' : 'mig-a3';
    await waitingFor(other, 'ParallelMigrationsPerClusterLimit');
    const live = (await client.resource<Migration>(migrationResource).list({ namespace: ns })).items.filter((m) => m.status?.phase === 'Scheduling');
    expect(live).toHaveLength(3);

    // The limit rises in the KubeVirt CR: the last one starts without anything else changing.
    await kubevirts().patch('kubevirt', ns, { spec: { configuration: { migrations: { parallelMigrationsPerCluster: 5 } } } }, 'merge');
    const last = await inPhase(other, 'Scheduling');
    expect(last.status?.phaseTransitionTimestamps?.map((t) => t.phase)).toEqual(['Pending', 'Scheduling']);
    expect(waitingReason(last)?.reason).not.toMatch(/^Parallel/);
    await eventually('the phase metrics to count 0 Pending and 4 Scheduling', 10_000, async () => (await gauge('kubevirt_vmi_migrations_in_pending_phase')) === 0 && (await gauge('kubevirt_vmi_migrations_in_scheduling_phase')) === 4);
  });
});
