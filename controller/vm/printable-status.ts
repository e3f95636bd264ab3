// status.printableStatus: one word for `kubectl get vm`. Several can hold at once (Running and
// Migrating, Paused and Terminating); the first that holds, in KubeVirt's order, wins.
import type { PrintableStatus, RunStrategy, VMICondition, VMIPhase } from '../api.js';
import { isFinal } from './run-strategy.js';

/** VMI conditions the VMI controller sets from the launcher pod, as KubeVirt names them. */
export const POD_SCHEDULED = 'PodScheduled';
export const SYNCHRONIZED = 'Synchronized';
export const PAUSED = 'Paused';
export const REASON_UNSCHEDULABLE = 'Unschedulable';
export const REASON_ERR_IMAGE_PULL = 'ErrImagePull';
export const REASON_IMAGE_PULL_BACKOFF = 'ImagePullBackOff';
export const REASON_PVC_NOT_FOUND = 'FailedPvcNotFound';

export interface PrintableStatusInput {
  vmDeleting: boolean;
  runStrategy: RunStrategy;
  vmi:
    | {
        phase: VMIPhase;
        deleting: boolean;
        conditions: readonly VMICondition[];
        migrating: boolean;
      }
    | undefined;
  /** A VMI create was issued (or is due this pass) and the cache has not shown it yet. */
  startExpected: boolean;
  /** A VMI delete was issued (or is due this pass) and the cache still shows the VMI. */
  stopExpected: boolean;
  consecutiveStartFailures: number;
}

function hasCondition(conditions: readonly VMICondition[] | undefined, type: string, status: string, reason?: string): boolean {
  return (conditions ?? []).some((c) => c.type === type && c.status === status && (reason === undefined || c.reason === reason));
}

export function printableStatus(input: PrintableStatusInput): PrintableStatus {
  const { vmi } = input;
  const conditions = vmi?.conditions;
  const live = vmi !== undefined && !isFinal(vmi.phase);
  const paused = hasCondition(conditions, PAUSED, 'True');
  const checks: Array<[PrintableStatus, () => boolean]> = [
    ['Terminating', () => input.vmDeleting],
    ['Stopping', () => live && (vmi.deleting || input.stopExpected)],
    ['Migrating', () => live && vmi.migrating],
    ['Paused', () => vmi?.phase === 'Running' && paused],
    ['Running', () => vmi?.phase === 'Running' && !paused],
    ['ErrorPvcNotFound', () => hasCondition(conditions, SYNCHRONIZED, 'False', REASON_PVC_NOT_FOUND)],
    ['ErrorUnschedulable', () => hasCondition(conditions, POD_SCHEDULED, 'False', REASON_UNSCHEDULABLE)],
    ['ErrImagePull', () => hasCondition(conditions, SYNCHRONIZED, 'False', REASON_ERR_IMAGE_PULL)],
    ['ImagePullBackOff', () => hasCondition(conditions, SYNCHRONIZED, 'False', REASON_IMAGE_PULL_BACKOFF)],
    [
      'Starting',
      () => (vmi === undefined ? input.startExpected : vmi.phase === '' || vmi.phase === 'Pending' || vmi.phase === 'Scheduling' || vmi.phase === 'Scheduled'),
    ],
    [
      'CrashLoopBackOff',
      () =>
        (vmi === undefined || isFinal(vmi.phase)) &&
        !input.startExpected &&
        input.consecutiveStartFailures > 0 &&
        (input.runStrategy === 'Always' || input.runStrategy === 'RerunOnFailure' || input.runStrategy === 'Once'),
    ],
    ['Stopped', () => (vmi ? isFinal(vmi.phase) : !input.startExpected)],
  ];
  for (const [status, holds] of checks) if (holds()) return status;
  return 'Unknown';
}
