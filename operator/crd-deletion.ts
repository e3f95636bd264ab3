// A CRD being deleted waits for the API server's own CRD finalizer, which removes every instance
// and then the `customresourcecleanup.apiextensions.k8s.io` finalizer. When a pass of it fails
// (typically "could not list instances: storage is (re)initializing", a CRD whose watch cache was
// never used or is still filling), it records the failure in the CRD's Terminating condition and
// retries at once; if that retry reads the CRD from its cache before the condition write arrived,
// its own status write conflicts, and it drops the key. The condition write's watch event does not
// bring the key back (the finalizer ignores changes to that condition alone), so the CRD waits
// for the informer's resync, up to 5 minutes (Kubernetes v1.34 `crd_finalizer.go`; seen by other
// operators too, operator-framework/operator-controller#1437).
//
// Any other change to the CRD brings the key back: the operator touches an annotation on a CRD
// whose last pass failed, at most every few seconds, until the CRD is gone.
import type { KubeClient, KubeObject } from '../runtime/kube.js';
import { isNotFound } from '../runtime/kube.js';
import type { Logger } from '../runtime/logging.js';
import { FIELD_MANAGER } from './install.js';
import { MANAGED_KINDS } from './managed-kinds.js';

export const CRD_CLEANUP_FINALIZER = 'customresourcecleanup.apiextensions.k8s.io';
/** The annotation the operator touches to make the API server's CRD finalizer look again. */
export const CRD_FINALIZER_RETRY_ANNOTATION = 'kubevm.io/crd-finalizer-retry';
/** The Terminating condition's reasons for a finalizer pass that failed and is retried. */
const FAILED_PASS_REASONS: ReadonlySet<string> = new Set(['InstanceDeletionFailed', 'InstanceDeletionCheck']);
/** The least time between two touches of one CRD. */
export const CRD_RETRY_INTERVAL_MS = 3_000;

interface CrdLike extends KubeObject {
  status?: { conditions?: Array<{ type?: string; status?: string; reason?: string; message?: string }> };
}

/** The failure the API server's CRD finalizer recorded for a CRD being deleted, if its last pass failed. */
export function failedFinalizerPass(crd: CrdLike): string | undefined {
  if (!crd.metadata?.deletionTimestamp || !(crd.metadata.finalizers ?? []).includes(CRD_CLEANUP_FINALIZER)) return undefined;
  const terminating = crd.status?.conditions?.find((condition) => condition.type === 'Terminating');
  if (terminating?.status !== 'True' || !FAILED_PASS_REASONS.has(terminating.reason ?? '')) return undefined;
  return `${terminating.reason}: ${terminating.message ?? ''}`;
}

/** Touches the CRDs whose deletion the API server's finalizer failed, so that it tries again. */
export class CrdFinalizerRetrier {
  /** When each CRD (by uid) was last touched. */
  private readonly touched = new Map<string, number>();

  constructor(
    private readonly client: KubeClient,
    private readonly now: () => number = Date.now,
  ) {}

  /** Touches those of `crds` whose finalizer pass failed and that were not touched in the last interval; returns their names. */
  async retryFailed(crds: readonly CrdLike[], log: Logger, signal?: AbortSignal): Promise<string[]> {
    const retried: string[] = [];
    const present = new Set<string>();
    for (const crd of crds) {
      const uid = crd.metadata?.uid ?? '';
      present.add(uid);
      const failure = failedFinalizerPass(crd);
      if (failure === undefined) continue;
      const last = this.touched.get(uid);
      if (last !== undefined && this.now() - last < CRD_RETRY_INTERVAL_MS) continue;
      const name = crd.metadata?.name ?? '';
      try {
        await this.client.resource(MANAGED_KINDS.CustomResourceDefinition).patch(name, undefined, { metadata: { annotations: { [CRD_FINALIZER_RETRY_ANNOTATION]: new Date(this.now()).toISOString() } } }, 'merge', { fieldManager: FIELD_MANAGER, signal });
      } catch (err) {
        if (isNotFound(err)) continue; // gone meanwhile: what we wanted
        throw err;
      }
      this.touched.set(uid, this.now());
      retried.push(name);
      log.info({ crd: name, failure }, "the API server's CRD finalizer failed a pass; touched the CRD so that it tries again");
    }
    for (const uid of this.touched.keys()) if (!present.has(uid)) this.touched.delete(uid);
    return retried;
  }
}
