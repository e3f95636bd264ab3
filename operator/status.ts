// The KubeVirt CR's status as KubeVirt's virt-operator writes it: phase Deploying → Deployed
// (→ Deleting → Deleted), conditions Available, Progressing, Degraded and Created with KubeVirt's
// reasons, observedGeneration, and the versions targeted and deployed. Pure: the reconciler reads
// the world, this computes the status, the reconciler writes it only when it differs.
import type { KubeVirtStatus } from '../runtime/api/index.js';
import { setCondition } from '../runtime/conditions.js';
import type { KubeObject } from '../runtime/kube.js';

// KubeVirt's reasons (virt-operator/util/client.go).
export const REASON = {
  deploying: 'DeploymentInProgress',
  ready: 'AllComponentsReady',
  created: 'AllResourcesCreated',
  failed: 'DeploymentFailed',
  deleting: 'DeletionInProgress',
  deletionFailed: 'DeletionFailed',
  deletionBlocked: 'DeletionBlocked',
} as const;

export const CONDITION_ORDER = ['Available', 'Progressing', 'Degraded', 'Created'] as const;

/** A Deployment or DaemonSet's rollout as the reconciler judges it. */
export interface WorkloadReadiness {
  /** "Deployment kubevirt/kubevm-controller". */
  what: string;
  ready: boolean;
  /** Why not, e.g. "1/2 replicas available". */
  detail?: string;
}

interface DeploymentLike extends KubeObject {
  spec?: { replicas?: number };
  status?: { observedGeneration?: number; replicas?: number; updatedReplicas?: number; availableReplicas?: number };
}

interface DaemonSetLike extends KubeObject {
  status?: { observedGeneration?: number; desiredNumberScheduled?: number; updatedNumberScheduled?: number; numberAvailable?: number };
}

function observedCurrent(obj: KubeObject & { status?: { observedGeneration?: number } }): boolean {
  return (obj.status?.observedGeneration ?? 0) >= (obj.metadata?.generation ?? 0);
}

/** Rolled out: the current spec observed, every replica updated and available, no old ones left. */
export function deploymentReadiness(what: string, deployment: DeploymentLike | undefined): WorkloadReadiness {
  if (!deployment) return { what, ready: false, detail: 'not created yet' };
  const want = deployment.spec?.replicas ?? 1;
  const status = deployment.status ?? {};
  if (!observedCurrent(deployment)) return { what, ready: false, detail: 'the new spec is not observed yet' };
  const updated = status.updatedReplicas ?? 0;
  const available = status.availableReplicas ?? 0;
  if (updated < want || available < want || (status.replicas ?? 0) > want) {
    return { what, ready: false, detail: `${updated}/${want} replicas updated, ${available}/${want} available` };
  }
  return { what, ready: true };
}

/** At least one replica answers (the rollout may still be under way). */
export function hasAvailableReplica(deployment: DeploymentLike | undefined): boolean {
  return (deployment?.status?.availableReplicas ?? 0) > 0;
}

export function daemonSetReadiness(what: string, daemonSet: DaemonSetLike | undefined): WorkloadReadiness {
  if (!daemonSet) return { what, ready: false, detail: 'not created yet' };
  const status = daemonSet.status ?? {};
  if (!observedCurrent(daemonSet)) return { what, ready: false, detail: 'the new spec is not observed yet' };
  const want = status.desiredNumberScheduled ?? 0;
  const updated = status.updatedNumberScheduled ?? 0;
  const available = status.numberAvailable ?? 0;
  if (updated < want || available < want) return { what, ready: false, detail: `${updated}/${want} pods updated, ${available}/${want} available` };
  return { what, ready: true };
}

export interface DeployFacts {
  generation: number | undefined;
  operatorVersion: string;
  registry: string;
  tag: string;
  /** A hash of everything rendered: changes whenever the installation should change. */
  deploymentID: string;
  /** Objects that could not be applied, with the API server's answer. */
  applyErrors: string[];
  workloads: WorkloadReadiness[];
}

function withConditions(status: KubeVirtStatus, updates: Array<{ type: string; status: 'True' | 'False'; reason: string; message: string }>, now: Date): KubeVirtStatus {
  let conditions = status.conditions ?? [];
  for (const update of updates) conditions = setCondition(conditions, update, { now, order: CONDITION_ORDER }).conditions;
  return { ...status, conditions };
}

/** The status of an installation being deployed (or deployed). */
export function deployingStatus(current: KubeVirtStatus | undefined, facts: DeployFacts, now = new Date()): KubeVirtStatus {
  const notReady = facts.workloads.filter((workload) => !workload.ready);
  const created = facts.applyErrors.length === 0;
  const deployed = created && notReady.length === 0;
  const waiting = notReady.map((workload) => `${workload.what}: ${workload.detail ?? 'not ready'}`).join('; ');
  let status: KubeVirtStatus = {
    ...(current ?? {}),
    phase: deployed ? 'Deployed' : 'Deploying',
    operatorVersion: facts.operatorVersion,
    targetKubeVirtVersion: facts.tag,
    targetKubeVirtRegistry: facts.registry,
    targetDeploymentID: facts.deploymentID,
    ...(facts.generation !== undefined ? { observedGeneration: facts.generation } : {}),
  };
  if (deployed) {
    status = { ...status, observedKubeVirtVersion: facts.tag, observedKubeVirtRegistry: facts.registry, observedDeploymentID: facts.deploymentID };
  }
  const failure = `${facts.applyErrors.length} object(s) could not be applied: ${facts.applyErrors.join('; ')}`;
  return withConditions(
    status,
    [
      deployed
        ? { type: 'Available', status: 'True', reason: REASON.ready, message: 'All components are ready.' }
        : { type: 'Available', status: 'False', reason: created ? REASON.deploying : REASON.failed, message: created ? `Waiting for ${waiting}` : failure },
      deployed
        ? { type: 'Progressing', status: 'False', reason: REASON.ready, message: 'All components are ready.' }
        : { type: 'Progressing', status: 'True', reason: created ? REASON.deploying : REASON.failed, message: created ? `Deploying version ${facts.tag} with registry ${facts.registry}` : failure },
      created
        ? { type: 'Degraded', status: 'False', reason: deployed ? REASON.ready : REASON.deploying, message: deployed ? 'All components are ready.' : `Deploying version ${facts.tag} with registry ${facts.registry}` }
        : { type: 'Degraded', status: 'True', reason: REASON.failed, message: failure },
      created
        ? { type: 'Created', status: 'True', reason: REASON.created, message: 'All resources were created.' }
        : { type: 'Created', status: 'False', reason: REASON.failed, message: failure },
    ],
    now,
  );
}

/** The status while the CR is being deleted: blocked by workloads, or removing what was installed. */
export function deletingStatus(current: KubeVirtStatus | undefined, blockedBy: string | undefined, remaining: readonly string[], now = new Date()): KubeVirtStatus {
  const named = remaining.slice(0, 5).join(', ') + (remaining.length > 5 ? ` and ${remaining.length - 5} more` : '');
  const message = blockedBy ?? `Deleting ${remaining.length} object(s) the operator created${remaining.length > 0 ? `: ${named}` : ''}`;
  return withConditions(
    { ...(current ?? {}), phase: 'Deleting' },
    [
      { type: 'Available', status: 'False', reason: REASON.deleting, message },
      { type: 'Progressing', status: blockedBy ? 'False' : 'True', reason: blockedBy ? REASON.deletionBlocked : REASON.deleting, message },
      { type: 'Degraded', status: blockedBy ? 'True' : 'False', reason: blockedBy ? REASON.deletionBlocked : REASON.deleting, message },
    ],
    now,
  );
}

/** KubeVirt's message when an uninstall is refused (virt-operator's webhook). */
export function uninstallRefusal(workloads: string): string {
  return `Rejecting the uninstall request, since there are still ${workloads} present. Either delete all KubeVirt related workloads or change the uninstall strategy before uninstalling KubeVirt.`;
}

/** What the count of outdated workloads reads of a VMI. */
export interface VmiLauncherFacts {
  metadata?: { deletionTimestamp?: string };
  status?: { phase?: string; launcherContainerImageVersion?: string };
}

/**
 * KubeVirt's outdatedVirtualMachineInstanceWorkloads: running VMIs, not being deleted, whose
 * launcher image is known (the controller writes it once the pod runs) and is not `launcherImage`.
 */
export function outdatedWorkloads(vmis: readonly VmiLauncherFacts[], launcherImage: string): number {
  return vmis.filter((vmi) => {
    const image = vmi.status?.launcherContainerImageVersion;
    return vmi.status?.phase === 'Running' && !vmi.metadata?.deletionTimestamp && image !== undefined && image !== '' && image !== launcherImage;
  }).length;
}
