// expand-spec (GET .../virtualmachines/{name}/expand-spec) and expand-vm-spec (PUT
// .../namespaces/{namespace}/expand-vm-spec with a VirtualMachine as the body): the VM with its
// instancetype and preference applied to the template, and the references removed, as KubeVirt's
// virt-api answers. The expansion is the controller's own (runtime/instancetype.ts), so what this
// shows is what the VMI gets. As KubeVirt's revisionFinder, the instancetype and preference come
// from the ControllerRevision the VM is pinned to (spec.*.revisionName, else the snapshot the
// controller recorded in status.instancetypeRef / preferenceRef for the same matcher), and from
// the current object only when there is none.
import {
  VirtualMachinePreferenceSpec,
  VirtualMachineInstancetypeSpec,
  VirtualMachineSchema,
  formatIssues,
} from '../runtime/api/index.js';
import type { NamedSpec, RecordedRevisionRef } from '../runtime/instancetype.js';
import { ExpansionError, expandTemplate, instancetypeKindOf, pinnedRevisionName, preferenceKindOf } from '../runtime/instancetype.js';
import type { SubresourceRoute } from './server.js';
import type { StatusError } from './status.js';
import { badRequest, badRequestWithCauses, internalError } from './status.js';
import type { VirtualMachine } from './types.js';
import type { VmBackends } from './vm-subresources.js';
import { fetchVm } from './vm-subresources.js';

/** Where expansion reads instancetypes and preferences; each answers undefined for one that does not exist. */
export interface InstancetypeSources {
  /** The spec of the current object of that kind. */
  object(kind: string, namespace: string, name: string): Promise<unknown>;
  /** The spec stored in a ControllerRevision of the VM's namespace (its `data.spec`). */
  revision(namespace: string, name: string): Promise<unknown>;
}

/** The spec a matcher expands with: its pinned revision's, else the current object's. */
async function sourceSpec(
  sources: InstancetypeSources,
  namespace: string,
  matcher: NonNullable<VirtualMachine['spec']['instancetype']>,
  kind: string,
  recorded: RecordedRevisionRef | undefined,
  path: string,
): Promise<{ spec: unknown; from: string }> {
  const name = matcher.name ?? '';
  const pinned = pinnedRevisionName(matcher, kind, recorded);
  if (pinned) {
    const spec = await sources.revision(namespace, pinned);
    if (spec !== undefined) return { spec, from: `ControllerRevision ${JSON.stringify(pinned)}` };
    if (matcher.revisionName) throw new Error(`${path}.revisionName: ControllerRevision ${namespace}/${pinned} not found`);
    // The recorded snapshot is gone; the controller takes a new one from the current object.
  }
  return { spec: await sources.object(kind, namespace, name), from: `${kind} ${JSON.stringify(name)}` };
}

/** The VM with its instancetype and preference applied; throws Error/ExpansionError naming what is wrong. */
export async function expandVirtualMachine(vm: VirtualMachine, namespace: string, sources: InstancetypeSources): Promise<VirtualMachine> {
  const { instancetype: itMatcher, preference: prefMatcher, ...rest } = vm.spec;
  if (!itMatcher && !prefMatcher) return vm;
  let instancetype: NamedSpec<VirtualMachineInstancetypeSpec> | undefined;
  if (itMatcher?.name) {
    const kind = instancetypeKindOf(itMatcher);
    const found = await sourceSpec(sources, namespace, itMatcher, kind, vm.status?.instancetypeRef, 'spec.instancetype');
    const spec = VirtualMachineInstancetypeSpec.safeParse(found.spec);
    if (!spec.success) throw new Error(`${found.from} not found or not valid`);
    instancetype = { kind, name: itMatcher.name, spec: spec.data };
  }
  let preference: NamedSpec<VirtualMachinePreferenceSpec> | undefined;
  if (prefMatcher?.name) {
    const kind = preferenceKindOf(prefMatcher);
    const found = await sourceSpec(sources, namespace, prefMatcher, kind, vm.status?.preferenceRef, 'spec.preference');
    const spec = VirtualMachinePreferenceSpec.safeParse(found.spec);
    if (!spec.success) throw new Error(`${found.from} not found or not valid`);
    preference = { kind, name: prefMatcher.name, spec: spec.data };
  }
  const template = vm.spec.template;
  const expansion = expandTemplate(template.spec, template.metadata ?? undefined, instancetype, preference);
  const annotations = { ...expansion.annotations, ...(template.metadata?.annotations ?? {}) };
  return {
    ...vm,
    spec: {
      ...rest,
      template: {
        ...template,
        ...(Object.keys(annotations).length > 0 ? { metadata: { ...template.metadata, annotations } } : {}),
        spec: expansion.spec,
      },
    },
  };
}

function describe(err: unknown): string {
  return err instanceof ExpansionError || err instanceof Error ? err.message : String(err);
}

export function expandRoutes(backends: Pick<VmBackends, 'vms'>, sources: InstancetypeSources): SubresourceRoute[] {
  const expand = async (vm: VirtualMachine, namespace: string, failure: (message: string) => StatusError): Promise<VirtualMachine> => {
    try {
      return await expandVirtualMachine(vm, namespace, sources);
    } catch (err) {
      throw failure(describe(err));
    }
  };
  return [
    {
      method: 'GET',
      resource: 'virtualmachines',
      subresource: 'expand-spec',
      async handle(request) {
        const vm = await fetchVm(backends.vms, request.namespace, request.name ?? '');
        return { code: 200, body: await expand(vm, request.namespace, internalError) };
      },
    },
    {
      method: 'PUT',
      resource: 'expand-vm-spec',
      async handle(request) {
        if (request.body.trim() === '') throw badRequest('empty request body');
        let raw: unknown;
        try {
          raw = JSON.parse(request.body);
        } catch (err) {
          throw badRequest(`Can not unmarshal Request body to struct, error: ${describe(err)}`);
        }
        const parsed = VirtualMachineSchema.safeParse(raw);
        if (!parsed.success) throw badRequestWithCauses('Object is not a valid VirtualMachine', formatIssues(parsed.error.issues, 'VirtualMachine'));
        const vm = parsed.data as VirtualMachine;
        const namespace = vm.metadata?.namespace;
        if (namespace && namespace !== request.namespace) throw badRequest(`VM namespace must be empty or ${request.namespace}`);
        const inNamespace = { ...vm, metadata: { ...vm.metadata, namespace: request.namespace } };
        return { code: 200, body: await expand(inNamespace, request.namespace, badRequest) };
      },
    },
  ];
}
