// The requests the API server's VMI subresources hand to the node handler, as annotations on the
// VMI (the node handler watches its node's VMIs anyway, so no extra connection is needed). Both
// ends import these names; the node handler converges the domain to them.
/**
 * Desired pause state, "true" or absent: set by the pause subresource, removed by unpause; the
 * node handler pauses or resumes the domain to match.
 */
export const pauseRequestAnnotation = 'kubevm.io/pause-requested';
/**
 * A soft reboot request (its value a timestamp, so a newer request differs): set by the softreboot
 * subresource; the node handler asks the launcher for the guest's own orderly reboot (agent, else
 * ACPI) and removes it.
 */
export const softRebootRequestAnnotation = 'kubevm.io/soft-reboot-requested';
/** A hard reset request (a timestamp, likewise): set by the reset subresource; the guest gets no say. */
export const resetRequestAnnotation = 'kubevm.io/reset-requested';
