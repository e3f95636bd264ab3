// A VirtualMachine's status, computed once per reconcile from the VM, its VMI and what this pass did.
// Pure, so the controller writes only when the result differs from what is stored.
import type { RunStrategy, StateChangeRequest, VirtualMachine, VirtualMachineInstance, VirtualMachineStatus } from '../api.js';
import { getCondition, removeCondition, setCondition } from '../../runtime/conditions.js';
import type { Condition } from '../../runtime/conditions.js';
import { printableStatus } from './printable-status.js';
import type { StartFailure } from './crash-loop.js';
import type { StatusRef } from './revisions.js';

export const VM_CONDITION_ORDER: readonly string[] = ['Ready', 'Failure', 'Paused', 'RestartRequired'];

/** Conditions the VM computes itself rather than mirroring from the VMI. */
const OWN_CONDITIONS = new Set(['Ready', 'Failure', 'RestartRequired']);

/** The annotation on a VMI carrying the hash of the VM spec it was created from. */
export const TEMPLATE_HASH_ANNOTATION = 'kubevm.io/vm-template-hash';

export interface VMStatusInput {
  vm: VirtualMachine;
  vmi: VirtualMachineInstance | undefined;
  runStrategy: RunStrategy;
  stateChangeRequests: StateChangeRequest[];
  startFailure: StartFailure | undefined;
  startExpected: boolean;
  stopExpected: boolean;
  /** What kept this pass from doing its job, shown as the Failure condition. */
  failure: { reason: string; message: string } | undefined;
  /** The hash of the VM spec a new VMI would be created from now. */
  templateHash: string;
  instancetypeRef: StatusRef | undefined;
  preferenceRef: StatusRef | undefined;
  now: Date;
}

export function computeVMStatus(input: VMStatusInput): VirtualMachineStatus {
  const { vm, vmi, now } = input;
  const current = vm.status ?? {};
  const options = { now, order: VM_CONDITION_ORDER };
  let conditions = (current.conditions ?? []);
  const vmiConditions = (vmi?.status?.conditions ?? []);
  const vmiPhase = vmi?.status?.phase ?? '';
  const vmiDeleting = Boolean(vmi?.metadata?.deletionTimestamp);

  // Ready mirrors the VMI's Ready condition, keeping its transition time.
  const vmiReady = getCondition(vmiConditions, 'Ready');
  if (!vmi) {
    conditions = setCondition(conditions, { type: 'Ready', status: 'False', reason: 'VMINotExists', message: 'VMI does not exist' }, options).conditions;
  } else if (!vmiReady) {
    conditions = setCondition(conditions, { type: 'Ready', status: 'False', reason: 'VMIConditionMissing', message: 'VMI is missing the Ready condition' }, options).conditions;
  } else {
    conditions = mirror(conditions, vmiReady, options);
  }

  conditions = input.failure
    ? setCondition(conditions, { type: 'Failure', status: 'True', reason: input.failure.reason, message: input.failure.message }, options).conditions
    : removeCondition(conditions, 'Failure', options).conditions;

  // RestartRequired: the VM was edited since its VMI was created; the edit applies on the next start.
  const liveVMI = vmi && !vmiDeleting && vmiPhase !== 'Succeeded' && vmiPhase !== 'Failed';
  const createdFrom = vmi?.metadata?.annotations?.[TEMPLATE_HASH_ANNOTATION];
  conditions =
    liveVMI && createdFrom !== undefined && createdFrom !== input.templateHash
      ? setCondition(
          conditions,
          { type: 'RestartRequired', status: 'True', reason: 'SpecChanged', message: 'the VM spec changed since the VMI was started; restart the VM to apply the change' },
          options,
        ).conditions
      : removeCondition(conditions, 'RestartRequired', options).conditions;

  // Everything else the VMI reports (Paused, AgentConnected, PodScheduled, Synchronized, ...) is
  // mirrored as KubeVirt does, and dropped once the VMI no longer reports it.
  const mirrored = new Set<string>();
  for (const condition of vmiConditions) {
    if (OWN_CONDITIONS.has(condition.type)) continue;
    mirrored.add(condition.type);
    conditions = mirror(conditions, condition, options);
  }
  for (const condition of [...conditions]) {
    if (!OWN_CONDITIONS.has(condition.type) && !mirrored.has(condition.type)) conditions = removeCondition(conditions, condition.type, options).conditions;
  }

  const status: VirtualMachineStatus = {};
  status.printableStatus = printableStatus({
    vmDeleting: Boolean(vm.metadata?.deletionTimestamp),
    runStrategy: input.runStrategy,
    vmi: vmi
      ? {
          phase: vmiPhase,
          deleting: vmiDeleting,
          conditions: vmiConditions,
          // KubeVirt's IsMigrating: started and not ended (completed, failed or aborted).
          migrating: Boolean(vmi.status?.migrationState?.startTimestamp && !vmi.status.migrationState.endTimestamp),
        }
      : undefined,
    startExpected: input.startExpected,
    stopExpected: input.stopExpected,
    consecutiveStartFailures: input.startFailure?.consecutiveFailCount ?? 0,
  });
  status.created = vmi !== undefined;
  status.ready = vmiReady?.status === 'True' && vmiPhase === 'Running';
  if (conditions.length > 0) status.conditions = conditions;
  if (vm.metadata?.generation !== undefined) {
    status.observedGeneration = vm.metadata.generation;
    status.desiredGeneration = vm.metadata.generation;
  }
  if (input.stateChangeRequests.length > 0) status.stateChangeRequests = input.stateChangeRequests;
  if (input.startFailure) status.startFailure = input.startFailure;
  // Recorded once a VMI has existed, so RerunOnFailure can tell "never ran under it" from "stopped".
  if (current.runStrategy !== undefined || vmi !== undefined || input.startExpected) status.runStrategy = input.runStrategy;
  if (input.instancetypeRef) status.instancetypeRef = input.instancetypeRef;
  if (input.preferenceRef) status.preferenceRef = input.preferenceRef;
  return status;
}

function mirror(conditions: Condition[], source: Condition, options: { now: Date; order: readonly string[] }): Condition[] {
  // setCondition keeps our transition time unless the status flips; take the VMI's instead so the
  // VM says when the VMI's condition changed, not when we noticed.
  const next = setCondition(conditions, { type: source.type, status: source.status, ...(source.reason ? { reason: source.reason } : {}), ...(source.message ? { message: source.message } : {}) }, options).conditions;
  return next.map((condition) =>
    condition.type === source.type && source.lastTransitionTime ? { ...condition, lastTransitionTime: `${new Date(source.lastTransitionTime).toISOString().slice(0, 19)}Z` } : condition,
  );
}
