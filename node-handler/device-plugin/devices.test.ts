import { describe, expect, it } from '@jest/globals';
import {
  UnknownDeviceUnitError,
  allocateDevice,
  deviceUnits,
  isDevicePresent,
  kubevirtHostDevices,
  preferredAllocation,
} from './devices.js';
import type { HostDevice } from './devices.js';

const kvm = kubevirtHostDevices.find((device) => device.resourceName === 'devices.kubevirt.io/kvm') as HostDevice;

describe('the advertised devices', () => {
  it('are KubeVirt resource names for kvm, tun and vhost-net', () => {
    expect(kubevirtHostDevices.map((device) => [device.resourceName, device.devicePath])).toEqual([
      ['devices.kubevirt.io/kvm', '/dev/kvm'],
      ['devices.kubevirt.io/tun', '/dev/net/tun'],
      ['devices.kubevirt.io/vhost-net', '/dev/vhost-net'],
    ]);
  });

  it('offer 1000 shareable units with distinct ids of at most 63 characters', () => {
    const units = deviceUnits(kvm, 'Healthy');
    expect(units).toHaveLength(1000);
    expect(new Set(units.map((unit) => unit.ID)).size).toBe(1000);
    expect(units[0]).toEqual({ ID: 'kvm0', health: 'Healthy' });
    expect(units.every((unit) => unit.ID.length <= 63)).toBe(true);
    expect(deviceUnits(kvm, 'Unhealthy', 3).map((unit) => unit.health)).toEqual(['Unhealthy', 'Unhealthy', 'Unhealthy']);
  });
});

describe('allocateDevice', () => {
  it('gives each container the device node read-write, once however many units it asked for', () => {
    const response = allocateDevice(kvm, { container_requests: [{ devices_ids: ['kvm3', 'kvm7'] }, { devices_ids: ['kvm1'] }] });
    expect(response.container_responses).toHaveLength(2);
    for (const container of response.container_responses) {
      expect(container.devices).toEqual([{ container_path: '/dev/kvm', host_path: '/dev/kvm', permissions: 'rw' }]);
      expect(container.mounts).toEqual([]);
      expect(container.envs).toEqual({});
    }
  });

  it('refuses a unit it never advertised', () => {
    expect(() => allocateDevice(kvm, { container_requests: [{ devices_ids: ['kvm1000'] }] })).toThrow(UnknownDeviceUnitError);
    expect(() => allocateDevice(kvm, { container_requests: [{ devices_ids: ['tun0'] }] })).toThrow(/"tun0" is not one of devices.kubevirt.io\/kvm/);
  });
});

describe('preferredAllocation', () => {
  it('puts the required units first and fills up from the available ones', () => {
    const response = preferredAllocation({
      container_requests: [{ available_deviceIDs: ['kvm0', 'kvm1', 'kvm2', 'kvm3'], must_include_deviceIDs: ['kvm2'], allocation_size: 3 }],
    });
    expect(response.container_responses).toEqual([{ deviceIDs: ['kvm2', 'kvm0', 'kvm1'] }]);
  });

  it('never returns more than asked unless the required units alone exceed it', () => {
    const response = preferredAllocation({
      container_requests: [
        { available_deviceIDs: ['kvm0', 'kvm1'], must_include_deviceIDs: [], allocation_size: 1 },
        { available_deviceIDs: ['kvm0'], must_include_deviceIDs: ['kvm4', 'kvm5'], allocation_size: 1 },
      ],
    });
    expect(response.container_responses).toEqual([{ deviceIDs: ['kvm0'] }, { deviceIDs: ['kvm4', 'kvm5'] }]);
  });
});

describe('isDevicePresent', () => {
  it('is true only for an existing character device', async () => {
    expect(await isDevicePresent({ resourceName: 'x/null', devicePath: '/dev/null', endpoint: 'x.sock' })).toBe(true);
    expect(await isDevicePresent({ resourceName: 'x/none', devicePath: '/dev/kubevm-no-such-device', endpoint: 'x.sock' })).toBe(false);
    // A directory is not a device.
    expect(await isDevicePresent({ resourceName: 'x/dir', devicePath: '/dev', endpoint: 'x.sock' })).toBe(false);
  });
});
