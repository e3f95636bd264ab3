// `kubectl drain` of a node with kubevm installed, on the two-node cluster (issue 14: "kubectl drain
// of the source node migrates a LiveMigrate VM and shuts down a None one"). Two VMs start on the
// first node (the second is cordoned while they are scheduled): "migrates" (evictionStrategy
// LiveMigrate, the counting test guest on a containerDisk) and "stops" (evictionStrategy None,
// runStrategy Once, so nothing starts it again). kubectl drain, limited by --pod-selector to this
// suite's launcher pods (kubevm's own pods stay), evicts both launchers:
// - "stops": the eviction is allowed, the pod goes and the VMI ends;
// - "migrates": the eviction webhook refuses it with 429 and marks the VMI, the evacuation
//   controller creates a kubevirt-evacuation- migration, the guest moves to the second node and
//   keeps counting (no reset), the mark is removed and the drain completes.
// Before the drain, a dry-run eviction gets the same 429 and marks nothing.
// Needs the second node (KUBEVM_NODES=2); fails, never skips, without it or without kubevm.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { HttpMethod } from '@kubernetes/client-node';
import type { V1Pod } from '@kubernetes/client-node';
import type { KubeClient, KubeObject, ResourceDescriptor } from '../../runtime/kube.js';
import { ApiError, coreResources } from '../../runtime/kube.js';
import { clusterEnv } from '../cluster/cluster-env.js';
import { clusterClient, createTestNamespace, deleteNamespace, requireCluster } from '../integration/runtime-support.js';
import { eventually } from '../support/eventually.js';
import { requireKubevmController } from './kubevm-installed.js';
import { consoleCounts, counterVmiSpec, lastCount, smallVmiSpec, vmResource, vmiResource, vmimResource } from './small-vm.js';

jest.setTimeout(600_000);

type Pod = V1Pod & KubeObject;
interface Vmi extends KubeObject {
  status?: { phase?: string; nodeName?: string; evacuationNodeName?: string; migrationState?: { completed?: boolean; targetNode?: string } };
}
interface Migration extends KubeObject {
  spec: { vmiName: string; priority?: string };
  status?: { phase?: string; migrationState?: { failureReason?: string } };
}
const nodes: ResourceDescriptor = { group: '', version: 'v1', resource: 'nodes', kind: 'Node', namespaced: false };

/** Both VMs' pods carry it (a VMI's labels go to its launcher pods), so the drain evicts only them. */
const SUITE_LABEL = 'kubevm.io/e2e-suite';
const MIGRATES = 'migrates';
const STOPS = 'stops';

let client: KubeClient;
let namespace: string;
let source: string;
let other: string;
let drain: { child: ChildProcess; output: string; exit: Promise<number> } | undefined;

const launcherPods = async (): Promise<Pod[]> => (await client.resource<Pod>(coreResources.pods).list({ namespace, labelSelector: 'kubevirt.io=virt-launcher' })).items;
const podOf = async (vmi: string): Promise<Pod | undefined> => (await launcherPods()).find((p) => p.metadata?.annotations?.['kubevirt.io/domain'] === vmi && !p.metadata.deletionTimestamp);
const setUnschedulable = (node: string, unschedulable: boolean): Promise<unknown> => client.resource<KubeObject>(nodes).patch(node, undefined, { spec: { unschedulable: unschedulable ? true : null } });

function createVm(name: string, runStrategy: string, spec: Record<string, unknown>): Promise<unknown> {
  return client.resource<KubeObject & { spec: unknown }>(vmResource).create({
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name, namespace },
    spec: { runStrategy, template: { metadata: { labels: { [SUITE_LABEL]: namespace } }, spec } },
  });
}

async function runningVmi(name: string): Promise<Vmi> {
  return eventually(`VMI ${name} Running`, 240_000, async () => {
    const vmi = await client.resource<Vmi>(vmiResource).find(name, namespace);
    return vmi?.status?.phase === 'Running' ? vmi : undefined;
  });
}

/** An eviction as kubectl drain sends it; the API server's answer (undefined: allowed). */
async function evict(pod: string, dryRun: boolean): Promise<ApiError | undefined> {
  const body = { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: pod, namespace }, ...(dryRun ? { deleteOptions: { dryRun: ['All'] } } : {}) };
  try {
    await client.request(HttpMethod.POST, `/api/v1/namespaces/${namespace}/pods/${pod}/eviction`, { body });
    return undefined;
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
}

function startDrain(): NonNullable<typeof drain> {
  const env = clusterEnv();
  const args = ['--kubeconfig', env.kubeconfig, 'drain', source, `--pod-selector=kubevirt.io=virt-launcher,${SUITE_LABEL}=${namespace}`, '--ignore-daemonsets', '--delete-emptydir-data', '--timeout=300s'];
  const child = spawn(env.kubectl, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const started = { child, output: '', exit: Promise.resolve(0) };
  child.stdout?.on('data', (d: Buffer) => (started.output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (started.output += d.toString()));
  started.exit = new Promise((resolve) => child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
  return started;
}

beforeAll(async () => {
  client = clusterClient();
  await requireCluster(client);
  await requireKubevmController(client);
  const env = clusterEnv();
  source = env.nodeName;
  other = env.node2Name;
  if (!source || !other) throw new Error('the drain suite needs the two-node cluster (KUBEVM_NODES=2 make cluster-up): KUBEVM_NODE_NAME and KUBEVM_NODE2_NAME must be set');
  namespace = await createTestNamespace(client, 'kubevm-e2e-drain');
  // Both VMs start on the node to be drained: the other node takes no new pod meanwhile.
  await setUnschedulable(other, true);
  try {
    await createVm(MIGRATES, 'Always', { ...counterVmiSpec(5), evictionStrategy: 'LiveMigrate' });
    await createVm(STOPS, 'Once', { ...smallVmiSpec(), evictionStrategy: 'None' });
    for (const name of [MIGRATES, STOPS]) expect((await runningVmi(name)).status?.nodeName).toBe(source);
  } finally {
    await setUnschedulable(other, false);
  }
});

afterAll(async () => {
  if (drain && drain.child.exitCode === null) drain.child.kill('SIGTERM');
  if (source) await setUnschedulable(source, false).catch(() => undefined);
  if (other) await setUnschedulable(other, false).catch(() => undefined);
  if (namespace) await deleteNamespace(client, namespace);
});

/** Whether kubevm's component `component` (its ServiceAccount in kubevirt) may do this, by a SubjectAccessReview. */
async function mayDo(component: string, verb: string, group: string, resource: string, subresource?: string): Promise<boolean> {
  const review = (await client.request(HttpMethod.POST, '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
    body: {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: {
        user: `system:serviceaccount:kubevirt:${component}`,
        groups: ['system:serviceaccounts', 'system:serviceaccounts:kubevirt', 'system:authenticated'],
        resourceAttributes: { verb, group, resource, namespace, ...(subresource ? { subresource } : {}) },
      },
    },
  })) as { status?: { allowed?: boolean } };
  return review.status?.allowed === true;
}

describe('kubectl drain', () => {
  it("the installed roles give the drain's two writers what they write and no more (SECURITY.md)", async () => {
    // The eviction webhook's mark: a patch of the VMI's status, never a replace; it evicts nothing itself.
    expect(await mayDo('kubevm-api-server', 'patch', 'kubevirt.io', 'virtualmachineinstances', 'status')).toBe(true);
    expect(await mayDo('kubevm-api-server', 'update', 'kubevirt.io', 'virtualmachineinstances', 'status')).toBe(false);
    expect(await mayDo('kubevm-api-server', 'create', '', 'pods', 'eviction')).toBe(false);
    expect(await mayDo('kubevm-api-server', 'delete', '', 'pods')).toBe(false);
    // The evacuation controller creates migrations; it never changes or deletes one.
    expect(await mayDo('kubevm-controller', 'create', 'kubevirt.io', 'virtualmachineinstancemigrations')).toBe(true);
    expect(await mayDo('kubevm-controller', 'update', 'kubevirt.io', 'virtualmachineinstancemigrations')).toBe(false);
    expect(await mayDo('kubevm-controller', 'delete', 'kubevirt.io', 'virtualmachineinstancemigrations')).toBe(false);
  });

  it('a dry-run eviction of a LiveMigrate launcher is refused with 429 like the real one, and marks nothing', async () => {
    const pod = await podOf(MIGRATES);
    const refused = await evict(pod?.metadata?.name ?? '', true);
    expect(refused?.code).toBe(429);
    expect(refused?.message).toContain(`Eviction triggered evacuation of VMI "${namespace}/${MIGRATES}"`);
    const vmi = await client.resource<Vmi>(vmiResource).get(MIGRATES, namespace);
    expect(vmi.status?.evacuationNodeName).toBeUndefined();
    expect((await client.resource<Migration>(vmimResource).list({ namespace })).items).toEqual([]);
  });

  it('shuts down the None VM and migrates the LiveMigrate VM to the other node, its guest counting on', async () => {
    const migratingPod = (await podOf(MIGRATES))?.metadata?.name ?? '';
    await eventually('the guest counting', 120_000, async () => ((await lastCount(client, namespace, migratingPod)) >= 1 ? true : undefined));
    const stopsUid = (await client.resource<Vmi>(vmiResource).get(STOPS, namespace)).metadata?.uid;

    drain = startDrain();
    const current = drain;

    // None: the eviction goes through; the VMI ends with its pod, and nothing starts it again.
    const stopped = await eventually(() => `VMI ${STOPS} ended (drain said: ${current.output})`, 120_000, async () => {
      const vmi = await client.resource<Vmi>(vmiResource).find(STOPS, namespace);
      return vmi?.status?.phase === 'Succeeded' || vmi?.status?.phase === 'Failed' ? vmi : undefined;
    });
    expect(stopped.metadata?.uid).toBe(stopsUid);
    await eventually(`the launcher pod of ${STOPS} gone`, 60_000, async () => ((await podOf(STOPS)) ? undefined : true));

    // LiveMigrate: the evacuation controller's migration, as KubeVirt names and marks it.
    const migration = await eventually(() => `an evacuation migration of ${MIGRATES} (drain said: ${current.output})`, 60_000, async () =>
      (await client.resource<Migration>(vmimResource).list({ namespace })).items.find((m) => m.spec.vmiName === MIGRATES),
    );
    expect(migration.metadata?.name).toMatch(/^kubevirt-evacuation-/);
    expect(migration.metadata?.annotations?.['kubevirt.io/evacuationMigration']).toBe(source);
    expect(migration.spec.priority).toBe('system-critical');

    // The guest moves to the other node, and the drain completes once the source pod is gone.
    let sourceCount = 0;
    const moved = await eventually(() => `VMI ${MIGRATES} on ${other} (drain said: ${current.output})`, 180_000, async () => {
      sourceCount = Math.max(sourceCount, await lastCount(client, namespace, migratingPod));
      const vmi = await client.resource<Vmi>(vmiResource).get(MIGRATES, namespace);
      return vmi.status?.nodeName === other ? vmi : undefined;
    });
    expect(moved.status?.phase).toBe('Running');
    expect(await current.exit).toBe(0);
    expect(current.output).toContain(`Eviction triggered evacuation of VMI "${namespace}/${MIGRATES}"`);
    expect(current.output).toContain(`node/${source} drained`);
    expect((await client.resource<Vmi>(vmiResource).get(MIGRATES, namespace)).status?.evacuationNodeName).toBeUndefined();
    expect((await client.resource<Migration>(vmimResource).get(migration.metadata?.name ?? '', namespace)).status?.phase).toBe('Succeeded');
    const pods = await launcherPods();
    expect(pods.map((p) => p.spec?.nodeName)).toEqual([other]);
    const targetPod = pods[0]?.metadata?.name ?? '';
    // No reset: the target's console starts where the source's left off (a rebooted guest counts
    // from 1 again) and goes on.
    const counts = await eventually('the counter going on in the target pod', 60_000, async () => {
      const found = await consoleCounts(client, namespace, targetPod);
      return found.length > 0 && (found.at(-1) ?? 0) > sourceCount ? found : undefined;
    });
    expect(counts[0]).toBeGreaterThan(1);
    expect(sourceCount).toBeGreaterThanOrEqual(1);
  });
});
