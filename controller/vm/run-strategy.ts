// What a VirtualMachine's run strategy asks for, given the VMI that exists and the state change
// requests the start/stop/restart subresources queued. A pure decision table: KubeVirt's documented
// behaviour (user guide "Run Strategies"; facts from virt-controller's syncRunStrategy):
//   Always          a VMI always runs: a final VMI (Succeeded or Failed) is replaced, a Stop request
//                   for the running VMI is a restart.
//   RerunOnFailure  a Failed VMI is replaced; a Succeeded one (the guest powered off) is removed and
//                   not restarted; Stop stops for good, Start starts again.
//   Manual          only Start/Stop requests start and stop it.
//   Halted          no VMI; a Start request switches the VM to Always (how `virtctl start` of a
//                   Halted VM reaches the controller).
//   Once            a VMI is started once and never restarted, whatever its outcome.
// Only the first state change request is acted on; later ones wait their turn.
import type { RunStrategy, StateChangeRequest, VMIPhase, VirtualMachine } from '../api.js';

export interface ObservedVMI {
  uid: string;
  phase: VMIPhase;
  /** metadata.deletionTimestamp is set: a stop is already under way. */
  deleting: boolean;
}

export interface RunStrategyInput {
  runStrategy: RunStrategy;
  vmi: ObservedVMI | undefined;
  stateChangeRequests: readonly StateChangeRequest[];
  /** status.runStrategy: the strategy in force when a VMI was last created; unset before the first. */
  lastRunStrategy: RunStrategy | undefined;
  /** Seconds left of the CrashLoopBackOff delay (0 when none). */
  backoffSeconds: number;
}

export type RunAction =
  | { type: 'none' }
  /** Create the VMI. */
  | { type: 'start' }
  /** Delete the VMI; a later reconcile may start a new one. */
  | { type: 'stop' }
  /** Start is due but CrashLoopBackOff holds it back: look again after this long. */
  | { type: 'wait'; seconds: number }
  /** Set spec.runStrategy to Always (a Start request on a Halted VM). */
  | { type: 'switchToAlways' };

export interface RunDecision {
  action: RunAction;
  /** Why, in words for a log line or an event. */
  reason: string;
  /** status.stateChangeRequests after this pass: acted-upon requests trimmed, any new one queued. */
  stateChangeRequests: StateChangeRequest[];
}

export function isFinal(phase: VMIPhase | undefined): boolean {
  return phase === 'Succeeded' || phase === 'Failed';
}

/** The effective strategy; the deprecated `running: true/false` maps to Always/Halted. */
export function runStrategyOf(vm: Pick<VirtualMachine, 'spec'>): RunStrategy {
  if (vm.spec.runStrategy) return vm.spec.runStrategy;
  return vm.spec.running ? 'Always' : 'Halted';
}

const first = (requests: readonly StateChangeRequest[]): StateChangeRequest | undefined => requests[0];

export function hasStartRequest(requests: readonly StateChangeRequest[]): boolean {
  return first(requests)?.action === 'Start';
}

export function hasStopRequestFor(requests: readonly StateChangeRequest[], vmi: ObservedVMI | undefined): boolean {
  const request = first(requests);
  return vmi !== undefined && request?.action === 'Stop' && request.uid !== undefined && request.uid === vmi.uid;
}

/**
 * Drop the first request once it has been acted on, judged from the observed VMI: a Stop is done
 * when its VMI is gone (absent or another uid), a Start when a live VMI exists.
 */
export function trimStateChangeRequests(requests: readonly StateChangeRequest[], vmi: ObservedVMI | undefined): StateChangeRequest[] {
  const request = first(requests);
  if (!request) return [];
  const rest = requests.slice(1);
  if (request.action === 'Stop') {
    if (!vmi || request.uid === undefined || request.uid !== vmi.uid) return rest;
  } else if (request.action === 'Start') {
    if (vmi && !vmi.deleting && !isFinal(vmi.phase)) return rest;
  }
  return [...requests];
}

export function decideRunAction(input: RunStrategyInput): RunDecision {
  const { runStrategy, vmi, stateChangeRequests: requests, backoffSeconds } = input;
  const trimmed = trimStateChangeRequests(requests, vmi);
  const decide = (action: RunAction, reason: string, stateChangeRequests = trimmed): RunDecision => ({ action, reason, stateChangeRequests });
  const startOrWait = (reason: string): RunDecision =>
    backoffSeconds > 0
      ? decide({ type: 'wait', seconds: backoffSeconds }, `${reason}, held back by CrashLoopBackOff for ${backoffSeconds}s`)
      : decide({ type: 'start' }, reason);
  const stopUnlessDeleting = (reason: string, stateChangeRequests = trimmed): RunDecision =>
    vmi?.deleting ? decide({ type: 'none' }, `${reason}; deletion already under way`) : decide({ type: 'stop' }, reason, stateChangeRequests);

  switch (runStrategy) {
    case 'Always': {
      if (!vmi) return startOrWait('runStrategy Always and no VMI');
      if (hasStopRequestFor(requests, vmi)) return stopUnlessDeleting('restart requested (Stop request for the running VMI, runStrategy Always)');
      if (isFinal(vmi.phase)) return stopUnlessDeleting(`VMI ${vmi.phase}, runStrategy Always restarts it`);
      return decide({ type: 'none' }, 'VMI exists');
    }
    case 'RerunOnFailure': {
      if (vmi) {
        if (hasStopRequestFor(requests, vmi)) return stopUnlessDeleting('Stop request');
        if (vmi.phase === 'Failed') {
          // Queue a Start so the replacement comes after the deletion, and a Stop request cannot be
          // overtaken by an automatic restart.
          const withStart = vmi.deleting || hasStartRequest(trimmed) ? trimmed : [...trimmed, { action: 'Start' as const }];
          return stopUnlessDeleting('VMI Failed, runStrategy RerunOnFailure restarts it', withStart);
        }
        if (vmi.phase === 'Succeeded') return stopUnlessDeleting('VMI Succeeded (guest powered off); runStrategy RerunOnFailure does not restart it');
        return decide({ type: 'none' }, 'VMI exists');
      }
      if (hasStartRequest(requests)) return startOrWait('Start request');
      // A VM that never ran under RerunOnFailure (new, or just switched to it) starts by itself.
      if (input.lastRunStrategy !== 'RerunOnFailure') return startOrWait('runStrategy RerunOnFailure and the VM has not run under it yet');
      return decide({ type: 'none' }, 'stopped; RerunOnFailure waits for a Start request');
    }
    case 'Manual': {
      if (vmi) {
        if (hasStopRequestFor(requests, vmi)) return stopUnlessDeleting('Stop request');
        // A Start request for a VM whose guest has powered off: clear the final VMI first.
        if (hasStartRequest(requests) && isFinal(vmi.phase)) return stopUnlessDeleting(`Start request with the previous VMI ${vmi.phase}`);
        return decide({ type: 'none' }, 'VMI exists');
      }
      if (hasStartRequest(requests)) return decide({ type: 'start' }, 'Start request');
      return decide({ type: 'none' }, 'stopped; Manual waits for a Start request');
    }
    case 'Halted': {
      if (vmi) return stopUnlessDeleting('runStrategy Halted');
      if (hasStartRequest(requests)) return decide({ type: 'switchToAlways' }, 'Start request on a Halted VM', [...requests]);
      return decide({ type: 'none' }, 'runStrategy Halted');
    }
    case 'Once': {
      if (!vmi) return decide({ type: 'start' }, 'runStrategy Once and no VMI yet');
      return decide({ type: 'none' }, isFinal(vmi.phase) ? `VMI ${vmi.phase}; runStrategy Once never restarts` : 'VMI exists');
    }
  }
}

/** Whether the VM is meant to be running: used by printableStatus and the Ready condition. */
export function isSetToRun(input: Pick<RunStrategyInput, 'runStrategy' | 'vmi' | 'stateChangeRequests' | 'lastRunStrategy'>): boolean {
  const { runStrategy, vmi, stateChangeRequests: requests } = input;
  switch (runStrategy) {
    case 'Always':
      return true;
    case 'Halted':
      return false;
    case 'Manual':
      return vmi ? !hasStopRequestFor(requests, vmi) : hasStartRequest(requests);
    case 'RerunOnFailure':
      return vmi ? vmi.phase !== 'Succeeded' : hasStartRequest(requests) || input.lastRunStrategy !== 'RerunOnFailure';
    case 'Once':
      return vmi === undefined;
  }
}
