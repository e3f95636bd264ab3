// Which VMI a launcher pod runs, for the webhooks that protect launcher pods: the launcher-entry
// guard (exec, attach, port-forward) and the eviction webhook.
//
// Whoever may patch pods in a namespace (the `edit` role) can change a pod's labels, annotations and
// owner references; nobody can change its containers' environment once it is created. So the VMI is
// the one whose uid the compute container's KUBEVM_VMI_UID names (the controller sets it), and the
// mutable metadata only says where to look for it first. A pod that has lost its launcher label is
// still a launcher. Whoever may create pods can also write that variable into a pod of their own:
// the eviction webhook therefore acts only for a pod that its VMI lists in status.activePods, the
// controller's record of its launcher pods.
import { z } from 'zod';
import type { VirtualMachineInstance } from '../../runtime/api/index.js';
import { COMPUTE_CONTAINER, DOMAIN_ANNOTATION, LAUNCHER_ENV, LAUNCHER_LABEL, LAUNCHER_LABEL_VALUE } from '../../runtime/contracts/launcher-pod.js';

/** What the webhooks read of a pod that may be a launcher. */
export const LauncherPodFields = z.object({
  metadata: z.object({
    name: z.string(),
    uid: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
    ownerReferences: z.array(z.object({ kind: z.string(), name: z.string(), controller: z.boolean().optional() })).optional(),
  }),
  spec: z
    .object({
      nodeName: z.string().optional(),
      containers: z.array(z.object({ name: z.string(), env: z.array(z.object({ name: z.string(), value: z.string().optional() })).optional() })).optional(),
    })
    .optional(),
  status: z.object({ phase: z.string().optional() }).optional(),
});
export type LauncherPodFields = z.infer<typeof LauncherPodFields>;

/** A pod's claim to run a VMI: the uid from its spec (fixed), the names from its metadata (hints). */
export interface LauncherClaim {
  vmiUid: string | undefined;
  vmiNames: string[];
}

/** The claim of a launcher pod (its compute container names a VMI uid, or it has the launcher label); undefined for any other pod. */
export function launcherClaim(pod: LauncherPodFields): LauncherClaim | undefined {
  const compute = pod.spec?.containers?.find((c) => c.name === COMPUTE_CONTAINER);
  const vmiUid = compute?.env?.find((e) => e.name === LAUNCHER_ENV.vmiUid)?.value || undefined;
  if (vmiUid === undefined && pod.metadata.labels?.[LAUNCHER_LABEL] !== LAUNCHER_LABEL_VALUE) return undefined;
  const owner = pod.metadata.ownerReferences?.find((o) => o.kind === 'VirtualMachineInstance' && o.controller === true)?.name;
  const vmiNames = [...new Set([pod.metadata.annotations?.[DOMAIN_ANNOTATION], owner].filter((n): n is string => n !== undefined && n !== ''))];
  return { vmiUid, vmiNames };
}

export interface VmiLookup {
  findVmi(namespace: string, name: string): Promise<VirtualMachineInstance | undefined>;
  listVmis(namespace: string): Promise<VirtualMachineInstance[]>;
}

/**
 * The VMI a claim names in `namespace`: the one with its uid when the pod carries one (looked for
 * under the hinted names first, then among all the namespace's VMIs), else the first hinted name
 * that exists (a pod kubevm did not render). Undefined when there is none (the VMI is gone).
 */
export async function claimedVmi(claim: LauncherClaim, namespace: string, lookup: VmiLookup): Promise<VirtualMachineInstance | undefined> {
  for (const name of claim.vmiNames) {
    const vmi = await lookup.findVmi(namespace, name);
    if (vmi && (claim.vmiUid === undefined || vmi.metadata?.uid === claim.vmiUid)) return vmi;
  }
  if (claim.vmiUid === undefined) return undefined;
  return (await lookup.listVmis(namespace)).find((vmi) => vmi.metadata?.uid === claim.vmiUid);
}

/** The pod is one of the VMI's launcher pods on the VMI's node, by the controller's record (status.activePods). */
export function isActiveLauncherOf(pod: LauncherPodFields, vmi: VirtualMachineInstance): boolean {
  const podUid = pod.metadata.uid;
  const nodeName = pod.spec?.nodeName;
  if (podUid === undefined || nodeName === undefined) return false;
  return vmi.status?.nodeName === nodeName && vmi.status.activePods?.[podUid] === nodeName;
}
