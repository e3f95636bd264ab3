// Measures the launcher's per-VM memory overhead: everything resident for one VM (the launcher's
// node process + QEMU) minus the guest RAM the guest actually touched. Not a pass/fail test.
//   node --import tsx bench/launcher-memory.ts [1Gi] [--vcpus=N] [--no-graphics]   one VM, JSON on stdout
//   node --import tsx bench/launcher-memory.ts --matrix   1/2/4 vCPUs × graphics on/off: bench/results/
// With KUBEVM_LAUNCHER_JS=<compiled launcher/main.js> it runs the launcher as compiled JS.
// Boots the test guest (test/guests) with 1 vCPU, default devices (VGA+VNC, balloon, serial,
// masquerade NIC, guest agent channel), waits until it idles, then reads /proc/<pid>/smaps.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startLauncher, testVmi } from '../test/launcher/harness.js';
import { kubevirtLauncherOverhead, kubevirtLauncherOverheadMiB } from './support/kubevirt.js';
import { benchDir, commit, machine, printTable, writeResult } from './support/results.js';
import type { Figure } from './support/results.js';
import { barChart } from './support/svg.js';

interface Mapping {
  name: string;
  perms: string;
  sizeKb: number;
  rssKb: number;
  pssKb: number;
  anonKb: number;
  /** Private_Clean + Private_Dirty: pages no other process maps (what one more VM costs). */
  ussKb: number;
}

function smaps(pid: number): Mapping[] {
  const out: Mapping[] = [];
  let cur: Mapping | undefined;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+\s+(\S+)\s+\S+\s+\S+\s+\d+\s*(.*)$/.exec(line);
    if (head) {
      cur = { name: head[2]?.trim() || '[anon]', perms: head[1] ?? '', sizeKb: 0, rssKb: 0, pssKb: 0, anonKb: 0, ussKb: 0 };
      out.push(cur);
      continue;
    }
    const kv = /^(\w+):\s+(\d+) kB/.exec(line);
    if (!kv || !cur) continue;
    const v = Number(kv[2]);
    if (kv[1] === 'Size') cur.sizeKb = v;
    else if (kv[1] === 'Rss') cur.rssKb = v;
    else if (kv[1] === 'Pss') cur.pssKb = v;
    else if (kv[1] === 'Anonymous') cur.anonKb = v;
    else if (kv[1] === 'Private_Clean' || kv[1] === 'Private_Dirty') cur.ussKb += v;
  }
  return out;
}

const sum = (ms: Mapping[], k: keyof Omit<Mapping, 'name' | 'perms'>) => ms.reduce((a, m) => a + m[k], 0);
const mib = (kb: number) => (kb / 1024).toFixed(1);

export type MemoryReport = Awaited<ReturnType<typeof measure>>;

/** One VM through the real launcher: its memory by mapping, once the guest idles. */
async function measure(memory: string, vcpus: number, graphics: boolean) {
  const vmi = testVmi(`memory-bench-${vcpus}`, 'kubevm.counter=0');
  vmi.spec.domain.memory = { guest: memory };
  vmi.spec.domain.cpu = { cores: vcpus };
  vmi.spec.domain.devices.autoattachGraphicsDevice = graphics;
  // The launcher as it runs in its image: one bundled file (bench/run.sh builds it), with
  // the same node flags as the image's entrypoint (launcher/rootfs.sh).
  const entry = process.env['KUBEVM_LAUNCHER_JS'];
  const nodeFlags = (process.env['KUBEVM_LAUNCHER_NODE_FLAGS'] ?? '').split(' ').filter(Boolean);
  const run = await startLauncher(vmi, entry ? { launcherCommand: [process.execPath, ...nodeFlags, entry] } : {});
  try {
    const status = await run.client.call('start');
    await run.waitForSerial(/KUBEVM-READY/, 90_000);
    await new Promise((r) => setTimeout(r, 5000)); // let the guest idle and the launcher settle
    // setpriv execs node, so the spawned pid is the launcher's own.
    const launcherPid = run.proc.pid as number;
    const qemuPid = status.qemuPid as number;
    const q = smaps(qemuPid);
    const guestKb = Number(readFileSync(`/proc/${qemuPid}/cmdline`, 'utf8').split('\0').find((a, i, arr) => arr[i - 1] === '-m')?.replace('M', '')) * 1024;
    // Guest RAM is the anonymous mapping of exactly the guest's size (QEMU's pc.ram/q35 RAM block).
    const ram = q.filter((m) => m.sizeKb >= guestKb && m.sizeKb <= guestKb + 4096 && m.name === '[anon]');
    const rest = q.filter((m) => !ram.includes(m));
    const anon = rest.filter((m) => m.name === '[anon]' || m.name === '[heap]' || m.name.startsWith('[stack') || m.name.startsWith('/memfd:'));
    const files = rest.filter((m) => !anon.includes(m) && m.name.startsWith('/'));
    const launcher = smaps(launcherPid);
    const launcherRollup = readFileSync(`/proc/${launcherPid}/smaps_rollup`, 'utf8');
    const qemuRollup = readFileSync(`/proc/${qemuPid}/smaps_rollup`, 'utf8');
    // The TCG translation cache: only under emulation; with KVM it does not exist.
    // It is QEMU's only executable anonymous memory (one mapping with 1 vCPU; with several, MTTCG
    // splits it into per-thread regions between guard pages), or a memfd named tcg-jit.
    const tcgCache = status.accelerator?.accel === 'tcg' ? anon.filter((m) => (m.name === '[anon]' && m.perms.includes('x')) || m.name.startsWith('/memfd:tcg-jit')) : [];
    const biggestAnon = [...anon].sort((a, b) => b.rssKb - a.rssKb).slice(0, 6);
    const report = {
      guestMemory: memory,
      vcpus,
      launcherCommand: entry ? ['node', ...nodeFlags, entry].join(' ') : 'node --import tsx launcher/main.ts',
      accelerator: status.accelerator?.accel,
      qemu: {
        totalRssMiB: mib(sum(q, 'rssKb')),
        totalPssMiB: mib(sum(q, 'pssKb')),
        guestRamMappingMiB: mib(sum(ram, 'sizeKb')),
        guestRamTouchedMiB: mib(sum(ram, 'rssKb')),
        overheadRssMiB: mib(sum(rest, 'rssKb')),
        overheadUssMiB: mib(sum(rest, 'ussKb')),
        tcgTranslationCacheRssMiB: mib(sum(tcgCache, 'rssKb')),
        overheadPssMiB: mib(sum(rest, 'pssKb')),
        anonymousOverheadRssMiB: mib(sum(anon, 'rssKb')),
        fileBackedRssMiB: mib(sum(files, 'rssKb')),
        fileBackedPssMiB: mib(sum(files, 'pssKb')),
        biggestAnonymous: biggestAnon.map((m) => ({ name: m.name, sizeMiB: mib(m.sizeKb), rssMiB: mib(m.rssKb) })),
      },
      launcher: { rssMiB: mib(sum(launcher, 'rssKb')), pssMiB: mib(sum(launcher, 'pssKb')), ussMiB: mib(sum(launcher, 'ussKb')) },
      overheadTotalRssMiB: mib(sum(rest, 'rssKb') + sum(launcher, 'rssKb')),
      overheadTotalPssMiB: mib(sum(rest, 'pssKb') + sum(launcher, 'pssKb')),
      overheadTotalUssMiB: mib(sum(rest, 'ussKb') + sum(launcher, 'ussKb')),
      // What the same VM would cost under KVM: the TCG cache is the only TCG-specific mapping.
      overheadTotalRssWithoutTcgCacheMiB: mib(sum(rest, 'rssKb') + sum(launcher, 'rssKb') - sum(tcgCache, 'rssKb')),
      overheadTotalUssWithoutTcgCacheMiB: mib(sum(rest, 'ussKb') + sum(launcher, 'ussKb') - sum(tcgCache, 'ussKb')),
      graphics,
      rollups: { qemu: qemuRollup.trim().split('\n').slice(1, 4), launcher: launcherRollup.trim().split('\n').slice(1, 4) },
    };
    await run.client.call('kill');
    return report;
  } finally {
    await run.stop();
  }
}

/** Least-squares line through (x, y): the per-vCPU slope and the intercept. */
function fit(points: Array<[number, number]>): { slope: number; intercept: number } {
  const n = points.length;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  const slope = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0) / points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return { slope, intercept: my - slope * mx };
}

/**
 * 1, 2 and 4 vCPUs, with and without graphics, 1Gi guests: bench/results/launcher-memory.json,
 * bench/launcher-memory.svg, and the fit the controller's memory request is set from
 * (controller/vmi/launcher-pod.ts, launcherMemoryOverhead).
 */
async function matrix(): Promise<void> {
  const memory = '1Gi';
  const reports: MemoryReport[] = [];
  for (const graphics of [true, false]) {
    for (const vcpus of [1, 2, 4]) {
      process.stderr.write(`measuring ${vcpus} vCPU, graphics ${graphics ? 'on' : 'off'}\n`);
      reports.push(await measure(memory, vcpus, graphics));
    }
  }
  const kvm = (r: MemoryReport) => Number(r.overheadTotalRssWithoutTcgCacheMiB);
  const label = (r: MemoryReport) => `${r.vcpus} vCPU, ${r.graphics ? 'graphics' : 'no graphics'}`;
  const figures: Figure[] = reports.flatMap((r) => [
    {
      figure: `overhead RSS without the TCG cache (KVM estimate), ${label(r)}`,
      value: kvm(r),
      unit: 'MiB',
      kubevirt: kubevirtLauncherOverhead(r.vcpus, 1024, r.graphics),
    },
    { figure: `overhead private (USS) without the TCG cache, ${label(r)}`, value: Number(r.overheadTotalUssWithoutTcgCacheMiB), unit: 'MiB', goal: { value: 80, kind: 'max' as const } },
  ]);
  const perGraphics = fit(reports.filter((r) => r.graphics).map((r) => [r.vcpus, kvm(r)]));
  const noGraphics = fit(reports.filter((r) => !r.graphics).map((r) => [r.vcpus, kvm(r)]));
  const derived = {
    fixedMiB: Number(noGraphics.intercept.toFixed(1)),
    perVcpuMiB: Number(((perGraphics.slope + noGraphics.slope) / 2).toFixed(1)),
    graphicsMiB: Number((perGraphics.intercept - noGraphics.intercept).toFixed(1)),
    tcgTranslationCacheMiB: Math.max(...reports.map((r) => Number(r.qemu.tcgTranslationCacheRssMiB))),
  };
  const result = {
    bench: 'launcher-memory',
    command: 'node --import tsx bench/launcher-memory.ts --matrix',
    commit: commit(),
    date: new Date().toISOString(),
    conditions: {
      ...machine(),
      guest: `test guest (direct kernel boot), ${memory}, idle after boot; graphics = VGA + VNC`,
      accelerator: reports[0]?.accelerator ?? 'unknown',
      // The QEMU the launcher ran (its memory is most of the overhead): the machine's, as the image's.
      qemu: execFileSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? '',
      launcher: reports[0]?.launcherCommand ?? '',
      counted: 'RSS of the launcher (node) and QEMU minus the guest RAM mapping; the TCG translation cache reported apart',
    },
    figures,
    detail: { derived, reports },
  };
  writeResult(result);
  printTable(result);
  process.stdout.write(`fit (RSS without the TCG cache): ${derived.fixedMiB} MiB + ${derived.perVcpuMiB} MiB per vCPU + ${derived.graphicsMiB} MiB with graphics; TCG cache up to ${derived.tcgTranslationCacheMiB} MiB\n`);
  writeFileSync(
    path.join(benchDir, 'launcher-memory.svg'),
    barChart(
      `Launcher overhead per VM (RSS, KVM estimate) beside KubeVirt's request, ${memory} guest`,
      reports.map((r) => ({ label: label(r), value: kvm(r), reference: kubevirtLauncherOverheadMiB(r.vcpus, 1024, r.graphics) })),
      'MiB',
      "KubeVirt's GetMemoryOverhead",
    ),
  );
}

async function main(): Promise<void> {
  if (process.argv.includes('--matrix')) return matrix();
  const memory = process.argv.find((a) => /^\d+[MG]i$/.test(a)) ?? '1Gi';
  const vcpus = Number(process.argv.find((a) => /^--vcpus=\d+$/.test(a))?.slice('--vcpus='.length) ?? '1');
  const report = await measure(memory, vcpus, !process.argv.includes('--no-graphics'));
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exit(1);
});
