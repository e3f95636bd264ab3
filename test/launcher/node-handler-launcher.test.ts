// The node handler's launcher client against a REAL launcher process (launcher/main.ts, real QEMU
// under TCG, as uid 107), reached the way the DaemonSet reaches it: through the kubelet's pod
// directory layout (ADR 0007). Shows: the handler's cache is fed by the launcher's pushed events
// (no polling), the VMI status computed from it (Running, Emulation, Paused, Succeeded, and a
// failed start's step and QEMU's own words), forwarded intents (pause, soft reboot), a handler restart that
// re-attaches to the running VM without disturbing it, and the attach to a launcher that starts after
// the handler asked for it: on the socket's appearance (the directory watch), or by the retries when
// the watch reports nothing.
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { VirtualMachineInstance } from '../../runtime/api/index.js';
import { DomainStateCache } from '../../node-handler/domain-state.js';
import type { DomainState } from '../../node-handler/domain-state.js';
import { launcherDialer, watchLauncherSocketDirectory } from '../../node-handler/launcher-client.js';
import { LauncherConnections } from '../../node-handler/launcher-connections.js';
import type { LauncherConnectionsOptions, LauncherSocketWatcher } from '../../node-handler/launcher-connections.js';
import { computeVmiStatus } from '../../node-handler/vmi-status.js';
import { lastCount, makePodsDir, startLauncher, testVmi } from './harness.js';
import type { LauncherRun, PodsDir } from './harness.js';
import { eventually } from '../support/eventually.js';

jest.setTimeout(180_000);

const key = 'launcher-test/nh';
// Short: the launcher listens on the socket's full path, which must fit sun_path (108 bytes).
const podUid = 'pod-0f0e0d0c';

function scheduledVmi(name: string): VirtualMachineInstance {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: 'launcher-test' },
    spec: { domain: { devices: {} } },
    status: { phase: 'Scheduled', nodeName: 'node1', activePods: { [podUid]: 'node1' } },
  };
}

describe('node handler ↔ real launcher', () => {
  let run: LauncherRun | undefined;
  let pods: PodsDir | undefined;
  let connections: LauncherConnections | undefined;

  afterEach(async () => {
    connections?.closeAll();
    await run?.stop();
    pods?.remove();
    run = undefined;
    pods = undefined;
    connections = undefined;
  });

  /** Connections as the node handler's main makes them (the real dialer and directory watch). */
  function attach(domains: DomainStateCache, vmiKey = key, options: Partial<LauncherConnectionsOptions> = {}): LauncherConnections {
    const attached = new LauncherConnections({ dial: launcherDialer(), watch: watchLauncherSocketDirectory, domains, podsDir: (pods as PodsDir).path, ...options });
    attached.ensure(vmiKey, podUid);
    return attached;
  }

  /** The connections' log, to see what made the attach happen. */
  function attachLog(): { log: pino.Logger; triggers: () => string[] } {
    const triggers: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) {
          const entry = JSON.parse(line) as { msg?: string; trigger?: string };
          if (entry.msg === 'attached to launcher') triggers.push(String(entry.trigger));
        }
        done();
      },
    });
    return { log: pino({ level: 'info' }, stream), triggers: () => triggers };
  }

  // A watch that misses every event (inotify's queue overflowed, the directory was replaced).
  const deafWatch: LauncherSocketWatcher = () => ({ close: () => undefined });
  const cases: Array<[string, LauncherSocketWatcher, { first: number; longest: number }, string]> = [
    // Retries a minute apart: within the wait below only the directory watch can attach.
    ['as its socket appears (the directory watch)', watchLauncherSocketDirectory, { first: 60_000, longest: 60_000 }, 'socket-event'],
    ['by its retries when the directory watch reports nothing', deafWatch, { first: 100, longest: 500 }, 'retry'],
  ];
  it.each(cases)('attaches to a launcher that starts after the handler asked, %s', async (_case, watch, retryDelayMs, trigger) => {
    pods = makePodsDir();
    const runDir = pods.privateDir(podUid);
    const domains = new DomainStateCache();
    const { log, triggers } = attachLog();
    connections = attach(domains, key, { watch, retryDelayMs, log });
    await eventually('the first dial to find no launcher', 5000, () => connections?.lastError(key) !== undefined);
    run = await startLauncher(testVmi('nh'), { runDir });
    await eventually(() => `the session (last dial error: ${connections?.lastError(key)})`, 15_000, () => connections?.session(key, podUid) !== undefined);
    expect(triggers()).toEqual([trigger]);
    expect(domains.get(key)?.phase).toBe('Pending');
  });

  it('follows the domain from Pending to Running, through pause, a handler restart and a shutdown', async () => {
    pods = makePodsDir();
    run = await startLauncher(testVmi('nh', '', { grace: 30 }), { runDir: pods.privateDir(podUid) });
    const domains = new DomainStateCache();
    const seen: DomainState['phase'][] = [];
    domains.onChange((changed) => {
      const phase = domains.get(changed)?.phase;
      if (phase && seen.at(-1) !== phase) seen.push(phase);
    });
    connections = attach(domains);
    await eventually(() => `the session (last dial error: ${connections?.lastError(key)})`, 15_000, () => connections?.session(key, podUid) !== undefined);
    expect(domains.get(key)?.phase).toBe('Pending');

    const session = connections.session(key, podUid);
    void session?.start();
    await eventually('Running from the launcher’s events', 90_000, () => domains.get(key)?.phase === 'Running');
    expect(seen).toEqual(['Pending', 'Starting', 'Running']);
    const running = domains.get(key) as DomainState;
    expect(running.accelerator).toBe('tcg');
    const vmi = scheduledVmi('nh');
    const status = computeVmiStatus(vmi, running);
    expect(status.phase).toBe('Running');
    expect(status.conditions?.find((c) => c.type === 'kubevm.io/Emulation')).toMatchObject({ status: 'True', reason: 'TCG' });
    expect(status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True' });
    await run.waitForSerial(/KUBEVM-COUNT 1\b/, 60_000);

    await session?.pause();
    await eventually('Paused', 15_000, () => domains.get(key)?.phase === 'Paused');
    expect(domains.get(key)?.pauseReason).toBe('User');
    expect(computeVmiStatus({ ...vmi, status }, domains.get(key)).conditions?.find((c) => c.type === 'Paused')).toMatchObject({ status: 'True', reason: 'PausedByUser' });
    await session?.unpause();
    await eventually('Running again', 15_000, () => domains.get(key)?.phase === 'Running');

    // A soft reboot request reaches the launcher as its softReboot: the guest (no agent) goes down
    // its own way through ACPI and boots again in the same QEMU; the domain is never seen stopping.
    const phasesBefore = seen.length;
    await session?.softReboot();
    await run.waitForSerial(/KUBEVM-POWEROFF acpi power button[\s\S]*KUBEVM-GUEST-BOOTED[\s\S]*KUBEVM-COUNT 1\b/, 60_000);
    expect(domains.get(key)?.phase).toBe('Running');
    expect(seen.slice(phasesBefore)).toEqual([]);

    // A handler restart: the connection goes, a new handler (new cache) attaches; the VM runs on.
    const before = lastCount(run.serialLog());
    connections.closeAll();
    const restarted = new DomainStateCache();
    connections = attach(restarted);
    await eventually('re-attached state', 15_000, () => restarted.get(key)?.phase === 'Running');
    await run.waitForSerial(new RegExp(`KUBEVM-COUNT ${before + 2}\\b`), 20_000);
    expect(computeVmiStatus({ ...vmi, status }, restarted.get(key)).phase).toBe('Running');

    // Shutdown as on VMI deletion: ACPI, the guest powers off, the domain ends Succeeded.
    await connections.session(key, podUid)?.shutdown(30);
    await eventually('Shutoff', 30_000, () => restarted.get(key)?.phase === 'Shutoff');
    expect(restarted.get(key)?.shutoffReason).toBe('Stopped');
    expect(computeVmiStatus({ ...vmi, status }, restarted.get(key)).phase).toBe('Succeeded');
  });

  it('reports a failed start with the step and QEMU’s own last lines', async () => {
    // A CPU model QEMU does not know: QEMU itself refuses to start and says why.
    const badKey = 'launcher-test/nh-bad';
    const vmi = testVmi('nh-bad');
    vmi.spec.domain.cpu = { ...vmi.spec.domain.cpu, model: 'No-Such-CPU-9000' };
    pods = makePodsDir();
    run = await startLauncher(vmi, { runDir: pods.privateDir(podUid) });
    const domains = new DomainStateCache();
    connections = attach(domains, badKey);
    await eventually(() => `the session (last dial error: ${connections?.lastError(badKey)})`, 15_000, () => connections?.session(badKey, podUid) !== undefined);
    await connections.session(badKey, podUid)?.start().catch(() => undefined);
    await eventually('Failed', 60_000, () => domains.get(badKey)?.phase === 'Failed');
    const failed = domains.get(badKey) as DomainState;
    expect(failed.failure?.message).toMatch(/^qmp-connect: QEMU exited during start .*; QEMU said: .*unable to find CPU model 'No-Such-CPU-9000'/);
    const status = computeVmiStatus(scheduledVmi('nh-bad'), failed);
    expect(status.phase).toBe('Failed');
    expect(status.conditions?.find((c) => c.type === 'Synchronized')).toMatchObject({ status: 'False', message: expect.stringContaining('No-Such-CPU-9000') });
  });
});
