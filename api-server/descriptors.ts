// Resource descriptors of the kinds the api-server reads and writes, from the API's names.
import type { ResourceNames } from '../runtime/api/index.js';
import type { ResourceDescriptor } from '../runtime/kube.js';

export function descriptorOf(names: ResourceNames): ResourceDescriptor {
  return { group: names.group, version: names.version, resource: names.plural, kind: names.kind, namespaced: names.scope === 'Namespaced' };
}
