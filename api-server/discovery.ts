// Discovery documents of the aggregated API subresources.kubevirt.io: the root paths, the API
// group, and each version's resource list. They list exactly the routes the server serves (built
// from the same route table), so a client never discovers a subresource that answers 404.
import { SUBRESOURCE_GROUP, SUBRESOURCE_VERSIONS } from '../runtime/api/index.js';
import type { RbacVerb } from './authorize.js';

/** What discovery needs to know about a served route. */
export interface DiscoverableRoute {
  resource: string;
  subresource?: string;
  verb: RbacVerb;
}

const groupVersion = (version: string) => ({ groupVersion: `${SUBRESOURCE_GROUP}/${version}`, version });

export function apiGroup(): object {
  return {
    kind: 'APIGroup',
    apiVersion: 'v1',
    name: SUBRESOURCE_GROUP,
    versions: SUBRESOURCE_VERSIONS.map(groupVersion),
    preferredVersion: groupVersion(SUBRESOURCE_VERSIONS[0]),
  };
}

export function apiGroupList(): object {
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: [apiGroup()] };
}

export function rootPaths(): object {
  const paths = ['/apis', `/apis/${SUBRESOURCE_GROUP}`, ...SUBRESOURCE_VERSIONS.map((v) => `/apis/${SUBRESOURCE_GROUP}/${v}`), '/healthz'];
  return { paths };
}

/** One entry per served (sub)resource, with the RBAC verbs its routes need. */
export function apiResourceList(version: string, routes: readonly DiscoverableRoute[]): object {
  const verbs = new Map<string, Set<RbacVerb>>();
  for (const route of routes) {
    const name = route.subresource ? `${route.resource}/${route.subresource}` : route.resource;
    const set = verbs.get(name) ?? new Set<RbacVerb>();
    set.add(route.verb);
    verbs.set(name, set);
  }
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: `${SUBRESOURCE_GROUP}/${version}`,
    resources: [...verbs.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, set]) => ({ name, singularName: '', namespaced: true, kind: '', verbs: [...set].sort() })),
  };
}
