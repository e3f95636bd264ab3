// The VMI's condition types and the order they are kept in, declared once: the controller and the
// node handler both write VMI conditions, and a list either one recomputes must compare equal to
// what the other stored, or each would rewrite the other's order.

/** Condition types, as KubeVirt names them where KubeVirt has them. */
export const VmiConditionType = {
  Ready: 'Ready',
  Paused: 'Paused',
  AgentConnected: 'AgentConnected',
  /** The controller's, until Scheduled: why the launcher pod is not on a node yet. */
  PodScheduled: 'PodScheduled',
  /** KubeVirt's virt-handler reports launcher/sync failures on this condition. */
  Synchronized: 'Synchronized',
  /** kubevm's own: whether the guest runs with KVM or under TCG software emulation. */
  Emulation: 'kubevm.io/Emulation',
} as const;

/**
 * The controller's explanations of a start that has not reached its node yet: removed when the VMI
 * is handed to its node handler, by the controller's Scheduled or the handler's early hand-over.
 */
export const START_UP_CONDITIONS: readonly string[] = [VmiConditionType.PodScheduled, VmiConditionType.Synchronized];

/** The order VMI conditions are kept in; types not listed follow alphabetically. */
export const VMI_CONDITION_ORDER: readonly string[] = [
  VmiConditionType.Ready,
  VmiConditionType.Paused,
  VmiConditionType.AgentConnected,
  VmiConditionType.Synchronized,
  VmiConditionType.Emulation,
];
