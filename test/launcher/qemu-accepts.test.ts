// Every device option qemuArgs can produce is accepted by the real QEMU (10.0 here, ADR 0018): one VM with a
// disk on each bus, cdroms, cache modes, error policies, serials, boot order, rng, watchdog,
// e1000 NIC, startStrategy Paused. The unit tests check the arguments; this checks QEMU agrees.
import { jest } from '@jest/globals';
import type { LauncherVmi } from '../../launcher/vmi.js';
import { startLauncher, testVmi } from './harness.js';
import type { LauncherRun } from './harness.js';

jest.setTimeout(60_000);

describe('QEMU accepts every device qemuArgs renders', () => {
  let run: LauncherRun | undefined;
  afterEach(async () => {
    await run?.stop();
    run = undefined;
  });

  it('starts (paused) with disks on virtio, sata, scsi and usb, cdroms, rng, watchdog and an e1000 NIC', async () => {
    const empty = (name: string) => ({ name, emptyDisk: { capacity: '16Mi' } });
    const vmi: LauncherVmi = testVmi('devices', '', {
      disks: [
        { name: 'v', disk: { bus: 'virtio' }, bootOrder: 1, serial: 'VIRTIO1', cache: 'writeback', errorPolicy: 'report' },
        { name: 's', disk: { bus: 'sata' }, errorPolicy: 'ignore' },
        { name: 'c', disk: { bus: 'scsi' }, cache: 'writethrough', errorPolicy: 'enospace', serial: 'SCSI1' },
        { name: 'r', disk: { bus: 'scsi', readonly: true } },
        { name: 'u', disk: { bus: 'usb', readonly: true } },
        { name: 'iso1', cdrom: { bus: 'sata' } },
        { name: 'iso2', cdrom: { bus: 'scsi' } },
      ],
      volumes: [
        empty('v'),
        empty('s'),
        empty('c'),
        empty('r'),
        empty('u'),
        { name: 'iso1', cloudInitNoCloud: { userData: '#!/bin/sh\n' } },
        { name: 'iso2', cloudInitNoCloud: { userData: '#!/bin/sh\n' } },
      ],
    });
    vmi.spec.startStrategy = 'Paused';
    vmi.spec.domain.firmware = { ...vmi.spec.domain.firmware, uuid: '5d307ca9-b3ef-428c-8861-06e72d69f223', serial: 'serial,with,commas' };
    vmi.spec.domain.cpu = { sockets: 1, cores: 2, threads: 1 };
    vmi.spec.domain.devices.rng = {};
    vmi.spec.domain.devices.watchdog = { name: 'wd', i6300esb: { action: 'poweroff' } };
    vmi.spec.domain.devices.interfaces = [{ name: 'default', masquerade: {}, model: 'e1000', macAddress: '02:00:00:00:00:01', bootOrder: 2, ports: [{ port: 40022 }] }];
    vmi.spec.networks = [{ name: 'default', pod: {} }];
    run = await startLauncher(vmi);
    const status = await run.client.call('start');
    expect(status).toMatchObject({ phase: 'Paused', reason: 'StartPaused', qemuStatus: 'prelaunch' });
    expect(status.error).toBeUndefined();
    // And it runs when unpaused.
    expect((await run.client.call('unpause')).phase).toBe('Running');
    await run.waitForSerial(/KUBEVM-GUEST-BOOTED/, 45_000);
    await run.client.call('kill');
  });
});
