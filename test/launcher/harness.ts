// Runs the launcher as a plain process (node + tsx) against a VMI JSON in a temporary pod-like
// directory layout, with the test guests from test/guests/build.sh. Every process a test starts
// is in one process group that stop() kills, so nothing outlives a test.
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, lchownSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import { LauncherClient, connectUnixSocket } from '../../node-handler/launcher-client.js';
import { requestOnLauncherConnection } from '../../node-handler/launcher-request.js';
import type { DomainEvent, LauncherArgs, LauncherResult, LauncherStreamCommand } from '../../runtime/contracts/launcher-protocol.js';
import type { LauncherVmi } from '../../launcher/vmi.js';
import { eventually } from '../support/eventually.js';
import { NodeStreams } from '../../api-server/node-streams.js';
import { StreamServer } from '../../node-handler/stream-server.js';
import type { VirtualMachineInstance } from '../../node-handler/vmi-handler.js';
import { silentLogger } from '../../runtime/logging.js';
import { API_SERVER_STREAMS_TLS_SECRET, NODE_HANDLER_STREAMS_TLS_SECRET } from '../../runtime/contracts/streams.js';
import { reconcilePki } from '../../operator/pki.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface GuestFiles {
  dir: string;
  vmlinuz: string;
  initramfs: string;
  diskQcow2: string;
  containerDiskLayout: string;
}

let guestCache: GuestFiles | undefined;

/** Builds (or finds cached) the test guests. */
export function testGuests(): GuestFiles {
  if (guestCache) return guestCache;
  const out = execFileSync('bash', [path.join(repoRoot, 'test/guests/build.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const dir = out.trim().split('\n').pop() as string;
  guestCache = {
    dir,
    vmlinuz: path.join(dir, 'vmlinuz'),
    initramfs: path.join(dir, 'initramfs.cpio.gz'),
    diskQcow2: path.join(dir, 'disk.qcow2'),
    containerDiskLayout: path.join(dir, 'containerdisk'),
  };
  return guestCache;
}

/** The launcher's uid in the pod; tests run the launcher (and so QEMU) as this user. */
export const QEMU_UID = 107;

export interface LauncherRun {
  dir: string;
  runDir: string;
  ephemeralDir: string;
  containerDiskDir: string;
  pvcDir: string;
  proc: ChildProcess;
  client: LauncherClient;
  /** The launcher's own log lines (pino JSON). */
  output: string[];
  exited: Promise<{ code: number | null; signal: string | null }>;
  serialLog(): string;
  waitForSerial(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  stop(): Promise<void>;
}

export interface LauncherRunOptions {
  /** Extra env (overrides). */
  env?: Record<string, string>;
  /** Run the launcher and QEMU as uid/gid 107 (setpriv). Default true when the tests run as root. */
  asQemuUser?: boolean;
  /** The launcher command (default: node + tsx on launcher/main.ts); e.g. compiled JS for the bench. */
  launcherCommand?: string[];
  /** The launcher's run directory (its `private` volume), e.g. one of a PodsDir; default <dir>/private. */
  runDir?: string;
  /** Lay out files before the launcher starts (containerDisks, PVC dirs). */
  prepare?: (run: { dir: string; containerDiskDir: string; pvcDir: string; secretDir: string }) => void;
  /**
   * Where the launcher takes its VMI: a file (default), or its input socket, as in a pod
   * (KUBEVM_VMI_UID): something must then deliver it (the node handler's LauncherInputs) before
   * startLauncher can return.
   */
  vmiFrom?: 'file' | 'input-socket';
}

/** A VMI booting the test guest by direct kernel boot, 1 vCPU, 128 MiB. */
export function testVmi(name: string, kernelArgs = '', extra: { disks?: NonNullable<LauncherVmi['spec']['domain']['devices']['disks']>; volumes?: LauncherVmi['spec']['volumes']; grace?: number } = {}): LauncherVmi {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: 'launcher-test', uid: `uid-${name}` },
    spec: {
      terminationGracePeriodSeconds: extra.grace ?? 30,
      domain: {
        cpu: { cores: 1 },
        memory: { guest: '128Mi' },
        firmware: { kernelBoot: { kernelArgs: `console=ttyS0 quiet ${kernelArgs}`.trim(), container: { image: 'kubevm/test-kernel', kernelPath: '/vmlinuz', initrdPath: '/initramfs.cpio.gz' } } },
        devices: { autoattachGraphicsDevice: false, disks: extra.disks ?? [] },
      },
      volumes: extra.volumes ?? [],
    },
  };
}

function tree(dir: string, uid: number): void {
  chownSync(dir, uid, uid);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) tree(p, uid);
    // A link a test placed stays pointing where it points, with the target left alone.
    else if (e.isSymbolicLink()) lchownSync(p, uid, uid);
    else chownSync(p, uid, uid);
  }
}

export async function startLauncher(vmi: LauncherVmi, options: LauncherRunOptions = {}): Promise<LauncherRun> {
  const guests = testGuests();
  const dir = mkdtempSync(path.join(os.tmpdir(), `kubevm-launcher-${vmi.metadata.name}-`));
  const kernelDir = path.join(dir, 'kernel-boot');
  const runDir = options.runDir ?? path.join(dir, 'private');
  const ephemeralDir = path.join(dir, 'ephemeral-disks');
  const containerDiskDir = path.join(dir, 'container-disks');
  const pvcDir = path.join(dir, 'vmi-disks');
  const secretDir = path.join(dir, 'secret');
  for (const d of [kernelDir, containerDiskDir, pvcDir, secretDir]) mkdirSync(d, { recursive: true });
  // Copies, not links: the cache lives under root's home, which uid 107 cannot enter.
  copyFileSync(guests.vmlinuz, path.join(kernelDir, 'vmlinuz'));
  copyFileSync(guests.initramfs, path.join(kernelDir, 'initramfs.cpio.gz'));
  writeFileSync(path.join(dir, 'vmi.json'), JSON.stringify(vmi));
  options.prepare?.({ dir, containerDiskDir, pvcDir, secretDir });
  const asQemu = options.asQemuUser ?? process.getuid?.() === 0;
  if (asQemu) tree(dir, QEMU_UID);
  if (asQemu && options.runDir) chownSync(options.runDir, QEMU_UID, QEMU_UID);

  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: dir,
    LOG_LEVEL: 'info',
    ...(options.vmiFrom === 'input-socket' ? { KUBEVM_VMI_UID: vmi.metadata.uid ?? '' } : { KUBEVM_VMI_FILE: path.join(dir, 'vmi.json') }),
    KUBEVM_RUN_DIR: runDir,
    KUBEVM_EPHEMERAL_DIR: ephemeralDir,
    KUBEVM_CONTAINER_DISK_DIR: containerDiskDir,
    KUBEVM_PVC_DIR: pvcDir,
    KUBEVM_BLOCK_DEVICE_DIR: path.join(dir, 'block'),
    KUBEVM_SECRET_DIR: secretDir,
    KUBEVM_KERNEL_BOOT_DIR: kernelDir,
    // This machine's KVM cannot run guests (nested, paravirtual): emulate. Real clusters use KVM.
    KUBEVM_ACCEL: 'tcg',
    KUBEVM_ALLOW_EMULATION: 'true',
    KUBEVM_AUTOSTART: 'false',
    KUBEVM_GUEST_AGENT_POLL_SECONDS: '0',
    KUBEVM_LINGER_SECONDS: '1',
    ...options.env,
  };
  const node = options.launcherCommand ?? [process.execPath, '--import', 'tsx', path.join(repoRoot, 'launcher/main.ts')];
  const argv = asQemu
    ? ['setpriv', `--reuid=${QEMU_UID}`, `--regid=${QEMU_UID}`, '--clear-groups', '--inh-caps=-all', '--no-new-privs', ...node]
    : node;
  const proc = spawn(argv[0] as string, argv.slice(1), { cwd: repoRoot, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const collect = (d: Buffer) => output.push(...d.toString().split('\n').filter(Boolean));
  proc.stdout?.on('data', collect);
  proc.stderr?.on('data', collect);
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));

  const sock = path.join(runDir, 'launcher.sock');
  const connected = await eventually(`the launcher to open ${sock}`, 30_000, async () =>
    // A launcher that exited will never open it: stop waiting.
    proc.exitCode !== null ? new Error(`the launcher exited with code ${proc.exitCode}`) : new LauncherClient(await connectUnixSocket(sock)),
    { intervalMs: 100 },
  ).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
  if (connected instanceof Error) {
    killGroup(proc);
    throw new Error(`launcher did not open ${sock}: ${connected.message}\n${output.join('\n')}`);
  }
  const client = connected;
  const serialLog = () => {
    try {
      return readFileSync(path.join(runDir, 'serial.log'), 'utf8');
    } catch {
      return '';
    }
  };
  const run: LauncherRun = {
    dir,
    runDir,
    ephemeralDir,
    containerDiskDir,
    pvcDir,
    proc,
    client,
    output,
    exited,
    serialLog,
    waitForSerial(pattern, timeoutMs) {
      // On a timeout the launcher's own last lines too: why a guest printed nothing is in them.
      const shows = () => `the serial console to show ${pattern}; it shows:\n${serialLog().slice(-2000)}\nthe launcher's last lines:\n${output.slice(-40).join('\n')}`;
      return eventually(shows, timeoutMs, () => serialLog().match(pattern), { intervalMs: 200 });
    },
    async stop() {
      client?.close();
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGINT'); // the launcher kills QEMU and exits
        await Promise.race([exited, new Promise((r) => setTimeout(r, 8000).unref())]);
      }
      killGroup(proc);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return run;
}

function killGroup(proc: ChildProcess): void {
  if (proc.pid === undefined) return;
  try {
    process.kill(-proc.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * A kubelet-like pods directory (ADR 0007): a pod's `private` emptyDir at
 * <pods>/<pod uid>/volumes/kubernetes.io~empty-dir/private, as the node handler finds it. Short
 * pod uids keep socket paths within sun_path for the launcher's own listen.
 */
export interface PodsDir {
  path: string;
  /** Creates (if needed) and returns the pod's `private` directory, owned by the launcher's uid. */
  privateDir(podUid: string): string;
  /**
   * The same directory through a read-only bind mount, as the node handler mounts the kubelet's
   * pods directory (SECURITY.md): a handler given this path fails with EROFS on any write there.
   * Needs root (the launcher tests run as root); made on first use, unmounted by remove().
   */
  readOnlyView(): string;
  remove(): void;
}

export function makePodsDir(): PodsDir {
  const pods = mkdtempSync(path.join(os.tmpdir(), 'kubevm-pods-'));
  // The launcher (uid 107) must reach its run directory.
  chmodSync(pods, 0o755);
  let view: string | undefined;
  return {
    path: pods,
    privateDir(podUid) {
      const emptyDirs = path.join(pods, podUid, 'volumes', 'kubernetes.io~empty-dir');
      mkdirSync(emptyDirs, { recursive: true, mode: 0o755 });
      const dir = path.join(emptyDirs, 'private');
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      if (process.getuid?.() === 0) chownSync(dir, QEMU_UID, QEMU_UID);
      return dir;
    },
    readOnlyView() {
      if (view) return view;
      const mountPoint = `${pods}-ro`;
      mkdirSync(mountPoint);
      try {
        execFileSync('mount', ['--bind', pods, mountPoint], { stdio: ['ignore', 'ignore', 'pipe'] });
        execFileSync('mount', ['-o', 'remount,bind,ro', mountPoint], { stdio: ['ignore', 'ignore', 'pipe'] });
      } catch (error) {
        rmSync(mountPoint, { recursive: true, force: true });
        throw new Error(`cannot make a read-only view of ${pods} (the launcher tests need root for it): ${(error as Error).message}`, { cause: error });
      }
      view = mountPoint;
      return view;
    },
    remove: () => {
      if (view) {
        execFileSync('umount', [view]);
        rmSync(view, { recursive: true, force: true });
        view = undefined;
      }
      rmSync(pods, { recursive: true, force: true });
    },
  };
}

/** The operator's certificate Secrets of one installation (operator/pki.ts), by Secret name, as the pods mount them. */
export function issuedStreamSecrets(): (secret: string) => { cert: string; key: string; ca: string } {
  const secrets = reconcilePki(new Map(), { namespace: 'kubevirt', registry: 'kubevm', tag: 'test', pullPolicy: 'IfNotPresent' }).secrets;
  return (name) => {
    const data = (secrets.find((secret) => secret.metadata.name === name)?.['data'] ?? {}) as Record<string, string>;
    const file = (key: string): string => Buffer.from(data[key] ?? '', 'base64').toString();
    return { cert: file('tls.crt'), key: file('tls.key'), ca: file('ca.crt') };
  };
}

/**
 * The node handler's stream server over `pods` (real mutual TLS with the node handler's certificate
 * from `pki`), knowing one Running VMI whose launcher pod is `podUid` on `node`, and the
 * api-server's client of it (api-server/node-streams.ts) with the api-server's certificate.
 */
export async function serveNodeStreams(options: {
  pki: ReturnType<typeof issuedStreamSecrets>;
  pods: PodsDir;
  podUid: string;
  node: string;
  namespace: string;
  name: string;
}): Promise<{ server: StreamServer; streams: NodeStreams; port: number }> {
  const { pki, pods, podUid, node, namespace, name } = options;
  const running: VirtualMachineInstance = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace },
    spec: { domain: { devices: {} } },
    status: { phase: 'Running', nodeName: node, activePods: { [podUid]: node } },
  };
  const cache = new Map([[`${namespace}/${name}`, running]]);
  const server = new StreamServer({ nodeName: node, podsDir: pods.path, vmi: (key) => cache.get(key), tls: pki(NODE_HANDLER_STREAMS_TLS_SECRET), log: silentLogger });
  const { port } = await server.listen(0, '127.0.0.1');
  const streams = new NodeStreams(async () => ({ host: '127.0.0.1', port }), () => pki(API_SERVER_STREAMS_TLS_SECRET));
  return { server, streams, port };
}

/** Pids of processes whose command line mentions `needle` (to assert nothing was left behind). */
export function processesMatching(needle: string): number[] {
  const pids: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(needle)) pids.push(Number(e));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** The last KUBEVM-COUNT the guest printed, or -1. */
export function lastCount(serial: string): number {
  const all = [...serial.matchAll(/KUBEVM-COUNT (\d+)/g)];
  return all.length ? Number(all[all.length - 1]?.[1]) : -1;
}

/** Resolves once the guest has counted two more after its last count (it runs on). */
export async function countsOn(run: LauncherRun, timeoutMs = 20_000): Promise<void> {
  await run.waitForSerial(new RegExp(`KUBEVM-COUNT ${lastCount(run.serialLog()) + 2}\\b`), timeoutMs);
}

/** Resolves on the first event from `client` for which `match` holds. */
export function waitForEvent(client: LauncherClient, match: (e: DomainEvent) => boolean, timeoutMs: number): Promise<DomainEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('event', on);
      reject(new Error(`no matching launcher event within ${timeoutMs} ms`));
    }, timeoutMs);
    const on = (e: DomainEvent) => {
      if (!match(e)) return;
      clearTimeout(timer);
      client.off('event', on);
      resolve(e);
    };
    client.on('event', on);
  });
}

/** Opens a launcher's byte stream (console, VNC, a guest port, a screenshot) as the node handler does. */
export async function openLauncherStream<C extends LauncherStreamCommand>(
  socketPath: string,
  kind: C,
  args: LauncherArgs<C> = {} as LauncherArgs<C>,
): Promise<net.Socket & { result: LauncherResult<C> }> {
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.createConnection(socketPath);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
  const result = await requestOnLauncherConnection(socket, kind, args);
  // Paused until the caller (running after this promise settles) has attached its listener.
  setImmediate(() => socket.resume());
  return Object.assign(socket, { result });
}
