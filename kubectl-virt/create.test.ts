import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import YAML from 'yaml';
import { VirtualMachineSchema } from '../runtime/api/index.js';
import type { CreateVmFlags } from './create.js';
import { createInstancetype, createPreference, createVm, parseVolumeParams, toYaml } from './create.js';

const base: CreateVmFlags = { runStrategy: 'Always', terminationGracePeriod: 180, volumeContainerdisk: [], volumePvc: [] };

describe('create vm', () => {
  it('prints a VM kubevm accepts, with virtctl\'s defaults and volume names', () => {
    const vm = createVm({ ...base, name: 'web', memory: '256Mi', volumeContainerdisk: ['src:quay.io/containerdisks/fedora:41'], volumePvc: ['src:data,bootorder:2'] });
    expect(VirtualMachineSchema.safeParse(YAML.parse(toYaml(vm))).success).toBe(true);
    expect(vm.metadata?.name).toBe('web');
    expect(vm.spec.runStrategy).toBe('Always');
    const spec = vm.spec.template.spec;
    expect(spec.terminationGracePeriodSeconds).toBe(180);
    expect(spec.domain.memory?.guest).toBe('256Mi');
    expect(spec.volumes).toEqual([
      { name: 'web-containerdisk-0', containerDisk: { image: 'quay.io/containerdisks/fedora:41' } },
      { name: 'data', persistentVolumeClaim: { claimName: 'data' } },
    ]);
    expect(spec.domain.devices.disks?.map((d) => [d.name, d.bootOrder])).toEqual([['web-containerdisk-0', undefined], ['data', 2]]);
  });

  it('gives a random vm- name when none is given', () => {
    expect(createVm(base).metadata?.name).toMatch(/^vm-[a-z0-9]{5}$/);
  });

  it('takes instancetype and preference with an optional kind prefix', () => {
    const vm = createVm({ ...base, instancetype: 'virtualmachineinstancetype/small', preference: 'fedora' });
    expect(vm.spec.instancetype).toEqual({ kind: 'VirtualMachineInstancetype', name: 'small' });
    expect(vm.spec.preference).toEqual({ name: 'fedora' });
    expect(() => createVm({ ...base, instancetype: 'flavor/small' })).toThrow('--instancetype: unknown kind "flavor"');
  });

  it('puts cloud-init user data inline from a file, or base64 from the flag', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kubectl-virt-'));
    const file = join(dir, 'user-data');
    writeFileSync(file, '#cloud-config\nssh_pwauth: true\n');
    const fromFile = createVm({ ...base, name: 'a', cloudInitUserDataFile: file });
    expect(fromFile.spec.template.spec.volumes?.[0]).toEqual({ name: 'cloudinitdisk', cloudInitNoCloud: { userData: '#cloud-config\nssh_pwauth: true\n' } });
    const encoded = createVm({ ...base, name: 'a', cloudInitUserData: Buffer.from('#cloud-config\n').toString('base64') });
    expect(encoded.spec.template.spec.volumes?.[0]?.cloudInitNoCloud?.userDataBase64).toBe('I2Nsb3VkLWNvbmZpZwo=');
    expect(() => createVm({ ...base, cloudInitUserDataFile: join(dir, 'missing') })).toThrow(/cannot read .*missing/);
  });

  it('refuses what kubevm would refuse, naming the flag or the field', () => {
    expect(() => createVm({ ...base, runStrategy: 'Sometimes' })).toThrow('--run-strategy: invalid RunStrategy "Sometimes", supported values are: Always, Halted, Manual, RerunOnFailure, Once');
    expect(() => createVm({ ...base, volumeContainerdisk: ['name:x'] })).toThrow('src must be given');
    expect(() => createVm({ ...base, volumeContainerdisk: ['src:a,bootorder:1', 'src:b,bootorder:1'] })).toThrow('bootorder 1 was given to two volumes');
    expect(() => createVm({ ...base, volumeContainerdisk: ['src:a,size:1Gi'] })).toThrow('unknown parameter "size"');
    expect(() => createVm({ ...base, volumeContainerdisk: ['src:a,name:Not_A_Name'] })).toThrow(/^the VirtualMachine would not be valid: spec\.template\.spec\.domain\.devices\.disks\[0\]\.name: must be a DNS label/);
    expect(() => createVm({ ...base, memory: 'lots' })).toThrow(/memory\.guest/);
    expect(() => createVm({ ...base, memory: '1Gi', instancetype: 'small' })).toThrow('--memory and --instancetype exclude each other');
  });

  it('reads volume parameters as virtctl writes them', () => {
    expect(parseVolumeParams('volume-containerdisk', 'src:reg.io/img:tag,name:root,bootorder:1', ['src', 'name', 'bootorder'])).toEqual({ src: 'reg.io/img:tag', name: 'root', bootorder: '1' });
    expect(parseVolumeParams('volume-pvc', 'my-pvc', ['src', 'name', 'bootorder'])).toEqual({ src: 'my-pvc' });
  });
});

describe('create instancetype and preference', () => {
  it('prints cluster-wide kinds by default and namespaced ones with --namespaced', () => {
    expect(createInstancetype({ name: 'small', cpu: 2, memory: '2Gi' })).toEqual({
      apiVersion: 'instancetype.kubevirt.io/v1beta1',
      kind: 'VirtualMachineClusterInstancetype',
      metadata: { name: 'small' },
      spec: { cpu: { guest: 2 }, memory: { guest: '2Gi' } },
    });
    expect(createInstancetype({ name: 's', cpu: 1, memory: '1Gi', namespaced: true })).toMatchObject({ kind: 'VirtualMachineInstancetype' });
    expect(() => createInstancetype({ cpu: 1, memory: 'much' })).toThrow(/memory\.guest/);
    expect(createPreference({ name: 'p', namespaced: true, cpuTopology: 'cores', machineType: 'q35' })).toEqual({
      apiVersion: 'instancetype.kubevirt.io/v1beta1',
      kind: 'VirtualMachinePreference',
      metadata: { name: 'p' },
      spec: { cpu: { preferredCPUTopology: 'cores' }, machine: { preferredMachineType: 'q35' } },
    });
    expect(() => createPreference({ cpuTopology: 'rows' })).toThrow(/--cpu-topology: invalid value "rows", supported values are: sockets, cores/);
  });
});
