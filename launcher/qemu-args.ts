// The VMI domain → a QEMU command line. Pure: every host fact it needs (accelerator, where the
// prepared disks are, socket paths) comes in through the context, so it is unit-tested without
// QEMU. Values it cannot honour are errors naming the field path, never silently dropped.
// Strings reach QEMU in one of two ways only: -blockdev, -device and -netdev as JSON (QEMU 10
// accepts JSON for all three), everything else in QEMU's key=value syntax with commas doubled
// (qemuOptionValue). Names that become QEMU ids or paths are DNS labels, checked here too: the
// launcher must be safe with a VMI that no admission checked.
import type { LauncherDisk, LauncherInterface, LauncherVmi } from './vmi.js';
import { quantityBytes, quantityMillis } from '../runtime/quantity.js';
import { DISK_SERIAL_MESSAGE, DNS_LABEL_MESSAGE, isDiskSerial, isDnsLabel } from '../runtime/api/names.js';
import { DEFAULT_CDROM_BUS, DEFAULT_DISK_BUS, DEFAULT_MACHINE_TYPE, defaultPodInterface } from '../runtime/vmi-defaults.js';
import { imageNode } from './disk-image.js';
import type { DiskFormat } from './disk-image.js';

export type Accelerator = 'kvm' | 'tcg';

/** A read-only base image under a qcow2 overlay, as checked by volumes.ts. */
export interface PreparedBase {
  path: string;
  format: DiskFormat;
  blockDevice: boolean;
}

/** A volume made ready for QEMU by volumes.ts. */
export interface PreparedDisk {
  /** The file or block device QEMU opens. */
  path: string;
  /** Given by the API or by the launcher's own check; never probed by QEMU. */
  format: DiskFormat;
  /** The base under this qcow2 overlay (containerDisk, ephemeral PVC); no backing when unset. */
  backing?: PreparedBase;
  /** A block device (block-mode PVC) rather than a file. */
  blockDevice: boolean;
  /** The volume itself is read-only (e.g. the cloud-init ISO). */
  readOnly: boolean;
  /** The file system supports O_DIRECT, so cache=none is possible. */
  directIO: boolean;
  /**
   * The file lives in the launcher pod (an overlay, an emptyDisk, the cloud-init ISO), not on
   * storage both nodes reach: a live migration copies it (disk-mirror.ts).
   */
  podLocal?: boolean;
}

/** Whether QEMU opens the disk read-only: the volume is, or the disk says so (a cdrom unless told otherwise). */
export function diskReadOnly(disk: LauncherDisk, prepared: PreparedDisk): boolean {
  return prepared.readOnly || (disk.cdrom !== undefined ? disk.cdrom.readonly !== false : disk.disk?.readonly === true);
}

/** The QEMU node name of the format layer of the VMI's disk at this index (what the device uses). */
export function diskNodeName(index: number): string {
  return `disk${index}-format`;
}

export interface LauncherSockets {
  qmp: string;
  serial: string;
  serialLog: string;
  vnc: string;
  guestAgent: string;
  /** The passt socket of an interface, by interface name. */
  passt: (interfaceName: string) => string;
}

export interface QemuContext {
  accel: Accelerator;
  sockets: LauncherSockets;
  /** Prepared volumes by volume name. */
  disks: ReadonlyMap<string, PreparedDisk>;
  /** Kernel and initrd for firmware.kernelBoot, resolved by the launcher from its config. */
  kernelBoot?: { kernelPath: string; initrdPath?: string };
  /** UEFI firmware, when the launcher image carries OVMF. */
  ovmf?: { code: string; vars: string };
  /** TCG only: the translated-code cache size (QEMU's tb-size), 64 MiB when unset. */
  tcgTranslationCacheMiB?: number;
  /** Install QEMU's seccomp sandbox (off only for debugging). */
  sandbox: boolean;
  /** The current time, for a clock offset (kept out of the function so it stays pure). */
  now?: Date;
}

export class DomainSpecError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'DomainSpecError';
  }
}

const DISK_BUSES = ['virtio', 'sata', 'scsi', 'usb'] as const;
const CACHE_MODES = ['none', 'writethrough', 'writeback'] as const;
const ERROR_POLICIES = ['stop', 'ignore', 'report', 'enospace'] as const;
const NIC_MODELS: Record<string, string> = {
  virtio: 'virtio-net-pci',
  e1000: 'e1000',
  e1000e: 'e1000e',
  igb: 'igb',
  ne2k_pci: 'ne2k_pci',
  pcnet: 'pcnet',
  rtl8139: 'rtl8139',
};
const WATCHDOG_ACTIONS = ['poweroff', 'reset', 'shutdown'] as const;
const MIB = 1024 * 1024;

/** QEMU's option syntax: a comma inside a value is written twice. */
export function qemuOptionValue(value: string): string {
  return value.replaceAll(',', ',,');
}

/** A free-form string for QEMU's argv: anything but NUL, which no argument can hold. */
function noNul(value: string, field: string): string {
  if (value.includes('\0')) throw new DomainSpecError(field, 'must not contain a NUL character');
  return value;
}

function positiveInt(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 1) throw new DomainSpecError(field, `must be a positive integer, got ${JSON.stringify(value)}`);
  return value;
}

function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], fallback: T, field: string): T {
  if (value === undefined) return fallback;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new DomainSpecError(field, `"${value}" is not supported; use one of ${allowed.join(', ')}`);
}

/** The guest's vCPU topology, as KubeVirt derives it when the spec leaves parts unset. */
export function cpuTopology(vmi: LauncherVmi): { sockets: number; cores: number; threads: number; vcpus: number } {
  const cpu = vmi.spec.domain.cpu ?? {};
  const cores = cpu.cores ?? 1;
  const threads = cpu.threads ?? 1;
  let sockets = cpu.sockets;
  if (sockets === undefined) {
    if (cpu.cores === undefined && cpu.threads === undefined) {
      const res = vmi.spec.domain.resources;
      const cpuQuantity = res?.limits?.['cpu'] ?? res?.requests?.['cpu'];
      sockets = cpuQuantity === undefined ? 1 : Math.max(1, Math.ceil(cpuMillis(cpuQuantity) / 1000));
    } else {
      sockets = 1;
    }
  }
  for (const [name, v] of [['sockets', sockets], ['cores', cores], ['threads', threads]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new DomainSpecError(`spec.domain.cpu.${name}`, `must be a positive integer, got ${v}`);
  }
  return { sockets, cores, threads, vcpus: sockets * cores * threads };
}

function cpuMillis(q: string | number): number {
  try {
    return quantityMillis(q, 'spec.domain.resources.requests.cpu');
  } catch {
    throw new DomainSpecError('spec.domain.resources.requests.cpu', `"${q}" is not a CPU quantity (e.g. 500m, 2)`);
  }
}

/** Guest memory in bytes: memory.guest, else the memory request, else the limit. */
export function guestMemoryBytes(vmi: LauncherVmi): number {
  const d = vmi.spec.domain;
  if (d.memory?.guest !== undefined) return quantityBytes(d.memory.guest, 'spec.domain.memory.guest');
  const req = d.resources?.requests?.['memory'];
  if (req !== undefined) return quantityBytes(req, 'spec.domain.resources.requests.memory');
  const lim = d.resources?.limits?.['memory'];
  if (lim !== undefined) return quantityBytes(lim, 'spec.domain.resources.limits.memory');
  throw new DomainSpecError('spec.domain.memory.guest', 'guest memory is unset: set memory.guest or resources.requests.memory');
}

function machineArgs(vmi: LauncherVmi, ctx: QemuContext, hugepages: boolean): string[] {
  const type = vmi.spec.domain.machine?.type ?? DEFAULT_MACHINE_TYPE;
  if (!/^(q35|pc-q35-[A-Za-z0-9._-]+)$/.test(type)) {
    throw new DomainSpecError('spec.domain.machine.type', `"${type}" is not supported; use q35 or a pc-q35-<version> type`);
  }
  const opts = [type, 'usb=off', 'vmport=off', 'dump-guest-core=off'];
  if (vmi.spec.domain.features?.acpi?.enabled === false) opts.push('acpi=off');
  if (vmi.spec.domain.firmware?.bootloader?.bios?.useSerial) opts.push('graphics=off');
  if (hugepages) opts.push('memory-backend=guest-memory');
  return ['-machine', opts.join(',')];
}

function cpuArgs(vmi: LauncherVmi, ctx: QemuContext): string[] {
  const cpu = vmi.spec.domain.cpu ?? {};
  const model = cpu.model;
  let name: string;
  if (model === undefined || model === 'host-model' || model === 'host-passthrough') {
    // Under emulation there is no host CPU to pass through: the emulator's widest model.
    if (ctx.accel === 'tcg') name = 'max';
    // libvirt expands host-model to a named model plus features; QEMU's "host" is the nearest
    // without libvirt, and migratable=on keeps it to features that survive a migration.
    else name = model === 'host-passthrough' ? 'host,migratable=off' : 'host,migratable=on';
  } else if (/^[A-Za-z0-9._-]+$/.test(model)) {
    name = model;
  } else {
    throw new DomainSpecError('spec.domain.cpu.model', `"${model}" is not a CPU model name`);
  }
  const features = (cpu.features ?? []).map((f, i) => {
    const field = `spec.domain.cpu.features[${i}]`;
    if (!/^[a-z0-9_.-]+$/i.test(f.name)) throw new DomainSpecError(`${field}.name`, `"${f.name}" is not a CPU feature name`);
    const policy = oneOf(f.policy, ['force', 'require', 'optional', 'disable', 'forbid'] as const, 'require', `${field}.policy`);
    return `${f.name}=${policy === 'disable' || policy === 'forbid' ? 'off' : 'on'}`;
  });
  const topo = cpuTopology(vmi);
  return [
    '-cpu',
    [name, ...features].join(','),
    '-smp',
    `${topo.vcpus},sockets=${topo.sockets},cores=${topo.cores},threads=${topo.threads}`,
  ];
}

function memoryArgs(vmi: LauncherVmi): { args: string[]; hugepages: boolean } {
  const bytes = guestMemoryBytes(vmi);
  const mib = Math.ceil(bytes / MIB);
  const pageSize = vmi.spec.domain.memory?.hugepages?.pageSize;
  if (pageSize === undefined) return { args: ['-m', `${mib}M`], hugepages: false };
  const page = quantityBytes(pageSize, 'spec.domain.memory.hugepages.pageSize');
  if (page !== 2 * MIB && page !== 1024 * MIB) {
    throw new DomainSpecError('spec.domain.memory.hugepages.pageSize', `"${pageSize}" is not supported; use 2Mi or 1Gi`);
  }
  if (bytes % page !== 0) {
    throw new DomainSpecError('spec.domain.memory.guest', `guest memory must be a multiple of the huge page size ${pageSize}`);
  }
  // The kubelet mounts the pod's hugetlbfs at /dev/hugepages for hugepages-* resources.
  const dir = page === 2 * MIB ? '/dev/hugepages' : '/dev/hugepages1G';
  return {
    args: ['-m', `${mib}M`, '-object', `memory-backend-file,id=guest-memory,size=${mib}M,mem-path=${dir},prealloc=on,share=off`],
    hugepages: true,
  };
}

function firmwareArgs(vmi: LauncherVmi, ctx: QemuContext): string[] {
  const fw = vmi.spec.domain.firmware ?? {};
  const args: string[] = [];
  if (fw.uuid !== undefined) {
    if (!/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(fw.uuid)) {
      throw new DomainSpecError('spec.domain.firmware.uuid', `"${fw.uuid}" is not a UUID`);
    }
    args.push('-uuid', fw.uuid);
  }
  // SMBIOS system information as KubeVirt sets it, so guests that look for it find the same.
  const smbios = ['type=1', 'manufacturer=KubeVirt', 'product=None', 'family=KubeVirt'];
  if (fw.serial !== undefined) smbios.push(`serial=${qemuOptionValue(noNul(fw.serial, 'spec.domain.firmware.serial'))}`);
  if (fw.uuid !== undefined) smbios.push(`uuid=${fw.uuid}`);
  args.push('-smbios', smbios.join(','));
  if (fw.bootloader?.efi) {
    if (!ctx.ovmf) throw new DomainSpecError('spec.domain.firmware.bootloader.efi', 'UEFI firmware (OVMF) is not available in this launcher; use bios');
    args.push(
      '-blockdev', JSON.stringify({ 'node-name': 'ovmf-code', driver: 'file', filename: ctx.ovmf.code, 'read-only': true }),
      '-blockdev', JSON.stringify({ 'node-name': 'ovmf-vars', driver: 'file', filename: ctx.ovmf.vars }),
    );
  }
  const kb = fw.kernelBoot;
  if (kb) {
    if (!kb.container) throw new DomainSpecError('spec.domain.firmware.kernelBoot.container', 'kernelBoot needs a container providing the kernel');
    if (!ctx.kernelBoot) throw new DomainSpecError('spec.domain.firmware.kernelBoot.container', 'the launcher was given no kernel for kernelBoot');
    // -kernel, -initrd and -append take their value whole, but a multiboot kernel splits -initrd
    // at commas into modules (each "file args"): a path with a comma or a space could load
    // another file of the pod into the guest, so such paths are refused.
    const paths = { kernelPath: ctx.kernelBoot.kernelPath, initrdPath: ctx.kernelBoot.initrdPath };
    for (const [key, p] of Object.entries(paths)) {
      if (p !== undefined && !/^\/[^,\s\0]*$/.test(p)) {
        throw new DomainSpecError(`spec.domain.firmware.kernelBoot.container.${key}`, `${JSON.stringify(p)} must be an absolute path without commas, white space or NUL`);
      }
    }
    args.push('-kernel', ctx.kernelBoot.kernelPath);
    if (ctx.kernelBoot.initrdPath) args.push('-initrd', ctx.kernelBoot.initrdPath);
    // The kernel command line is the user's by design; it stays inside its own argument.
    if (kb.kernelArgs) args.push('-append', noNul(kb.kernelArgs, 'spec.domain.firmware.kernelBoot.kernelArgs'));
  }
  return args;
}

function clockArgs(vmi: LauncherVmi, ctx: QemuContext): string[] {
  const clock = vmi.spec.domain.clock;
  if (clock?.timezone !== undefined) {
    throw new DomainSpecError('spec.domain.clock.timezone', 'a time zone clock is not supported by this launcher; use utc');
  }
  const offset = clock?.utc?.offsetSeconds ?? 0;
  if (offset === 0) return ['-rtc', 'base=utc,driftfix=slew'];
  const base = new Date((ctx.now ?? new Date()).getTime() + offset * 1000).toISOString().slice(0, 19);
  return ['-rtc', `base=${base},driftfix=slew`];
}

interface Controllers {
  scsi: boolean;
  usb: boolean;
  sataPort: number;
}

function diskArgs(vmi: LauncherVmi, ctx: QemuContext): string[] {
  const disks = vmi.spec.domain.devices.disks ?? [];
  const volumes = new Set((vmi.spec.volumes ?? []).map((v) => v.name));
  const args: string[] = [];
  const ctl: Controllers = { scsi: false, usb: false, sataPort: 0 };
  const devices: string[] = [];
  disks.forEach((disk, i) => {
    const field = `spec.domain.devices.disks[${i}]`;
    if (!isDnsLabel(disk.name)) throw new DomainSpecError(`${field}.name`, `${JSON.stringify(disk.name)} ${DNS_LABEL_MESSAGE}`);
    if (!volumes.has(disk.name)) throw new DomainSpecError(`${field}.name`, `no volume named "${disk.name}" in spec.volumes`);
    const prepared = ctx.disks.get(disk.name);
    if (!prepared) throw new DomainSpecError(`${field}.name`, `volume "${disk.name}" was not prepared`);
    const { blockdev, device } = oneDisk(disk, i, field, prepared, ctl);
    args.push(...blockdev);
    devices.push(...device);
  });
  const controllers: string[] = [];
  if (ctl.scsi) controllers.push('-device', 'virtio-scsi-pci,id=scsi0');
  if (ctl.usb) controllers.push('-device', 'qemu-xhci,id=usb');
  return [...controllers, ...args, ...devices];
}

function oneDisk(disk: LauncherDisk, index: number, field: string, prepared: PreparedDisk, ctl: Controllers): { blockdev: string[]; device: string[] } {
  const kinds = (['disk', 'cdrom', 'lun'] as const).filter((k) => disk[k] !== undefined);
  if (kinds.length > 1) throw new DomainSpecError(field, `only one of disk, cdrom, lun may be set (got ${kinds.join(', ')})`);
  const kind = kinds[0] ?? 'disk';
  if (kind === 'lun') throw new DomainSpecError(`${field}.lun`, 'SCSI LUN passthrough is not supported by this launcher; use disk');
  const target = kind === 'cdrom' ? disk.cdrom : disk.disk;
  const busField = `${field}.${kind}.bus`;
  const bus = oneOf(target?.bus, DISK_BUSES, kind === 'cdrom' ? DEFAULT_CDROM_BUS : DEFAULT_DISK_BUS, busField);
  if (kind === 'cdrom' && bus === 'virtio') throw new DomainSpecError(busField, 'a cdrom cannot use the virtio bus; use sata or scsi');
  const readOnly = diskReadOnly(disk, prepared);
  const cache = oneOf(disk.cache, CACHE_MODES, prepared.directIO && !readOnly ? 'none' : 'writethrough', `${field}.cache`);
  if (cache === 'none' && !prepared.directIO) {
    throw new DomainSpecError(`${field}.cache`, 'cache "none" needs O_DIRECT, which the file system of this volume does not support');
  }
  const errorPolicy = oneOf(disk.errorPolicy, ERROR_POLICIES, 'stop', `${field}.errorPolicy`);
  const id = `disk${index}`;
  const cacheOpts = { direct: cache === 'none', 'no-flush': false };
  // Every node has its driver set; a qcow2 node has `backing` set, to the checked base's node or
  // null, so QEMU never opens a file named inside an image.
  const blockdev: string[] = [];
  let backing: string | null = null;
  if (prepared.backing) {
    const base = imageNode(prepared.backing.path, prepared.backing.format, prepared.backing.blockDevice);
    const baseFile = { ...(base['file'] as object), 'node-name': `${id}-base-file`, 'read-only': true, cache: cacheOpts };
    blockdev.push('-blockdev', JSON.stringify(baseFile));
    blockdev.push('-blockdev', JSON.stringify({ ...base, 'node-name': `${id}-base`, file: baseFile['node-name'], 'read-only': true, cache: cacheOpts }));
    backing = `${id}-base`;
  }
  const fileNode = {
    'node-name': `${id}-file`,
    driver: prepared.blockDevice ? 'host_device' : 'file',
    filename: prepared.path,
    'read-only': readOnly,
    cache: cacheOpts,
    discard: 'unmap',
  };
  const formatNode: Record<string, unknown> = {
    'node-name': diskNodeName(index),
    driver: prepared.format,
    file: fileNode['node-name'],
    'read-only': readOnly,
    cache: cacheOpts,
    discard: 'unmap',
  };
  if (prepared.format === 'qcow2') formatNode['backing'] = backing;
  else if (backing !== null) throw new DomainSpecError(field, `a ${prepared.format} disk cannot have a base image`);
  blockdev.push('-blockdev', JSON.stringify(fileNode), '-blockdev', JSON.stringify(formatNode));
  const props: Record<string, unknown> = { drive: diskNodeName(index), id: `ua-${disk.name}` };
  // writethrough means the guest sees no volatile write cache: every write is flushed.
  props['write-cache'] = cache === 'writethrough' ? 'off' : 'on';
  if (disk.bootOrder !== undefined) props['bootindex'] = positiveInt(disk.bootOrder, `${field}.bootOrder`);
  if (disk.serial !== undefined) {
    if (!isDiskSerial(disk.serial)) throw new DomainSpecError(`${field}.serial`, `${JSON.stringify(disk.serial)} ${DISK_SERIAL_MESSAGE}`);
    props['serial'] = disk.serial;
  }
  props['werror'] = errorPolicy === 'enospace' ? 'enospc' : errorPolicy;
  props['rerror'] = errorPolicy === 'enospace' ? 'report' : errorPolicy;
  let device: Record<string, unknown>;
  switch (bus) {
    case 'virtio':
      device = { driver: 'virtio-blk-pci', ...props };
      break;
    case 'sata': {
      // QEMU's ide-hd cannot be read-only (libvirt refuses it too); ide-cd always is.
      if (kind === 'disk' && readOnly) throw new DomainSpecError(`${field}.disk.readonly`, 'a read-only disk cannot use the sata bus; use virtio or scsi');
      if (ctl.sataPort >= 6) throw new DomainSpecError(busField, 'at most 6 sata disks fit the q35 AHCI controller');
      const port = ctl.sataPort++;
      device = { driver: kind === 'cdrom' ? 'ide-cd' : 'ide-hd', bus: `ide.${port}`, ...props };
      break;
    }
    case 'scsi':
      ctl.scsi = true;
      device = { driver: kind === 'cdrom' ? 'scsi-cd' : 'scsi-hd', bus: 'scsi0.0', ...props };
      break;
    case 'usb':
      if (kind === 'cdrom') throw new DomainSpecError(busField, 'a cdrom cannot use the usb bus; use sata or scsi');
      ctl.usb = true;
      device = { driver: 'usb-storage', bus: 'usb.0', removable: false, ...props };
      break;
  }
  return { blockdev, device: ['-device', JSON.stringify(device)] };
}

/** The guest's interfaces as QEMU gets them: the spec's, or KubeVirt's default one. */
function guestInterfaces(vmi: LauncherVmi): LauncherInterface[] {
  const devices = vmi.spec.domain.devices;
  const podInterface = defaultPodInterface(vmi.spec);
  return podInterface ? [podInterface] : (devices.interfaces ?? []);
}

/** Where port-forwarding reaches the guest: its first interface, as KubeVirt's port-forward. */
export interface PortForwardTarget {
  /** slirp (masquerade, slirp): through a hostfwd on the netdev; passt: passt's own forwarding. */
  stack: 'slirp' | 'passt';
  /** The -netdev id of that interface. */
  netdevId: string;
  /** The interface's declared TCP ports; empty means every port. */
  tcpPorts: number[];
}

export function portForwardTarget(vmi: LauncherVmi): PortForwardTarget | undefined {
  const interfaces = guestInterfaces(vmi);
  const index = interfaces.findIndex((iface) => iface.state !== 'absent');
  const iface = interfaces[index];
  if (!iface || (iface.masquerade === undefined && iface.slirp === undefined && iface.passt === undefined)) return undefined;
  const tcpPorts = (iface.ports ?? []).filter((p) => (p.protocol ?? 'TCP') === 'TCP').map((p) => p.port);
  return { stack: iface.passt !== undefined ? 'passt' : 'slirp', netdevId: `net${index}`, tcpPorts };
}

/** An interface's declared ports, checked: they reach QEMU's and passt's command lines. */
function interfacePorts(iface: LauncherInterface, field: string): { protocol: 'TCP' | 'UDP'; port: number }[] {
  if (iface.ports !== undefined && !Array.isArray(iface.ports)) throw new DomainSpecError(`${field}.ports`, 'must be a list');
  return (iface.ports ?? []).map((p, j) => {
    const protocol = oneOf(p?.protocol, ['TCP', 'UDP'] as const, 'TCP', `${field}.ports[${j}].protocol`);
    if (!Number.isInteger(p?.port) || p.port < 1 || p.port > 65535) throw new DomainSpecError(`${field}.ports[${j}].port`, `${JSON.stringify(p?.port ?? null)} is not a port number`);
    return { protocol, port: p.port };
  });
}

/** One passt process: the interface it serves, the socket QEMU connects to, passt's arguments. */
export interface PasstCommand {
  iface: string;
  socket: string;
  args: string[];
}

/**
 * passt for each passt interface QEMU connects to: an absent interface has no NIC, so no passt;
 * ports are checked as for QEMU, since they become passt's arguments.
 */
export function passtCommands(vmi: LauncherVmi, sockets: Pick<LauncherSockets, 'passt'>): PasstCommand[] {
  return guestInterfaces(vmi).flatMap((iface, i) => {
    if (iface.passt === undefined || iface.state === 'absent') return [];
    const ports = interfacePorts(iface, `spec.domain.devices.interfaces[${i}]`);
    const socket = sockets.passt(iface.name);
    // No ports declared: forward all, as KubeVirt does for passt; some declared, none of this
    // protocol: forward none of it.
    const forwards = (protocol: 'TCP' | 'UDP') => {
      const listed = ports.filter((p) => p.protocol === protocol).map((p) => String(p.port));
      return listed.length ? listed.join(',') : ports.length ? 'none' : 'all';
    };
    return [{ iface: iface.name, socket, args: ['--foreground', '--one-off', '--socket', socket, '-t', forwards('TCP'), '-u', forwards('UDP')] }];
  });
}

function interfaceArgs(vmi: LauncherVmi, ctx: QemuContext): string[] {
  const networks = vmi.spec.networks ?? [];
  const interfaces = guestInterfaces(vmi);
  const args: string[] = [];
  interfaces.forEach((iface, i) => {
    const field = `spec.domain.devices.interfaces[${i}]`;
    if (!isDnsLabel(iface.name)) throw new DomainSpecError(`${field}.name`, `${JSON.stringify(iface.name)} ${DNS_LABEL_MESSAGE}`);
    const network = networks.find((n) => n.name === iface.name);
    if (vmi.spec.networks !== undefined && !network) throw new DomainSpecError(`${field}.name`, `no network named "${iface.name}" in spec.networks`);
    if (network && !network.pod) throw new DomainSpecError(`spec.networks`, `network "${iface.name}": only the pod network is supported`);
    // Checked even for an absent interface: nothing unchecked may reach passt's command line.
    const ports = interfacePorts(iface, field);
    if (iface.state === 'absent') return;
    if (iface.state !== undefined && iface.state !== 'up') throw new DomainSpecError(`${field}.state`, `"${iface.state}" is not supported; use up or absent`);
    const bindings = (['bridge', 'masquerade', 'slirp', 'passt', 'binding'] as const).filter((b) => iface[b] !== undefined);
    if (bindings.length > 1) throw new DomainSpecError(field, `only one binding may be set (got ${bindings.join(', ')})`);
    const binding = bindings[0] ?? 'bridge';
    const id = `net${i}`;
    if (binding === 'bridge') {
      throw new DomainSpecError(`${field}.bridge`, 'the bridge binding needs a tap device set up by the privileged node handler, which this launcher does not have; use masquerade or passt (see docs/adr/0004-launcher-networking.md)');
    }
    if (binding === 'binding') throw new DomainSpecError(`${field}.binding`, `network binding plugin "${iface.binding?.name}" is not supported; use masquerade or passt`);
    if (binding === 'passt') {
      args.push('-netdev', JSON.stringify({ type: 'stream', id, server: false, addr: { type: 'unix', path: ctx.sockets.passt(iface.name) } }));
    } else {
      // masquerade and slirp: QEMU's user-mode network stack (slirp) NATs the guest behind the pod
      // IP without NET_ADMIN. Addresses as KubeVirt's masquerade: gateway .1, guest .2.
      const hostfwd = ports.map((p) => ({ str: `${p.protocol.toLowerCase()}::${p.port}-:${p.port}` }));
      const netdev: Record<string, unknown> = { type: 'user', id, net: '10.0.2.0/24', host: '10.0.2.1', dhcpstart: '10.0.2.2', ipv6: false };
      if (hostfwd.length) netdev['hostfwd'] = hostfwd;
      args.push('-netdev', JSON.stringify(netdev));
    }
    const model = iface.model ?? 'virtio';
    const qemuModel = NIC_MODELS[model];
    if (!qemuModel) throw new DomainSpecError(`${field}.model`, `"${model}" is not supported; use one of ${Object.keys(NIC_MODELS).join(', ')}`);
    const device: Record<string, unknown> = { driver: qemuModel, netdev: id, id: `ua-${iface.name}` };
    if (iface.macAddress !== undefined) {
      if (!/^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/.test(iface.macAddress)) throw new DomainSpecError(`${field}.macAddress`, `${JSON.stringify(iface.macAddress)} is not a MAC address`);
      device['mac'] = iface.macAddress.replaceAll('-', ':').toLowerCase();
    }
    // A NIC option ROM is only needed to network-boot; without one QEMU needs no ROM file.
    if (iface.bootOrder !== undefined) device['bootindex'] = positiveInt(iface.bootOrder, `${field}.bootOrder`);
    else device['romfile'] = '';
    args.push('-device', JSON.stringify(device));
  });
  return args;
}

/** The complete QEMU command line (without the binary) for the VMI. */
export function qemuArgs(vmi: LauncherVmi, ctx: QemuContext): string[] {
  const devices = vmi.spec.domain.devices;
  const ns = vmi.metadata.namespace ?? 'default';
  if (devices.hostDevices?.length) throw new DomainSpecError('spec.domain.devices.hostDevices', 'host device passthrough is not supported by this launcher');
  if (devices.gpus?.length) throw new DomainSpecError('spec.domain.devices.gpus', 'GPU passthrough is not supported by this launcher');
  const memory = memoryArgs(vmi);
  const args: string[] = [
    '-name', `guest=${qemuOptionValue(`${noNul(ns, 'metadata.namespace')}_${noNul(vmi.metadata.name, 'metadata.name')}`)},debug-threads=on`,
    '-no-user-config',
    '-nodefaults',
    '-display', 'none',
    '-msg', 'timestamp=on',
    ...machineArgs(vmi, ctx, memory.hugepages),
    // TCG's translated-code cache defaults to 1 GiB and fills up over time; 64 MiB is ample
    // for the small emulated guests TCG is meant for here and caps the launcher's overhead.
    '-accel', ctx.accel === 'tcg' ? `tcg,tb-size=${ctx.tcgTranslationCacheMiB ?? 64}` : 'kvm',
    ...cpuArgs(vmi, ctx),
    ...memory.args,
    ...firmwareArgs(vmi, ctx),
    ...clockArgs(vmi, ctx),
    // Guests must not suspend to RAM/disk: the pod cannot resume them (KubeVirt does the same).
    '-global', 'ICH9-LPC.disable_s3=1',
    '-global', 'ICH9-LPC.disable_s4=1',
    '-chardev', `socket,id=qmp,path=${qemuOptionValue(ctx.sockets.qmp)},server=on,wait=off`,
    '-mon', 'chardev=qmp,mode=control',
  ];
  if (vmi.spec.domain.firmware?.bootloader?.efi && ctx.ovmf) {
    args.push('-global', 'driver=cfi.pflash01,property=secure,value=off');
    const m = args.indexOf('-machine');
    args[m + 1] += ',pflash0=ovmf-code,pflash1=ovmf-vars';
  }
  if (vmi.spec.startStrategy !== undefined) {
    if (vmi.spec.startStrategy !== 'Paused') throw new DomainSpecError('spec.startStrategy', `"${vmi.spec.startStrategy}" is not supported; use Paused`);
    // Start with the vCPUs stopped; "unpause" (QMP cont) lets the guest run.
    args.push('-S');
  }
  if ((devices.disks ?? []).some((d) => d.bootOrder !== undefined) || (devices.interfaces ?? []).some((i) => i.bootOrder !== undefined)) {
    args.push('-boot', 'strict=on');
  }
  args.push(...diskArgs(vmi, ctx));
  args.push(...interfaceArgs(vmi, ctx));
  if (devices.autoattachSerialConsole !== false) {
    // The log file keeps the console's output whether or not a client is attached.
    args.push(
      '-chardev', `socket,id=serial0,path=${qemuOptionValue(ctx.sockets.serial)},server=on,wait=off,logfile=${qemuOptionValue(ctx.sockets.serialLog)},logappend=on`,
      '-device', 'isa-serial,chardev=serial0,id=serial-port0',
    );
  }
  if (devices.autoattachGraphicsDevice !== false) {
    args.push('-device', 'VGA,id=video0,vgamem_mb=16', '-vnc', `vnc=unix:${qemuOptionValue(ctx.sockets.vnc)}`);
  }
  if (devices.autoattachMemBalloon !== false) args.push('-device', 'virtio-balloon-pci,id=balloon0');
  if (devices.rng !== undefined) {
    args.push('-object', 'rng-random,id=rng0,filename=/dev/urandom', '-device', 'virtio-rng-pci,rng=rng0,id=rng-dev0');
  }
  if (devices.watchdog !== undefined) {
    const wd = devices.watchdog;
    if (!wd.i6300esb) throw new DomainSpecError('spec.domain.devices.watchdog', 'only the i6300esb watchdog is supported');
    const action = oneOf(wd.i6300esb.action, WATCHDOG_ACTIONS, 'reset', 'spec.domain.devices.watchdog.i6300esb.action');
    args.push('-device', `i6300esb,id=watchdog0`, '-action', `watchdog=${action}`);
  }
  // The qemu-guest-agent channel, always present (as KubeVirt): the agent is optional in the guest.
  args.push(
    '-device', 'virtio-serial-pci,id=virtio-serial0',
    '-chardev', `socket,id=qga0,path=${qemuOptionValue(ctx.sockets.guestAgent)},server=on,wait=off`,
    '-device', 'virtserialport,bus=virtio-serial0.0,chardev=qga0,name=org.qemu.guest_agent.0',
  );
  if (ctx.sandbox) {
    // QEMU's own seccomp filter: no spawning, no setuid, no obsolete syscalls, no scheduler or
    // affinity changes (nothing the launcher asks of QEMU needs them).
    args.push('-sandbox', 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny');
  }
  return args;
}
