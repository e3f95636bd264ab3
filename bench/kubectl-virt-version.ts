// How fast `kubectl virt version` answers: the bundled plugin (kubectl-virt/build.sh) run through
// kubectl, as a user types it, against the local cluster with kubevm installed. Not a test: it
// prints figures and writes them to bench/results/kubectl-virt-version.json (bench/report.ts
// shows them with the others). Usage:
//   set -a; source /var/lib/kubevm-local/env; set +a
//   node --import tsx bench/kubectl-virt-version.ts [runs=20]
// Three commands, each run `runs` times after one warm-up run: `kubectl virt version` (node start,
// kubeconfig, one request through the aggregated API to the api-server), `kubectl virt version
// --client` (no request: the plugin's start-up alone) and `kubectl version --client` (kubectl's
// own start-up, which the first includes).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterEnv } from '../test/cluster/cluster-env.js';
import type { BenchResult } from './support/results.js';
import { commit, machine, printTable, writeResult } from './support/results.js';

const runs = Number(process.argv[2] ?? '20');
const env = clusterEnv();
const binDir = mkdtempSync(join(tmpdir(), 'kubectl-virt-bench-'));

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

/** Wall-clock milliseconds of each run of a command; fails on a non-zero exit. */
function time(args: string[]): number[] {
  const environment = { ...process.env, PATH: `${binDir}:${process.env['PATH'] ?? ''}` };
  const once = () => {
    const started = performance.now();
    const res = spawnSync(env.kubectl, args, { env: environment, encoding: 'utf8' });
    const ms = performance.now() - started;
    if (res.status !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${res.status}: ${res.stderr}`);
    return ms;
  };
  once();
  return Array.from({ length: runs }, once);
}

try {
  execFileSync('bash', ['kubectl-virt/build.sh', binDir], { stdio: ['ignore', 'ignore', 'inherit'] });
  const server = time(['virt', 'version']);
  const client = time(['virt', 'version', '--client']);
  const kubectlOnly = time(['version', '--client']);
  const s = (ms: number) => Math.round(ms) / 1000;
  const underASecond = { value: 1, kind: 'max' } as const;
  const result: BenchResult = {
    bench: 'kubectl-virt-version',
    command: `node --import tsx bench/kubectl-virt-version.ts ${runs}`,
    commit: commit(),
    date: new Date().toISOString(),
    conditions: { runs, node: process.version, ...machine(), cluster: 'local single node (make up)', plugin: 'dist/plugin/kubectl-virt (one bundled file) run by kubectl' },
    figures: [
      { figure: 'kubectl virt version, P50', value: s(percentile(server, 50)), unit: 's', goal: underASecond, note: 'kubectl start, node start, the bundle parsed, kubeconfig read, one GET through the aggregated API' },
      { figure: 'kubectl virt version, P95', value: s(percentile(server, 95)), unit: 's', goal: underASecond },
      { figure: 'kubectl virt version --client, P50', value: s(percentile(client, 50)), unit: 's', note: 'no request: start-up alone' },
      { figure: 'kubectl version --client, P50', value: s(percentile(kubectlOnly, 50)), unit: 's', note: 'kubectl alone, included in the figures above' },
    ],
  };
  writeResult(result);
  printTable(result);
} finally {
  rmSync(binDir, { recursive: true, force: true });
}
