// Live migration with kubevm installed, a migration that cannot leave its node: the VM is pinned to
// one node (nodeSelector kubernetes.io/hostname), so its target pod, kept off the source node, fits
// nowhere on any number of nodes. A running VM's VMI says LiveMigratable; a
// VirtualMachineInstanceMigration gets its target pod from the installed controller (its RBAC, and
// the admission policy that lets it create only launcher pods of a VMI), the migration waits in
// Scheduling with the scheduler's reason; deleting the migration removes the target pod; the guest
// ran on untouched all along (its serial counter never restarted, same launcher pod, same node).
// And a migration that crosses nodes (the two-node cluster, ADR 0015): a guest counting on its
// serial console counts on across it without a reset, the VMI moves to the other node with KubeVirt's
// migrationState, the source launcher pod goes, the migration is Succeeded, and the VM was
// Migrating in between. Fails, never skips, without kubevm installed or with one node.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { HttpMethod } from '@kubernetes/client-node';
import type { V1Pod } from '@kubernetes/client-node';
import type { KubeClient, KubeObject } from '../../runtime/kube.js';
import { coreResources } from '../../runtime/kube.js';
import { clusterClient, createTestNamespace, deleteNamespace, requireCluster } from '../integration/runtime-support.js';
import { eventually } from '../support/eventually.js';
import { Informer } from '../../runtime/informer.js';
import { requireKubevmController } from './kubevm-installed.js';
import { counterVmiSpec, lastCount, showingPodLog, vmResource, vmiResource, vmimResource } from './small-vm.js';

jest.setTimeout(600_000);

type Pod = V1Pod & KubeObject;
interface Vmi extends KubeObject {
  status?: { phase?: string; nodeName?: string; activePods?: Record<string, string>; conditions?: Array<{ type: string; status: string; reason?: string }>; migrationState?: Record<string, unknown> };
}
interface Vm extends KubeObject {
  status?: { printableStatus?: string };
}
interface Migration extends KubeObject {
  spec: { vmiName: string };
  status?: { phase?: string; conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>; migrationState?: { targetPod?: string; sourceNode?: string; migrationConfiguration?: Record<string, unknown> } };
}

const VM = 'migrating';
/** The VM whose migration crosses nodes. */
const CROSSING = 'crossing';
const nodeResource = { group: '', version: 'v1', resource: 'nodes', kind: 'Node', namespaced: false } as const;

/**
 * The counter guest with an emptyDisk beside its containerDisk, writing each tick's number to both
 * disks' first block after reading the last one back from the disk itself (kubevm.diskcount,
 * test/guests/guest-init.sh): the pod-local disks' writable layers must come along.
 */
function crossingSpec(): Record<string, unknown> {
  const spec = counterVmiSpec(5, 'console=ttyS0 kubevm.counter=1 kubevm.diskcount=vda,vdb') as { domain: { devices: { disks: unknown[] } }; volumes: unknown[] };
  spec.domain.devices.disks.push({ name: 'scratch', disk: { bus: 'virtio' } });
  spec.volumes.push({ name: 'scratch', emptyDisk: { capacity: '16Mi' } });
  return spec;
}
let client: KubeClient;
let namespace: string;

/** The launcher pods of VM `vm` (the launcher pod carries its VMI's name as kubevirt.io/domain). */
const launcherPods = async (vm = VM): Promise<Pod[]> =>
  (await client.resource<Pod>(coreResources.pods).list({ namespace, labelSelector: 'kubevirt.io=virt-launcher' })).items.filter((p) => p.metadata?.annotations?.['kubevirt.io/domain'] === vm);

beforeAll(async () => {
  client = clusterClient();
  await requireCluster(client);
  await requireKubevmController(client);
  namespace = await createTestNamespace(client, 'kubevm-e2e-migration');
  const nodes = await client.resource<KubeObject>(nodeResource).list();
  const hostname = nodes.items[0]?.metadata?.labels?.['kubernetes.io/hostname'] ?? '';
  // Both VMs boot at once: the two tests wait for them in turn.
  for (const [name, spec] of [
    [VM, { ...counterVmiSpec(5), nodeSelector: { 'kubernetes.io/hostname': hostname } }],
    [CROSSING, crossingSpec()],
  ] as const) {
    await client.resource<KubeObject & { spec: unknown }>(vmResource).create({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name, namespace }, spec: { runStrategy: 'Always', template: { spec } } });
  }
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

describe('live migration across nodes', () => {
  it('the guest counts on across the migration without a reset, and the VMI points at the other node', async () => {
    const nodes = (await client.resource<KubeObject>(nodeResource).list()).items.map((n) => n.metadata?.name ?? '');
    if (nodes.length < 2) throw new Error(`a migration across nodes needs two nodes (KUBEVM_NODES=2 make cluster-up, ADR 0015); the cluster has ${nodes.join(', ')}`);
    const vmi = await eventually('the VMI Running', 240_000, async () => {
      const found = await client.resource<Vmi>(vmiResource).find(CROSSING, namespace);
      return found?.status?.phase === 'Running' ? found : undefined;
    });
    const sourceNode = vmi.status?.nodeName ?? '';
    const [source] = await launcherPods(CROSSING);
    const sourcePod = source?.metadata?.name ?? '';
    await eventually('the guest counting', 120_000, async () => ((await lastCount(client, namespace, sourcePod)) >= 1 ? true : undefined));

    // Every printableStatus the VM goes through, from its watch.
    const seen: string[] = [];
    const vms = new Informer<Vm>({ client, descriptor: vmResource, namespace });
    const record = (vm: Vm) => {
      const status = vm.metadata?.name === CROSSING ? vm.status?.printableStatus : undefined;
      if (status && seen.at(-1) !== status) seen.push(status);
    };
    vms.addEventHandler({ onAdd: record, onUpdate: (_old, vm) => record(vm) });
    vms.start();
    try {
      await vms.waitForSync();
      const countBefore = await lastCount(client, namespace, sourcePod);
      const created = Date.now();
      await client.resource<Migration>(vmimResource).create({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstanceMigration', metadata: { name: 'cross', namespace }, spec: { vmiName: CROSSING } });
      const done = await eventually('the migration Succeeded (or Failed)', 180_000, async () => {
        const m = await client.resource<Migration>(vmimResource).get('cross', namespace);
        return m.status?.phase === 'Succeeded' || m.status?.phase === 'Failed' ? m : undefined;
      });
      expect({ phase: done.status?.phase, failureReason: (done.status?.migrationState as { failureReason?: string } | undefined)?.failureReason }).toEqual({ phase: 'Succeeded', failureReason: undefined });
      const seconds = (Date.now() - created) / 1000;

      const targetNode = nodes.find((n) => n !== sourceNode) ?? '';
      const moved = await eventually('the VMI on the other node', 60_000, async () => {
        const found = await client.resource<Vmi>(vmiResource).get(CROSSING, namespace);
        return found.status?.nodeName === targetNode ? found : undefined;
      });
      const state = moved.status?.migrationState ?? {};
      expect(state).toMatchObject({
        completed: true,
        sourceNode,
        sourcePod,
        targetNode,
        targetPod: expect.any(String),
        migrationUid: done.metadata?.uid,
        startTimestamp: expect.any(String),
        endTimestamp: expect.any(String),
        mode: 'PreCopy',
      });
      expect(state['failed']).toBeUndefined();
      expect(Date.parse(String(state['endTimestamp']))).toBeGreaterThanOrEqual(Date.parse(String(state['startTimestamp'])));
      expect(moved.status?.phase).toBe('Running');
      const targetPod = String(state['targetPod']);
      // The source launcher pod goes; the target's is the VMI's only one.
      await eventually('the source launcher pod gone', 120_000, async () => ((await launcherPods(CROSSING)).some((p) => p.metadata?.name === sourcePod) ? undefined : true));
      expect((await launcherPods(CROSSING)).map((p) => [p.metadata?.name, p.spec?.nodeName])).toEqual([[targetPod, targetNode]]);
      expect(Object.values(moved.status?.activePods ?? {})).toEqual([targetNode]);

      // The guest's memory came along: its counter goes on from where it was, with no boot on
      // the target (the target's console log holds counts only, consecutive).
      const after = await showingPodLog(client, namespace, targetPod, eventually('the guest counting on the target', 60_000, async () => {
        const n = await lastCount(client, namespace, targetPod);
        return n > countBefore + 1 ? n : undefined;
      }));
      const console = String(await client.request(HttpMethod.GET, `/api/v1/namespaces/${namespace}/pods/${targetPod}/log`, { query: { container: 'compute' } }));
      expect(console).not.toMatch(/KUBEVM-GUEST-BOOTED|KUBEVM-READY/);
      const counts = [...console.matchAll(/KUBEVM-COUNT (\d+)/g)].map((m) => Number(m[1]));
      expect(counts[0]).toBeGreaterThan(countBefore);
      // The log read after the count above may hold a tick or two more: it holds that count, and goes on from it.
      expect(counts).toContain(after);
      expect(counts.at(-1)).toBeGreaterThanOrEqual(after);
      expect(counts.every((n, i) => i === 0 || n === (counts[i - 1] ?? 0) + 1)).toBe(true);
      // Both disks read back, on the target, what the guest wrote on the source: every tick finds
      // the previous tick's number, the first one on the target too.
      const diskTicks = [...console.matchAll(/KUBEVM-DISKCOUNT (vd[ab]) prev=(\S+) now=(\d+)/g)].map((m) => ({ disk: m[1], prev: m[2], now: Number(m[3]) }));
      for (const disk of ['vda', 'vdb']) {
        const ticks = diskTicks.filter((t) => t.disk === disk);
        expect(ticks.length).toBeGreaterThan(0);
        expect(ticks[0]?.now).toBeGreaterThan(countBefore);
        expect(ticks.filter((t) => t.prev !== String(t.now - 1))).toEqual([]);
      }

      await eventually('the VM Running again', 60_000, async () => (seen.at(-1) === 'Running' ? true : undefined));
      expect(seen).toEqual(expect.arrayContaining(['Migrating']));
      expect(seen.slice(seen.indexOf('Migrating'))).toEqual(['Migrating', 'Running']);
      process.stdout.write(`cross-node migration: ${seconds.toFixed(1)} s from the migration object to Succeeded, ${sourceNode} -> ${targetNode}\n`);
    } finally {
      await vms.stop();
    }
  });
});
