// Live migration with kubevm installed, a migration that cannot leave its node: the VM is pinned to
// one node (nodeSelector kubernetes.io/hostname), so its target pod, kept off the source node, fits
// nowhere on any number of nodes. A running VM's VMI says LiveMigratable; a
// VirtualMachineInstanceMigration gets its target pod from the installed controller (its RBAC, and
// the admission policy that lets it create only launcher pods of a VMI), the migration waits in
// Scheduling with the scheduler's reason; deleting the migration removes the target pod; the guest
// ran on untouched all along (its serial counter never restarted, same launcher pod, same node).
// A migration that completes between two nodes is not tested here yet.
// Fails, never skips, without kubevm installed.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import type { KubeClient, KubeObject } from '../../runtime/kube.js';
import { coreResources } from '../../runtime/kube.js';
import { clusterClient, createTestNamespace, deleteNamespace, requireCluster } from '../integration/runtime-support.js';
import { eventually } from '../support/eventually.js';
import { requireKubevmController } from './kubevm-installed.js';
import { counterVmiSpec, lastCount, vmResource, vmiResource, vmimResource } from './small-vm.js';

jest.setTimeout(600_000);

type Pod = V1Pod & KubeObject;
interface Vmi extends KubeObject {
  status?: { phase?: string; nodeName?: string; conditions?: Array<{ type: string; status: string; reason?: string }>; migrationState?: Record<string, unknown> };
}
interface Migration extends KubeObject {
  spec: { vmiName: string };
  status?: { phase?: string; conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>; migrationState?: { targetPod?: string; sourceNode?: string; migrationConfiguration?: Record<string, unknown> } };
}

const VM = 'migrating';
let client: KubeClient;
let namespace: string;

const launcherPods = async (): Promise<Pod[]> => (await client.resource<Pod>(coreResources.pods).list({ namespace, labelSelector: 'kubevirt.io=virt-launcher' })).items;

beforeAll(async () => {
  client = clusterClient();
  await requireCluster(client);
  await requireKubevmController(client);
  namespace = await createTestNamespace(client, 'kubevm-e2e-migration');
  const nodes = await client.resource<KubeObject>({ group: '', version: 'v1', resource: 'nodes', kind: 'Node', namespaced: false }).list();
  const hostname = nodes.items[0]?.metadata?.labels?.['kubernetes.io/hostname'] ?? '';
  await client.resource<KubeObject & { spec: unknown }>(vmResource).create({
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: VM, namespace },
    spec: { runStrategy: 'Always', template: { spec: { ...counterVmiSpec(5), nodeSelector: { 'kubernetes.io/hostname': hostname } } } },
  });
});

afterAll(async () => {
  if (namespace) await deleteNamespace(client, namespace);
});

describe('live migration pinned to one node', () => {
  it('a running VM is LiveMigratable; its migration waits for a second node, and deleting it leaves the guest untouched', async () => {
    const vmi = await eventually('the VMI Running', 240_000, async () => {
      const found = await client.resource<Vmi>(vmiResource).find(VM, namespace);
      return found?.status?.phase === 'Running' ? found : undefined;
    });
    // Written once by the controller, before the node handler took over.
    expect(vmi.status?.conditions?.find((c) => c.type === 'LiveMigratable')).toMatchObject({ status: 'True' });
    const [source] = await launcherPods();
    const sourcePod = source?.metadata?.name ?? '';
    await eventually('the guest counting', 120_000, async () => ((await lastCount(client, namespace, sourcePod)) >= 1 ? true : undefined));

    await client.resource<Migration>(vmimResource).create({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstanceMigration', metadata: { name: 'mig', namespace }, spec: { vmiName: VM } });
    const waiting = await eventually('the migration waiting in Scheduling with the scheduler\'s reason', 60_000, async () => {
      const m = await client.resource<Migration>(vmimResource).get('mig', namespace);
      const condition = m.status?.conditions?.find((c) => c.type === 'kubevm.io/TargetPodWaiting');
      return m.status?.phase === 'Scheduling' && condition?.reason === 'Unschedulable' ? { m, condition } : undefined;
    });
    expect(waiting.condition.message).toMatch(/cannot be scheduled: 0\/\d+ nodes are available/);
    expect(waiting.m.status?.migrationState).toMatchObject({ sourceNode: vmi.status?.nodeName, migrationConfiguration: expect.objectContaining({ completionTimeoutPerGiB: 150 }) });
    const targetName = waiting.m.status?.migrationState?.targetPod ?? '';
    const target = (await launcherPods()).find((p) => p.metadata?.name === targetName);
    // Created by the installed controller under its admission policy: a launcher pod owned by the VMI.
    expect(target?.metadata?.ownerReferences).toEqual([expect.objectContaining({ kind: 'VirtualMachineInstance', name: VM, controller: true })]);
    expect(target?.spec?.nodeName).toBeUndefined();

    const countBefore = await lastCount(client, namespace, sourcePod);
    await client.resource<Migration>(vmimResource).delete('mig', namespace);
    await eventually('the target pod removed', 60_000, async () => ((await launcherPods()).some((p) => p.metadata?.name === targetName) ? undefined : true));

    // The guest never noticed: same pod, same node, Running, and still counting upwards.
    const after = await client.resource<Vmi>(vmiResource).get(VM, namespace);
    expect(after.status).toMatchObject({ phase: 'Running', nodeName: vmi.status?.nodeName });
    expect(after.status?.migrationState).toBeUndefined();
    expect((await launcherPods()).map((p) => p.metadata?.name)).toEqual([sourcePod]);
    await eventually('the counter going on', 60_000, async () => ((await lastCount(client, namespace, sourcePod)) > countBefore ? true : undefined));
    const vm = await client.resource<KubeObject & { status?: { printableStatus?: string } }>(vmResource).get(VM, namespace);
    expect(vm.status?.printableStatus).toBe('Running');
  });
});
