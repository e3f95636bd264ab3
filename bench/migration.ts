// Live migration across the two nodes of the local cluster (ADR 0015) with kubevm installed: total
// time (the VirtualMachineInstanceMigration created → Succeeded, seen on its watch) and downtime
// (QEMU's `downtime` from query-migrate at completion, as the source's node handler logs it; and
// the gap the guest's one-second serial counter shows across the switch-over, from the kubelet's
// log timestamps of the source and target launcher pods) for an idle 1 GiB guest and for a 1 GiB
// guest rewriting 32 MiB of its memory without pause (kubevm.dirty, test/guests/guest-init.sh).
// Also the launcher relay's cost (launcher/migration-out.ts): its CPU time per GiB carried.
// Not a test: it prints figures and writes bench/results/migration.json. Usage:
//   KUBEVM_NODES=2 make cluster-up && make images && bash scripts/install-kubevm.sh
//   set -a; source /var/lib/kubevm-local/env; set +a
//   node --import tsx bench/migration.ts [runs=3]
import { HttpMethod } from '@kubernetes/client-node';
import type { V1Pod } from '@kubernetes/client-node';
import { selectorLabels } from '../operator/install.js';
import { Informer } from '../runtime/informer.js';
import { coreResources } from '../runtime/kube.js';
import type { KubeObject } from '../runtime/kube.js';
import { counterVmiSpec, vmResource, vmiResource, vmimResource } from '../test/e2e/small-vm.js';
import { clusterClient, createTestNamespace, deleteNamespace, requireCluster } from '../test/integration/runtime-support.js';
import { eventually } from '../test/support/eventually.js';
import { KUBEVIRT } from './support/kubevirt.js';
import { commit, machine, printTable, writeResult } from './support/results.js';
import type { Figure } from './support/results.js';
import { percentile } from './support/stats.js';

const runs = Number(process.argv[2] ?? '3');
/** A migration not done in this long is cancelled and recorded as such (the bench stays short). */
const WAIT_MS = 90_000;
type Pod = V1Pod & KubeObject;
interface Vmi extends KubeObject {
  status?: { phase?: string; nodeName?: string; migrationState?: { targetPod?: string; sourceNode?: string; targetNode?: string; completed?: boolean } };
}
interface Migration extends KubeObject {
  status?: { phase?: string; migrationState?: { failureReason?: string } };
}

/** What the source's node handler logs when the launcher's migrate answered (node-handler/migration-endpoints.ts). */
interface RelayLog {
  migrationUid?: string;
  downtimeMs?: number;
  totalTimeMs?: number;
  relay?: { bytesOut: number; bytesIn: number; launcherCpuMs: number };
}

interface Run {
  guest: string;
  /** Why the migration did not succeed (failed, or not done within WAIT_MS and cancelled). */
  failure?: string;
  totalSeconds: number;
  qemuDowntimeMs: number;
  qemuTotalTimeMs: number;
  /** The counter's gap across the switch-over less its one second; undefined when not seen. */
  guestGapMs: number | undefined;
  relayBytes: number;
  relayCpuMs: number;
  from: string;
  to: string;
}

const client = clusterClient();
await requireCluster(client);
const nodes = (await client.resource<KubeObject>({ group: '', version: 'v1', resource: 'nodes', kind: 'Node', namespaced: false }).list()).items;
if (nodes.length < 2) throw new Error(`the migration bench needs two nodes (KUBEVM_NODES=2 make cluster-up); the cluster has ${nodes.length}`);
const namespace = await createTestNamespace(client, 'kubevm-bench-migration');

const podLog = async (pod: string): Promise<string> => {
  const text = await client.request(HttpMethod.GET, `/api/v1/namespaces/${namespace}/pods/${pod}/log`, { query: { container: 'compute', timestamps: 'true' } }).catch(() => '');
  return typeof text === 'string' ? text : JSON.stringify(text);
};

/** The guest's counter lines (GUEST_CONSOLE_LINE_PREFIX) of a launcher's log with the kubelet's timestamps: count → ms. */
function counts(log: string): Map<number, number> {
  const found = new Map<number, number>();
  for (const m of log.matchAll(/^(\S+) \[guest\] KUBEVM-COUNT (\d+)$/gm)) found.set(Number(m[2]), Date.parse(m[1] ?? ''));
  return found;
}

async function relayLog(sourceNode: string, migrationUid: string): Promise<RelayLog | undefined> {
  const selector = Object.entries(selectorLabels('node-handler')).map(([k, v]) => `${k}=${v}`).join(',');
  const handlers = (await client.resource<Pod>(coreResources.pods).list({ labelSelector: selector })).items;
  const handler = handlers.find((p) => p.spec?.nodeName === sourceNode);
  if (!handler?.metadata?.name) return undefined;
  const text = String(await client.request(HttpMethod.GET, `/api/v1/namespaces/${handler.metadata.namespace}/pods/${handler.metadata.name}/log`, { query: { sinceSeconds: '600' } }));
  for (const line of text.split('\n').reverse()) {
    if (!line.includes(migrationUid) || !line.includes('"relay"')) continue;
    try {
      return JSON.parse(line) as RelayLog;
    } catch {
      continue;
    }
  }
  return undefined;
}

async function migrateOnce(vm: string, guest: string, index: number): Promise<Run> {
  const vmis = client.resource<Vmi>(vmiResource);
  const before = await eventually(`VMI ${vm} Running`, 300_000, async () => {
    const v = await vmis.find(vm, namespace);
    return v?.status?.phase === 'Running' && !v.metadata?.deletionTimestamp ? v : undefined;
  });
  const sourceNode = before.status?.nodeName ?? '';
  const launcher = async () =>
    (await client.resource<Pod>(coreResources.pods).list({ namespace, labelSelector: 'kubevirt.io=virt-launcher' })).items.find(
      (p) => p.metadata?.annotations?.['kubevirt.io/domain'] === vm && p.spec?.nodeName === sourceNode && !p.metadata.deletionTimestamp,
    );
  const sourcePod = (await launcher())?.metadata?.name ?? '';
  await eventually(`${vm} counting`, 180_000, async () => (counts(await podLog(sourcePod)).size >= 3 ? true : undefined));

  const name = `${vm}-${index}`;
  let succeededAt = 0;
  let failed: string | undefined;
  const migrations = new Informer<Migration>({ client, descriptor: vmimResource, namespace });
  migrations.addEventHandler({
    onUpdate: (_old, m) => {
      if (m.metadata?.name !== name) return;
      if (m.status?.phase === 'Succeeded' && !succeededAt) succeededAt = performance.now();
      if (m.status?.phase === 'Failed') failed = m.status.migrationState?.failureReason ?? 'Failed';
    },
  });
  migrations.start();
  await migrations.waitForSync();
  // The source's log, read while it lives (the pod goes once the VMI moved).
  let sourceLog = '';
  const created = performance.now();
  await client.resource<KubeObject & { spec: unknown }>(vmimResource).create({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstanceMigration', metadata: { name, namespace }, spec: { vmiName: vm } });
  try {
    await eventually(`migration ${name} Succeeded`, WAIT_MS, async () => {
      if (failed) return true;
      const text = await podLog(sourcePod);
      if (text) sourceLog = text;
      return succeededAt > 0 || undefined;
    }, { intervalMs: 250 });
  } catch {
    failed = `not Succeeded within ${WAIT_MS / 1000} s: cancelled`;
    await client.resource<KubeObject>(vmimResource).delete(name, namespace);
  } finally {
    await migrations.stop();
  }
  if (failed) {
    const migration = await client.resource<Migration>(vmimResource).find(name, namespace);
    const relay = migration ? await relayLog(sourceNode, migration.metadata?.uid ?? '') : undefined;
    return { guest, failure: failed, totalSeconds: NaN, qemuDowntimeMs: NaN, qemuTotalTimeMs: relay?.totalTimeMs ?? NaN, guestGapMs: undefined, relayBytes: relay?.relay?.bytesOut ?? 0, relayCpuMs: relay?.relay?.launcherCpuMs ?? 0, from: sourceNode, to: sourceNode };
  }
  const totalSeconds = (succeededAt - created) / 1000;
  const after = await eventually(`VMI ${vm} on its target`, 60_000, async () => {
    const v = await vmis.get(vm, namespace);
    return v.status?.migrationState?.completed && v.status.nodeName !== sourceNode ? v : undefined;
  });
  const targetPod = after.status?.migrationState?.targetPod ?? '';
  const migration = await client.resource<Migration>(vmimResource).get(name, namespace);
  const relay = await eventually('the source node handler\'s log of the migration', 30_000, () => relayLog(sourceNode, migration.metadata?.uid ?? ''));
  // The counter's step across the switch-over: the last count the source printed, the next on the target.
  const onSource = counts(sourceLog);
  const last = Math.max(...onSource.keys());
  const onTarget = await eventually('the guest counting on the target', 60_000, async () => {
    const c = counts(await podLog(targetPod));
    return c.has(last + 1) ? c : undefined;
  });
  const gap = (onTarget.get(last + 1) ?? NaN) - (onSource.get(last) ?? NaN) - 1000;
  return {
    guest,
    totalSeconds,
    qemuDowntimeMs: relay.downtimeMs ?? NaN,
    qemuTotalTimeMs: relay.totalTimeMs ?? NaN,
    guestGapMs: Number.isFinite(gap) ? Math.max(0, gap) : undefined,
    relayBytes: relay.relay?.bytesOut ?? 0,
    relayCpuMs: relay.relay?.launcherCpuMs ?? 0,
    from: sourceNode,
    to: after.status?.nodeName ?? '',
  };
}

const GUESTS = [
  { vm: 'idle', guest: 'idle 1 GiB', kernelArgs: 'console=ttyS0 kubevm.counter=1' },
  { vm: 'dirty', guest: '1 GiB rewriting 32 MiB', kernelArgs: 'console=ttyS0 kubevm.counter=1 kubevm.dirty=32' },
];

const results: Run[] = [];
try {
  for (const g of GUESTS) {
    const spec = counterVmiSpec(5, g.kernelArgs) as { domain: { memory: { guest: string } } };
    spec.domain.memory.guest = '1Gi';
    await client.resource<KubeObject & { spec: unknown }>(vmResource).create({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name: g.vm, namespace }, spec: { runStrategy: 'Always', template: { spec } } });
    // Back and forth between the two nodes, one migration at a time.
    for (let i = 0; i < runs; i++) {
      const run = await migrateOnce(g.vm, g.guest, i);
      results.push(run);
      if (run.failure) {
        process.stdout.write(`${g.guest} #${i + 1}: ${run.failure}\n`);
        // The guest stays where it was; a failed migration's target pod is cleaned up by the controller.
        continue;
      }
      process.stdout.write(`${g.guest} #${i + 1}: ${run.from} → ${run.to} in ${run.totalSeconds.toFixed(2)} s, QEMU downtime ${run.qemuDowntimeMs} ms, guest gap ${run.guestGapMs ?? 'n/a'} ms, relay ${(run.relayBytes / 2 ** 20).toFixed(0)} MiB for ${run.relayCpuMs} ms CPU\n`);
    }
    await client.resource<KubeObject>(vmResource).delete(g.vm, namespace);
  }
} finally {
  await deleteNamespace(client, namespace);
}

const of = (guest: string) => results.filter((r) => r.guest === guest && !r.failure);
const median = (values: number[]) => percentile(values, 50);
const figures: Figure[] = [];
for (const g of GUESTS) {
  const rs = of(g.guest);
  const idle = g.vm === 'idle';
  const gaps = rs.flatMap((r) => (r.guestGapMs === undefined ? [] : [r.guestGapMs]));
  const gib = rs.reduce((sum, r) => sum + r.relayBytes, 0) / 2 ** 30;
  const failures = results.filter((r) => r.guest === g.guest && r.failure).length;
  figures.push(
    { figure: `${g.guest}: migrations that succeeded`, value: rs.length, unit: `of ${rs.length + failures}`, ...(failures ? { note: results.find((r) => r.guest === g.guest && r.failure)?.failure ?? '' } : {}) },
    {
      figure: `${g.guest}: migration created → Succeeded, median`,
      value: median(rs.map((r) => r.totalSeconds)),
      unit: 's',
      ...(idle ? { goal: { value: 5, kind: 'max' as const } } : {}),
      note: 'the target pod scheduled and started (its launcher, QEMU -incoming), the stream, the hand-over written by the controllers',
    },
    { figure: `${g.guest}: QEMU's migration total-time, median`, value: median(rs.map((r) => r.qemuTotalTimeMs)) / 1000, unit: 's', note: 'query-migrate total-time at completion: the memory copy alone' },
    {
      figure: `${g.guest}: downtime (QEMU), median`,
      value: median(rs.map((r) => r.qemuDowntimeMs)),
      unit: 'ms',
      ...(idle ? { goal: { value: 100, kind: 'max' as const } } : {}),
      kubevirt: KUBEVIRT.migrationDowntimeLimit,
      note: 'query-migrate downtime at completion (the guest stopped for the last pass and the switch-over)',
    },
    {
      figure: `${g.guest}: guest-visible gap of the 1 s counter, median`,
      value: gaps.length ? median(gaps) : NaN,
      unit: 'ms',
      note: 'the kubelet log timestamps of the last count on the source and the next on the target, less the 1 s between counts; ±250 ms (the launcher reads the console log every 250 ms)',
    },
    { figure: `${g.guest}: launcher relay CPU per GiB carried`, value: gib > 0 ? rs.reduce((sum, r) => sum + r.relayCpuMs, 0) / gib : NaN, unit: 'ms', note: 'the source launcher process\'s CPU time during the migration (relay, QMP polling) per GiB through its relay' },
  );
}

const result = {
  bench: 'migration',
  command: `node --import tsx bench/migration.ts ${runs}`,
  commit: commit(),
  date: new Date().toISOString(),
  conditions: {
    runs,
    ...machine(),
    cluster: 'local two-node cluster on one machine (KUBEVM_NODES=2, ADR 0015): the stream crosses a veth pair, not a network',
    guest: '1 GiB, 1 vCPU, the busybox test guest (test/guests), software emulation (TCG)',
    policy: 'KubeVirt\'s defaults (no bandwidth limit, no auto-converge, no post-copy); QEMU\'s default downtime-limit 300 ms',
  },
  figures,
  detail: results,
};
writeResult(result);
printTable(result);
