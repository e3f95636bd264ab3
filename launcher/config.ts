// The launcher's configuration: the environment variables of the launcher pod contract
// (runtime/contracts/launcher-pod.ts, ADR 0007), with defaults matching that pod's layout, read
// by the one configuration loader (runtime/config.ts). Tests run the launcher as a plain process
// with their own.
import { z } from 'zod';
import type { Accelerator } from './qemu-args.js';
import { LAUNCHER_ENV, LAUNCHER_PATHS, launcherSockets } from '../runtime/contracts/launcher-pod.js';
import { ConfigError, booleanSetting, enumSetting, loadConfig } from '../runtime/config.js';
import type { SettingsOf } from '../runtime/config.js';

/**
 * Where the VMI comes from: the node handler, over the input socket, naming the VMI of this uid
 * (a pod: runtime/contracts/launcher-input.ts), or a JSON file (a test running the launcher as a
 * plain process).
 */
export type LauncherVmiSource = { uid: string } | { file: string };

export interface LauncherConfig {
  vmiSource: LauncherVmiSource;
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
  /** Set when the pod copies images beside the launcher: their status files and the lifeline (launcher/image-copies.ts). */
  imageCopyDir?: string;
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

const pathSetting = (key: keyof typeof LAUNCHER_PATHS & keyof typeof LAUNCHER_ENV, description: string) => ({
  env: LAUNCHER_ENV[key],
  schema: z.string().default(LAUNCHER_PATHS[key]),
  description: `${description} (default ${LAUNCHER_PATHS[key]})`,
});

const programSetting = (key: keyof typeof LAUNCHER_ENV, program: string) => ({
  env: LAUNCHER_ENV[key],
  schema: z.string().default(program),
  description: `the ${program} binary (default ${program} on PATH)`,
});

const secondsSetting = z
  .string()
  .regex(/^\d+(\.\d+)?$/, 'accepted: a number of seconds, 0 or more')
  .transform(Number);

/** A JSON array of strings, e.g. ["setpriv","--reuid=107"]. */
const wordsSetting = z.string().transform((text, ctx) => {
  try {
    const parsed: unknown = JSON.parse(text);
    if (Array.isArray(parsed) && parsed.every((word) => typeof word === 'string')) return parsed;
  } catch {
    // reported below
  }
  ctx.addIssue({ code: 'custom', message: 'accepted: a JSON array of strings such as ["setpriv","--reuid=107"]' });
  return z.NEVER;
});

/** The launcher's settings: the pod contract's variables (flags are derived, as for every main). */
export const launcherSettings = {
  vmiUid: { env: LAUNCHER_ENV.vmiUid, schema: z.string().min(1).optional(), description: "the uid of the pod's VMI, which the node handler delivers on the input socket" },
  vmiFile: { env: LAUNCHER_ENV.vmiFile, schema: z.string().min(1).optional(), description: 'the VMI as a JSON file instead (a launcher run as a plain process)' },
  runDir: pathSetting('runDir', "the command socket and QEMU's sockets"),
  ephemeralDir: pathSetting('ephemeralDir', 'overlays, empty disks, the cloud-init ISO'),
  containerDiskDir: pathSetting('containerDiskDir', 'containerDisk root file systems'),
  pvcDir: pathSetting('pvcDir', 'filesystem PVCs'),
  blockDeviceDir: pathSetting('blockDeviceDir', 'block PVCs'),
  secretDir: pathSetting('secretDir', 'Secret volumes'),
  kernelBootDir: pathSetting('kernelBootDir', "the kernelBoot image's files"),
  imageCopyDir: {
    env: LAUNCHER_ENV.imageCopyDir,
    schema: z.string().optional(),
    description: 'where the image copies beside the launcher report (set by the pod only when it copies images)',
  },
  qemu: programSetting('qemu', 'qemu-system-x86_64'),
  qemuImg: programSetting('qemuImg', 'qemu-img'),
  xorriso: programSetting('xorriso', 'xorriso'),
  passt: programSetting('passt', 'passt'),
  qemuWrapper: { env: LAUNCHER_ENV.qemuWrapper, schema: wordsSetting.optional(), description: 'a prefix for the QEMU command, as a JSON array of strings' },
  kvmDevice: { env: LAUNCHER_ENV.kvmDevice, schema: z.string().default('/dev/kvm'), description: 'the KVM device (default /dev/kvm)' },
  accel: { env: LAUNCHER_ENV.accel, schema: enumSetting(['auto', 'kvm', 'tcg']).default('auto'), description: 'auto (default), kvm or tcg' },
  allowEmulation: { env: LAUNCHER_ENV.allowEmulation, schema: booleanSetting.default(false), description: 'TCG allowed when KVM is not usable (default false)' },
  autostart: { env: LAUNCHER_ENV.autostart, schema: booleanSetting.default(false), description: 'start QEMU without waiting for the handler (default false)' },
  qemuSandbox: { env: LAUNCHER_ENV.qemuSandbox, schema: booleanSetting.default(true), description: "QEMU's seccomp sandbox (default true)" },
  guestAgentPollSeconds: {
    env: LAUNCHER_ENV.guestAgentPollSeconds,
    schema: secondsSetting.default(10),
    description: 'how often to ask the guest agent; 0 never (default 10)',
  },
  exitWhenStopped: { env: LAUNCHER_ENV.exitWhenStopped, schema: booleanSetting.default(true), description: 'exit once the domain stopped (default true)' },
  lingerSeconds: { env: LAUNCHER_ENV.lingerSeconds, schema: secondsSetting.default(5), description: 'stay up this long after the domain stopped (default 5)' },
};

/** The launcher's configuration from its settings. */
export function launcherConfig(settings: SettingsOf<typeof launcherSettings>): LauncherConfig {
  return {
    vmiSource: vmiSource(settings.vmiUid, settings.vmiFile),
    runDir: settings.runDir,
    ephemeralDir: settings.ephemeralDir,
    containerDiskDir: settings.containerDiskDir,
    pvcDir: settings.pvcDir,
    blockDeviceDir: settings.blockDeviceDir,
    secretDir: settings.secretDir,
    kernelBootDir: settings.kernelBootDir,
    ...(settings.imageCopyDir ? { imageCopyDir: settings.imageCopyDir } : {}),
    qemuBinary: settings.qemu,
    qemuImg: settings.qemuImg,
    xorriso: settings.xorriso,
    passt: settings.passt,
    qemuWrapper: settings.qemuWrapper ?? [],
    kvmDevice: settings.kvmDevice,
    accel: settings.accel,
    allowEmulation: settings.allowEmulation,
    autostart: settings.autostart,
    sandbox: settings.qemuSandbox,
    guestAgentPollSeconds: settings.guestAgentPollSeconds,
    exitWhenStopped: settings.exitWhenStopped,
    lingerSeconds: settings.lingerSeconds,
  };
}

function vmiSource(uid: string | undefined, file: string | undefined): LauncherVmiSource {
  if (uid !== undefined && file !== undefined) throw new ConfigError(`${LAUNCHER_ENV.vmiUid} and ${LAUNCHER_ENV.vmiFile} exclude each other: the VMI comes from the node handler or from a file`);
  if (uid !== undefined) return { uid };
  if (file !== undefined) return { file };
  throw new ConfigError(`no VMI: set ${LAUNCHER_ENV.vmiUid} (the node handler delivers it) or ${LAUNCHER_ENV.vmiFile}`);
}

/** The configuration from the environment alone (tests); throws ConfigError naming a bad setting. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): LauncherConfig {
  return launcherConfig(loadConfig(launcherSettings, [], env));
}

/** The launcher's sockets in its run directory: the contract's, under the name the launcher's modules use. */
export const socketPaths = launcherSockets;
