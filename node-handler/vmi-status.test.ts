import { describe, expect, it } from '@jest/globals';
import type { VirtualMachineInstance } from '../runtime/api/index.js';
import type { DomainState } from './domain-state.js';
import { DomainStateCache } from './domain-state.js';
import { VmiConditionType, computeVmiStatus, statusChanged } from './vmi-status.js';

const t0 = new Date('2026-11-22T20:00:00.123Z');
const t1 = new Date('2026-11-22T20:00:05.987Z');
const podUid = 'pod-uid-1';

function scheduledVmi(): VirtualMachineInstance {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'vm1', namespace: 'default', uid: 'vmi-uid' },
    spec: { domain: { devices: {} } },
    status: {
      phase: 'Scheduled',
      nodeName: 'node1',
      activePods: { [podUid]: 'node1' },
      phaseTransitionTimestamps: [{ phase: 'Scheduled', phaseTransitionTimestamp: '2026-11-22T19:59:58Z' }],
      conditions: [{ type: 'Ready', status: 'False', reason: 'PodNotReady', lastProbeTime: null, lastTransitionTime: '2026-11-22T19:59:58Z' }],
    },
  };
}

function domain(change: Partial<DomainState>): DomainState {
  return { podUid, phase: 'Running', agentConnected: false, ...change };
}

function condition(vmi: { status?: { conditions?: { type: string }[] } }, type: string): Record<string, unknown> | undefined {
  return vmi.status?.conditions?.find((c) => c.type === type);
}

describe('computeVmiStatus', () => {
  it('leaves a VMI alone until its domain runs', () => {
    const vmi = scheduledVmi();
    const status = computeVmiStatus(vmi, domain({ phase: 'Starting' }), t0);
    expect(statusChanged(vmi.status, status)).toBe(false);
    expect(statusChanged(vmi.status, computeVmiStatus(vmi, undefined, t0))).toBe(false);
  });

  it('reports Running, Ready and the accelerator in one change, with whole-second timestamps', () => {
    const vmi = scheduledVmi();
    const status = computeVmiStatus(vmi, domain({ accelerator: 'tcg', interfaces: [{ name: 'default', mac: '52:54:00:00:00:01', ipAddress: '10.0.2.15', ipAddresses: ['10.0.2.15'] }] }), t0);
    expect(status.phase).toBe('Running');
    expect(status.phaseTransitionTimestamps?.at(-1)).toEqual({ phase: 'Running', phaseTransitionTimestamp: '2026-11-22T20:00:00Z' });
    expect(condition({ status }, 'Ready')).toMatchObject({ status: 'True', lastTransitionTime: '2026-11-22T20:00:00Z' });
    expect(condition({ status }, VmiConditionType.Emulation)).toMatchObject({ status: 'True', reason: 'TCG' });
    expect(status.interfaces).toEqual([{ name: 'default', mac: '52:54:00:00:00:01', ipAddress: '10.0.2.15', ipAddresses: ['10.0.2.15'] }]);
    // Fields the handler does not own are untouched.
    expect(status.nodeName).toBe('node1');
    expect(status.activePods).toEqual({ [podUid]: 'node1' });
  });

  it('is a fixed point: recomputing from the written status changes nothing', () => {
    const vmi = scheduledVmi();
    const running = { ...vmi, status: computeVmiStatus(vmi, domain({ accelerator: 'kvm' }), t0) };
    // The API server may return the object with keys reordered and nulls pruned.
    const roundTripped = JSON.parse(JSON.stringify(running, (_k, v: unknown) => (v === null ? undefined : v))) as VirtualMachineInstance;
    const again = computeVmiStatus(roundTripped, domain({ accelerator: 'kvm' }), t1);
    expect(statusChanged(roundTripped.status, again)).toBe(false);
  });

  it('sets fsFreezeStatus frozen while the agent reports it, and removes it on thaw', () => {
    const vmi = scheduledVmi();
    const running = { ...vmi, status: computeVmiStatus(vmi, domain({ agentConnected: true }), t0) };
    expect(running.status.fsFreezeStatus).toBeUndefined();
    const frozen = { ...vmi, status: computeVmiStatus(running, domain({ agentConnected: true, fsFrozen: true }), t1) };
    expect(frozen.status.fsFreezeStatus).toBe('frozen');
    expect(statusChanged(running.status, frozen.status)).toBe(true);
    const thawed = computeVmiStatus(frozen, domain({ agentConnected: true }), t1);
    expect(thawed.fsFreezeStatus).toBeUndefined();
    expect(statusChanged(running.status, thawed)).toBe(false);
  });

  it('adds AgentConnected and guestOSInfo when the guest agent appears, keeping Ready since t0', () => {
    const vmi = scheduledVmi();
    const running = { ...vmi, status: computeVmiStatus(vmi, domain({}), t0) };
    const withAgent = computeVmiStatus(running, domain({ agentConnected: true, guestOSInfo: { name: 'Debian GNU/Linux', id: 'debian', kernelRelease: '6.1.0' } }), t1);
    expect(statusChanged(running.status, withAgent)).toBe(true);
    expect(condition({ status: withAgent }, 'AgentConnected')).toMatchObject({ status: 'True' });
    expect(condition({ status: withAgent }, 'Ready')).toMatchObject({ status: 'True', lastTransitionTime: '2026-11-22T20:00:00Z' });
    expect(withAgent.guestOSInfo).toEqual({ name: 'Debian GNU/Linux', id: 'debian', kernelRelease: '6.1.0' });
    expect(withAgent.phaseTransitionTimestamps?.filter((p) => p.phase === 'Running')).toHaveLength(1);
  });

  it('reports a pause as KubeVirt does and removes it on unpause', () => {
    const vmi = scheduledVmi();
    const running = { ...vmi, status: computeVmiStatus(vmi, domain({}), t0) };
    const paused = { ...vmi, status: computeVmiStatus(running, domain({ phase: 'Paused', pauseReason: 'User' }), t1) };
    expect(paused.status.phase).toBe('Running');
    expect(condition(paused, 'Paused')).toMatchObject({ status: 'True', reason: 'PausedByUser' });
    expect(condition(paused, 'Ready')).toMatchObject({ status: 'False', reason: 'Paused' });
    const resumed = computeVmiStatus(paused, domain({ phase: 'Running' }), t1);
    expect(condition({ status: resumed }, 'Paused')).toBeUndefined();
    expect(condition({ status: resumed }, 'Ready')).toMatchObject({ status: 'True' });
  });

  it('says nothing of a migration target still stopped for its switch-over, so the VM never shows Paused', () => {
    const vmi = scheduledVmi();
    const running = { ...vmi, status: computeVmiStatus(vmi, domain({}), t0) };
    expect(computeVmiStatus(running, domain({ phase: 'Paused', pauseReason: 'Migration' }), t1)).toBe(running.status);
    expect(condition({ status: computeVmiStatus(running, domain({ phase: 'Paused', pauseReason: 'User' }), t1) }, 'Paused')).toMatchObject({ reason: 'PausedByUser' });
  });

  it('ends in Succeeded after a shutdown and Failed with the launcher’s message after a failure', () => {
    const vmi = scheduledVmi();
    const running = { ...vmi, status: computeVmiStatus(vmi, domain({}), t0) };
    const done = computeVmiStatus(running, domain({ phase: 'Shutoff', shutoffReason: 'GuestShutdown' }), t1);
    expect(done.phase).toBe('Succeeded');
    expect(condition({ status: done }, 'Ready')).toMatchObject({ status: 'False', reason: 'Shutoff' });

    const failed = computeVmiStatus(vmi, domain({ phase: 'Failed', failure: { reason: 'QemuStartFailed', message: 'qemu-system-x86_64: -drive ...: Could not open disk.img' } }), t1);
    expect(failed.phase).toBe('Failed');
    expect(condition({ status: failed }, 'Synchronized')).toMatchObject({ status: 'False', reason: 'QemuStartFailed', message: expect.stringContaining('Could not open') });
  });

  it('does not touch a VMI in a final phase or a domain from a pod that is not active', () => {
    const vmi = scheduledVmi();
    const succeeded = { ...vmi, status: { ...vmi.status, phase: 'Succeeded' as const } };
    expect(statusChanged(succeeded.status, computeVmiStatus(succeeded, domain({}), t0))).toBe(false);
    expect(statusChanged(vmi.status, computeVmiStatus(vmi, domain({ podUid: 'other-pod' }), t0))).toBe(false);
  });
});

describe('DomainStateCache', () => {
  it('notifies only on change and starts afresh for a new pod', () => {
    const cache = new DomainStateCache();
    const heard: string[] = [];
    cache.onChange((key) => heard.push(key));
    cache.update('ns/vm', { podUid: 'a', phase: 'Running' });
    cache.update('ns/vm', { podUid: 'a', phase: 'Running' });
    cache.update('ns/vm', { podUid: 'a', agentConnected: true });
    expect(heard).toEqual(['ns/vm', 'ns/vm']);
    cache.update('ns/vm', { podUid: 'b' });
    expect(cache.get('ns/vm')).toEqual({ podUid: 'b', phase: 'Starting', agentConnected: false });
  });
});
