// Diff before write, as KubeVirt's controllers do (updateStatus(orig, new)): a reconcile computes
// the whole status once and writes it only when it differs from what the server has. Status
// writes per object are a performance figure; a pass that changes nothing must write nothing.
//
// The write is a PUT of the status subresource carrying the resourceVersion we read: if someone
// wrote in between, the server answers 409 and the reconcile fails and is retried against a
// fresh cache, rather than overwriting a status computed from newer facts.
import type { KubeObject, ResourceClient } from './kube.js';
import { isConflict } from './kube.js';
import { statusUpdates } from './metrics.js';

/**
 * A JSON value with the noise removed that the API server would remove or that carries no
 * meaning: `undefined` and `null` object members (unset, as far as Kubernetes is concerned).
 * Array order is kept: it is meaningful (conditions are sorted by the conditions helpers).
 */
export function normaliseJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map((item) => (item === undefined ? null : normaliseJson(item)));
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, member] of Object.entries(value)) {
      if (member === undefined || member === null) continue;
      out[key] = normaliseJson(member);
    }
    return out;
  }
  return value;
}

/** Deep equality of JSON-like values (after normalisation, key order does not matter). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, index) => jsonEqual(item, b[index]));
  }
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  const leftKeys = Object.keys(left);
  if (leftKeys.length !== Object.keys(right).length) return false;
  return leftKeys.every((key) => Object.prototype.hasOwnProperty.call(right, key) && jsonEqual(left[key], right[key]));
}

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
