// The eviction of a launcher pod (`kubectl drain`, the descheduler; CREATE of pods/eviction), as
// KubeVirt's virt-launcher-eviction-interceptor judges it: for a VMI whose eviction strategy asks
// for a migration, the eviction is refused with 429 TooManyRequests (a drain tries again every few
// seconds until the pod is gone) and the VMI is marked to leave the node (status.evacuationNodeName,
// this webhook's field: runtime/contracts/vmi-status.ts); the controller's evacuation controller
// then migrates it and the source pod goes with the migration. Any other launcher pod is let go:
// its deletion shuts the VM down, as a `None` strategy says. A dry run marks nothing.
//
// The Eviction in the request is the user's input and is parsed (zod) before use; the pod is read
// from the API server by the name the request's URL gives, and its VMI by what the pod's spec says
// (launcher-pods.ts): a VMI is marked only for a pod it lists among its active launcher pods.
import { z } from 'zod';
import type { EvictionStrategy, VirtualMachineInstance } from '../../runtime/api/index.js';
import { effectiveEvictionStrategy, isLiveMigratable } from '../../runtime/evacuation.js';
import type { LauncherPodFields, VmiLookup } from './launcher-pods.js';
import { LauncherPodFields as EvictedPodSchema, claimedVmi, isActiveLauncherOf, launcherClaim } from './launcher-pods.js';

/** The Eviction object of a pods/eviction request (policy/v1; v1beta1 has the same shape); only what is read. */
export const EvictionRequestObject = z.object({
  apiVersion: z.enum(['policy/v1', 'policy/v1beta1']).optional(),
  kind: z.literal('Eviction').optional(),
  metadata: z.object({ name: z.string().max(253).optional(), namespace: z.string().max(63).optional() }).optional(),
  deleteOptions: z
    .object({ dryRun: z.array(z.string().max(16)).max(8).optional() })
    .nullish(),
});
export type EvictionRequestObject = z.infer<typeof EvictionRequestObject>;

/** What the webhook reads of the pod being evicted. */
export const EvictedPod = EvictedPodSchema;
export type EvictedPod = LauncherPodFields;

/** What the eviction webhook reads from and writes to the cluster. */
export interface EvictionContext extends VmiLookup {
  /** The pod as stored, undefined when it does not exist. */
  evictedPod(namespace: string, name: string): Promise<unknown>;
  /** The KubeVirt CR's spec.configuration.evictionStrategy (the default of VMIs that name none). */
  clusterEvictionStrategy(): Promise<EvictionStrategy | undefined>;
  /**
   * Sets the VMI's status.evacuationNodeName to `nodeName`, only while the VMI is on that node
   * (a JSON patch that tests status.nodeName); a dry run is sent as one and changes nothing.
   */
  markForEvacuation(namespace: string, vmiName: string, nodeName: string, dryRun: boolean): Promise<void>;
}

/** Let the pod go (its deletion stops the VM), refuse the eviction, or mark the VMI and refuse it. */
export type EvictionVerdict = { action: 'allow' } | { action: 'deny'; message: string } | { action: 'mark'; vmiName: string; nodeName: string; message: string };

/** KubeVirt's message; the descheduler recognises an evacuation by it. */
export const evacuationMessage = (namespace: string, name: string): string => `Eviction triggered evacuation of VMI "${namespace}/${name}"`;

const ALLOW: EvictionVerdict = { action: 'allow' };

/** The pod has ended: its eviction stops nothing. */
const hasEnded = (pod: EvictedPod): boolean => pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';

/**
 * The eviction of a launcher pod of `vmi` (undefined: the VMI is gone, nothing to protect), as
 * KubeVirt's PodEvictionAdmitter decides it.
 */
export function judgeLauncherEviction(pod: EvictedPod, namespace: string, vmi: VirtualMachineInstance | undefined, clusterDefault: EvictionStrategy | undefined): EvictionVerdict {
  if (!vmi) return ALLOW;
  const name = vmi.metadata?.name ?? '';
  const strategy = effectiveEvictionStrategy(vmi, clusterDefault);
  switch (strategy) {
    case 'LiveMigrate':
      if (!isLiveMigratable(vmi)) {
        return {
          action: 'deny',
          message:
            `VMI ${name} is configured with an eviction strategy but is not live-migratable (its LiveMigratable condition says why); ` +
            `the drain waits until the VMI is stopped, or until its evictionStrategy is None or LiveMigrateIfPossible`,
        };
      }
      break;
    case 'LiveMigrateIfPossible':
      if (!isLiveMigratable(vmi)) return ALLOW;
      break;
    case 'External':
      break;
    default:
      // None, or no strategy anywhere: the pod goes and the VM stops with it.
      return ALLOW;
  }
  if (vmi.status?.evacuationNodeName) return { action: 'deny', message: `Evacuation in progress: ${evacuationMessage(namespace, name)}` };
  // A migration's target pod, a source the VMI has already left, or a pod that only claims the VMI
  // (its controller never recorded it) is not where the VMI runs.
  const nodeName = pod.spec?.nodeName;
  if (nodeName === undefined || !isActiveLauncherOf(pod, vmi)) return { action: 'deny', message: 'Eviction request for target Pod' };
  return { action: 'mark', vmiName: name, nodeName, message: evacuationMessage(namespace, name) };
}

/** A dry run: the request's own flag, or the Eviction's deleteOptions.dryRun [All]. */
export function isDryRun(requestDryRun: boolean | undefined, eviction: EvictionRequestObject): boolean {
  return requestDryRun === true || (eviction.deleteOptions?.dryRun?.includes('All') ?? false);
}

/** The webhook's answer to an eviction: allowed, or a 429 with the message (every refusal is one a drain retries). */
export type EvictionAnswer = { allowed: true } | { allowed: false; message: string };

/**
 * Judges one eviction of pod `namespace/podName`. Never throws: a lookup or write that fails is a
 * refusal the drain retries (KubeVirt's), never a silent allow of a VM's shutdown.
 */
export async function admitEviction(namespace: string, podName: string, object: unknown, requestDryRun: boolean | undefined, context: EvictionContext): Promise<EvictionAnswer> {
  const eviction = EvictionRequestObject.safeParse(object ?? {});
  if (!eviction.success) {
    return { allowed: false, message: `not a policy/v1 Eviction: ${eviction.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}` };
  }
  try {
    const stored = await context.evictedPod(namespace, podName);
    if (stored === undefined) return { allowed: true };
    const pod = EvictedPod.safeParse(stored);
    if (!pod.success) return { allowed: false, message: `pod "${namespace}/${podName}" as the API server returned it is not a pod: ${pod.error.issues[0]?.message ?? ''}; the eviction may be retried` };
    const claim = launcherClaim(pod.data);
    if (claim === undefined || hasEnded(pod.data)) return { allowed: true };
    const vmi = await claimedVmi(claim, namespace, context);
    // Read only when a VMI could be protected: the cluster's default applies to VMIs naming none.
    const clusterDefault = vmi && !vmi.spec.evictionStrategy ? await context.clusterEvictionStrategy() : undefined;
    const verdict = judgeLauncherEviction(pod.data, namespace, vmi, clusterDefault);
    if (verdict.action === 'allow') return { allowed: true };
    if (verdict.action === 'mark') {
      await context.markForEvacuation(namespace, verdict.vmiName, verdict.nodeName, isDryRun(requestDryRun, eviction.data));
    }
    return { allowed: false, message: verdict.message };
  } catch (err) {
    return { allowed: false, message: `kubevm could not check or mark the VMI of pod "${namespace}/${podName}" for evacuation: ${err instanceof Error ? err.message : String(err)}; the eviction may be retried` };
  }
}
