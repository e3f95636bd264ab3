// Diff before write, as KubeVirt's controllers do (updateStatus(orig, new)): a reconcile computes
// the whole status once and writes it only when it differs from what the server has. Status
// writes per object are a performance figure; a pass that changes nothing must write nothing.
//
// Two ways to write, both refusing a status computed from outdated facts rather than overwriting
// newer ones (the reconcile then fails and is retried against a fresher cache):
// - `updateStatusIfChanged`: a PUT of the status subresource carrying the resourceVersion read
//   (409 if anyone wrote in between), for a status with one writer (the VM's);
// - `patchStatusIfChanged`: a JSON patch of only the fields this writer owns and changed, each
//   guarded by a test of its previous value (422 if that field moved), for a status several
//   components write (the VMI's, ADR 0008): a write to another writer's fields never refuses it.
import type { KubeObject, ResourceClient } from './kube.js';
import { ApiError, isConflict } from './kube.js';
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

/** One RFC 6902 operation. */
export type JsonPatchOperation =
  | { op: 'test' | 'add' | 'replace'; path: string; value: unknown }
  | { op: 'remove'; path: string };

function pointer(field: string): string {
  return `/status/${field.replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

/**
 * The JSON patch that turns `current` into `computed`, touching only the top-level fields that
 * differ, each guarded by a test of the value read (`current` as the server sent it). Throws when a
 * field outside `owned` differs: a writer computing a field it does not own is a bug, and writing it
 * would start the fight this exists to prevent.
 */
export function statusPatch(current: Record<string, unknown> | undefined, computed: Record<string, unknown>, owned: readonly string[], writer: string): JsonPatchOperation[] {
  const before = current ?? {};
  const fields = new Set([...Object.keys(before), ...Object.keys(computed)]);
  const changed = [...fields].filter((field) => !statusEqual(before[field], computed[field])).sort();
  const foreign = changed.filter((field) => !owned.includes(field));
  if (foreign.length > 0) {
    throw new Error(`${writer} computed a change to status.${foreign.join(', status.')}, which it does not own (owned: ${owned.join(', ')})`);
  }
  if (changed.length === 0) return [];
  if (current === undefined) {
    // No status yet (a new object): one add. Nothing to test against.
    const value: Record<string, unknown> = {};
    for (const field of changed) if (computed[field] !== undefined && computed[field] !== null) value[field] = computed[field];
    return [{ op: 'add', path: '/status', value }];
  }
  const ops: JsonPatchOperation[] = [];
  for (const field of changed) {
    const path = pointer(field);
    const old = before[field];
    const next = computed[field];
    const absent = next === undefined || next === null;
    if (old === undefined || old === null) {
      if (!absent) ops.push({ op: 'add', path, value: next });
      continue;
    }
    ops.push({ op: 'test', path, value: old });
    ops.push(absent ? { op: 'remove', path } : { op: 'replace', path, value: next });
  }
  return ops;
}

/**
 * The API server's whole answer to a JSON patch it could not apply, a failed test among them: 422
 * Invalid with this message and no details (a schema refusal names its fields instead).
 */
const PATCH_NOT_APPLIED = 'the server rejected our request due to an error in our request';

/** A refused guarded write: 409 Conflict, or 422 from a JSON patch test that failed. */
export function isRefusedWrite(err: unknown): boolean {
  return isConflict(err) || (err instanceof ApiError && err.code === 422 && (/\btest/i.test(err.message) || err.message.endsWith(PATCH_NOT_APPLIED)));
}

/**
 * Patch the status fields of `orig` that `computed` changes, and only those, if any; every field
 * must be one of `owned` (see runtime/contracts/vmi-status.ts for the VMI's table). No
 * resourceVersion precondition: a write to fields another writer owns never refuses this one; a
 * test of each changed field's previous value refuses a write computed from an outdated object.
 */
export async function patchStatusIfChanged<T extends KubeObject & { status?: unknown }>(
  client: ResourceClient<T>,
  orig: T,
  computed: NonNullable<T['status']>,
  options: { owned: readonly string[]; writer: string; fieldManager?: string; signal?: AbortSignal },
): Promise<StatusUpdateResult<T>> {
  const resource = client.descriptor.resource;
  const ops = statusPatch(orig.status as Record<string, unknown> | undefined, computed, options.owned, options.writer);
  if (ops.length === 0) {
    statusUpdates.inc({ resource, outcome: 'unchanged' });
    return { written: false, object: orig };
  }
  try {
    const object = await client.patchStatus(orig.metadata?.name ?? '', orig.metadata?.namespace, ops, 'json', {
      ...(options.fieldManager ? { fieldManager: options.fieldManager } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    statusUpdates.inc({ resource, outcome: 'written' });
    return { written: true, object };
  } catch (err) {
    statusUpdates.inc({ resource, outcome: isRefusedWrite(err) ? 'conflict' : 'error' });
    throw err;
  }
}
