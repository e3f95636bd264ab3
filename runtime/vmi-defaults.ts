// The defaults kubevm gives a VMI spec, in one place: the api-server's mutating webhook writes them
// into every VMI created (ADR 0009), the controller into the VMIs it renders from a VM, and the
// launcher falls back to the same values for a VMI that reached it without them. They go into the
// VMI only, never into a VirtualMachine's spec, so GitOps tools see no drift.
import { createHash } from 'node:crypto';
import type { Disk, Interface, Network, VirtualMachineInstanceSpec } from './api/index.js';
import { parseQuantity } from './quantity.js';

export const DEFAULT_MACHINE_TYPE = 'q35';
/** KubeVirt's default bus for a disk; a cdrom cannot be virtio, so it gets sata (q35's AHCI). */
export const DEFAULT_DISK_BUS = 'virtio';
export const DEFAULT_CDROM_BUS = 'sata';
export const DEFAULT_NETWORK_NAME = 'default';

/** KubeVirt's stable firmware UUID: a name-based (v5, SHA-1) UUID of the VM name in KubeVirt's namespace. */
export function firmwareUUID(name: string): string {
  const namespace = Buffer.from('6a1a24a1406146078bf4a3963d0c5895', 'hex');
  const bytes = createHash('sha1').update(namespace).update(name).digest().subarray(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x50;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The part of a spec the pod-interface default reads (structural, so the launcher's wider type fits). */
interface InterfaceSource {
  domain: { devices: { interfaces?: readonly unknown[] | undefined; autoattachPodInterface?: boolean | undefined } };
  networks?: readonly { name: string; pod?: object | undefined }[] | undefined;
}

/**
 * KubeVirt's default interface: with none given and autoattachPodInterface not false, one
 * masquerade interface on the pod network (named "default" when the spec names no networks at all).
 * Undefined when the spec's own interfaces (or none) apply.
 */
export function defaultPodInterface(spec: InterfaceSource): { name: string; masquerade: Record<string, never> } | undefined {
  const devices = spec.domain.devices;
  if ((devices.interfaces?.length ?? 0) > 0 || devices.autoattachPodInterface === false) return undefined;
  if (spec.networks === undefined) return { name: DEFAULT_NETWORK_NAME, masquerade: {} };
  const pod = spec.networks.find((n) => n.pod);
  return pod ? { name: pod.name, masquerade: {} } : undefined;
}

function defaultedDisk(disk: Disk): Disk {
  if (disk.cdrom) return disk.cdrom.bus ? disk : { ...disk, cdrom: { ...disk.cdrom, bus: DEFAULT_CDROM_BUS } };
  if (disk.lun) return disk;
  return disk.disk?.bus ? disk : { ...disk, disk: { ...disk.disk, bus: DEFAULT_DISK_BUS } };
}

/**
 * The spec with kubevm's defaults filled in where it leaves them unset: machine type, each disk's
 * bus (a disk naming no kind becomes a virtio disk), the default pod network and interface, and the
 * firmware UUID derived from the VMI's name (the VM's, for a VM's VMI, so it survives restarts; none
 * while the name is not known yet, as for a generateName). Values the spec sets are kept. Returns a
 * new spec.
 */
export function applyVMIDefaults(spec: VirtualMachineInstanceSpec, vmiName: string | undefined): VirtualMachineInstanceSpec {
  const domain = spec.domain;
  const devices = domain.devices;
  const podInterface = defaultPodInterface(spec);
  const interfaces: Interface[] | undefined = podInterface ? [podInterface] : devices.interfaces;
  const networks: Network[] | undefined = podInterface && spec.networks === undefined ? [{ name: DEFAULT_NETWORK_NAME, pod: {} }] : spec.networks;
  return {
    ...spec,
    domain: {
      ...domain,
      machine: { ...domain.machine, type: domain.machine?.type || DEFAULT_MACHINE_TYPE },
      ...(vmiName && !domain.firmware?.uuid ? { firmware: { ...domain.firmware, uuid: firmwareUUID(vmiName) } } : {}),
      devices: {
        ...devices,
        ...(devices.disks ? { disks: devices.disks.map(defaultedDisk) } : {}),
        ...(interfaces ? { interfaces } : {}),
      },
    },
    ...(networks ? { networks } : {}),
  };
}

/** Guest memory in bytes: memory.guest, else the memory request; undefined when neither is set. */
export function guestMemoryBytes(vmi: { spec: Pick<VirtualMachineInstanceSpec, 'domain'> }): bigint | undefined {
  const domain = vmi.spec.domain;
  const value = domain.memory?.guest ?? domain.resources?.requests?.['memory'];
  return value === undefined ? undefined : parseQuantity(value);
}
