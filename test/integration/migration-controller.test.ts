// The VirtualMachineInstanceMigration controller on the real API server and scheduler: the target
// launcher pod must not land on the source node, and the VMI's nodeSelector pins it to that node,
// so the target stays unschedulable on a cluster of any size (make test's has two nodes); the
// migration waits in Scheduling with the scheduler's message, then fails at its timeout and its
// target pod is removed. A VMI with a ReadWriteOnce PVC is refused at once with
// KubeVirt's DisksNotLiveMigratable message and no target pod. A matching MigrationPolicy is
// recorded. VMIs are given a Running status by hand (no launcher runs): what is tested is the
// controller against the API server and the scheduler.
// Needs the local cluster (make cluster-up), no installed kubevm; fails, never skips.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import { Controller } from '../../runtime/controller.js';
import { ControllerExpectations } from '../../runtime/expectations.js';
import { Informer, ownerUidIndex } from '../../runtime/informer.js';
import type { KubeClient, KubeObject, ResourceDescriptor } from '../../runtime/kube.js';
import { coreResources } from '../../runtime/kube.js';
import { silentLogger } from '../../runtime/logging.js';
import type { EventRecorder } from '../../runtime/events.js';
import type { KubeVirtCR, VirtualMachineInstance } from '../../controller/api.js';
import { kubevirtResource } from '../../controller/manager.js';
import { vmiResource, persistentVolumeClaims } from '../../controller/vmi/controller.js';
import { MigrationController, TARGET_POD_WAITING, migrationOfTargetPod, migrationPolicyResource, migrationResource, migrationsOfVmi, observeTargetPods } from '../../controller/migration/controller.js';
import { MIGRATION_JOB_LABEL, migrationUidIndex } from '../../controller/migration/target-pod.js';
import type { Migration } from '../../controller/migration/target-pod.js';
import { applyKubevmCrds, clusterClient, createTestNamespace, requireCluster, useLocalClusterKubeconfig } from './runtime-support.js';
import { deleteNamespaceWithoutController } from './kubevm-namespace.js';
import { eventually } from '../support/eventually.js';

jest.setTimeout(120_000);
useLocalClusterKubeconfig();

type Pod = V1Pod & KubeObject;
const nodes: ResourceDescriptor = { group: '', version: 'v1', resource: 'nodes', kind: 'Node', namespaced: false };
const UNSCHEDULABLE_TIMEOUT_SECONDS = 6;
const POLICY = `kubevm-it-migration-${process.pid}`;

let client: KubeClient;
let namespace: string;
let nodeName: string;
let nodeCount: number;
let controller: Controller;
let informers: Array<Informer<KubeObject>>;
const recorded: Array<{ reason: string; message: string }> = [];

function vmi(name: string, volumes: VirtualMachineInstance['spec']['volumes'] = []): VirtualMachineInstance {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace, labels: { 'kubevm.io/migration-test': name } },
    // Only the source node: the target pod, kept off it, fits nowhere.
    spec: { domain: { memory: { guest: '128Mi' }, devices: {} }, volumes, nodeSelector: { 'kubernetes.io/hostname': nodeName } },
  };
}

/** A VMI that looks Running on this node, as the node handler would report it. */
async function runningVmi(name: string, volumes: VirtualMachineInstance['spec']['volumes'] = []): Promise<void> {
  const vmis = client.resource<VirtualMachineInstance>(vmiResource);
  await vmis.create(vmi(name, volumes));
  await vmis.patchStatus(name, namespace, { status: { phase: 'Running', nodeName } }, 'merge');
}

async function migrate(name: string, vmiName: string): Promise<void> {
  await client.resource<Migration>(migrationResource).create({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstanceMigration', metadata: { name, namespace }, spec: { vmiName } });
}

const migrationNow = (name: string) => client.resource<Migration>(migrationResource).get(name, namespace);
const targetPods = async (migrationUid: string) => (await client.resource<Pod>(coreResources.pods).list({ namespace, labelSelector: `${MIGRATION_JOB_LABEL}=${migrationUid}` })).items;

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

  const common = { client, log: silentLogger, namespace };
  const migrations = new Informer<Migration>({ ...common, descriptor: migrationResource });
  const vmis = new Informer<VirtualMachineInstance>({ ...common, descriptor: vmiResource });
  const pods = new Informer<Pod>({ ...common, descriptor: coreResources.pods, labelSelector: 'kubevirt.io=virt-launcher', indexers: { ownerUid: ownerUidIndex, migrationUid: migrationUidIndex } });
  const kubevirts = new Informer<KubeVirtCR>({ ...common, descriptor: kubevirtResource });
  informers = [migrations, vmis, pods, kubevirts] as Array<Informer<KubeObject>>;
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
    timeouts: { unschedulableSeconds: UNSCHEDULABLE_TIMEOUT_SECONDS },
  });
  observeTargetPods(pods, expectations);
  controller = new Controller({ name: 'migration-test', kind: 'VirtualMachineInstanceMigration', reconcile: migrationController.reconcile, log: silentLogger })
    .watch(migrations)
    .watch(pods, migrationOfTargetPod)
    .watch(vmis, migrationsOfVmi(migrations));
  for (const informer of informers) informer.start();
  await controller.start();
});

afterAll(async () => {
  await controller?.stop({ deadlineMs: 2000 });
  await Promise.all((informers ?? []).map((informer) => informer.stop()));
  await client.resource<KubeObject>(migrationPolicyResource).delete(POLICY).catch(() => undefined);
  // CRDs applied seconds ago may still answer 429 (storage is (re)initializing) to the cleanup's lists.
  if (namespace) await eventually('the test namespace cleaned up', 60_000, async () => (await deleteNamespaceWithoutController(client, namespace), true));
});

describe('VirtualMachineInstanceMigration controller (target pod unschedulable)', () => {
  it('keeps the target pod off the source node: Scheduling with the scheduler\'s reason, then Failed at the timeout, target removed', async () => {
    await runningVmi('unschedulable');
    await migrate('mig-unschedulable', 'unschedulable');
    const waiting = await eventually('the migration to wait in Scheduling with the scheduler\'s reason', 30_000, async () => {
      const m = await migrationNow('mig-unschedulable');
      const condition = m.status?.conditions?.find((c) => c.type === TARGET_POD_WAITING);
      return m.status?.phase === 'Scheduling' && condition?.reason === 'Unschedulable' ? { m, condition } : undefined;
    });
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
  });

  it('refuses a VMI with a ReadWriteOnce PVC: Failed with DisksNotLiveMigratable, no target pod', async () => {
    await client.resource<KubeObject>(persistentVolumeClaims).create({
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

  it('cancels a migration that is deleted: its target pod (owned by the VMI) is removed, the VMI untouched', async () => {
    await runningVmi('cancelled');
    await migrate('mig-cancelled', 'cancelled');
    const scheduling = await eventually('the migration to create its target pod', 30_000, async () => {
      const m = await migrationNow('mig-cancelled');
      return m.status?.phase === 'Scheduling' && (await targetPods(m.metadata?.uid ?? '')).length === 1 ? m : undefined;
    });
    const uid = scheduling.metadata?.uid ?? '';
    const [target] = await targetPods(uid);
    expect(target?.metadata?.ownerReferences).toEqual([expect.objectContaining({ kind: 'VirtualMachineInstance', name: 'cancelled', controller: true })]);
    await client.resource<Migration>(migrationResource).delete('mig-cancelled', namespace);
    await eventually('the deleted migration\'s target pod to be removed', 30_000, async () => (await targetPods(uid)).every((pod) => pod.metadata?.deletionTimestamp !== undefined));
    const after = await client.resource<VirtualMachineInstance>(vmiResource).get('cancelled', namespace);
    expect(after.status).toMatchObject({ phase: 'Running', nodeName });
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
