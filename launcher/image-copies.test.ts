import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { silentLogger } from '../runtime/logging.js';
import { IMAGE_COPY_LIFELINE } from '../runtime/contracts/launcher-pod.js';
import { holdLifeline, waitForImageCopies } from './image-copies.js';
import { parseLauncherVmi } from './vmi.js';

const vmi = parseLauncherVmi(
  JSON.stringify({
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'copies', namespace: 'ns', uid: 'u' },
    spec: {
      domain: { firmware: { kernelBoot: { container: { image: 'k:1', kernelPath: '/vmlinuz' } } }, devices: { disks: [] } },
      volumes: [{ name: 'root', containerDisk: { image: 'cd:1' } }],
    },
  }),
  'vmi.json',
);

let dir: string;
beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'kubevm-copies-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('waiting for the image copies beside the launcher', () => {
  test('resolves once every copy reported ok, not before', async () => {
    let done = false;
    const waiting = waitForImageCopies(vmi, dir, silentLogger).then(() => (done = true));
    writeFileSync(path.join(dir, 'container-disk-root'), 'ok\n');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(done).toBe(false);
    writeFileSync(path.join(dir, 'kernel-boot'), 'ok\n');
    await waiting;
    expect(done).toBe(true);
  });

  test("fails with the failed copy's own message, naming the field", async () => {
    writeFileSync(path.join(dir, 'kernel-boot'), 'failed\nspec.domain.firmware.kernelBoot.container.kernelPath: "/x" does not exist in the image\n');
    await expect(waitForImageCopies(vmi, dir, silentLogger)).rejects.toThrow('spec.domain.firmware.kernelBoot.container.kernelPath: "/x" does not exist in the image');
  });

  test('reads no file outside its directory for a volume name that is a path (a VMI nobody admitted)', async () => {
    const copies = path.join(dir, 'copies');
    mkdirSync(copies);
    mkdirSync(path.join(dir, 'elsewhere'));
    writeFileSync(path.join(dir, 'elsewhere', 'loot'), 'failed\nthe content of a file outside\n');
    const hostile = { ...vmi, spec: { ...vmi.spec, domain: { devices: {} }, volumes: [{ name: 'x/../../elsewhere/loot', containerDisk: { image: 'cd:1' } }] } };
    const waiting = waitForImageCopies(hostile, copies, silentLogger, 200);
    await expect(waiting).rejects.toThrow('"x/../../elsewhere/loot" must be a DNS label');
    await expect(waiting).rejects.not.toThrow('the content of a file outside');
  });

  test('gives up after its timeout, naming the copies still missing', async () => {
    writeFileSync(path.join(dir, 'kernel-boot'), 'ok\n');
    await expect(waitForImageCopies(vmi, dir, silentLogger, 100)).rejects.toThrow('the copies of container-disk-root did not finish');
  });
});

test('a reader of the lifeline reads end of file once the holder closes it, not before', async () => {
  execFileSync('mkfifo', [path.join(dir, IMAGE_COPY_LIFELINE)]);
  const fd = holdLifeline(dir, silentLogger);
  expect(fd).toBeDefined();
  const reader = spawn('cat', [path.join(dir, IMAGE_COPY_LIFELINE)]);
  const exited = new Promise<number | null>((resolve) => reader.on('exit', resolve));
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(reader.exitCode).toBeNull();
  closeSync(fd as number);
  expect(await exited).toBe(0);
  expect(holdLifeline(path.join(dir, 'missing'), silentLogger)).toBeUndefined();
});
