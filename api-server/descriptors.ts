// Resource descriptors of the kinds the api-server reads and writes, from the API's names, and the
// one reader of instancetypes and preferences (expand-spec and the webhook use it).
import {
  VirtualMachineClusterInstancetypeNames,
  VirtualMachineClusterPreferenceNames,
  VirtualMachineInstancetypeNames,
  VirtualMachinePreferenceNames,
} from '../runtime/api/index.js';
import type { ResourceNames } from '../runtime/api/index.js';
import type { KubeClient, KubeObject, ResourceDescriptor } from '../runtime/kube.js';
import { coreResources } from '../runtime/kube.js';
import type { InstancetypeSources } from './expand.js';

export function descriptorOf(names: ResourceNames): ResourceDescriptor {
  return { group: names.group, version: names.version, resource: names.plural, kind: names.kind, namespaced: names.scope === 'Namespaced' };
}

const instancetypeKinds: Record<string, ResourceNames> = Object.fromEntries(
  [VirtualMachineInstancetypeNames, VirtualMachineClusterInstancetypeNames, VirtualMachinePreferenceNames, VirtualMachineClusterPreferenceNames].map((n) => [n.kind, n]),
);

/** Reads the spec of an instancetype or preference by kind, or of a VM's ControllerRevision snapshot; undefined when it does not exist. */
export function instancetypeSources(client: KubeClient): InstancetypeSources {
  const revisions = client.resource<KubeObject & { data?: { spec?: unknown } }>(coreResources.controllerRevisions);
  return {
    async object(kind, namespace, name) {
      const names = instancetypeKinds[kind];
      if (!names) return undefined;
      const found = await client.resource<KubeObject & { spec?: unknown }>(descriptorOf(names)).find(name, names.scope === 'Namespaced' ? namespace : undefined);
      return found ? (found.spec ?? {}) : undefined;
    },
    async revision(namespace, name) {
      const found = await revisions.find(name, namespace);
      return found ? (found.data?.spec ?? {}) : undefined;
    },
  };
}
