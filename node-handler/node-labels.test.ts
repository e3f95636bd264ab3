import { describe, expect, it } from '@jest/globals';
import { cpuinfoField, nodeLabels, nodePatch, parseQemuVersion, toLabelValue } from './node-labels.js';

const cpuinfo = 'processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel name\t: Intel(R) Xeon(R) Processor @ 2.20GHz\nflags\t\t: fpu vme\n\nprocessor\t: 1\nvendor_id\t: Other\n';

describe('node labels', () => {
  it('reads the host facts the labels come from', () => {
    expect(cpuinfoField(cpuinfo, 'model name')).toBe('Intel(R) Xeon(R) Processor @ 2.20GHz');
    expect(cpuinfoField(cpuinfo, 'vendor_id')).toBe('GenuineIntel');
    expect(parseQemuVersion('QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright')).toBe('7.2.22');
  });

  it('turns free text into valid label values', () => {
    expect(toLabelValue('Intel(R) Xeon(R) Processor @ 2.20GHz')).toBe('Intel-Xeon-Processor-2.20GHz');
    expect(toLabelValue('x'.repeat(80))).toHaveLength(63);
    expect(toLabelValue('--a b--')).toBe('a-b');
  });

  it('labels as KubeVirt where the meaning matches', () => {
    expect(nodeLabels({ kvmUsable: false, cpuModelName: 'AMD EPYC 7B13', cpuVendorId: 'AuthenticAMD', qemuVersion: '7.2.22' })).toEqual({
      'kubevirt.io/schedulable': 'true',
      'kubevm.io/kvm-usable': 'false',
      'kubevm.io/host-cpu-model': 'AMD-EPYC-7B13',
      'cpu-vendor.node.kubevirt.io/AMD': 'true',
      'kubevm.io/qemu-version': '7.2.22',
    });
  });

  it('patches only labels that differ, removes stale managed ones, and always renews the heartbeat', () => {
    const now = new Date('2026-11-22T21:00:00.500Z');
    const current = { 'kubevirt.io/schedulable': 'true', 'kubevm.io/kvm-usable': 'true', 'kubevm.io/qemu-version': '7.1.0', 'team': 'a' };
    const patch = nodePatch(current, { 'kubevirt.io/schedulable': 'true', 'kubevm.io/kvm-usable': 'false' }, now);
    expect(patch).toEqual({
      metadata: {
        labels: { 'kubevm.io/kvm-usable': 'false', 'kubevm.io/qemu-version': null },
        annotations: { 'kubevirt.io/heartbeat': '2026-11-22T21:00:00Z' },
      },
    });
    expect(nodePatch({ 'kubevirt.io/schedulable': 'true' }, { 'kubevirt.io/schedulable': 'true' }, now).metadata.labels).toBeUndefined();
  });
});
