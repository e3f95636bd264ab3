import type { V1Pod } from '@kubernetes/client-node';
import type { VirtualMachineInstance } from '../api.js';
import { statusEqual, statusPatch } from '../../runtime/status.js';
import { VMI_STATUS_FIELDS } from '../../runtime/contracts/vmi-status.js';
import { BIND_GRACE_MS, bindWaitMs, computeVMIStatus, isPodDown, podFailureMessage } from './status.js';
import { currentLauncherPod } from './controller.js';

const now = new Date('2026-11-22T20:00:00Z');
const later = new Date('2026-11-22T20:00:30Z');

function vmi(status: VirtualMachineInstance['status'] = {}, deleting = false): VirtualMachineInstance {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'vm1', namespace: 'ns', uid: 'vmi-uid', ...(deleting ? { deletionTimestamp: '2026-11-22T19:59:00Z' } : {}) },
    spec: { domain: { devices: {} } },
    status,
  };
}

function pod(overrides: { phase?: string; nodeName?: string; ready?: boolean; scheduled?: { status: string; reason?: string; message?: string }; waiting?: { reason: string; message?: string }; deleting?: boolean } = {}): V1Pod {
  const conditions = [
    ...(overrides.scheduled ? [{ type: 'PodScheduled', ...overrides.scheduled }] : []),
    ...(overrides.ready !== undefined ? [{ type: 'Ready', status: overrides.ready ? 'True' : 'False' }] : []),
  ];
  return {
    // The controller reads pods as the JSON the server sends: timestamps are strings, not Dates.
    metadata: { name: 'virt-launcher-vm1-abcde', uid: 'pod-uid', ...(overrides.deleting ? { deletionTimestamp: '2026-11-22T20:00:00Z' } : {}) } as V1Pod['metadata'],
    spec: { containers: [{ name: 'compute', image: 'kubevm/launcher:1' }], ...(overrides.nodeName ? { nodeName: overrides.nodeName } : {}) },
    status: {
      phase: overrides.phase ?? 'Pending',
      conditions,
      ...(overrides.waiting ? { containerStatuses: [{ name: 'compute', image: 'kubevm/launcher:1', imageID: '', ready: false, restartCount: 0, state: { waiting: overrides.waiting } }] } : {}),
    },
  };
}

describe('computeVMIStatus (the controller-owned phases)', () => {
  test('a new VMI whose pod was just created goes straight to Scheduling: one write', () => {
    const status = computeVMIStatus({ vmi: vmi(), pod: pod(), failure: undefined, now });
    expect(status.phase).toBe('Scheduling');
    expect(status.phaseTransitionTimestamps).toEqual([{ phase: 'Scheduling', phaseTransitionTimestamp: '2026-11-22T20:00:00Z' }]);
    expect(status.conditions).toEqual([
      { type: 'Ready', status: 'False', reason: 'GuestNotRunning', message: 'Guest VM is not reported as running', lastProbeTime: null, lastTransitionTime: '2026-11-22T20:00:00Z' },
    ]);
    expect(status.activePods).toBeUndefined();
  });

  test('the first write waits for the pod to be bound, and says its node (BIND_GRACE_MS at most)', () => {
    const created = { creationTimestamp: '2026-11-22T20:00:00Z' } as unknown as V1Pod['metadata'];
    const fresh = { ...pod(), metadata: { ...pod().metadata, ...created } };
    const soon = new Date(now.getTime() + 300);
    expect(bindWaitMs(vmi(), fresh, soon)).toBe(BIND_GRACE_MS - 300);
    expect(computeVMIStatus({ vmi: vmi(), pod: fresh, failure: undefined, now: soon })).toEqual({});
    // Bound: Scheduling with the node, so that the node handler there attaches now.
    const bound = { ...pod({ nodeName: 'node1', scheduled: { status: 'True' } }), metadata: fresh.metadata };
    expect(bindWaitMs(vmi(), bound, soon)).toBeUndefined();
    const status = computeVMIStatus({ vmi: vmi(), pod: bound, failure: undefined, now: soon });
    expect(status).toMatchObject({ phase: 'Scheduling', nodeName: 'node1', activePods: { 'pod-uid': 'node1' }, launcherContainerImageVersion: 'kubevm/launcher:1' });
    // Unschedulable (the scheduler said so), or a scheduler silent for the grace: Scheduling on no node.
    const refused = { ...pod({ scheduled: { status: 'False', reason: 'Unschedulable' } }), metadata: fresh.metadata };
    expect(bindWaitMs(vmi(), refused, soon)).toBeUndefined();
    expect(computeVMIStatus({ vmi: vmi(), pod: refused, failure: undefined, now: soon }).nodeName).toBeUndefined();
    expect(bindWaitMs(vmi(), fresh, new Date(now.getTime() + BIND_GRACE_MS))).toBeUndefined();
    expect(computeVMIStatus({ vmi: vmi(), pod: fresh, failure: undefined, now: later }).phase).toBe('Scheduling');
  });

  test('progress inside Scheduling (image being pulled) changes nothing; a late bind records the node', () => {
    const scheduling = computeVMIStatus({ vmi: vmi(), pod: pod(), failure: undefined, now });
    const bound = computeVMIStatus({ vmi: vmi(scheduling), pod: pod({ nodeName: 'node1', scheduled: { status: 'True' }, ready: false }), failure: undefined, now: later });
    expect(bound).toMatchObject({ phase: 'Scheduling', nodeName: 'node1', activePods: { 'pod-uid': 'node1' } });
    const pulling = computeVMIStatus({ vmi: vmi(bound), pod: pod({ nodeName: 'node1', scheduled: { status: 'True' }, ready: false, waiting: { reason: 'ContainerCreating' } }), failure: undefined, now: later });
    expect(statusEqual(pulling, bound)).toBe(true);
  });

  test('a ready pod makes the VMI Scheduled with nodeName, activePods and the launcher image: the second write', () => {
    const scheduling = computeVMIStatus({ vmi: vmi(), pod: pod(), failure: undefined, now });
    const scheduled = computeVMIStatus({ vmi: vmi(scheduling), pod: pod({ phase: 'Running', nodeName: 'node1', ready: true }), failure: undefined, now: later });
    expect(scheduled.phase).toBe('Scheduled');
    expect(scheduled.nodeName).toBe('node1');
    expect(scheduled.activePods).toEqual({ 'pod-uid': 'node1' });
    expect(scheduled.launcherContainerImageVersion).toBe('kubevm/launcher:1');
    expect(scheduled.phaseTransitionTimestamps?.map((t) => t.phase)).toEqual(['Scheduling', 'Scheduled']);
    // ...and from there the node handler drives it: a recomputation is a no-op.
    const again = computeVMIStatus({ vmi: vmi(scheduled), pod: pod({ phase: 'Running', nodeName: 'node1', ready: true }), failure: undefined, now: later });
    expect(statusEqual(again, scheduled)).toBe(true);
  });

  test('an unschedulable pod is explained on PodScheduled, with what to check', () => {
    const status = computeVMIStatus({
      vmi: vmi({ phase: 'Scheduling' }),
      pod: pod({ scheduled: { status: 'False', reason: 'Unschedulable', message: '0/1 nodes are available: 1 Insufficient devices.kubevirt.io/kvm.' } }),
      failure: undefined,
      now,
    });
    expect(status.phase).toBe('Scheduling');
    const condition = status.conditions?.find((c) => c.type === 'PodScheduled');
    expect(condition).toMatchObject({ status: 'False', reason: 'Unschedulable' });
    expect(condition?.message).toContain('Insufficient devices.kubevirt.io/kvm');
    expect(condition?.message).toContain('nodeSelector');
  });

  test('image pull errors surface on Synchronized with the kubelet message', () => {
    const status = computeVMIStatus({
      vmi: vmi({ phase: 'Scheduling' }),
      pod: pod({ nodeName: 'node1', waiting: { reason: 'ErrImagePull', message: 'failed to pull image "nope:1": not found' } }),
      failure: undefined,
      now,
    });
    expect(status.conditions?.find((c) => c.type === 'Synchronized')).toMatchObject({ status: 'False', reason: 'ErrImagePull' });
    expect(status.conditions?.find((c) => c.type === 'Synchronized')?.message).toContain('failed to pull image "nope:1"');
  });

  test('a missing PVC keeps the VMI Pending with FailedPvcNotFound', () => {
    const status = computeVMIStatus({ vmi: vmi(), pod: undefined, failure: { reason: 'FailedPvcNotFound', message: 'PersistentVolumeClaim ns/data not found' }, now });
    expect(status.phase).toBe('Pending');
    expect(status.conditions?.find((c) => c.type === 'Synchronized')).toMatchObject({ status: 'False', reason: 'FailedPvcNotFound' });
  });

  test('a pod that dies or disappears before or after start fails the VMI', () => {
    expect(computeVMIStatus({ vmi: vmi({ phase: 'Scheduling' }), pod: undefined, failure: undefined, now }).phase).toBe('Failed');
    expect(computeVMIStatus({ vmi: vmi({ phase: 'Scheduling' }), pod: pod({ phase: 'Failed' }), failure: undefined, now }).phase).toBe('Failed');
    expect(computeVMIStatus({ vmi: vmi({ phase: 'Scheduled' }), pod: undefined, failure: undefined, now }).phase).toBe('Failed');
    const running = computeVMIStatus({ vmi: vmi({ phase: 'Running' }), pod: undefined, failure: undefined, now });
    expect(running.phase).toBe('Failed');
    expect(running.reason).toBe('PodMissing');
    // The guest powering off is the node handler's to report (Succeeded), not the controller's.
    expect(computeVMIStatus({ vmi: vmi({ phase: 'Running' }), pod: pod({ phase: 'Succeeded' }), failure: undefined, now }).phase).toBe('Running');
  });

  test('a launcher pod whose init container failed explains why, with the container\'s last lines', () => {
    const failed = pod({ phase: 'Failed' });
    failed.status!.initContainerStatuses = [
      { name: 'cd-root', image: 'example/disk:1', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 1, message: 'cp: can\'t stat \'/disk\': No such file or directory\n' } } },
    ];
    const status = computeVMIStatus({ vmi: vmi({ phase: 'Scheduling' }), pod: failed, failure: undefined, now });
    expect(status.phase).toBe('Failed');
    expect(status.conditions?.find((c) => c.type === 'Synchronized')).toMatchObject({
      status: 'False',
      reason: 'PodFailed',
      message: "launcher pod virt-launcher-vm1-abcde: init container cd-root (image example/disk:1) exited with code 1: cp: can't stat '/disk': No such file or directory",
    });
  });

  test('an image copy that failed beside the launcher is named before the launcher\'s own exit', () => {
    const failed = pod({ phase: 'Failed' });
    const terminated = (exitCode: number, message: string) => ({ terminated: { exitCode, message } });
    failed.status!.containerStatuses = [
      { name: 'compute', image: 'kubevm/launcher:1', imageID: '', ready: false, restartCount: 0, state: terminated(1, 'start failed: spec.volumes[0].containerDisk.path: "/x" does not exist in the image') },
      { name: 'cd-root', image: 'example/disk:1', imageID: '', ready: false, restartCount: 0, state: terminated(1, 'spec.volumes[0].containerDisk.path: "/x" does not exist in the image\n') },
    ];
    expect(podFailureMessage(failed)).toBe('launcher pod virt-launcher-vm1-abcde: container cd-root (image example/disk:1) exited with code 1: spec.volumes[0].containerDisk.path: "/x" does not exist in the image');
  });

  test('a launcher that ended while the copies beside it still run is a pod that is down', () => {
    const ended = pod({ phase: 'Running' });
    ended.status!.containerStatuses = [
      { name: 'compute', image: 'kubevm/launcher:1', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 2, message: 'launcher: KUBEVM_ACCEL="x" is not accepted' } } },
      { name: 'cd-root', image: 'example/disk:1', imageID: '', ready: true, restartCount: 0, state: { running: {} } },
    ];
    expect(isPodDown(ended)).toBe(true);
    const status = computeVMIStatus({ vmi: vmi({ phase: 'Scheduling' }), pod: ended, failure: undefined, now });
    expect(status.phase).toBe('Failed');
    expect(status.conditions?.find((c) => c.type === 'Synchronized')?.message).toContain('exited with code 2 (Error): launcher: KUBEVM_ACCEL="x" is not accepted');
    expect(isPodDown(pod({ phase: 'Running' }))).toBe(false);
  });

  test('final phases are left alone', () => {
    for (const phase of ['Succeeded', 'Failed'] as const) {
      const status = { phase };
      expect(statusEqual(computeVMIStatus({ vmi: vmi(status), pod: undefined, failure: undefined, now }), status)).toBe(true);
    }
  });
});

describe('the controller writes only the VMI status fields it owns (runtime/contracts/vmi-status.ts)', () => {
  const scenarios: Array<[string, VirtualMachineInstance, V1Pod | undefined]> = [
    ['new VMI, pod created', vmi(), pod()],
    ['pod ready on a node', vmi({ phase: 'Scheduling' }), pod({ phase: 'Running', nodeName: 'n1', ready: true })],
    ['unschedulable pod', vmi({ phase: 'Scheduling' }), pod({ scheduled: { status: 'False', reason: 'Unschedulable', message: 'no nodes' } })],
    ['image pull error', vmi({ phase: 'Scheduling' }), pod({ waiting: { reason: 'ErrImagePull', message: 'not found' } })],
    ['pod gone while running', vmi({ phase: 'Running', nodeName: 'n1', activePods: { 'pod-uid': 'n1' } }), undefined],
    ['deleted before a pod existed', vmi({}, true), undefined],
  ];
  test.each(scenarios)('%s', (_name, current, launcher) => {
    const status = computeVMIStatus({ vmi: current, pod: launcher, failure: undefined, now });
    const ops = statusPatch(current.status, status, VMI_STATUS_FIELDS.controller, 'the controller');
    expect(ops.length).toBeGreaterThan(0);
  });
});

describe('podFailureMessage', () => {
  it('an evicted pod says so, with the kubelet message, whatever its containers exit codes', () => {
    const message = podFailureMessage({
      metadata: { name: 'virt-launcher-vm-abcde' },
      status: {
        phase: 'Failed',
        reason: 'Evicted',
        message: 'Usage of EmptyDir volume "ephemeral-disks" exceeds the limit "18Mi". ',
        containerStatuses: [{ name: 'compute', image: 'l', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 137, reason: 'Error' } } }],
      },
    });
    expect(message).toBe('launcher pod virt-launcher-vm-abcde was evicted by the kubelet: Usage of EmptyDir volume "ephemeral-disks" exceeds the limit "18Mi".');
  });
});

describe('computeVMIStatus and a migration', () => {
  const running = (extra: Partial<NonNullable<VirtualMachineInstance['status']>> = {}) =>
    vmi({ phase: 'Running', nodeName: 'node1', activePods: { 'pod-uid': 'node1' }, launcherContainerImageVersion: 'kubevm/launcher:1', ...extra });
  const target = (overrides: Parameters<typeof pod>[0] = {}): V1Pod => {
    const p = pod({ phase: 'Running', nodeName: 'node2', ready: true, ...overrides });
    p.metadata = { ...p.metadata, name: 'virt-launcher-vm1-abcde-mig-0a1b2c3d', uid: 'target-uid', labels: { 'kubevirt.io/migrationJobUID': 'mig-uid' } };
    return p;
  };
  const source = pod({ phase: 'Running', nodeName: 'node1', ready: true });

  test('a target pod on its node is an active pod too; an unbound or ended one is not', () => {
    expect(computeVMIStatus({ vmi: running(), pod: source, migrationTargets: [target()], failure: undefined, now }).activePods).toEqual({ 'pod-uid': 'node1', 'target-uid': 'node2' });
    expect(computeVMIStatus({ vmi: running(), pod: source, migrationTargets: [target({ nodeName: undefined })], failure: undefined, now }).activePods).toEqual({ 'pod-uid': 'node1' });
    const gone = computeVMIStatus({ vmi: running({ activePods: { 'pod-uid': 'node1', 'target-uid': 'node2' } }), pod: source, migrationTargets: [target({ deleting: true })], failure: undefined, now });
    expect(gone.activePods).toEqual({ 'pod-uid': 'node1' });
  });

  test('the hand-over: the target pod is the launcher, its node the VMI\'s node, the only active pod; the phase and conditions untouched', () => {
    const before = running({ activePods: { 'pod-uid': 'node1', 'target-uid': 'node2' }, conditions: [{ type: 'Ready', status: 'True' }] });
    const after = computeVMIStatus({ vmi: before, pod: target(), migrationTargets: [], failure: undefined, now });
    expect(after.nodeName).toBe('node2');
    expect(after.activePods).toEqual({ 'target-uid': 'node2' });
    expect(after.phase).toBe('Running');
    expect(after.conditions).toEqual(before.status?.conditions);
    // Only the controller's fields change.
    expect(() => statusPatch(before.status, after, VMI_STATUS_FIELDS.controller, 'the controller')).not.toThrow();
  });

  test("a drain's evacuationNodeName goes with the hand-over to the target's node, and stays while the VMI is on the marked node", () => {
    const marked = running({ activePods: { 'pod-uid': 'node1', 'target-uid': 'node2' }, evacuationNodeName: 'node1' });
    expect(computeVMIStatus({ vmi: marked, pod: source, migrationTargets: [target()], failure: undefined, now }).evacuationNodeName).toBe('node1');
    const after = computeVMIStatus({ vmi: marked, pod: target(), migrationTargets: [], failure: undefined, now });
    expect(after).toMatchObject({ nodeName: 'node2' });
    expect(after.evacuationNodeName).toBeUndefined();
    const ops = statusPatch(marked.status, after, VMI_STATUS_FIELDS.controller, 'the controller');
    expect(ops).toContainEqual({ op: 'remove', path: '/status/evacuationNodeName' });
    // A stale mark (the VMI already elsewhere) is removed at any pass.
    expect(computeVMIStatus({ vmi: running({ evacuationNodeName: 'node0' }), pod: source, failure: undefined, now }).evacuationNodeName).toBeUndefined();
  });

  test('LiveMigratable is written while the controller drives the phase, never after', () => {
    const condition = { type: 'LiveMigratable', status: 'True' as const, reason: '', message: '' };
    const scheduling = computeVMIStatus({ vmi: vmi(), pod: pod(), liveMigratable: condition, failure: undefined, now });
    expect(scheduling.conditions?.find((c) => c.type === 'LiveMigratable')).toMatchObject({ status: 'True' });
    expect(computeVMIStatus({ vmi: running(), pod: source, liveMigratable: condition, failure: undefined, now }).conditions).toBeUndefined();
  });
});

describe('currentLauncherPod', () => {
  const owned = (name: string, uid: string, nodeName: string, extra: { migrationUid?: string; down?: boolean } = {}) => {
    const p = pod({ phase: extra.down ? 'Failed' : 'Running', nodeName, ready: !extra.down });
    p.metadata = { ...p.metadata, name, uid, ...(extra.migrationUid ? { labels: { 'kubevirt.io/migrationJobUID': extra.migrationUid } } : {}) };
    return p as Parameters<typeof currentLauncherPod>[1][number];
  };
  const src = owned('virt-launcher-vm1-abcde', 'src', 'node1');
  const tgt = owned('virt-launcher-vm1-abcde-mig-1', 'tgt', 'node2', { migrationUid: 'm1' });

  test('during a migration the source; a target is never taken before its migration completed', () => {
    const v = vmi({ phase: 'Running', nodeName: 'node1', activePods: { src: 'node1', tgt: 'node2' }, migrationState: { migrationUid: 'm1', startTimestamp: '2026-11-22T19:59:00Z' } });
    expect(currentLauncherPod(v, [tgt, src], 'virt-launcher-vm1-abcde')?.metadata?.uid).toBe('src');
    expect(currentLauncherPod(vmi({ phase: 'Scheduling' }), [tgt], 'virt-launcher-vm1-abcde')).toBeUndefined();
  });

  test('once the migration completed the target, before and after the VMI points at it', () => {
    const completed = { migrationUid: 'm1', targetNode: 'node2', completed: true };
    expect(currentLauncherPod(vmi({ phase: 'Running', nodeName: 'node1', activePods: { src: 'node1', tgt: 'node2' }, migrationState: completed }), [src, tgt], 'virt-launcher-vm1-abcde')?.metadata?.uid).toBe('tgt');
    expect(currentLauncherPod(vmi({ phase: 'Running', nodeName: 'node2', activePods: { tgt: 'node2' }, migrationState: completed }), [src, tgt], 'virt-launcher-vm1-abcde')?.metadata?.uid).toBe('tgt');
  });

  test('a completed migration whose target is down leaves the source (the guest is not handed to a dead pod)', () => {
    const deadTarget = owned('virt-launcher-vm1-abcde-mig-1', 'tgt', 'node2', { migrationUid: 'm1', down: true });
    const v = vmi({ phase: 'Running', nodeName: 'node1', activePods: { src: 'node1' }, migrationState: { migrationUid: 'm1', targetNode: 'node2', completed: true } });
    expect(currentLauncherPod(v, [src, deadTarget], 'virt-launcher-vm1-abcde')?.metadata?.uid).toBe('src');
  });
});
