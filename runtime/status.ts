// Diff before write, as KubeVirt's controllers do (updateStatus(orig, new)): a reconcile computes
// the whole status once and writes it only when it differs from what the server has. Status
// writes per object are a performance figure; a pass that changes nothing must write nothing.
//
// The write is a PUT of the status subresource carrying the resourceVersion we read: if someone
// wrote in between, the server answers 409 and the reconcile fails and is retried against a
// fresh cache, rather than overwriting a status computed from newer facts.
import type { KubeObject, ResourceClient } from './kube.js';
import { isConflict } from './kube.js';
import { jsonEqual, normaliseJson } from './json.js';
import { statusUpdates } from './metrics.js';

export function statusEqual(a: unknown, b: unknown): boolean {
  return jsonEqual(normaliseJson(a ?? {}), normaliseJson(b ?? {}));
}

export interface StatusUpdateResult<T> {
  /** Whether a write was issued (and succeeded). */
  written: boolean;
  /** The object as the server has it after the call (`orig` when nothing was written). */
  object: T;
}

/**
 * Write `computed` as the status of `orig` if, and only if, it differs from `orig.status`.
 * `orig` must be the object as read (its resourceVersion is the precondition). A conflict is
 * thrown as the ApiError it is; the controller retries the key.
 */
export async function updateStatusIfChanged<T extends KubeObject & { status?: unknown }>(
  client: ResourceClient<T>,
  orig: T,
  computed: T['status'],
  options: { fieldManager?: string; signal?: AbortSignal } = {},
): Promise<StatusUpdateResult<T>> {
  const resource = client.descriptor.resource;
  if (statusEqual(orig.status, computed)) {
    statusUpdates.inc({ resource, outcome: 'unchanged' });
    return { written: false, object: orig };
  }
  const next = { ...orig, status: computed } as T;
  try {
    const object = await client.replaceStatus(next, {
      ...(options.fieldManager ? { fieldManager: options.fieldManager } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    statusUpdates.inc({ resource, outcome: 'written' });
    return { written: true, object };
  } catch (err) {
    statusUpdates.inc({ resource, outcome: isConflict(err) ? 'conflict' : 'error' });
    throw err;
  }
}
