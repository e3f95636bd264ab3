// The guest agent subresources below the api-server, every part real: the api-server's
// node-handler client (nodeGuestAgent, api-server/node-streams.ts) → mutual TLS with the
// certificates the operator issues (operator/pki.ts) → the node handler's endpoint (node-handler/stream-server.ts) → a
// REAL launcher and QEMU (TCG) → Debian's qemu-guest-agent in the test guest (kubevm.agent=qemu-ga)
// with an ext4 disk mounted (kubevm.disk=keep). Shows: userlist and filesystemlist in KubeVirt's
// shapes; a freeze that really blocks the guest's writes until unfreeze; the frozen state pushed in
// the launcher's status; an unfreezeTimeout that thaws the guest without an unfreeze; and a soft
// reboot through the agent.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type net from 'node:net';
import { NodeStreams, nodeGuestAgent } from '../../api-server/node-streams.js';
import { StreamServer } from '../../node-handler/stream-server.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually } from '../support/eventually.js';
import { issuedStreamSecrets, makePodsDir, serveNodeStreams, openLauncherStream, startLauncher, testGuests, testVmi, waitForEvent } from './harness.js';
import type { LauncherRun, PodsDir } from './harness.js';

jest.setTimeout(180_000);

const podUid = 'pod-agent-cmds';
const node = 'node1';
const namespace = 'launcher-test';
const name = 'agentcmds';
const vmiRef = { namespace, name };

let run: LauncherRun;
let pods: PodsDir;
let server: StreamServer;
let streams: NodeStreams;
let shell: net.Socket;

beforeAll(async () => {
  pods = makePodsDir();
  const vmi = testVmi(name, 'kubevm.agent=qemu-ga kubevm.disk=keep kubevm.shell kubevm.counter=0', {
    disks: [{ name: 'root', disk: { bus: 'virtio' } }],
    volumes: [{ name: 'root', containerDisk: { image: 'kubevm/test-containerdisk:latest' } }],
  });
  run = await startLauncher(vmi, {
    runDir: pods.privateDir(podUid),
    env: { KUBEVM_GUEST_AGENT_POLL_SECONDS: '1' },
    prepare: ({ containerDiskDir }) => {
      mkdirSync(path.join(containerDiskDir, 'root', 'disk'), { recursive: true });
      copyFileSync(testGuests().diskQcow2, path.join(containerDiskDir, 'root', 'disk', 'disk.qcow2'));
    },
  });
  await run.client.subscribe();
  const connected = waitForEvent(run.client, (e) => e.status.guestInfo?.agentConnected === true, 120_000);
  expect((await run.client.call('start')).phase).toBe('Running');
  await run.waitForSerial(/KUBEVM-DISK mounted on \/mnt\/disk/, 90_000);
  await run.waitForSerial(/KUBEVM-AGENT qemu-ga on \/dev\/vport\w+/, 30_000);
  await run.waitForSerial(/KUBEVM-READY/, 30_000);
  await connected;

  const served = await serveNodeStreams({ pki: issuedStreamSecrets(), pods, podUid, node, namespace, name });
  ({ server, streams } = served);
  shell = await openLauncherStream(`${run.runDir}/launcher.sock`, 'console');
  shell.on('data', () => undefined);
});

afterAll(async () => {
  shell?.destroy();
  await server?.close();
  await run?.stop();
  pods?.remove();
});

/** Types a write into /mnt/disk in the guest's shell, in the background; it prints `marker` when done. */
function writeInGuest(marker: string): void {
  shell.write(`(echo data > /mnt/disk/${marker} && echo ${marker}-DONE-$((40+2))) &\r`);
}

const doneCount = (marker: string): number => run.serialLog().split(`${marker}-DONE-42`).length - 1;

describe('guest agent commands through the node handler (real QEMU, real qemu-ga)', () => {
  it('lists the logged-in users and the mounted filesystems in KubeVirt\'s shapes', async () => {
    const users = await nodeGuestAgent(streams, node, { kind: 'userlist', ...vmiRef });
    // The guest's utmp record (guest-init.sh): user kubevm, logged in at boot.
    expect(users.items).toEqual([{ userName: 'kubevm', loginTime: expect.any(Number) }]);
    expect(users.items[0]?.loginTime).toBeGreaterThan(1_600_000_000);

    const filesystems = await nodeGuestAgent(streams, node, { kind: 'filesystemlist', ...vmiRef });
    expect(filesystems.items).toEqual([
      { diskName: 'vda', mountPoint: '/mnt/disk', fileSystemType: 'ext4', usedBytes: expect.any(Number), totalBytes: expect.any(Number), disk: [{ busType: 'virtio' }] },
    ]);
    const [disk] = filesystems.items;
    expect(disk?.totalBytes).toBeGreaterThan(40 * 1024 * 1024);
    expect(disk?.usedBytes).toBeGreaterThan(0);
    expect(disk?.usedBytes).toBeLessThan(disk?.totalBytes ?? 0);
  });

  it('freeze blocks the guest\'s writes until unfreeze; the frozen state is pushed in the status', async () => {
    const frozenEvent = waitForEvent(run.client, (e) => e.status.guestInfo?.fsFreezeStatus === 'frozen', 30_000);
    expect(await nodeGuestAgent(streams, node, { kind: 'freeze', ...vmiRef, unfreezeTimeoutSeconds: 0 })).toEqual({ fsFreezeStatus: 'frozen' });
    const frozen = await frozenEvent;
    // What the agent said before the freeze still stands while it refuses to say it again.
    expect(frozen.status.guestInfo).toMatchObject({ agentConnected: true, hostname: 'kubevm-agent-guest' });
    // A second freeze is a no-op, as KubeVirt's.
    expect(await nodeGuestAgent(streams, node, { kind: 'freeze', ...vmiRef, unfreezeTimeoutSeconds: 0 })).toEqual({ fsFreezeStatus: 'frozen' });
    // The frozen agent refuses guest-get-fsinfo: the last list read is answered, as KubeVirt does.
    expect((await nodeGuestAgent(streams, node, { kind: 'filesystemlist', ...vmiRef })).items).toMatchObject([{ mountPoint: '/mnt/disk' }]);

    writeInGuest('KUBEVM-FROZEN-WRITE');
    // Proving a write does NOT finish takes time: several agent polls go by; it stays blocked.
    await sleep(4000);
    expect(doneCount('KUBEVM-FROZEN-WRITE')).toBe(0);
    expect((await run.client.call('status')).guestInfo?.fsFreezeStatus).toBe('frozen');

    const thawedEvent = waitForEvent(run.client, (e) => e.status.guestInfo?.fsFreezeStatus === 'thawed', 30_000);
    expect(await nodeGuestAgent(streams, node, { kind: 'unfreeze', ...vmiRef })).toEqual({ fsFreezeStatus: 'thawed' });
    await thawedEvent;
    await run.waitForSerial(/KUBEVM-FROZEN-WRITE-DONE-42/, 30_000);
    // Unfreezing a thawed guest is a no-op.
    expect(await nodeGuestAgent(streams, node, { kind: 'unfreeze', ...vmiRef })).toEqual({ fsFreezeStatus: 'thawed' });
  });

  it('a freeze with an unfreezeTimeout thaws by itself when no unfreeze comes', async () => {
    const frozenAt = Date.now();
    expect(await nodeGuestAgent(streams, node, { kind: 'freeze', ...vmiRef, unfreezeTimeoutSeconds: 3 })).toEqual({ fsFreezeStatus: 'frozen' });
    writeInGuest('KUBEVM-TIMED-WRITE');
    await waitForEvent(run.client, (e) => e.status.guestInfo?.fsFreezeStatus === 'thawed', 30_000);
    expect(Date.now() - frozenAt).toBeGreaterThanOrEqual(3000);
    await run.waitForSerial(/KUBEVM-TIMED-WRITE-DONE-42/, 30_000);
    expect(run.output.some((line) => line.includes('unfreeze was not called within the unfreeze timeout'))).toBe(true);
  });

  it('an unfreeze cancels the automatic thaw', async () => {
    await nodeGuestAgent(streams, node, { kind: 'freeze', ...vmiRef, unfreezeTimeoutSeconds: 2 });
    await nodeGuestAgent(streams, node, { kind: 'unfreeze', ...vmiRef });
    const before = run.output.filter((line) => line.includes('unfreeze was not called')).length;
    // Proving the thaw does NOT come: past the 2 s it was set for.
    await sleep(3500);
    expect(run.output.filter((line) => line.includes('unfreeze was not called')).length).toBe(before);
  });

  it('a soft reboot goes through the real agent (guest-shutdown, mode reboot) and the guest boots again', async () => {
    const boots = run.serialLog().split('KUBEVM-GUEST-BOOTED').length - 1;
    expect((await run.client.call('softReboot')).method).toBe('guest-agent');
    await run.waitForSerial(/KUBEVM-AGENT-SHUTDOWN mode=reboot/, 30_000);
    await eventually('the guest booted again', 120_000, async () => run.serialLog().split('KUBEVM-GUEST-BOOTED').length - 1 === boots + 1);
  });

  it('the node handler refuses a VMI it does not run, with the reason', async () => {
    await expect(nodeGuestAgent(streams, node, { kind: 'userlist', namespace, name: 'other' })).rejects.toMatchObject({ code: 404, message: expect.stringContaining('is not on node node1') });
  });
});
