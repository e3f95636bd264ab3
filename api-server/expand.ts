// expand-spec (GET .../virtualmachines/{name}/expand-spec) and expand-vm-spec (PUT
// .../namespaces/{namespace}/expand-vm-spec with a VirtualMachine as the body): the VM with its
// instancetype and preference applied to the template, and the references removed, as KubeVirt's
// virt-api answers. The expansion is the controller's own (runtime/instancetype.ts), so what this
// shows is what the VMI gets. The instancetype and preference are read as they are now (KubeVirt
// prefers the VM's ControllerRevision snapshot when the VM has one).
import {
  VirtualMachinePreferenceSpec,
  VirtualMachineInstancetypeSpec,
  VirtualMachineSchema,
  formatIssues,
} from '../runtime/api/index.js';
import type { NamedSpec } from '../runtime/instancetype.js';
import { ExpansionError, expandTemplate, instancetypeKindOf, preferenceKindOf } from '../runtime/instancetype.js';
import type { SubresourceRoute } from './server.js';
import type { StatusError } from './status.js';
import { badRequest, badRequestWithCauses, internalError } from './status.js';
import type { VirtualMachine } from './types.js';
import type { VmBackends } from './vm-subresources.js';
import { fetchVm } from './vm-subresources.js';

/** The spec of an instancetype or preference by kind; undefined when it does not exist. */
export type FindInstancetypeSpec = (kind: string, namespace: string, name: string) => Promise<unknown>;

/** The VM with its instancetype and preference applied; throws Error/ExpansionError naming what is wrong. */
export async function expandVirtualMachine(vm: VirtualMachine, namespace: string, find: FindInstancetypeSpec): Promise<VirtualMachine> {
  const { instancetype: itMatcher, preference: prefMatcher, ...rest } = vm.spec;
  if (!itMatcher && !prefMatcher) return vm;
  let instancetype: NamedSpec<VirtualMachineInstancetypeSpec> | undefined;
  if (itMatcher?.name) {
    const kind = instancetypeKindOf(itMatcher);
    const spec = VirtualMachineInstancetypeSpec.safeParse(await find(kind, namespace, itMatcher.name));
    if (!spec.success) throw new Error(`${kind} ${JSON.stringify(itMatcher.name)} not found or not valid`);
    instancetype = { kind, name: itMatcher.name, spec: spec.data };
  }
  let preference: NamedSpec<VirtualMachinePreferenceSpec> | undefined;
  if (prefMatcher?.name) {
    const kind = preferenceKindOf(prefMatcher);
    const spec = VirtualMachinePreferenceSpec.safeParse(await find(kind, namespace, prefMatcher.name));
    if (!spec.success) throw new Error(`${kind} ${JSON.stringify(prefMatcher.name)} not found or not valid`);
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

export function expandRoutes(backends: Pick<VmBackends, 'vms'>, find: FindInstancetypeSpec): SubresourceRoute[] {
  const expand = async (vm: VirtualMachine, namespace: string, failure: (message: string) => StatusError): Promise<VirtualMachine> => {
    try {
      return await expandVirtualMachine(vm, namespace, find);
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
