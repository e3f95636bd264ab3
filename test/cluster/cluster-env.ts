// How the cluster tests find and drive the local cluster (local-cluster/, `make cluster-up`).
// `make cluster-up` writes ${KUBEVM_STATE:-/var/lib/kubevm-local}/env (KEY=value lines:
// KUBECONFIG, KUBEVM_KUBECTL, KUBEVM_KUBECONFIG_DIR, KUBEVM_TEST_NAMESPACE, ...); the test
// orchestration exports KUBECONFIG from it. The tests fail, never skip, without a cluster.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { eventually } from '../support/eventually.js';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface ClusterEnv {
  /** The admin (system:masters) kubeconfig. */
  kubeconfig: string;
  /** Our kubectl, built with the cluster (same version). */
  kubectl: string;
  /** Holds ns-admin, ns-editor and viewer kubeconfigs, bound in `testNamespace`. */
  kubeconfigDir: string;
  testNamespace: string;
  nodeName: string;
  /** The second node's name when the cluster has two (KUBEVM_NODES=2 make cluster-up), else ''. */
  node2Name: string;
}

function readEnvFile(path: string): Record<string, string> {
  if (!existsSync(path)) return {};
  const vars: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m?.[1] && m[2] !== undefined) vars[m[1]] = m[2];
  }
  return vars;
}

/** The cluster the tests run against; throws (failing the suite) when there is none. */
export function clusterEnv(): ClusterEnv {
  const kubeconfig = process.env['KUBECONFIG'];
  if (!kubeconfig) {
    throw new Error(
      'KUBECONFIG is not set: the cluster tests need the local cluster. Run `make cluster-up`, then ' +
        '`source ${KUBEVM_STATE:-/var/lib/kubevm-local}/env && export KUBECONFIG`.',
    );
  }
  if (!existsSync(kubeconfig)) throw new Error(`KUBECONFIG=${kubeconfig} does not exist: is the cluster up?`);
  const file = readEnvFile(join(process.env['KUBEVM_STATE'] ?? '/var/lib/kubevm-local', 'env'));
  const pick = (key: string, fallback: string): string => process.env[key] ?? file[key] ?? fallback;
  return {
    kubeconfig,
    kubectl: pick('KUBEVM_KUBECTL', 'kubectl'),
    kubeconfigDir: pick('KUBEVM_KUBECONFIG_DIR', dirname(kubeconfig)),
    testNamespace: pick('KUBEVM_TEST_NAMESPACE', 'kubevm-rbac'),
    nodeName: pick('KUBEVM_NODE_NAME', ''),
    node2Name: pick('KUBEVM_NODE2_NAME', ''),
  };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command with a hard timeout; never throws on a non-zero exit. `env` replaces the
 * environment (jest gives each suite its own process.env, which children do not see).
 */
export function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], ...(opts.env ? { env: opts.env } : {}) });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    if (child.stdin) {
      // A command may exit without reading all of its input (EPIPE): its exit code says what happened.
      child.stdin.on('error', () => undefined);
      child.stdin.end(opts.input);
    }
  });
}

/** kubectl as the admin (or `kubeconfig`); throws with kubectl's stderr when it fails. */
export async function kubectl(
  env: ClusterEnv,
  args: string[],
  opts: { input?: string; timeoutMs?: number; kubeconfig?: string } = {},
): Promise<string> {
  const res = await run(env.kubectl, ['--kubeconfig', opts.kubeconfig ?? env.kubeconfig, ...args], opts);
  if (res.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${res.code}: ${res.stderr.trim()}`);
  return res.stdout;
}

/** Fails (throws) unless the apiserver answers /readyz within 10 s. */
export async function requireCluster(env: ClusterEnv): Promise<void> {
  const res = await run(env.kubectl, ['--kubeconfig', env.kubeconfig, 'get', '--raw', '/readyz'], { timeoutMs: 10_000 });
  if (res.code !== 0 || res.stdout.trim() !== 'ok') {
    throw new Error(`the cluster of KUBECONFIG=${env.kubeconfig} is not reachable: ${res.stderr.trim() || res.stdout}`);
  }
}

/** Polls `check` until it returns a value, or throws after `timeoutMs` with the last error. */
export interface ApiResponse {
  status: number;
  body: string;
}

interface KubeconfigFile {
  clusters: Array<{ cluster: { server: string; 'certificate-authority-data': string } }>;
  users: Array<{ user: { 'client-certificate-data': string; 'client-key-data': string } }>;
}

/**
 * One HTTP request to the apiserver as the client-certificate user of `kubeconfigPath`,
 * returning the real status code (RBAC tests assert 403 vs 2xx exactly).
 */
export function apiRequest(kubeconfigPath: string, method: string, path: string, body?: unknown): Promise<ApiResponse> {
  const config = YAML.parse(readFileSync(kubeconfigPath, 'utf8')) as KubeconfigFile;
  const cluster = config.clusters[0]?.cluster;
  const user = config.users[0]?.user;
  if (!cluster || !user) throw new Error(`${kubeconfigPath} has no cluster or user`);
  const b64 = (s: string): Buffer => Buffer.from(s, 'base64');
  const url = new URL(path, cluster.server);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ca: b64(cluster['certificate-authority-data']),
        cert: b64(user['client-certificate-data']),
        key: b64(user['client-key-data']),
        headers: payload ? { 'content-type': 'application/json' } : {},
        timeout: 15_000,
      },
      (res) => {
        let data = '';
        res.on('data', (d: Buffer) => (data += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * A fresh namespace (an earlier run's deleted first) with its default ServiceAccount, which the
 * controller-manager creates moments after the namespace: pods are refused until it exists.
 */
export async function freshNamespace(env: ClusterEnv, namespace: string): Promise<void> {
  await kubectl(env, ['delete', 'namespace', namespace, '--ignore-not-found', '--wait=true', '--timeout=60s'], { timeoutMs: 70_000 });
  await kubectl(env, ['create', 'namespace', namespace]);
  await eventually('the default ServiceAccount', 30_000, async () =>
    (await kubectl(env, ['-n', namespace, 'get', 'serviceaccount', 'default', '-o', 'name'])) ? true : undefined,
  );
}

/** Builds and imports the tests' image (test/cluster/build-test-image.sh); returns its ref. */
export async function buildTestImage(): Promise<string> {
  const res = await run('bash', [join(repoRoot, 'test/cluster/build-test-image.sh')], { timeoutMs: 180_000 });
  if (res.code !== 0) throw new Error(`build-test-image.sh exited ${res.code}: ${res.stderr}`);
  return res.stdout.trim();
}
