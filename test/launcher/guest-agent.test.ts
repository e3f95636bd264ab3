// Guest information over the real org.qemu.guest_agent.0 virtio-serial channel. The guest runs a
// small shell stand-in for qemu-guest-agent (test/guests/guest-init.sh, kubevm.agent=fake); the
// launcher side (guest-sync-delimited, guest-info, guest-get-osinfo, guest-get-host-name,
// guest-network-get-interfaces) is the real one. Debian's real qemu-guest-agent, with freeze and
// the user and filesystem lists: guest-agent-commands.test.ts.
import { jest } from '@jest/globals';
import { openLauncherStream, startLauncher, testVmi, waitForEvent } from './harness.js';
import type { LauncherRun } from './harness.js';

jest.setTimeout(150_000);

describe('launcher guest agent (real QEMU, TCG)', () => {
  let run: LauncherRun | undefined;
  afterEach(async () => {
    await run?.stop();
    run = undefined;
  });

  it('reads OS info, host name and interfaces, and pushes them as they appear, past a late answer', async () => {
    // kubevm.agent.stall: the agent answers the first poll's guest-sync-delimited after that poll
    // has timed out, so the late answer comes out in the next poll's connection. It must not stop
    // that poll, nor any after it, from connecting.
    run = await startLauncher(testVmi('agent', 'kubevm.net=dhcp kubevm.agent=fake kubevm.agent.stall kubevm.counter=0'), { env: { KUBEVM_GUEST_AGENT_POLL_SECONDS: '2' } });
    await run.client.subscribe();
    const connected = waitForEvent(run.client, (e) => e.status.guestInfo?.agentConnected === true, 100_000);
    expect((await run.client.call('start')).phase).toBe('Running');
    await run.waitForSerial(/KUBEVM-AGENT fake agent on \/dev\/vport\w+/, 60_000);
    await run.waitForSerial(/KUBEVM-READY/, 30_000);
    await run.waitForSerial(/KUBEVM-AGENT stalling 3s/, 30_000);

    // Pushed by the launcher's own polling, not asked for.
    const pushed = await connected;
    expect(pushed.status.conditions).toContainEqual(expect.objectContaining({ type: 'AgentConnected', status: 'True' }));

    const info = await run.client.call('guestInfo');
    expect(info).toMatchObject({
      agentConnected: true,
      agentVersion: 'kubevm-test-agent-1',
      hostname: 'kubevm-agent-guest',
      os: { id: 'busybox', prettyName: 'kubevm busybox test guest', machine: 'x86_64' },
    });
    expect(info.os?.kernelRelease).toMatch(/cloud-amd64$/);
    // lo is left out, as KubeVirt's status.interfaces does.
    expect(info.interfaces).toMatchObject([{ interfaceName: 'eth0', ipAddress: '10.0.2.2', ipAddresses: ['10.0.2.2'] }]);
    expect(info.interfaces?.[0]?.mac).toMatch(/^52:54:00:/);

    // This agent answers the lists with what a hostile guest may send: refused, naming the field,
    // and the launcher carries on serving the guest.
    await expect(run.client.call('guestUsers')).rejects.toThrow(/guest-get-users is not valid: return\.0\.user/);
    await expect(run.client.call('guestFilesystems')).rejects.toThrow(/guest-get-fsinfo is not valid: return\.0\.mountpoint/);
    expect((await run.client.call('guestInfo')).agentConnected).toBe(true);
    expect((await run.client.call('status')).phase).toBe('Running');
    await run.client.call('kill');
  });

  it('a guest without an agent is reported as not connected, quickly; VNC is served', async () => {
    const vmi = testVmi('noagent', 'kubevm.counter=0');
    vmi.spec.domain.devices.autoattachGraphicsDevice = true;
    run = await startLauncher(vmi);
    await run.client.call('start');
    // The VNC stream is QEMU's RFB server: it greets with its protocol version.
    const vnc = await openLauncherStream(`${run.runDir}/launcher.sock`, 'vnc');
    const greeting = await new Promise<string>((resolve) => vnc.once('data', (d: Buffer) => resolve(d.toString())));
    expect(greeting).toBe('RFB 003.008\n');
    vnc.destroy();
    const t0 = Date.now();
    const info = await run.client.call('guestInfo');
    expect(info).toEqual({ agentConnected: false, interfaces: [] });
    expect(Date.now() - t0).toBeLessThan(5000);
    await expect(run.client.call('guestUsers')).rejects.toThrow(/no guest agent answers on the org.qemu.guest_agent.0 channel/);
    await expect(run.client.call('freeze', { unfreezeTimeoutSeconds: 0 })).rejects.toThrow(/no guest agent answers/);
    await run.client.call('kill');
  });
});
