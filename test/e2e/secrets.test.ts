// Secrets stay where the user put them (issue 10, item 5), on the full local cluster with kubevm
// installed. Two VMs carry a marker in their cloud-init data, one inline (user-data and network
// data), one through a Secret (userDataSecretRef → cloudInitNoCloud.secretRef). Over their whole
// lifecycle (start, run, stop, start again, delete) the marker appears in no object of any API
// resource type, namespaced or cluster-scoped (Events included), except the VMs, their VMIs and the
// user's Secret (the launchers take their VMI from their node handlers: no object carries it to
// them, ADR 0007), and in no component's log: the controller, the node handler, every launcher container.
// Base64 is looked through: a Secret's data and any string that decodes to text are searched too.
// Fails, never skips, when the cluster or kubevm is missing.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { HttpMethod } from '@kubernetes/client-node';
import type { KubeClient, KubeObject, ResourceDescriptor } from '../../runtime/kube.js';
import { coreResources } from '../../runtime/kube.js';
import { clusterClient, createTestNamespace, deleteNamespace, localClusterSetting, requireCluster } from '../integration/runtime-support.js';
import { eventually } from '../support/eventually.js';
import { diskImage, kernelImage } from './guest-images.js';

jest.setTimeout(900_000);

const marker = `kubevm-marker-${randomBytes(6).toString('hex')}`;

function kubectlRun(args: string[], stdin?: string): Promise<{ error: Error | null; stdout: string; stderr: string }> {
  const binary = localClusterSetting('KUBEVM_KUBECTL');
  return new Promise((resolve) => {
    const child = execFile(binary && existsSync(binary) ? binary : 'kubectl', args, { timeout: 120_000, maxBuffer: 256 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolve({ error, stdout, stderr }),
    );
    if (stdin !== undefined) child.stdin?.end(stdin);
  });
}

async function kubectl(args: string[], stdin?: string): Promise<string> {
  const { error, stdout, stderr } = await kubectlRun(args, stdin);
  if (error) throw new Error(`kubectl ${args.join(' ')}: ${stderr || stdout || error.message}`);
  return stdout;
}

interface Pod extends KubeObject {
  spec?: { initContainers?: Array<{ name: string }>; containers?: Array<{ name: string }> };
}
const vmiResource: ResourceDescriptor = { group: 'kubevirt.io', version: 'v1', resource: 'virtualmachineinstances', kind: 'VirtualMachineInstance', namespaced: true };

let client: KubeClient;
let namespace: string;
/** Every log line read from a launcher container while it existed, by pod/container. */
const launcherLogs = new Map<string, string>();

function vmYaml(name: string, cloudInit: string): string {
  return `apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: ${name}
  namespace: ${namespace}
spec:
  runStrategy: Always
  template:
    spec:
      terminationGracePeriodSeconds: 5
      domain:
        memory:
          guest: 256Mi
        firmware:
          kernelBoot:
            kernelArgs: console=ttyS0
            container:
              image: ${kernelImage}
              imagePullPolicy: IfNotPresent
              kernelPath: /boot/vmlinuz
              initrdPath: /boot/initramfs.cpio.gz
        devices:
          logSerialConsole: true
          disks:
            - name: root
              disk:
                bus: virtio
            - name: cloudinit
              disk:
                bus: virtio
      volumes:
        - name: root
          containerDisk:
            image: ${diskImage}
            imagePullPolicy: IfNotPresent
        - name: cloudinit
          cloudInitNoCloud:
${cloudInit}`;
}

const inlineUserData = `#!/bin/sh\n# ${marker}-inline\necho KUBEVM-E2E-INLINE-RAN\n`;
const secretUserData = `#!/bin/sh\n# ${marker}-secret\necho KUBEVM-E2E-SECRET-RAN\n`;
const indent = (text: string, by: string) => text.split('\n').map((line) => `${by}${line}`).join('\n');

/** Whether the marker is in this value: as text, or in any string that decodes from base64 to it. */
function carriesMarker(value: unknown): boolean {
  if (typeof value === 'string') {
    if (value.includes(marker)) return true;
    const compact = value.replace(/\s+/g, '');
    return compact.length >= 16 && /^[A-Za-z0-9+/]+={0,2}$/.test(compact) && Buffer.from(compact, 'base64').toString('latin1').includes(marker);
  }
  if (Array.isArray(value)) return value.some(carriesMarker);
  if (value && typeof value === 'object') return Object.values(value).some(carriesMarker);
  return false;
}

interface Found {
  kind: string;
  namespace?: string;
  name?: string;
  owners: Array<{ kind?: string }>;
}

/** Every object of every listable API resource type (namespaced in all namespaces, and cluster-scoped) that carries the marker. */
async function objectsCarryingMarker(): Promise<Found[]> {
  // An aggregated API that is not up makes discovery incomplete (exit code 1) but the rest is listed.
  const discovery = await kubectlRun(['api-resources', '--verbs=list', '-o', 'name']);
  const types = discovery.stdout.split('\n').filter(Boolean);
  expect(types).toEqual(expect.arrayContaining(['events', 'secrets', 'pods', 'configmaps', 'virtualmachines.kubevirt.io', 'controllerrevisions.apps', 'events.events.k8s.io']));
  const found: Found[] = [];
  const unlisted: string[] = [];
  for (let i = 0; i < types.length; i += 8) {
    const batch = await Promise.all(
      types.slice(i, i + 8).map(async (type) => {
        const { error, stdout, stderr } = await kubectlRun(['get', type, '--all-namespaces', '-o', 'json']);
        if (error) {
          unlisted.push(`${type}: ${stderr.trim()}`);
          return { items: [] };
        }
        return JSON.parse(stdout) as { items: Array<Record<string, unknown>> };
      }),
    );
    for (const list of batch) {
      for (const item of list.items) {
        if (!carriesMarker(item)) continue;
        const metadata = (item['metadata'] ?? {}) as { name?: string; namespace?: string; ownerReferences?: Array<{ kind?: string }> };
        found.push({ kind: String(item['kind']), namespace: metadata.namespace, name: metadata.name, owners: metadata.ownerReferences ?? [] });
      }
    }
  }
  // Only an aggregated API without storage of its own may fail to list (it serves subresources).
  expect(unlisted.filter((line) => !/subresources\.kubevirt\.io/.test(line))).toEqual([]);
  return found;
}

/** Allowed holders: the VMs, their VMIs and the user's Secret. */
function unexpected(found: Found[]): Found[] {
  return found.filter((object) => {
    if (object.namespace !== namespace) return true;
    if (object.kind === 'VirtualMachine' || object.kind === 'VirtualMachineInstance') return false;
    if (object.kind === 'Secret' && object.name === 'userdata') return false;
    return true;
  });
}

async function podLog(pod: string, container: string, ns = namespace): Promise<string> {
  try {
    const text = await client.request(HttpMethod.GET, `/api/v1/namespaces/${ns}/pods/${pod}/log`, { query: { container } });
    // An empty log comes back as no body.
    return typeof text === 'string' ? text : '';
  } catch {
    return '';
  }
}

/** Reads every container log of the launcher pods that exist now into launcherLogs. */
async function collectLauncherLogs(): Promise<void> {
  const pods = await client.resource<Pod>(coreResources.pods).list({ namespace, labelSelector: 'kubevirt.io=virt-launcher' });
  for (const pod of pods.items) {
    for (const container of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
      const key = `${pod.metadata?.name}/${container.name}`;
      const text = await podLog(pod.metadata?.name ?? '', container.name);
      if (text.length >= (launcherLogs.get(key)?.length ?? 0)) launcherLogs.set(key, text);
    }
  }
}

async function componentLogs(): Promise<Map<string, string>> {
  const logs = new Map<string, string>();
  const pods = await client.resource<Pod>(coreResources.pods).list({ namespace: 'kubevirt' });
  for (const pod of pods.items) {
    for (const container of pod.spec?.containers ?? []) logs.set(`kubevirt/${pod.metadata?.name}/${container.name}`, await podLog(pod.metadata?.name ?? '', container.name, 'kubevirt'));
  }
  return logs;
}

/** The kubelet's pod log files still on disk (every container of every pod, rotated files included). */
function podLogFiles(): Map<string, string> {
  const files = new Map<string, string>();
  const root = join(process.env['KUBEVM_STATE'] ?? '/var/lib/kubevm-local', 'pod-logs');
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      const stat = statSync(path, { throwIfNoEntry: false });
      if (stat?.isDirectory()) walk(path);
      else if (stat?.isFile()) files.set(path, readFileSync(path, 'latin1'));
    }
  };
  if (existsSync(root)) walk(root);
  return files;
}

async function waitForGuest(vm: string, ran: string): Promise<void> {
  await eventually(`VMI ${vm} Running`, 300_000, async () => (await client.resource<KubeObject & { status?: { phase?: string } }>(vmiResource).find(vm, namespace))?.status?.phase === 'Running');
  await eventually(`${vm}: the guest to run its user-data (${ran} on the serial console)`, 300_000, async () => {
    await collectLauncherLogs();
    return [...launcherLogs.entries()].some(([key, text]) => key.includes(vm) && text.includes(ran));
  });
}

beforeAll(async () => {
  client = clusterClient();
  await requireCluster(client);
  const controllers = await client.resource<Pod>(coreResources.pods).list({ namespace: 'kubevirt', labelSelector: 'app.kubernetes.io/component=controller' });
  if (controllers.items.length === 0) throw new Error('no kubevm controller in namespace kubevirt: install kubevm first (make images && scripts/install-kubevm.sh)');
  namespace = await createTestNamespace(client, 'kubevm-e2e-secrets');
}, 120_000);

afterAll(async () => {
  if (namespace) await deleteNamespace(client, namespace);
  client?.close();
});

describe('cloud-init secrets over a VM lifecycle', () => {
  it('the marker is only in the VMs, the VMIs and the Secrets, and in no log', async () => {
    await kubectl(['create', 'secret', 'generic', 'userdata', '-n', namespace, `--from-literal=userdata=${secretUserData}`]);
    await kubectl(['apply', '-f', '-'], vmYaml('inline', `            userData: |\n${indent(inlineUserData.trimEnd(), '              ')}\n            networkData: |\n              version: 2 # ${marker}-network\n`));
    await kubectl(['apply', '-f', '-'], vmYaml('from-secret', '            secretRef:\n              name: userdata\n'));

    // Start and run: the data reached both guests (so the test sees the real path), and is nowhere else.
    await waitForGuest('inline', 'KUBEVM-E2E-INLINE-RAN');
    await waitForGuest('from-secret', 'KUBEVM-E2E-SECRET-RAN');
    expect(unexpected(await objectsCarryingMarker())).toEqual([]);

    // Stop, start again, stop: every launcher pod's logs are read before it goes.
    for (const runStrategy of ['Halted', 'Always', 'Halted']) {
      await collectLauncherLogs();
      for (const vm of ['inline', 'from-secret']) await kubectl(['patch', 'vm', vm, '-n', namespace, '--type', 'merge', '-p', JSON.stringify({ spec: { runStrategy } })]);
      if (runStrategy === 'Always') {
        await waitForGuest('inline', 'KUBEVM-E2E-INLINE-RAN');
        await waitForGuest('from-secret', 'KUBEVM-E2E-SECRET-RAN');
      } else {
        await eventually('the VMIs gone', 180_000, async () => (await client.resource<KubeObject>(vmiResource).list({ namespace })).items.length === 0);
      }
    }

    // Delete: afterwards only the user's Secret holds the marker.
    await kubectl(['delete', 'vm', 'inline', 'from-secret', '-n', namespace, '--wait=true']);
    await eventually('the launcher pods gone', 180_000, async () => (await client.resource<Pod>(coreResources.pods).list({ namespace })).items.length === 0);
    await eventually('the VMIs to be gone, and the marker with them', 60_000, async () =>
      (await objectsCarryingMarker()).every((object) => object.kind === 'Secret' && object.name === 'userdata' && object.namespace === namespace),
    );

    // Logs: launchers (read while they ran), the controller and node handler, and what the kubelet still has on disk.
    expect(launcherLogs.size).toBeGreaterThanOrEqual(8);
    const logs = new Map([...launcherLogs, ...(await componentLogs()), ...podLogFiles()]);
    expect([...logs.keys()].some((key) => key.includes('controller'))).toBe(true);
    expect([...logs.keys()].some((key) => key.includes('node-handler'))).toBe(true);
    expect([...logs.entries()].filter(([, text]) => text.includes(marker)).map(([key]) => key)).toEqual([]);
  });
});
