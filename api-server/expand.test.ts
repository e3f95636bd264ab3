import { describe, expect, it } from '@jest/globals';
import { ExpansionError } from '../runtime/instancetype.js';
import { expandVirtualMachine } from './expand.js';
import type { VirtualMachine } from './types.js';

const specs: Record<string, unknown> = {
  'VirtualMachineClusterInstancetype/u1.small': { cpu: { guest: 2 }, memory: { guest: '2Gi' } },
  'VirtualMachineInstancetype/ns-small': { cpu: { guest: 1 }, memory: { guest: '512Mi' } },
  'VirtualMachineClusterPreference/virtio': { devices: { preferredDiskBus: 'virtio', preferredInterfaceModel: 'virtio' } },
};
// The VM's snapshots: as the controller stores them (data.spec), in the VM's namespace.
const revisions: Record<string, unknown> = {
  'ns/vm1-u1.small-abc': { cpu: { guest: 4 }, memory: { guest: '8Gi' } },
  'ns/vm1-virtio-def': { devices: { preferredDiskBus: 'sata' } },
};
const find = {
  object: async (kind: string, _ns: string, name: string) => specs[`${kind}/${name}`],
  revision: async (ns: string, name: string) => revisions[`${ns}/${name}`],
};

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

  it('expands with the snapshot the controller recorded for the same matcher, not the current object', async () => {
    const recorded = vm({ instancetype: { name: 'u1.small' }, preference: { name: 'virtio' } });
    recorded.status = {
      instancetypeRef: { name: 'u1.small', kind: 'VirtualMachineClusterInstancetype', controllerRevisionRef: { name: 'vm1-u1.small-abc' } },
      preferenceRef: { name: 'virtio', kind: 'VirtualMachineClusterPreference', controllerRevisionRef: { name: 'vm1-virtio-def' } },
    };
    const domain = (await expandVirtualMachine(recorded, 'ns', find)).spec.template.spec.domain;
    expect(domain.cpu).toMatchObject({ sockets: 4 });
    expect(domain.memory?.guest).toBe('8Gi');
    expect(domain.devices.disks?.[0]?.disk?.bus).toBe('sata');
  });

  it('spec.instancetype.revisionName wins, and must exist', async () => {
    const pinned = vm({ instancetype: { name: 'u1.small', revisionName: 'vm1-u1.small-abc' } });
    expect((await expandVirtualMachine(pinned, 'ns', find)).spec.template.spec.domain.memory?.guest).toBe('8Gi');
    const missing = vm({ instancetype: { name: 'u1.small', revisionName: 'gone' } });
    await expect(expandVirtualMachine(missing, 'ns', find)).rejects.toThrow('spec.instancetype.revisionName: ControllerRevision ns/gone not found');
  });

  it('a snapshot recorded for another matcher, or one deleted since, gives way to the current object', async () => {
    const changed = vm({ instancetype: { name: 'u1.small' } });
    changed.status = { instancetypeRef: { name: 'u1.tiny', kind: 'VirtualMachineClusterInstancetype', controllerRevisionRef: { name: 'vm1-u1.small-abc' } } };
    expect((await expandVirtualMachine(changed, 'ns', find)).spec.template.spec.domain.memory?.guest).toBe('2Gi');
    const deleted = vm({ instancetype: { name: 'u1.small' } });
    deleted.status = { instancetypeRef: { name: 'u1.small', kind: 'VirtualMachineClusterInstancetype', controllerRevisionRef: { name: 'vm1-u1.small-gone' } } };
    expect((await expandVirtualMachine(deleted, 'ns', find)).spec.template.spec.domain.memory?.guest).toBe('2Gi');
  });
});
