// The launcher boots the test guest under real QEMU (as uid 107), pauses and resumes it, resets it,
// proxies its serial console (a second client replacing the first), and shuts it down through ACPI within the grace period.
import { jest } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { DOMAIN_NOT_RUNNING_STEP } from '../../runtime/contracts/launcher-protocol.js';
import type { DomainEvent } from '../../runtime/contracts/launcher-protocol.js';
import { lastCount, openLauncherStream, processesMatching, startLauncher, testVmi, waitForEvent } from './harness.js';
import type { LauncherRun } from './harness.js';

jest.setTimeout(120_000);

describe('launcher lifecycle (real QEMU, TCG)', () => {
  let run: LauncherRun | undefined;
  afterEach(async () => {
    await run?.stop();
    run = undefined;
  });

  it('boots, pauses, unpauses, resets, serves the console and shuts down gracefully', async () => {
    run = await startLauncher(testVmi('lifecycle', '', { grace: 30 }));
    const { client } = run;
    const events: DomainEvent[] = [];
    client.on('event', (e: DomainEvent) => events.push(e));
    expect((await client.subscribe()).phase).toBe('Pending');
    // No QEMU yet: a console is refused as the domain's state (the node handler answers 409), not as a fault.
    await expect(openLauncherStream(`${run.runDir}/launcher.sock`, 'console')).rejects.toMatchObject({ step: DOMAIN_NOT_RUNNING_STEP, message: 'launcher console: the domain is Pending, not running' });

    const started = Date.now();
    const status = await client.call('start');
    expect(status.phase).toBe('Running');
    expect(status.accelerator?.accel).toBe('tcg');
    expect(status.conditions).toContainEqual(expect.objectContaining({ type: 'Emulated', status: 'True', reason: 'TCG' }));
    // QEMU runs as the pod's user, not root.
    const qemuUid = readFileSync(`/proc/${status.qemuPid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)?.[1];
    expect(qemuUid).toBe('107');
    await run.waitForSerial(/KUBEVM-GUEST-BOOTED/, 60_000);
    await run.waitForSerial(/KUBEVM-COUNT 1\b/, 30_000);
    const bootSeconds = (Date.now() - started) / 1000;
    expect(bootSeconds).toBeLessThan(60);

    // Pause: QEMU says paused and the guest's counter stops.
    const paused = await client.call('pause');
    expect(paused.phase).toBe('Paused');
    expect(paused.qemuStatus).toBe('paused');
    expect(paused.conditions).toContainEqual(expect.objectContaining({ type: 'Paused', status: 'True', reason: 'PausedByUser' }));
    const atPause = lastCount(run.serialLog());
    await new Promise((r) => setTimeout(r, 2500));
    expect(lastCount(run.serialLog())).toBe(atPause);
    // Unpause: the counter continues.
    const resumed = await client.call('unpause');
    expect(resumed.phase).toBe('Running');
    expect(resumed.qemuStatus).toBe('running');
    await run.waitForSerial(new RegExp(`KUBEVM-COUNT ${atPause + 2}\\b`), 15_000);
    expect(events.map((e) => e.status.phase)).toEqual(expect.arrayContaining(['Starting', 'Running', 'Paused']));

    // The console stream is the guest's serial port.
    const sock = `${run.runDir}/launcher.sock`;
    const consoleStream = await openLauncherStream(sock, 'console');
    const seen = await new Promise<string>((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new Error(`console showed only: ${text}`)), 10_000);
      consoleStream.on('data', (d: Buffer) => {
        text += d.toString();
        if (/KUBEVM-COUNT \d+/.test(text)) {
          clearTimeout(timer);
          resolve(text);
        }
      });
    });
    expect(seen).toMatch(/KUBEVM-COUNT/);
    // A second console replaces the first, as KubeVirt's does.
    const firstClosed = new Promise((resolve) => consoleStream.once('close', resolve));
    const second = await openLauncherStream(sock, 'console');
    await firstClosed;
    await new Promise<void>((resolve) => second.on('data', (d: Buffer) => /KUBEVM-COUNT \d+/.test(d.toString()) && resolve()));
    second.destroy();

    // Reset: the guest boots again.
    await client.call('reset');
    await run.waitForSerial(/KUBEVM-GUEST-BOOTED[\s\S]*KUBEVM-GUEST-BOOTED[\s\S]*KUBEVM-READY/, 60_000);

    // Graceful shutdown: ACPI power button, the guest powers itself off well within the grace period.
    const t0 = Date.now();
    const result = await client.call('shutdown', { gracePeriodSeconds: 30 });
    expect(result.graceful).toBe(true);
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(result.status.phase).toBe('Succeeded');
    expect(result.status.reason).toBe('Shutdown');
    expect(run.serialLog()).toMatch(/KUBEVM-POWEROFF acpi power button/);
    expect((await run.exited).code).toBe(0);
    expect(processesMatching(run.runDir)).toEqual([]);
  });

  it('on SIGTERM, stops a guest that ignores ACPI by force after the grace period', async () => {
    run = await startLauncher(testVmi('forced', 'kubevm.acpi=ignore', { grace: 4 }));
    const { client } = run;
    await client.subscribe();
    expect((await client.call('start')).phase).toBe('Running');
    await run.waitForSerial(/KUBEVM-ACPI ignoring power button/, 60_000);
    await run.waitForSerial(/KUBEVM-READY/, 30_000);
    const finalEvent = waitForEvent(client, (e) => e.status.phase === 'Succeeded', 30_000);
    const t0 = Date.now();
    run.proc.kill('SIGTERM');
    const ended = await finalEvent;
    const took = (Date.now() - t0) / 1000;
    expect(ended.status.reason).toBe('Destroyed');
    // Not before the grace period (4 s) and not much after it.
    expect(took).toBeGreaterThanOrEqual(4);
    expect(took).toBeLessThan(15);
    expect(run.serialLog()).not.toMatch(/KUBEVM-POWEROFF/);
    expect((await run.exited).code).toBe(0);
    expect(processesMatching(run.runDir)).toEqual([]);
  });
});
