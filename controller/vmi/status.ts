// The part of a VMI's status the controller owns (runtime/contracts/vmi-status.ts, ADR 0008): the phases up to Scheduled, Failed
// before the guest ever started, nodeName and activePods (the hand-over to a migration's target
// included), launcherContainerImageVersion, the removal of a drain's evacuationNodeName once the VMI
// has left that node, and the conditions that explain a stuck start
// (PodScheduled, Synchronized) or say whether the VMI can migrate (LiveMigratable). From Scheduled on the node
// handler owns the phase and the conditions; the controller only notices a launcher pod that is gone.
//
// Writes per VMI are a measured figure: from creation to Running the controller writes at most
// twice. The first write waits for the launcher pod to be bound (a few milliseconds after its
// creation; BIND_GRACE_MS at most, or until the scheduler says it cannot): Scheduling with the
// pod's node (nodeName, activePods, launcherContainerImageVersion), so the node handler there
// attaches to the launcher at once. The second is Scheduled, when the kubelet reports the pod
// ready, unless the node handler has reported the guest Running first: it takes a Scheduling VMI
// on its node straight to Running (ADR 0008), and the kubelet's Ready waits for its next relist.
// Nothing else that progresses inside a phase (images being pulled) changes the status.
import type { V1Pod } from '@kubernetes/client-node';
import type { VirtualMachineInstance, VirtualMachineInstanceStatus, VMIPhase } from '../api.js';
import { formatConditionTime, removeCondition, setCondition } from '../../runtime/conditions.js';
import type { ConditionInput } from '../../runtime/conditions.js';
import { START_UP_CONDITIONS, VMI_CONDITION_ORDER, VmiConditionType } from '../../runtime/contracts/vmi-conditions.js';
import { COMPUTE_CONTAINER } from './launcher-pod.js';

/** Something that kept the controller from progressing the VMI this pass. */
export interface SyncFailure {
  /** KubeVirt's reason, e.g. FailedPvcNotFound, FailedCreate. */
  reason: string;
  message: string;
}

/**
 * The pod has ended, is ending, or its launcher has: the compute container may end before the
 * image copies beside it (they wait on its lifeline, launcher/image-copies.ts), and a launcher that
 * ended before holding the lifeline leaves them waiting until the pod is deleted.
 */
export function isPodDown(pod: V1Pod): boolean {
  const compute = pod.status?.containerStatuses?.find((status) => status.name === COMPUTE_CONTAINER);
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed' || Boolean(pod.metadata?.deletionTimestamp) || Boolean(compute?.state?.terminated);
}

function podCondition(pod: V1Pod, type: string): { status?: string; reason?: string; message?: string } | undefined {
  return pod.status?.conditions?.find((condition) => condition.type === type);
}

export function isPodReady(pod: V1Pod): boolean {
  return pod.status?.phase === 'Running' && podCondition(pod, 'Ready')?.status === 'True';
}

/** How long a new launcher pod may wait for the scheduler before the VMI says Scheduling without a node. */
export const BIND_GRACE_MS = 2000;

/**
 * The milliseconds left before the VMI's first write, while its new launcher pod waits for the
 * scheduler (not bound, no PodScheduled condition yet); undefined when there is nothing to wait for.
 */
export function bindWaitMs(vmi: VirtualMachineInstance, pod: V1Pod | undefined, now: Date): number | undefined {
  const phase = vmi.status?.phase ?? '';
  if (!pod || (phase !== '' && phase !== 'Pending') || vmi.metadata?.deletionTimestamp) return undefined;
  if (pod.spec?.nodeName || podCondition(pod, 'PodScheduled') || isPodDown(pod)) return undefined;
  const created = pod.metadata?.creationTimestamp ? new Date(pod.metadata.creationTimestamp).getTime() : NaN;
  const left = created + BIND_GRACE_MS - now.getTime();
  return left > 0 ? left : undefined;
}

/** An image pull failure of the launcher or a containerDisk, as the kubelet reports it. */
export function imagePullFailure(pod: V1Pod): SyncFailure | undefined {
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  for (const status of statuses) {
    const waiting = status.state?.waiting;
    if (waiting?.reason === 'ErrImagePull' || waiting?.reason === 'ImagePullBackOff' || waiting?.reason === 'InvalidImageName') {
      const reason = waiting.reason === 'InvalidImageName' ? 'ErrImagePull' : waiting.reason;
      return {
        reason,
        message: `${waiting.message ?? `cannot pull image ${status.image}`} (container ${status.name}); check the image name, that it exists, and the pull secret`,
      };
    }
  }
  return undefined;
}

/** Why a pod that went down failed, for the Failed VMI's reason and the event. */
export function podFailureMessage(pod: V1Pod): string {
  const lastLines = (message: string | undefined) => (message ? `: ${message.trim().split('\n').slice(-5).join(' | ')}` : '');
  // The kubelet stopped the pod (e.g. an emptyDir over its sizeLimit: a guest filled its disks):
  // its reason says why, whatever the containers' exit codes say.
  if (pod.status?.reason === 'Evicted') {
    return `launcher pod ${pod.metadata?.name} was evicted by the kubelet${pod.status.message ? `: ${pod.status.message.trim()}` : ''}`;
  }
  // An init container (the copier, in pods of kubevm before the postStart hook) or an image copy
  // beside the launcher that failed comes first: the launcher never started, or failed because of it.
  for (const [kind, statuses] of [
    ['init container', pod.status?.initContainerStatuses ?? []],
    ['container', (pod.status?.containerStatuses ?? []).filter((status) => status.name !== COMPUTE_CONTAINER)],
  ] as const) {
    for (const status of statuses) {
      const terminated = status.state?.terminated;
      if (terminated && terminated.exitCode !== 0) {
        return `launcher pod ${pod.metadata?.name}: ${kind} ${status.name} (image ${status.image}) exited with code ${terminated.exitCode}${lastLines(terminated.message)}`;
      }
    }
  }
  const compute = pod.status?.containerStatuses?.find((status) => status.name === COMPUTE_CONTAINER);
  const terminated = compute?.state?.terminated ?? compute?.lastState?.terminated;
  if (terminated) {
    return `launcher pod ${pod.metadata?.name} exited with code ${terminated.exitCode} (${terminated.reason ?? 'Error'})${lastLines(terminated.message)}`;
  }
  if (pod.metadata?.deletionTimestamp) return `launcher pod ${pod.metadata?.name} was deleted before the guest started`;
  return `launcher pod ${pod.metadata?.name} is ${pod.status?.phase}${pod.status?.message ? `: ${pod.status.message}` : ''}`;
}

export interface VMIStatusInput {
  vmi: VirtualMachineInstance;
  /** The launcher pod: observed, or just created this pass; after a migration, its target pod. */
  pod: V1Pod | undefined;
  /** Target pods of migrations that have not taken the VMI over: active pods too once on a node. */
  migrationTargets?: readonly V1Pod[];
  /** KubeVirt's LiveMigratable condition, when computed this pass (before the node handler takes over). */
  liveMigratable?: ConditionInput;
  /** Whether the pod was seen before and has since disappeared (vs. never created). */
  failure: SyncFailure | undefined;
  now: Date;
}

function withPhase(status: VirtualMachineInstanceStatus, phase: VMIPhase, now: Date): void {
  if (phase === '' || status.phase === phase) return;
  status.phase = phase;
  status.phaseTransitionTimestamps = [...(status.phaseTransitionTimestamps ?? []), { phase, phaseTransitionTimestamp: formatConditionTime(now) }];
}

/**
 * The VMI status after the controller's pass; fields the controller does not own are carried over.
 * Equal to the stored status (statusEqual) when there is nothing new to say.
 */
export function computeVMIStatus({ vmi, pod, migrationTargets = [], liveMigratable, failure, now }: VMIStatusInput): VirtualMachineInstanceStatus {
  const current: VirtualMachineInstanceStatus = vmi.status ?? {};
  const next: VirtualMachineInstanceStatus = structuredClone(current);
  const phase: VMIPhase = current.phase ?? '';
  let conditions = (current.conditions ?? []);
  const options = { now, order: VMI_CONDITION_ORDER };
  const set = (input: ConditionInput) => (conditions = setCondition(conditions, input, options).conditions);
  const remove = (type: string) => (conditions = removeCondition(conditions, type, options).conditions);
  const fail = (reason: string) => {
    withPhase(next, 'Failed', now);
    next.reason = reason;
  };

  const deleting = Boolean(vmi.metadata?.deletionTimestamp);
  // The pod was just created: its node comes with the first write (the controller requeues).
  if (bindWaitMs(vmi, pod, now) !== undefined) return next;
  switch (phase) {
    case '':
    case 'Pending':
    case 'Scheduling': {
      if (phase !== 'Scheduling' && !pod) {
        if (deleting) fail('Deleted');
        else withPhase(next, 'Pending', now);
      } else if (!pod) {
        fail('PodMissing');
      } else if (isPodDown(pod)) {
        fail(pod.metadata?.deletionTimestamp ? 'PodTerminating' : 'PodFailed');
      } else if (isPodReady(pod) && !deleting) {
        withPhase(next, 'Scheduled', now);
        next.nodeName = pod.spec?.nodeName ?? '';
      } else {
        withPhase(next, 'Scheduling', now);
      }
      break;
    }
    case 'Scheduled':
    case 'Running':
      // The node handler drives these phases; a launcher pod that is gone means the VM is gone.
      if (!pod) fail('PodMissing');
      else if (pod.status?.phase === 'Failed') fail('PodFailed');
      break;
    default:
      break; // Succeeded, Failed (final), WaitingForSync, Unknown: not the controller's to change
  }

  const nowPhase: VMIPhase = next.phase ?? '';
  if (nowPhase === '' || nowPhase === 'Pending' || nowPhase === 'Scheduling' || (nowPhase === 'Failed' && phase !== 'Scheduled' && phase !== 'Running' && phase !== 'Failed' && phase !== 'Succeeded')) {
    // Before the guest starts the controller explains what the VMI waits for.
    if (!pod) set({ type: 'Ready', status: 'False', reason: 'PodNotExists', message: 'virt-launcher pod has not yet been scheduled' });
    else if (isPodDown(pod)) set({ type: 'Ready', status: 'False', reason: 'PodTerminating', message: 'virt-launcher pod is terminating' });
    else set({ type: 'Ready', status: 'False', reason: 'GuestNotRunning', message: 'Guest VM is not reported as running' });

    const scheduled = pod ? podCondition(pod, 'PodScheduled') : undefined;
    if (scheduled?.status === 'False') {
      set({
        type: VmiConditionType.PodScheduled,
        status: 'False',
        reason: scheduled.reason ?? 'Unschedulable',
        message: `${scheduled.message ?? 'the launcher pod cannot be scheduled'}; check the VM's nodeSelector, affinity, tolerations and resource requests against the nodes`,
      });
    } else {
      remove(VmiConditionType.PodScheduled);
    }
    const podFailed = pod && isPodDown(pod) && !pod.metadata?.deletionTimestamp ? { reason: 'PodFailed', message: podFailureMessage(pod) } : undefined;
    const problem = failure ?? (pod ? (imagePullFailure(pod) ?? podFailed) : undefined);
    if (problem) set({ type: VmiConditionType.Synchronized, status: 'False', reason: problem.reason, message: problem.message });
    else remove(VmiConditionType.Synchronized);
  } else if (nowPhase === 'Scheduled' && phase !== 'Scheduled') {
    // Handing over to the node handler: the start-up problems are over.
    for (const type of START_UP_CONDITIONS) remove(type);
  }
  // Written once, while the conditions are still the controller's; the node handler carries it.
  if (liveMigratable && (phase === '' || phase === 'Pending' || phase === 'Scheduling')) set(liveMigratable);
  if (conditions.length > 0 || current.conditions) next.conditions = conditions;

  // nodeName, activePods and the launcher image are recorded once the pod is on a node: with the
  // first write (above), or, for a pod the scheduler took longer over, when it is bound. The node
  // handler there watches the VMIs whose nodeName is its node.
  // A migration's target pod is active too once it is on its node (its node handler prepares it);
  // when the migration has handed the VMI to it, it is the pod and its node the VMI's node.
  if (pod && pod.spec?.nodeName && (next.phase === 'Scheduling' || next.phase === 'Scheduled' || next.phase === 'Running')) {
    const uid = pod.metadata?.uid;
    if (next.phase === 'Scheduling' || (next.phase === 'Running' && current.nodeName && current.nodeName !== pod.spec.nodeName)) next.nodeName = pod.spec.nodeName;
    if (uid) {
      const active: Record<string, string> = { [uid]: pod.spec.nodeName };
      for (const target of migrationTargets) {
        if (target.metadata?.uid && target.spec?.nodeName && !isPodDown(target)) active[target.metadata.uid] = target.spec.nodeName;
      }
      next.activePods = active;
    }
    const image = pod.spec.containers.find((container) => container.name === COMPUTE_CONTAINER)?.image;
    if (image) next.launcherContainerImageVersion = image;
  }
  // A drain's mark (set by the eviction webhook) is done once the VMI is on another node: removed
  // with the hand-over to the migration's target, as KubeVirt's target handler does, so a later
  // drain of the new node marks it again.
  if (next.evacuationNodeName !== undefined && next.nodeName !== next.evacuationNodeName) delete next.evacuationNodeName;
  return next;
}
