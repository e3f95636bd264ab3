// The instancetype and preference a VM uses are snapshotted into ControllerRevisions the first time
// the controller sees the VM, and recorded in status.instancetypeRef / status.preferenceRef (KubeVirt
// records the same in spec.*.revisionName or, in newer versions, in status). From then on the VM
// expands from its snapshot: editing or deleting the instancetype changes no existing VM; changing
// the VM's matcher (another name or kind) takes a new snapshot.
import { createHash } from 'node:crypto';
import type { InstancetypeMatcher, VirtualMachine, VirtualMachineStatus } from '../api.js';
import type { Informer } from '../../runtime/informer.js';
import type { KubeClient, KubeObject, ResourceClient, ResourceDescriptor } from '../../runtime/kube.js';
import { coreResources, isAlreadyExists } from '../../runtime/kube.js';
import type { NamedSpec } from '../../runtime/instancetype.js';
import { ExpansionError, instancetypeKindOf, pinnedRevisionName, preferenceKindOf } from '../../runtime/instancetype.js';

export const controllerRevisions: ResourceDescriptor = coreResources.controllerRevisions;

/** The stored copy of an instancetype or preference. */
export interface SnapshotObject extends KubeObject {
  spec: unknown;
}

export interface ControllerRevision extends KubeObject {
  data: SnapshotObject;
  revision: number;
}

export type StatusRef = NonNullable<VirtualMachineStatus['instancetypeRef']>;

/** Where instancetype-like objects come from, by kind. */
export type SourceInformers = Record<string, Informer<SnapshotObject> | undefined>;

const scoped: Record<string, boolean> = {
  VirtualMachineInstancetype: true,
  VirtualMachineClusterInstancetype: false,
  VirtualMachinePreference: true,
  VirtualMachineClusterPreference: false,
};

export interface ResolvedSnapshot<S> {
  named: NamedSpec<S>;
  ref: StatusRef;
}

/** Deterministic, so two leaders snapshotting the same object generation agree on one revision. */
export function revisionName(vm: VirtualMachine, object: SnapshotObject): string {
  const digest = createHash('sha256')
    .update(`${object.kind}/${object.metadata?.uid}/${object.metadata?.generation ?? 0}`)
    .digest('hex')
    .slice(0, 10);
  const vmName = (vm.metadata?.name ?? '').slice(0, 100);
  const objectName = (object.metadata?.name ?? '').slice(0, 100);
  return `${vmName}-${objectName}-${digest}`.replace(/\.+/g, '-');
}

export class RevisionStore {
  private readonly revisions: ResourceClient<ControllerRevision>;
  /** Revisions are immutable in practice: read each once. */
  private readonly cache = new Map<string, ControllerRevision>();

  constructor(
    client: KubeClient,
    private readonly sources: SourceInformers,
  ) {
    this.revisions = client.resource<ControllerRevision>(controllerRevisions);
  }

  async resolveInstancetype<S>(vm: VirtualMachine, signal: AbortSignal): Promise<ResolvedSnapshot<S> | undefined> {
    const matcher = vm.spec.instancetype;
    if (!matcher) return undefined;
    return this.resolve<S>(vm, matcher, instancetypeKindOf(matcher), vm.status?.instancetypeRef, 'spec.instancetype', signal);
  }

  async resolvePreference<S>(vm: VirtualMachine, signal: AbortSignal): Promise<ResolvedSnapshot<S> | undefined> {
    const matcher = vm.spec.preference;
    if (!matcher) return undefined;
    return this.resolve<S>(vm, matcher, preferenceKindOf(matcher), vm.status?.preferenceRef, 'spec.preference', signal);
  }

  private async resolve<S>(
    vm: VirtualMachine,
    matcher: InstancetypeMatcher,
    kind: string,
    recorded: StatusRef | undefined,
    path: string,
    signal: AbortSignal,
  ): Promise<ResolvedSnapshot<S>> {
    const namespace = vm.metadata?.namespace;
    const name = matcher.name;
    if (!name) throw new ExpansionError([{ path: `${path}.name`, message: 'is required (inferFromVolume is not supported)' }], 'InstancetypeNotFound');
    const pinned = pinnedRevisionName(matcher, kind, recorded);
    if (pinned) {
      const revision = await this.readRevision(pinned, namespace, signal);
      if (revision) return this.snapshot<S>(revision, kind, name);
      if (matcher.revisionName) {
        throw new ExpansionError([{ path: `${path}.revisionName`, message: `ControllerRevision ${namespace}/${pinned} not found` }], 'InstancetypeNotFound');
      }
      // The recorded snapshot vanished (deleted by hand): take a new one rather than stay stuck.
    }
    const informer = this.sources[kind];
    const key = scoped[kind] && namespace ? `${namespace}/${name}` : name;
    const object = informer?.get(key);
    if (!object) {
      const where = scoped[kind] ? ` in namespace ${namespace}` : '';
      throw new ExpansionError([{ path: `${path}.name`, message: `${kind} ${name} not found${where}; create it or fix the reference` }], 'InstancetypeNotFound');
    }
    const revision: ControllerRevision = {
      apiVersion: 'apps/v1',
      kind: 'ControllerRevision',
      metadata: {
        name: revisionName(vm, object),
        ...(namespace ? { namespace } : {}),
        labels: { 'instancetype.kubevirt.io/object-kind': kind, 'instancetype.kubevirt.io/object-name': name },
        ownerReferences: [
          { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', name: vm.metadata?.name ?? '', uid: vm.metadata?.uid ?? '', controller: false, blockOwnerDeletion: false },
        ],
      },
      data: {
        apiVersion: object.apiVersion ?? 'instancetype.kubevirt.io/v1beta1',
        kind,
        metadata: { name, uid: object.metadata?.uid ?? '', generation: object.metadata?.generation ?? 0, ...(scoped[kind] && namespace ? { namespace } : {}) },
        spec: object.spec,
      },
      revision: 1,
    };
    let stored: ControllerRevision;
    try {
      stored = await this.revisions.create(revision, { fieldManager: 'kubevm-controller', signal });
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      stored = await this.revisions.get(revision.metadata?.name ?? '', namespace, signal);
    }
    this.cache.set(`${namespace}/${stored.metadata?.name}`, stored);
    return this.snapshot<S>(stored, kind, name);
  }

  private async readRevision(name: string, namespace: string | undefined, signal: AbortSignal): Promise<ControllerRevision | undefined> {
    const cached = this.cache.get(`${namespace}/${name}`);
    if (cached) return cached;
    const revision = await this.revisions.find(name, namespace, signal);
    if (revision) this.cache.set(`${namespace}/${name}`, revision);
    return revision;
  }

  private snapshot<S>(revision: ControllerRevision, kind: string, name: string): ResolvedSnapshot<S> {
    return {
      named: { kind, name, spec: revision.data.spec as S },
      ref: { name, kind, controllerRevisionRef: { name: revision.metadata?.name ?? '' } },
    };
  }
}
