// The node handler starts beside the operator that creates the CRDs: until the VMI API is served
// it waits, with backoff, instead of exiting (each exit is a container restart and its backoff).
import { isNotFound, isTemporarilyUnavailable } from '../runtime/kube.js';
import type { Logger } from '../runtime/logging.js';

/**
 * `attempt()`'s result once the VMI API answers. Retried: 404 (the CRD is not there yet) and
 * 429/503 ("storage is (re)initializing" just after the CRD is created, or an API server that is
 * busy); anything else, or an aborted `signal`, is thrown.
 */
export async function untilVmiApiServed<T>(attempt: () => Promise<T>, signal: AbortSignal, log: Logger, firstDelayMs = 1000): Promise<T> {
  for (let delayMs = firstDelayMs; ; delayMs = Math.min(delayMs * 2, 30_000)) {
    try {
      return await attempt();
    } catch (error) {
      if (!(isNotFound(error) || isTemporarilyUnavailable(error)) || signal.aborted) throw error;
      log.warn({ retryInMs: delayMs, err: error }, 'the VirtualMachineInstance API is not served yet (CRDs not installed or just created?); waiting');
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}
