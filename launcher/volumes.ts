// The VMI's volumes → files QEMU opens. Everything the launcher writes lives in pod-local,
// writable directories (ADR 0007); the volumes it is given read-only (containerDisk bases,
// ephemeral PVC bases) are only ever opened read-only by QEMU as qcow2 backing files.
// No format is ever probed from a disk the guest can write: a PVC is raw, as the API says, so a
// guest that writes a qcow2 header into it sees those bytes again and nothing they name. A
// containerDisk base is checked (disk-image.ts) and becomes the overlay's backing by node name.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { constants, lstat, mkdir, open, readdir, realpath, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { buildCloudInitIso, cloudInitFiles } from './cloud-init.js';
import type { CloudInitSecretDirs } from './cloud-init.js';
import { UnsafeImageError, checkBaseImage, qemuImgInfo } from './disk-image.js';
import type { CheckedImage } from './disk-image.js';
import { isDnsLabel, DNS_LABEL_MESSAGE } from '../runtime/api/names.js';
import type { PreparedBase, PreparedDisk } from './qemu-args.js';
import type { LauncherVmi, LauncherVolume } from './vmi.js';
import { quantityBytes } from '../runtime/quantity.js';

const run = promisify(execFile);

export interface VolumePaths {
  /** Pod-local scratch for overlays, empty disks and the cloud-init ISO. */
  ephemeralDir: string;
  /** `<containerDiskDir>/<volume>/` is the root of that volume's containerDisk image (ADR 0006). */
  containerDiskDir: string;
  /** `<pvcDir>/<volume>/disk.img` for filesystem-mode PVCs. */
  pvcDir: string;
  /** `<blockDeviceDir>/<volume>` for block-mode PVCs (the pod's volumeDevices devicePath). */
  blockDeviceDir: string;
  secrets: CloudInitSecretDirs;
  qemuImg: string;
  xorriso: string;
}

export interface VolumeStatus {
  name: string;
  /** For a containerDisk: the base image and its content digest, as the VMI status reports it. */
  containerDisk?: { basePath: string; digest: string };
  persistentVolumeClaim?: { path: string; mode: 'filesystem' | 'block'; created: boolean };
}

export interface PreparedVolumes {
  disks: Map<string, PreparedDisk>;
  status: VolumeStatus[];
}

export class VolumeError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'VolumeError';
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** Whether `file` can be opened with O_DIRECT (tmpfs, for one, cannot). */
async function supportsDirectIO(file: string): Promise<boolean> {
  try {
    const fh = await open(file, constants.O_RDONLY | constants.O_DIRECT);
    await fh.close();
    return true;
  } catch {
    return false;
  }
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

async function qemuImg(paths: VolumePaths, args: string[], field: string): Promise<void> {
  try {
    await run(paths.qemuImg, args, { timeout: 60_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new VolumeError(field, `qemu-img ${args[0]} failed: ${(e.stderr ?? e.message).trim()}`);
  }
}

/**
 * A qcow2 overlay over a checked, read-only base: the guest's writes land in the overlay only.
 * -u: qemu-img does not open the base (it was checked already); the size comes from the check.
 * The base's name in the overlay header is for people reading it: QEMU is given the base as a
 * node of its own (qemu-args.ts) and never follows the name.
 */
async function createOverlay(paths: VolumePaths, base: PreparedBase, size: number, overlay: string, field: string): Promise<void> {
  await qemuImg(paths, ['create', '-q', '-f', 'qcow2', '-u', '-F', base.format, '-b', base.path, overlay, String(size)], field);
}

/** The base as checked, or the refusal as a VolumeError naming the field and why. */
async function checked(image: Promise<CheckedImage>, field: string, what: string): Promise<CheckedImage> {
  try {
    return await image;
  } catch (err) {
    if (err instanceof UnsafeImageError) throw new VolumeError(field, `${what}: ${err.message}`);
    throw err;
  }
}

/**
 * `file` resolved, if it is a regular file inside `root`: a symbolic link in an image must not
 * hand QEMU a file of the pod (a mounted Secret, say) as the guest's disk.
 */
async function regularFileInside(root: string, file: string, field: string, what: string): Promise<string> {
  const [realRoot, real] = await Promise.all([realpath(root), realpath(file)]);
  if (!real.startsWith(`${realRoot}/`)) throw new VolumeError(field, `${what} resolves to ${real}, outside the image`);
  if (!(await stat(real)).isFile()) throw new VolumeError(field, `${what} is not a regular file`);
  return real;
}

/** The containerDisk's base image: containerDisk.path, or the single file under /disk. */
async function containerDiskBase(paths: VolumePaths, volume: LauncherVolume, field: string): Promise<string> {
  const root = path.join(paths.containerDiskDir, volume.name);
  const wanted = volume.containerDisk?.path;
  if (wanted !== undefined) {
    const p = path.join(root, path.posix.normalize(`/${wanted}`));
    if (!(await exists(p))) throw new VolumeError(`${field}.path`, `disk image ${wanted} not found in image ${volume.containerDisk?.image} (looked at ${p})`);
    return regularFileInside(root, p, `${field}.path`, `disk image ${wanted} of image ${volume.containerDisk?.image}`);
  }
  const diskDir = path.join(root, 'disk');
  let entries: string[];
  try {
    entries = (await readdir(diskDir, { withFileTypes: true })).filter((e) => e.isFile() || e.isSymbolicLink()).map((e) => e.name);
  } catch {
    throw new VolumeError(field, `disk image not found: image ${volume.containerDisk?.image} is not present at ${root} (expected /disk/<file> inside the image)`);
  }
  if (entries.length !== 1) {
    throw new VolumeError(field, `expected exactly one file under /disk in image ${volume.containerDisk?.image}, found ${entries.length}${entries.length ? ` (${entries.join(', ')}); set containerDisk.path` : ''}`);
  }
  return regularFileInside(root, path.join(diskDir, entries[0] as string), field, `disk image /disk/${entries[0]} of image ${volume.containerDisk?.image}`);
}

/**
 * firmware.kernelBoot's kernel and initrd, inside the kernelBoot image's files: QEMU loads them
 * into guest memory, so a link out of the image would hand the guest a file of the pod.
 */
export async function kernelBootFiles(vmi: LauncherVmi, kernelBootDir: string): Promise<{ kernelPath: string; initrdPath?: string } | undefined> {
  const container = vmi.spec.domain.firmware?.kernelBoot?.container;
  if (!container) return undefined;
  const field = 'spec.domain.firmware.kernelBoot.container';
  const resolve = async (wanted: string, key: 'kernelPath' | 'initrdPath') => {
    const p = path.join(kernelBootDir, path.posix.normalize(`/${wanted}`));
    if (!(await exists(p))) throw new VolumeError(`${field}.${key}`, `${wanted} not found in image ${container.image} (looked at ${p})`);
    return regularFileInside(kernelBootDir, p, `${field}.${key}`, `${wanted} of image ${container.image}`);
  };
  const files: { kernelPath: string; initrdPath?: string } = { kernelPath: await resolve(container.kernelPath ?? '/boot/vmlinuz', 'kernelPath') };
  if (container.initrdPath) files.initrdPath = await resolve(container.initrdPath, 'initrdPath');
  return files;
}

/** The PVC's disk: a block device if the pod has one for it, else `disk.img` on its file system. */
async function pvcDisk(
  paths: VolumePaths,
  vmi: LauncherVmi,
  volume: LauncherVolume,
  claimName: string,
  createIfAbsent: boolean,
  field: string,
): Promise<{ path: string; mode: 'filesystem' | 'block'; created: boolean }> {
  const dev = path.join(paths.blockDeviceDir, volume.name);
  try {
    if ((await stat(dev)).isBlockDevice()) return { path: dev, mode: 'block', created: false };
  } catch {
    // no block device: a filesystem-mode claim
  }
  const dir = path.join(paths.pvcDir, volume.name);
  if (!(await exists(dir))) throw new VolumeError(field, `PersistentVolumeClaim ${claimName} is not mounted at ${dir} nor present as a block device at ${dev}`);
  const img = path.join(dir, 'disk.img');
  const existing = await lstat(img).catch(() => undefined);
  if (existing) {
    // A link would open whatever it names (in the pod) as the guest's writable disk.
    if (!existing.isFile()) throw new VolumeError(field, `${img} on PersistentVolumeClaim ${claimName} is not a regular file`);
    return { path: img, mode: 'filesystem', created: false };
  }
  if (!createIfAbsent) throw new VolumeError(field, `${img} does not exist on PersistentVolumeClaim ${claimName}`);
  // Sized as KubeVirt does: the claim's capacity from the VMI status when known, never more than
  // the file system holds; sparse, so only what the guest writes is allocated.
  const fs = await statfs(dir);
  const available = fs.bavail * fs.bsize;
  const statusCapacity = (vmi as { status?: { volumeStatus?: { name: string; persistentVolumeClaimInfo?: { capacity?: Record<string, string> } }[] } }).status
    ?.volumeStatus?.find((v) => v.name === volume.name)?.persistentVolumeClaimInfo?.capacity?.['storage'];
  let size = available;
  if (statusCapacity !== undefined) size = Math.min(size, quantityBytes(statusCapacity, `status.volumeStatus[${volume.name}].persistentVolumeClaimInfo.capacity.storage`));
  size = Math.floor(size / (1024 * 1024)) * 1024 * 1024;
  if (size <= 0) throw new VolumeError(field, `no space on PersistentVolumeClaim ${claimName} to create ${img}`);
  await qemuImg(paths, ['create', '-q', '-f', 'raw', img, String(size)], field);
  return { path: img, mode: 'filesystem', created: true };
}

/** Prepares every volume a disk refers to, in disk order. */
export async function prepareVolumes(vmi: LauncherVmi, paths: VolumePaths): Promise<PreparedVolumes> {
  const volumes = vmi.spec.volumes ?? [];
  const disks = new Map<string, PreparedDisk>();
  const status: VolumeStatus[] = [];
  const diskNames = new Set((vmi.spec.domain.devices.disks ?? []).map((d) => d.name));
  (vmi.spec.domain.devices.disks ?? []).forEach((d, i) => {
    if (!volumes.some((v) => v.name === d.name)) throw new VolumeError(`spec.domain.devices.disks[${i}].name`, `no volume named "${d.name}" in spec.volumes`);
  });
  for (const [i, volume] of volumes.entries()) {
    const field = `spec.volumes[${i}]`;
    if (!diskNames.has(volume.name)) continue;
    // The name becomes a directory of the pod's scratch space: it must not be a path.
    if (!isDnsLabel(volume.name)) throw new VolumeError(`${field}.name`, `${JSON.stringify(volume.name)} ${DNS_LABEL_MESSAGE}`);
    const dir = path.join(paths.ephemeralDir, volume.name);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (volume.containerDisk) {
      const base = await containerDiskBase(paths, volume, `${field}.containerDisk`);
      const image = await checked(checkBaseImage(paths.qemuImg, base), `${field}.containerDisk`, `disk image ${base} of image ${volume.containerDisk.image}`);
      const backing: PreparedBase = { path: base, format: image.format, blockDevice: false };
      const overlay = path.join(dir, 'overlay.qcow2');
      await createOverlay(paths, backing, image.virtualSize, overlay, `${field}.containerDisk`);
      disks.set(volume.name, { path: overlay, format: 'qcow2', blockDevice: false, readOnly: false, directIO: await supportsDirectIO(overlay), backing, podLocal: true });
      status.push({ name: volume.name, containerDisk: { basePath: base, digest: await sha256File(base) } });
    } else if (volume.cloudInitNoCloud) {
      const iso = path.join(dir, 'noCloud.iso');
      try {
        await buildCloudInitIso(await cloudInitFiles(vmi, volume, i, paths.secrets), iso, paths.xorriso);
      } catch (err) {
        throw err instanceof VolumeError ? err : new VolumeError(`${field}.cloudInitNoCloud`, (err as Error).message);
      }
      disks.set(volume.name, { path: iso, format: 'raw', blockDevice: false, readOnly: true, directIO: false, podLocal: true });
      status.push({ name: volume.name });
    } else if (volume.emptyDisk) {
      const bytes = quantityBytes(volume.emptyDisk.capacity, `${field}.emptyDisk.capacity`);
      const img = path.join(dir, 'empty.qcow2');
      await qemuImg(paths, ['create', '-q', '-f', 'qcow2', img, String(bytes)], `${field}.emptyDisk`);
      disks.set(volume.name, { path: img, format: 'qcow2', blockDevice: false, readOnly: false, directIO: await supportsDirectIO(img), podLocal: true });
      status.push({ name: volume.name });
    } else if (volume.persistentVolumeClaim) {
      const pvc = await pvcDisk(paths, vmi, volume, volume.persistentVolumeClaim.claimName, !volume.persistentVolumeClaim.readOnly, `${field}.persistentVolumeClaim`);
      disks.set(volume.name, {
        path: pvc.path,
        format: 'raw',
        blockDevice: pvc.mode === 'block',
        readOnly: volume.persistentVolumeClaim.readOnly === true,
        directIO: pvc.mode === 'block' || (await supportsDirectIO(pvc.path)),
      });
      status.push({ name: volume.name, persistentVolumeClaim: pvc });
    } else if (volume.ephemeral) {
      const claim = volume.ephemeral.persistentVolumeClaim;
      if (!claim) throw new VolumeError(`${field}.ephemeral.persistentVolumeClaim`, 'is required');
      const pvc = await pvcDisk(paths, vmi, volume, claim.claimName, false, `${field}.ephemeral.persistentVolumeClaim`);
      // The claim's disk is raw, as for a persistentVolumeClaim volume: never probed.
      const backing: PreparedBase = { path: pvc.path, format: 'raw', blockDevice: pvc.mode === 'block' };
      const image = await checked(qemuImgInfo(paths.qemuImg, pvc.path, 'raw', backing.blockDevice), `${field}.ephemeral`, `disk ${pvc.path}`);
      const overlay = path.join(dir, 'overlay.qcow2');
      await createOverlay(paths, backing, image.virtualSize, overlay, `${field}.ephemeral`);
      disks.set(volume.name, { path: overlay, format: 'qcow2', blockDevice: false, readOnly: false, directIO: await supportsDirectIO(overlay), backing, podLocal: true });
      status.push({ name: volume.name, persistentVolumeClaim: pvc });
    } else {
      const kind = Object.keys(volume).find((k) => k !== 'name') ?? 'none';
      throw new VolumeError(`${field}.${kind}`, `volume source "${kind}" is not supported by this launcher; use containerDisk, cloudInitNoCloud, emptyDisk, persistentVolumeClaim or ephemeral`);
    }
  }
  return { disks, status };
}
