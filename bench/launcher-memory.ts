// Measures the launcher's per-VM memory overhead: everything resident for one VM (the launcher's
// node process + QEMU) minus the guest RAM the guest actually touched. Not a pass/fail test.
//   node --import tsx bench/launcher-memory.ts [1Gi] [--no-graphics]
// With KUBEVM_LAUNCHER_JS=<compiled launcher/main.js> it runs the launcher as compiled JS.
// Boots the test guest (test/guests) with 1 vCPU, default devices (VGA+VNC, balloon, serial,
// masquerade NIC, guest agent channel), waits until it idles, then reads /proc/<pid>/smaps.
import { readFileSync } from 'node:fs';
import { startLauncher, testVmi } from '../test/launcher/harness.js';

interface Mapping {
  name: string;
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
    const head = /^[0-9a-f]+-[0-9a-f]+\s+\S+\s+\S+\s+\S+\s+\d+\s*(.*)$/.exec(line);
    if (head) {
      cur = { name: head[1]?.trim() || '[anon]', sizeKb: 0, rssKb: 0, pssKb: 0, anonKb: 0, ussKb: 0 };
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

const sum = (ms: Mapping[], k: keyof Omit<Mapping, 'name'>) => ms.reduce((a, m) => a + m[k], 0);
const mib = (kb: number) => (kb / 1024).toFixed(1);

async function main(): Promise<void> {
  const memory = process.argv.find((a) => /^\d+[MG]i$/.test(a)) ?? '1Gi';
  const graphics = !process.argv.includes('--no-graphics');
  const vmi = testVmi('memory-bench', 'kubevm.counter=0');
  vmi.spec.domain.memory = { guest: memory };
  vmi.spec.domain.devices.autoattachGraphicsDevice = graphics;
  // The launcher as it runs in its image: compiled JS (bench/launcher-memory.sh builds it), with
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
    const tcgCache = status.accelerator?.accel === 'tcg' ? anon.filter((m) => m.sizeKb >= 63 * 1024 && m.sizeKb <= 65 * 1024) : [];
    const biggestAnon = [...anon].sort((a, b) => b.rssKb - a.rssKb).slice(0, 6);
    const report = {
      guestMemory: memory,
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
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    await run.client.call('kill');
  } finally {
    await run.stop();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exit(1);
});
