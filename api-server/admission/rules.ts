// The rules of a VM's spec that a schema cannot say, checked by the validating webhook after the
// zod schema (KubeVirt's admitters check the same: virt-api webhooks/validating-webhook/admitters).
// Each finding names its field path and what would be accepted. Pure: what the rules need from the
// cluster (the KubeVirt CR's permitted devices) comes in as arguments.
import type { PermittedHostDevices, VirtualMachineInstanceSpec } from '../../runtime/api/index.js';
import { formatBytes, parseQuantity } from '../../runtime/quantity.js';

export interface Findings {
  /** Denials: `path: what is wrong; what would be accepted`. */
  denials: string[];
  /** Admission warnings: legal but risky choices (kubectl prints them). */
  warnings: string[];
}

export const emptyFindings = (): Findings => ({ denials: [], warnings: [] });

const list = (names: readonly string[]): string => (names.length === 0 ? 'none' : names.map((n) => JSON.stringify(n)).join(', '));

/** A containerDisk image pinned by digest, not by a tag that can move. */
export function isPinnedByDigest(image: string): boolean {
  return /@sha256:[0-9a-f]{64}$/.test(image);
}

/** What can carry host devices: a VMI's domain.devices, an instancetype's spec. */
export interface DeviceHolder {
  hostDevices?: ReadonlyArray<{ deviceName?: string | undefined }> | undefined;
  gpus?: ReadonlyArray<{ deviceName?: string | undefined }> | undefined;
}

/** Host devices and GPUs only from the KubeVirt CR's permitted list; `at` is where the holder sits. */
export function checkPermittedDevices(holder: DeviceHolder, at: string, permitted: PermittedHostDevices | undefined, findings: Findings): void {
  const allowed = [...(permitted?.pciHostDevices ?? []), ...(permitted?.mediatedDevices ?? [])].map((d) => d.resourceName);
  for (const field of ['hostDevices', 'gpus'] as const) {
    (holder[field] ?? []).forEach((device, i) => {
      const path = `${at}.${field}[${i}].deviceName`;
      if (!device.deviceName) findings.denials.push(`${path}: required: the resource name of a permitted host device (permitted: ${list(allowed)})`);
      else if (!allowed.includes(device.deviceName)) {
        findings.denials.push(
          `${path}: ${JSON.stringify(device.deviceName)} is not permitted; permitted: ${list(allowed)} (the KubeVirt CR's spec.configuration.permittedHostDevices)`,
        );
      }
    });
  }
}

/**
 * The rules of a VMI spec; `at` is where the spec sits (`spec` in a VMI, `spec.template.spec` in a
 * VM). `permitted` is the KubeVirt CR's spec.configuration.permittedHostDevices (undefined: none).
 */
export function checkVmiSpec(spec: VirtualMachineInstanceSpec, at: string, permitted: PermittedHostDevices | undefined, findings: Findings): void {
  const devices = spec.domain.devices;
  const disks = devices.disks ?? [];
  const volumes = spec.volumes ?? [];
  const volumeNames = volumes.map((v) => v.name);

  // Each disk is backed by the volume of its name; one volume backs one disk.
  const usedBy = new Map<string, number>();
  disks.forEach((disk, i) => {
    const path = `${at}.domain.devices.disks[${i}].name`;
    if (!volumeNames.includes(disk.name)) {
      findings.denials.push(`${path}: disk ${JSON.stringify(disk.name)} has no volume of that name; add it to ${at}.volumes (volumes: ${list(volumeNames)})`);
    }
    const earlier = usedBy.get(disk.name);
    if (earlier !== undefined) findings.denials.push(`${path}: volume ${JSON.stringify(disk.name)} is already used by disk ${earlier}; a volume backs one disk`);
    else usedBy.set(disk.name, i);
  });

  // Boot orders are unique across disks and interfaces.
  const bootOrders = new Map<number, string>();
  const claimBootOrder = (order: number | undefined, path: string): void => {
    if (order === undefined) return;
    const holder = bootOrders.get(order);
    if (holder) findings.denials.push(`${path}: boot order ${order} is already used by ${holder}; each disk and interface needs its own`);
    else bootOrders.set(order, path);
  };
  disks.forEach((disk, i) => claimBootOrder(disk.bootOrder, `${at}.domain.devices.disks[${i}].bootOrder`));
  (devices.interfaces ?? []).forEach((iface, i) => claimBootOrder(iface.bootOrder, `${at}.domain.devices.interfaces[${i}].bootOrder`));

  // Each interface connects to the network of its name, and each network has an interface.
  const networks = (spec.networks ?? []).map((n) => n.name);
  const interfaces = (devices.interfaces ?? []).map((n) => n.name);
  interfaces.forEach((name, i) => {
    if (!networks.includes(name)) {
      findings.denials.push(`${at}.domain.devices.interfaces[${i}].name: interface ${JSON.stringify(name)} has no network of that name; add it to ${at}.networks (networks: ${list(networks)})`);
    }
  });
  networks.forEach((name, i) => {
    if (!interfaces.includes(name)) {
      findings.denials.push(`${at}.networks[${i}].name: network ${JSON.stringify(name)} has no interface of that name; add it to ${at}.domain.devices.interfaces (interfaces: ${list(interfaces)})`);
    }
  });

  checkPermittedDevices(devices, `${at}.domain.devices`, permitted, findings);

  // Legal but risky: warnings.
  disks.forEach((disk, i) => {
    if (disk.shareable) findings.warnings.push(`${at}.domain.devices.disks[${i}].shareable: a shareable disk is written by several VMs at once; the guests must coordinate (a cluster filesystem) or its data is corrupted`);
    if (disk.errorPolicy === 'ignore') findings.warnings.push(`${at}.domain.devices.disks[${i}].errorPolicy: "ignore" hides I/O errors from the guest, which may then lose data silently; "stop" (the default) pauses the VM instead`);
  });
  volumes.forEach((volume, i) => {
    const image = volume.containerDisk?.image;
    if (image && !isPinnedByDigest(image)) {
      findings.warnings.push(`${at}.volumes[${i}].containerDisk.image: ${JSON.stringify(image)} is referenced by tag; the disk changes if the tag moves; pin it by digest (image@sha256:...)`);
    }
  });
  if (spec.domain.resources?.overcommitGuestOverhead) {
    findings.warnings.push(`${at}.domain.resources.overcommitGuestOverhead: the launcher's memory overhead is not requested from the node; under memory pressure the VM is among the first killed`);
  }
}

/** KubeVirt's default developerConfiguration.memoryOvercommit: the guest gets what the pod requests. */
export const DEFAULT_MEMORY_OVERCOMMIT_PERCENT = 100;

/** Whether a spec states both its guest memory and its pod's memory request (only then can it overcommit more than configured). */
export function declaresMemoryOvercommit(spec: VirtualMachineInstanceSpec): boolean {
  return spec.domain.memory?.guest !== undefined && spec.domain.resources?.requests?.['memory'] !== undefined;
}

/**
 * Guest memory beyond the pod's memory request is memory the node never reserved: allowed up to
 * the KubeVirt CR's developerConfiguration.memoryOvercommit percent (100, none, when unset or
 * lower). A spec without both values cannot exceed it: the controller derives the missing one.
 */
export function checkMemoryOvercommit(spec: VirtualMachineInstanceSpec, at: string, overcommitPercent: number | undefined, findings: Findings): void {
  if (!declaresMemoryOvercommit(spec)) return;
  const guestText = spec.domain.memory?.guest ?? '';
  const requestText = spec.domain.resources?.requests?.['memory'] ?? '';
  const allowed = Math.max(DEFAULT_MEMORY_OVERCOMMIT_PERCENT, overcommitPercent ?? DEFAULT_MEMORY_OVERCOMMIT_PERCENT);
  const guest = parseQuantity(guestText);
  const request = parseQuantity(requestText);
  if (guest * 100n <= request * BigInt(allowed)) return;
  const ratio = request === 0n ? 'unbounded' : `${(guest * 100n + request - 1n) / request}%`;
  findings.denials.push(
    `${at}.domain.memory.guest: ${guestText} is ${ratio} of the memory request ${requestText} (${at}.domain.resources.requests.memory); ` +
      `the KubeVirt CR's spec.configuration.developerConfiguration.memoryOvercommit allows at most ${allowed}%, so at most ${formatBytes((request * BigInt(allowed)) / 100n)}; ` +
      `raise the request or lower the guest memory`,
  );
}

