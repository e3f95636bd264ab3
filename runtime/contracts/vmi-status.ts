// Who writes which part of a VirtualMachineInstance's status (ADR 0008), declared once: the
// controller and the node handler both write the status subresource, each only the fields it owns,
// with a JSON patch that tests the previous value of every field it changes
// (runtime/status.ts `patchStatusIfChanged`). Fields two writers share (the phase and the
// conditions) change hands with the phase: the controller drives a VMI until its launcher pod is on
// a node (Scheduled), the node handler from then on; each tests the value it read, so a write that
// lost a race is refused instead of overwriting newer facts. The controller records the pod's node
// (nodeName, activePods) as soon as the pod is bound, with Scheduling; the handler of that node may
// take a Scheduling VMI straight to Running when its launcher's guest runs before the kubelet has
// reported the pod ready (node-handler/early-handover.ts); whichever of that and the controller's
// Scheduled comes second is refused by its test of the phase, or finds nothing to change.
//
//   status field                     controller                                 node handler
//   phase, phaseTransitionTimestamps '' → Pending → Scheduling → Scheduled;      Scheduled | Scheduling (on its node, the
//                                    Failed when the launcher pod is gone       guest running) → Running → Succeeded | Failed
//   reason                           why it failed (PodMissing, PodFailed, ...)  —
//   conditions                       Ready, PodScheduled, Synchronized until      Ready, Paused, AgentConnected, Synchronized,
//                                    Scheduled; LiveMigratable, once, before    kubevm.io/Emulation from the hand-over on
//                                    then (the handler carries it)
//   nodeName, activePods,            yes, once the pod is bound (a migration's  —
//   launcherContainerImageVersion    target pod is active too; on completion
//                                    the VMI moves to it)
//   interfaces, guestOSInfo,         —                                          yes
//   fsFreezeStatus
//   migrationState                   —                                          yes: the target's handler starts it (the
//                                                                               migration, the nodes, its own address),
//                                                                               the source's reports start and end
//   evacuationNodeName               removes it once the VMI is on another      —
//                                    node (with the hand-over to a migration's
//                                    target, or at any later pass)
//
// evacuationNodeName is set by a third writer, the api-server's eviction webhook (KubeVirt's
// virt-api does the same): when a drain evicts the launcher pod of a VMI that is to migrate, it adds
// the pod's node, with a JSON patch that tests status.nodeName is still that node
// (api-server/admission/eviction.ts). It only ever sets the field, the controller only removes it:
// a mark is either there for the node the VMI is on, or stale and removed.
//
// The condition types and the order both keep them in: runtime/contracts/vmi-conditions.ts.

export type VmiStatusWriter = 'controller' | 'node-handler' | 'api-server';

/** The top-level status fields each writer may change (see the table above). */
export const VMI_STATUS_FIELDS: Readonly<Record<VmiStatusWriter, readonly string[]>> = {
  controller: ['phase', 'phaseTransitionTimestamps', 'reason', 'conditions', 'nodeName', 'activePods', 'launcherContainerImageVersion', 'evacuationNodeName'],
  'node-handler': ['phase', 'phaseTransitionTimestamps', 'conditions', 'interfaces', 'guestOSInfo', 'fsFreezeStatus', 'migrationState'],
  'api-server': ['evacuationNodeName'],
};

/** The field manager each writer sends, so `managedFields` shows who wrote what. */
export const VMI_STATUS_FIELD_MANAGER: Readonly<Record<VmiStatusWriter, string>> = {
  controller: 'kubevm-controller',
  'node-handler': 'kubevm-node-handler',
  'api-server': 'kubevm-api-server',
};

/** Phases in which the node handler of the VMI's node drives it; before them the controller does. */
export const NODE_HANDLER_PHASES: readonly string[] = ['Scheduled', 'Running'];
