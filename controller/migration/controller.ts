// VirtualMachineInstanceMigration → target launcher pod and the migration's status. One reconcile:
// read the migration, its VMI and its target pod from the caches, decide (phase.ts), create or
// remove the target pod, then write the migration's status once if it changed. The migration's
// status is this controller's alone; the VMI's status.migrationState is the node handlers'
// (runtime/contracts/vmi-status.ts), and the hand-over of the VMI to the target pod the VMI
// controller's. A migration deleted before it succeeded is cancelled: its target pod is removed,
// which cuts the stream, and the source's node handler aborts (docs/migration.md).
import type { V1Pod } from '@kubernetes/client-node';
import type { MigrationPhase, MigrationPolicy, VirtualMachineInstanceMigrationStatus } from '../../runtime/api/index.js';
import { VirtualMachineInstanceMigrationNames, MigrationPolicyNames } from '../../runtime/api/index.js';
import { formatConditionTime, removeCondition, setCondition } from '../../runtime/conditions.js';
import type { ConditionInput } from '../../runtime/conditions.js';
import type { ReconcileContext, ReconcileResult } from '../../runtime/controller.js';
import type { EventRecorder } from '../../runtime/events.js';
import type { ControllerExpectations } from '../../runtime/expectations.js';
import type { Informer } from '../../runtime/informer.js';
import { ownedBy } from '../../runtime/informer.js';
import type { KubeClient, KubeObject, ResourceClient, ResourceDescriptor } from '../../runtime/kube.js';
import { coreResources, isAlreadyExists, isNotFound } from '../../runtime/kube.js';
import { OwnWrites } from '../../runtime/own-writes.js';
import { patchStatusIfChanged } from '../../runtime/status.js';
import type { KubeVirtCR, VirtualMachineInstance } from '../api.js';
import type { LauncherPodConfig } from '../vmi/launcher-pod.js';
import { vmiResource } from '../vmi/controller.js';
import { liveMigratableCondition } from './live-migratable.js';
import { DEFAULT_PENDING_TIMEOUT_SECONDS, DEFAULT_UNSCHEDULABLE_TIMEOUT_SECONDS, decideMigration, vmiRefusal } from './phase.js';
import type { MigrationTimeouts } from './phase.js';
import { matchMigrationPolicy, migrationConfigurationOf, resolveMigrationPolicy } from '../../runtime/migration-policy.js';
import { inFlightMigrations, parallelLimitWait, pendingMigrationKeys } from './parallel.js';
import type { ParallelLimitWait } from './parallel.js';
import { MIGRATION_JOB_LABEL, migrationKeyOfPod, renderTargetPod, targetPodName } from './target-pod.js';
import type { Migration } from './target-pod.js';

export const migrationResource: ResourceDescriptor = {
  group: VirtualMachineInstanceMigrationNames.group,
  version: VirtualMachineInstanceMigrationNames.version,
  resource: VirtualMachineInstanceMigrationNames.plural,
  kind: VirtualMachineInstanceMigrationNames.kind,
  namespaced: true,
};
export const migrationPolicyResource: ResourceDescriptor = {
  group: MigrationPolicyNames.group,
  version: MigrationPolicyNames.version,
  resource: MigrationPolicyNames.plural,
  kind: MigrationPolicyNames.kind,
  namespaced: false,
};

const FIELD_MANAGER = 'kubevm-controller';
/** The migration's own status fields, all this controller's. */
const OWNED = ['phase', 'phaseTransitionTimestamps', 'conditions', 'migrationState'];
/** The condition that says why a migration waits (e.g. its target pod cannot be scheduled). */
export const TARGET_POD_WAITING = 'kubevm.io/TargetPodWaiting';
/** A backstop for the VMI watch event when the VMI cache was found behind the API server. */
const VMI_CACHE_RECHECK_MS = 1000;

type Pod = V1Pod & KubeObject;
type Claim = KubeObject & { spec?: { accessModes?: string[] } };
type Namespace = KubeObject;

export interface MigrationControllerDeps {
  client: KubeClient;
  migrations: Informer<Migration>;
  vmis: Informer<VirtualMachineInstance>;
  /** Launcher pods, with the migrationUid index (target-pod.ts migrationUidIndex). */
  pods: Informer<Pod>;
  kubevirts: Informer<KubeVirtCR>;
  /** Target pod creations per migration key, lowered by the pod informer. */
  expectations: ControllerExpectations;
  events: EventRecorder;
  launcherConfig: () => LauncherPodConfig;
  timeouts?: Partial<MigrationTimeouts>;
  now?: () => Date;
}

export class MigrationController {
  private readonly migrationClient: ResourceClient<Migration>;
  private readonly podClient: ResourceClient<Pod>;
  private readonly vmiClient: ResourceClient<VirtualMachineInstance>;
  private readonly claimClient: ResourceClient<Claim>;
  private readonly policyClient: ResourceClient<MigrationPolicy & KubeObject>;
  private readonly namespaceClient: ResourceClient<Namespace>;
  private readonly timeouts: MigrationTimeouts;
  private readonly now: () => Date;
  private readonly ownWrites = new OwnWrites();

  constructor(private readonly deps: MigrationControllerDeps) {
    this.migrationClient = deps.client.resource<Migration>(migrationResource);
    this.podClient = deps.client.resource<Pod>(coreResources.pods);
    this.vmiClient = deps.client.resource<VirtualMachineInstance>(vmiResource);
    this.claimClient = deps.client.resource<Claim>(coreResources.persistentVolumeClaims);
    this.policyClient = deps.client.resource<MigrationPolicy & KubeObject>(migrationPolicyResource);
    this.namespaceClient = deps.client.resource<Namespace>(coreResources.namespaces);
    this.timeouts = {
      unschedulableSeconds: deps.timeouts?.unschedulableSeconds ?? DEFAULT_UNSCHEDULABLE_TIMEOUT_SECONDS,
      pendingSeconds: deps.timeouts?.pendingSeconds ?? DEFAULT_PENDING_TIMEOUT_SECONDS,
    };
    this.now = deps.now ?? (() => new Date());
  }

  readonly reconcile = async (key: string, ctx: ReconcileContext): Promise<ReconcileResult | void> => {
    const migration = this.deps.migrations.get(key);
    if (!migration) {
      this.deps.expectations.delete(key);
      this.ownWrites.forget(key);
      await this.removeAbandonedTargets(key, ctx.signal);
      return;
    }
    // A status computed from a cache without our last write would undo it (the migrationState set
    // when the target was created is written once).
    if (this.ownWrites.cacheIsBehind(key, migration.metadata?.resourceVersion)) return;
    if (!this.deps.expectations.satisfied(key)) return;
    const namespace = migration.metadata?.namespace ?? '';
    const vmi = this.deps.vmis.get(`${namespace}/${migration.spec.vmiName}`);
    const targetPod = this.deps.pods.byIndex('migrationUid', ownedBy(migration))[0];
    const final = migration.status?.phase === 'Succeeded' || migration.status?.phase === 'Failed';
    // A migration created right after its VMI was created or started must not fail on a VMI
    // cache that has not seen that yet; the VMI's watch event brings the migration back.
    if (!final && vmiRefusal(migration, vmi) !== undefined && (await this.vmiCacheIsBehind(namespace, migration.spec.vmiName, vmi, ctx.signal))) {
      return { requeueAfter: VMI_CACHE_RECHECK_MS };
    }
    const liveMigratable = vmi && !final ? await this.liveMigratable(vmi, ctx.signal) : undefined;
    const now = this.now();
    // Counted from the caches with no await until the creation is expected below, so two workers
    // never both take the last slot.
    const parallelLimit = !targetPod && (migration.status?.phase ?? 'Pending') === 'Pending' && vmi?.status?.nodeName ? this.parallelLimit(key, vmi.status.nodeName) : undefined;
    const decision = decideMigration({ migration, vmi, targetPod, liveMigratable, parallelLimit, now, timeouts: this.timeouts });
    const status: VirtualMachineInstanceMigrationStatus = structuredClone(migration.status ?? {});
    const state = { ...(status.migrationState ?? {}), migrationUid: migration.metadata?.uid ?? '' };

    if (decision.createTargetPod && vmi?.status?.nodeName) {
      const sourceNode = vmi.status.nodeName;
      // Expected before the first await: it holds this migration's parallel slot (parallel.ts).
      this.deps.expectations.expectCreations(key, 1);
      try {
        const policy = await this.policy(vmi, ctx.signal);
        if (policy.policyName) state.migrationPolicyName = policy.policyName;
        // What the source's node handler migrates with.
        state.migrationConfiguration = migrationConfigurationOf(policy);
        state.sourceNode = sourceNode;
        // KubeVirt's sourcePod: the VMI's launcher pod on the source node.
        const sourcePod = this.deps.pods.byIndex('ownerUid', ownedBy(vmi)).find((p) => p.spec?.nodeName === sourceNode && vmi.status?.activePods?.[p.metadata?.uid ?? ''] === sourceNode);
        if (sourcePod?.metadata?.name) state.sourcePod = sourcePod.metadata.name;
        state.targetPod = targetPodName(vmi, migration);
        const pod = renderTargetPod(vmi, migration, sourceNode, this.deps.launcherConfig());
        await this.podClient.create(pod as Pod, { signal: ctx.signal });
        this.deps.events.record(migration, 'Normal', 'SuccessfulCreate', `Created migration target pod ${pod.metadata?.name}`);
      } catch (err) {
        this.deps.expectations.creationObserved(key);
        if (!isAlreadyExists(err)) throw err;
      }
    }
    if (decision.deleteTargetPod && targetPod?.metadata?.name && !targetPod.metadata.deletionTimestamp) {
      await this.podClient.delete(targetPod.metadata.name, namespace, targetPod.metadata.uid ? { preconditionUid: targetPod.metadata.uid } : {}).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
      this.deps.events.record(migration, 'Normal', 'SuccessfulDelete', `Deleted migration target pod ${targetPod.metadata.name}`);
    }
    if (targetPod?.metadata?.name) state.targetPod = targetPod.metadata.name;
    if (targetPod?.spec?.nodeName) state.targetNode = targetPod.spec.nodeName;
    if (decision.phase === 'Failed' && !state.failed) {
      state.failed = true;
      state.failureReason = decision.failureReason ?? 'the migration failed';
      state.endTimestamp = formatConditionTime(now);
      this.deps.events.record(migration, 'Warning', 'FailedMigration', state.failureReason);
    }
    if (decision.phase === 'Succeeded' && !state.completed) {
      state.completed = true;
      state.endTimestamp = formatConditionTime(now);
    }
    status.migrationState = state;
    this.setPhase(status, decision.phase, now);
    const waiting: ConditionInput | undefined = decision.waiting ? { type: TARGET_POD_WAITING, status: 'True', reason: decision.waiting.reason, message: decision.waiting.message } : undefined;
    status.conditions = waiting ? setCondition(status.conditions ?? [], waiting, { now }).conditions : removeCondition(status.conditions ?? [], TARGET_POD_WAITING).conditions;
    const written = await patchStatusIfChanged(this.migrationClient, migration, status, { owned: OWNED, writer: 'controller', fieldManager: FIELD_MANAGER, signal: ctx.signal });
    if (written.written) this.ownWrites.record(key, written.object.metadata?.resourceVersion);
    return decision.requeueAfterMs !== undefined ? { requeueAfter: Math.max(decision.requeueAfterMs, 100) } : undefined;
  };

  /** The API server holds another version of the VMI than the cache (or holds it and the cache not, or the reverse). */
  private async vmiCacheIsBehind(namespace: string, name: string, cached: VirtualMachineInstance | undefined, signal: AbortSignal): Promise<boolean> {
    const live = await this.vmiClient.get(name, namespace, signal).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
    return live?.metadata?.resourceVersion !== cached?.metadata?.resourceVersion;
  }

  /** Why this migration must wait for a parallel slot, if it must; KubeVirt's limits come from the KubeVirt CR alone. */
  private parallelLimit(key: string, sourceNode: string): ParallelLimitWait | undefined {
    const limits = resolveMigrationPolicy(this.deps.kubevirts.list()[0]?.spec?.configuration?.migrations, undefined);
    const inFlight = inFlightMigrations({
      migrations: this.deps.migrations.list(),
      vmiOf: (m) => this.deps.vmis.get(`${m.metadata?.namespace}/${m.spec.vmiName}`),
      hasTarget: (m) => this.deps.pods.byIndex('migrationUid', ownedBy(m)).length > 0 || !this.deps.expectations.satisfied(`${m.metadata?.namespace}/${m.metadata?.name}`),
    });
    return parallelLimitWait(key, sourceNode, inFlight, limits);
  }

  private setPhase(status: VirtualMachineInstanceMigrationStatus, phase: MigrationPhase, now: Date): void {
    if (status.phase === phase) return;
    status.phase = phase;
    status.phaseTransitionTimestamps = [...(status.phaseTransitionTimestamps ?? []), { phase, phaseTransitionTimestamp: formatConditionTime(now) }];
  }

  private async liveMigratable(vmi: VirtualMachineInstance, signal: AbortSignal): Promise<ConditionInput> {
    const namespace = vmi.metadata?.namespace ?? '';
    const modes = new Map<string, string[] | undefined>();
    for (const volume of vmi.spec.volumes ?? []) {
      const claim = volume.persistentVolumeClaim?.claimName ?? volume.ephemeral?.persistentVolumeClaim?.claimName;
      if (claim === undefined || modes.has(claim)) continue;
      const found = await this.claimClient.get(claim, namespace, signal).catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      });
      modes.set(claim, found?.spec?.accessModes);
    }
    return liveMigratableCondition(vmi, (claim) => modes.get(claim));
  }

  /**
   * A deleted migration's target pods, unless one already took the VMI over (it is the VMI's
   * launcher on the VMI's node) or its migration completed (the VMI controller is handing the VMI
   * to it). Removing the target cuts the migration stream: the source aborts and runs on.
   */
  private async removeAbandonedTargets(key: string, signal: AbortSignal): Promise<void> {
    for (const pod of this.deps.pods.list()) {
      if (migrationKeyOfPod(pod) !== key || pod.metadata?.deletionTimestamp || !pod.metadata?.name) continue;
      const vmiName = pod.metadata.ownerReferences?.find((ref) => ref.controller && ref.kind === 'VirtualMachineInstance')?.name;
      const vmi = vmiName ? this.deps.vmis.get(`${pod.metadata.namespace}/${vmiName}`) : undefined;
      const uid = pod.metadata.uid ?? '';
      const takenOver = vmi?.status?.nodeName !== undefined && vmi.status.activePods?.[uid] === vmi.status.nodeName;
      const state = vmi?.status?.migrationState;
      const completed = state?.completed === true && state.migrationUid === pod.metadata.labels?.[MIGRATION_JOB_LABEL];
      if (takenOver || completed) continue;
      await this.podClient.delete(pod.metadata.name, pod.metadata.namespace, uid ? { preconditionUid: uid, signal } : { signal }).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
      if (vmi) this.deps.events.record(vmi, 'Normal', 'SuccessfulDelete', `Deleted migration target pod ${pod.metadata.name}: migration ${key} was deleted`);
    }
  }

  /** Resolved once, when the target is created; recorded as migrationState.migrationPolicyName and migrationConfiguration. */
  private async policy(vmi: VirtualMachineInstance, signal: AbortSignal): Promise<ReturnType<typeof resolveMigrationPolicy>> {
    const [policies, namespace] = await Promise.all([
      this.policyClient.list({ signal }).then((list) => list.items),
      this.namespaceClient.get(vmi.metadata?.namespace ?? '', undefined, signal),
    ]);
    const kubevirt = this.deps.kubevirts.list()[0];
    const policy = matchMigrationPolicy(policies, vmi.metadata?.labels, namespace.metadata?.labels);
    return resolveMigrationPolicy(kubevirt?.spec?.configuration?.migrations, policy);
  }
}

/** Feed target pod creations into the expectations; register before the controller's own watch. */
export function observeTargetPods(pods: Informer<Pod>, expectations: ControllerExpectations): () => void {
  return pods.addEventHandler({
    onAdd: (pod) => {
      const key = migrationKeyOfPod(pod);
      if (key) expectations.creationObserved(key);
    },
  });
}

/** A target pod's change concerns its migration. */
export function migrationOfTargetPod(pod: Pod): string[] {
  const key = migrationKeyOfPod(pod);
  return key ? [key] : [];
}

/** A VMI's change concerns the migrations of it that have not ended (their keys). */
export function migrationsOfVmi(migrations: Informer<Migration>): (vmi: VirtualMachineInstance) => string[] {
  return (vmi) =>
    migrations
      .list()
      .filter((m) => m.metadata?.namespace === vmi.metadata?.namespace && m.spec.vmiName === vmi.metadata?.name && m.status?.phase !== 'Succeeded' && m.status?.phase !== 'Failed')
      .map((m) => `${m.metadata?.namespace}/${m.metadata?.name}`);
}

/**
 * A migration that is not waiting (past Pending: it may have ended or gone) may free a parallel
 * slot: the Pending migrations, oldest first, are tried again.
 */
export function pendingMigrationsWhenOneMoves(migrations: Informer<Migration>): (changed: Migration) => string[] {
  return (changed) => (changed.status?.phase === undefined || changed.status.phase === 'Pending' ? [] : pendingMigrationKeys(migrations.list()));
}

/** A changed KubeVirt CR may have raised the parallel limits: the Pending migrations, oldest first. */
export function pendingMigrations(migrations: Informer<Migration>): () => string[] {
  return () => pendingMigrationKeys(migrations.list());
}
