// The early hand-over (runtime/contracts/vmi-status.ts, ADR 0017): the controller writes a VMI's
// node with Scheduling, as soon as its launcher pod is bound, and Scheduled only once the kubelet
// reports the pod ready, which waits for the kubelet's next relist (it sees a container start up to
// a second late). The handler of that node attaches to the launcher as soon as the VMI names its
// node; when the guest runs before the controller's Scheduled, the handler takes the VMI from
// Scheduling straight to Running, in one write: what the controller says at Scheduled, then its
// own pass. Its tests of the fields it changes (the phase among them) refuse the write when the
// controller's Scheduled came in between.
import type { VirtualMachineInstanceStatus } from '../runtime/api/index.js';
import { formatConditionTime, removeCondition } from '../runtime/conditions.js';
import { START_UP_CONDITIONS, VMI_CONDITION_ORDER } from '../runtime/contracts/vmi-conditions.js';
import type { DomainState } from './domain-state.js';
import type { VirtualMachineInstance } from './vmi-handler.js';
import { computeVmiStatus } from './vmi-status.js';

/**
 * The status of the early hand-over, or undefined when there is none to write: the VMI is not
 * Scheduling on this node, is being deleted, or its guest (in the active pod here) has not started.
 */
export function earlyHandoverStatus(vmi: VirtualMachineInstance, nodeName: string, domain: DomainState | undefined, now: Date = new Date()): VirtualMachineInstanceStatus | undefined {
  const current = vmi.status ?? {};
  if (current.phase !== 'Scheduling' || current.nodeName !== nodeName || vmi.metadata?.deletionTimestamp) return undefined;
  // Only a guest that runs (or was started paused), in the VMI's pod on this node: a launcher that
  // failed before that is reported as the controller and the kubelet see it.
  if (!domain || current.activePods?.[domain.podUid] !== nodeName || (domain.phase !== 'Running' && domain.phase !== 'Paused')) return undefined;
  const options = { now, order: VMI_CONDITION_ORDER };
  // The controller's start-up explanations end with Scheduled, as in its own hand-over.
  let conditions = current.conditions ?? [];
  for (const type of START_UP_CONDITIONS) conditions = removeCondition(conditions, type, options).conditions;
  const scheduled: VirtualMachineInstanceStatus = {
    ...structuredClone(current),
    phase: 'Scheduled',
    phaseTransitionTimestamps: [...(current.phaseTransitionTimestamps ?? []), { phase: 'Scheduled', phaseTransitionTimestamp: formatConditionTime(now) }],
    ...(conditions.length > 0 || current.conditions ? { conditions } : {}),
  };
  const next = computeVmiStatus({ ...vmi, status: scheduled }, domain, now);
  return next.phase === 'Running' ? next : undefined;
}
