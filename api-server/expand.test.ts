import { describe, expect, it } from '@jest/globals';
import { ExpansionError } from '../runtime/instancetype.js';
import { expandVirtualMachine } from './expand.js';
import type { VirtualMachine } from './types.js';

const specs: Record<string, unknown> = {
  'VirtualMachineClusterInstancetype/u1.small': { cpu: { guest: 2 }, memory: { guest: '2Gi' } },
  'VirtualMachineInstancetype/ns-small': { cpu: { guest: 1 }, memory: { guest: '512Mi' } },
  'VirtualMachineClusterPreference/virtio': { devices: { preferredDiskBus: 'virtio', preferredInterfaceModel: 'virtio' } },
};
const find = async (kind: string, _ns: string, name: string) => specs[`${kind}/${name}`];

function vm(spec: Partial<VirtualMachine['spec']>, domain: Record<string, unknown> = {}): VirtualMachine {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: 'vm1', namespace: 'ns' },
    spec: {
      runStrategy: 'Halted',
      template: { spec: { domain: { devices: { disks: [{ name: 'root', disk: {} }], interfaces: [{ name: 'default', masquerade: {} }] }, ...domain }, networks: [{ name: 'default', pod: {} }], volumes: [{ name: 'root', containerDisk: { image: 'x' } }] } },
      ...spec,
    },
  };
}

describe('expand-spec', () => {
  it('applies the instancetype and the preference and drops the references', async () => {
    const expanded = await expandVirtualMachine(vm({ instancetype: { name: 'u1.small' }, preference: { name: 'virtio' } }), 'ns', find);
    expect(expanded.spec.instancetype).toBeUndefined();
    expect(expanded.spec.preference).toBeUndefined();
    expect(expanded.spec.runStrategy).toBe('Halted');
    const domain = expanded.spec.template.spec.domain;
    expect(domain.cpu).toMatchObject({ sockets: 2, cores: 1, threads: 1 });
    expect(domain.memory?.guest).toBe('2Gi');
    expect(domain.devices.disks?.[0]?.disk?.bus).toBe('virtio');
    expect(domain.devices.interfaces?.[0]?.model).toBe('virtio');
  });

  it('reads a namespaced instancetype by its kind', async () => {
    const expanded = await expandVirtualMachine(vm({ instancetype: { kind: 'VirtualMachineInstancetype', name: 'ns-small' } }), 'ns', find);
    expect(expanded.spec.template.spec.domain.memory?.guest).toBe('512Mi');
  });

  it('returns a VM without references unchanged', async () => {
    const plain = vm({});
    expect(await expandVirtualMachine(plain, 'ns', find)).toBe(plain);
  });

  it('names a missing instancetype, and a template field the instancetype owns', async () => {
    await expect(expandVirtualMachine(vm({ instancetype: { name: 'nope' } }), 'ns', find)).rejects.toThrow('VirtualMachineClusterInstancetype "nope" not found');
    await expect(expandVirtualMachine(vm({ instancetype: { name: 'u1.small' } }, { memory: { guest: '1Gi' } }), 'ns', find)).rejects.toThrow(ExpansionError);
    await expect(expandVirtualMachine(vm({ instancetype: { name: 'u1.small' } }, { memory: { guest: '1Gi' } }), 'ns', find)).rejects.toThrow(/spec.template.spec.domain.memory.guest: conflicts with spec.memory.guest/);
  });
});
