// The launcher's configuration: the environment variables of the launcher pod contract
// (runtime/contracts/launcher-pod.ts, ADR 0007), with defaults matching that pod's layout. Tests
// run the launcher as a plain process with their own.
import type { Accelerator } from './qemu-args.js';
import { LAUNCHER_ENV, LAUNCHER_PATHS, launcherSockets } from '../runtime/contracts/launcher-pod.js';

export interface LauncherConfig {
  /** The VMI as JSON (the file the pod mounts). */
  vmiFile: string;
  /** Pod-local directory for the command socket and QEMU's QMP/serial/VNC/agent sockets. */
  runDir: string;
  /** Pod-local scratch for overlays, empty disks, the cloud-init ISO. */
  ephemeralDir: string;
  /** `<dir>/<volume>/` is the root file system of that containerDisk (ADR 0006). */
  containerDiskDir: string;
  pvcDir: string;
  blockDeviceDir: string;
  secretDir: string;
  /** Root of the kernelBoot container's files; kernelPath/initrdPath are relative to it. */
  kernelBootDir: string;
  qemuBinary: string;
  qemuImg: string;
  xorriso: string;
  passt: string;
  /** Prefix for the QEMU command, e.g. `setpriv --reuid=107 ...` when a test runs as root. */
  qemuWrapper: string[];
  kvmDevice: string;
  accel: 'auto' | Accelerator;
  /** KubeVirt's useEmulation: TCG is allowed when KVM is not usable. */
  allowEmulation: boolean;
  /** Start QEMU right away instead of waiting for the handler's "start" (sync) command. */
  autostart: boolean;
  /** QEMU's seccomp sandbox. */
  sandbox: boolean;
  /** How often to ask the guest agent, 0 to never poll (the "guestInfo" command still asks). */
  guestAgentPollSeconds: number;
  /** Exit the launcher process when the domain has stopped (the pod's compute container ends). */
  exitWhenStopped: boolean;
  /** How long the launcher stays up after the domain stopped, so the handler can read the final status. */
  lingerSeconds: number;
}

function bool(value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback;
  return ['1', 'true', 'yes', 'on'].includes(value.toLowerCase());
}

function seconds(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}: "${value}" is not a number of seconds (0 or more)`);
  return n;
}

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): LauncherConfig {
  const get = (key: keyof typeof LAUNCHER_ENV): string | undefined => env[LAUNCHER_ENV[key]];
  const pathOf = (key: keyof typeof LAUNCHER_PATHS & keyof typeof LAUNCHER_ENV): string => get(key) || LAUNCHER_PATHS[key];
  const accel = get('accel') ?? 'auto';
  if (accel !== 'auto' && accel !== 'kvm' && accel !== 'tcg') throw new Error(`${LAUNCHER_ENV.accel}: "${accel}" is not one of auto, kvm, tcg`);
  let wrapper: string[] = [];
  const wrapperJson = get('qemuWrapper');
  if (wrapperJson) {
    const parsed: unknown = JSON.parse(wrapperJson);
    if (!Array.isArray(parsed) || !parsed.every((s) => typeof s === 'string')) throw new Error(`${LAUNCHER_ENV.qemuWrapper}: must be a JSON array of strings`);
    wrapper = parsed as string[];
  }
  return {
    vmiFile: pathOf('vmiFile'),
    runDir: pathOf('runDir'),
    ephemeralDir: pathOf('ephemeralDir'),
    containerDiskDir: pathOf('containerDiskDir'),
    pvcDir: pathOf('pvcDir'),
    blockDeviceDir: pathOf('blockDeviceDir'),
    secretDir: pathOf('secretDir'),
    kernelBootDir: pathOf('kernelBootDir'),
    qemuBinary: get('qemu') ?? 'qemu-system-x86_64',
    qemuImg: get('qemuImg') ?? 'qemu-img',
    xorriso: get('xorriso') ?? 'xorriso',
    passt: get('passt') ?? 'passt',
    qemuWrapper: wrapper,
    kvmDevice: get('kvmDevice') ?? '/dev/kvm',
    accel,
    allowEmulation: bool(get('allowEmulation'), false),
    autostart: bool(get('autostart'), false),
    sandbox: bool(get('qemuSandbox'), true),
    guestAgentPollSeconds: seconds(LAUNCHER_ENV.guestAgentPollSeconds, get('guestAgentPollSeconds'), 10),
    exitWhenStopped: bool(get('exitWhenStopped'), true),
    lingerSeconds: seconds(LAUNCHER_ENV.lingerSeconds, get('lingerSeconds'), 5),
  };
}

/** The launcher's sockets in its run directory: the contract's, under the name the launcher's modules use. */
export const socketPaths = launcherSockets;
