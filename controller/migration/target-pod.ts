// The migration target's launcher pod: the VMI's own launcher pod, rendered as for a start, kept
// off the source node and on nodes with the migration's addedNodeSelector, labelled with the
// migration's uid (KubeVirt's kubevirt.io/migrationJobUID) and annotated with its name
// (kubevirt.io/migrationJobName). Owned by the VMI, as KubeVirt's: it becomes the VMI's launcher when
// the migration succeeds (the controller may create pods only for a VMI and never update them,
// deploy/controller/policy.yaml), and goes with the VMI. The migration controller removes a target
// that will never take over, also when its migration is deleted.
import { namespacedUid } from '../../runtime/informer.js';
import type { V1Affinity, V1NodeSelectorTerm, V1Pod } from '@kubernetes/client-node';
import type { VirtualMachineInstanceMigration } from '../../runtime/api/index.js';
import type { KubeObject } from '../../runtime/kube.js';
import type { VirtualMachineInstance } from '../api.js';
import type { LauncherPodConfig } from '../vmi/launcher-pod.js';
import { launcherPodName, renderLauncherPod } from '../vmi/launcher-pod.js';

export type Migration = VirtualMachineInstanceMigration & KubeObject;

/** KubeVirt's label on a migration target pod: the migration's uid. */
export const MIGRATION_JOB_LABEL = 'kubevirt.io/migrationJobUID';
/** KubeVirt's annotation on a migration target pod: the migration's name (its key, with the namespace). */
export const MIGRATION_JOB_NAME_ANNOTATION = 'kubevirt.io/migrationJobName';

/** Deterministic, so a repeated create is AlreadyExists, never a second target. */
export function targetPodName(vmi: VirtualMachineInstance, migration: Migration): string {
  const suffix = (migration.metadata?.uid ?? '').replace(/-/g, '').slice(0, 8);
  return `${launcherPodName(vmi)}-mig-${suffix}`.slice(0, 63);
}

/** Not the source node: a required node affinity term on the node's name, ANDed into every term the VMI has. */
function offSourceNode(affinity: V1Affinity | undefined, sourceNode: string): V1Affinity {
  const notSource = { key: 'metadata.name', operator: 'NotIn', values: [sourceNode] };
  const required = affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  const terms: V1NodeSelectorTerm[] = required?.nodeSelectorTerms?.length
    ? required.nodeSelectorTerms.map((term) => ({ ...term, matchFields: [...(term.matchFields ?? []), notSource] }))
    : [{ matchFields: [notSource] }];
  return {
    ...(affinity ?? {}),
    nodeAffinity: { ...(affinity?.nodeAffinity ?? {}), requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } },
  };
}

export function renderTargetPod(vmi: VirtualMachineInstance, migration: Migration, sourceNode: string, config: LauncherPodConfig): V1Pod {
  // Its QEMU starts with -incoming, when the target's node handler asks.
  const pod = renderLauncherPod(vmi, config, {}, 'on-request');
  const metadata = pod.metadata ?? {};
  metadata.name = targetPodName(vmi, migration);
  metadata.labels = { ...(metadata.labels ?? {}), [MIGRATION_JOB_LABEL]: migration.metadata?.uid ?? '' };
  metadata.annotations = { ...(metadata.annotations ?? {}), [MIGRATION_JOB_NAME_ANNOTATION]: migration.metadata?.name ?? '' };
  pod.metadata = metadata;
  const spec = pod.spec;
  if (spec) {
    if (migration.spec.addedNodeSelector) spec.nodeSelector = { ...(spec.nodeSelector ?? {}), ...migration.spec.addedNodeSelector };
    spec.affinity = offSourceNode(spec.affinity, sourceNode);
  }
  return pod;
}

/** The key (namespace/name) of the migration a target pod was made for; undefined for any other pod. */
export function migrationKeyOfPod(pod: V1Pod): string | undefined {
  const name = pod.metadata?.annotations?.[MIGRATION_JOB_NAME_ANNOTATION];
  return name && pod.metadata?.labels?.[MIGRATION_JOB_LABEL] && pod.metadata.namespace ? `${pod.metadata.namespace}/${name}` : undefined;
}

/** Index of launcher pods by the migration they are the target of, within their namespace: look up with ownedBy(migration). */
export function migrationUidIndex(pod: V1Pod): string[] {
  const uid = pod.metadata?.labels?.[MIGRATION_JOB_LABEL];
  return uid ? [namespacedUid(pod.metadata?.namespace, uid)] : [];
}
