// A VirtualMachineInstanceMigration's phase from what the controller sees, as KubeVirt's migration
// controller moves it:
//
//   Pending (while a parallel migration limit is reached) ─target pod created─▶ Scheduling ─bound to a node─▶ Scheduled ─pod ready─▶ PreparingTarget
//     ─target handler ready (migrationState.targetNodeAddress)─▶ TargetReady
//     ─source started (migrationState.startTimestamp)─▶ Running ─completed─▶ Succeeded
//   any phase before Succeeded ─▶ Failed (VMI gone or not running, not live-migratable, the target
//   pod unschedulable or not ready in time, failed, or deleted, the migration failed)
//
// Pure: the reconcile reads the world, this decides, the reconcile acts and writes status once.
import type { V1Pod } from '@kubernetes/client-node';
import type { MigrationPhase, VirtualMachineInstanceMigrationState } from '../../runtime/api/index.js';
import type { ConditionInput } from '../../runtime/conditions.js';
import type { VirtualMachineInstance } from '../api.js';
import type { ParallelLimitWait } from './parallel.js';
import type { Migration } from './target-pod.js';

/** KubeVirt's: a target pod the scheduler cannot place fails the migration after 5 minutes. */
export const DEFAULT_UNSCHEDULABLE_TIMEOUT_SECONDS = 5 * 60;
/** KubeVirt's catch-all: a target pod not running after 15 minutes fails the migration. */
export const DEFAULT_PENDING_TIMEOUT_SECONDS = 15 * 60;

export interface MigrationTimeouts {
  unschedulableSeconds: number;
  pendingSeconds: number;
}

export interface MigrationObservation {
  migration: Migration;
  vmi: VirtualMachineInstance | undefined;
  targetPod: V1Pod | undefined;
  /** The VMI's LiveMigratable condition as computed now. */
  liveMigratable: ConditionInput | undefined;
  /** Set when a parallel migration limit keeps this migration from starting now (parallel.ts). */
  parallelLimit?: ParallelLimitWait | undefined;
  now: Date;
  timeouts: MigrationTimeouts;
}

export interface MigrationDecision {
  phase: MigrationPhase;
  /** Create the target pod now. */
  createTargetPod: boolean;
  /** Remove a target pod that will never take over. */
  deleteTargetPod: boolean;
  /** Why the migration failed (migrationState.failureReason and a Warning event), when it did. */
  failureReason?: string;
  /** Why it waits, for a condition on the migration (e.g. the scheduler's message). */
  waiting?: { reason: string; message: string };
  /** Look again after this long (a timeout to check). */
  requeueAfterMs?: number;
}

const FINAL: ReadonlySet<string> = new Set(['Succeeded', 'Failed']);

function podCondition(pod: V1Pod, type: string): { status?: string; reason?: string; message?: string } | undefined {
  return pod.status?.conditions?.find((c) => c.type === type);
}

function ageSeconds(pod: V1Pod, now: Date): number {
  const created = pod.metadata?.creationTimestamp;
  return created ? (now.getTime() - new Date(created).getTime()) / 1000 : 0;
}

function failed(reason: string, targetPod: V1Pod | undefined): MigrationDecision {
  return { phase: 'Failed', createTargetPod: false, deleteTargetPod: targetPod !== undefined, failureReason: reason };
}

/** The migration's state on the VMI, if it is about this migration. */
function stateOf(vmi: VirtualMachineInstance, migration: Migration): VirtualMachineInstanceMigrationState | undefined {
  const state = vmi.status?.migrationState;
  return state?.migrationUid !== undefined && state.migrationUid === migration.metadata?.uid ? state : undefined;
}

/**
 * Why the VMI, as seen, cannot be migrated by this unfinished migration: it is gone, not Running,
 * or has no node. A reason read from a cache may be stale (a VMI created or started a moment ago):
 * the controller confirms it on the API server before it fails the migration for it.
 */
export function vmiRefusal(migration: Migration, vmi: VirtualMachineInstance | undefined): string | undefined {
  if (!vmi) return `VirtualMachineInstance ${migration.spec.vmiName} does not exist`;
  const state = stateOf(vmi, migration);
  if (state?.failed || state?.completed) return undefined;
  if (vmi.status?.phase !== 'Running') return `VirtualMachineInstance ${migration.spec.vmiName} is ${vmi.status?.phase ?? 'not started'}; only a Running VMI is migrated`;
  if (!vmi.status.nodeName) return `VirtualMachineInstance ${migration.spec.vmiName} has no node in its status`;
  return undefined;
}

export function decideMigration(o: MigrationObservation): MigrationDecision {
  const { migration, vmi, targetPod, now, timeouts } = o;
  const current = migration.status?.phase ?? 'Pending';
  if (FINAL.has(current)) {
    // A failed migration's target never runs the guest: make sure it is gone.
    return { phase: current, createTargetPod: false, deleteTargetPod: current === 'Failed' && targetPod !== undefined };
  }
  const refusal = vmiRefusal(migration, vmi);
  if (refusal !== undefined || !vmi) return failed(refusal ?? 'the migration failed', targetPod);
  const state = stateOf(vmi, migration);
  if (state?.failed) return failed(state.failureReason ?? 'the migration failed', targetPod);
  if (state?.completed) return { phase: 'Succeeded', createTargetPod: false, deleteTargetPod: false };
  const sourceNode = vmi.status?.nodeName ?? '';
  if (o.liveMigratable?.status === 'False') return failed(`${o.liveMigratable.reason ?? 'NotLiveMigratable'}: ${o.liveMigratable.message ?? ''}`, targetPod);

  if (!targetPod) {
    // Once created, a target pod that disappears is a failure, not a reason for a second one.
    if (current !== 'Pending') return failed('the target pod was deleted', undefined);
    // KubeVirt keeps it Pending, no timeout: it starts when a migration in flight ends.
    if (o.parallelLimit) return { phase: 'Pending', createTargetPod: false, deleteTargetPod: false, waiting: o.parallelLimit };
    return { phase: 'Scheduling', createTargetPod: true, deleteTargetPod: false };
  }
  if (targetPod.metadata?.deletionTimestamp) return failed('the target pod is being deleted', targetPod);
  if (targetPod.status?.phase === 'Failed' || targetPod.status?.phase === 'Succeeded') {
    return failed(`the target pod ${targetPod.metadata?.name} ended (${targetPod.status.phase}${targetPod.status.message ? `: ${targetPod.status.message}` : ''})`, targetPod);
  }
  const age = ageSeconds(targetPod, now);
  if (!targetPod.spec?.nodeName) {
    const scheduled = podCondition(targetPod, 'PodScheduled');
    if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
      const message = `the target pod ${targetPod.metadata?.name} cannot be scheduled: ${scheduled.message ?? 'no node fits'}`;
      if (age >= timeouts.unschedulableSeconds) return failed(`${message} (for ${timeouts.unschedulableSeconds} s)`, targetPod);
      return { phase: 'Scheduling', createTargetPod: false, deleteTargetPod: false, waiting: { reason: 'Unschedulable', message }, requeueAfterMs: Math.ceil((timeouts.unschedulableSeconds - age) * 1000) };
    }
    if (age >= timeouts.pendingSeconds) return failed(`the target pod ${targetPod.metadata?.name} was not scheduled within ${timeouts.pendingSeconds} s`, targetPod);
    return { phase: 'Scheduling', createTargetPod: false, deleteTargetPod: false, requeueAfterMs: Math.ceil((timeouts.pendingSeconds - age) * 1000) };
  }
  if (targetPod.spec.nodeName === sourceNode) return failed(`the target pod landed on the source node ${sourceNode}`, targetPod);
  const ready = targetPod.status?.phase === 'Running' && podCondition(targetPod, 'Ready')?.status === 'True';
  if (!ready) {
    if (age >= timeouts.pendingSeconds) return failed(`the target pod ${targetPod.metadata?.name} was not ready within ${timeouts.pendingSeconds} s`, targetPod);
    return { phase: 'Scheduled', createTargetPod: false, deleteTargetPod: false, requeueAfterMs: Math.ceil((timeouts.pendingSeconds - age) * 1000) };
  }
  if (state?.startTimestamp) return { phase: 'Running', createTargetPod: false, deleteTargetPod: false };
  if (state?.targetNodeAddress) return { phase: 'TargetReady', createTargetPod: false, deleteTargetPod: false };
  return { phase: 'PreparingTarget', createTargetPod: false, deleteTargetPod: false };
}
