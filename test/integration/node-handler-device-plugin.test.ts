// The node handler's device plugin registered with the REAL kubelet of the local cluster (full
// mode: make cluster-up; kubevm not installed). The plugin runs in this process, as root on the
// node, exactly as the DaemonSet runs it (same directory, same devices); the kubelet dials it,
// lists its units into the node's allocatable, and calls Allocate when a pod asks for a device.
// test/e2e/device-plugin.test.ts checks the same through the installed DaemonSet.
// Fails (never skips) when the cluster or its kubelet is missing.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DevicePluginManager, deviceAllocations } from '../../node-handler/device-plugin/plugin.js';
import { isDevicePresent, kubevirtHostDevices } from '../../node-handler/device-plugin/devices.js';
import { coreResources } from '../../runtime/kube.js';
import type { KubeClient, KubeObject } from '../../runtime/kube.js';
import { clusterClient, createTestNamespace, deleteNamespace, requireCluster } from './runtime-support.js';
import { eventually } from '../support/eventually.js';

const state = process.env['KUBEVM_STATE'] ?? '/var/lib/kubevm-local';
/** Fixed by the kubelet (v1beta1 DevicePluginPath), whatever its --root-dir. */
const pluginDir = '/var/lib/kubelet/device-plugins';
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** A count quantity as the API server prints it: 1000 comes back as "1k". */
function units(quantity: string | undefined): number {
  if (quantity === undefined) return 0;
  const match = /^(\d+)(k?)$/.exec(quantity);
  if (!match) throw new Error(`unexpected device quantity ${quantity}`);
  return Number(match[1]) * (match[2] === 'k' ? 1000 : 1);
}

interface NodeObject extends KubeObject {
  status?: { allocatable?: Record<string, string>; capacity?: Record<string, string> };
}
interface PodObject extends KubeObject {
  status?: { phase?: string; reason?: string; message?: string };
}

function nodeName(): string {
  const name = process.env['KUBEVM_NODE_NAME'];
  if (name) return name;
  const env = existsSync(path.join(state, 'env')) ? execFileSync('bash', ['-c', `. ${path.join(state, 'env')}; echo "$KUBEVM_NODE_NAME"`]).toString().trim() : '';
  if (!env) throw new Error(`KUBEVM_NODE_NAME is not set and ${state}/env does not name the node: run make cluster-up`);
  return env;
}

async function allocatable(client: KubeClient, node: string): Promise<Record<string, string>> {
  const object = await client.resource<NodeObject>(coreResources.nodes).get(node);
  return object.status?.allocatable ?? {};
}

describe('device plugin with the real kubelet', () => {
  let client: KubeClient;
  let manager: DevicePluginManager;
  let node: string;
  let namespace: string | undefined;
  const present = new Map<string, boolean>();

  beforeAll(async () => {
    client = clusterClient();
    await requireCluster(client);
    node = nodeName();
    const kubeletSocket = path.join(pluginDir, 'kubelet.sock');
    if (!existsSync(kubeletSocket) || !statSync(kubeletSocket).isSocket()) {
      throw new Error(`no kubelet registration socket at ${kubeletSocket}: this test needs the full local cluster (make cluster-up), not cluster-up-cp`);
    }
    for (const device of kubevirtHostDevices) present.set(device.resourceName, await isDevicePresent(device));
    manager = new DevicePluginManager({ pluginDir, resyncMs: 1000 });
    await manager.start();
  }, 60_000);

  afterAll(async () => {
    if (namespace) await deleteNamespace(client, namespace);
    await manager?.stop();
    client?.close();
  });

  it('puts every device present on the node into its allocatable, 1000 units each, and nothing else', async () => {
    expect(present.get('devices.kubevirt.io/tun')).toBe(true);
    await eventually('the kubelet to publish the device plugin resources', 60_000, async () => {
      const resources = await allocatable(client, node);
      return [...present].every(([name, here]) => !here || units(resources[name]) === 1000);
    });
    const resources = await allocatable(client, node);
    for (const [name, here] of present) {
      expect(units(resources[name])).toBe(here ? 1000 : 0);
    }
    expect(manager.status().every((resource) => resource.registered)).toBe(true);
  }, 90_000);

  it('answers the kubelet’s Allocate for a pod that asks for devices.kubevirt.io/tun', async () => {
    // The image is one static binary (test/cluster/testserver); build and import it if needed.
    const image = execFileSync('bash', [path.join(repoRoot, 'test/cluster/build-test-image.sh')], { encoding: 'utf8' }).trim().split('\n').at(-1) ?? '';
    namespace = await createTestNamespace(client, 'kubevm-dp');
    const before = (await deviceAllocations.get()).values.find((value) => value.labels['resource'] === 'devices.kubevirt.io/tun' && value.labels['outcome'] === 'allocated')?.value ?? 0;
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
            resources: { limits: { 'devices.kubevirt.io/tun': '1' }, requests: { 'devices.kubevirt.io/tun': '1' } },
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
    // UnexpectedAdmissionError here would mean the kubelet's Allocate call failed.
    expect({ phase: last?.status?.phase, reason: last?.status?.reason }).toEqual({ phase: 'Succeeded', reason: undefined });
    const after = (await deviceAllocations.get()).values.find((value) => value.labels['resource'] === 'devices.kubevirt.io/tun' && value.labels['outcome'] === 'allocated')?.value ?? 0;
    expect(after).toBeGreaterThan(before);
  }, 240_000);
});
