// kubevm's life with Helm on the full local cluster, as a cluster admin lives it (Helm built from
// its Go module by charts/build-helm.sh, cached):
//   helm install → the KubeVirt CR Deployed → a VM runs, its serial console reachable (the
//   operator issued the streams' certificates: nothing but the chart was applied);
//   helm upgrade to a new image tag (the same images `make images` imported, tagged a second time)
//   → every component rolled onto the new tag while the VM goes on: same launcher pod, its guest's
//   counter continues, the VMI carries KubeVirt's kubevirt.io/outdatedLauncherImage label and the
//   KubeVirt CR counts it in status.outdatedVirtualMachineInstanceWorkloads;
//   helm uninstall once no VM is left → nothing of kubevm's is left in any API resource type, nor
//   on the node.
// Runs on a cluster WITHOUT kubevm installed (test/run-all.sh runs it before install-kubevm.sh) and
// leaves none behind. Fails, never skips.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { readFileSync } from 'node:fs';
import type { KubeClient, KubeObject, ResourceDescriptor } from '../../runtime/kube.js';
import { coreResources } from '../../runtime/kube.js';
import { OUTDATED_LAUNCHER_IMAGE_LABEL } from '../../controller/vmi/controller.js';
import { MANAGED_KINDS } from '../../operator/managed-kinds.js';
import { NODE_HANDLER_CONDITIONS, isNodeHandlerMark } from '../../runtime/contracts/node-marks.js';
import { clusterEnv, kubectl, repoRoot, run } from '../cluster/cluster-env.js';
import type { ClusterEnv } from '../cluster/cluster-env.js';
import { counterVmiSpec, lastCount } from '../e2e/small-vm.js';
import { clusterClient, createTestNamespace, deleteNamespace, requireCluster } from '../integration/runtime-support.js';
import { eventually } from '../support/eventually.js';
import { includes, openStream, receive } from '../e2e/support/streams.js';

jest.setTimeout(300_000);

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
const UPGRADE_TAG = `${version}-upgrade`;
const IMAGES = ['operator', 'controller', 'node-handler', 'api-server', 'launcher'];
const NAMESPACE = 'kubevirt';
const RELEASE = 'kubevm';

const kubevirtResource: ResourceDescriptor = { group: 'kubevirt.io', version: 'v1', resource: 'kubevirts', kind: 'KubeVirt', namespaced: true };
const vmiResource: ResourceDescriptor = { group: 'kubevirt.io', version: 'v1', resource: 'virtualmachineinstances', kind: 'VirtualMachineInstance', namespaced: true };

interface KubeVirt extends KubeObject {
  status?: { phase?: string; observedKubeVirtVersion?: string; outdatedVirtualMachineInstanceWorkloads?: number };
}
interface Vmi extends KubeObject {
  status?: { phase?: string; activePods?: Record<string, string>; launcherContainerImageVersion?: string };
}
interface Pod extends KubeObject {
  spec?: { containers: Array<{ name: string; image: string }> };
  status?: { phase?: string };
}

let env: ClusterEnv;
let client: KubeClient;
let helm: string;
let vmNamespace: string | undefined;

async function helmRun(...args: string[]): Promise<string> {
  const res = await run(helm, [...args, '--namespace', NAMESPACE, '--kubeconfig', env.kubeconfig], { timeoutMs: 300_000 });
  if (res.code !== 0) throw new Error(`helm ${args.join(' ')} exited ${res.code}: ${res.stderr.trim()}`);
  return res.stdout;
}

async function kubevirt(): Promise<KubeVirt | undefined> {
  return client.resource<KubeVirt>(kubevirtResource).find('kubevirt', NAMESPACE).catch(() => undefined);
}

/** The component pods (operator included), each with its image. */
async function componentPods(): Promise<Pod[]> {
  return (await client.resource<Pod>(coreResources.pods).list({ namespace: NAMESPACE, labelSelector: 'app.kubernetes.io/name=kubevm' })).items.filter((pod) => !pod.metadata?.deletionTimestamp);
}

function counterVmi(namespace: string): Vmi & { spec: unknown } {
  return { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'through-upgrade', namespace }, spec: counterVmiSpec(5) };
}

/** The names kubevm's objects have (the cluster's own test fixtures are named kubevm-rbac, kubevm-viewer, ...). */
const KUBEVM_NAME = /^(kubevm-(operator|controller|node-handler|api-server|ca|validator|launcher|remove-kubevirt)|kubevirt\.io:|instancetype\.kubevirt\.io:)|\.kubevirt\.io$/;

/** Whether an object is kubevm's: by its labels, its name, its namespace, or its API group. */
function isKubevms(type: string, item: KubeObject): boolean {
  const labels = item.metadata?.labels ?? {};
  if (labels['app.kubernetes.io/part-of'] === 'kubevm' || labels['app.kubernetes.io/managed-by'] === 'kubevm-operator' || labels['app.kubernetes.io/name'] === 'kubevm') return true;
  return KUBEVM_NAME.test(item.metadata?.name ?? '') || item.metadata?.namespace === NAMESPACE || /\.kubevirt\.io$/.test(type);
}

beforeAll(async () => {
  env = clusterEnv();
  client = clusterClient();
  await requireCluster(client);
  if (await client.resource(coreResources.namespaces).find(NAMESPACE)) {
    throw new Error(`namespace ${NAMESPACE} exists: this suite installs kubevm itself, on a cluster without it (bash scripts/uninstall-kubevm.sh)`);
  }
  const built = await run('bash', [`${repoRoot}/charts/build-helm.sh`], { timeoutMs: 1_800_000 });
  if (built.code !== 0) throw new Error(`charts/build-helm.sh failed: ${built.stderr}`);
  helm = built.stdout.trim();
  // The upgrade's images: what `make images` imported, under a second tag, on every node.
  const socks = [process.env['KUBEVM_CONTAINERD_SOCK'] ?? '/var/lib/kubevm-local/run/containerd/containerd.sock', process.env['KUBEVM_NODE2_CONTAINERD_SOCK']];
  for (const sock of socks.filter((s): s is string => !!s)) {
    for (const image of IMAGES) {
      const tagged = await run(process.env['KUBEVM_CTR'] || 'ctr', ['--address', sock, '--namespace', 'k8s.io', 'images', 'tag', '--force', `docker.io/kubevm/${image}:${version}`, `docker.io/kubevm/${image}:${UPGRADE_TAG}`]);
      if (tagged.code !== 0) throw new Error(`could not tag kubevm/${image}:${version} as ${UPGRADE_TAG} in ${sock} (make images first): ${tagged.stderr.trim()}`);
    }
  }
}, 1_800_000);

afterAll(async () => {
  // After a failure midway: leave no VM and no kubevm behind for the suites that follow.
  if (vmNamespace) await deleteNamespace(client, vmNamespace);
  if (await kubevirt()) await run('bash', [`${repoRoot}/scripts/uninstall-kubevm.sh`], { timeoutMs: 300_000 });
  await run(helm, ['uninstall', RELEASE, '--namespace', NAMESPACE, '--kubeconfig', env.kubeconfig, '--ignore-not-found', '--no-hooks']);
  client?.close();
}, 600_000);

describe('kubevm with Helm', () => {
  let launcher = '';
  let launcherUid = '';

  it('helm install: the KubeVirt CR is Deployed and a VM runs', async () => {
    // webhooks.clientAuth=required: the local cluster's kube-apiserver presents its certificate to the webhooks.
    await helmRun('install', RELEASE, `${repoRoot}/charts/kubevm`, '--create-namespace', '--set', 'kubevirt.spec.configuration.developerConfiguration.useEmulation=true', '--set', 'webhooks.clientAuth=required');
    await eventually('the KubeVirt CR Deployed', 240_000, async () => (await kubevirt())?.status?.phase === 'Deployed');
    const apiServer = await client.resource<KubeObject & { spec?: { template?: { spec?: { containers?: Array<{ env?: Array<{ name: string; value?: string }> }> } } } }>(MANAGED_KINDS.Deployment).get('kubevm-api-server', NAMESPACE);
    expect(apiServer.spec?.template?.spec?.containers?.[0]?.env).toContainEqual({ name: 'KUBEVM_API_WEBHOOK_CLIENT_AUTH', value: 'required' });
    expect((await kubevirt())?.status?.observedKubeVirtVersion).toBe(version);
    expect((await kubevirt())?.status?.outdatedVirtualMachineInstanceWorkloads).toBe(0);

    vmNamespace = await createTestNamespace(client, 'kubevm-helm');
    const vmis = client.resource<Vmi>(vmiResource);
    await vmis.create(counterVmi(vmNamespace));
    await eventually('the VMI Running', 240_000, async () => (await vmis.find('through-upgrade', vmNamespace))?.status?.phase === 'Running');
    const running = await vmis.get('through-upgrade', vmNamespace);
    launcherUid = Object.keys(running.status?.activePods ?? {})[0] ?? '';
    const pods = await client.resource<Pod>(coreResources.pods).list({ namespace: vmNamespace, labelSelector: 'kubevirt.io=virt-launcher' });
    launcher = pods.items.find((pod) => pod.metadata?.uid === launcherUid)?.metadata?.name ?? '';
    expect(launcher).not.toBe('');
    await eventually('the guest counting', 120_000, async () => (await lastCount(client, vmNamespace ?? '', launcher)) >= 1);
    // Console: kube-apiserver → api-server → node handler (mutual TLS with the operator's certificates) → launcher.
    const serial = await openStream(env.kubeconfig, `/apis/subresources.kubevirt.io/v1/namespaces/${vmNamespace}/virtualmachineinstances/through-upgrade/console`);
    try {
      await receive(serial, includes('KUBEVM-COUNT'));
    } finally {
      serial.close();
    }
  });

  it('helm upgrade to a new image tag rolls every component while the VM goes on, and marks its launcher outdated', async () => {
    const ns = vmNamespace ?? '';
    const before = new Set((await componentPods()).map((pod) => pod.metadata?.uid));
    const countAtUpgrade = await lastCount(client, ns, launcher);
    await helmRun('upgrade', RELEASE, `${repoRoot}/charts/kubevm`, '--reuse-values', '--set', `image.tag=${UPGRADE_TAG}`);

    await eventually('the KubeVirt CR Deployed at the new tag', 240_000, async () => {
      const kv = await kubevirt();
      return kv?.status?.phase === 'Deployed' && kv.status.observedKubeVirtVersion === UPGRADE_TAG;
    });
    await eventually('only pods of the new tag, none of before', 120_000, async () => {
      const pods = await componentPods();
      return pods.length > 0 && pods.every((pod) => !before.has(pod.metadata?.uid) && pod.spec?.containers.every((c) => c.image.endsWith(`:${UPGRADE_TAG}`)));
    });
    const components = new Set((await componentPods()).map((pod) => pod.metadata?.labels?.['app.kubernetes.io/component']));
    expect([...components].sort()).toEqual(['api-server', 'controller', 'node-handler', 'operator']);

    const vmis = client.resource<Vmi>(vmiResource);
    await eventually('the VMI marked as running an outdated launcher', 60_000, async () => (await vmis.get('through-upgrade', ns)).metadata?.labels?.[OUTDATED_LAUNCHER_IMAGE_LABEL] === '');
    // The operator counts it, as virt-operator does, until it stops.
    await eventually('the KubeVirt CR counting one outdated workload', 60_000, async () => (await kubevirt())?.status?.outdatedVirtualMachineInstanceWorkloads === 1);
    const vmi = await vmis.get('through-upgrade', ns);
    expect(vmi.status?.phase).toBe('Running');
    expect(Object.keys(vmi.status?.activePods ?? {})).toEqual([launcherUid]);
    expect(vmi.status?.launcherContainerImageVersion).toBe(`kubevm/launcher:${version}`);
    expect((await client.resource<Pod>(coreResources.pods).get(launcher, ns)).metadata?.uid).toBe(launcherUid);
    await eventually('the guest to keep counting', 60_000, async () => (await lastCount(client, ns, launcher)) >= countAtUpgrade + 2);
  });

  it('helm uninstall with no VM left removes everything of kubevm', async () => {
    if (vmNamespace) await deleteNamespace(client, vmNamespace);
    vmNamespace = undefined;
    await eventually('no VMI left', 120_000, async () => (await client.resource(vmiResource).list()).items.length === 0);
    await helmRun('uninstall', RELEASE, '--wait', '--timeout', '5m');
    expect(await kubevirt()).toBeUndefined();

    // `--create-namespace` made the namespace, so it is the admin's to delete (Helm leaves it); the
    // components' Leases go with it.
    await deleteNamespace(client, NAMESPACE);
    await eventually(`namespace ${NAMESPACE} gone`, 120_000, async () => (await client.resource(coreResources.namespaces).find(NAMESPACE)) === undefined);

    // Helm never deletes what a chart's crds/ installed (its CRD best practices): the KubeVirt CRD
    // stays, with no KubeVirt left. Everything else of kubevm's is gone, in every resource type.
    const kept = new Set(['customresourcedefinitions.apiextensions.k8s.io/kubevirts.kubevirt.io']);
    const types = (await kubectl(env, ['api-resources', '--verbs=list', '-o', 'name'])).split('\n').filter((type) => type && type !== 'events' && type !== 'events.events.k8s.io');
    const left: string[] = [];
    for (const type of types) {
      const list = JSON.parse(await kubectl(env, ['get', type, '--all-namespaces', '-o', 'json'])) as { items: KubeObject[] };
      for (const item of list.items) {
        const key = `${type}/${item.metadata?.namespace ? `${item.metadata.namespace}/` : ''}${item.metadata?.name}`;
        // The kube-apiserver's own APIService for a CRD's group (v1.kubevirt.io) goes with the last CRD of the group.
        if (item.metadata?.labels?.['kube-aggregator.kubernetes.io/automanaged']) continue;
        if (!kept.has(key) && isKubevms(type, item)) left.push(key);
      }
    }
    expect(left).toEqual([]);

    // Nor on the node: the node handler's labels, annotations and node conditions.
    const nodes = (await client.resource<KubeObject & { status?: { conditions?: Array<{ type: string }> } }>(coreResources.nodes).list()).items;
    const marks = nodes.flatMap((node) => [...Object.keys(node.metadata?.labels ?? {}), ...Object.keys(node.metadata?.annotations ?? {})].filter(isNodeHandlerMark));
    expect(marks).toEqual([]);
    expect(nodes.flatMap((node) => (node.status?.conditions ?? []).map((c) => c.type).filter((type) => NODE_HANDLER_CONDITIONS.includes(type)))).toEqual([]);
  });
});
