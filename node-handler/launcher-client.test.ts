import { describe, expect, it } from '@jest/globals';
import type { VirtualMachineInstance } from '../runtime/api/index.js';
import { domainStateFromLauncher } from './launcher-client.js';
import { namedInterfaces } from './vmi-status.js';

describe('domainStateFromLauncher', () => {
  it('maps a running domain with its accelerator and guest agent data', () => {
    const state = domainStateFromLauncher({
      phase: 'Running',
      qemuStatus: 'running',
      accelerator: { accel: 'tcg', reason: 'KVM probe failed; emulation allowed' },
      guestInfo: {
        agentConnected: true,
        os: { id: 'debian', name: 'Debian GNU/Linux', kernelRelease: '6.1.0' },
        interfaces: [
          { interfaceName: 'lo', ipAddresses: ['127.0.0.1'] },
          { interfaceName: 'eth0', mac: '52:54:00:00:00:01', ipAddress: '10.244.0.7', ipAddresses: ['10.244.0.7', 'fe80::1'] },
        ],
      },
    });
    expect(state).toMatchObject({
      phase: 'Running',
      accelerator: 'tcg',
      acceleratorReason: 'KVM probe failed; emulation allowed',
      agentConnected: true,
      guestOSInfo: { id: 'debian', name: 'Debian GNU/Linux', kernelRelease: '6.1.0' },
      interfaces: [{ interfaceName: 'eth0', mac: '52:54:00:00:00:01', ipAddress: '10.244.0.7', ipAddresses: ['10.244.0.7', 'fe80::1'], infoSource: 'guest-agent' }],
    });
  });

  it('drops guest data once the agent is gone, so the status stops claiming it', () => {
    const state = domainStateFromLauncher({ phase: 'Running', guestInfo: { agentConnected: false, interfaces: [] } });
    expect(state.agentConnected).toBe(false);
    expect(state.guestOSInfo).toBeUndefined();
    expect(state.interfaces).toBeUndefined();
  });

  it('tells pause reasons apart', () => {
    expect(domainStateFromLauncher({ phase: 'Paused', reason: 'PausedByUser', qemuStatus: 'paused' }).pauseReason).toBe('User');
    expect(domainStateFromLauncher({ phase: 'Paused', qemuStatus: 'io-error' }).pauseReason).toBe('IOError');
    expect(domainStateFromLauncher({ phase: 'Paused', reason: 'MigrationTarget' }).pauseReason).toBe('Migration');
  });

  it('carries a failed start’s step and QEMU’s last lines into the failure message', () => {
    const state = domainStateFromLauncher({
      phase: 'Failed',
      reason: 'StartFailed:qemu-start',
      error: { step: 'qemu-start', message: 'QEMU exited during start (exit code 1)', qemuStderr: ['a', 'b', 'c', 'd', 'e', "qemu-system-x86_64: -drive file=/x.img: Could not open '/x.img': No such file or directory"] },
    });
    expect(state.phase).toBe('Failed');
    expect(state.failure?.reason).toBe('StartFailedqemu-start');
    expect(state.failure?.message).toMatch(/^qemu-start: QEMU exited during start \(exit code 1\); QEMU said: b \| c \| d \| e \| qemu-system-x86_64: .*Could not open/);
  });

  it('maps the end of the domain: guest poweroff and requested stop are Shutoff', () => {
    expect(domainStateFromLauncher({ phase: 'Succeeded', reason: 'GuestShutdown' })).toMatchObject({ phase: 'Shutoff', shutoffReason: 'GuestShutdown' });
    expect(domainStateFromLauncher({ phase: 'Succeeded', reason: 'Shutdown' })).toMatchObject({ phase: 'Shutoff', shutoffReason: 'Stopped' });
    expect(domainStateFromLauncher({ phase: 'Pending' }).phase).toBe('Pending');
  });
});

describe('namedInterfaces', () => {
  const vmi = (interfaces: { name: string; macAddress?: string }[]) => ({ spec: { domain: { devices: { interfaces } } } }) as unknown as VirtualMachineInstance;

  it('names guest interfaces after the spec, by MAC or as the only one', () => {
    expect(namedInterfaces(vmi([{ name: 'default' }]), [{ interfaceName: 'eth0', mac: '52:54:00:00:00:01' }])).toEqual([{ name: 'default', interfaceName: 'eth0', mac: '52:54:00:00:00:01' }]);
    expect(
      namedInterfaces(vmi([{ name: 'a', macAddress: '02:00:00:00:00:0A' }, { name: 'b', macAddress: '02:00:00:00:00:0b' }]), [
        { interfaceName: 'eth1', mac: '02:00:00:00:00:0b' },
        { interfaceName: 'eth9', mac: '02:00:00:00:00:99' },
      ]),
    ).toEqual([{ name: 'b', interfaceName: 'eth1', mac: '02:00:00:00:00:0b' }, { interfaceName: 'eth9', mac: '02:00:00:00:00:99' }]);
  });
});
