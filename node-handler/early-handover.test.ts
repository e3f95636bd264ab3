import { describe, expect, it } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import { computeVMIStatus } from '../controller/vmi/status.js';
import { VMI_STATUS_FIELDS } from '../runtime/contracts/vmi-status.js';
import { statusEqual, statusPatch } from '../runtime/status.js';
import type { DomainState } from './domain-state.js';
import { earlyHandoverStatus } from './early-handover.js';
import type { VirtualMachineInstance } from './vmi-handler.js';

const created = new Date('2026-12-02T22:59:59.700Z');
const now = new Date('2026-12-02T23:00:00.400Z');
const node = 'node1';
const podUid = 'pod-uid-1';
const image = 'kubevm/launcher:0.1.0';

/** The launcher pod: bound to `node`; `ready` once the kubelet has reported it. */
function launcherPod(ready = false): V1Pod {
  return {
    metadata: { name: 'virt-launcher-vm1-abcde', namespace: 'default', uid: podUid, creationTimestamp: '2026-12-02T22:59:59Z' as unknown as Date },
    spec: { nodeName: node, containers: [{ name: 'compute', image }] },
    status: ready ? { phase: 'Running', conditions: [{ type: 'PodScheduled', status: 'True' }, { type: 'Ready', status: 'True' }] } : { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True' }] },
  };
}

function newVmi(metadata: Record<string, unknown> = {}): VirtualMachineInstance {
  return { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'vm1', namespace: 'default', uid: 'vmi-uid', ...metadata }, spec: { domain: { devices: {} } } };
}

/** The VMI as the controller's first write leaves it: Scheduling, on the pod's node. */
function schedulingVmi(metadata: Record<string, unknown> = {}): VirtualMachineInstance {
  const vmi = newVmi(metadata);
  const liveMigratable = { type: 'LiveMigratable', status: 'True' } as const;
  return { ...vmi, status: computeVMIStatus({ vmi, pod: launcherPod(), liveMigratable, failure: undefined, now: created }) };
}

function domain(change: Partial<DomainState> = {}): DomainState {
  return { podUid, phase: 'Running', agentConnected: false, accelerator: 'tcg', ...change };
}

describe("the controller's first write", () => {
  it('waits for the pod to be bound, then says Scheduling with its node, active pod and image', () => {
    const unbound = { ...launcherPod(), spec: { containers: [{ name: 'compute', image }] }, status: { phase: 'Pending' } };
    // Just created: nothing to write yet (the controller requeues within the grace).
    expect(computeVMIStatus({ vmi: newVmi(), pod: unbound, failure: undefined, now: created })).toEqual({});
    expect(schedulingVmi().status).toMatchObject({ phase: 'Scheduling', nodeName: node, activePods: { [podUid]: node }, launcherContainerImageVersion: image });
    // A scheduler that says nothing for the grace: Scheduling, on no node yet.
    const late = computeVMIStatus({ vmi: newVmi(), pod: unbound, failure: undefined, now: new Date(created.getTime() + 3000) });
    expect(late.phase).toBe('Scheduling');
    expect(late.nodeName).toBeUndefined();
  });
});

describe('earlyHandoverStatus', () => {
  it('takes a Scheduling VMI whose guest runs on this node to Running, with the Scheduled the kubelet has yet to report', () => {
    const vmi = schedulingVmi();
    const status = earlyHandoverStatus(vmi, node, domain(), now);
    expect(status).toMatchObject({ phase: 'Running', nodeName: node, activePods: { [podUid]: node }, launcherContainerImageVersion: image });
    expect(status?.phaseTransitionTimestamps?.map((t) => t.phase)).toEqual(['Scheduling', 'Scheduled', 'Running']);
    // The controller's start-up explanation is over; LiveMigratable is carried, as the handler does.
    expect(status?.conditions?.map((c) => `${c.type}=${c.status}`)).toEqual(['Ready=True', 'kubevm.io/Emulation=True', 'LiveMigratable=True']);
    // Only the handler's own fields change, the phase tested: a Scheduled written in between refuses it.
    const ops = statusPatch(vmi.status, status as Record<string, unknown>, VMI_STATUS_FIELDS['node-handler'], 'the node handler');
    expect(ops).toContainEqual({ op: 'test', path: '/status/phase', value: 'Scheduling' });
  });

  it('reports a guest started paused as Running and Paused', () => {
    const status = earlyHandoverStatus(schedulingVmi(), node, domain({ phase: 'Paused', pauseReason: 'User' }), now);
    expect(status?.phase).toBe('Running');
    expect(status?.conditions?.find((c) => c.type === 'Paused')).toMatchObject({ status: 'True', reason: 'PausedByUser' });
  });

  const scheduled = (): VirtualMachineInstance => {
    const vmi = schedulingVmi();
    return { ...vmi, status: computeVMIStatus({ vmi, pod: launcherPod(true), failure: undefined, now }) };
  };
  it.each<[string, VirtualMachineInstance, string, DomainState | undefined]>([
    ['the controller wrote Scheduled first (the normal pass reports Running)', scheduled(), node, domain()],
    ['the VMI is on another node', schedulingVmi(), 'node2', domain()],
    ['the VMI is being deleted', schedulingVmi({ deletionTimestamp: '2026-12-02T23:00:00Z' }), node, domain()],
    ['no domain yet', schedulingVmi(), node, undefined],
    ["another pod's domain", schedulingVmi(), node, domain({ podUid: 'pod-uid-2' })],
    ['the guest is not started yet', schedulingVmi(), node, domain({ phase: 'Starting' })],
    ['the launcher failed', schedulingVmi(), node, domain({ phase: 'Failed', failure: { reason: 'QemuFailed', message: 'no' } })],
    ['the guest stopped', schedulingVmi(), node, domain({ phase: 'Shutoff' })],
    ['a migration pause', schedulingVmi(), node, domain({ phase: 'Paused', pauseReason: 'Migration' })],
  ])('writes nothing when %s', (_why, vmi, here, state) => {
    expect(scheduled().status?.phase).toBe('Scheduled');
    expect(earlyHandoverStatus(vmi, here, state, now)).toBeUndefined();
  });

  it('leaves the controller nothing to write once the kubelet reports the pod ready', () => {
    const vmi = schedulingVmi();
    const taken = { ...vmi, status: earlyHandoverStatus(vmi, node, domain(), now) ?? {} };
    const controllerView = computeVMIStatus({ vmi: taken, pod: launcherPod(true), failure: undefined, now: new Date(now.getTime() + 5000) });
    expect(statusEqual(controllerView, taken.status)).toBe(true);
  });
});
