// Where the machine's CPU goes between two moments, by component: the guests (QEMU), the
// launchers, kubevm's own pods, each Kubernetes daemon, containerd and its shims, and what ran and
// exited in between (runc, CNI plugins, ...). Read from this host's /proc and its cgroup v1
// cpuacct root, so it works where the local cluster's node is this machine (bench/run.sh).
import { readFileSync, readdirSync } from 'node:fs';

/** The whole machine's CPU time (ns) and each live process's (ticks), at one moment. */
export interface CpuSample {
  at: number;
  totalNs: number;
  /** Time this machine's CPUs were ready to run but the hypervisor ran something else (/proc/stat's steal). */
  stealNs: number;
  processes: Map<string, { component: string; ticks: number }>;
}

const CPUACCT_ROOT = '/sys/fs/cgroup/cpuacct/cpuacct.usage';
const TICK_NS = 1e9 / 100; // USER_HZ: /proc/<pid>/stat counts hundredths of a second
const EXITED = 'exited in between (runc, CNI plugins, probes, ...)';
/** The component the guests' QEMU processes are counted under. */
export const GUESTS = 'guests (QEMU, TCG)';

/** The component a process belongs to, from its name and its command line. */
function component(pid: number, comm: string, argv: string[]): string {
  if (pid === process.pid) return 'this bench';
  if (comm.startsWith('qemu-system')) return GUESTS;
  if (comm === 'containerd') return 'containerd';
  if (comm.startsWith('containerd-shim')) return 'containerd shims';
  // The local cluster runs every Kubernetes daemon from one binary named kube: its first argument.
  if (argv[0]?.endsWith('/kube') && argv[1]) return argv[1];
  if (comm === 'node') {
    const script = argv.find((arg) => arg.endsWith('main.js')) ?? '';
    if (script.includes('launcher')) return 'launchers (node)';
    const match = /dist\/([a-z-]+)\/main\.js$/.exec(script);
    if (match) return `kubevm ${match[1] ?? ''}`;
  }
  return 'other';
}

/** Every live process's CPU time and component, and the machine's total, now. */
export function sampleCpu(): CpuSample | undefined {
  let totalNs: number;
  try {
    totalNs = Number(readFileSync(CPUACCT_ROOT, 'utf8'));
  } catch {
    return undefined; // not cgroup v1 with cpuacct: the accounting is left out
  }
  const processes = new Map<string, { component: string; ticks: number }>();
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // comm is in parentheses and may hold spaces: the fields after it are counted from its end.
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const fields = stat.slice(close + 2).split(' ');
      const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      // pid and start time: a pid reused in between is another process.
      processes.set(`${pid}@${fields[19] ?? ''}`, { component: component(Number(pid), comm, argv), ticks });
    } catch {
      continue; // exited while being read
    }
  }
  return { at: Date.now(), totalNs, stealNs: stealNs(), processes };
}

/** The steal time of all CPUs so far: the 8th value of /proc/stat's first line, in USER_HZ ticks. */
function stealNs(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/) ?? [];
  return Number(fields[8] ?? 0) * TICK_NS;
}

/** Seconds the hypervisor kept this machine's CPUs from running, from `before` to `after`: a busy host slows every figure. */
export function stealBetween(before: CpuSample, after: CpuSample): number {
  return Number(((after.stealNs - before.stealNs) / 1e9).toFixed(2));
}

/**
 * CPU seconds per component from `before` to `after`, largest first. A process that started in
 * between counts from zero; one that exited in between is in the remainder, with everything else
 * that ran and exited (the machine's total less what the live processes account for).
 */
export function cpuBetween(before: CpuSample, after: CpuSample): Array<{ component: string; seconds: number }> {
  const byComponent = new Map<string, number>();
  let accountedNs = 0;
  for (const [key, now] of after.processes) {
    const ns = (now.ticks - (before.processes.get(key)?.ticks ?? 0)) * TICK_NS;
    if (ns <= 0) continue;
    accountedNs += ns;
    byComponent.set(now.component, (byComponent.get(now.component) ?? 0) + ns);
  }
  const remainder = after.totalNs - before.totalNs - accountedNs;
  if (remainder > 0) byComponent.set(EXITED, remainder);
  return [...byComponent]
    .map(([name, ns]) => ({ component: name, seconds: Number((ns / 1e9).toFixed(2)) }))
    .sort((a, b) => b.seconds - a.seconds);
}
