// Volumes proven by the guest: a containerDisk from a real OCI image layout (its base never
// written), cloud-init NoCloud user-data executed by the guest, an emptyDisk and a filesystem PVC
// whose disk.img the launcher creates sparse.
import { jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { LauncherVmi } from '../../launcher/vmi.js';
import { startLauncher, testGuests, testVmi } from './harness.js';
import type { LauncherRun } from './harness.js';

jest.setTimeout(120_000);

/** Unpacks an OCI image layout's layers into `dest`, as the container runtime would. */
function unpackOciLayout(layout: string, dest: string): void {
  const blob = (digest: string) => path.join(layout, 'blobs', digest.replace(':', '/'));
  const index = JSON.parse(readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0]?.digest as string), 'utf8')) as { layers: { digest: string }[] };
  mkdirSync(dest, { recursive: true });
  for (const layer of manifest.layers) execFileSync('tar', ['-xzf', blob(layer.digest), '-C', dest]);
}

const sha256 = (file: string) => `sha256:${createHash('sha256').update(readFileSync(file)).digest('hex')}`;

describe('launcher volumes (real QEMU, TCG)', () => {
  let run: LauncherRun | undefined;
  afterEach(async () => {
    await run?.stop();
    run = undefined;
  });

  it('runs cloud-init user-data in the guest and never writes the containerDisk base', async () => {
    const userData = '#!/bin/sh\necho "USERDATA-MARKER host=$(hostname) disks=$(ls /dev/vd? | tr \'\\n\' \' \')"\n';
    const vmi: LauncherVmi = testVmi('volumes', '', {
      disks: [
        { name: 'containerdisk', disk: { bus: 'virtio' }, bootOrder: 1 },
        { name: 'cloudinit', disk: { bus: 'virtio' } },
        { name: 'scratch', disk: { bus: 'virtio' } },
        { name: 'data', disk: { bus: 'virtio' }, serial: 'DATA1' },
      ],
      volumes: [
        { name: 'containerdisk', containerDisk: { image: 'kubevm/test-containerdisk:latest' } },
        { name: 'cloudinit', cloudInitNoCloud: { userDataBase64: Buffer.from(userData).toString('base64'), networkData: 'version: 2\nethernets: {}\n' } },
        { name: 'scratch', emptyDisk: { capacity: '64Mi' } },
        { name: 'data', persistentVolumeClaim: { claimName: 'data-pvc' } },
      ],
    });
    vmi.spec.hostname = 'cloudy';
    // The claim's capacity as the controller copies it into the VMI status.
    (vmi as LauncherVmi & { status: object }).status = { volumeStatus: [{ name: 'data', persistentVolumeClaimInfo: { capacity: { storage: '96Mi' } } }] };
    let base = '';
    run = await startLauncher(vmi, {
      prepare: ({ containerDiskDir, pvcDir }) => {
        unpackOciLayout(testGuests().containerDiskLayout, path.join(containerDiskDir, 'containerdisk'));
        base = path.join(containerDiskDir, 'containerdisk', 'disk', 'disk.qcow2');
        mkdirSync(path.join(pvcDir, 'data'));
      },
    });
    const before = sha256(base);
    const status = await run.client.call('start');
    expect(status.phase).toBe('Running');

    // cloud-init: the guest found the cidata volume and ran the user-data.
    await run.waitForSerial(/KUBEVM-CLOUDINIT device=\/dev\/vd\w instance-id=volumes\.launcher-test hostname=cloudy/, 60_000);
    const marker = await run.waitForSerial(/USERDATA-MARKER host=(\S+) disks=(.*)/, 30_000);
    expect(marker[1]).toBe('cloudy');
    expect(marker[2]?.trim().split(' ')).toHaveLength(4);
    expect(run.serialLog()).toMatch(/KUBEVM-CLOUDINIT network-config version: 2/);

    // The containerDisk: the guest wrote to it (through the overlay) ...
    await run.waitForSerial(/KUBEVM-DISK-WRITTEN [0-9a-f]+/, 30_000);
    await run.waitForSerial(/KUBEVM-READY/, 10_000);
    // ... and the base is byte-for-byte what the image shipped; its digest is reported.
    expect(sha256(base)).toBe(before);
    const cd = status.volumes.find((v) => v.name === 'containerdisk');
    expect(cd?.containerDisk).toEqual({ basePath: base, digest: before });
    const overlay = path.join(run.ephemeralDir, 'containerdisk', 'overlay.qcow2');
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', '-U', overlay], { encoding: 'utf8' })) as { 'backing-filename'?: string; 'actual-size': number };
    expect(info['backing-filename']).toBe(base);
    expect(info['actual-size']).toBeGreaterThan(1024 * 1024); // the guest's 1 MiB blob landed here

    // emptyDisk: a qcow2 of the requested size in the pod's scratch space.
    const scratch = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', '-U', path.join(run.ephemeralDir, 'scratch', 'empty.qcow2')], { encoding: 'utf8' })) as { 'virtual-size': number };
    expect(scratch['virtual-size']).toBe(64 * 1024 * 1024);
    // Filesystem PVC: disk.img created sparse at the claim's capacity.
    const img = statSync(path.join(run.pvcDir, 'data', 'disk.img'));
    expect(img.size).toBe(96 * 1024 * 1024);
    expect(img.blocks * 512).toBeLessThan(img.size / 4);
    expect(status.volumes.find((v) => v.name === 'data')?.persistentVolumeClaim).toMatchObject({ mode: 'filesystem', created: true });

    await run.client.call('kill');
    expect(sha256(base)).toBe(before);
  });
});
