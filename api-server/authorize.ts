// Every subresource request is authorized with a SubjectAccessReview, as KubeVirt's virt-api does:
// the caller (from the front proxy's headers) may `get` (GET routes) or `update` (PUT routes) the
// subresource, e.g. `update virtualmachines/start` in group subresources.kubevirt.io. The API
// server checks RBAC before proxying too; this check keeps the API safe if it is reached another
// way (a misconfigured APIService, a pod on the network with a stolen front-proxy certificate
// cannot get further than the identity it claims).
import { HttpMethod } from '@kubernetes/client-node';
import { z } from 'zod';
import type { KubeClient } from '../runtime/kube.js';
import type { UserInfo } from './front-proxy.js';

export type RbacVerb = 'get' | 'update';

/** What a request does, in RBAC's terms. */
export interface ResourceAttributes {
  namespace: string;
  /** RbacVerb for subresource routes; the admission guards ask for verbs of their own (exec, use). */
  verb: string;
  group: string;
  version: string;
  /** virtualmachines, virtualmachineinstances, or expand-vm-spec. */
  resource: string;
  /** start, stop, console, portforward (port and protocol are not part of it), ... */
  subresource?: string;
  name?: string;
}

/** KubeVirt's mapping: GET (and HEAD) → get, PUT → update. */
export function rbacVerbOf(method: string): RbacVerb | undefined {
  switch (method.toUpperCase()) {
    case 'GET':
    case 'HEAD':
      return 'get';
    case 'PUT':
      return 'update';
    default:
      return undefined;
  }
}

export function subjectAccessReview(user: UserInfo & { uid?: string }, attributes: ResourceAttributes): object {
  return {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    spec: {
      user: user.username,
      ...(user.uid ? { uid: user.uid } : {}),
      groups: user.groups,
      ...(Object.keys(user.extra).length > 0 ? { extra: user.extra } : {}),
      resourceAttributes: attributes,
    },
  };
}

/** `update virtualmachines/start "vm" in namespace "ns"`, for denial messages and logs. */
export function describeAttributes(a: ResourceAttributes): string {
  const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const name = a.name ? ` ${JSON.stringify(a.name)}` : '';
  return `resource "${resource}" in API group "${a.group}"${name} in the namespace "${a.namespace}"`;
}

const SubjectAccessReviewStatus = z.object({
  status: z.object({ allowed: z.boolean(), denied: z.boolean().optional(), reason: z.string().optional(), evaluationError: z.string().optional() }),
});

export interface AuthorizationDecision {
  allowed: boolean;
  reason: string;
}

export interface Authorizer {
  authorize(user: UserInfo & { uid?: string }, attributes: ResourceAttributes): Promise<AuthorizationDecision>;
}

/** Asks the API server (POST subjectaccessreviews); an unreadable answer is an error, never an allow. */
export class SubjectAccessReviewAuthorizer implements Authorizer {
  constructor(private readonly client: KubeClient) {}

  async authorize(user: UserInfo & { uid?: string }, attributes: ResourceAttributes): Promise<AuthorizationDecision> {
    const answer = await this.client.request(HttpMethod.POST, '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
      body: subjectAccessReview(user, attributes),
    });
    const parsed = SubjectAccessReviewStatus.safeParse(answer);
    if (!parsed.success) throw new Error('the SubjectAccessReview answer has no status.allowed');
    const { allowed, reason, evaluationError } = parsed.data.status;
    return { allowed, reason: reason ?? evaluationError ?? '' };
  }
}
