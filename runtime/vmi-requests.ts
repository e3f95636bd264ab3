// The requests the API server's VMI subresources hand to the node handler, as annotations on the
// VMI (the node handler watches its node's VMIs anyway, so no extra connection is needed). Both
// ends import these names; the node handler converges the domain to them.
/**
 * Desired pause state: "true" set by the pause subresource, "false" by unpause; absent, what the
 * VMI's spec.startStrategy says. The node handler pauses or resumes the domain to match (`pauseWish`).
 */
export const pauseRequestAnnotation = 'kubevm.io/pause-requested';

/**
 * What the VMI asks of its guest's pause state: the pause request when there is one; without one,
 * running, or for a start strategy of Paused, "as started": a guest started paused stays paused
 * until an unpause, and nothing pauses a running one (the strategy is about the start only).
 */
export type PauseWish = 'paused' | 'running' | 'as-started';

export function pauseWish(vmi: { metadata?: { annotations?: Record<string, string> }; spec?: { startStrategy?: string } }): PauseWish {
  const request = vmi.metadata?.annotations?.[pauseRequestAnnotation];
  if (request === 'true') return 'paused';
  if (request === 'false' || vmi.spec?.startStrategy !== 'Paused') return 'running';
  return 'as-started';
}

/**
 * A soft reboot request (its value a timestamp, so a newer request differs): set by the softreboot
 * subresource; the node handler asks the launcher for the guest's own orderly reboot (agent, else
 * ACPI) and removes it.
 */
export const softRebootRequestAnnotation = 'kubevm.io/soft-reboot-requested';
/** A hard reset request (a timestamp, likewise): set by the reset subresource; the guest gets no say. */
export const resetRequestAnnotation = 'kubevm.io/reset-requested';
