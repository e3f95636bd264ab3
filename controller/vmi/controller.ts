// VirtualMachineInstance → launcher pod. One reconcile: read the VMI and its pods from the cache,
// make sure exactly one launcher pod exists while the VMI is to run (or none while it is being
// deleted), then compute the controller's part of the VMI status once and write it if it changed.
//
// A VMI carries KubeVirt's finalizer `foregroundDeleteVirtualMachine` from creation until its
// launcher pods are gone from the API server, which for a pod deleted gracefully means the kubelet
// has seen its containers stop and its volumes unmounted. The VM controller creates the next VMI
// of a VM only once the previous one is gone, so two QEMU processes of one VM never run at once.
import type { V1Pod } from '@kubernetes/client-node';
import type { VirtualMachineInstance } from '../api.js';
import type { ControllerExpectations } from '../../runtime/expectations.js';
import type { Informer } from '../../runtime/informer.js';
import { ownedBy } from '../../runtime/informer.js';
import type { KubeClient, KubeObject, ResourceClient, ResourceDescriptor } from '../../runtime/kube.js';
import { coreResources, isAlreadyExists, isNamespaceTerminating, isNotFound } from '../../runtime/kube.js';
import type { ReconcileContext, ReconcileResult } from '../../runtime/controller.js';
import { patchStatusIfChanged } from '../../runtime/status.js';
import { addFinalizer, removeFinalizer } from '../../runtime/finalizers.js';
import { VMI_STATUS_FIELDS, VMI_STATUS_FIELD_MANAGER } from '../../runtime/contracts/vmi-status.js';
import type { EventRecorder } from '../../runtime/events.js';
import { OwnWrites } from '../../runtime/own-writes.js';
import { isFinal } from '../vm/run-strategy.js';
import type { LauncherPodConfig } from './launcher-pod.js';
import { CREATED_BY_LABEL, launcherPodName, renderLauncherPod } from './launcher-pod.js';
import type { SyncFailure } from './status.js';
import { bindWaitMs, computeVMIStatus, isPodDown, podFailureMessage } from './status.js';
import type { ConditionInput } from '../../runtime/conditions.js';
import { LIVE_MIGRATABLE, liveMigratableCondition } from '../migration/live-migratable.js';
import { MIGRATION_JOB_LABEL } from '../migration/target-pod.js';

interface ClaimFacts {
  missing: string[];
  blockClaims: Set<string>;
  accessModes: Map<string, string[] | undefined>;
}

/** A missing PVC is looked for again this often (PVCs are not watched: it is a rare, transient state). */
const PVC_RECHECK_MS = 5_000;
const FIELD_MANAGER = VMI_STATUS_FIELD_MANAGER.controller;

/**
 * KubeVirt's VirtualMachineInstanceFinalizer: held until the VMI's launcher pods are gone, so the
 * VMI (and with it the VM's right to start a new one) outlives the QEMU process.
 */
export const VMI_FINALIZER = 'foregroundDeleteVirtualMachine';
/** KubeVirt's label on a VMI whose launcher pod runs an older launcher image than new pods get. */
export const OUTDATED_LAUNCHER_IMAGE_LABEL = 'kubevirt.io/outdatedLauncherImage';

export type Pod = V1Pod & KubeObject;
/** The part of a PersistentVolumeClaim the controller reads. */
type PersistentVolumeClaim = KubeObject & { spec?: { volumeMode?: string; accessModes?: string[] } };

/** A migration's target pod (the migration controller creates it; the VMI owns it). */
function isMigrationTarget(pod: Pod): boolean {
  return pod.metadata?.labels?.[MIGRATION_JOB_LABEL] !== undefined;
}

/**
 * The VMI's launcher pod among the pods it owns: the target of a completed migration (the VMI is
 * handed to it), else the active pod on the VMI's node, else the pod the controller created.
 * Target pods of migrations in flight are never it.
 */
export function currentLauncherPod(vmi: VirtualMachineInstance, owned: readonly Pod[], expectedName: string): Pod | undefined {
  const state = vmi.status?.migrationState;
  if (state?.completed && state.migrationUid && state.targetNode) {
    const target = owned.find((p) => p.metadata?.labels?.[MIGRATION_JOB_LABEL] === state.migrationUid && p.spec?.nodeName === state.targetNode && !isPodDown(p));
    if (target) return target;
  }
  const nodeName = vmi.status?.nodeName;
  const active = nodeName ? owned.find((p) => p.metadata?.uid !== undefined && vmi.status?.activePods?.[p.metadata.uid] === nodeName) : undefined;
  if (active) return active;
  const own = owned.filter((p) => !isMigrationTarget(p));
  return own.find((p) => p.metadata?.name === expectedName) ?? own.find((p) => !isPodDown(p)) ?? own[0];
}

export interface VMIControllerDeps {
  client: KubeClient;
  vmis: Informer<VirtualMachineInstance>;
  pods: Informer<Pod>;
  /** Pod creations per VMI key, lowered by the pod informer (see observeLauncherPods). */
  expectations: ControllerExpectations;
  events: EventRecorder;
  /** The launcher pod settings in force now (emulation follows the KubeVirt CR). */
  launcherConfig: () => LauncherPodConfig;
  now?: () => Date;
}

/** Feed pod creations into the expectations; register before the controller's own watch. */
export function observeLauncherPods(pods: Informer<Pod>, expectations: ControllerExpectations): () => void {
  const ownerKey = (pod: Pod): string | undefined => {
    const owner = pod.metadata?.ownerReferences?.find((ref) => ref.controller && ref.kind === 'VirtualMachineInstance');
    return owner && pod.metadata?.namespace ? `${pod.metadata.namespace}/${owner.name}` : undefined;
  };
  return pods.addEventHandler({
    onAdd: (pod) => {
      // A migration's target pod is the migration controller's creation, expected under its key.
      const key = isMigrationTarget(pod) ? undefined : ownerKey(pod);
      if (key) expectations.creationObserved(key);
    },
  });
}

export class VMIController {
  private readonly vmiClient: ResourceClient<VirtualMachineInstance>;
  private readonly podClient: ResourceClient<Pod>;
  private readonly pvcClient: ResourceClient<PersistentVolumeClaim>;
  private readonly now: () => Date;
  private readonly ownWrites = new OwnWrites();

  constructor(private readonly deps: VMIControllerDeps) {
    this.vmiClient = deps.client.resource<VirtualMachineInstance>(vmiResource);
    this.podClient = deps.client.resource<Pod>(coreResources.pods);
    this.pvcClient = deps.client.resource<PersistentVolumeClaim>(coreResources.persistentVolumeClaims);
    this.now = deps.now ?? (() => new Date());
  }

  readonly reconcile = async (key: string, ctx: ReconcileContext): Promise<ReconcileResult | void> => {
    const { expectations, events } = this.deps;
    let vmi = this.deps.vmis.get(key);
    if (!vmi) {
      // Its pods go with it: they carry a controller owner reference to the VMI.
      expectations.delete(key);
      this.ownWrites.forget(key);
      return;
    }
    if (this.ownWrites.cacheIsBehind(key, vmi.metadata?.resourceVersion)) {
      ctx.log.debug('waiting for the cache to show our last status write');
      return;
    }
    if (!expectations.satisfied(key)) {
      ctx.log.debug('waiting for the cache to show the launcher pod just created');
      return;
    }
    const deleting = Boolean(vmi.metadata?.deletionTimestamp);
    if (!deleting && !isFinal(vmi.status?.phase ?? '') && !vmi.metadata?.finalizers?.includes(VMI_FINALIZER)) {
      // A VMI created without its VM (the VM controller sets the finalizer at creation): hold it
      // before its first pod exists. KubeVirt's admission webhook does this. The pass goes on with
      // the patched object.
      vmi = await addFinalizer(this.vmiClient, vmi, VMI_FINALIZER, { fieldManager: FIELD_MANAGER, signal: ctx.signal });
      this.ownWrites.record(key, vmi.metadata?.resourceVersion);
    }
    const finalizers = vmi.metadata?.finalizers;
    const owned = this.deps.pods.byIndex('ownerUid', ownedBy(vmi));
    const expectedName = launcherPodName(vmi);
    let pod: Pod | undefined = currentLauncherPod(vmi, owned, expectedName);
    let failure: SyncFailure | undefined;
    let claims: ClaimFacts | undefined;
    let result: ReconcileResult | void = undefined;
    const phase = vmi.status?.phase ?? '';

    if (deleting) {
      // Delete the launcher with the pod's own grace period: the VMI's plus the launcher's exit
      // margin, so the guest gets its ACPI shutdown time.
      for (const victim of owned) {
        if (victim.metadata?.deletionTimestamp) continue;
        await this.podClient
          .delete(victim.metadata?.name ?? '', victim.metadata?.namespace, {
            ...(victim.spec?.terminationGracePeriodSeconds !== undefined ? { gracePeriodSeconds: victim.spec.terminationGracePeriodSeconds } : {}),
            ...(victim.metadata?.uid ? { preconditionUid: victim.metadata.uid } : {}),
          })
          .then(
            () => events.record(vmi, 'Normal', 'SuccessfulDelete', `Deleted virtual machine pod ${victim.metadata?.name}`),
            (err: unknown) => {
              if (!isNotFound(err)) throw err;
            },
          );
      }
    } else if (!pod && (phase === '' || phase === 'Pending')) {
      claims = await this.lookUpClaims(vmi, ctx.signal);
      const { missing, blockClaims } = claims;
      if (missing.length > 0) {
        failure = {
          reason: 'FailedPvcNotFound',
          message: `PersistentVolumeClaim ${missing.map((name) => `${vmi.metadata?.namespace}/${name}`).join(', ')} not found; create it or fix spec.volumes`,
        };
        events.record(vmi, 'Warning', 'FailedPvcNotFound', failure.message);
        result = { requeueAfter: PVC_RECHECK_MS };
      } else {
        pod = await this.createLauncherPod(key, vmi, blockClaims, ctx);
      }
    } else if (!pod && !isFinal(phase)) {
      // The cache says the pod is gone; make sure before failing the VM on its word.
      pod = await this.podClient.find(expectedName, vmi.metadata?.namespace, ctx.signal);
    }

    // LiveMigratable is written once while the controller still owns the conditions (ADR 0008);
    // the access modes of a VMI's claims do not change, and its volumes are fixed.
    let liveMigratable: ConditionInput | undefined;
    const controllerPhase = phase === '' || phase === 'Pending' || phase === 'Scheduling';
    if (controllerPhase && !deleting && !failure && !vmi.status?.conditions?.some((c) => c.type === LIVE_MIGRATABLE)) {
      const facts = claims ?? (await this.lookUpClaims(vmi, ctx.signal));
      if (facts.missing.length === 0) liveMigratable = liveMigratableCondition(vmi, (claim) => facts.accessModes.get(claim));
    }
    const migrationTargets = owned.filter((p) => p !== pod && isMigrationTarget(p));
    const now = this.now();
    const status = computeVMIStatus({ vmi, pod, migrationTargets, liveMigratable, failure, now });
    // A pod waiting for the scheduler: its binding is an event; a scheduler that says nothing is not.
    const bindWait = bindWaitMs(vmi, pod, now);
    if (bindWait !== undefined) result = { requeueAfter: bindWait };
    const { written, object } = await patchStatusIfChanged(this.vmiClient, vmi, status, {
      owned: VMI_STATUS_FIELDS.controller,
      writer: 'the controller',
      fieldManager: FIELD_MANAGER,
      signal: ctx.signal,
    });
    if (written) {
      this.ownWrites.record(key, object.metadata?.resourceVersion);
      ctx.log.info({ phase: status.phase, previousPhase: phase || undefined }, 'VMI status updated');
      if (status.phase === 'Failed' && phase !== 'Failed') {
        const message = pod ? podFailureMessage(pod) : `launcher pod ${expectedName} disappeared`;
        events.record(vmi, 'Warning', status.reason ?? 'Failed', `The VirtualMachineInstance failed: ${message}`);
      }
      if (status.phase === 'Scheduled' && phase !== 'Scheduled') {
        events.record(vmi, 'Normal', 'Scheduled', `Launcher pod ${pod?.metadata?.name} is running on node ${status.nodeName}`);
      }
    }
    if (!deleting && status.phase === 'Running' && pod) await this.removePreviousLaunchers(vmi, owned, pod, ctx);
    await this.markOutdatedLauncher(key, written ? object : vmi, status.launcherContainerImageVersion, deleting || isFinal(status.phase ?? ''), ctx);
    if ((deleting || isFinal(status.phase ?? '')) && finalizers?.includes(VMI_FINALIZER) && owned.length === 0) {
      await this.releaseWhenPodsGone(vmi, ctx);
    }
    return result;
  };

  /**
   * After a migration handed the VMI to its target pod, the source pod (paused after the migration,
   * its guest now running on the target) is removed. A pod created before the VMI's launcher is a
   * launcher it had before: a migration's target is always newer than its source.
   */
  private async removePreviousLaunchers(vmi: VirtualMachineInstance, owned: readonly Pod[], pod: Pod, ctx: ReconcileContext): Promise<void> {
    const since = pod.metadata?.creationTimestamp ? new Date(pod.metadata.creationTimestamp).getTime() : undefined;
    if (since === undefined) return;
    for (const previous of owned) {
      const created = previous.metadata?.creationTimestamp ? new Date(previous.metadata.creationTimestamp).getTime() : undefined;
      if (previous === pod || previous.metadata?.deletionTimestamp || created === undefined || created >= since) continue;
      await this.podClient
        .delete(previous.metadata?.name ?? '', previous.metadata?.namespace, { ...(previous.metadata?.uid ? { preconditionUid: previous.metadata.uid } : {}), signal: ctx.signal })
        .then(
          () => this.deps.events.record(vmi, 'Normal', 'SuccessfulDelete', `Deleted the migration source pod ${previous.metadata?.name}: the VMI runs in ${pod.metadata?.name} on ${pod.spec?.nodeName}`),
          (err: unknown) => {
            if (!isNotFound(err)) throw err;
          },
        );
      ctx.log.info({ pod: previous.metadata?.name, launcher: pod.metadata?.name }, 'removed the migration source pod');
    }
  }

  /**
   * KubeVirt's mark of a VMI whose launcher runs another image than the one this controller puts in
   * new pods (after an upgrade): the label, valued "", while it runs; gone once it stops. The VM
   * keeps its launcher; workloadUpdateStrategy's LiveMigrate would move it once migration exists.
   */
  private async markOutdatedLauncher(key: string, vmi: VirtualMachineInstance, launcherImage: string | undefined, ended: boolean, ctx: ReconcileContext): Promise<void> {
    const outdated = !ended && launcherImage !== undefined && launcherImage !== this.deps.launcherConfig().launcherImage;
    const marked = vmi.metadata?.labels?.[OUTDATED_LAUNCHER_IMAGE_LABEL] !== undefined;
    if (outdated === marked) return;
    const patched = await this.vmiClient.patch(vmi.metadata?.name ?? '', vmi.metadata?.namespace, { metadata: { labels: { [OUTDATED_LAUNCHER_IMAGE_LABEL]: outdated ? '' : null } } }, 'merge', {
      fieldManager: FIELD_MANAGER,
      signal: ctx.signal,
    });
    this.ownWrites.record(key, patched.metadata?.resourceVersion);
    ctx.log.info({ launcherImage, outdated }, outdated ? 'the launcher runs an outdated image: VMI marked' : 'VMI no longer marked as running an outdated launcher');
  }

  /**
   * Remove the VMI finalizer if no launcher pod of the VMI exists any more. The cache said so;
   * the API server is asked too, since this is what lets the VM start a new VMI on the same disks.
   */
  private async releaseWhenPodsGone(vmi: VirtualMachineInstance, ctx: ReconcileContext): Promise<void> {
    const live = await this.podClient.list({ namespace: vmi.metadata?.namespace, labelSelector: `${CREATED_BY_LABEL}=${vmi.metadata?.uid}` });
    if (live.items.length > 0) {
      ctx.log.debug({ pods: live.items.map((p) => p.metadata?.name) }, 'launcher pods still exist; keeping the finalizer');
      return;
    }
    await removeFinalizer(this.vmiClient, vmi, VMI_FINALIZER, { fieldManager: FIELD_MANAGER, signal: ctx.signal });
    ctx.log.info({ phase: vmi.status?.phase }, 'launcher pods gone: VMI finalizer removed');
  }

  private async createLauncherPod(key: string, vmi: VirtualMachineInstance, blockClaims: ReadonlySet<string>, ctx: ReconcileContext): Promise<Pod> {
    const rendered = renderLauncherPod(vmi, this.deps.launcherConfig(), { blockClaims }) as Pod;
    const name = rendered.metadata?.name ?? '';
    this.deps.expectations.expectCreations(key, 1);
    try {
      const created = await this.podClient.create(rendered, { fieldManager: FIELD_MANAGER, signal: ctx.signal });
      ctx.log.info({ pod: name }, 'created launcher pod');
      this.deps.events.record(vmi, 'Normal', 'SuccessfulCreate', `Created virtual machine pod ${name}`);
      return created;
    } catch (err) {
      if (isAlreadyExists(err)) {
        // A previous leader (or an earlier pass) created it: the deterministic name makes a retry
        // land here instead of creating a second pod. The informer will show it; keep expecting.
        ctx.log.info({ pod: name }, 'launcher pod already exists');
        return await this.podClient.get(name, vmi.metadata?.namespace, ctx.signal);
      }
      this.deps.expectations.creationObserved(key);
      if (!isNamespaceTerminating(err)) this.deps.events.record(vmi, 'Warning', 'FailedCreate', `Error creating pod: ${err instanceof Error ? err.message : String(err)}`);
      throw err;
    }
  }

  /** The VMI's PVCs that do not exist, those in Block mode (attached as devices), and every claim's access modes. */
  private async lookUpClaims(vmi: VirtualMachineInstance, signal: AbortSignal): Promise<ClaimFacts> {
    const claims = (vmi.spec.volumes ?? [])
      .map((volume) => volume.persistentVolumeClaim?.claimName ?? volume.ephemeral?.persistentVolumeClaim?.claimName)
      .filter((name): name is string => Boolean(name));
    const missing: string[] = [];
    const blockClaims = new Set<string>();
    const accessModes = new Map<string, string[] | undefined>();
    for (const claim of new Set(claims)) {
      const pvc = await this.pvcClient.find(claim, vmi.metadata?.namespace, signal);
      if (!pvc) missing.push(claim);
      else if (pvc.spec?.volumeMode === 'Block') blockClaims.add(claim);
      accessModes.set(claim, pvc?.spec?.accessModes);
    }
    return { missing, blockClaims, accessModes };
  }
}

export const vmiResource: ResourceDescriptor = {
  group: 'kubevirt.io',
  version: 'v1',
  resource: 'virtualmachineinstances',
  kind: 'VirtualMachineInstance',
  namespaced: true,
};
