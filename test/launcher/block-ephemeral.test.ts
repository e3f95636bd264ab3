// A block-mode PVC (a loop device standing in for the pod's volumeDevice) written by the guest
// directly, and an ephemeral volume: a copy-on-write overlay over a PVC's disk.img that stays
// untouched.
import { jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { QEMU_UID, startLauncher, testGuests, testVmi } from './harness.js';
import type { LauncherRun } from './harness.js';

jest.setTimeout(120_000);

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('launcher block and ephemeral volumes (real QEMU, TCG)', () => {
  let run: LauncherRun | undefined;
  let loop: string | undefined;
  let scratch: string | undefined;
  afterEach(async () => {
    await run?.stop();
    if (loop) execFileSync('losetup', ['-d', loop]);
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    run = undefined;
    loop = undefined;
  });

  it('the guest writes a block-mode PVC directly; an ephemeral PVC base stays unchanged', async () => {
    // The block device: a loop device over a raw copy of the test disk (ext4, label kubevm-disk).
    scratch = mkdtempSync(path.join(os.tmpdir(), 'kubevm-block-'));
    const backing = path.join(scratch, 'block.raw');
    execFileSync('qemu-img', ['convert', '-q', '-f', 'qcow2', '-O', 'raw', testGuests().diskQcow2, backing]);
    loop = execFileSync('losetup', ['--find', '--show', backing], { encoding: 'utf8' }).trim();
    chownSync(loop, QEMU_UID, QEMU_UID); // the kubelet gives the pod's fsGroup access to its volumeDevices
    const blockBefore = sha256(backing);

    const vmi = testVmi('block', '', {
      disks: [
        { name: 'rootblock', disk: { bus: 'virtio' } },
        { name: 'scratch', disk: { bus: 'virtio' } },
      ],
      volumes: [
        { name: 'rootblock', persistentVolumeClaim: { claimName: 'block-pvc' } },
        { name: 'scratch', ephemeral: { persistentVolumeClaim: { claimName: 'base-pvc' } } },
      ],
    });
    let baseImg = '';
    run = await startLauncher(vmi, {
      prepare: ({ dir, pvcDir }) => {
        mkdirSync(path.join(dir, 'block'));
        symlinkSync(loop as string, path.join(dir, 'block', 'rootblock'));
        mkdirSync(path.join(pvcDir, 'scratch'));
        baseImg = path.join(pvcDir, 'scratch', 'disk.img');
        writeFileSync(baseImg, '');
        truncateSync(baseImg, 16 * 1024 * 1024);
      },
    });
    const baseBefore = sha256(baseImg);
    const status = await run.client.call('start');
    expect(status.phase).toBe('Running');
    expect(status.volumes.find((v) => v.name === 'rootblock')?.persistentVolumeClaim).toMatchObject({ mode: 'block', created: false });
    expect(status.volumes.find((v) => v.name === 'scratch')?.persistentVolumeClaim).toMatchObject({ mode: 'filesystem', path: baseImg });
    await run.waitForSerial(/KUBEVM-DISK-WRITTEN/, 60_000);
    await run.waitForSerial(/KUBEVM-READY/, 10_000);
    await run.client.call('shutdown', { gracePeriodSeconds: 30 });
    // The guest's writes went straight to the block device ...
    expect(sha256(backing)).not.toBe(blockBefore);
    // ... and the ephemeral volume's base is untouched, used only as the overlay's backing file.
    expect(sha256(baseImg)).toBe(baseBefore);
  });
});
