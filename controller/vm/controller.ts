// VirtualMachine → VirtualMachineInstance, as KubeVirt's VM controller: read the VM and its VMI from
// the cache, decide from the run strategy and the queued state change requests whether a VMI
// should be created or deleted, do that, then compute the VM status once and write it only if it
// changed. Creating and deleting go through expectations, so a pass on a stale cache waits for the
// informer instead of acting twice.
//
// A VM carries KubeVirt's finalizer `kubevirt.io/virtualMachineControllerFinalize`: deleting it
// deletes its VMI first (whose own finalizer holds it until the launcher pods are gone) and lets
// the VM go only when the VMI is gone, so a VM re-created under the same name cannot start a
// second QEMU on the same disks. With propagationPolicy Orphan the VMI is left running and the
// VM goes at once, as the garbage collector's `orphan` finalizer asks.
import { createHash } from 'node:crypto';
import type { InstancetypeSpec, PreferenceSpec, VirtualMachine, VirtualMachineInstance, VirtualMachineStatus } from '../api.js';
import { VirtualMachineInstancetypeSpec, VirtualMachinePreferenceSpec } from '../../runtime/api/index.js';
import type { ControllerExpectations } from '../../runtime/expectations.js';
import { canonicalJson } from '../../runtime/json.js';
import type { Informer } from '../../runtime/informer.js';
import type { KubeClient, ResourceClient, ResourceDescriptor } from '../../runtime/kube.js';
import { isAlreadyExists, isNamespaceTerminating, isNotFound } from '../../runtime/kube.js';
import type { ReconcileContext, ReconcileResult } from '../../runtime/controller.js';
import { updateStatusIfChanged } from '../../runtime/status.js';
import type { EventRecorder } from '../../runtime/events.js';
import { OwnWrites } from '../../runtime/own-writes.js';
import { VMI_FINALIZER, vmiResource } from '../vmi/controller.js';
import { addFinalizer, removeFinalizer } from '../../runtime/finalizers.js';
import { backoffSecondsLeft, nextStartFailure } from './crash-loop.js';
import { ExpansionError, expandTemplate } from '../../runtime/instancetype.js';
import type { NamedSpec } from '../../runtime/instancetype.js';
import { applyVMIDefaults } from '../../runtime/vmi-defaults.js';
import type { RevisionStore, StatusRef } from './revisions.js';
import { decideRunAction, isFinal, runStrategyOf, trimStateChangeRequests } from './run-strategy.js';
import type { ObservedVMI, RunDecision } from './run-strategy.js';
import { TEMPLATE_HASH_ANNOTATION, computeVMStatus } from './status.js';

export const vmResource: ResourceDescriptor = {
  group: 'kubevirt.io',
  version: 'v1',
  resource: 'virtualmachines',
  kind: 'VirtualMachine',
  namespaced: true,
};

const FIELD_MANAGER = 'kubevm-controller';
/** KubeVirt's VirtualMachineControllerFinalizer. */
export const VM_FINALIZER = 'kubevirt.io/virtualMachineControllerFinalize';
/** The garbage collector's finalizer for a deletion with propagationPolicy Orphan. */
const ORPHAN_FINALIZER = 'orphan';
/** A VM waiting for its instancetype (not found) looks again this often. */
const INSTANCETYPE_RECHECK_MS = 10_000;

export interface VMControllerDeps {
  client: KubeClient;
  vms: Informer<VirtualMachine>;
  vmis: Informer<VirtualMachineInstance>;
  /** VMI creations/deletions per VM key, fed by observeVMIs. */
  expectations: ControllerExpectations;
  revisions: RevisionStore;
  events: EventRecorder;
  now?: () => Date;
  random?: () => number;
}

function controllingVM(vmi: VirtualMachineInstance): string | undefined {
  const owner = vmi.metadata?.ownerReferences?.find((ref) => ref.controller && ref.kind === 'VirtualMachine');
  return owner && vmi.metadata?.namespace ? `${vmi.metadata.namespace}/${owner.name}` : undefined;
}

/** Feed VMI creations and deletions into the VM expectations; register before the controller's watch. */
export function observeVMIs(vmis: Informer<VirtualMachineInstance>, expectations: ControllerExpectations): () => void {
  return vmis.addEventHandler({
    onAdd: (vmi) => {
      const key = controllingVM(vmi);
      if (key) expectations.creationObserved(key);
    },
    onUpdate: (old, vmi) => {
      const key = controllingVM(vmi);
      if (key && !old.metadata?.deletionTimestamp && vmi.metadata?.deletionTimestamp) expectations.deletionObserved(key);
    },
    onDelete: (vmi) => {
      const key = controllingVM(vmi);
      if (key && !vmi.metadata?.deletionTimestamp) expectations.deletionObserved(key);
    },
  });
}

export function templateHash(vm: VirtualMachine): string {
  return createHash('sha256')
    .update(canonicalJson({ template: vm.spec.template, instancetype: vm.spec.instancetype?.name, preference: vm.spec.preference?.name }))
    .digest('hex')
    .slice(0, 16);
}

interface Expanded {
  instancetype?: NamedSpec<InstancetypeSpec>;
  preference?: NamedSpec<PreferenceSpec>;
  instancetypeRef?: StatusRef;
  preferenceRef?: StatusRef;
}

export class VMController {
  private readonly vmClient: ResourceClient<VirtualMachine>;
  private readonly vmiClient: ResourceClient<VirtualMachineInstance>;
  private readonly now: () => Date;
  private readonly ownWrites = new OwnWrites();

  constructor(private readonly deps: VMControllerDeps) {
    this.vmClient = deps.client.resource<VirtualMachine>(vmResource);
    this.vmiClient = deps.client.resource<VirtualMachineInstance>(vmiResource);
    this.now = deps.now ?? (() => new Date());
  }

  readonly reconcile = async (key: string, ctx: ReconcileContext): Promise<ReconcileResult | void> => {
    const { expectations, events } = this.deps;
    let vm = this.deps.vms.get(key);
    if (!vm) {
      // Its VMI goes with it: it carries a controller owner reference to the VM.
      expectations.delete(key);
      this.ownWrites.forget(key);
      return;
    }
    if (this.ownWrites.cacheIsBehind(key, vm.metadata?.resourceVersion)) {
      ctx.log.debug('waiting for the cache to show our last status write');
      return;
    }
    const deleting = Boolean(vm.metadata?.deletionTimestamp);
    if (!deleting && !vm.metadata?.finalizers?.includes(VM_FINALIZER)) {
      // The pass goes on with the patched object, the newest there is: a new VM's VMI is created
      // now, not after the watch has brought the finalizer back and the queue a second pass.
      vm = await addFinalizer(this.vmClient, vm, VM_FINALIZER, { fieldManager: FIELD_MANAGER, signal: ctx.signal });
      this.ownWrites.record(key, vm.metadata?.resourceVersion);
    }
    const finalizers = vm.metadata?.finalizers;
    const orphaning = deleting && Boolean(finalizers?.includes(ORPHAN_FINALIZER));
    const now = this.now();
    const vmUid = vm.metadata?.uid ?? '';
    const cached = this.deps.vmis.get(key);
    const foreign = cached && !cached.metadata?.ownerReferences?.some((ref) => ref.uid === vmUid && ref.controller);
    const vmi = foreign ? undefined : cached;
    const runStrategy = runStrategyOf(vm);
    const observed: ObservedVMI | undefined = vmi
      ? { uid: vmi.metadata?.uid ?? '', phase: vmi.status?.phase ?? '', deleting: Boolean(vmi.metadata?.deletionTimestamp) }
      : undefined;
    const startFailure = nextStartFailure(
      vm.status?.startFailure,
      vmi ? { uid: observed?.uid ?? '', phase: observed?.phase, everRan: (vmi.status?.phaseTransitionTimestamps ?? []).some((t) => t.phase === 'Running') } : undefined,
      runStrategy,
      now,
      this.deps.random,
    );

    let failure: { reason: string; message: string } | undefined;
    let result: ReconcileResult | void = undefined;
    if (foreign) {
      failure = { reason: 'FailedCreate', message: `VirtualMachineInstance ${key} exists and is not controlled by this VirtualMachine; delete it to let the VM start` };
    }

    // The instancetype/preference snapshot is taken whether or not the VM runs, so the VM keeps
    // what it was created with.
    const expanded: Expanded = {};
    try {
      const instancetype = await this.deps.revisions.resolveInstancetype<unknown>(vm, ctx.signal);
      if (instancetype) {
        expanded.instancetype = { ...instancetype.named, spec: parseSpec(VirtualMachineInstancetypeSpec, instancetype.named, 'spec.instancetype') };
        expanded.instancetypeRef = instancetype.ref;
      }
      const preference = await this.deps.revisions.resolvePreference<unknown>(vm, ctx.signal);
      if (preference) {
        expanded.preference = { ...preference.named, spec: parseSpec(VirtualMachinePreferenceSpec, preference.named, 'spec.preference') };
        expanded.preferenceRef = preference.ref;
      }
    } catch (err) {
      if (!(err instanceof ExpansionError)) throw err;
      failure = { reason: err.reason, message: err.message };
      if (err.reason === 'InstancetypeNotFound') result = { requeueAfter: INSTANCETYPE_RECHECK_MS };
    }

    const currentRequests = vm.status?.stateChangeRequests ?? [];
    let decision: RunDecision = decideRunAction({
      runStrategy,
      vmi: observed,
      stateChangeRequests: currentRequests,
      lastRunStrategy: vm.status?.runStrategy,
      backoffSeconds: backoffSecondsLeft(startFailure, now),
    });
    if (deleting) {
      decision = {
        action: observed && !observed.deleting && !orphaning ? { type: 'stop' } : { type: 'none' },
        reason: orphaning ? 'the VirtualMachine is being deleted with propagationPolicy Orphan: its VMI stays' : 'the VirtualMachine is being deleted',
        stateChangeRequests: trimStateChangeRequests(currentRequests, observed),
      };
    }

    const pending = expectations.pending(key);
    const settled = expectations.satisfied(key);
    let startExpected = !settled && (pending?.adds ?? 0) > 0;
    let stopExpected = !settled && (pending?.dels ?? 0) > 0;
    let acted = decision.action.type === 'none' || decision.action.type === 'wait';
    const hash = templateHash(vm);

    if (!settled) {
      ctx.log.debug({ pending }, 'waiting for the cache to show the VMI change just made');
    } else {
      switch (decision.action.type) {
        case 'start': {
          if (failure) break; // cannot build the VMI; the Failure condition says why
          const built = this.buildVMI(vm, expanded, hash, decision);
          if (built instanceof ExpansionError) {
            failure = { reason: built.reason, message: built.message };
            events.record(vm, 'Warning', 'FailedCreate', `Error creating virtual machine instance: ${built.message}`);
            break;
          }
          acted = await this.createVMI(key, vm, built, decision.reason, ctx);
          startExpected = acted;
          break;
        }
        case 'stop': {
          if (!vmi) break;
          acted = await this.deleteVMI(key, vm, vmi, decision.reason, ctx);
          stopExpected = acted;
          break;
        }
        case 'wait':
          result = { requeueAfter: decision.action.seconds * 1000 };
          break;
        case 'switchToAlways': {
          // How a Start reaches a Halted VM (KubeVirt's start subresource does the same).
          const patch = vm.spec.runStrategy !== undefined ? { spec: { runStrategy: 'Always' } } : { spec: { running: true } };
          await this.vmClient.patch(vm.metadata?.name ?? '', vm.metadata?.namespace, patch, 'merge', { fieldManager: FIELD_MANAGER, signal: ctx.signal });
          ctx.log.info('Start request on a Halted VM: runStrategy set to Always');
          acted = true;
          break;
        }
        case 'none':
          break;
      }
    }

    const stateChangeRequests = acted ? decision.stateChangeRequests : trimStateChangeRequests(currentRequests, observed);
    const status: VirtualMachineStatus = computeVMStatus({
      vm,
      vmi,
      runStrategy,
      stateChangeRequests,
      startFailure,
      startExpected,
      stopExpected,
      failure,
      templateHash: hash,
      instancetypeRef: expanded.instancetypeRef ?? (failure ? vm.status?.instancetypeRef : undefined),
      preferenceRef: expanded.preferenceRef ?? (failure ? vm.status?.preferenceRef : undefined),
      now,
    });
    const before = vm.status?.printableStatus;
    const { written, object } = await updateStatusIfChanged(this.vmClient, vm, status, { fieldManager: FIELD_MANAGER, signal: ctx.signal });
    if (written) this.ownWrites.record(key, object.metadata?.resourceVersion);
    if (written && status.printableStatus !== before) {
      ctx.log.info({ printableStatus: status.printableStatus, previous: before }, 'VM status changed');
      this.recordTransition(vm, vmi, before, status);
    }
    const previousFailure = vm.status?.conditions?.find((c) => c.type === 'Failure' && c.status === 'True');
    if (written && failure && previousFailure?.message !== failure.message) {
      ctx.log.warn({ reason: failure.reason, message: failure.message }, 'VM cannot proceed');
      events.record(vm, 'Warning', failure.reason, failure.message);
    }
    if (deleting && finalizers?.includes(VM_FINALIZER) && settled && (orphaning || !vmi)) await this.release(vm, orphaning, ctx);
    return result;
  };

  /** Let a deleted VM go: its VMI is gone (the API server is asked, not only the cache), or orphaned. */
  private async release(vm: VirtualMachine, orphaning: boolean, ctx: ReconcileContext): Promise<void> {
    const live = await this.vmiClient.find(vm.metadata?.name ?? '', vm.metadata?.namespace, ctx.signal);
    const references = live?.metadata?.ownerReferences;
    if (live && references?.some((ref) => ref.uid === vm.metadata?.uid)) {
      if (!orphaning) {
        ctx.log.debug('the VMI still exists; keeping the VM finalizer');
        return;
      }
      // Orphan the VMI ourselves before the VM goes: the garbage collector would, but only once it
      // watches VMIs (it discovers new resources every 30 s); a VM gone before that would leave a
      // VMI with a dangling owner reference, which the collector then deletes.
      await this.vmiClient.patch(
        live.metadata?.name ?? '',
        live.metadata?.namespace,
        [
          { op: 'test', path: '/metadata/ownerReferences', value: references },
          { op: 'replace', path: '/metadata/ownerReferences', value: references.filter((ref) => ref.uid !== vm.metadata?.uid) },
        ],
        'json',
        { fieldManager: FIELD_MANAGER, signal: ctx.signal },
      );
      ctx.log.info('VM deleted with propagationPolicy Orphan: its VMI no longer refers to it');
    }
    await removeFinalizer(this.vmClient, vm, VM_FINALIZER, { fieldManager: FIELD_MANAGER, signal: ctx.signal });
    ctx.log.info({ orphaning }, orphaning ? 'VM deleted with its VMI orphaned: finalizer removed' : 'VMI gone: VM finalizer removed');
  }

  private buildVMI(vm: VirtualMachine, expanded: Expanded, hash: string, decision: RunDecision): VirtualMachineInstance | ExpansionError {
    const template = vm.spec.template;
    let expansion;
    try {
      expansion = expandTemplate(template.spec, template.metadata ?? undefined, expanded.instancetype, expanded.preference);
    } catch (err) {
      if (err instanceof ExpansionError) return err;
      throw err;
    }
    const name = vm.metadata?.name ?? '';
    // The webhook would add the same defaults; rendering them here keeps the VMI whole without it.
    const spec = applyVMIDefaults(expansion.spec, name);
    const first = decision.stateChangeRequests[0] ?? vm.status?.stateChangeRequests?.[0];
    if (first?.action === 'Start' && first.data?.['paused'] === 'true') spec.startStrategy = 'Paused';
    return {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      metadata: {
        name,
        ...(vm.metadata?.namespace ? { namespace: vm.metadata.namespace } : {}),
        ...(template.metadata?.labels ? { labels: { ...template.metadata.labels } } : {}),
        annotations: {
          ...expansion.annotations,
          ...(template.metadata?.annotations ?? {}),
          [TEMPLATE_HASH_ANNOTATION]: hash,
          'kubevirt.io/vm-generation': String(vm.metadata?.generation ?? 0),
        },
        ownerReferences: [{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', name, uid: vm.metadata?.uid ?? '', controller: true, blockOwnerDeletion: true }],
        finalizers: [VMI_FINALIZER],
      },
      spec,
    };
  }

  private async createVMI(key: string, vm: VirtualMachine, vmi: VirtualMachineInstance, reason: string, ctx: ReconcileContext): Promise<boolean> {
    this.deps.expectations.expectCreations(key, 1);
    try {
      await this.vmiClient.create(vmi, { fieldManager: FIELD_MANAGER, signal: ctx.signal });
    } catch (err) {
      this.deps.expectations.creationObserved(key);
      if (isAlreadyExists(err)) {
        // The previous VMI (maybe still terminating) or one a previous leader created; the
        // informer will show it and the next pass decides again.
        ctx.log.info('VMI already exists; waiting for the cache');
        return false;
      }
      // In a namespace being deleted the event could not be stored either (the controller runtime
      // then stops retrying).
      if (!isNamespaceTerminating(err)) {
        this.deps.events.record(vm, 'Warning', 'FailedCreate', `Error creating virtual machine instance: ${err instanceof Error ? err.message : String(err)}`);
      }
      throw err;
    }
    ctx.log.info({ reason }, 'created VMI');
    this.deps.events.record(vm, 'Normal', 'SuccessfulCreate', `Started the virtual machine by creating the new virtual machine instance ${vmi.metadata?.name} (${reason})`);
    return true;
  }

  private async deleteVMI(key: string, vm: VirtualMachine, vmi: VirtualMachineInstance, reason: string, ctx: ReconcileContext): Promise<boolean> {
    let preconditionResourceVersion: string | undefined;
    if (vm.metadata?.deletionTimestamp) {
      // The garbage collector orphans the VMI (drops its owner reference) before it removes the
      // VM's `orphan` finalizer; our VM and VMI caches may show those two writes in either order.
      // Ask the server, and delete only the version that is still ours.
      const live = await this.vmiClient.find(vmi.metadata?.name ?? '', vmi.metadata?.namespace, ctx.signal);
      if (!live?.metadata?.ownerReferences?.some((ref) => ref.uid === vm.metadata?.uid && ref.controller)) return false;
      preconditionResourceVersion = live.metadata.resourceVersion;
    }
    this.deps.expectations.expectDeletions(key, 1);
    try {
      await this.vmiClient.delete(vmi.metadata?.name ?? '', vmi.metadata?.namespace, {
        ...(vmi.metadata?.uid ? { preconditionUid: vmi.metadata.uid } : {}),
        ...(preconditionResourceVersion ? { preconditionResourceVersion } : {}),
        signal: ctx.signal,
      });
    } catch (err) {
      this.deps.expectations.deletionObserved(key);
      if (isNotFound(err)) return false;
      this.deps.events.record(vm, 'Warning', 'FailedDelete', `Error deleting virtual machine instance ${vmi.metadata?.name}: ${err instanceof Error ? err.message : String(err)}`);
      throw err;
    }
    ctx.log.info({ reason, vmiUid: vmi.metadata?.uid }, 'deleted VMI');
    this.deps.events.record(vm, 'Normal', 'SuccessfulDelete', `Stopped the virtual machine by deleting the virtual machine instance ${vmi.metadata?.uid} (${reason})`);
    return true;
  }

  private recordTransition(vm: VirtualMachine, vmi: VirtualMachineInstance | undefined, before: string | undefined, status: VirtualMachineStatus): void {
    const { events } = this.deps;
    const conditionMessage = (type: string) => status.conditions?.find((c) => c.type === type)?.message ?? '';
    switch (status.printableStatus) {
      case 'Running':
        events.record(vm, 'Normal', 'Started', `VirtualMachine started: VMI ${vmi?.metadata?.name} is running on node ${vmi?.status?.nodeName ?? ''}`);
        break;
      case 'Stopped':
        if (before !== undefined && before !== 'Stopped') {
          const how = vmi && isFinal(vmi.status?.phase ?? '') ? ` (the VMI ${vmi.status?.phase === 'Succeeded' ? 'succeeded: the guest powered off' : 'failed'})` : '';
          events.record(vm, 'Normal', 'Stopped', `VirtualMachine stopped${how}`);
        }
        break;
      case 'CrashLoopBackOff':
        events.record(
          vm,
          'Warning',
          'CrashLoopBackOff',
          `The VMI failed ${status.startFailure?.consecutiveFailCount ?? 0} time(s) in a row before its guest started; next start not before ${status.startFailure?.retryAfterTimestamp}`,
        );
        break;
      case 'ErrorUnschedulable':
        events.record(vm, 'Warning', 'ErrorUnschedulable', conditionMessage('PodScheduled'));
        break;
      case 'ErrImagePull':
      case 'ImagePullBackOff':
      case 'ErrorPvcNotFound':
        events.record(vm, 'Warning', status.printableStatus, conditionMessage('Synchronized'));
        break;
      default:
        break;
    }
  }
}

function parseSpec<S>(schema: { safeParse(value: unknown): { success: true; data: S } | { success: false; error: { message: string } } }, named: NamedSpec<unknown>, path: string): S {
  const parsed = schema.safeParse(named.spec);
  if (!parsed.success) {
    throw new ExpansionError([{ path, message: `${named.kind} ${named.name} has an invalid spec: ${parsed.error.message}` }], 'InvalidInstancetype');
  }
  return parsed.data;
}
