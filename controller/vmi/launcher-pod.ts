// The launcher pod of a VMI, rendered as a pure function of the VMI and the controller's config
// (ADR 0007). Everything a launcher needs reaches it through this spec: the VMI as a file, its
// disks as volumes, /dev/kvm as a device-plugin resource. Nothing here reads the cluster.
import { createHash } from 'node:crypto';
import type { V1Container, V1EnvVar, V1Lifecycle, V1OwnerReference, V1Pod, V1ResourceRequirements, V1Volume, V1VolumeDevice, V1VolumeMount } from '@kubernetes/client-node';
import type { VirtualMachineInstance, Volume } from '../api.js';
import { formatBytes, formatMillicores, parseQuantity } from '../../runtime/quantity.js';
import { guestMemoryBytes } from '../../runtime/vmi-defaults.js';
export { guestMemoryBytes };
import {
  COMPUTE_CONTAINER,
  CREATED_BY_LABEL,
  DOMAIN_ANNOTATION,
  EPHEMERAL_DISKS_VOLUME,
  IMAGE_COPIER_BUSYBOX,
  IMAGE_COPY_FAILED,
  IMAGE_COPY_LIFELINE,
  imageCopierHookCommand,
  IMAGE_COPY_OK,
  LAUNCHER_ENV,
  LAUNCHER_LABEL,
  LAUNCHER_LABEL_VALUE,
  LAUNCHER_PATHS,
  LAUNCHER_POD_NAME_PREFIX,
  LAUNCHER_UID,
  PRIVATE_VOLUME,
  imageCopyStatusName,
  launcherPathEnv,
} from '../../runtime/contracts/launcher-pod.js';

export { COMPUTE_CONTAINER, CREATED_BY_LABEL, DOMAIN_ANNOTATION, LAUNCHER_LABEL, LAUNCHER_LABEL_VALUE, LAUNCHER_UID, PREPARE_SCRIPT } from '../../runtime/contracts/launcher-pod.js';
export const KVM_RESOURCE = 'devices.kubevirt.io/kvm';

const PRIVATE_DIR = LAUNCHER_PATHS.runDir;
const EPHEMERAL_DISKS_DIR = LAUNCHER_PATHS.ephemeralDir;
const VMI_DISKS_DIR = LAUNCHER_PATHS.pvcDir;
const SECRETS_DIR = LAUNCHER_PATHS.secretDir;
const CONFIG_MAPS_DIR = LAUNCHER_PATHS.configMapDir;
const CONTAINER_DISKS_DIR = LAUNCHER_PATHS.containerDiskDir;
const BLOCK_DEVICES_DIR = LAUNCHER_PATHS.blockDeviceDir;
const KERNEL_BOOT_DIR = LAUNCHER_PATHS.kernelBootDir;
const IMAGE_COPY_DIR = LAUNCHER_PATHS.imageCopyDir;
/** The image-sources emptyDir's directory for the copies' status files and the lifeline. */
const IMAGE_COPIES_SUBPATH = 'copies';

/**
 * What the launcher pod needs beyond guest RAM, set from the measured figures in
 * bench/results/launcher-memory.json (`make bench BENCH=memory`: resident memory of the launcher's
 * node process and QEMU minus guest RAM, idle after boot, 1/2/4 vCPUs with and without graphics),
 * rounded up. A unit test checks these against that file: a re-measurement that grows fails it.
 * Too low and the kernel OOM-kills QEMU on a full node; too high and nodes fit fewer VMs.
 */
export const LAUNCHER_MEMORY = {
  /** Measured 117–120 MiB without graphics at 1–4 vCPUs; the launcher's node heap varies by ~10 MiB. */
  base: '128Mi',
  /** A vCPU's thread and TLBs: the measured slope is within the noise (−1…+1 MiB per vCPU). */
  perVcpu: '2Mi',
  /** The VGA device with VNC: measured +8…+18 MiB (16 MiB of it video RAM), on by default. */
  graphics: '16Mi',
  /** Under TCG, QEMU's translated-code cache: the launcher caps it (tb-size=64), measured up to 50 MiB. */
  tcgTranslationCache: '64Mi',
  /** The host's page tables for guest RAM (KVM; not measurable under TCG): KubeVirt's guest/512. */
  pageTableDivisor: 512n,
} as const;

/** The launcher's memory beyond guest RAM for this VMI (LAUNCHER_MEMORY), in whole MiB; config.memoryOverhead replaces it. */
export function launcherMemoryOverhead(vmi: VirtualMachineInstance, config: LauncherPodConfig): bigint {
  if (config.memoryOverhead !== undefined) return parseQuantity(config.memoryOverhead);
  const graphics = vmi.spec.domain.devices.autoattachGraphicsDevice !== false;
  const bytes =
    parseQuantity(LAUNCHER_MEMORY.base) +
    guestVCPUs(vmi) * parseQuantity(LAUNCHER_MEMORY.perVcpu) +
    (graphics ? parseQuantity(LAUNCHER_MEMORY.graphics) : 0n) +
    (config.useEmulation ? parseQuantity(LAUNCHER_MEMORY.tcgTranslationCache) : 0n) +
    (guestMemoryBytes(vmi) ?? 0n) / LAUNCHER_MEMORY.pageTableDivisor;
  const mib = 1024n * 1024n;
  return ((bytes + mib - 1n) / mib) * mib;
}

/** KubeVirt's default cpuAllocationRatio: one vCPU requests 1/10 of a host CPU unless asked otherwise. */
export const CPU_ALLOCATION_RATIO = 10n;

/** KubeVirt's default grace period for a guest to shut down after an ACPI power-button press. */
export const DEFAULT_VMI_GRACE_PERIOD_SECONDS = 30;
/** Time the launcher gets after the guest's grace period to tear QEMU down and exit (KubeVirt: 15 s). */
export const LAUNCHER_EXIT_MARGIN_SECONDS = 15;

export interface LauncherPodConfig {
  /** The launcher image, e.g. kubevm/launcher:0.1.0. */
  launcherImage: string;
  launcherImagePullPolicy?: 'Always' | 'Never' | 'IfNotPresent';
  /** The launcher's command; the image's entrypoint when unset. */
  launcherCommand?: string[];
  /** Software emulation (TCG): no /dev/kvm requested, so the pod schedules on nodes without KVM. */
  useEmulation: boolean;
  /** Replaces the computed launcher memory overhead (launcherMemoryOverhead). */
  memoryOverhead?: string;
  /** KubeVirt CR developerConfiguration.nodeSelectors: labels every launcher pod requires (the VMI's own win). */
  nodeSelectors?: Record<string, string>;
  /**
   * KubeVirt CR developerConfiguration.memoryOvercommit: guest memory as a percentage of the memory
   * request (150: a 1.5Gi guest requests 1Gi). Applies when the VMI sets no memory request itself.
   */
  memoryOvercommitPercent?: number;
  /**
   * How containerDisk and kernelBoot images reach the launcher (default 'init-copy'):
   * - 'init-copy': a container per image beside the launcher, running in that image, copies its
   *   files into an emptyDir with a static copier the launcher image provides (KUBEVM_COPIER):
   *   works on any container runtime, costs the copy;
   * - 'image-volume': Kubernetes image volumes (the ImageVolume feature, containerd ≥ 2.1 / CRI-O):
   *   mounted read-only, no copy.
   */
  imageSourceMode?: 'init-copy' | 'image-volume';
  /** Path of a static copier binary in the launcher image ('init-copy'), a busybox: run as `<copier> sh -c`, `<copier> cp -RL SRC DST`. */
  copierPath?: string;
  /**
   * The largest containerDisk (or ephemeral PVC) the pod makes room for (default
   * DEFAULT_CONTAINER_DISK_SIZE_LIMIT): bounds its copy ('init-copy') and its copy-on-write overlay.
   */
  containerDiskSizeLimit?: string;
}

/** Node disk the launcher writes beyond the VMI's disks (its logs, scratch): KubeVirt requests 50M. */
export const LAUNCHER_EPHEMERAL_OVERHEAD = '50Mi';
/** See LauncherPodConfig.containerDiskSizeLimit. */
export const DEFAULT_CONTAINER_DISK_SIZE_LIMIT = '10Gi';
/** A NoCloud ISO: user-data and network data are at most 1 MiB each (a Secret's limit), plus ISO 9660 structures. */
const CLOUD_INIT_ISO_BYTES = 4n * 1024n * 1024n;
/** Sockets and the guest's serial console log (serial.log): a guest that prints more is stopped. */
const PRIVATE_VOLUME_BYTES = 128n * 1024n * 1024n;
/** The static copier (busybox, ~2 MiB). */
const COPIER_VOLUME_BYTES = 16n * 1024n * 1024n;
const SCRATCH_BYTES = 16n * 1024n * 1024n;

/** The bounds of the pod's node-disk use, in bytes (see launcherStorage). */
export interface LauncherStorage {
  /** sizeLimit of `ephemeral-disks`: empty disks, overlays, cloud-init ISOs. */
  ephemeralDisks: bigint;
  /** sizeLimit of `image-sources` ('init-copy'): the copied containerDisk and kernelBoot files. */
  imageSources: bigint;
  /** sizeLimit of `private`: sockets and the serial console log. */
  private: bigint;
  /** The compute container's ephemeral-storage request: what the VMI declares, plus the launcher's own. */
  request: bigint;
}

/**
 * How much node disk the launcher pod may use, from what the VMI declares: each emptyDisk's
 * capacity (plus qcow2 metadata), each containerDisk's and ephemeral PVC's overlay (up to
 * containerDiskSizeLimit: an overlay never outgrows the base's virtual size), each cloud-init ISO.
 * Every emptyDir gets its bound as sizeLimit: the kubelet evicts a pod whose emptyDir exceeds it,
 * so a guest (or anything else in the pod) that overfills is stopped, with the kubelet's reason on
 * the pod and the VMI, instead of filling the node. The request reserves what is declared, so the
 * scheduler places pods where that room exists.
 */
export function launcherStorage(vmi: VirtualMachineInstance, config: LauncherPodConfig): LauncherStorage {
  const imageLimit = parseQuantity(config.containerDiskSizeLimit ?? DEFAULT_CONTAINER_DISK_SIZE_LIMIT);
  const mib = 1024n * 1024n;
  let declared = 0n;
  let overlays = 0n;
  let images = 0n;
  (vmi.spec.volumes ?? []).forEach((volume, index) => {
    if (volume.emptyDisk) {
      const capacity = parseQuantity(volume.emptyDisk.capacity, 0, `spec.volumes[${index}].emptyDisk.capacity`);
      // qcow2 metadata: an 8-byte L2 entry and a 2-byte refcount per 64 KiB cluster, the header and L1.
      declared += capacity + capacity / 4096n + mib;
    }
    if (volume.cloudInitNoCloud) declared += CLOUD_INIT_ISO_BYTES;
    if (volume.containerDisk) {
      overlays += imageLimit;
      images += imageLimit;
    }
    if (volume.ephemeral) overlays += imageLimit;
  });
  if (vmi.spec.domain.firmware?.kernelBoot?.container?.image) images += imageLimit;
  const userRequest = vmi.spec.domain.resources?.requests?.['ephemeral-storage'];
  // Whole MiB, so the quantities read as sizes.
  const roundUp = (bytes: bigint) => ((bytes + mib - 1n) / mib) * mib;
  return {
    ephemeralDisks: roundUp(declared + overlays + SCRATCH_BYTES),
    imageSources: roundUp(images),
    private: PRIVATE_VOLUME_BYTES,
    request: roundUp((userRequest !== undefined ? parseQuantity(userRequest) : 0n) + parseQuantity(LAUNCHER_EPHEMERAL_OVERHEAD) + declared),
  };
}

/** busybox-static's path in a Debian-based launcher image. */
export const DEFAULT_COPIER = '/bin/busybox';
const COPIER_BUSYBOX = IMAGE_COPIER_BUSYBOX;
const COPIER_DIR = COPIER_BUSYBOX.slice(0, COPIER_BUSYBOX.lastIndexOf('/'));

// Pod names use KubeVirt's alphabet for generated suffixes: no vowels (no accidental words), no
// characters that read alike (0/o, 1/l).
const SUFFIX_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** `virt-launcher-<vmi>-<5 chars derived from the VMI uid>`: the same VMI always gets the same pod name. */
export function launcherPodName(vmi: VirtualMachineInstance): string {
  const name = vmi.metadata?.name ?? '';
  const uid = vmi.metadata?.uid ?? '';
  const digest = createHash('sha256').update(uid).digest();
  let suffix = '';
  for (let i = 0; i < 5; i++) suffix += SUFFIX_ALPHABET[(digest[i] ?? 0) % SUFFIX_ALPHABET.length];
  const prefix = LAUNCHER_POD_NAME_PREFIX;
  // Pod names are DNS subdomains (≤ 253); VMI names may use the whole length themselves.
  const room = 253 - prefix.length - 1 - suffix.length;
  return `${prefix}${name.slice(0, room).replace(/[.-]+$/, '')}-${suffix}`;
}

/** Number of vCPUs the guest gets: sockets × cores × threads, each 1 when unset. */
export function guestVCPUs(vmi: VirtualMachineInstance): bigint {
  const cpu = vmi.spec.domain.cpu;
  return BigInt(cpu?.sockets ?? 1) * BigInt(cpu?.cores ?? 1) * BigInt(cpu?.threads ?? 1);
}


export function launcherResources(vmi: VirtualMachineInstance, config: LauncherPodConfig): V1ResourceRequirements {
  const domain = vmi.spec.domain;
  const overhead = launcherMemoryOverhead(vmi, config);
  const requests: Record<string, string> = {};
  const limits: Record<string, string> = {};

  const requestedMemory = domain.resources?.requests?.['memory'];
  const overcommit = BigInt(Math.max(10, config.memoryOvercommitPercent ?? 100));
  const guestBytes = guestMemoryBytes(vmi);
  const guestMemory =
    requestedMemory !== undefined ? parseQuantity(requestedMemory) : guestBytes === undefined ? undefined : (guestBytes * 100n + overcommit - 1n) / overcommit;
  if (guestMemory !== undefined) {
    requests['memory'] = formatBytes(domain.resources?.overcommitGuestOverhead ? guestMemory : guestMemory + overhead);
  }
  const memoryLimit = domain.resources?.limits?.['memory'];
  if (memoryLimit !== undefined) limits['memory'] = formatBytes(parseQuantity(memoryLimit) + overhead);

  // Node disk: what the VMI's disks declare and the launcher's own (see launcherStorage).
  requests['ephemeral-storage'] = formatBytes(launcherStorage(vmi, config).request);

  const cpuRequest = domain.resources?.requests?.['cpu'];
  const millis = cpuRequest !== undefined ? parseQuantity(cpuRequest, 3) : (guestVCPUs(vmi) * 1000n) / CPU_ALLOCATION_RATIO;
  requests['cpu'] = formatMillicores(millis);
  const cpuLimit = domain.resources?.limits?.['cpu'];
  if (cpuLimit !== undefined) limits['cpu'] = formatMillicores(parseQuantity(cpuLimit, 3));

  if (domain.cpu?.dedicatedCpuPlacement) {
    // Pinned vCPUs need the Guaranteed QoS class: whole CPUs, requests equal to limits. The emulator
    // thread gets a CPU of its own when isolated.
    const cpus = guestVCPUs(vmi) + (domain.cpu.isolateEmulatorThread ? 1n : 0n);
    requests['cpu'] = limits['cpu'] = formatMillicores(cpus * 1000n);
    if (requests['memory'] !== undefined) limits['memory'] = requests['memory'];
  }

  const hugepageSize = domain.memory?.hugepages?.pageSize;
  if (hugepageSize && guestMemory !== undefined) {
    // Guest RAM then comes from hugepages; the memory request keeps only the overhead.
    requests[`hugepages-${hugepageSize}`] = limits[`hugepages-${hugepageSize}`] = formatBytes(guestMemory);
    requests['memory'] = formatBytes(overhead);
    if (limits['memory'] !== undefined) limits['memory'] = formatBytes(overhead);
  }

  if (!config.useEmulation) {
    // Extended resources are requested through limits (requests default to them).
    limits[KVM_RESOURCE] = '1';
    requests[KVM_RESOURCE] = '1';
  }
  return Object.keys(limits).length > 0 ? { requests, limits } : { requests };
}

/** The VMI controller reference every object rendered for a VMI carries: deleted with it. */
function ownedByVMI(vmi: VirtualMachineInstance): V1OwnerReference[] {
  const { name = '', uid = '' } = vmi.metadata ?? {};
  return [{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', name, uid, controller: true, blockOwnerDeletion: true }];
}

/** What the renderer needs to know about the cluster beyond the VMI (looked up by the caller). */
export interface LauncherPodFacts {
  /** PVC claim names whose volumeMode is Block: attached as devices, not mounted. */
  blockClaims?: ReadonlySet<string>;
}

interface VolumeParts {
  devices?: V1VolumeDevice[];
  volumes: V1Volume[];
  mounts: V1VolumeMount[];
}

// Pod volume names must be DNS labels and must not collide with the fixed ones below; a prefix per
// kind keeps both true for any VMI volume name the API accepts.
function podVolumeName(kind: string, volumeName: string): string {
  const name = `${kind}-${volumeName}`;
  if (name.length <= 63) return name;
  const hash = createHash('sha256').update(volumeName).digest('hex').slice(0, 8);
  return `${name.slice(0, 54).replace(/-+$/, '')}-${hash}`;
}

function volumeParts(volume: Volume, facts: LauncherPodFacts): VolumeParts {
  const parts: VolumeParts = { volumes: [], mounts: [], devices: [] };
  const add = (kind: string, source: Omit<V1Volume, 'name'>, mountPath: string, readOnly: boolean) => {
    const name = podVolumeName(kind, volume.name);
    parts.volumes.push({ name, ...source });
    parts.mounts.push({ name, mountPath, readOnly });
  };
  const claim = volume.persistentVolumeClaim ?? volume.ephemeral?.persistentVolumeClaim;
  if (claim) {
    // An ephemeral volume is the PVC read-only with a copy-on-write overlay in ephemeral-disks.
    const readOnly = Boolean(claim.readOnly || volume.ephemeral);
    if (facts.blockClaims?.has(claim.claimName)) {
      const name = podVolumeName('pvc', volume.name);
      parts.volumes.push({ name, persistentVolumeClaim: { claimName: claim.claimName, readOnly } });
      parts.devices?.push({ name, devicePath: `${BLOCK_DEVICES_DIR}/${volume.name}` });
    } else {
      add('pvc', { persistentVolumeClaim: { claimName: claim.claimName, readOnly } }, `${VMI_DISKS_DIR}/${volume.name}`, readOnly);
    }
  }
  if (volume.secret) {
    const source = { secretName: volume.secret.secretName ?? volume.name, ...(volume.secret.optional !== undefined ? { optional: volume.secret.optional } : {}) };
    add('secret', { secret: source }, `${SECRETS_DIR}/${volume.name}`, true);
  }
  if (volume.configMap) {
    const source = { name: volume.configMap.name ?? volume.name, ...(volume.configMap.optional !== undefined ? { optional: volume.configMap.optional } : {}) };
    add('configmap', { configMap: source }, `${CONFIG_MAPS_DIR}/${volume.name}`, true);
  }
  const cloudInit = volume.cloudInitNoCloud;
  if (cloudInit?.secretRef?.name) {
    // The launcher reads the keys userdata/userData from <secrets>/<volume>/ (KubeVirt's layout).
    add('udata', { secret: { secretName: cloudInit.secretRef.name } }, `${SECRETS_DIR}/${volume.name}`, true);
  }
  if (cloudInit?.networkDataSecretRef?.name) {
    add('ndata', { secret: { secretName: cloudInit.networkDataSecretRef.name } }, `${SECRETS_DIR}/${volume.name}-ndata`, true);
  }
  // cloudInitNoCloud inline data and emptyDisk live in ephemeral-disks, written by the launcher.
  return parts;
}

interface ImageSourceParts extends VolumeParts {
  /** The compute container's postStart hook that installs the copier (see imageSources). */
  lifecycle?: V1Lifecycle;
  /** The copies, started with the compute container (IMAGE_COPY_LIFELINE in the pod contract). */
  containers: V1Container[];
  env: V1EnvVar[];
}

const RESTRICTED_SECURITY_CONTEXT = {
  runAsUser: LAUNCHER_UID,
  runAsGroup: LAUNCHER_UID,
  runAsNonRoot: true,
  allowPrivilegeEscalation: false,
  privileged: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
};
// Copying is I/O, not compute. A copy container's request counts for the pod's life (it then waits
// on the lifeline: a shell and a cat, ~1 MiB), so it requests little; the limit leaves cp room for
// its buffers and page cache.
const COPY_RESOURCES = { requests: { cpu: '10m', memory: '8Mi' }, limits: { memory: '40Mi' } };

/**
 * The image copy script, run by the static busybox from the launcher image inside each
 * containerDisk or kernelBoot image, in a container started beside the launcher's:
 * `sh -c COPY_SCRIPT copy-image <target> <status file> <lifeline> [<field> <path in the image>]...`.
 * The script is a constant: the paths from the manifest reach it only as arguments and are used
 * only as quoted words, never parsed as shell. It checks each path again (the API refuses the same
 * ones: absolute, no empty, "." or ".." component, no control character) and names the field in
 * every failure, which goes to the status file the launcher waits for (and so into the VMI's
 * condition) and to the container's termination message. Files keep their path inside the image
 * (<target>/<path>), as the launcher expects; -L resolves symlinks to the files they name;
 * ownership is not kept (uid 107 cannot chown, and only reads). Then it stays up until the launcher
 * ends (end of file on the lifeline), or until the pod stops it (TERM: exit at once).
 */
export const COPY_SCRIPT = [
  'set -eu',
  `bb=${COPIER_BUSYBOX}`,
  'target=$1',
  'status=$2',
  'lifeline=$3',
  'shift 3',
  // The status is written whole (rename): the launcher never reads half of one.
  `report() { printf '%s\\n' "$@" >"$status.tmp" && $bb mv -f -- "$status.tmp" "$status"; }`,
  `fail() { echo "$1" >&2; report ${IMAGE_COPY_FAILED} "$1"; exit 1; }`,
  "trap 'exit 0' TERM",
  'while [ $# -ge 2 ]; do',
  '  field=$1',
  '  src=$2',
  '  shift 2',
  '  case $src in *[[:cntrl:]]*) fail "$field: must not contain control characters (newline, tab, ...)" ;; esac',
  '  case $src in /?*) ;; *) fail "$field: \\"$src\\" must be an absolute path to a file inside the image" ;; esac',
  '  case $src/ in */./* | */../* | *//*) fail "$field: \\"$src\\" must not contain empty, \\".\\" or \\"..\\" components" ;; esac',
  '  if [ ! -e "$src" ]; then fail "$field: \\"$src\\" does not exist in the image"; fi',
  '  dest=$target$src',
  '  $bb mkdir -p -- "${dest%/*}" || fail "$field: cannot create the directory for \\"$src\\""',
  '  $bb cp -RL -- "$src" "$dest" || fail "$field: copying \\"$src\\" failed (is the image larger than the pod allows?)"',
  'done',
  `report ${IMAGE_COPY_OK}`,
  // In the background so that TERM, trapped, ends the wait at once.
  '$bb cat -- "$lifeline" >/dev/null &',
  'wait $!',
].join('\n');

/** One image whose files the launcher reads: a containerDisk or the kernelBoot container. */
interface ImageSource {
  name: string;
  image: string;
  pullPolicy: string;
  /** What to copy ('init-copy'): the field that names it (for messages) and its path in the image. */
  copy: Array<{ field: string; path: string }>;
  into: string;
  /** The name of its copy's status file (the launcher pod contract). */
  status: string;
}

/**
 * containerDisks (`/var/run/kubevirt/container-disks/<volume>/disk/...`) and the kernelBoot image
 * (`/var/run/kubevirt/kernel-boot/...`): each image's root as the launcher expects it. An image that
 * cannot be pulled shows as ErrImagePull/ImagePullBackOff on the pod, naming the image.
 */
function imageSources(vmi: VirtualMachineInstance, config: LauncherPodConfig): ImageSourceParts {
  const parts: ImageSourceParts = { volumes: [], mounts: [], containers: [], env: [] };
  const sources: ImageSource[] = [];
  (vmi.spec.volumes ?? []).forEach((volume, index) => {
    if (!volume.containerDisk) return;
    const field = `spec.volumes[${index}].containerDisk`;
    sources.push({
      name: podVolumeName('cd', volume.name),
      image: volume.containerDisk.image,
      pullPolicy: volume.containerDisk.imagePullPolicy ?? 'IfNotPresent',
      // Without a path the launcher takes the single file under /disk (KubeVirt's convention).
      copy: [volume.containerDisk.path !== undefined ? { field: `${field}.path`, path: volume.containerDisk.path } : { field, path: '/disk' }],
      into: `${CONTAINER_DISKS_DIR}/${volume.name}`,
      status: imageCopyStatusName({ containerDisk: volume.name }),
    });
  });
  const kernelBoot = vmi.spec.domain.firmware?.kernelBoot?.container;
  if (kernelBoot?.image) {
    const field = 'spec.domain.firmware.kernelBoot.container';
    const copy = [
      ...(kernelBoot.kernelPath !== undefined ? [{ field: `${field}.kernelPath`, path: kernelBoot.kernelPath }] : []),
      ...(kernelBoot.initrdPath !== undefined ? [{ field: `${field}.initrdPath`, path: kernelBoot.initrdPath }] : []),
    ];
    sources.push({
      name: 'kernel-boot',
      image: kernelBoot.image,
      pullPolicy: kernelBoot.imagePullPolicy ?? 'IfNotPresent',
      copy: copy.length > 0 ? copy : [{ field, path: '/boot' }],
      into: KERNEL_BOOT_DIR,
      status: imageCopyStatusName('kernel-boot'),
    });
  }
  if (sources.length === 0) return parts;

  if (config.imageSourceMode === 'image-volume') {
    for (const source of sources) {
      parts.volumes.push({ name: source.name, image: { reference: source.image, pullPolicy: source.pullPolicy } });
      parts.mounts.push({ name: source.name, mountPath: source.into, readOnly: true });
    }
    return parts;
  }

  const copier = config.copierPath ?? DEFAULT_COPIER;
  parts.volumes.push(
    { name: 'kubevm-bin', emptyDir: { sizeLimit: formatBytes(COPIER_VOLUME_BYTES) } },
    { name: 'image-sources', emptyDir: { sizeLimit: formatBytes(launcherStorage(vmi, config).imageSources) } },
  );
  parts.mounts.push(
    { name: 'image-sources', mountPath: CONTAINER_DISKS_DIR, subPath: 'container-disks', readOnly: true },
    { name: 'image-sources', mountPath: KERNEL_BOOT_DIR, subPath: 'kernel-boot', readOnly: true },
    // Writable for the postStart hook below (the lifeline FIFO). The launcher could forge its own
    // copies' status there, which fools only itself.
    { name: 'image-sources', mountPath: IMAGE_COPY_DIR, subPath: IMAGE_COPIES_SUBPATH },
    { name: 'kubevm-bin', mountPath: COPIER_DIR },
  );
  parts.env.push({ name: LAUNCHER_ENV.imageCopyDir, value: IMAGE_COPY_DIR });
  // The copier comes from the launcher image: containerDisk images are usually FROM scratch. It is
  // installed by the compute container's postStart hook, not by an init container: the kubelet
  // runs the hook before it starts the next container (the copies need its busybox), whereas an
  // init container's exit is noticed only on the kubelet's next relist (PLEG, once a second).
  // The copies could run a busybox the launcher replaced: they run as the same uid, in the same
  // pod, with the same restricted context and no mount the launcher lacks but the image's own files.
  parts.lifecycle = { postStart: { exec: { command: imageCopierHookCommand(copier) } } };
  for (const source of sources) {
    const target = source.into.startsWith(CONTAINER_DISKS_DIR) ? `/target/container-disks${source.into.slice(CONTAINER_DISKS_DIR.length)}` : '/target/kernel-boot';
    parts.containers.push({
      name: source.name,
      image: source.image,
      imagePullPolicy: source.pullPolicy,
      command: [
        COPIER_BUSYBOX,
        'sh',
        '-c',
        COPY_SCRIPT,
        'copy-image',
        target,
        `/target/${IMAGE_COPIES_SUBPATH}/${source.status}`,
        `/target/${IMAGE_COPIES_SUBPATH}/${IMAGE_COPY_LIFELINE}`,
        ...source.copy.flatMap(({ field, path }) => [field, path]),
      ],
      volumeMounts: [
        { name: 'kubevm-bin', mountPath: COPIER_DIR, readOnly: true },
        { name: 'image-sources', mountPath: '/target' },
      ],
      securityContext: RESTRICTED_SECURITY_CONTEXT,
      resources: COPY_RESOURCES,
      // A failed copy's message becomes its termination message as well as its status.
      terminationMessagePolicy: 'FallbackToLogsOnError',
    });
  }
  return parts;
}

/**
 * How the launcher starts its domain: at once, as soon as its images are there (a VMI's own pod), or
 * only when its node handler asks (a migration target, whose QEMU must wait for the incoming stream).
 */
export type LauncherStart = 'at-once' | 'on-request';

export function renderLauncherPod(vmi: VirtualMachineInstance, config: LauncherPodConfig, facts: LauncherPodFacts = {}, start: LauncherStart = 'at-once'): V1Pod {
  const metadata = vmi.metadata ?? {};
  const name = metadata.name ?? '';
  const uid = metadata.uid ?? '';
  const spec = vmi.spec;

  const storage = launcherStorage(vmi, config);
  const fixedVolumes: V1Volume[] = [
    { name: PRIVATE_VOLUME, emptyDir: { sizeLimit: formatBytes(storage.private) } },
    { name: EPHEMERAL_DISKS_VOLUME, emptyDir: { sizeLimit: formatBytes(storage.ephemeralDisks) } },
  ];
  const fixedMounts: V1VolumeMount[] = [
    { name: PRIVATE_VOLUME, mountPath: PRIVATE_DIR },
    { name: EPHEMERAL_DISKS_VOLUME, mountPath: EPHEMERAL_DISKS_DIR },
  ];
  const perVolume = (spec.volumes ?? []).map((volume) => volumeParts(volume, facts));
  const devices = perVolume.flatMap((parts) => parts.devices ?? []);
  const kernelBoot = spec.domain.firmware?.kernelBoot?.container;
  const images = imageSources(vmi, config);
  const pullSecrets = [
    ...new Set(
      [...(spec.volumes ?? []).map((volume) => volume.containerDisk?.imagePullSecret), kernelBoot?.imagePullSecret].filter((s): s is string => Boolean(s)),
    ),
  ];

  const compute: V1Container = {
    name: COMPUTE_CONTAINER,
    image: config.launcherImage,
    imagePullPolicy: config.launcherImagePullPolicy ?? 'IfNotPresent',
    ...(config.launcherCommand ? { command: config.launcherCommand } : {}),
    // The contract's paths (the launcher's defaults agree; stating them keeps the contract visible in the pod).
    env: [
      ...launcherPathEnv(),
      // The one VMI the launcher takes from its node handler (runtime/contracts/launcher-input.ts).
      { name: LAUNCHER_ENV.vmiUid, value: uid },
      // useEmulation lets QEMU fall back to TCG where /dev/kvm is missing, as in KubeVirt.
      { name: LAUNCHER_ENV.allowEmulation, value: config.useEmulation ? 'true' : 'false' },
      { name: LAUNCHER_ENV.podName, valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      // QEMU starts while the kubelet has yet to notice the containers run (its next relist) and
      // report the pod Ready, and the controller then to write Scheduled: the node handler finds
      // the domain Running and writes that (bench/vm-startup.md). KubeVirt's launcher waits for
      // virt-handler's SyncVMI instead.
      { name: LAUNCHER_ENV.autostart, value: start === 'at-once' ? 'true' : 'false' },
      ...images.env,
    ],
    resources: launcherResources(vmi, config),
    // The copies' context: no capability at all. Guest ports below 1024 are bound through the
    // pod's sysctl below (ADR 0013).
    securityContext: RESTRICTED_SECURITY_CONTEXT,
    ...(images.lifecycle ? { lifecycle: images.lifecycle } : {}),
    volumeMounts: [...fixedMounts, ...perVolume.flatMap((parts) => parts.mounts), ...images.mounts],
    ...(devices.length > 0 ? { volumeDevices: devices } : {}),
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };

  const graceSeconds = spec.terminationGracePeriodSeconds ?? DEFAULT_VMI_GRACE_PERIOD_SECONDS;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: launcherPodName(vmi),
      namespace: metadata.namespace,
      labels: { ...(metadata.labels ?? {}), [LAUNCHER_LABEL]: LAUNCHER_LABEL_VALUE, [CREATED_BY_LABEL]: uid },
      // Nothing of the spec: pods are readable by more people than Secrets; the node handler hands
      // the VMI to the launcher (runtime/contracts/launcher-input.ts).
      annotations: { [DOMAIN_ANNOTATION]: name },
      ownerReferences: ownedByVMI(vmi),
    },
    spec: {
      // The launcher never talks to the API server (ADR 0007).
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      // A VM that stops is not restarted in place: the VMI is final and the VM controller decides.
      restartPolicy: 'Never',
      hostname: spec.hostname ?? name.slice(0, 63).replace(/[.-]+$/, ''),
      ...(spec.subdomain ? { subdomain: spec.subdomain } : {}),
      ...(spec.nodeSelector || config.nodeSelectors ? { nodeSelector: { ...(config.nodeSelectors ?? {}), ...(spec.nodeSelector ?? {}) } } : {}),
      ...(spec.affinity ? { affinity: spec.affinity } : {}),
      ...(spec.tolerations ? { tolerations: spec.tolerations } : {}),
      ...(spec.schedulerName ? { schedulerName: spec.schedulerName } : {}),
      ...(spec.priorityClassName ? { priorityClassName: spec.priorityClassName } : {}),
      ...(pullSecrets.length > 0 ? { imagePullSecrets: pullSecrets.map((secret) => ({ name: secret })) } : {}),
      terminationGracePeriodSeconds: graceSeconds + LAUNCHER_EXIT_MARGIN_SECONDS,
      securityContext: {
        runAsUser: LAUNCHER_UID,
        runAsGroup: LAUNCHER_UID,
        fsGroup: LAUNCHER_UID,
        runAsNonRoot: true,
        seccompProfile: { type: 'RuntimeDefault' },
        // QEMU's user-mode network (masquerade, slirp) and passt bind the guest's declared ports in
        // the pod's network namespace as uid 107; ports below 1024 too, without NET_BIND_SERVICE
        // (a capability in the bounding set only, never effective for a non-root process). A safe,
        // namespaced sysctl: the Restricted Pod Security Standard allows it (ADR 0013).
        sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }],
      },
      // The compute container first: the kubelet starts a pod's containers in order.
      containers: [compute, ...images.containers],
      volumes: [...fixedVolumes, ...perVolume.flatMap((parts) => parts.volumes), ...images.volumes],
    },
  };
}
