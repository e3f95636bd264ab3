// KSM on a KSM directory of our own (the real one is the host's: test/e2e/node-handler-node.test.ts
// turns it on and off through the installed node handler).
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { reconcileKsm } from './ksm.js';
import type { KsmInput } from './ksm.js';

let ksmDir: string;
const run = () => readFile(path.join(ksmDir, 'run'), 'utf8');
const selectsA = { nodeLabelSelector: { matchLabels: { ksm: 'a' } } };
const input = (over: Partial<KsmInput>): KsmInput => ({ ksmDir, configuration: undefined, nodeLabels: { ksm: 'a' }, managedBefore: false, ...over });

beforeEach(async () => {
  ksmDir = await mkdtemp(path.join(tmpdir(), 'ksm-'));
  await writeFile(path.join(ksmDir, 'run'), '0\n');
});
afterEach(() => rm(ksmDir, { recursive: true, force: true }));

describe('reconcileKsm', () => {
  it('leaves KSM off without a ksmConfiguration, and with one that selects no node', async () => {
    expect(await reconcileKsm(input({}))).toMatchObject({ running: false, managed: false, reason: 'NotSelected' });
    expect(await reconcileKsm(input({ configuration: {} }))).toMatchObject({ running: false, reason: 'NotSelected' });
    expect(await reconcileKsm(input({ configuration: selectsA, nodeLabels: { ksm: 'b' } }))).toMatchObject({ running: false, reason: 'NotSelected' });
    expect(await run()).toBe('0\n');
  });

  it('turns KSM on where the selector selects the node (an empty selector: every node), and marks it as kubevm\'s', async () => {
    expect(await reconcileKsm(input({ configuration: selectsA }))).toMatchObject({ running: true, managed: true, reason: 'EnabledBySelector' });
    expect(await run()).toBe('1\n');
    await writeFile(path.join(ksmDir, 'run'), '0\n');
    expect(await reconcileKsm(input({ configuration: { nodeLabelSelector: {} }, nodeLabels: {} }))).toMatchObject({ running: true, managed: true });
    expect(await run()).toBe('1\n');
  });

  it('turns off only the KSM it turned on; an admin\'s own stays on and is reported', async () => {
    await writeFile(path.join(ksmDir, 'run'), '1\n');
    expect(await reconcileKsm(input({ configuration: selectsA, nodeLabels: {}, managedBefore: false }))).toMatchObject({ running: true, managed: false, reason: 'EnabledOutsideKubevm' });
    expect(await run()).toBe('1\n');
    expect(await reconcileKsm(input({ configuration: undefined, managedBefore: true }))).toMatchObject({ running: false, managed: false, reason: 'NotSelected', message: expect.stringMatching(/turned off/) });
    expect(await run()).toBe('0\n');
  });

  it('says so when the kernel has no KSM', async () => {
    expect(await reconcileKsm(input({ ksmDir: path.join(ksmDir, 'absent'), configuration: selectsA }))).toMatchObject({ running: undefined, managed: false, reason: 'Unavailable' });
  });

  it('says so when the switch can be read but not written (read-only sysfs), and does not claim KSM', async () => {
    // A kernel file nobody may write, root included, stands in for the container's read-only /sys.
    await rm(path.join(ksmDir, 'run'));
    await symlink('/proc/sys/kernel/cap_last_cap', path.join(ksmDir, 'run'));
    const outcome = await reconcileKsm(input({ configuration: { nodeLabelSelector: {} } }));
    expect(outcome).toMatchObject({ running: false, managed: false, reason: 'NotWritable', message: expect.stringMatching(/could not be turned on: .*(EACCES|EPERM|EROFS|EIO)/) });
  });
});
