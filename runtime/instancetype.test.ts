import type { VirtualMachineInstanceSpec, VirtualMachineInstancetypeSpec as InstancetypeSpec, VirtualMachinePreferenceSpec as PreferenceSpec } from './api/index.js';
import { ExpansionError, expandTemplate, instancetypeKindOf, preferenceKindOf } from './instancetype.js';

const template = (): VirtualMachineInstanceSpec => ({
  domain: {
    devices: {
      disks: [{ name: 'root', disk: {} }, { name: 'iso', cdrom: {} }, { name: 'data', disk: { bus: 'sata' } }],
      interfaces: [{ name: 'default', masquerade: {} }],
    },
  },
  networks: [{ name: 'default', pod: {} }],
  volumes: [{ name: 'root', containerDisk: { image: 'example/disk' } }],
});

const u1medium = { kind: 'VirtualMachineClusterInstancetype', name: 'u1.medium', spec: { cpu: { guest: 4 }, memory: { guest: '4Gi' } } satisfies InstancetypeSpec };
const fedora = {
  kind: 'VirtualMachineClusterPreference',
  name: 'fedora',
  spec: {
    cpu: { preferredCPUTopology: 'preferCores' },
    devices: { preferredDiskBus: 'virtio', preferredCdromBus: 'sata', preferredInterfaceModel: 'virtio', preferredRng: {} },
    firmware: { preferredUseEfi: true, preferredUseSecureBoot: false },
    machine: { preferredMachineType: 'q35' },
    preferredTerminationGracePeriodSeconds: 180,
    annotations: { 'example.org/os': 'fedora' },
  } satisfies PreferenceSpec,
};

describe('instancetype expansion', () => {
  test('the instancetype provides CPU and memory; sockets by default', () => {
    const { spec } = expandTemplate(template(), undefined, u1medium, undefined);
    expect(spec.domain.cpu).toEqual({ sockets: 4, cores: 1, threads: 1 });
    expect(spec.domain.memory).toEqual({ guest: '4Gi' });
  });

  test('the preference picks the topology and fills only what the VM left unset', () => {
    const { spec, annotations } = expandTemplate(template(), { annotations: {} }, u1medium, fedora);
    expect(spec.domain.cpu).toEqual({ sockets: 1, cores: 4, threads: 1 });
    expect(spec.domain.devices.disks).toEqual([
      { name: 'root', disk: { bus: 'virtio' } },
      { name: 'iso', cdrom: { bus: 'sata' } },
      { name: 'data', disk: { bus: 'sata' } }, // the VM's own choice stays
    ]);
    expect(spec.domain.devices.interfaces?.[0]?.model).toBe('virtio');
    expect(spec.domain.devices.rng).toEqual({});
    expect(spec.domain.machine).toEqual({ type: 'q35' });
    expect(spec.domain.firmware).toEqual({ bootloader: { efi: { secureBoot: false } } });
    expect(spec.terminationGracePeriodSeconds).toBe(180);
    expect(annotations).toEqual({ 'example.org/os': 'fedora' });
  });

  test('the template given is not modified', () => {
    const original = template();
    const copy = structuredClone(original);
    expandTemplate(original, undefined, u1medium, fedora);
    expect(original).toEqual(copy);
  });

  test('every conflict is named by its path, all at once', () => {
    const vm = template();
    vm.domain.cpu = { sockets: 2, model: 'host-passthrough' };
    vm.domain.memory = { guest: '1Gi' };
    vm.domain.resources = { requests: { memory: '1Gi' } };
    let error: unknown;
    try {
      expandTemplate(vm, undefined, u1medium, undefined);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ExpansionError);
    const conflicts = (error as ExpansionError).conflicts.map((c) => c.path);
    expect(conflicts).toEqual([
      'spec.template.spec.domain.cpu.sockets',
      'spec.template.spec.domain.cpu.model',
      'spec.template.spec.domain.memory.guest',
      'spec.template.spec.domain.resources.requests.memory',
    ]);
    expect((error as Error).message).toContain('conflicts with spec.cpu of VirtualMachineClusterInstancetype u1.medium');
  });

  test('a preference alone never conflicts', () => {
    const vm = template();
    vm.domain.cpu = { cores: 2 };
    const { spec } = expandTemplate(vm, undefined, undefined, fedora);
    expect(spec.domain.cpu).toEqual({ cores: 2 });
  });

  test('kinds: cluster-scoped by default, namespaced on request, plural and lowercase accepted', () => {
    expect(instancetypeKindOf({ name: 'x' })).toBe('VirtualMachineClusterInstancetype');
    expect(instancetypeKindOf({ name: 'x', kind: 'virtualmachineinstancetype' })).toBe('VirtualMachineInstancetype');
    expect(preferenceKindOf({ name: 'x' })).toBe('VirtualMachineClusterPreference');
    expect(preferenceKindOf({ name: 'x', kind: 'VirtualMachinePreference' })).toBe('VirtualMachinePreference');
    expect(() => instancetypeKindOf({ name: 'x', kind: 'Flavor' })).toThrow(/unknown instancetype kind "Flavor"/);
  });
});
