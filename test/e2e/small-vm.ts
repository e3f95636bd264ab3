// What the subresource suites (api-server, virtctl, admission) share: the kinds they read, and a
// small VM that needs no guest disk (the test guest's kernel and initramfs only), so a VMI is
// Running within seconds.
import { HttpMethod } from '@kubernetes/client-node';
import { join } from 'node:path';
import { repoRoot, run } from '../cluster/cluster-env.js';
import type { KubeClient, KubeObject, ResourceDescriptor } from '../../runtime/kube.js';
import { coreResources } from '../../runtime/kube.js';
import { isJsonObject } from '../../runtime/json.js';
import { eventually } from '../support/eventually.js';
import { diskImage, kernelImage } from './guest-images.js';

export interface VM extends KubeObject {
  spec: { runStrategy?: string };
  status?: { printableStatus?: string; stateChangeRequests?: unknown[] };
}
export interface VMI extends KubeObject {
  spec: { terminationGracePeriodSeconds?: number };
  status?: { phase?: string; conditions?: Array<{ type: string; status: string }>; guestOSInfo?: { prettyName?: string }; fsFreezeStatus?: string };
}

export const vmResource: ResourceDescriptor = { group: 'kubevirt.io', version: 'v1', resource: 'virtualmachines', kind: 'VirtualMachine', namespaced: true };
export const vmiResource: ResourceDescriptor = { group: 'kubevirt.io', version: 'v1', resource: 'virtualmachineinstances', kind: 'VirtualMachineInstance', namespaced: true };
export const vmimResource: ResourceDescriptor = { group: 'kubevirt.io', version: 'v1', resource: 'virtualmachineinstancemigrations', kind: 'VirtualMachineInstanceMigration', namespaced: true };

/** The VMI spec of a small VM: 128Mi, the kernel-boot test guest, no disks. */
export function smallVmiSpec(): Record<string, unknown> {
  return {
    terminationGracePeriodSeconds: 5,
    domain: {
      memory: { guest: '128Mi' },
      firmware: { kernelBoot: { kernelArgs: 'console=ttyS0', container: { image: kernelImage, imagePullPolicy: 'IfNotPresent', kernelPath: '/boot/vmlinuz', initrdPath: '/boot/initramfs.cpio.gz' } } },
      devices: {},
    },
  };
}

/**
 * A VMI spec of the test guest on its disk, counting on its console (KUBEVM-COUNT n lines) while
 * it runs, or doing what other kernel arguments say (test/guests/guest-init.sh).
 */
export function counterVmiSpec(terminationGracePeriodSeconds: number, kernelArgs = 'console=ttyS0 kubevm.counter=1'): Record<string, unknown> {
  return {
    terminationGracePeriodSeconds,
    domain: {
      memory: { guest: '256Mi' },
      firmware: {
        kernelBoot: {
          kernelArgs,
          container: { image: kernelImage, imagePullPolicy: 'IfNotPresent', kernelPath: '/boot/vmlinuz', initrdPath: '/boot/initramfs.cpio.gz' },
        },
      },
      devices: { logSerialConsole: true, disks: [{ name: 'root', disk: { bus: 'virtio' } }] },
    },
    volumes: [{ name: 'root', containerDisk: { image: diskImage, imagePullPolicy: 'IfNotPresent' } }],
  };
}

/** Every count of the counter guest on the launcher pod's copy of the serial console, in order. */
export async function consoleCounts(client: KubeClient, namespace: string, pod: string): Promise<number[]> {
  const text = await client.request(HttpMethod.GET, `/api/v1/namespaces/${namespace}/pods/${pod}/log`, { query: { container: 'compute' } }).catch(() => '');
  return [...String(typeof text === 'string' ? text : JSON.stringify(text)).matchAll(/KUBEVM-COUNT (\d+)/g)].map((m) => Number(m[1]));
}

/**
 * A wait on a launcher pod that, when it fails, also shows the last lines of the pod's compute
 * container (the launcher's log and the guest's console): why a guest printed nothing is in them.
 */
export async function showingPodLog<T>(client: KubeClient, namespace: string, pod: string, wait: Promise<T>): Promise<T> {
  try {
    return await wait;
  } catch (error) {
    const text = await client.request(HttpMethod.GET, `/api/v1/namespaces/${namespace}/pods/${pod}/log`, { query: { container: 'compute', tailLines: '60' } }).catch((e: unknown) => `(no log: ${(e as Error).message})`);
    const log = typeof text === 'string' ? text : JSON.stringify(text);
    throw new Error(`${(error as Error).message}\nthe last lines of ${pod}'s compute container:\n${log}`, { cause: error });
  }
}

/** The counter guest's last count; -1 before the first. */
export async function lastCount(client: KubeClient, namespace: string, pod: string): Promise<number> {
  return (await consoleCounts(client, namespace, pod)).at(-1) ?? -1;
}

export async function createSmallVm(client: KubeClient, namespace: string, name: string, runStrategy: string): Promise<void> {
  await client.resource<KubeObject & { spec: unknown }>(vmResource).create({
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name, namespace },
    spec: { runStrategy, template: { spec: smallVmiSpec() } },
  });
}

export async function createSmallVmi(client: KubeClient, namespace: string, name: string): Promise<void> {
  await client.resource<KubeObject & { spec: unknown }>(vmiResource).create({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name, namespace }, spec: smallVmiSpec() });
}

/** Waits until the VMI of that name is Running; returns its uid. */
export async function runningVmiUid(client: KubeClient, namespace: string, name: string): Promise<string> {
  const vmis = client.resource<VMI>(vmiResource);
  await eventually(`VMI ${name} Running`, 240_000, async () => (await vmis.find(name, namespace))?.status?.phase === 'Running');
  return (await vmis.find(name, namespace))?.metadata?.uid ?? '';
}

export const hasCondition = (object: VMI | undefined, type: string): boolean => object?.status?.conditions?.some((c) => c.type === type && c.status === 'True') === true;

/**
 * The guest's serial console as the launcher copies it into its compute container's log (the test
 * guest reports what it does as KUBEVM- lines); empty while the pod has no log yet.
 */
export async function guestConsole(client: KubeClient, namespace: string, vmiName: string): Promise<string> {
  const pods = await client.resource<KubeObject>(coreResources.pods).list({ namespace, labelSelector: 'kubevirt.io=virt-launcher' });
  const pod = pods.items.find((p) => p.metadata?.annotations?.['kubevirt.io/domain'] === vmiName && !p.metadata?.deletionTimestamp);
  if (!pod?.metadata?.name) return '';
  try {
    const text = await client.request(HttpMethod.GET, `/api/v1/namespaces/${namespace}/pods/${pod.metadata.name}/log`, { query: { container: 'compute' } });
    return typeof text === 'string' ? text : JSON.stringify(text);
  } catch {
    return '';
  }
}

/** How often `marker` stands in `text`. */
export const occurrences = (text: string, marker: string): number => text.split(marker).length - 1;

/**
 * The launcher's own log records in a compute container's log: its JSON lines. A guest console
 * line starts with the guest prefix, so nothing a guest prints is counted here.
 */
export function launcherRecords(log: string): Array<Record<string, unknown>> {
  const records: Array<Record<string, unknown>> = [];
  for (const line of log.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const record: unknown = JSON.parse(line);
      if (isJsonObject(record)) records.push(record);
    } catch {
      // Not one of the launcher's records.
    }
  }
  return records;
}

/** KubeVirt's virtctl built from its Go module (test/virtctl/build.sh; minutes the first time, cached after): its path. */
export async function builtVirtctl(): Promise<string> {
  const build = await run('bash', [join(repoRoot, 'test/virtctl/build.sh')], { timeoutMs: 1_500_000 });
  if (build.code !== 0) throw new Error(`test/virtctl/build.sh exited ${build.code}: ${build.stderr}`);
  return build.stdout.trim();
}
