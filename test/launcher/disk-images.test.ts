// Hostile disk images (the class of Lima's CVE-2023-32684), with real QEMU and qemu-img: an image
// must never make QEMU open a file the guest could then read. A containerDisk that names another
// file (backing file, external data file, json:/nbd: names, vmdk extents), comes in a format
// other than raw or qcow2, or is a link out of its image, is refused with a message saying why;
// a raw PVC into which the guest wrote a qcow2 header naming a Secret is opened raw again on the
// next start, and the guest finds the Secret on none of its disks.
import { jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { LauncherCommandError } from '../../node-handler/launcher-client.js';
import type { LauncherVmi } from '../../launcher/vmi.js';
import { processesMatching, startLauncher, testGuests, testVmi } from './harness.js';
import type { LauncherRun } from './harness.js';

jest.setTimeout(180_000);

const qemuImg = (...args: string[]) => execFileSync('qemu-img', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/**
 * qemu-img sizes a LUKS key's PBKDF iterations by timing a first round on its thread's CPU clock;
 * on a loaded machine that round can be charged 0 ms and qemu-img gives up ("Unable to get
 * accurate CPU usage"). Only that refusal is tried again, a few times; any other error stands.
 */
function qemuImgTimingPbkdf(...args: string[]): void {
  for (let attempt = 1; ; attempt++) {
    try {
      qemuImg(...args);
      return;
    } catch (err) {
      const { stderr } = err as { stderr?: string };
      if (attempt >= 5 || !stderr?.includes('Unable to get accurate CPU usage')) throw err;
    }
  }
}

/** A "Secret" of the pod outside every disk: readable by the launcher's user, as a mounted one is. */
const secretDir = mkdtempSync(path.join(os.tmpdir(), 'kubevm-secret-'));
const marker = `KUBEVM-SECRET-${randomBytes(8).toString('hex')}`;
const secret = path.join(secretDir, 'token');
/** Images are built here and copied into each launcher's containerDisk directory. */
const work = mkdtempSync(path.join(os.tmpdir(), 'kubevm-images-'));
/** A listener standing in for anything an image could name over the network or a socket. */
const trapPath = path.join(secretDir, 'trap.sock');
let trapConnections = 0;
const trap = net.createServer((c) => {
  trapConnections++;
  c.destroy();
});

beforeAll(async () => {
  chmodSync(secretDir, 0o755);
  writeFileSync(secret, `${marker}\n`.repeat(4096), { mode: 0o644 });
  await new Promise<void>((resolve) => trap.listen(trapPath, resolve));
  chmodSync(trapPath, 0o777);
});
afterAll(async () => {
  await new Promise((resolve) => trap.close(resolve));
  rmSync(secretDir, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

const nbdJson = `json:${JSON.stringify({ driver: 'raw', file: { driver: 'nbd', server: { type: 'unix', path: trapPath } } })}`;

/** Builds an image in `work`; returns its path. */
function image(name: string, build: (file: string) => void): string {
  const file = path.join(work, name);
  build(file);
  return file;
}

interface HostileCase {
  /** Makes the file placed at /disk/disk.img of the containerDisk. */
  build?: (file: string) => void;
  /** /disk/disk.img is a link to this file of the pod instead. */
  linkTo?: string;
  /** What the refusal says. */
  reason: RegExp;
}

const hostile: Record<string, HostileCase> = {
  'qcow2 whose backing file is a file of the pod': {
    build: (f) => qemuImg('create', '-q', '-f', 'qcow2', '-u', '-b', secret, '-F', 'raw', f, '64M'),
    reason: new RegExp(`has a backing file "${secret.replaceAll('/', '\\/')}"`),
  },
  'qcow2 whose backing file is a json: name reaching a socket': {
    build: (f) => qemuImg('create', '-q', '-f', 'qcow2', '-u', '-b', nbdJson, '-F', 'raw', f, '64M'),
    reason: /has a backing file "json:\{/,
  },
  'qcow2 whose backing is a protocol URL': {
    build: (f) => qemuImg('create', '-q', '-f', 'qcow2', '-u', '-b', `nbd+unix:///?socket=${trapPath}`, '-F', 'raw', f, '64M'),
    reason: /has a backing file "nbd\+unix:/,
  },
  'qcow2 v2 (compat 0.10) with a backing file': {
    build: (f) => qemuImg('create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', '-u', '-b', secret, '-F', 'raw', f, '64M'),
    reason: /has a backing file/,
  },
  'qcow2 with an external data file': {
    build: (f) => qemuImg('create', '-q', '-f', 'qcow2', '-o', `data_file=${f}.data`, f, '64M'),
    reason: /has an external data file ".*\.data"/,
  },
  'qcow2 with an external raw data file': {
    build: (f) => qemuImg('create', '-q', '-f', 'qcow2', '-o', `data_file=${f}.data,data_file_raw=on`, f, '64M'),
    reason: /has an external data file/,
  },
  'encrypted qcow2': {
    build: (f) => qemuImgTimingPbkdf('create', '-q', '--object', 'secret,id=s0,data=pw', '-f', 'qcow2', '-o', 'encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10', f, '16M'),
    reason: /is encrypted/,
  },
  'qcow (version 1)': { build: (f) => qemuImg('create', '-q', '-f', 'qcow', f, '16M'), reason: /qcow \(version 1\)/ },
  'qcow with a backing file': { build: (f) => qemuImg('create', '-q', '-f', 'qcow', '-u', '-b', secret, '-F', 'raw', f, '16M'), reason: /qcow \(version 1\)/ },
  'vmdk (sparse)': { build: (f) => qemuImg('create', '-q', '-f', 'vmdk', f, '16M'), reason: /is a vmdk image/ },
  'vmdk descriptor whose extent is a file of the pod': {
    build: (f) =>
      writeFileSync(
        f,
        `# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\nRW 2048 FLAT "${secret}" 0\n\nddb.virtualHWVersion = "4"\n`,
      ),
    reason: /is a vmdk image/,
  },
  'vpc (VHD)': { build: (f) => qemuImg('create', '-q', '-f', 'vpc', f, '16M'), reason: /is a vpc \(VHD\) image/ },
  vhdx: { build: (f) => qemuImg('create', '-q', '-f', 'vhdx', f, '16M'), reason: /is a vhdx image/ },
  vdi: { build: (f) => qemuImg('create', '-q', '-f', 'vdi', f, '16M'), reason: /is a vdi image/ },
  'qed with a backing file': { build: (f) => qemuImg('create', '-q', '-f', 'qed', '-u', '-b', secret, '-F', 'raw', f, '16M'), reason: /is a qed image/ },
  parallels: { build: (f) => qemuImg('create', '-q', '-f', 'parallels', f, '16M'), reason: /is a parallels image/ },
  luks: {
    build: (f) => qemuImgTimingPbkdf('create', '-q', '--object', 'secret,id=s0,data=pw', '-f', 'luks', '-o', 'key-secret=s0,iter-time=10', f, '16M'),
    reason: /is a luks image/,
  },
  'a truncated qcow2 header': { build: (f) => writeFileSync(f, Buffer.from('QFI\xfb\0\0\0\x03', 'latin1')), reason: /qcow2 header is truncated/ },
  'a link to a file of the pod': { linkTo: secret, reason: /resolves to .*token, outside the image/ },
  'a link to the node handler\'s kind of socket': { linkTo: trapPath, reason: /resolves to .*trap\.sock, outside the image/ },
};

/** The QEMU process of a run and its -blockdev nodes, as QEMU got them. */
function qemuBlockdevs(run: LauncherRun): Record<string, unknown>[] {
  const pids = processesMatching(run.runDir).filter((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('qemu-system'));
  expect(pids).toHaveLength(1);
  const argv = readFileSync(`/proc/${pids[0]}/cmdline`, 'utf8').split('\0');
  return argv.flatMap((a, i) => (argv[i - 1] === '-blockdev' ? [JSON.parse(a) as Record<string, unknown>] : []));
}

async function failingStart(run: LauncherRun): Promise<LauncherCommandError> {
  try {
    await run.client.call('start');
  } catch (err) {
    if (err instanceof LauncherCommandError) return err;
    throw err;
  }
  throw new Error('the launcher started the VM');
}

describe('hostile containerDisks are refused before QEMU or qemu-img opens anything they name', () => {
  let run: LauncherRun | undefined;
  afterEach(async () => {
    await run?.stop();
    run = undefined;
  });

  it.each(Object.entries(hostile))('%s', async (name, testCase) => {
    const build = testCase.build;
    const file = build ? image(name.replace(/\W+/g, '-'), build) : undefined;
    const before = trapConnections;
    run = await startLauncher(testVmi('hostile', '', { disks: [{ name: 'root', disk: {} }], volumes: [{ name: 'root', containerDisk: { image: 'example.org/hostile:1' } }] }), {
      prepare: ({ containerDiskDir }) => {
        const diskDir = path.join(containerDiskDir, 'root', 'disk');
        mkdirSync(diskDir, { recursive: true });
        if (testCase.linkTo) symlinkSync(testCase.linkTo, path.join(diskDir, 'disk.img'));
        else copyFileSync(file as string, path.join(diskDir, 'disk.img'));
      },
    });
    const error = await failingStart(run);
    expect(error.step).toBe('volumes');
    expect(error.message).toMatch(/spec\.volumes\[0\]\.containerDisk: disk image \S+ of image example\.org\/hostile:1/);
    expect(error.message).toMatch(testCase.reason);
    expect((await run.client.call('status')).phase).toBe('Failed');
    expect(processesMatching(run.runDir)).toEqual([]);
    expect(trapConnections).toBe(before);
  });

  it('containerDisk.path through a directory linked out of the image is refused', async () => {
    run = await startLauncher(
      testVmi('hostile-path', '', { disks: [{ name: 'root', disk: {} }], volumes: [{ name: 'root', containerDisk: { image: 'example.org/hostile:1', path: '/images/token' } }] }),
      { prepare: ({ containerDiskDir }) => {
        mkdirSync(path.join(containerDiskDir, 'root'), { recursive: true });
        symlinkSync(secretDir, path.join(containerDiskDir, 'root', 'images'));
      } },
    );
    const error = await failingStart(run);
    expect(error.message).toMatch(/spec\.volumes\[0\]\.containerDisk\.path: disk image \/images\/token of image example\.org\/hostile:1 resolves to .*token, outside the image/);
  });

  it.each([
    ['raw', (f: string) => writeFileSync(f, Buffer.concat([Buffer.from(nbdJson), Buffer.alloc(1024 * 1024)]))],
    ['qcow2', (f: string) => qemuImg('create', '-q', '-f', 'qcow2', f, '16M')],
    ['qcow2', (f: string) => qemuImg('create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', f, '16M')],
  ] as const)('a self-contained %s containerDisk is the overlay\'s base, by node name, with no backing of its own', async (format, build) => {
    const file = image(`good-${randomBytes(4).toString('hex')}`, build);
    run = await startLauncher(testVmi('good', '', { disks: [{ name: 'root', disk: {} }], volumes: [{ name: 'root', containerDisk: { image: 'example.org/good:1' } }] }), {
      prepare: ({ containerDiskDir }) => {
        mkdirSync(path.join(containerDiskDir, 'root', 'disk'), { recursive: true });
        copyFileSync(file, path.join(containerDiskDir, 'root', 'disk', 'disk.img'));
      },
    });
    expect((await run.client.call('start')).phase).toBe('Running');
    const nodes = qemuBlockdevs(run);
    const base = nodes.find((n) => n['node-name'] === 'disk0-base');
    expect(base).toMatchObject({ driver: format, 'read-only': true, file: 'disk0-base-file' });
    if (format === 'qcow2') expect(base).toHaveProperty('backing', null);
    expect(nodes.find((n) => n['node-name'] === 'disk0-base-file')).toMatchObject({ driver: 'file', filename: path.join(run.containerDiskDir, 'root', 'disk', 'disk.img'), 'read-only': true });
    expect(nodes.find((n) => n['node-name'] === 'disk0-format')).toMatchObject({ driver: 'qcow2', backing: 'disk0-base' });
    // Every node QEMU opens has its driver set.
    expect(nodes.every((n) => typeof n['driver'] === 'string')).toBe(true);
    await run.client.call('kill');
  });
});

describe('kernelBoot files', () => {
  let run: LauncherRun | undefined;
  afterEach(async () => {
    await run?.stop();
    run = undefined;
  });

  it.each(['kernelPath', 'initrdPath'] as const)('a %s that links out of the kernel image is refused', async (key) => {
    const vmi = testVmi('hostile-kernel');
    const container = vmi.spec.domain.firmware?.kernelBoot?.container as { image: string; kernelPath?: string; initrdPath?: string };
    container[key] = '/boot/link';
    run = await startLauncher(vmi, {
      prepare: ({ dir }) => {
        mkdirSync(path.join(dir, 'kernel-boot', 'boot'));
        symlinkSync(secret, path.join(dir, 'kernel-boot', 'boot', 'link'));
      },
    });
    const error = await failingStart(run);
    expect(error.step).toBe('volumes');
    expect(error.message).toMatch(new RegExp(`spec\\.domain\\.firmware\\.kernelBoot\\.container\\.${key}: /boot/link of image kubevm/test-kernel resolves to .*token, outside the image`));
    expect(processesMatching(run.runDir)).toEqual([]);
  });
});

describe('a raw PVC is opened raw, whatever the guest wrote into it', () => {
  let run: LauncherRun | undefined;
  afterEach(async () => {
    await run?.stop();
    run = undefined;
  });

  // The guest finds its disk by serial (virtio-blk exposes it in sysfs).
  const findDisk = (serial: string) => `for b in /sys/block/vd*; do [ "$(cat $b/serial 2>/dev/null)" = ${serial} ] && dev=/dev/\${b##*/}; done\n`;
  const cloudInit = (script: string) => ({ name: 'cloudinit', cloudInitNoCloud: { userData: `#!/bin/sh\n${script}` } });

  it('a guest that writes a qcow2 header naming a Secret into its PVC reads its own bytes back after a restart, and never the Secret', async () => {
    // What the guest writes: a valid qcow2 header whose backing file is the Secret, as raw.
    const header = image('header.qcow2', (f) => qemuImg('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=512', '-u', '-b', secret, '-F', 'raw', f, '32M'));
    const headerBase64 = readFileSync(header).toString('base64');
    const disks = [
      { name: 'data', disk: { bus: 'virtio' }, serial: 'PVC1' },
      { name: 'cloudinit', disk: { bus: 'virtio' } },
    ];
    const claimCapacity = { volumeStatus: [{ name: 'data', persistentVolumeClaimInfo: { capacity: { storage: '32Mi' } } }] };

    // First start: the launcher creates disk.img (raw); the guest writes the header into it.
    const first: LauncherVmi = testVmi('pvc-writer', 'kubevm.counter=0', {
      disks,
      volumes: [
        { name: 'data', persistentVolumeClaim: { claimName: 'data' } },
        cloudInit(`${findDisk('PVC1')}echo ${headerBase64} | base64 -d | dd of=$dev conv=notrunc,fsync 2>/dev/null\nsync\necho "KUBEVM-HEADER-WRITTEN $dev $(head -c 4 $dev | xxd -p)"\n`),
      ],
    });
    (first as LauncherVmi & { status: object }).status = claimCapacity;
    run = await startLauncher(first, { prepare: ({ pvcDir }) => mkdirSync(path.join(pvcDir, 'data')) });
    await run.client.call('start');
    await run.waitForSerial(/KUBEVM-HEADER-WRITTEN \/dev\/vd\w 514649fb/, 90_000);
    expect(qemuBlockdevs(run).find((n) => n['node-name'] === 'disk0-format')).toMatchObject({ driver: 'raw' });
    await run.client.call('kill');
    const written = path.join(work, 'pvc-disk.img');
    copyFileSync(path.join(run.pvcDir, 'data', 'disk.img'), written);
    await run.stop();
    run = undefined;
    // The attack is real: a launcher that probed would now open the Secret as the disk's backing.
    const probed = JSON.parse(qemuImg('info', '--output=json', '-U', written)) as { format: string; 'backing-filename'?: string };
    expect(probed).toMatchObject({ format: 'qcow2', 'backing-filename': secret });

    // Second start on the same claim, and the same bytes as the base of an ephemeral volume: the
    // guest sees its own header, and the Secret on none of its disks.
    // The kernel command line is the user's: commas and option-like words in it stay in it.
    const kernelArgs = `kubevm.counter=0 kubevm.note=a,romfile=${secret},,b`;
    const second: LauncherVmi = testVmi('pvc-reader', kernelArgs, {
      disks: [...disks, { name: 'eph', disk: { bus: 'virtio' }, serial: 'EPH1' }],
      volumes: [
        { name: 'data', persistentVolumeClaim: { claimName: 'data' } },
        // The marker is put together in the guest, so the script itself does not contain it.
        cloudInit(
          `${findDisk('PVC1')}echo "KUBEVM-PVC magic=$(head -c 4 $dev | xxd -p)"\n` +
            'echo "KUBEVM-CMDLINE $(cat /proc/cmdline)"\n' +
            `m="${marker.slice(0, 10)}""${marker.slice(10)}"\nn=0\n` +
            'for d in /dev/vd? /dev/sd? /dev/sr?; do [ -b "$d" ] || continue; if grep -q "$m" "$d"; then n=$((n+1)); echo "KUBEVM-LEAK $d"; fi; done\n' +
            'echo "KUBEVM-SECRET-SCAN devices=$(ls /dev/vd? | wc -l) found=$n"\n',
        ),
        { name: 'eph', ephemeral: { persistentVolumeClaim: { claimName: 'golden' } } },
      ],
    });
    run = await startLauncher(second, {
      prepare: ({ pvcDir }) => {
        for (const volume of ['data', 'eph']) {
          mkdirSync(path.join(pvcDir, volume));
          copyFileSync(written, path.join(pvcDir, volume, 'disk.img'));
        }
      },
    });
    await run.client.call('start');
    const nodes = qemuBlockdevs(run);
    expect(nodes.find((n) => n['node-name'] === 'disk0-format')).toMatchObject({ driver: 'raw', file: 'disk0-file' });
    expect(nodes.find((n) => n['node-name'] === 'disk2-base')).toMatchObject({ driver: 'raw', 'read-only': true });
    expect(nodes.find((n) => n['node-name'] === 'disk2-format')).toMatchObject({ driver: 'qcow2', backing: 'disk2-base' });
    expect(nodes.some((n) => n['filename'] === secret)).toBe(false);
    await run.waitForSerial(/KUBEVM-PVC magic=514649fb/, 90_000);
    expect((await run.waitForSerial(/KUBEVM-CMDLINE (.*)/, 10_000))[1]?.trim()).toBe(`console=ttyS0 quiet ${kernelArgs}`);
    const scan = await run.waitForSerial(/KUBEVM-SECRET-SCAN devices=(\d+) found=(\d+)/, 60_000);
    expect(scan[1]).toBe('3');
    expect(scan[2]).toBe('0');
    expect(run.serialLog()).not.toContain(marker);
    await run.client.call('kill');
  });
});

// The test guest's kernel must exist before any launcher starts (built once, cached).
beforeAll(() => {
  testGuests();
});
