import { describe, expect, it } from '@jest/globals';
import type { VirtualMachineInstance } from '../runtime/api/index.js';
import { LAUNCHER_STATUS_LIMITS } from '../runtime/contracts/launcher-protocol.js';
import { domainStateFromLauncher } from './launcher-client.js';
import type { LauncherStatusView } from './launcher-client.js';
import { computeVmiStatus, namedInterfaces } from './vmi-status.js';

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

  it('never takes a stop a migration holds for the user\'s pause (its unpause would resume a guest already on its way, or run it twice)', () => {
    // Arriving, stopped for the switch-over (the source's disk mirrors completing), gone to the target.
    for (const qemuStatus of ['inmigrate', 'finish-migrate', 'postmigrate']) {
      expect({ qemuStatus, pauseReason: domainStateFromLauncher({ phase: 'Paused', reason: qemuStatus, qemuStatus }).pauseReason }).toEqual({ qemuStatus, pauseReason: 'Migration' });
    }
    // A guest the user paused stays the user's when a failed migration leaves QEMU in postmigrate.
    expect(domainStateFromLauncher({ phase: 'Paused', reason: 'PausedByUser', qemuStatus: 'postmigrate' }).pauseReason).toBe('User');
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

describe('what a launcher can put into its VMI status', () => {
  // A compromised launcher sends anything its 1 MiB line holds; the handler stores only a bounded
  // part of it (LAUNCHER_STATUS_LIMITS).
  const podUid = 'pod-1';
  const vmi: VirtualMachineInstance = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'vm1', namespace: 'default', uid: 'vmi-uid' },
    spec: { domain: { devices: {} } },
    status: { phase: 'Scheduled', nodeName: 'node1', activePods: { [podUid]: 'node1' }, conditions: [] },
  };
  const statusOf = (launcher: LauncherStatusView) => computeVmiStatus(vmi, { podUid, ...domainStateFromLauncher(launcher) }, new Date('2026-12-03T20:00:00Z'));
  /** Three bytes each in JSON, the most a character kept can cost; control characters (six bytes once escaped) are dropped. */
  const heavy = (length: number) => '€\u0001'.repeat(length);
  const longest = (value: unknown): number => (typeof value === 'string' ? value.length : Array.isArray(value) ? Math.max(0, ...value.map(longest)) : value && typeof value === 'object' ? Math.max(0, ...Object.values(value).map(longest)) : 0);

  const hostile: Array<[string, LauncherStatusView]> = [
    [
      'a running guest with thousands of long interfaces and addresses',
      {
        phase: 'Running',
        accelerator: { accel: 'tcg', reason: heavy(200_000) },
        guestInfo: {
          agentConnected: true,
          os: { name: heavy(50_000), prettyName: heavy(50_000), kernelRelease: heavy(50_000), version: 'x'.repeat(50_000), id: heavy(50_000) },
          interfaces: Array.from({ length: 2_000 }, (_, i) => ({ interfaceName: `${heavy(200)}${i}`, mac: heavy(200), ipAddress: heavy(200), ipAddresses: Array.from({ length: 200 }, () => heavy(100)) })),
        },
      },
    ],
    ['a failed domain with a reason that is no reason and a message of a megabyte', { phase: 'Failed', reason: `<img src=x onerror=alert(1)>\n${'Ünïcödé:'.repeat(10_000)}`, error: { step: 'runtime', message: heavy(1_000_000), qemuStderr: [] } }],
    ['a failed start whose QEMU printed long lines', { phase: 'Failed', reason: 'StartFailed:qemu-start', error: { step: 'qemu-start', message: 'QEMU exited', qemuStderr: Array.from({ length: 10_000 }, () => heavy(16_384)) } }],
    ['a failed domain without an error, with only characters no reason has', { phase: 'Failed', reason: ' :;/\\'.repeat(50_000) }],
  ];

  it.each(hostile)('%s: bounded', (_name, launcher) => {
    const status = statusOf(launcher);
    const bytes = Buffer.byteLength(JSON.stringify(status));
    expect(bytes).toBeLessThan(128 * 1024);
    expect(longest(status)).toBeLessThanOrEqual(LAUNCHER_STATUS_LIMITS.messageChars + 200); // a message with the handler's own words around it
    expect(status.interfaces?.length ?? 0).toBeLessThanOrEqual(LAUNCHER_STATUS_LIMITS.interfaces);
    for (const iface of status.interfaces ?? []) {
      expect(iface.ipAddresses?.length ?? 0).toBeLessThanOrEqual(LAUNCHER_STATUS_LIMITS.addressesPerInterface);
      expect(longest(iface)).toBeLessThanOrEqual(LAUNCHER_STATUS_LIMITS.addressChars);
    }
    for (const value of Object.values(status.guestOSInfo ?? {})) expect(value.length).toBeLessThanOrEqual(LAUNCHER_STATUS_LIMITS.textChars);
    for (const condition of status.conditions ?? []) expect(condition.reason ?? 'None').toMatch(/^[A-Za-z0-9_-]{1,64}$/);
  });

  it('keeps what an honest launcher says whole', () => {
    const status = statusOf({
      phase: 'Failed',
      reason: 'StartFailed:volumes',
      error: { step: 'volumes', message: 'the disk image /var/run/kubevirt/container-disks/disk_0.img is not a regular file', qemuStderr: [] },
    });
    expect(status.conditions?.find((c) => c.type === 'Synchronized')).toMatchObject({
      reason: 'StartFailedvolumes',
      message: 'volumes: the disk image /var/run/kubevirt/container-disks/disk_0.img is not a regular file',
    });
    expect(statusOf({ phase: 'Failed', reason: '::' }).conditions?.find((c) => c.type === 'Ready')?.reason).toBe('LauncherFailed');
  });
});
