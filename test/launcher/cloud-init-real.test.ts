// Debian's real cloud-init (22.4, from Debian packages: test/guests/build-cloudinit.sh) consumes the
// NoCloud ISO the launcher builds from the VMI: it finds the datasource, sets the host name from
// meta-data, writes a file and runs a command from #cloud-config user-data. The root disk is
// served as a containerDisk (read-only base, overlay in the pod).
import { jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { repoRoot, startLauncher, testVmi } from './harness.js';
import type { LauncherRun } from './harness.js';

// The first run builds the image from ~135 packages (about 80 s here); later runs use the cache.
jest.setTimeout(300_000);

function cloudInitRootDisk(): string {
  const out = execFileSync('bash', [path.join(repoRoot, 'test/guests/build-cloudinit.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return path.join(out.trim().split('\n').pop() as string, 'cloudinit-root.qcow2');
}

describe('cloud-init NoCloud with Debian cloud-init (real QEMU, TCG)', () => {
  let run: LauncherRun | undefined;
  afterEach(async () => {
    await run?.stop();
    run = undefined;
  });

  it('runs #cloud-config user-data from the VMI', async () => {
    const rootDisk = cloudInitRootDisk();
    const userData = [
      '#cloud-config',
      'write_files:',
      '  - path: /root/kubevm-marker',
      '    content: written-by-cloud-init',
      'runcmd:',
      '  - echo "KUBEVM-RUNCMD $(cat /root/kubevm-marker) host=$(hostname)" > /dev/console',
      '',
    ].join('\n');
    const vmi = testVmi('real-cloudinit', 'kubevm.rootfs=cloudinit kubevm.counter=0', {
      disks: [
        { name: 'root', disk: { bus: 'virtio' } },
        { name: 'cloudinit', disk: { bus: 'virtio' } },
      ],
      volumes: [
        { name: 'root', containerDisk: { image: 'kubevm/test-cloudinit-root:latest' } },
        { name: 'cloudinit', cloudInitNoCloud: { userData } },
      ],
    });
    vmi.spec.hostname = 'from-meta-data';
    vmi.spec.domain.memory = { guest: '256Mi' };
    run = await startLauncher(vmi, {
      prepare: ({ containerDiskDir }) => {
        mkdirSync(path.join(containerDiskDir, 'root', 'disk'), { recursive: true });
        copyFileSync(rootDisk, path.join(containerDiskDir, 'root', 'disk', 'cloudinit-root.qcow2'));
      },
    });
    expect((await run.client.call('start')).phase).toBe('Running');
    await run.waitForSerial(/KUBEVM-CLOUDINIT-REAL starting cloud-init/, 60_000);
    const marker = await run.waitForSerial(/KUBEVM-RUNCMD (\S+) host=(\S+)/, 150_000);
    expect([marker[1], marker[2]]).toEqual(['written-by-cloud-init', 'from-meta-data']);
    const result = await run.waitForSerial(/KUBEVM-CLOUDINIT-REAL hostname=(\S+) result=(.*)/, 60_000);
    expect(result[1]).toBe('from-meta-data');
    expect(result[2]).toContain('DataSourceNoCloud');
    expect(result[2]).toContain('"errors":[]');
    await run.client.call('kill');
  });
});
