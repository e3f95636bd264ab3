// Creation-to-Running latency and API writes per VMI, on the local cluster with kubevm installed
// (`make up`, or `make cluster-up && make images && scripts/install-kubevm.sh`). Not a test: it
// prints figures. Usage:
//   set -a; source /var/lib/kubevm-local/env; set +a
//   node --import tsx bench/vm-startup.ts [count=10]
// For each of N VirtualMachines (runStrategy Always, the busybox test guest) it measures the time
// from the VM's creation to its VMI's Running phase (QEMU started, as the node handler reports it)
// and to the guest's boot marker on the serial console. Writes are read from kube-apiserver's own
// apiserver_request_total before and after: every PUT/PATCH/APPLY to virtualmachineinstances
// (status included) and to pods other than their status (the kubelet's).
// The figures are also written to bench/results/vm-startup.json with the commit and the command.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { HttpMethod } from '@kubernetes/client-node';
import { diskImage, kernelImage } from '../test/e2e/guest-images.js';
import { clusterClient, createTestNamespace, deleteNamespace, requireCluster, sleep } from '../test/integration/runtime-support.js';
import type { KubeObject, ResourceDescriptor } from '../runtime/kube.js';

const count = Number(process.argv[2] ?? '10');
const vms: ResourceDescriptor = { group: 'kubevirt.io', version: 'v1', resource: 'virtualmachines', kind: 'VirtualMachine', namespaced: true };
const vmis: ResourceDescriptor = { group: 'kubevirt.io', version: 'v1', resource: 'virtualmachineinstances', kind: 'VirtualMachineInstance', namespaced: true };
interface Vmi extends KubeObject {
  status?: { phase?: string; activePods?: Record<string, string> };
}

const client = clusterClient();
await requireCluster(client);

// Successful writes (2xx) count; refused ones (409 conflicts, ...) are counted apart as retries.
type Writes = { vmi: number; pod: number; vmiCreates: number; refused: number };
async function writes(): Promise<Writes> {
  const text = String(await client.request(HttpMethod.GET, '/metrics'));
  const result: Writes = { vmi: 0, pod: 0, vmiCreates: 0, refused: 0 };
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const labels: Record<string, string> = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1] ?? '', m[2] ?? '']));
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    const write = ['PUT', 'PATCH', 'APPLY'].includes(labels['verb'] ?? '');
    if (!(labels['code'] ?? '').startsWith('2')) {
      if ((write || labels['verb'] === 'POST') && ['virtualmachineinstances', 'pods'].includes(labels['resource'] ?? '')) result.refused += value;
      continue;
    }
    if (labels['resource'] === 'virtualmachineinstances' && write) result.vmi += value;
    if (labels['resource'] === 'virtualmachineinstances' && labels['verb'] === 'POST') result.vmiCreates += value;
    if (labels['resource'] === 'pods' && write && labels['subresource'] === '') result.pod += value;
  }
  return result;
}

function vm(name: string, namespace: string): KubeObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name, namespace },
    spec: {
      runStrategy: 'Always',
      template: {
        spec: {
          terminationGracePeriodSeconds: 5,
          domain: {
            memory: { guest: '128Mi' },
            resources: {},
            firmware: { kernelBoot: { kernelArgs: 'console=ttyS0', container: { image: kernelImage, kernelPath: '/boot/vmlinuz', initrdPath: '/boot/initramfs.cpio.gz' } } },
            devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }] },
          },
          volumes: [{ name: 'root', containerDisk: { image: diskImage } }],
        },
      },
    },
  } as KubeObject;
}

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
};

const namespace = await createTestNamespace(client, 'kubevm-bench');
try {
  const before = await writes();
  const created = new Map<string, number>();
  const running = new Map<string, number>();
  const booted = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const name = `bench-${i}`;
    created.set(name, Date.now());
    await client.resource<KubeObject>(vms).create(vm(name, namespace));
  }
  const deadline = Date.now() + 15 * 60_000;
  while ((running.size < count || booted.size < count) && Date.now() < deadline) {
    const list = await client.resource<Vmi>(vmis).list({ namespace });
    for (const vmi of list.items) {
      const name = vmi.metadata?.name ?? '';
      if (vmi.status?.phase === 'Running' && !running.has(name)) running.set(name, Date.now());
      const pod = Object.keys(vmi.status?.activePods ?? {})[0];
      if (running.has(name) && !booted.has(name) && pod) {
        const pods = await client.request(HttpMethod.GET, `/api/v1/namespaces/${namespace}/pods`, { query: { labelSelector: `kubevirt.io/created-by=${vmi.metadata?.uid}` } });
        const podName = (pods as { items?: { metadata: { name: string } }[] }).items?.[0]?.metadata.name;
        const log = podName ? String(await client.request(HttpMethod.GET, `/api/v1/namespaces/${namespace}/pods/${podName}/log`, { query: { container: 'compute' } }).catch(() => '')) : '';
        if (log.includes('KUBEVM-GUEST-BOOTED')) booted.set(name, Date.now());
      }
    }
    await sleep(200);
  }
  const atRunning = await writes();
  await sleep(30_000);
  const settled = await writes();
  const toRunning = [...running].map(([name, t]) => (t - (created.get(name) ?? t)) / 1000);
  const toBooted = [...booted].map(([name, t]) => (t - (created.get(name) ?? t)) / 1000);
  const per = (a: number, b: number) => ((a - b) / count).toFixed(2);
  const figures = [
    { figure: 'vmi_running_p50', value: percentile(toRunning, 50), unit: 's' },
    { figure: 'vmi_running_p95', value: percentile(toRunning, 95), unit: 's' },
    { figure: 'guest_booted_p50', value: percentile(toBooted, 50), unit: 's' },
    { figure: 'guest_booted_p95', value: percentile(toBooted, 95), unit: 's' },
    { figure: 'vmi_writes_per_vmi_to_running', value: Number(per(atRunning.vmi, before.vmi)), unit: 'writes' },
    { figure: 'vmi_writes_per_vmi_settled', value: Number(per(settled.vmi, before.vmi)), unit: 'writes' },
    { figure: 'pod_writes_per_vmi', value: Number(per(settled.pod, before.pod)), unit: 'writes' },
    { figure: 'refused_writes_per_vmi', value: Number(per(settled.refused, before.refused)), unit: 'writes' },
  ];
  const commit = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(
    'bench/results/vm-startup.json',
    `${JSON.stringify(
      {
        command: `node --import tsx bench/vm-startup.ts ${count}`,
        commit,
        date: new Date().toISOString(),
        conditions: { vms: count, running: running.size, booted: booted.size, accelerator: 'tcg', cpus: cpus().length, cluster: 'local single node (make up)' },
        figures,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`VMs: ${count} created, ${running.size} Running, ${booted.size} booted (guest marker on the serial console)`);
  console.log(`creation → VMI Running: P50 ${percentile(toRunning, 50).toFixed(1)} s, P95 ${percentile(toRunning, 95).toFixed(1)} s`);
  console.log(`creation → guest booted: P50 ${percentile(toBooted, 50).toFixed(1)} s, P95 ${percentile(toBooted, 95).toFixed(1)} s`);
  console.log(`VMI creates per VM: ${per(atRunning.vmiCreates, before.vmiCreates)}`);
  console.log(`VMI writes per VMI (PUT/PATCH/APPLY, status included) up to Running: ${per(atRunning.vmi, before.vmi)}; 30 s later: ${per(settled.vmi, before.vmi)}`);
  console.log(`pod writes per VMI after creation (not the kubelet's pods/status): ${per(settled.pod, before.pod)}`);
  console.log(`refused writes per VMI (409 conflicts, 422 failed patch tests and other non-2xx; VMIs and pods): ${per(settled.refused, before.refused)}`);
} finally {
  await deleteNamespace(client, namespace);
  client.close();
}
