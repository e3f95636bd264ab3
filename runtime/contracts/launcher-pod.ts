// The launcher pod contract (ADR 0007), declared once: the controller renders the pod from it, the
// launcher reads its configuration by it, the node handler finds a pod's sockets by it. A name or a
// path changed here changes on every side at once.
import path from 'node:path';
import { DNS_LABEL_MESSAGE, isDnsLabel } from '../api/names.js';

/** uid/gid of the launcher's processes (KubeVirt's qemu user). */
export const LAUNCHER_UID = 107;

/** Labels and annotations of a launcher pod. */
export const LAUNCHER_LABEL = 'kubevirt.io';
export const LAUNCHER_LABEL_VALUE = 'virt-launcher';
export const CREATED_BY_LABEL = 'kubevirt.io/created-by';
export const DOMAIN_ANNOTATION = 'kubevirt.io/domain';
/** Every launcher pod's name starts so (KubeVirt's too): the eviction webhook is sent only these. */
export const LAUNCHER_POD_NAME_PREFIX = 'virt-launcher-';

/** The container that runs the launcher (and QEMU). */
export const COMPUTE_CONTAINER = 'compute';
/**
 * What starts each line of the guest's serial console in the compute container's log, beside the
 * launcher's own JSON records: a guest line never starts with `{`, so it cannot pass for one.
 */
export const GUEST_CONSOLE_LINE_PREFIX = '[guest] ';

/** The pod's fixed volumes: their names (what the node sees under the pod's directory) and mounts. */
export const PRIVATE_VOLUME = 'private';
export const EPHEMERAL_DISKS_VOLUME = 'ephemeral-disks';

/** Paths inside the compute container. */
export const LAUNCHER_PATHS = {
  /** The `private` emptyDir: the input and command sockets, QMP, serial, VNC, agent sockets. */
  runDir: '/var/run/kubevm-private',
  /** The `ephemeral-disks` emptyDir: overlays, empty disks, the cloud-init ISO. */
  ephemeralDir: '/var/run/kubevirt-ephemeral-disks',
  /** `<dir>/<volume>/` is the root of that containerDisk image (ADR 0006). */
  containerDiskDir: '/var/run/kubevirt/container-disks',
  /** `<dir>/<volume>/disk.img`: filesystem PVCs. */
  pvcDir: '/var/run/kubevirt-private/vmi-disks',
  /** `<dir>/<volume>`: block PVCs (the pod's volumeDevices). */
  blockDeviceDir: '/dev/kubevm-block',
  /** `<dir>/<volume>/`: Secrets (cloud-init user data `<volume>/`, network data `<volume>-ndata/`). */
  secretDir: '/var/run/kubevirt-private/secret',
  configMapDir: '/var/run/kubevirt-private/config-map',
  /** Root of the kernelBoot image's files; kernelPath/initrdPath are relative to it. */
  kernelBootDir: '/var/run/kubevirt/kernel-boot',
  /** Image copies ('init-copy'): one status file per copy container, and the launcher's lifeline. */
  imageCopyDir: '/var/run/kubevm/image-copies',
} as const;

/**
 * The environment variables the launcher reads. The controller sets the path ones in the pod (the
 * launcher's defaults are the same paths); tests running the launcher as a plain process set them
 * to their own directories.
 */
export const LAUNCHER_ENV = {
  /**
   * The uid of the VMI the pod is for: the launcher takes only that VMI from its input socket
   * (runtime/contracts/launcher-input.ts), and the node handler delivers only that one.
   */
  vmiUid: 'KUBEVM_VMI_UID',
  /** Tests running the launcher as a plain process: the VMI as a JSON file instead of the input socket. */
  vmiFile: 'KUBEVM_VMI_FILE',
  runDir: 'KUBEVM_RUN_DIR',
  ephemeralDir: 'KUBEVM_EPHEMERAL_DIR',
  containerDiskDir: 'KUBEVM_CONTAINER_DISK_DIR',
  pvcDir: 'KUBEVM_PVC_DIR',
  blockDeviceDir: 'KUBEVM_BLOCK_DEVICE_DIR',
  secretDir: 'KUBEVM_SECRET_DIR',
  kernelBootDir: 'KUBEVM_KERNEL_BOOT_DIR',
  /** Set only when the pod copies images beside the launcher: wait for their status files there. */
  imageCopyDir: 'KUBEVM_IMAGE_COPY_DIR',
  /** KubeVirt's useEmulation: TCG allowed when KVM is not usable. */
  allowEmulation: 'KUBEVM_ALLOW_EMULATION',
  /** The pod's name (downward API), for the launcher's logs. */
  podName: 'POD_NAME',
  accel: 'KUBEVM_ACCEL',
  kvmDevice: 'KUBEVM_KVM_DEVICE',
  autostart: 'KUBEVM_AUTOSTART',
  qemuSandbox: 'KUBEVM_QEMU_SANDBOX',
  guestAgentPollSeconds: 'KUBEVM_GUEST_AGENT_POLL_SECONDS',
  exitWhenStopped: 'KUBEVM_EXIT_WHEN_STOPPED',
  lingerSeconds: 'KUBEVM_LINGER_SECONDS',
  qemu: 'KUBEVM_QEMU',
  qemuImg: 'KUBEVM_QEMU_IMG',
  xorriso: 'KUBEVM_XORRISO',
  passt: 'KUBEVM_PASST',
  qemuWrapper: 'KUBEVM_QEMU_WRAPPER',
} as const;

/** The path variables with the pod's paths, as the controller sets them in the compute container. */
export function launcherPathEnv(): Array<{ name: string; value: string }> {
  const keys = ['runDir', 'ephemeralDir', 'containerDiskDir', 'pvcDir', 'blockDeviceDir', 'secretDir', 'kernelBootDir'] as const;
  return keys.map((key) => ({ name: LAUNCHER_ENV[key], value: LAUNCHER_PATHS[key] }));
}

/**
 * Image copies beside the launcher ('init-copy', ADR 0006): each containerDisk or kernelBoot image
 * is copied by a container of its own, started with the compute container rather than before it
 * (each init container costs a kubelet relist, ~1 s). Each copy writes its outcome to
 * `<imageCopyDir>/<imageCopyStatusName(source)>`, written whole (rename): `ok`, or `failed` and on
 * the next line the message naming the field. The launcher waits for every status before it
 * touches the images. The copies then stay up (the pod is Ready only while every container runs)
 * reading the lifeline, a FIFO the compute container's postStart hook creates (before the kubelet
 * starts the copies) and the launcher holds open for writing, from when the copies have reported,
 * as long as its process lives: when it ends, for any reason, the copies read end of file and
 * exit, and the pod completes.
 */
export const IMAGE_COPY_LIFELINE = 'launcher.lifeline';
/** The busybox the compute container's postStart hook installs (from the launcher image) and every image copy runs. */
export const IMAGE_COPIER_BUSYBOX = '/var/run/kubevm/bin/busybox';
/**
 * The compute container's postStart hook (run by the launcher image's busybox, which it installs):
 * `sh -c PREPARE_SCRIPT prepare <busybox> <bin dir> <copies dir>`: the busybox for the copies,
 * their status directory and the lifeline FIFO (only uid 107 may open it). The kubelet starts the
 * copies only once the hook has run.
 */
export const PREPARE_SCRIPT = [
  'set -eu',
  '"$1" cp -- "$1" "$2/busybox"',
  '"$1" mkdir -p -- "$3"',
  `"$1" mkfifo -m 0600 -- "$3/${IMAGE_COPY_LIFELINE}"`,
].join('\n');

/** The hook's command, with the static busybox of the launcher image at `copier`. */
export function imageCopierHookCommand(copier: string): string[] {
  return [copier, 'sh', '-c', PREPARE_SCRIPT, 'prepare', copier, path.dirname(IMAGE_COPIER_BUSYBOX), LAUNCHER_PATHS.imageCopyDir];
}
export const IMAGE_COPY_OK = 'ok';
export const IMAGE_COPY_FAILED = 'failed';

/**
 * A name of the VMI that becomes part of a file name here. Admission allows DNS labels only, but a
 * VMI may reach the launcher unadmitted: a name that is not one (`x/../../loot`) is refused, never
 * joined into a path.
 */
function fileNamePart(name: string, what: string): string {
  if (!isDnsLabel(name)) throw new Error(`${what} ${JSON.stringify(name)} ${DNS_LABEL_MESSAGE}`);
  return name;
}

/** The status file name of a containerDisk volume's copy, or of the kernelBoot image's. */
export function imageCopyStatusName(source: { containerDisk: string } | 'kernel-boot'): string {
  return source === 'kernel-boot' ? 'kernel-boot' : `container-disk-${fileNamePart(source.containerDisk, 'the containerDisk volume name')}`;
}

export type ImageCopyStatus = { ok: true } | { ok: false; message: string };

/** A status file's content; undefined while it is not a status (never written partly: renamed). */
export function parseImageCopyStatus(text: string): ImageCopyStatus | undefined {
  const [first = '', ...rest] = text.split('\n');
  if (first === IMAGE_COPY_OK) return { ok: true };
  if (first === IMAGE_COPY_FAILED) return { ok: false, message: rest.join('\n').trim() || 'the copy failed' };
  return undefined;
}

/** The sockets and files the launcher keeps in its run directory (the `private` volume). */
export function launcherSockets(runDir: string) {
  return {
    /** The launcher takes its VMI here, once, from its node handler (launcher-input.ts), then removes it. */
    input: path.join(runDir, 'input.sock'),
    command: path.join(runDir, 'launcher.sock'),
    qmp: path.join(runDir, 'qmp.sock'),
    serial: path.join(runDir, 'serial.sock'),
    serialLog: path.join(runDir, 'serial.log'),
    vnc: path.join(runDir, 'vnc.sock'),
    guestAgent: path.join(runDir, 'qga.sock'),
    passt: (iface: string) => path.join(runDir, `passt-${fileNamePart(iface, 'the interface name')}.sock`),
    /** A migration target's QEMU listens here; the target's node handler connects the stream to it. */
    migrationIn: path.join(runDir, 'migration-in.sock'),
    /**
     * The launcher listens here for the source's node handler (docs/migration.md): the handler
     * connects, the launcher answers one line (MigrationOutAnswer), and on `migrate` the launcher
     * relays QEMU's outgoing stream over that connection. The handler only ever connects: the
     * pods directory is read-only to it.
     */
    migrationOut: path.join(runDir, 'migration-out.sock'),
    /** A migration source's QEMU connects here, only while the launcher migrates; nothing else uses it. */
    migrationQemu: path.join(runDir, 'migration-qemu.sock'),
    /**
     * A migration target's QEMU serves the pod-local disks here (NBD) until its incoming migration
     * ended; the target's node handler connects the source's disk streams to it (launcher/disk-mirror.ts).
     */
    migrationDisksIn: path.join(runDir, 'migration-disks-in.sock'),
    /**
     * As migration-out.sock, for the disk streams: the source's node handler connects here once
     * per pod-local disk (the number the launcher's migration-out answer gives) before `migrate`.
     */
    migrationDisksOut: path.join(runDir, 'migration-disks-out.sock'),
    /** A migration source's QEMU mirrors one disk (NBD client) through here, only while it migrates. */
    migrationDiskQemu: (node: string) => path.join(runDir, `migration-${node}.sock`),
  };
}

/** The kubelet's pods directory, where the node handler mounts it. */
export const KUBELET_PODS_DIR = '/var/lib/kubelet/pods';

/** A launcher pod's `private` volume seen from the node: the directory holding its sockets. */
export function nodeLauncherRunDir(podsDir: string, podUid: string): string {
  // The uid comes from a VMI's status: never let it name a directory outside the pods directory.
  if (!/^[A-Za-z0-9][A-Za-z0-9-]*$/.test(podUid)) throw new Error(`pod uid ${JSON.stringify(podUid)} is not a uid`);
  return path.join(podsDir, podUid, 'volumes', 'kubernetes.io~empty-dir', PRIVATE_VOLUME);
}

/** A launcher pod's input socket seen from the node. */
export function nodeLauncherInputSocketPath(podsDir: string, podUid: string): string {
  return launcherSockets(nodeLauncherRunDir(podsDir, podUid)).input;
}

/** A launcher pod's command socket seen from the node. */
export function nodeLauncherSocketPath(podsDir: string, podUid: string): string {
  return launcherSockets(nodeLauncherRunDir(podsDir, podUid)).command;
}
