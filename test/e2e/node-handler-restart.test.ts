// Killing the node handler pod mid-lifecycle loses no VM (issue 6): with kubevm installed on the
// full local cluster, a running VMI's guest keeps running while its node's handler pod is deleted
// and the DaemonSet replaces it; the new handler re-attaches to the launcher (ADR 0007) and, since
// nothing changed, writes nothing to the VMI. Then pause/unpause through the new handler and a
// deletion that shuts the guest down show it really drives the launcher again.
// Same guest images as test/e2e/vm-lifecycle.test.ts. Fails, never skips, without kubevm installed.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { KubeClient, KubeObject, ResourceDescriptor } from '../../runtime/kube.js';
import { coreResources, isNotFound } from '../../runtime/kube.js';
import { pauseRequestAnnotation } from '../../node-handler/vmi-handler.js';
import { clusterClient, createTestNamespace, deleteNamespace, requireCluster } from '../integration/runtime-support.js';
import { counterVmiSpec, lastCount } from './small-vm.js';
import { eventually } from '../support/eventually.js';
import { scrape, scraperToken } from '../support/metrics-scraper.js';

jest.setTimeout(600_000);

const vmiResource: ResourceDescriptor = { group: 'kubevirt.io', version: 'v1', resource: 'virtualmachineinstances', kind: 'VirtualMachineInstance', namespaced: true };

interface Vmi extends KubeObject {
  status?: { phase?: string; nodeName?: string; activePods?: Record<string, string>; conditions?: { type: string; status: string; reason?: string }[] };
}
interface Pod extends KubeObject {
  spec?: { nodeName?: string };
  status?: { phase?: string; conditions?: { type: string; status: string }[]; containerStatuses?: { restartCount: number }[] };
}

function vmi(namespace: string): Vmi {
  return { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'survivor', namespace }, spec: counterVmiSpec(10) } as Vmi;
}

/** The node handler's VMI status passes by outcome (kubevm_status_updates_total), read from its metrics endpoint as an authorized scraper. */
async function handlerStatusPasses(client: KubeClient, pod: string): Promise<Record<string, number>> {
  const ip = (await client.resource<KubeObject & { status?: { podIP?: string } }>(coreResources.pods).get(pod, 'kubevirt')).status?.podIP ?? '';
  const scraped = await scrape(ip, 8443, await scraperToken(client, 'kubevm-e2e-scraper', true));
  if (scraped.status !== 200) throw new Error(`scraping the node handler's metrics: ${scraped.status} ${scraped.body}`);
  const text = scraped.body;
  const passes: Record<string, number> = {};
  for (const match of text.matchAll(/^kubevm_status_updates_total\{([^}]*)\} (\S+)$/gm)) {
    if (!match[1]?.includes('resource="virtualmachineinstances"')) continue;
    const outcome = /outcome="([^"]+)"/.exec(match[1])?.[1] ?? '';
    passes[outcome] = (passes[outcome] ?? 0) + Number(match[2]);
  }
  return passes;
}

/**
 * Wait until the handler has nothing more to report about the VMI: poke it (a metadata change makes
 * the handler reconcile it) until a pass ends without a status write.
 */
async function untilHandlerSettled(client: KubeClient, namespace: string, handlerPod: string): Promise<void> {
  const vmis = client.resource<Vmi>(vmiResource);
  const total = (passes: Record<string, number>) => Object.values(passes).reduce((sum, n) => sum + n, 0);
  let poke = 0;
  await eventually('a node handler pass with nothing to write', 120_000, async () => {
    const before = await handlerStatusPasses(client, handlerPod);
    await vmis.patch('survivor', namespace, { metadata: { annotations: { 'kubevm.io/e2e-poke': String(++poke) } } });
    let after = before;
    await eventually('the node handler to reconcile the poked VMI', 30_000, async () => total((after = await handlerStatusPasses(client, handlerPod))) > total(before));
    return (after['written'] ?? 0) === (before['written'] ?? 0);
  });
}

async function readyHandlerPod(client: KubeClient, node: string): Promise<Pod | undefined> {
  const pods = await client.resource<Pod>(coreResources.pods).list({ namespace: 'kubevirt', labelSelector: 'app.kubernetes.io/component=node-handler' });
  return pods.items.find((pod) => pod.spec?.nodeName === node && !pod.metadata?.deletionTimestamp && pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
}

describe('a node handler restart loses no VM', () => {
  let client: KubeClient;
  let namespace: string | undefined;

  beforeAll(async () => {
    client = clusterClient();
    await requireCluster(client);
    const handlers = await client.resource<Pod>(coreResources.pods).list({ namespace: 'kubevirt', labelSelector: 'app.kubernetes.io/component=node-handler' });
    if (handlers.items.length === 0) throw new Error('no node handler pods in namespace kubevirt: install kubevm first (make images && scripts/install-kubevm.sh)');
    namespace = await createTestNamespace(client, 'kubevm-nh-e2e');
  });

  afterAll(async () => {
    if (namespace) await deleteNamespace(client, namespace);
    client?.close();
  });

  it('keeps the guest running, re-attaches without a write, and drives the launcher again', async () => {
    const ns = namespace as string;
    const vmis = client.resource<Vmi>(vmiResource);
    await vmis.create(vmi(ns));
    await eventually('VMI Running', 300_000, async () => (await vmis.get('survivor', ns)).status?.phase === 'Running');
    const running = await vmis.get('survivor', ns);
    const node = running.status?.nodeName ?? '';
    const [podUid] = Object.keys(running.status?.activePods ?? {});
    const launcher = (await client.resource<Pod>(coreResources.pods).list({ namespace: ns, labelSelector: 'kubevirt.io=virt-launcher' })).items.find((pod) => pod.metadata?.uid === podUid);
    expect(launcher).toBeDefined();
    const launcherName = launcher?.metadata?.name ?? '';
    await eventually('the guest counting', 120_000, async () => (await lastCount(client, ns, launcherName)) >= 1);
    const oldHandler = await readyHandlerPod(client, node);
    expect(oldHandler).toBeDefined();
    // Once the handler has reported all it knows, remember the VMI's version.
    await untilHandlerSettled(client, ns, oldHandler?.metadata?.name ?? '');
    const before = await vmis.get('survivor', ns);

    await client.resource<Pod>(coreResources.pods).delete(oldHandler?.metadata?.name ?? '', 'kubevirt', { gracePeriodSeconds: 0 });
    await eventually('a new ready node handler pod', 180_000, async () => {
      const next = await readyHandlerPod(client, node);
      return next !== undefined && next.metadata?.uid !== oldHandler?.metadata?.uid;
    });
    const countAtRestart = await lastCount(client, ns, launcherName);
    await eventually('the guest to keep counting', 60_000, async () => (await lastCount(client, ns, launcherName)) >= countAtRestart + 2);

    const after = await vmis.get('survivor', ns);
    expect(after.status?.phase).toBe('Running');
    expect(after.status?.activePods).toEqual(before.status?.activePods);
    // Nothing changed, so the new handler wrote nothing.
    expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
    const pod = await client.resource<Pod>(coreResources.pods).get(launcherName, ns);
    expect(pod.metadata?.uid).toBe(podUid);
    expect(pod.status?.containerStatuses?.every((status) => status.restartCount === 0)).toBe(true);

    // The new handler drives the launcher: pause, then unpause.
    await vmis.patch('survivor', ns, { metadata: { annotations: { [pauseRequestAnnotation]: 'true' } } });
    await eventually('Paused', 60_000, async () => (await vmis.get('survivor', ns)).status?.conditions?.some((c) => c.type === 'Paused' && c.status === 'True') === true);
    await vmis.patch('survivor', ns, { metadata: { annotations: { [pauseRequestAnnotation]: null } } });
    await eventually('unpaused', 60_000, async () => !(await vmis.get('survivor', ns)).status?.conditions?.some((c) => c.type === 'Paused'));

    // Deleting the VMI shuts the guest down through the launcher; the VMI and its pod go away.
    await vmis.delete('survivor', ns);
    await eventually('the VMI to be gone', 120_000, async () => {
      try {
        await vmis.get('survivor', ns);
        return false;
      } catch (error) {
        if (isNotFound(error)) return true;
        throw error;
      }
    });
  });
});
