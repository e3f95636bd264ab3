// The part of a VMI's status the node handler owns (runtime/contracts/vmi-status.ts, ADR 0008): the phases from Running on, the
// interfaces, guestOSInfo, fsFreezeStatus and the conditions the launcher reports. Computed once per pass from the
// VMI and the launcher's state, as a pure function, so "did anything change" is a comparison.
import type { VirtualMachineInstance, VirtualMachineInstanceNetworkInterface, VirtualMachineInstancePhase, VirtualMachineInstanceStatus } from '../runtime/api/index.js';
import { formatConditionTime, removeCondition, setCondition } from '../runtime/conditions.js';
import type { Condition, ConditionInput } from '../runtime/conditions.js';
import { VMI_CONDITION_ORDER, VmiConditionType } from '../runtime/contracts/vmi-conditions.js';
import type { DomainState } from './domain-state.js';
import { NODE_HANDLER_PHASES, VMI_STATUS_FIELDS } from '../runtime/contracts/vmi-status.js';
import { statusPatch } from '../runtime/status.js';

export { VmiConditionType };

/** Whether the handler has anything to say about a VMI in this phase (before it, the controller drives it). */
export function isHandledPhase(phase: VirtualMachineInstancePhase | undefined): boolean {
  return phase !== undefined && NODE_HANDLER_PHASES.includes(phase);
}

/** The VMI phase a domain phase means; undefined when the domain has not started yet. */
export function vmiPhaseOf(domain: DomainState): VirtualMachineInstancePhase | undefined {
  switch (domain.phase) {
    case 'Pending':
    case 'Starting':
      return undefined;
    case 'Running':
    case 'Paused':
    case 'ShuttingDown':
      return 'Running';
    case 'Shutoff':
      return 'Succeeded';
    case 'Failed':
      return 'Failed';
  }
}

function readyCondition(domain: DomainState): ConditionInput {
  switch (domain.phase) {
    case 'Running':
      return { type: VmiConditionType.Ready, status: 'True' };
    case 'Paused':
      return { type: VmiConditionType.Ready, status: 'False', reason: 'Paused', message: 'The VMI is paused.' };
    case 'ShuttingDown':
      return { type: VmiConditionType.Ready, status: 'False', reason: 'ShuttingDown', message: 'The guest is shutting down.' };
    case 'Shutoff':
      return { type: VmiConditionType.Ready, status: 'False', reason: 'Shutoff', message: 'The guest has stopped.' };
    case 'Failed':
      return { type: VmiConditionType.Ready, status: 'False', reason: domain.failure?.reason ?? 'Failed', message: domain.failure?.message ?? 'The VM failed.' };
    case 'Pending':
    case 'Starting':
      return { type: VmiConditionType.Ready, status: 'False', reason: 'Starting', message: 'The launcher is starting the guest.' };
  }
}

/** A migration target's stop is never reported (computeVmiStatus), so its reason has no case here. */
function pausedCondition(domain: DomainState): ConditionInput | undefined {
  if (domain.phase !== 'Paused') return undefined;
  // KubeVirt's reasons, so tooling that reads them keeps working.
  switch (domain.pauseReason) {
    case 'IOError':
      return { type: VmiConditionType.Paused, status: 'True', reason: 'PausedIOError', message: 'VMI was paused, low-level IO error detected' };
    default:
      return { type: VmiConditionType.Paused, status: 'True', reason: 'PausedByUser', message: 'VMI was paused by user' };
  }
}

function emulationCondition(domain: DomainState): ConditionInput | undefined {
  if (domain.accelerator === 'tcg') {
    return { type: VmiConditionType.Emulation, status: 'True', reason: 'TCG', message: `QEMU runs the guest under TCG software emulation: ${domain.acceleratorReason ?? '/dev/kvm is absent or not usable'}` };
  }
  if (domain.accelerator === 'kvm') return { type: VmiConditionType.Emulation, status: 'False', reason: 'KVM', message: `QEMU runs the guest with KVM${domain.acceleratorReason ? `: ${domain.acceleratorReason}` : '.'}` };
  return undefined;
}

function applyCondition(conditions: Condition[], type: string, input: ConditionInput | undefined, now: Date): Condition[] {
  const options = { now, order: VMI_CONDITION_ORDER };
  return input ? setCondition(conditions, input, options).conditions : removeCondition(conditions, type, options).conditions;
}

/**
 * The VMI status after this handler's pass. Fields the handler does not own are carried over
 * untouched; the result equals `vmi.status` (see `statusChanged`) when there is nothing to report.
 */
export function computeVmiStatus(vmi: VirtualMachineInstance, domain: DomainState | undefined, now: Date = new Date()): VirtualMachineInstanceStatus {
  const current: VirtualMachineInstanceStatus = vmi.status ?? {};
  if (!domain || !isHandledPhase(current.phase)) return current;
  // A domain from a pod that is not (or no longer) this VMI's active pod says nothing about it.
  if (!current.activePods || !(domain.podUid in current.activePods)) return current;
  // A migration target holds its guest stopped until its disk exports are gone (launcher -S), and
  // the VMI may already point at it: that moment is the migration's downtime, not a pause (the VM
  // would flicker Paused). The guest runs in a moment; its Running is what gets reported.
  if (domain.phase === 'Paused' && domain.pauseReason === 'Migration') return current;

  const next: VirtualMachineInstanceStatus = structuredClone(current);
  const phase = vmiPhaseOf(domain);
  if (phase !== undefined && phase !== current.phase) {
    next.phase = phase;
    next.phaseTransitionTimestamps = [...(current.phaseTransitionTimestamps ?? []), { phase, phaseTransitionTimestamp: formatConditionTime(now) }];
  }

  let conditions = (current.conditions ?? []);
  // Before the guest runs, the controller's view stands; the handler only reports failures.
  if (phase !== undefined) {
    conditions = applyCondition(conditions, VmiConditionType.Ready, readyCondition(domain), now);
    conditions = applyCondition(conditions, VmiConditionType.Paused, pausedCondition(domain), now);
    conditions = applyCondition(
      conditions,
      VmiConditionType.AgentConnected,
      domain.agentConnected && phase === 'Running' ? { type: VmiConditionType.AgentConnected, status: 'True' } : undefined,
      now,
    );
    conditions = applyCondition(conditions, VmiConditionType.Emulation, emulationCondition(domain), now);
  }
  conditions = applyCondition(
    conditions,
    VmiConditionType.Synchronized,
    domain.phase === 'Failed'
      ? { type: VmiConditionType.Synchronized, status: 'False', reason: domain.failure?.reason ?? 'LauncherFailed', message: domain.failure?.message ?? 'The launcher reported a failure.' }
      : undefined,
    now,
  );
  if (conditions.length > 0 || current.conditions) next.conditions = conditions;

  if (phase === 'Running') {
    if (domain.interfaces) next.interfaces = namedInterfaces(vmi, domain.interfaces);
    if (domain.guestOSInfo) next.guestOSInfo = domain.guestOSInfo;
  }
  // As KubeVirt's virt-handler: "frozen" while the agent says so, unset once it says thawed or is gone.
  if (phase !== undefined) {
    if (phase === 'Running' && domain.fsFrozen) next.fsFreezeStatus = 'frozen';
    else delete next.fsFreezeStatus;
  }
  return next;
}

/**
 * The guest's interfaces with the spec's interface names: matched by MAC address, or, with one
 * interface on each side, by being the only one (the usual single pod network).
 */
export function namedInterfaces(vmi: VirtualMachineInstance, observed: readonly VirtualMachineInstanceNetworkInterface[]): VirtualMachineInstanceNetworkInterface[] {
  const specInterfaces = (vmi.spec.domain.devices.interfaces ?? []) as { name: string; macAddress?: string }[];
  return observed.map((iface) => {
    if (iface.name) return iface;
    const byMac = iface.mac ? specInterfaces.find((spec) => spec.macAddress?.toLowerCase() === iface.mac?.toLowerCase()) : undefined;
    const only = specInterfaces.length === 1 && observed.length === 1 ? specInterfaces[0] : undefined;
    const name = (byMac ?? only)?.name;
    return name ? { name, ...iface } : iface;
  });
}

/**
 * Whether a computed status differs from the stored one, ignoring key order and undefined fields.
 * Throws if it differs in a field the node handler does not own (the patch it would send).
 */
export function statusChanged(stored: VirtualMachineInstanceStatus | undefined, computed: VirtualMachineInstanceStatus): boolean {
  return statusPatch(stored, computed, VMI_STATUS_FIELDS['node-handler'], 'the node handler').length > 0;
}
