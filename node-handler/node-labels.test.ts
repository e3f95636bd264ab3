import { describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { conditionsPatch, cpuinfoField, ksmMarks, kvmVerdict, nodeConditions, nodeLabels, nodePatch, parseQemuVersion, probeHost, toLabelValue, vulnerabilityState } from './node-labels.js';
import type { KsmOutcome } from './ksm.js';

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

  it('reads the kernel\'s CPU vulnerability verdicts, nested virtualization and whether the node is a VM', async () => {
    expect(vulnerabilityState('Not affected\n')).toBe('not-affected');
    expect(vulnerabilityState('Mitigation: Retpolines; STIBP: disabled; RSB filling\n')).toBe('mitigated');
    expect(vulnerabilityState('Vulnerable: Clear CPU buffers attempted, no microcode\n')).toBe('vulnerable');
    expect(vulnerabilityState('Unknown: Dependent on hypervisor status\n')).toBe('unknown');
    const root = mkdtempSync(join(tmpdir(), 'node-labels-'));
    try {
      mkdirSync(join(root, 'sys/devices/system/cpu/vulnerabilities'), { recursive: true });
      writeFileSync(join(root, 'sys/devices/system/cpu/vulnerabilities/spectre_v2'), 'Mitigation: Retpolines\n');
      writeFileSync(join(root, 'sys/devices/system/cpu/vulnerabilities/retbleed'), 'Vulnerable\n');
      writeFileSync(join(root, 'sys/devices/system/cpu/vulnerabilities/meltdown'), 'Not affected\n');
      mkdirSync(join(root, 'sys/module/kvm_intel/parameters'), { recursive: true });
      writeFileSync(join(root, 'sys/module/kvm_intel/parameters/nested'), 'Y\n');
      mkdirSync(join(root, 'proc'));
      writeFileSync(join(root, 'proc/cpuinfo'), cpuinfo.replace('fpu vme', 'fpu vme hypervisor vmx'));
      const facts = await probeHost({ devRoot: root, procRoot: join(root, 'proc'), sysRoot: join(root, 'sys'), qemuBinary: '/nonexistent' });
      expect(nodeLabels(facts)).toMatchObject({
        'cpu-vulnerability.node.kubevm.io/spectre_v2': 'mitigated',
        'cpu-vulnerability.node.kubevm.io/retbleed': 'vulnerable',
        'cpu-vulnerability.node.kubevm.io/meltdown': 'not-affected',
        'kubevm.io/cpu-vulnerable': 'true',
        'kubevm.io/nested-virtualization': 'true',
        'kubevm.io/node-is-virtual': 'true',
        'kubevm.io/kvm-usable': 'false',
      });
      writeFileSync(join(root, 'sys/devices/system/cpu/vulnerabilities/retbleed'), 'Mitigation: untrained return thunk\n');
      writeFileSync(join(root, 'sys/module/kvm_intel/parameters/nested'), 'N\n');
      expect(nodeLabels(await probeHost({ devRoot: root, procRoot: join(root, 'proc'), sysRoot: join(root, 'sys'), qemuBinary: '/nonexistent' }))).toMatchObject({
        'kubevm.io/cpu-vulnerable': 'false',
        'kubevm.io/nested-virtualization': 'false',
      });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('removes a vulnerability label the kernel no longer reports', () => {
    const now = new Date('2026-11-22T21:00:00.500Z');
    const patch = nodePatch({ 'cpu-vulnerability.node.kubevm.io/gone': 'vulnerable', team: 'a' }, { 'kubevm.io/cpu-vulnerable': 'false' }, now);
    expect(patch.metadata.labels).toEqual({ 'cpu-vulnerability.node.kubevm.io/gone': null, 'kubevm.io/cpu-vulnerable': 'false' });
  });

  it('says KVM is verified once a launcher\'s probe succeeded, not before, and never removes the verdict on its own', () => {
    expect(kvmVerdict([])).toBeUndefined();
    expect(kvmVerdict([undefined, undefined])).toBeUndefined();
    expect(kvmVerdict(['unusable', undefined])).toBe(false);
    expect(kvmVerdict(['unusable', 'usable'])).toBe(true);
    expect(nodeLabels({ kvmUsable: true }, true)['kubevm.io/kvm-verified']).toBe('true');
    expect(nodeLabels({ kvmUsable: true })).not.toHaveProperty('kubevm.io/kvm-verified');
    const now = new Date('2026-11-22T21:00:00.500Z');
    expect(nodePatch({ 'kubevm.io/kvm-verified': 'false' }, {}, now).metadata.labels).toBeUndefined();
  });
});

describe('node conditions', () => {
  const ksmOff: KsmOutcome = { running: false, managed: false, reason: 'NotSelected', message: 'KSM is off: ksmConfiguration does not select this node' };
  const byType = (conditions: ReturnType<typeof nodeConditions>) => Object.fromEntries(conditions.map((c) => [c.type, c]));

  it('says whether the CPU is vulnerable, naming the verdicts, and how to keep sensitive VMs off', () => {
    const vulnerable = byType(nodeConditions({ kvmUsable: true, cpuVulnerabilities: { meltdown: 'not-affected', spectre_v1: 'mitigated', mds: 'vulnerable', tsa: 'unknown' } }, ksmOff));
    expect(vulnerable['kubevm.io/CPUVulnerable']).toEqual({
      type: 'kubevm.io/CPUVulnerable',
      status: 'True',
      reason: 'Vulnerable',
      message: 'vulnerable: mds; mitigated: spectre_v1; unknown: tsa; keep sensitive VMs off this node (nodeSelector kubevm.io/cpu-vulnerable: "false")',
    });
    const mitigated = byType(nodeConditions({ kvmUsable: true, cpuVulnerabilities: { meltdown: 'not-affected', spectre_v1: 'mitigated' } }, ksmOff));
    expect(mitigated['kubevm.io/CPUVulnerable']).toMatchObject({ status: 'False', reason: 'Mitigated', message: 'vulnerable: none; mitigated: spectre_v1' });
    expect(byType(nodeConditions({ kvmUsable: true, cpuVulnerabilities: { meltdown: 'not-affected' } }, ksmOff))['kubevm.io/CPUVulnerable']).toMatchObject({ status: 'False', reason: 'NotAffected' });
    // No verdicts is not "not vulnerable".
    expect(byType(nodeConditions({ kvmUsable: true }, ksmOff))['kubevm.io/CPUVulnerable']).toMatchObject({ status: 'Unknown', reason: 'NotReported' });
  });

  it('says whether nested virtualization is on, and whether the node is itself a VM', () => {
    const nested = (facts: Parameters<typeof nodeConditions>[0]) => byType(nodeConditions(facts, ksmOff))['kubevm.io/NestedVirtualization'];
    expect(nested({ kvmUsable: true, nestedVirtualization: true })).toMatchObject({ status: 'True', reason: 'Enabled' });
    expect(nested({ kvmUsable: true, nestedVirtualization: false, nodeIsVirtual: true })).toMatchObject({ status: 'False', reason: 'Disabled', message: expect.stringMatching(/itself a virtual machine/) });
    expect(nested({ kvmUsable: false })).toMatchObject({ status: 'Unknown', reason: 'KvmModuleNotLoaded' });
  });

  it('carries KSM\'s outcome as a condition, and its labels and annotation by KubeVirt\'s names', () => {
    const on: KsmOutcome = { running: true, managed: true, reason: 'EnabledBySelector', message: 'on' };
    expect(byType(nodeConditions({ kvmUsable: true }, on))['kubevm.io/KSM']).toEqual({ type: 'kubevm.io/KSM', status: 'True', reason: 'EnabledBySelector', message: 'on' });
    expect(byType(nodeConditions({ kvmUsable: true }, { running: undefined, managed: false, reason: 'Unavailable', message: 'none' }))['kubevm.io/KSM']).toMatchObject({ status: 'Unknown' });
    expect(ksmMarks(on)).toEqual({ labels: { 'kubevirt.io/ksm-enabled': 'true' }, annotations: { 'kubevirt.io/ksm-handler-managed': 'true' } });
    expect(ksmMarks({ ...on, managed: false, reason: 'EnabledOutsideKubevm' })).toEqual({ labels: { 'kubevirt.io/ksm-enabled': 'false' }, annotations: { 'kubevirt.io/ksm-handler-managed': 'false' } });
    const patch = nodePatch({ 'kubevirt.io/ksm-enabled': 'true' }, { 'kubevirt.io/schedulable': 'true' }, new Date('2026-01-01T00:00:00.123Z'), { 'kubevirt.io/ksm-handler-managed': 'false' });
    expect(patch.metadata).toEqual({ labels: { 'kubevirt.io/schedulable': 'true', 'kubevirt.io/ksm-enabled': null }, annotations: { 'kubevirt.io/ksm-handler-managed': 'false', 'kubevirt.io/heartbeat': '2026-01-01T00:00:00Z' } });
  });

  it('writes only changed conditions; the transition time moves only when the status flips', () => {
    const t0 = new Date('2026-01-01T00:00:00.900Z');
    const t1 = new Date('2026-01-01T01:00:00Z');
    const wanted = nodeConditions({ kvmUsable: true, cpuVulnerabilities: { mds: 'mitigated' }, nestedVirtualization: false }, ksmOff);
    const first = conditionsPatch([{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: '' }], wanted, t0);
    expect(first.map((c) => c.type)).toEqual(['kubevm.io/CPUVulnerable', 'kubevm.io/NestedVirtualization', 'kubevm.io/KSM']);
    expect(first.every((c) => c.lastTransitionTime === '2026-01-01T00:00:00Z' && c.lastHeartbeatTime === '2026-01-01T00:00:00Z')).toBe(true);
    expect(conditionsPatch(first, wanted, t1)).toEqual([]);
    // Same status, another message: rewritten, transition time kept.
    const moreMitigated = nodeConditions({ kvmUsable: true, cpuVulnerabilities: { mds: 'mitigated', l1tf: 'mitigated' }, nestedVirtualization: false }, ksmOff);
    expect(conditionsPatch(first, moreMitigated, t1)).toEqual([expect.objectContaining({ type: 'kubevm.io/CPUVulnerable', lastTransitionTime: '2026-01-01T00:00:00Z', lastHeartbeatTime: '2026-01-01T01:00:00Z' })]);
    // Status flips: new transition time.
    const vulnerable = nodeConditions({ kvmUsable: true, cpuVulnerabilities: { mds: 'vulnerable' }, nestedVirtualization: false }, ksmOff);
    expect(conditionsPatch(first, vulnerable, t1)).toEqual([expect.objectContaining({ type: 'kubevm.io/CPUVulnerable', status: 'True', lastTransitionTime: '2026-01-01T01:00:00Z' })]);
  });
});
