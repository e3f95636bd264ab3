import { describe, expect, it } from '@jest/globals';
import type { DomainState } from './domain-state.js';
import { activePodOnNode, launcherIntents, pauseRequestAnnotation, resetRequestAnnotation, shutdownGracePeriod, softRebootRequestAnnotation, statusTransitionEvents } from './vmi-handler.js';
import type { VirtualMachineInstance } from './vmi-handler.js';

function vmi(metadata: Record<string, unknown> = {}, spec: Record<string, unknown> = {}): VirtualMachineInstance {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'vm1', namespace: 'default', ...metadata },
    spec: { domain: { devices: {} }, ...spec },
    status: { phase: 'Running', activePods: { 'pod-a': 'node1' } },
  };
}

const running: DomainState = { podUid: 'pod-a', phase: 'Running', agentConnected: false };
const paused: DomainState = { ...running, phase: 'Paused', pauseReason: 'User' };
const none = { start: false, shutdown: false };

describe('activePodOnNode', () => {
  it('finds the launcher pod on this node only', () => {
    const migrating = { ...vmi(), status: { activePods: { 'pod-a': 'node1', 'pod-b': 'node2' } } } as VirtualMachineInstance;
    expect(activePodOnNode(migrating, 'node2')).toBe('pod-b');
    expect(activePodOnNode(migrating, 'node3')).toBeUndefined();
  });
});

describe('launcherIntents', () => {
  it('starts a launcher that waits, once, and not for a VMI being deleted', () => {
    const pending: DomainState = { ...running, phase: 'Pending' };
    expect(launcherIntents(vmi(), pending, none)).toEqual([{ kind: 'start' }]);
    expect(launcherIntents(vmi(), pending, { start: true, shutdown: false })).toEqual([]);
    expect(launcherIntents(vmi({ deletionTimestamp: '2026-11-22T21:00:00Z' }), pending, none)).toEqual([]);
  });

  it('asks nothing of a running VM nobody asked anything of', () => {
    expect(launcherIntents(vmi(), running, none)).toEqual([]);
  });

  it('converges the pause state to the request', () => {
    const wantsPause = vmi({ annotations: { [pauseRequestAnnotation]: 'true' } });
    expect(launcherIntents(wantsPause, running, none)).toEqual([{ kind: 'pause' }]);
    expect(launcherIntents(wantsPause, paused, none)).toEqual([]);
    expect(launcherIntents(vmi(), paused, none)).toEqual([{ kind: 'unpause' }]);
    // Paused by an I/O error, or held by a migration: not undone by the handler.
    expect(launcherIntents(vmi(), { ...paused, pauseReason: 'IOError' }, none)).toEqual([]);
    expect(launcherIntents(vmi(), { ...paused, pauseReason: 'Migration' }, none)).toEqual([]);
    // Unpause writes "false", which ends a pause like an absent request does.
    expect(launcherIntents(vmi({ annotations: { [pauseRequestAnnotation]: 'false' } }), paused, none)).toEqual([{ kind: 'unpause' }]);
  });

  it('keeps a guest started paused (startStrategy: Paused) paused until an unpause, and pauses none that runs on that account', () => {
    const startPaused = (annotations: Record<string, string> = {}) => vmi({ annotations }, { startStrategy: 'Paused' });
    expect(launcherIntents(startPaused(), paused, none)).toEqual([]);
    expect(launcherIntents(startPaused(), running, none)).toEqual([]);
    expect(launcherIntents(startPaused({ [pauseRequestAnnotation]: 'false' }), paused, none)).toEqual([{ kind: 'unpause' }]);
    expect(launcherIntents(startPaused({ [pauseRequestAnnotation]: 'false' }), running, none)).toEqual([]);
    expect(launcherIntents(startPaused({ [pauseRequestAnnotation]: 'true' }), running, none)).toEqual([{ kind: 'pause' }]);
    // Any other value is no request: the start strategy decides.
    expect(launcherIntents(startPaused({ [pauseRequestAnnotation]: 'yes' }), paused, none)).toEqual([]);
    expect(launcherIntents(vmi({ annotations: { [pauseRequestAnnotation]: 'yes' } }), paused, none)).toEqual([{ kind: 'unpause' }]);
  });

  it('forwards a soft reboot to a running guest', () => {
    expect(launcherIntents(vmi({ annotations: { [softRebootRequestAnnotation]: '2026-11-22T21:00:00Z' } }), running, none)).toEqual([{ kind: 'softReboot' }]);
    expect(launcherIntents(vmi({ annotations: { [softRebootRequestAnnotation]: '2026-11-22T21:00:00Z' } }), paused, none)).toEqual([{ kind: 'unpause' }]);
  });

  it('forwards a reset as the hard reset, not the soft reboot, which it also satisfies', () => {
    expect(launcherIntents(vmi({ annotations: { [resetRequestAnnotation]: '2026-11-22T21:00:00Z' } }), running, none)).toEqual([{ kind: 'reset' }]);
    const both = vmi({ annotations: { [resetRequestAnnotation]: '2026-11-22T21:00:01Z', [softRebootRequestAnnotation]: '2026-11-22T21:00:00Z' } });
    expect(launcherIntents(both, running, none)).toEqual([{ kind: 'reset' }]);
  });

  it('shuts the guest down once on deletion, with the VMI’s grace period, and nothing else', () => {
    // The API server records deletionGracePeriodSeconds 0 for every custom resource: not the VM's.
    const deleting = vmi({ deletionTimestamp: '2026-11-22T21:00:00Z', deletionGracePeriodSeconds: 0, annotations: { [pauseRequestAnnotation]: 'true' } }, { terminationGracePeriodSeconds: 12 });
    expect(launcherIntents(deleting, running, none)).toEqual([{ kind: 'shutdown', gracePeriodSeconds: 12 }]);
    expect(launcherIntents(deleting, paused, none)).toEqual([{ kind: 'shutdown', gracePeriodSeconds: 12 }]);
    expect(launcherIntents(deleting, running, { start: true, shutdown: true })).toEqual([]);
    expect(launcherIntents(deleting, { ...running, phase: 'ShuttingDown' }, none)).toEqual([]);
  });

  it('takes the grace period from the spec, else KubeVirt’s default', () => {
    expect(shutdownGracePeriod(vmi({}, { terminationGracePeriodSeconds: 0 }))).toBe(0);
    expect(shutdownGracePeriod(vmi())).toBe(30);
  });
});

describe('statusTransitionEvents', () => {
  const pausedCondition = { type: 'Paused', status: 'True' as const, reason: 'PausedByUser' };
  it('names the transitions as KubeVirt does, once each', () => {
    expect(statusTransitionEvents({ phase: 'Scheduled' }, { phase: 'Running' }).map((e) => e.reason)).toEqual(['Started']);
    expect(statusTransitionEvents({ phase: 'Running' }, { phase: 'Running', conditions: [pausedCondition] }).map((e) => e.reason)).toEqual(['Paused']);
    expect(statusTransitionEvents({ phase: 'Running', conditions: [pausedCondition] }, { phase: 'Running' }).map((e) => e.reason)).toEqual(['Unpaused']);
    expect(statusTransitionEvents({ phase: 'Running' }, { phase: 'Succeeded' }).map((e) => e.reason)).toEqual(['Stopped']);
    expect(statusTransitionEvents({ phase: 'Running' }, { phase: 'Running' })).toEqual([]);
  });

  it('carries the launcher’s failure message into a Warning', () => {
    const [event] = statusTransitionEvents({ phase: 'Scheduled' }, { phase: 'Failed', conditions: [{ type: 'Synchronized', status: 'False', reason: 'StartFailedqmp-connect', message: 'qmp-connect: QEMU said: could not open kernel file' }] });
    expect(event).toEqual({ type: 'Warning', reason: 'SyncFailed', message: 'qmp-connect: QEMU said: could not open kernel file' });
  });
});
