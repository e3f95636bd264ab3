// Adding and removing a finalizer as a JSON patch guarded by a test of the list read, so a
// finalizer someone else added or removed meanwhile (the garbage collector's `orphan`, a user's)
// is never overwritten: the patch is refused instead and the reconcile retried.
import type { KubeObject, ResourceClient } from './kube.js';
import { isNotFound } from './kube.js';

export function finalizersPatch(current: readonly string[] | undefined, next: readonly string[]): unknown[] {
  if (current === undefined) return [{ op: 'add', path: '/metadata/finalizers', value: next }];
  return [
    { op: 'test', path: '/metadata/finalizers', value: current },
    { op: 'replace', path: '/metadata/finalizers', value: next },
  ];
}

export interface FinalizerOptions {
  fieldManager: string;
  signal?: AbortSignal;
}

/** Add `finalizer` to `obj` (as read) if it lacks it; returns the object as the server has it now. */
export async function addFinalizer<T extends KubeObject>(client: ResourceClient<T>, obj: T, finalizer: string, options: FinalizerOptions): Promise<T> {
  const current = obj.metadata?.finalizers;
  if (current?.includes(finalizer)) return obj;
  return client.patch(obj.metadata?.name ?? '', obj.metadata?.namespace, finalizersPatch(current, [...(current ?? []), finalizer]), 'json', options);
}

/** Remove `finalizer` from `obj` (as read); undefined when the object is gone (this was its last finalizer, or it went before). */
export async function removeFinalizer<T extends KubeObject>(client: ResourceClient<T>, obj: T, finalizer: string, options: FinalizerOptions): Promise<T | undefined> {
  const current = obj.metadata?.finalizers ?? [];
  if (!current.includes(finalizer)) return obj;
  try {
    return await client.patch(obj.metadata?.name ?? '', obj.metadata?.namespace, finalizersPatch(current, current.filter((f) => f !== finalizer)), 'json', options);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}
