// Soft reboot (KubeVirt's softreboot) against real QEMU: the guest's own shutdown path runs (its
// marker appears on the serial console) and the guest boots again in the same QEMU process;
// through the guest agent when one answers, otherwise through ACPI. `reset` stays the hard reset:
// the guest goes down without running its shutdown path.
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { processesMatching, startLauncher, testVmi } from './harness.js';
import type { LauncherRun } from './harness.js';

jest.setTimeout(150_000);

const count = (text: string, marker: RegExp) => [...text.matchAll(new RegExp(marker.source, 'g'))].length;

describe('launcher soft reboot (real QEMU, TCG)', () => {
  let run: LauncherRun | undefined;
  afterEach(async () => {
    await run?.stop();
    run = undefined;
  });

  it('without an agent: ACPI, the guest shuts down its own way and boots again; reset does not run that path', async () => {
    run = await startLauncher(testVmi('acpi-reboot', 'kubevm.counter=0', { grace: 30 }));
    const started = await run.client.call('start');
    expect(started.phase).toBe('Running');
    await run.waitForSerial(/KUBEVM-ACPI watching/, 60_000);
    await run.waitForSerial(/KUBEVM-READY/, 30_000);

    const rebooted = await run.client.call('softReboot');
    expect(rebooted.method).toBe('acpi');
    // Down its own way (the power button's shutdown path), then up again in the same QEMU.
    await run.waitForSerial(/KUBEVM-POWEROFF acpi power button[\s\S]*KUBEVM-GUEST-BOOTED[\s\S]*KUBEVM-READY/, 60_000);
    const afterSoft = await run.client.call('status');
    expect(afterSoft).toMatchObject({ phase: 'Running', qemuStatus: 'running', qemuPid: started.qemuPid });
    expect(count(run.serialLog(), /KUBEVM-GUEST-BOOTED/)).toBe(2);

    // The hard reset: the guest boots again without going through its shutdown path.
    await run.client.call('reset');
    await run.waitForSerial(/(KUBEVM-GUEST-BOOTED[\s\S]*){3}KUBEVM-READY/, 60_000);
    expect(count(run.serialLog(), /KUBEVM-POWEROFF/)).toBe(1);

    // The soft reboot left QEMU as it was: a power-off now ends it, gracefully.
    const shutdown = await run.client.call('shutdown', { gracePeriodSeconds: 30 });
    expect(shutdown).toMatchObject({ graceful: true, status: { phase: 'Succeeded', reason: 'Shutdown' } });
    expect(count(run.serialLog(), /KUBEVM-POWEROFF/)).toBe(2);
    expect((await run.exited).code).toBe(0);
    expect(processesMatching(run.runDir)).toEqual([]);
  });

  it('with an agent: guest-shutdown mode reboot, the power button untouched', async () => {
    run = await startLauncher(testVmi('agent-reboot', 'kubevm.counter=0 kubevm.agent=fake'));
    const started = await run.client.call('start');
    await run.waitForSerial(/KUBEVM-AGENT fake agent on/, 60_000);
    await run.waitForSerial(/KUBEVM-READY/, 30_000);

    const rebooted = await run.client.call('softReboot');
    expect(rebooted.method).toBe('guest-agent');
    await run.waitForSerial(/KUBEVM-AGENT-SHUTDOWN mode=reboot[\s\S]*KUBEVM-GUEST-BOOTED[\s\S]*KUBEVM-READY/, 60_000);
    expect(run.serialLog()).not.toMatch(/KUBEVM-POWEROFF/);
    expect(await run.client.call('status')).toMatchObject({ phase: 'Running', qemuPid: started.qemuPid });
    await run.client.call('kill');
  });

  it('refuses with a reason when there is neither an agent nor ACPI, and when the guest is not running', async () => {
    const vmi = testVmi('no-acpi', 'kubevm.counter=0');
    vmi.spec.domain.features = { acpi: { enabled: false } };
    run = await startLauncher(vmi);
    await expect(run.client.call('softReboot')).rejects.toThrow('launcher softReboot: the domain is Pending, not Running: a soft reboot needs a running guest');
    expect((await run.client.call('start')).phase).toBe('Running');
    await expect(run.client.call('softReboot')).rejects.toThrow(/no guest agent is connected and ACPI is disabled \(spec\.domain\.features\.acpi\.enabled: false\)/);
    expect((await run.client.call('status')).phase).toBe('Running');
    await run.client.call('kill');
  });
});
