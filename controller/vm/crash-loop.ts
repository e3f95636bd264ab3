// CrashLoopBackOff: a VMI that fails before its guest ever ran is a start failure; consecutive
// start failures delay the next start exponentially, as KubeVirt's VM controller does
// (status.startFailure; 10 s × failures², plus up to half again as jitter so many failing VMs
// spread out, capped at 5 minutes).
import type { RunStrategy, VirtualMachineStatus } from '../api.js';
import { formatConditionTime } from '../../runtime/conditions.js';
import { isFinal } from './run-strategy.js';

export const MAX_CRASH_LOOP_BACKOFF_SECONDS = 300;
const MIN_INTERVAL_SECONDS = 10;

export type StartFailure = NonNullable<VirtualMachineStatus['startFailure']>;

export function startBackoffSeconds(failCount: number, random: () => number = Math.random, maxDelay = MAX_CRASH_LOOP_BACKOFF_SECONDS): number {
  const count = Math.max(1, failCount);
  const interval = Math.max(MIN_INTERVAL_SECONDS, Math.floor(maxDelay / 30));
  const base = interval * count * count;
  const jitter = Math.floor(random() * (Math.floor(base / 2) + 1));
  return Math.min(maxDelay, base + jitter);
}

export interface VMIStartOutcome {
  uid: string;
  phase: string | undefined;
  /** The VMI reached Running at some point (phaseTransitionTimestamps). */
  everRan: boolean;
}

/** The startFailure status after seeing `vmi` (undefined clears it). */
export function nextStartFailure(
  current: StartFailure | undefined,
  vmi: VMIStartOutcome | undefined,
  runStrategy: RunStrategy,
  now: Date,
  random: () => number = Math.random,
): StartFailure | undefined {
  // A guest that ran once is healthy; strategies that never restart by themselves cannot loop.
  if (vmi?.everRan) return undefined;
  if (runStrategy !== 'Always' && runStrategy !== 'RerunOnFailure' && runStrategy !== 'Once') return undefined;
  if (!vmi || !isFinal(vmi.phase as never)) return current;
  if (current?.lastFailedVMIUID === vmi.uid) return current; // this failure is already counted
  const count = (current?.consecutiveFailCount ?? 0) + 1;
  const retryAfter = new Date(now.getTime() + startBackoffSeconds(count, random) * 1000);
  return { consecutiveFailCount: count, lastFailedVMIUID: vmi.uid, retryAfterTimestamp: formatConditionTime(retryAfter) };
}

/** Whole seconds until the next start may happen (0: now). */
export function backoffSecondsLeft(startFailure: StartFailure | undefined, now: Date): number {
  const retryAfter = startFailure?.retryAfterTimestamp;
  if (!retryAfter) return 0;
  const left = Math.ceil((new Date(retryAfter).getTime() - now.getTime()) / 1000);
  return Number.isFinite(left) && left > 0 ? left : 0;
}
