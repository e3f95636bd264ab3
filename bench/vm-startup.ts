// VM start-up: latency from creation to VMI Running, a timeline of where each second goes, and the
// API writes per VMI, on the local cluster with kubevm installed (`make bench` does the set-up).
// Not a test: it prints figures. Usage:
//   set -a; source /var/lib/kubevm-local/env; set +a
//   node --import tsx bench/vm-startup.ts [count=10] [image-volume|init-copy]
// Three scenarios: one VM alone (created, measured, deleted; five times, one after the other: the
// kubelet's once-a-second relist puts a uniform 0–1 s wait on each start, so one start alone says
// little), then `count` VMs created back to back, then the same again with the guests held paused
// (KubeVirt's startStrategy: Paused): the start path without the CPU that booting TCG guests take
// from the next VM's start. The third is not a goal figure; it says how much of the burst is theirs.
// Each VM: runStrategy Always, the busybox test guest (test/guests), 128 Mi, kernel from a
// kernelBoot container, root disk a containerDisk. Timelines come from bench/support/timeline.ts;
// writes from kube-apiserver's own apiserver_request_total, before the burst and once it has booted.
// The images reach the launcher as image volumes (default: KubeVirt's ImageVolume feature gate is
// switched on in the KubeVirt CR for the run, ADR 0016) or as copies beside it (init-copy); the CR
// is restored afterwards.
// Results: bench/results/vm-startup.json, pictures bench/vm-startup-latency.svg and
// bench/vm-startup-timeline.svg.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { HttpMethod } from '@kubernetes/client-node';
import type { V1Pod } from '@kubernetes/client-node';
import { diskImage, kernelImage } from '../test/e2e/guest-images.js';
import { clusterClient, createTestNamespace, deleteNamespace, localClusterSetting, requireCluster } from '../test/integration/runtime-support.js';
import { eventually } from '../test/support/eventually.js';
import { coreResources } from '../runtime/kube.js';
import type { KubeObject, ResourceDescriptor } from '../runtime/kube.js';
import { Informer } from '../runtime/informer.js';
import type { KubeVirtCR } from '../controller/api.js';
import { IMAGE_VOLUME_FEATURE_GATE, kubevirtResource } from '../controller/manager.js';
import { KUBEVIRT } from './support/kubevirt.js';
import { benchDir, commit, machine, printTable, writeResult } from './support/results.js';
import type { Figure } from './support/results.js';
import { latencyChart, timelineChart } from './support/svg.js';
import { gaps, launcherTimes, milestones, nodeHandlerTimes, runtimeTimes, spans } from './support/timeline.js';
import type { Milestone, Observed } from './support/timeline.js';
import { GUESTS, cpuBetween, sampleCpu, stealBetween } from './support/cpu-by-component.js';
import type { CpuSample } from './support/cpu-by-component.js';
import { percentile } from './support/stats.js';
import { whenLogShows } from './support/pod-log.js';
import { labelsOf } from './support/prometheus.js';
import { EVERY_CLIENT, requestsBetween, sampleRequests } from './support/api-requests.js';
import type { RequestSample } from './support/api-requests.js';

const count = Number(process.argv[2] ?? '10');
const imageSource = process.argv[3] ?? 'image-volume';
if (!['image-volume', 'init-copy'].includes(imageSource)) throw new Error(`image source ${imageSource}: image-volume or init-copy`);
const vms: ResourceDescriptor = { group: 'kubevirt.io', version: 'v1', resource: 'virtualmachines', kind: 'VirtualMachine', namespaced: true };
const vmis: ResourceDescriptor = { group: 'kubevirt.io', version: 'v1', resource: 'virtualmachineinstances', kind: 'VirtualMachineInstance', namespaced: true };
interface Vmi extends KubeObject {
  status?: { phase?: string };
}
type Pod = V1Pod & KubeObject;

const client = clusterClient();
await requireCluster(client);
const kubevirtCr = await client.resource<KubeVirtCR>(kubevirtResource).get('kubevirt', 'kubevirt');
const originalGates = kubevirtCr.spec?.configuration?.developerConfiguration?.featureGates;
/** Sets the KubeVirt CR's feature gates (undefined: removes the field). */
async function setFeatureGates(gates: string[] | undefined): Promise<void> {
  const developer = { ...(kubevirtCr.spec?.configuration?.developerConfiguration ?? {}) };
  if (gates) developer.featureGates = gates;
  else delete developer.featureGates;
  await client.resource<KubeVirtCR>(kubevirtResource).patch('kubevirt', 'kubevirt', [{ op: 'add', path: '/spec/configuration/developerConfiguration', value: developer }], 'json');
}
const otherGates = (originalGates ?? []).filter((gate) => gate !== IMAGE_VOLUME_FEATURE_GATE);
await setFeatureGates(imageSource === 'image-volume' ? [...otherGates, IMAGE_VOLUME_FEATURE_GATE] : otherGates);
const logDir = localClusterSetting('KUBEVM_LOG_DIR') ?? '/var/lib/kubevm-local/logs';
const containerdLogPath = path.join(logDir, 'containerd.log');

// Successful writes (2xx) count; refused ones (409 conflicts, ...) are counted apart as retries.
type Writes = { vmi: number; pod: number; vmiCreates: number; refused: number };
async function writes(): Promise<Writes> {
  const text = String(await client.request(HttpMethod.GET, '/metrics'));
  const result: Writes = { vmi: 0, pod: 0, vmiCreates: 0, refused: 0 };
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const labels = labelsOf(line);
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

/**
 * The node handler's CPU time and its time runnable but waiting for a CPU, all threads, in ns
 * (/proc/<pid>/task/<tid>/schedstat): a handler starved by the guests shows here. Read from this
 * host's /proc (the local cluster's node is this machine); undefined when no handler runs here.
 */
function nodeHandlerSchedstat(): { runNs: number; waitNs: number } | undefined {
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // exited meanwhile
    }
    if (!argv.includes('dist/node-handler/main.js')) continue;
    const total = { runNs: 0, waitNs: 0 };
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const [run = 0, wait = 0] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(' ').map(Number);
      total.runNs += run;
      total.waitNs += wait;
    }
    return total;
  }
  return undefined;
}

function vm(name: string, namespace: string, paused: boolean): KubeObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name, namespace },
    spec: {
      runStrategy: 'Always',
      template: {
        spec: {
          terminationGracePeriodSeconds: 5,
          ...(paused ? { startStrategy: 'Paused' } : {}),
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

interface VmRun {
  name: string;
  observed: Observed;
  booted?: number;
  podName?: string;
  podUid?: string;
  initContainers: Set<string>;
  /** Whether its launcher pod mounts the images (image volumes) rather than copying them. */
  imageVolumes?: boolean;
  timeline?: Milestone[];
}

interface ScenarioOptions {
  /** Start the guests paused (startStrategy: Paused); then no guest boots, and none is waited for. */
  paused?: boolean;
  /** Right before the first VM is created. */
  beforeCreate?: () => void;
  /** Once every VMI is Running. */
  whenRunning?: () => void;
  /** Once every guest has booted, before the VMs are deleted. */
  whenDone?: () => Promise<void>;
}

/** Creates the VMs one after the other, watches them to Running and the guest's boot marker. */
async function runScenario(prefix: string, n: number, options: ScenarioOptions = {}): Promise<VmRun[]> {
  const namespace = await createTestNamespace(client, `kubevm-bench-${prefix}`);
  const runs = new Map<string, VmRun>();
  const vmiInformer = new Informer<Vmi>({ client, descriptor: vmis, namespace });
  const podInformer = new Informer<Pod>({ client, descriptor: coreResources.pods, namespace });
  const onVmi = (vmi: Vmi) => {
    const run = runs.get(vmi.metadata?.name ?? '');
    if (!run) return;
    const now = Date.now();
    run.observed.vmiAdded ??= now;
    if (vmi.status?.phase === 'Scheduled' || vmi.status?.phase === 'Running') run.observed.vmiScheduled ??= now;
    if (vmi.status?.phase === 'Running') run.observed.vmiRunning ??= now;
  };
  const onPod = (pod: Pod) => {
    const owner = pod.metadata?.ownerReferences?.find((ref) => ref.kind === 'VirtualMachineInstance')?.name;
    const run = owner ? runs.get(owner) : undefined;
    if (!run) return;
    const now = Date.now();
    run.observed.podAdded ??= now;
    run.podName = pod.metadata?.name;
    run.podUid = pod.metadata?.uid;
    for (const init of pod.spec?.initContainers ?? []) run.initContainers.add(init.name);
    run.imageVolumes ??= (pod.spec?.volumes ?? []).some((volume) => volume.image !== undefined);
    if (pod.spec?.nodeName) run.observed.podBound ??= now;
    if (pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) run.observed.podReady ??= now;
  };
  vmiInformer.addEventHandler({ onAdd: onVmi, onUpdate: (_, vmi) => onVmi(vmi) });
  podInformer.addEventHandler({ onAdd: onPod, onUpdate: (_, pod) => onPod(pod) });
  vmiInformer.start();
  podInformer.start();
  await Promise.all([vmiInformer.waitForSync(), podInformer.waitForSync()]);
  try {
    options.beforeCreate?.();
    for (let i = 0; i < n; i++) {
      const name = `${prefix}-${i}`;
      runs.set(name, { name, observed: { vmCreate: Date.now() }, initContainers: new Set() });
      await client.resource<KubeObject>(vms).create(vm(name, namespace, options.paused === true));
    }
    const all = [...runs.values()];
    await eventually('every VMI Running', 5 * 60_000, () => all.every((run) => run.observed.vmiRunning !== undefined), { intervalMs: 250 }).catch((error: unknown) =>
      console.error(error instanceof Error ? error.message : error),
    );
    options.whenRunning?.();
    // A guest's kernel can panic under TCG on a loaded machine ("IO-APIC + timer doesn't work"):
    // such a guest never prints the marker; it is counted as not booted, and the bench goes on.
    if (!options.paused) {
      // Each launcher's log followed (one streamed request per VM) until its guest says it booted.
      const timeout = AbortSignal.timeout(120_000);
      await Promise.all(
        all.map(async (run) => {
          if (!run.podName) return;
          // The VMI can be Running before the kubelet reports the container started; until then the
          // API server refuses its log.
          const ready = await eventually(`${run.name}: launcher pod Ready`, 60_000, () => run.observed.podReady !== undefined, { intervalMs: 50 }).then(
            () => true,
            (error: unknown) => (console.error(error instanceof Error ? error.message : String(error)), false),
          );
          if (!ready) return;
          run.booted = await whenLogShows(client, { namespace, pod: run.podName, container: 'compute' }, 'KUBEVM-GUEST-BOOTED', timeout).catch((error: unknown) => {
            console.error(`${run.name}: ${error instanceof Error ? error.message : String(error)}`);
            return undefined;
          });
        }),
      );
      const notBooted = all.filter((run) => run.booted === undefined).map((run) => run.name);
      if (notBooted.length > 0) console.error(`guests that did not boot within 120 s: ${notBooted.join(', ')}`);
    }
    await options.whenDone?.();
    const containerdLog = readFileSync(containerdLogPath, 'utf8');
    const handlerLog = await nodeHandlerLog();
    for (const run of all) {
      const launcher = run.podName ? launcherTimes(await launcherLog(namespace, run.podName)) : {};
      const runtime = run.podUid ? runtimeTimes(containerdLog, run.podUid) : { containers: [] };
      run.timeline = milestones(run.observed, runtime, launcher, nodeHandlerTimes(handlerLog, namespace, run.name), run.initContainers);
    }
    return all;
  } finally {
    await vmiInformer.stop();
    await podInformer.stop();
    await deleteNamespace(client, namespace);
    // The next scenario starts on a quiet node and a quiet API: wait until this one's namespace,
    // its launcher pods and every other object in it, are gone.
    await eventually(`${namespace} gone`, 180_000, async () => (await client.resource<KubeObject>(coreResources.namespaces).find(namespace)) === undefined).catch(
      (error: unknown) => console.error(error instanceof Error ? error.message : error),
    );
  }
}

/** The node handler's log on this (single) node. */
async function nodeHandlerLog(): Promise<string> {
  const pods = await client.resource<Pod>(coreResources.pods).list({ namespace: 'kubevirt', labelSelector: 'kubevirt.io=virt-handler' });
  const name = pods.items[0]?.metadata?.name;
  return name ? String(await client.request(HttpMethod.GET, `/api/v1/namespaces/kubevirt/pods/${name}/log`).catch(() => '')) : '';
}

async function launcherLog(namespace: string, pod: string): Promise<string> {
  return String(await client.request(HttpMethod.GET, `/api/v1/namespaces/${namespace}/pods/${pod}/log`, { query: { container: 'compute' } }).catch(() => ''));
}

const seconds = (runs: VmRun[], to: (run: VmRun) => number | undefined) =>
  runs.flatMap((run) => {
    const at = to(run);
    return at === undefined ? [] : [(at - run.observed.vmCreate) / 1000];
  });

/** The median length of each gap over the runs, largest first: where the time goes. */
function whereTimeGoes(runs: VmRun[]): Array<{ to: string; what: string; kind: string; medianMs: number }> {
  const byTarget = new Map<string, { what: string; kind: string; values: number[] }>();
  for (const run of runs) {
    for (const gap of gaps(run.timeline ?? [])) {
      const entry = byTarget.get(gap.to) ?? { what: gap.what, kind: gap.kind, values: [] };
      entry.values.push(gap.ms);
      byTarget.set(gap.to, entry);
    }
  }
  return [...byTarget]
    .map(([to, entry]) => ({ to, what: entry.what, kind: entry.kind, medianMs: Math.round(percentile(entry.values, 50)) }))
    .sort((a, b) => b.medianMs - a.medianMs);
}

const describe = (list: ReturnType<typeof whereTimeGoes>, top = 4) =>
  list
    .slice(0, top)
    .map((g) => `${(g.medianMs / 1000).toFixed(2)} s before "${g.to}" (${g.what})`)
    .join('; ');

// Writes are counted cluster-wide (apiserver_request_total has no namespace): start only once no
// other VMI exists, e.g. of a test suite whose namespaces are still being deleted.
await eventually('no VMI left in the cluster before the bench', 180_000, async () => (await client.resource<Vmi>(vmis).list()).items.length === 0, { intervalMs: 1000 }).catch(
  (error: unknown) => console.error(`${error instanceof Error ? error.message : String(error)}: the write counts may include other VMIs' writes`),
);
// The relist wait is uniform over a second: the median of five starts, each on a quiet node.
const ALONE_RUNS = 5;
const aloneRuns: VmRun[] = [];
for (let i = 0; i < ALONE_RUNS; i++) aloneRuns.push(...(await runScenario('alone', 1)));
const runningMs = (run: VmRun) => (run.observed.vmiRunning ?? Infinity) - run.observed.vmCreate;
const alone = [...aloneRuns].sort((a, b) => runningMs(a) - runningMs(b))[Math.floor(aloneRuns.length / 2)];
// Writes are counted from before the burst's creation to when every guest has booted (at least
// the 30 s after Running the writes used to be counted over), before the namespace is deleted.
const before = await writes();
let after = before;
const requestsBefore = await sampleRequests(client);
let requestsAfter: RequestSample = new Map();
const handlerBefore = nodeHandlerSchedstat();
let handlerAfter = handlerBefore;
let cpuBefore: CpuSample | undefined;
let cpuRunning: CpuSample | undefined;
const burst = await runScenario('burst', count, {
  beforeCreate: () => (cpuBefore = sampleCpu()),
  whenRunning: () => (cpuRunning = sampleCpu()),
  whenDone: async () => {
    after = await writes();
    requestsAfter = await sampleRequests(client);
    handlerAfter = nodeHandlerSchedstat();
  },
});
let pausedCpuBefore: CpuSample | undefined;
let pausedCpuRunning: CpuSample | undefined;
const pausedBurst = await runScenario('paused', count, {
  paused: true,
  beforeCreate: () => (pausedCpuBefore = sampleCpu()),
  whenRunning: () => (pausedCpuRunning = sampleCpu()),
});
await setFeatureGates(originalGates);
if (!alone) throw new Error('the single VM did not run');
const mounted = [alone, ...burst].filter((run) => run.imageVolumes === true).length;

const aloneRunning = seconds([alone], (r) => r.observed.vmiRunning)[0] ?? NaN;
const aloneAll = seconds(aloneRuns, (r) => r.observed.vmiRunning);
const aloneBooted = seconds([alone], (r) => r.booted)[0] ?? NaN;
const burstRunning = seconds(burst, (r) => r.observed.vmiRunning);
const burstBooted = seconds(burst, (r) => r.booted);
const aloneGaps = whereTimeGoes([alone]);
const burstGaps = whereTimeGoes(burst);
const pausedRunning = seconds(pausedBurst, (r) => r.observed.vmiRunning);
const pausedGaps = whereTimeGoes(pausedBurst);
const per = (a: number, b: number) => Number(((a - b) / count).toFixed(2));
const figures: Figure[] = [
  {
    figure: `alone: creation → VMI Running, median of ${String(ALONE_RUNS)}`,
    value: aloneRunning,
    unit: 's',
    goal: { value: 1.5, kind: 'max' },
    note: `the ${String(aloneAll.length)} starts: ${aloneAll.map((v) => v.toFixed(2)).join(', ')} s; where the median one's time goes: ${describe(aloneGaps)}`,
  },
  { figure: 'alone: creation → guest booted', value: aloneBooted, unit: 's' },
  ...([
    [50, 3, KUBEVIRT.creationToRunningP50],
    [95, 5, KUBEVIRT.creationToRunningP95],
  ] as const).map(([p, goal, kubevirt]) => ({
    figure: `${count} back to back: creation → VMI Running P${p}`,
    value: percentile(burstRunning, p),
    unit: 's',
    goal: { value: goal, kind: 'max' as const },
    kubevirt,
    note: `median over the VMs: ${describe(burstGaps)}`,
  })),
  { figure: `${count} back to back: creation → guest booted P50`, value: percentile(burstBooted, 50), unit: 's' },
  { figure: `${count} back to back: creation → guest booted P95`, value: percentile(burstBooted, 95), unit: 's' },
  { figure: 'VMI writes per VMI', value: per(after.vmi, before.vmi), unit: 'writes', goal: { value: 3, kind: 'max' }, kubevirt: KUBEVIRT.vmiWritesPerVmi },
  { figure: 'launcher pod writes per VMI', value: per(after.pod, before.pod), unit: 'writes', goal: { value: 0, kind: 'max' }, kubevirt: KUBEVIRT.podWritesPerVmi },
  { figure: 'refused writes per VMI', value: per(after.refused, before.refused), unit: 'writes', goal: { value: 0, kind: 'max' } },
  { figure: 'VMI creates per VM', value: per(after.vmiCreates, before.vmiCreates), unit: 'creates' },
  ...(handlerBefore && handlerAfter
    ? [
        { figure: `${count} back to back: node handler CPU time (creation → every guest booted)`, value: (handlerAfter.runNs - handlerBefore.runNs) / 1e9, unit: 's' },
        {
          figure: `${count} back to back: node handler runnable but waiting for a CPU (same span)`,
          value: (handlerAfter.waitNs - handlerBefore.waitNs) / 1e9,
          unit: 's',
          note: "its threads' run-queue wait (schedstat): the handler's share of the CPU against the guests it serves",
        },
      ]
    : []),
];

// Who made the burst's API requests: each client's own count, creation → every guest booted.
const requests = requestsBetween(requestsBefore, requestsAfter, count);
for (const r of requests) {
  const kinds = Object.entries(r.writesByKind).slice(0, 4).map(([kind, n]) => `${kind} ${String(n)}`);
  figures.push({
    figure: `${count} back to back: API requests per VM, ${r.component}`,
    value: r.perVm,
    unit: 'requests',
    note: `writes ${String(r.writesPerVm)}${kinds.length > 0 ? ` (${kinds.join(', ')})` : ''}${r.component === EVERY_CLIENT ? '; reads include watches and node proxy' : ''}`,
  });
}

/** What the machine's CPU did from a burst's first creation to its last VMI Running: the total, with its span and the guests' part. */
function cpuUsedFigure(label: string, before: CpuSample, running: CpuSample, cpu: ReturnType<typeof cpuBetween>): Figure {
  const span = (running.at - before.at) / 1000;
  const used = cpu.reduce((sum, c) => sum + c.seconds, 0);
  const guests = cpu.find((c) => c.component === GUESTS)?.seconds ?? 0;
  return {
    figure: `${label}: CPU used, creation → every VMI Running`,
    value: Number(used.toFixed(2)),
    unit: 's',
    note: `${span.toFixed(1)} s on ${String(cpus().length)} cores: ${((used / (span * cpus().length)) * 100).toFixed(0)} % of what the machine had; QEMU (the guests) took ${guests.toFixed(1)} s of it; the hypervisor kept the cores from running for ${stealBetween(before, running).toFixed(2)} s (steal)`,
  };
}

// Where the machine's CPU went from the burst's first creation to its last VMI Running.
const cpu = cpuBefore && cpuRunning ? cpuBetween(cpuBefore, cpuRunning) : [];
if (cpuBefore && cpuRunning) {
  figures.push(cpuUsedFigure(`${count} back to back`, cpuBefore, cpuRunning, cpu));
  for (const c of cpu) if (c.seconds >= 0.05) figures.push({ figure: `${count} back to back, that CPU: ${c.component}`, value: c.seconds, unit: 's' });
}

// The same burst with the guests held paused: the start path without the guests' CPU.
const pausedLabel = `${count} back to back, guests paused`;
figures.push(
  ...([50, 95] as const).map((p) => ({
    figure: `${pausedLabel}: creation → VMI Running P${p}`,
    value: percentile(pausedRunning, p),
    unit: 's',
    note: `startStrategy: Paused, so QEMU starts but no guest runs and none takes CPU from the next VM's start; not a goal figure: it shows what of the burst is the start path and what the booting guests; median over the VMs: ${describe(pausedGaps)}`,
  })),
);
const pausedCpu = pausedCpuBefore && pausedCpuRunning ? cpuBetween(pausedCpuBefore, pausedCpuRunning) : [];
if (pausedCpuBefore && pausedCpuRunning) figures.push(cpuUsedFigure(pausedLabel, pausedCpuBefore, pausedCpuRunning, pausedCpu));

const toDetail = (run: VmRun) => ({
  vm: run.name,
  runningSeconds: seconds([run], (r) => r.observed.vmiRunning)[0],
  bootedSeconds: seconds([run], (r) => r.booted)[0],
  timeline: (run.timeline ?? []).map((m) => ({ milestone: m.name, ms: m.at - run.observed.vmCreate, before: m.gap, kind: m.kind })),
});
const result = {
  bench: 'vm-startup',
  command: `node --import tsx bench/vm-startup.ts ${count} ${imageSource}`,
  commit: commit(),
  date: new Date().toISOString(),
  conditions: {
    ...machine(),
    vms: count,
    running: burstRunning.length,
    runningPaused: pausedRunning.length,
    booted: burstBooted.length,
    accelerator: 'tcg (software emulation)',
    cluster: 'local single node (local-cluster/, Kubernetes v1.34.4, containerd v2.4.2, kubelet PLEG relist 1 s)',
    images: `${imageSource === 'image-volume' ? 'image volumes (KubeVirt CR feature gate ImageVolume)' : 'copied beside the launcher (init-copy)'}; launcher pods that mounted them: ${mounted} of ${burst.length + 1}`,
    guest: 'busybox test guest, 1 vCPU, 128Mi, kernelBoot container + containerDisk',
  },
  figures,
  detail: {
    whereTimeGoes: { alone: aloneGaps, burst: burstGaps, pausedBurst: pausedGaps },
    burstCpu: cpu,
    burstRequests: requests,
    pausedBurstCpu: pausedCpu,
    alone: toDetail(alone),
    aloneRuns: aloneRuns.map(toDetail),
    burst: burst.map(toDetail),
    pausedBurst: pausedBurst.map(toDetail),
  },
};
writeResult(result);
printTable(result);

writeFileSync(
  path.join(benchDir, 'vm-startup-latency.svg'),
  latencyChart(
    `Creation → VMI Running, kubevm on ${String(machine()['cpus'])} cores under TCG (${result.date.slice(0, 10)}, ${result.commit.slice(0, 8)})`,
    [
      { label: '1 VM alone', values: aloneAll, p50: aloneRunning, p95: percentile(aloneAll, 95), goalP50: 1.5 },
      { label: `${count} VMs back to back`, values: burstRunning, p50: percentile(burstRunning, 50), p95: percentile(burstRunning, 95), goalP50: 3, goalP95: 5 },
      { label: `${count} VMs, guests paused`, values: pausedRunning, p50: percentile(pausedRunning, 50), p95: percentile(pausedRunning, 95) },
      { label: `${count} VMs: guest booted`, values: burstBooted, p50: percentile(burstBooted, 50), p95: percentile(burstBooted, 95) },
    ],
    [
      { label: 'KubeVirt density job P50 ≈15–25 s (100 VMIs, KVM)', from: 15, to: 25 },
      { label: 'KubeVirt density job P95 ≈27–35 s', from: 27, to: 35 },
    ],
  ),
);
writeFileSync(path.join(benchDir, 'vm-startup-timeline.svg'), timelineChart(`One VM alone: creation → VMI Running (${result.commit.slice(0, 8)})`, spans(alone.timeline ?? [])));
const median = [...burst].sort((a, b) => (a.observed.vmiRunning ?? Infinity) - (b.observed.vmiRunning ?? Infinity))[Math.floor(burst.length / 2)];
if (median) {
  writeFileSync(
    path.join(benchDir, 'vm-startup-timeline-burst.svg'),
    timelineChart(`The median VM of ${count} back to back (${median.name}): creation → VMI Running`, spans(median.timeline ?? [])),
  );
}
const printGaps = (title: string, list: ReturnType<typeof whereTimeGoes>) => {
  console.log(title);
  for (const g of list) console.log(`  ${String(g.medianMs).padStart(6)}  ${g.kind.padEnd(4)}  → ${g.to}: ${g.what}`);
};
printGaps('\nwhere the time goes, one VM alone (ms):', aloneGaps);
printGaps(`where the time goes, ${count} back to back, median per VM (ms):`, burstGaps);
printGaps(`where the time goes, ${count} back to back with the guests paused, median per VM (ms):`, pausedGaps);
client.close();
