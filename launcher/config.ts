// The launcher's configuration: environment variables set by the launcher pod (ADR 0007), with
// defaults matching that pod's layout. Tests run the launcher as a plain process with their own.
import path from 'node:path';
import type { Accelerator } from './qemu-args.js';

export interface LauncherConfig {
  /** The VMI as JSON (the downward-API file). */
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
}

function bool(value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback;
  return ['1', 'true', 'yes', 'on'].includes(value.toLowerCase());
}

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): LauncherConfig {
  const runDir = env['KUBEVM_RUN_DIR'] ?? '/var/run/kubevm-private';
  const secretDir = env['KUBEVM_SECRET_DIR'] ?? '/var/run/kubevirt-private/secret';
  const accel = env['KUBEVM_ACCEL'] ?? 'auto';
  if (accel !== 'auto' && accel !== 'kvm' && accel !== 'tcg') throw new Error(`KUBEVM_ACCEL: "${accel}" is not one of auto, kvm, tcg`);
  let wrapper: string[] = [];
  if (env['KUBEVM_QEMU_WRAPPER']) {
    const parsed: unknown = JSON.parse(env['KUBEVM_QEMU_WRAPPER']);
    if (!Array.isArray(parsed) || !parsed.every((s) => typeof s === 'string')) throw new Error('KUBEVM_QEMU_WRAPPER: must be a JSON array of strings');
    wrapper = parsed as string[];
  }
  return {
    vmiFile: env['KUBEVM_VMI_FILE'] ?? '/var/run/kubevm/vmi/vmi.json',
    runDir,
    ephemeralDir: env['KUBEVM_EPHEMERAL_DIR'] ?? '/var/run/kubevirt-ephemeral-disks',
    containerDiskDir: env['KUBEVM_CONTAINER_DISK_DIR'] ?? '/var/run/kubevirt/container-disks',
    pvcDir: env['KUBEVM_PVC_DIR'] ?? '/var/run/kubevirt-private/vmi-disks',
    blockDeviceDir: env['KUBEVM_BLOCK_DEVICE_DIR'] ?? '/dev/kubevm-block',
    secretDir,
    kernelBootDir: env['KUBEVM_KERNEL_BOOT_DIR'] ?? '/var/run/kubevirt/kernel-boot',
    qemuBinary: env['KUBEVM_QEMU'] ?? 'qemu-system-x86_64',
    qemuImg: env['KUBEVM_QEMU_IMG'] ?? 'qemu-img',
    xorriso: env['KUBEVM_XORRISO'] ?? 'xorriso',
    passt: env['KUBEVM_PASST'] ?? 'passt',
    qemuWrapper: wrapper,
    kvmDevice: env['KUBEVM_KVM_DEVICE'] ?? '/dev/kvm',
    accel,
    allowEmulation: bool(env['KUBEVM_ALLOW_EMULATION'], false),
    autostart: bool(env['KUBEVM_AUTOSTART'], false),
    sandbox: bool(env['KUBEVM_QEMU_SANDBOX'], true),
    guestAgentPollSeconds: Number(env['KUBEVM_GUEST_AGENT_POLL_SECONDS'] ?? '10'),
    exitWhenStopped: bool(env['KUBEVM_EXIT_WHEN_STOPPED'], true),
  };
}

export function socketPaths(runDir: string) {
  return {
    command: path.join(runDir, 'launcher.sock'),
    qmp: path.join(runDir, 'qmp.sock'),
    serial: path.join(runDir, 'serial.sock'),
    serialLog: path.join(runDir, 'serial.log'),
    vnc: path.join(runDir, 'vnc.sock'),
    guestAgent: path.join(runDir, 'qga.sock'),
    passt: (iface: string) => path.join(runDir, `passt-${iface}.sock`),
  };
}
