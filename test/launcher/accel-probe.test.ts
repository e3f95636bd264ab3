// The launcher's KVM probe on this machine, with real QEMU: its verdict is what the node handler
// labels the node with (kubevm.io/kvm-verified), so it must be evidence about KVM itself: QEMU
// either created a KVM VM ("usable", and the launcher uses KVM) or could not ("unusable", TCG),
// and a pod without the device says nothing about the node.
import { describe, expect, it, jest } from '@jest/globals';
import { accessSync, constants } from 'node:fs';
import { chooseAccelerator } from '../../launcher/accel.js';

jest.setTimeout(60_000);

const qemuBinary = 'qemu-system-x86_64';

describe('the KVM probe', () => {
  it('reports what QEMU found when the device is there, and uses KVM exactly when it is usable', async () => {
    let device = true;
    try {
      accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    } catch {
      device = false;
    }
    const decision = await chooseAccelerator({ kvmDevice: '/dev/kvm', allowEmulation: true, mode: 'auto', qemuBinary });
    if (!device) expect(decision.kvmProbe).toBeUndefined();
    else expect(decision.kvmProbe).toBe(decision.accel === 'kvm' ? 'usable' : 'unusable');
    if (decision.kvmProbe === 'unusable') expect(decision.reason).toMatch(/^QEMU cannot use KVM: /);
  });

  it('says nothing about the node when the pod has no device (an emulating VM does not request it)', async () => {
    const decision = await chooseAccelerator({ kvmDevice: '/nonexistent/kvm', allowEmulation: true, mode: 'auto', qemuBinary });
    expect(decision).toMatchObject({ accel: 'tcg' });
    expect(decision.kvmProbe).toBeUndefined();
  });
});
