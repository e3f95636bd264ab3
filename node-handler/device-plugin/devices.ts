// What the device plugin advertises and hands out: pure functions over the kubelet's
// device-plugin v1beta1 messages, so the allocation rules are tested without a kubelet.
import { stat } from 'node:fs/promises';
import path from 'node:path';

/** A host device kubevm exposes to unprivileged launcher pods as an extended resource. */
export interface HostDevice {
  /** The extended resource name, as KubeVirt's virt-handler names it. */
  readonly resourceName: string;
  /** Path of the character device on the host and, identically, in the container. */
  readonly devicePath: string;
  /** The plugin's socket file name in the kubelet's device-plugins directory. */
  readonly endpoint: string;
}

/** The devices KubeVirt's virt-handler advertises for every node (its "permanent" plugins). */
export const kubevirtHostDevices: readonly HostDevice[] = [
  { resourceName: 'devices.kubevirt.io/kvm', devicePath: '/dev/kvm', endpoint: 'kubevirt-kvm.sock' },
  { resourceName: 'devices.kubevirt.io/tun', devicePath: '/dev/net/tun', endpoint: 'kubevirt-tun.sock' },
  { resourceName: 'devices.kubevirt.io/vhost-net', devicePath: '/dev/vhost-net', endpoint: 'kubevirt-vhost-net.sock' },
];

/**
 * How many units of each device a node offers. The devices are shared (every VM opens the same
 * /dev/kvm), so the count is only a ceiling on VMs per node; KubeVirt uses 1000 as well.
 */
export const defaultDeviceUnits = 1000;

export type DeviceHealth = 'Healthy' | 'Unhealthy';

export interface PluginDevice {
  ID: string;
  health: DeviceHealth;
}

export interface DeviceSpec {
  container_path: string;
  host_path: string;
  permissions: string;
}

export interface ContainerAllocateResponse {
  envs: Record<string, string>;
  mounts: never[];
  devices: DeviceSpec[];
  annotations: Record<string, string>;
}

export interface AllocateRequest {
  container_requests: { devices_ids: string[] }[];
}

export interface PreferredAllocationRequest {
  container_requests: {
    available_deviceIDs: string[];
    must_include_deviceIDs: string[];
    allocation_size: number;
  }[];
}

/** The short device name used in unit IDs: "kvm" for devices.kubevirt.io/kvm. */
export function deviceShortName(device: HostDevice): string {
  const slash = device.resourceName.lastIndexOf('/');
  return device.resourceName.slice(slash + 1);
}

/** The units a plugin lists: `<name><i>`, all with the device's current health. */
export function deviceUnits(device: HostDevice, health: DeviceHealth, units = defaultDeviceUnits): PluginDevice[] {
  const name = deviceShortName(device);
  return Array.from({ length: units }, (_, i) => ({ ID: `${name}${i}`, health }));
}

export class UnknownDeviceUnitError extends Error {
  constructor(
    readonly resourceName: string,
    readonly unitId: string,
  ) {
    super(`device unit "${unitId}" is not one of ${resourceName}'s units`);
    this.name = 'UnknownDeviceUnitError';
  }
}

/**
 * The answer to Allocate: every container that asked for any number of units gets the one device
 * node, read-write. The kubelet adds it to the container's device cgroup, which is what lets an
 * unprivileged launcher open /dev/kvm.
 */
export function allocateDevice(device: HostDevice, request: AllocateRequest, units = defaultDeviceUnits): { container_responses: ContainerAllocateResponse[] } {
  const known = new Set(deviceUnits(device, 'Healthy', units).map((unit) => unit.ID));
  return {
    container_responses: request.container_requests.map((container) => {
      for (const id of container.devices_ids) {
        if (!known.has(id)) throw new UnknownDeviceUnitError(device.resourceName, id);
      }
      return {
        envs: {},
        mounts: [],
        devices: [{ container_path: device.devicePath, host_path: device.devicePath, permissions: 'rw' }],
        annotations: {},
      };
    }),
  };
}

/**
 * The answer to GetPreferredAllocation: the required units first, then available ones in the
 * order offered. Any units are equivalent (one shared device), so the only aim is a valid answer.
 */
export function preferredAllocation(request: PreferredAllocationRequest): { container_responses: { deviceIDs: string[] }[] } {
  return {
    container_responses: request.container_requests.map((container) => {
      const chosen = [...new Set(container.must_include_deviceIDs)];
      for (const id of container.available_deviceIDs) {
        if (chosen.length >= container.allocation_size) break;
        if (!chosen.includes(id)) chosen.push(id);
      }
      return { deviceIDs: chosen.slice(0, Math.max(container.allocation_size, container.must_include_deviceIDs.length)) };
    }),
  };
}

/** Whether the device node exists as a character device under `devRoot` ("/" on the host). */
export async function isDevicePresent(device: HostDevice, devRoot = '/'): Promise<boolean> {
  try {
    const info = await stat(path.join(devRoot, device.devicePath));
    return info.isCharacterDevice();
  } catch {
    return false;
  }
}
