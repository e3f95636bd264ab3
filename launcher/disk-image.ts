// Checks a disk image the launcher did not write (a containerDisk's base) before QEMU opens it.
// The class of Lima's CVE-2023-32684: an image format can make QEMU open other files — a qcow2
// backing file or external data file, vmdk extents, json:/nbd: names — and whatever QEMU opens
// on the guest's behalf the guest can read. So the launcher never lets QEMU (nor qemu-img) guess a
// format or follow a name from an image: it reads the header itself, refuses every format but raw
// and a self-contained qcow2, and only then asks qemu-img about the image with the driver given
// explicitly and no backing.
import { execFile } from 'node:child_process';
import { open } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type DiskFormat = 'raw' | 'qcow2';

export interface CheckedImage {
  format: DiskFormat;
  /** The size the guest sees, in bytes. */
  virtualSize: number;
}

/** An image the launcher refuses; the message says why, for the VMI's condition. */
export class UnsafeImageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsafeImageError';
  }
}

const QCOW_MAGIC = Buffer.from('QFI\xfb', 'latin1');

/**
 * Formats QEMU would recognise by their first bytes (as its block drivers probe them), so that a
 * containerDisk in one of them is refused by name rather than shown to the guest as raw bytes.
 */
const FOREIGN_FORMATS: { name: string; matches: (head: Buffer) => boolean }[] = [
  { name: 'vmdk', matches: (h) => ['KDMV', 'COWD'].includes(h.toString('latin1', 0, 4)) || /# Disk DescriptorFile|^\s*createType\s*=/m.test(h.toString('latin1')) },
  { name: 'vpc (VHD)', matches: (h) => h.toString('latin1', 0, 8) === 'conectix' },
  { name: 'vhdx', matches: (h) => h.toString('latin1', 0, 8) === 'vhdxfile' },
  { name: 'vdi', matches: (h) => h.length >= 0x44 && h.readUInt32LE(0x40) === 0xbeda107f },
  { name: 'qed', matches: (h) => h.toString('latin1', 0, 4) === 'QED\0' },
  { name: 'luks', matches: (h) => h.toString('latin1', 0, 6) === 'LUKS\xba\xbe' },
  { name: 'parallels', matches: (h) => ['WithoutFreeSpace', 'WithouFreSpacExt'].includes(h.toString('latin1', 0, 16)) },
  { name: 'bochs', matches: (h) => h.toString('latin1', 0, 22) === 'Bochs Virtual HD Image' },
  { name: 'cloop', matches: (h) => h.toString('latin1', 0, 24) === '#!/bin/sh\n#V2.0 Format\n' },
];

async function readAt(file: string, position: number, length: number): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, position);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

const QCOW2_INCOMPAT_DATA_FILE = 1n << 2n;
const EXT_END = 0;
const EXT_DATA_FILE = 0x44415441;
const EXT_CRYPTO = 0x0537be77;

/**
 * What in a qcow2 header would make QEMU open something besides the image itself (qcow2 is
 * big-endian; layout from QEMU's docs/interop/qcow2.txt).
 */
function qcow2Problems(h: Buffer): string[] {
  if (h.length < 72) return ['the qcow2 header is truncated'];
  const version = h.readUInt32BE(4);
  if (version === 1) return ['it is a qcow (version 1) image, which QEMU would open with the qcow driver'];
  if (version !== 2 && version !== 3) return [`it has an unknown qcow2 version ${version}`];
  const problems: string[] = [];
  const backingOffset = h.readBigUInt64BE(8);
  if (backingOffset !== 0n) {
    const size = h.readUInt32BE(16);
    const at = Number(backingOffset);
    const name = at + size <= h.length ? h.toString('utf8', at, at + size) : '<beyond the first cluster>';
    problems.push(`it has a backing file ${JSON.stringify(name)}`);
  }
  let encrypted = h.readUInt32BE(32) !== 0;
  let dataFile = false;
  let dataFileName: string | undefined;
  let extensionsAt = 72;
  if (version === 3) {
    if (h.length < 104) return ['the qcow2 header is truncated'];
    dataFile = (h.readBigUInt64BE(72) & QCOW2_INCOMPAT_DATA_FILE) !== 0n;
    extensionsAt = h.readUInt32BE(100);
  }
  // Header extensions, up to the end marker; each is padded to 8 bytes.
  for (let at = extensionsAt, n = 0; at + 8 <= h.length && n < 1024; n++) {
    const type = h.readUInt32BE(at);
    const length = h.readUInt32BE(at + 4);
    if (type === EXT_END) break;
    if (type === EXT_DATA_FILE) {
      dataFile = true;
      dataFileName = h.toString('utf8', at + 8, Math.min(h.length, at + 8 + length));
    }
    if (type === EXT_CRYPTO) encrypted = true;
    at += 8 + Math.ceil(length / 8) * 8;
  }
  if (dataFile) problems.push(`it has an external data file${dataFileName === undefined ? '' : ` ${JSON.stringify(dataFileName)}`}`);
  if (encrypted) problems.push('it is encrypted');
  return problems;
}

/** The image's own format, from its first bytes, or an error naming the format it refuses. */
export async function diskFormatOf(file: string): Promise<DiskFormat> {
  const head = await readAt(file, 0, 4096);
  if (head.subarray(0, 4).equals(QCOW_MAGIC)) {
    const clusterBits = head.length >= 24 ? head.readUInt32BE(20) : 16;
    // Header extensions live in the first cluster (at most 2 MiB).
    const header = await readAt(file, 0, 2 ** Math.min(Math.max(clusterBits, 9), 21));
    const problems = qcow2Problems(header);
    if (problems.length) throw new UnsafeImageError(`the image is refused because ${problems.join(', and ')}; use a self-contained qcow2 or raw image`);
    return 'qcow2';
  }
  const foreign = FOREIGN_FORMATS.find((f) => f.matches(head));
  if (foreign) throw new UnsafeImageError(`the image is a ${foreign.name} image; only raw and qcow2 are supported (convert it with qemu-img convert -O qcow2)`);
  return 'raw';
}

/** The node QEMU (and qemu-img) opens: the driver explicit, no backing, no probing. */
export function imageNode(file: string, format: DiskFormat, blockDevice: boolean): Record<string, unknown> {
  const protocol = { driver: blockDevice ? 'host_device' : 'file', filename: file };
  // raw has no backing to refuse and does not accept the option.
  return format === 'qcow2' ? { driver: 'qcow2', backing: null, file: protocol } : { driver: 'raw', file: protocol };
}

interface QemuImgInfo {
  format?: string;
  'virtual-size'?: number;
  'backing-filename'?: string;
  'full-backing-filename'?: string;
  'backing-filename-format'?: string;
  encrypted?: boolean;
  'format-specific'?: { data?: { 'data-file'?: string; 'data-file-raw'?: boolean } };
}

/**
 * Asks qemu-img for the image's size with its format given (a json: name with the driver and
 * `backing: null`, so qemu-img neither probes nor opens anything but `file`), and checks its
 * answer agrees that nothing else would be opened.
 */
export async function qemuImgInfo(qemuImg: string, file: string, format: DiskFormat, blockDevice = false): Promise<CheckedImage> {
  let stdout: string;
  try {
    ({ stdout } = await run(qemuImg, ['info', '--output=json', '-U', `json:${JSON.stringify(imageNode(file, format, blockDevice))}`], { timeout: 60_000, maxBuffer: 1 << 20 }));
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new UnsafeImageError(`qemu-img cannot read it as ${format}: ${(e.stderr || e.message).trim()}`);
  }
  const info = JSON.parse(stdout) as QemuImgInfo;
  const problems: string[] = [];
  if (info.format !== format) problems.push(`qemu-img reads it as ${info.format ?? 'nothing'}, not ${format}`);
  const backing = info['full-backing-filename'] ?? info['backing-filename'];
  if (backing !== undefined) problems.push(`it has a backing file ${JSON.stringify(backing)}`);
  const dataFile = info['format-specific']?.data?.['data-file'];
  if (dataFile !== undefined) problems.push(`it has an external data file ${JSON.stringify(dataFile)}`);
  if (info.encrypted) problems.push('it is encrypted');
  if (typeof info['virtual-size'] !== 'number' || info['virtual-size'] <= 0) problems.push('it has no size');
  if (problems.length) throw new UnsafeImageError(`the image is refused because ${problems.join(', and ')}`);
  return { format, virtualSize: info['virtual-size'] as number };
}

/** A containerDisk base: its format from its own header, checked, and its size. */
export async function checkBaseImage(qemuImg: string, file: string): Promise<CheckedImage> {
  return qemuImgInfo(qemuImg, file, await diskFormatOf(file));
}
