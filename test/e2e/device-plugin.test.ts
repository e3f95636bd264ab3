// The installed node handler (deploy/node-handler, make images + scripts/install-kubevm.sh) has
// registered its device plugins with the REAL kubelet: the node's allocatable shows 1000 units of
// every KubeVirt device present on the node, and a pod asking for devices.kubevirt.io/tun is
// admitted (the kubelet called the plugin's Allocate) and runs unprivileged.
// Fails (never skips) when the cluster, its kubelet or the node handler is missing.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDevicePresent, kubevirtHostDevices } from '../../node-handler/device-plugin/devices.js';
import { coreResources } from '../../runtime/kube.js';
import type { KubeClient, KubeObject } from '../../runtime/kube.js';
import { clusterClient, createTestNamespace, deleteNamespace, requireCluster } from '../integration/runtime-support.js';
import { eventually } from '../support/eventually.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** A count quantity as the API server prints it: 1000 comes back as "1k". */
function units(quantity: string | undefined): number {
  if (quantity === undefined) return 0;
  const match = /^(\d+)(k?)$/.exec(quantity);
  if (!match) throw new Error(`unexpected device quantity ${quantity}`);
  return Number(match[1]) * (match[2] === 'k' ? 1000 : 1);
}

interface NodeObject extends KubeObject {
  status?: { allocatable?: Record<string, string> };
}
interface PodObject extends KubeObject {
  spec?: { nodeName?: string };
  status?: { phase?: string; reason?: string; message?: string; conditions?: { type: string; status: string }[] };
}

describe('the installed node handler’s device plugin', () => {
  let client: KubeClient;
  let namespace: string | undefined;
  let node: string;

  beforeAll(async () => {
    client = clusterClient();
    await requireCluster(client);
    const pods = await client.resource<PodObject>(coreResources.pods).list({ namespace: 'kubevirt', labelSelector: 'app.kubernetes.io/component=node-handler' });
    const ready = pods.items.filter((pod) => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    if (ready.length === 0) throw new Error('no ready node handler pod in namespace kubevirt: install kubevm first (make images && scripts/install-kubevm.sh)');
    node = ready[0]?.spec?.nodeName ?? '';
  }, 60_000);

  afterAll(async () => {
    if (namespace) await deleteNamespace(client, namespace);
    client?.close();
  });

  it('advertises 1000 units of each device present on the node, and none of the absent ones', async () => {
    const present = new Map<string, boolean>();
    for (const device of kubevirtHostDevices) present.set(device.resourceName, await isDevicePresent(device));
    expect(present.get('devices.kubevirt.io/tun')).toBe(true);
    await eventually('the node to advertise the present devices', 60_000, async () => {
      const object = await client.resource<NodeObject>(coreResources.nodes).get(node);
      const resources = object.status?.allocatable ?? {};
      return [...present].every(([name, here]) => (here ? units(resources[name]) === 1000 : units(resources[name]) === 0));
    });
  }, 90_000);

  it('lets an unprivileged pod that asks for devices.kubevirt.io/tun run', async () => {
    const image = execFileSync('bash', [path.join(repoRoot, 'test/cluster/build-test-image.sh')], { encoding: 'utf8' }).trim().split('\n').at(-1) ?? '';
    namespace = await createTestNamespace(client, 'kubevm-dp-e2e');
    const pods = client.resource<PodObject>(coreResources.pods);
    await pods.create({
      metadata: { name: 'wants-tun', namespace },
      spec: {
        restartPolicy: 'Never',
        nodeName: node,
        automountServiceAccountToken: false,
        containers: [
          {
            name: 'main',
            image,
            imagePullPolicy: 'Never',
            args: ['echo', 'a container with devices.kubevirt.io/tun'],
            resources: { limits: { 'devices.kubevirt.io/tun': '1' } },
            securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
          },
        ],
      },
    } as PodObject);
    let last: PodObject | undefined;
    await eventually('the pod to finish', 120_000, async () => {
      last = await pods.get('wants-tun', namespace);
      return last.status?.phase === 'Succeeded' || last.status?.phase === 'Failed';
    });
    // UnexpectedAdmissionError here would mean the kubelet's Allocate call to the plugin failed.
    expect({ phase: last?.status?.phase, reason: last?.status?.reason }).toEqual({ phase: 'Succeeded', reason: undefined });
  }, 240_000);
});
