// Issue 14's "Nothing lost" on the two-node cluster, kubevm installed: a migration killed half-way
// leaves exactly one guest running. The guest counts on its serial console; a MigrationPolicy
// holds its migrations to 1 MiB/s, so the memory copy lasts many seconds (the guest's tens of MiB)
// and a kill lands while QEMU is copying. One VMI serves both tests, which run in order:
//   - the TARGET launcher pod is killed (deleted, no grace): the migration is Failed with a reason,
//     the target pod goes, and the guest runs on on its source, unpaused, counting on;
//   - the SOURCE node's node handler pod is killed (it carries the stream), then in a second
//     migration the TARGET node's (it receives it): each migration ends (Failed: the stream went
//     with the handler), and exactly one launcher pod of the VMI is left, on the node the VMI's
//     status names, its guest counting.
// Fails, never skips, without kubevm installed or with fewer than two nodes.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import type { KubeClient, KubeObject, ResourceDescriptor } from '../../runtime/kube.js';
import { coreResources } from '../../runtime/kube.js';
import { clusterClient, createTestNamespace, deleteNamespace, requireCluster } from '../integration/runtime-support.js';
import { eventually } from '../support/eventually.js';
import { requireKubevmController } from './kubevm-installed.js';
import { counterVmiSpec, lastCount, vmiResource, vmimResource } from './small-vm.js';

jest.setTimeout(600_000);

type Pod = V1Pod & KubeObject;
interface Vmi extends KubeObject {
  status?: {
    phase?: string;
    nodeName?: string;
    activePods?: Record<string, string>;
    conditions?: Array<{ type: string; status: string; reason?: string }>;
    migrationState?: { migrationUid?: string; sourceNode?: string; targetNode?: string; completed?: boolean; failed?: boolean; failureReason?: string; endTimestamp?: string };
  };
}
interface Migration extends KubeObject {
  spec: { vmiName: string };
  status?: { phase?: string; migrationState?: { targetPod?: string; targetNode?: string; sourceNode?: string; failed?: boolean; failureReason?: string; migrationPolicyName?: string; migrationConfiguration?: Record<string, unknown> } };
}

const migrationPolicies: ResourceDescriptor = { group: 'migrations.kubevirt.io', version: 'v1alpha1', resource: 'migrationpolicies', kind: 'MigrationPolicy', namespaced: false };
const nodes: ResourceDescriptor = { group: '', version: 'v1', resource: 'nodes', kind: 'Node', namespaced: false };
const VMI = 'slow-mover';
const LABEL = 'kubevm.io/e2e-migration-failures';
const POLICY = `kubevm-e2e-slow-migration-${process.pid}`;

let client: KubeClient;
let namespace: string;

const vmis = () => client.resource<Vmi>(vmiResource);
const migrations = () => client.resource<Migration>(vmimResource);
const pods = () => client.resource<Pod>(coreResources.pods);
const launcherPods = async (): Promise<Pod[]> => (await pods().list({ namespace, labelSelector: 'kubevirt.io=virt-launcher' })).items;

/** The running guest's launcher pod: the VMI's active pod on the VMI's node. */
async function sourcePod(): Promise<{ vmi: Vmi; pod: Pod }> {
  const vmi = await vmis().get(VMI, namespace);
  const pod = (await launcherPods()).find((p) => vmi.status?.activePods?.[p.metadata?.uid ?? ''] === vmi.status?.nodeName && p.spec?.nodeName === vmi.status?.nodeName);
  if (!pod) throw new Error(`no launcher pod of ${VMI} on ${vmi.status?.nodeName ?? 'no node'}`);
  return { vmi, pod };
}

/** Waits until the migration copies memory (phase Running) and returns it; it must not have ended yet. */
async function migrating(name: string): Promise<Migration> {
  await migrations().create({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstanceMigration', metadata: { name, namespace }, spec: { vmiName: VMI } });
  const m = await eventually(`migration ${name} Running`, 180_000, async () => {
    const found = await migrations().get(name, namespace);
    if (found.status?.phase === 'Succeeded' || found.status?.phase === 'Failed') throw new Error(`migration ${name} ended (${found.status.phase}: ${found.status.migrationState?.failureReason ?? ''}) before it could be killed half-way`);
    return found.status?.phase === 'Running' ? found : undefined;
  });
  // The policy holds it to 1 MiB/s: time enough to kill it half-way.
  expect(m.status?.migrationState).toMatchObject({ migrationPolicyName: POLICY, migrationConfiguration: expect.objectContaining({ bandwidthPerMigration: String(1024 * 1024) }) });
  return m;
}

async function ended(name: string): Promise<Migration> {
  return eventually(`migration ${name} to end`, 180_000, async () => {
    const m = await migrations().get(name, namespace);
    return m.status?.phase === 'Succeeded' || m.status?.phase === 'Failed' ? m : undefined;
  });
}

/** Kills (deletes without grace) the node handler pod on that node. */
async function killNodeHandler(node: string): Promise<void> {
  const handlers = await pods().list({ namespace: 'kubevirt', labelSelector: 'app.kubernetes.io/component=node-handler' });
  const handler = handlers.items.find((p) => p.spec?.nodeName === node && !p.metadata?.deletionTimestamp);
  if (!handler?.metadata?.name) throw new Error(`no node handler pod on node ${node}`);
  await pods().delete(handler.metadata.name, 'kubevirt', { gracePeriodSeconds: 0 });
}

/** Exactly one launcher pod of the VMI is left, on the VMI's node, and its guest counts on, unpaused. */
async function exactlyOneGuest(): Promise<{ vmi: Vmi; pod: Pod }> {
  const one = await eventually('exactly one launcher pod of the VMI', 180_000, async () => {
    const all = await launcherPods();
    const vmi = await vmis().get(VMI, namespace);
    const [pod] = all;
    if (pod && all.length === 1 && pod.spec?.nodeName === vmi.status?.nodeName && vmi.status?.migrationState?.endTimestamp !== undefined) return { vmi, pod };
    // What was seen, for the timeout's message.
    throw new Error(`launcher pods ${JSON.stringify(all.map((p) => `${p.metadata?.name}@${p.spec?.nodeName}:${p.status?.phase}${p.metadata?.deletionTimestamp ? ' (deleting)' : ''}`))}, VMI on ${vmi.status?.nodeName}, migrationState ${JSON.stringify(vmi.status?.migrationState)}`);
  });
  expect(one.vmi.status?.phase).toBe('Running');
  expect(one.vmi.status?.activePods).toEqual({ [one.pod.metadata?.uid ?? '']: one.vmi.status?.nodeName });
  const name = one.pod.metadata?.name ?? '';
  const from = await lastCount(client, namespace, name);
  await eventually('the guest counting on', 60_000, async () => (await lastCount(client, namespace, name)) >= from + 2);
  const vmi = await vmis().get(VMI, namespace);
  expect(vmi.status?.conditions?.find((c) => c.type === 'Paused')).toBeUndefined();
  return one;
}

/** The migration ended; exactly one guest runs, on the source if it failed, on the target if it succeeded. */
async function oneGuestWhereTheMigrationLeftIt(name: string, before: { vmi: Vmi; pod: Pod }): Promise<void> {
  const end = await ended(name);
  const after = await exactlyOneGuest();
  if (end.status?.phase === 'Failed') {
    expect(end.status.migrationState?.failureReason).toEqual(expect.stringMatching(/\S/));
    expect(after.vmi.status?.nodeName).toBe(before.vmi.status?.nodeName);
    expect(after.pod.metadata?.uid).toBe(before.pod.metadata?.uid);
  } else {
    expect(after.vmi.status?.nodeName).toBe(end.status?.migrationState?.targetNode);
  }
}

beforeAll(async () => {
  client = clusterClient();
  await requireCluster(client);
  await requireKubevmController(client);
  const nodeList = await client.resource<KubeObject & { spec?: { unschedulable?: boolean } }>(nodes).list();
  if (nodeList.items.filter((n) => !n.spec?.unschedulable).length < 2) throw new Error('these tests migrate between two nodes: bring the cluster up with KUBEVM_NODES=2 (docs/adr/0015-second-local-node.md)');
  namespace = await createTestNamespace(client, 'kubevm-e2e-migration-failures');
  await client.resource<KubeObject>(migrationPolicies).create({
    apiVersion: 'migrations.kubevirt.io/v1alpha1',
    kind: 'MigrationPolicy',
    metadata: { name: POLICY },
    // completionTimeoutPerGiB: the slow copy must not be aborted by its own deadline first.
    spec: { selectors: { virtualMachineInstanceSelector: { [LABEL]: 'slow' } }, bandwidthPerMigration: '1Mi', completionTimeoutPerGiB: 1200 },
  } as KubeObject);
  await vmis().create({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: VMI, namespace, labels: { [LABEL]: 'slow' } }, spec: counterVmiSpec(5) } as Vmi);
  await eventually('the VMI Running', 300_000, async () => ((await vmis().get(VMI, namespace)).status?.phase === 'Running' ? true : undefined));
  const { pod } = await sourcePod();
  await eventually('the guest counting', 120_000, async () => ((await lastCount(client, namespace, pod.metadata?.name ?? '')) >= 1 ? true : undefined));
});

afterAll(async () => {
  if (namespace) await deleteNamespace(client, namespace);
  await client?.resource<KubeObject>(migrationPolicies).delete(POLICY).catch(() => undefined);
});

describe('a migration killed half-way loses nothing', () => {
  it('the target launcher killed: Failed with a reason, the target pod gone, the source guest running on, unpaused', async () => {
    const before = await sourcePod();
    const sourceNode = before.vmi.status?.nodeName ?? '';
    const m = await migrating('kill-target');
    const targetPod = m.status?.migrationState?.targetPod ?? '';
    expect(m.status?.migrationState?.targetNode).not.toBe(sourceNode);
    await pods().delete(targetPod, namespace, { gracePeriodSeconds: 0 });

    const failed = await ended('kill-target');
    expect(failed.status?.phase).toBe('Failed');
    expect(failed.status?.migrationState?.failureReason).toEqual(expect.stringMatching(/\S/));
    const after = await exactlyOneGuest();
    // The guest never left: same node, same pod.
    expect(after.vmi.status?.nodeName).toBe(sourceNode);
    expect(after.pod.metadata?.uid).toBe(before.pod.metadata?.uid);
    expect(after.vmi.status?.migrationState).toMatchObject({ failed: true });
  });

  it("the source node's node handler killed: exactly one guest runs after, where the VMI's status says", async () => {
    const before = await sourcePod();
    const sourceNode = before.vmi.status?.nodeName ?? '';
    await migrating('kill-source-handler');
    await killNodeHandler(sourceNode);
    await oneGuestWhereTheMigrationLeftIt('kill-source-handler', before);
  });

  it("the target node's node handler killed (it receives the stream): exactly one guest runs after, where the VMI's status says", async () => {
    const before = await sourcePod();
    const m = await migrating('kill-target-handler');
    await killNodeHandler(m.status?.migrationState?.targetNode ?? '');
    await oneGuestWhereTheMigrationLeftIt('kill-target-handler', before);
  });
});
