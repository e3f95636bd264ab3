// The KubeVirt CR reconciler (KubeVirt's virt-operator): level-triggered, one key per CR. Each pass
// renders the whole installation from the CR, server-side applies every object under the
// operator's field manager (an object deleted or edited since is restored by that same apply),
// deletes what it manages but no longer renders, judges the rollout from the caches and writes the
// status once, only when it changed. A CR being deleted removes the workloads (or refuses to,
// per spec.uninstallStrategy), then everything the operator created, then its finalizer.
import type { WebhookClientAuth } from '../runtime/contracts/api-server.js';
import { createHash } from 'node:crypto';
import type { KubeVirt, KubeVirtSpec, KubeVirtStatus } from '../runtime/api/index.js';
import { KubeVirtSpec as KubeVirtSpecSchema, formatError, KUBEVIRT_API_VERSION } from '../runtime/api/index.js';
import type { ReconcileContext, ReconcileResult } from '../runtime/controller.js';
import { TerminalError } from '../runtime/controller.js';
import type { EventRecorder } from '../runtime/events.js';
import type { Informer } from '../runtime/informer.js';
import { canonicalJson } from '../runtime/json.js';
import type { KubeClient, KubeObject, ResourceDescriptor } from '../runtime/kube.js';
import { ApiError, coreResources, isNotFound, objectKey } from '../runtime/kube.js';
import { NODE_HANDLER_CONDITIONS, isNodeHandlerMark } from '../runtime/contracts/node-marks.js';
import { updateStatusIfChanged } from '../runtime/status.js';
import { CrdFinalizerRetrier } from './crd-deletion.js';
import type { InstallTarget, Manifest } from './install.js';
import { COMPONENTS, FIELD_MANAGER, KUBEVIRT_FINALIZER, LAUNCHER_IMAGE_NAME, imageRef, selectorLabels } from './install.js';
import type { ManagedKind } from './managed-kinds.js';
import { MANAGED_KINDS, REMOVAL_ORDER, isManagedKind } from './managed-kinds.js';
import type { Pki, SecretObject } from './pki.js';
import { currentPki } from './pki.js';
import { renderInstallation } from './render/index.js';
import { VALIDATING_WEBHOOK_CONFIGURATION } from './render/webhooks.js';
import type { WorkloadReadiness } from './status.js';
import type { VmiLauncherFacts } from './status.js';
import { daemonSetReadiness, deletingStatus, deployingStatus, deploymentReadiness, hasAvailableReplica, outdatedWorkloads, uninstallRefusal } from './status.js';

export type KubeVirtCR = KubeVirt & KubeObject;

export const kubevirtResource: ResourceDescriptor = { group: 'kubevirt.io', version: 'v1', resource: 'kubevirts', kind: 'KubeVirt', namespaced: true };

/** The workloads an uninstall waits for (KubeVirt's webhook names them the same way). */
const VMIS: ResourceDescriptor = { group: 'kubevirt.io', version: 'v1', resource: 'virtualmachineinstances', kind: 'VirtualMachineInstance', namespaced: true };
const WORKLOADS: ReadonlyArray<{ descriptor: ResourceDescriptor; what: string }> = [
  { descriptor: VMIS, what: 'Virtual Machine Instances' },
  { descriptor: { group: 'kubevirt.io', version: 'v1', resource: 'virtualmachines', kind: 'VirtualMachine', namespaced: true }, what: 'Virtual Machines' },
];
const MIGRATIONS: ResourceDescriptor = { group: 'kubevirt.io', version: 'v1', resource: 'virtualmachineinstancemigrations', kind: 'VirtualMachineInstanceMigration', namespaced: true };

/** The operator's defaults: its own version and registry (a CR naming none gets these). */
export interface OperatorDefaults {
  version: string;
  registry: string;
  pullPolicy: 'Always' | 'Never' | 'IfNotPresent';
  webhookClientAuth: WebhookClientAuth;
}

export type ManagedInformers = Record<ManagedKind, Informer<KubeObject>>;

export interface KubeVirtReconcilerOptions {
  client: KubeClient;
  kubevirts: Informer<KubeVirtCR>;
  managed: ManagedInformers;
  defaults: OperatorDefaults;
  events?: EventRecorder;
}

// While the CR is being deleted the caches are polled: deletions of other objects do not enqueue it.
const DELETION_POLL_MS = 1_000;
// While VMIs run an outdated launcher their count is looked at again this often (KubeVirt: 30 s).
const OUTDATED_RECHECK_MS = 30_000;

export function installTarget(kv: KubeVirtCR, spec: KubeVirtSpec, defaults: OperatorDefaults): InstallTarget {
  return {
    namespace: kv.metadata?.namespace ?? 'kubevirt',
    registry: spec.imageRegistry || defaults.registry,
    tag: spec.imageTag || defaults.version,
    pullPolicy: spec.imagePullPolicy ?? defaults.pullPolicy,
    webhookClientAuth: defaults.webhookClientAuth,
  };
}

function manifestKey(kind: string, namespace: string | undefined, name: string): string {
  return `${kind}:${namespace ?? ''}/${name}`;
}

function describe(manifest: { kind?: string; metadata?: { namespace?: string; name?: string } }): string {
  const { namespace, name } = manifest.metadata ?? {};
  return `${manifest.kind} ${namespace ? `${namespace}/` : ''}${name}`;
}

function errorText(err: unknown): string {
  if (err instanceof ApiError) return `${err.code} ${err.reason}: ${err.message.split(': ').slice(-1)[0]}`;
  return err instanceof Error ? err.message : String(err);
}

export class KubeVirtReconciler {
  private readonly crdFinalizer: CrdFinalizerRetrier;

  constructor(private readonly options: KubeVirtReconcilerOptions) {
    this.crdFinalizer = new CrdFinalizerRetrier(options.client);
  }

  readonly reconcile = async (key: string, ctx: ReconcileContext): Promise<ReconcileResult | void> => {
    const cached = this.options.kubevirts.get(key);
    if (!cached) return;
    if (cached.apiVersion !== undefined && cached.apiVersion !== KUBEVIRT_API_VERSION) return;
    const kv = structuredClone<KubeVirtCR>(cached);
    if (kv.metadata?.deletionTimestamp) return this.uninstall(kv, ctx);
    const parsed = KubeVirtSpecSchema.safeParse(kv.spec ?? {});
    if (!parsed.success) throw new TerminalError(`KubeVirt ${key}: ${formatError(parsed.error, 'KubeVirt')}`);
    const spec = parsed.data;
    if (!(kv.metadata?.finalizers ?? []).includes(KUBEVIRT_FINALIZER)) {
      // Before anything is created: whatever is created from now on is removed on deletion.
      await this.kubevirtClient().patch(kv.metadata?.name ?? '', kv.metadata?.namespace, {
        metadata: { finalizers: [...(kv.metadata?.finalizers ?? []), KUBEVIRT_FINALIZER], resourceVersion: kv.metadata?.resourceVersion },
      });
      return; // the patch's watch event brings the key back with the new resourceVersion
    }
    const target = installTarget(kv, spec, this.options.defaults);
    const pki = await this.currentPki(target, ctx);
    // Judged once, before rendering: a CR that reads Available has its webhook registered.
    const workloads = this.workloadReadiness(target);
    const desired = renderInstallation(spec, target, pki, this.webhooksAnswered(target));
    const applyErrors = await this.applyAll(desired, ctx);
    if (applyErrors.length === 0) await this.prune(desired, ctx);
    let status = deployingStatus(kv.status, {
      generation: kv.metadata?.generation,
      operatorVersion: this.options.defaults.version,
      registry: target.registry,
      tag: target.tag,
      deploymentID: createHash('sha256').update(canonicalJson(desired)).digest('hex').slice(0, 16),
      applyErrors,
      workloads,
    });
    // As KubeVirt, counted once the installation is deployed as rendered (before that the launcher image is changing).
    const outdated = status.phase === 'Deployed' && status.observedDeploymentID === status.targetDeploymentID ? await this.outdatedWorkloads(target, ctx) : undefined;
    if (outdated !== undefined) status = { ...status, outdatedVirtualMachineInstanceWorkloads: outdated };
    await this.writeStatus(kv, status, ctx);
    if (applyErrors.length > 0) throw new Error(`${applyErrors.length} object(s) could not be applied; retrying: ${applyErrors.join('; ')}`);
    // Come back when a certificate is due for renewal, or sooner while VMIs run an outdated launcher
    // (their count goes down as they stop or move, which enqueues nothing here).
    const renewal = Math.max(1_000, pki.renewAt - Date.now());
    return { requeueAfter: outdated ? Math.min(renewal, OUTDATED_RECHECK_MS) : renewal };
  };

  /** How many running VMIs have a launcher other than the one this installation renders. */
  private async outdatedWorkloads(target: InstallTarget, ctx: ReconcileContext): Promise<number> {
    const vmis = await this.options.client.resource<KubeObject & VmiLauncherFacts>(VMIS).list({ signal: ctx.signal });
    return outdatedWorkloads(vmis.items, imageRef(target, LAUNCHER_IMAGE_NAME));
  }

  /** The certificate Secrets as they should be, from the ones in the API server (read directly: a stale cache would issue twice). */
  private async currentPki(target: InstallTarget, ctx: ReconcileContext): Promise<Pki> {
    const secrets = this.options.client.resource<SecretObject>(MANAGED_KINDS.Secret);
    return currentPki((name) => secrets.find(name, target.namespace, ctx.signal), target);
  }

  private kubevirtClient() {
    return this.options.client.resource<KubeVirtCR>(kubevirtResource);
  }

  /** Server-side apply of every object, forced: the operator owns these fields, whoever edited them since. */
  private async applyAll(desired: readonly Manifest[], ctx: ReconcileContext): Promise<string[]> {
    const errors: string[] = [];
    for (const manifest of desired) {
      if (!isManagedKind(manifest.kind)) throw new Error(`rendered a ${manifest.kind}, which the operator does not manage`);
      try {
        await this.options.client
          .resource(MANAGED_KINDS[manifest.kind])
          .patch(manifest.metadata.name, manifest.metadata.namespace, manifest, 'apply', { fieldManager: FIELD_MANAGER, force: true, signal: ctx.signal });
      } catch (err) {
        ctx.log.warn({ err, object: describe(manifest) }, 'apply failed');
        errors.push(`${describe(manifest)}: ${errorText(err)}`);
      }
    }
    return errors;
  }

  /** Delete what carries the operator's label but is no longer rendered (e.g. a PDB after replicas: 1). */
  private async prune(desired: readonly Manifest[], ctx: ReconcileContext): Promise<void> {
    const wanted = new Set(desired.map((manifest) => manifestKey(manifest.kind, manifest.metadata.namespace, manifest.metadata.name)));
    for (const kind of REMOVAL_ORDER) {
      for (const obj of this.options.managed[kind].list()) {
        const { name, namespace } = obj.metadata ?? {};
        if (!name || wanted.has(manifestKey(kind, namespace, name))) continue;
        ctx.log.info({ object: `${kind} ${objectKey(obj)}` }, 'deleting an object the installation no longer has');
        await this.deleteIgnoringNotFound(kind, obj);
      }
    }
  }

  /**
   * Whether the admission webhook may be registered: it fails closed (ADR 0009), so not before an
   * api-server replica answers; once registered it stays, through rollouts and restarts.
   */
  private webhooksAnswered(target: InstallTarget): boolean {
    if (this.options.managed.ValidatingWebhookConfiguration.get(VALIDATING_WEBHOOK_CONFIGURATION)) return true;
    return hasAvailableReplica(this.options.managed.Deployment.get(`${target.namespace}/${COMPONENTS.apiServer.name}`));
  }

  private workloadReadiness(target: InstallTarget): WorkloadReadiness[] {
    const controller = `${target.namespace}/${COMPONENTS.controller.name}`;
    const nodeHandler = `${target.namespace}/${COMPONENTS.nodeHandler.name}`;
    const apiServer = `${target.namespace}/${COMPONENTS.apiServer.name}`;
    return [
      deploymentReadiness(`Deployment ${apiServer}`, this.options.managed.Deployment.get(apiServer)),
      deploymentReadiness(`Deployment ${controller}`, this.options.managed.Deployment.get(controller)),
      daemonSetReadiness(`DaemonSet ${nodeHandler}`, this.options.managed.DaemonSet.get(nodeHandler)),
    ];
  }

  private async writeStatus(kv: KubeVirtCR, status: KubeVirtStatus, ctx: ReconcileContext): Promise<void> {
    const { written } = await updateStatusIfChanged(this.kubevirtClient(), kv, status, { fieldManager: FIELD_MANAGER, signal: ctx.signal });
    if (written && status.phase !== kv.status?.phase) {
      ctx.log.info({ phase: status.phase }, 'KubeVirt phase changed');
      this.options.events?.record(kv, 'Normal', status.phase ?? 'Unknown', `KubeVirt is ${status.phase}`);
    }
  }

  private async uninstall(kv: KubeVirtCR, ctx: ReconcileContext): Promise<ReconcileResult | void> {
    if (!(kv.metadata?.finalizers ?? []).includes(KUBEVIRT_FINALIZER)) return;
    const strategy = kv.spec?.uninstallStrategy;
    const present = await this.presentWorkloads(ctx.signal);
    if (present.length > 0) {
      if (strategy === 'BlockUninstallIfWorkloadsExist') {
        const message = uninstallRefusal(present.join(' and '));
        await this.writeStatus(kv, deletingStatus(kv.status, message, []), ctx);
        this.options.events?.record(kv, 'Warning', 'DeletionBlocked', message);
        // Workload deletions do not enqueue the CR: look again.
        return { requeueAfter: 5_000 };
      }
      // RemoveWorkloads (KubeVirt's behaviour when unset): the controller, still running, stops them.
      await this.deleteWorkloads(ctx);
      await this.writeStatus(kv, deletingStatus(kv.status, undefined, this.managedObjects()), ctx);
      return { requeueAfter: DELETION_POLL_MS };
    }
    const remaining = await this.remainingObjects(ctx.signal);
    if (remaining.length > 0) {
      await this.writeStatus(kv, deletingStatus(kv.status, undefined, remaining), ctx);
      for (const kind of REMOVAL_ORDER) {
        for (const obj of this.options.managed[kind].list()) await this.deleteIgnoringNotFound(kind, obj);
      }
      await this.crdFinalizer.retryFailed(this.options.managed.CustomResourceDefinition.list(), ctx.log, ctx.signal);
      return { requeueAfter: DELETION_POLL_MS };
    }
    const handlers = await this.clearNodeMarks(kv.metadata?.namespace ?? 'kubevirt', ctx);
    if (handlers.length > 0) {
      // Its DaemonSet is gone; the status names what is waited for now, not the last object deleted.
      await this.writeStatus(kv, deletingStatus(kv.status, undefined, handlers), ctx);
      return { requeueAfter: DELETION_POLL_MS };
    }
    ctx.log.info('everything the operator created is gone; releasing the KubeVirt CR');
    await this.writeStatus(kv, { ...deletingStatus(kv.status, undefined, []), phase: 'Deleted' }, ctx);
    const fresh = await this.kubevirtClient().find(kv.metadata?.name ?? '', kv.metadata?.namespace, ctx.signal);
    if (!fresh) return;
    await this.kubevirtClient().patch(fresh.metadata?.name ?? '', fresh.metadata?.namespace, {
      metadata: { finalizers: (fresh.metadata?.finalizers ?? []).filter((finalizer) => finalizer !== KUBEVIRT_FINALIZER), resourceVersion: fresh.metadata?.resourceVersion },
    });
  }

  /**
   * Removes the node handlers' labels and annotation from every node, once no node handler pod is
   * left to put them back. Until then, the pods left ("Pod namespace/name"), and nothing removed.
   */
  private async clearNodeMarks(namespace: string, ctx: ReconcileContext): Promise<string[]> {
    const handlers = await this.options.client.resource(coreResources.pods).list({ namespace, labelSelector: Object.entries(selectorLabels('node-handler')).map(([key, value]) => `${key}=${value}`).join(','), signal: ctx.signal });
    if (handlers.items.length > 0) return handlers.items.map((pod) => `Pod ${objectKey(pod)}`);
    const nodes = this.options.client.resource(coreResources.nodes);
    for (const node of (await nodes.list({ signal: ctx.signal })).items) {
      const marks = (values: Record<string, string> | undefined) => Object.fromEntries(Object.keys(values ?? {}).filter(isNodeHandlerMark).map((key) => [key, null]));
      const labels = marks(node.metadata?.labels);
      const annotations = marks(node.metadata?.annotations);
      const conditions = ((node as { status?: { conditions?: Array<{ type: string }> } }).status?.conditions ?? []).filter((c) => NODE_HANDLER_CONDITIONS.includes(c.type)).map((c) => c.type);
      if (Object.keys(labels).length + Object.keys(annotations).length + conditions.length === 0) continue;
      ctx.log.info({ node: node.metadata?.name, labels: Object.keys(labels), annotations: Object.keys(annotations), conditions }, 'uninstall: removing the node handler\'s marks from a node');
      if (Object.keys(labels).length + Object.keys(annotations).length > 0) await nodes.patch(node.metadata?.name ?? '', undefined, { metadata: { labels, annotations } }, 'merge', { signal: ctx.signal });
      // Conditions are a list merged by type: strategic merge's delete directive removes just these.
      if (conditions.length > 0) await nodes.patchStatus(node.metadata?.name ?? '', undefined, { status: { conditions: conditions.map((type) => ({ type, $patch: 'delete' })) } }, 'strategic', { signal: ctx.signal });
    }
    return [];
  }

  /** What the operator created and its caches still hold, as "Kind namespace/name". */
  private managedObjects(): string[] {
    return REMOVAL_ORDER.flatMap((kind) => this.options.managed[kind].list().map((obj) => `${kind} ${objectKey(obj)}`));
  }

  /**
   * What of it still exists: the caches' objects, each confirmed by a get. A cache that missed a
   * deletion (a watch that ended at the wrong moment, until its next relist) must not hold the
   * uninstall, nor make the status name an object that is gone.
   */
  private async remainingObjects(signal: AbortSignal): Promise<string[]> {
    const remaining: string[] = [];
    for (const kind of REMOVAL_ORDER) {
      for (const obj of this.options.managed[kind].list()) {
        const live = await this.options.client.resource(MANAGED_KINDS[kind]).find(obj.metadata?.name ?? '', obj.metadata?.namespace, signal);
        if (live && live.metadata?.uid === obj.metadata?.uid) remaining.push(`${kind} ${objectKey(obj)}`);
      }
    }
    return remaining;
  }

  /** Which kinds of workload exist in the cluster ("Virtual Machines", ...); none when the CRDs are gone. */
  private async presentWorkloads(signal: AbortSignal): Promise<string[]> {
    const present: string[] = [];
    for (const { descriptor, what } of WORKLOADS) {
      try {
        const list = await this.options.client.resource(descriptor).list({ limit: 1, signal });
        if (list.items.length > 0) present.push(what);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    return present;
  }

  private async deleteWorkloads(ctx: ReconcileContext): Promise<void> {
    for (const descriptor of [...WORKLOADS.map((workload) => workload.descriptor).reverse(), MIGRATIONS]) {
      const client = this.options.client.resource(descriptor);
      let items: KubeObject[];
      try {
        items = (await client.list({ signal: ctx.signal })).items;
      } catch (err) {
        if (isNotFound(err)) continue;
        throw err;
      }
      for (const item of items) {
        if (item.metadata?.deletionTimestamp) continue;
        ctx.log.info({ object: `${descriptor.kind} ${objectKey(item)}` }, 'uninstall: deleting a workload (uninstallStrategy RemoveWorkloads)');
        try {
          await client.delete(item.metadata?.name ?? '', item.metadata?.namespace, { signal: ctx.signal });
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }
    }
  }

  private async deleteIgnoringNotFound(kind: ManagedKind, obj: KubeObject): Promise<void> {
    if (obj.metadata?.deletionTimestamp) return;
    try {
      await this.options.client.resource(MANAGED_KINDS[kind]).delete(obj.metadata?.name ?? '', obj.metadata?.namespace, {
        propagationPolicy: 'Background',
        ...(obj.metadata?.uid ? { preconditionUid: obj.metadata.uid } : {}),
      });
    } catch (err) {
      if (!isNotFound(err) && !(err instanceof ApiError && err.code === 409)) throw err;
    }
  }
}
