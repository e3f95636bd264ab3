// metav1.Status answers, worded as k8s.io/apimachinery's errors package words them, because
// KubeVirt's virt-api answers with those and clients (virtctl, scripts) match on code and reason.
//   NewConflict(virtualmachine.kubevirt.io, name, err)
//     → 409 Conflict `Operation cannot be fulfilled on virtualmachine.kubevirt.io "name": <err>`

/** metav1.Status as the API server sends it for a failed request. */
export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure';
  message: string;
  reason: string;
  details?: { name?: string; group?: string; kind?: string; causes?: Array<{ message: string; field?: string }> };
  code: number;
}

/** A request handler's failure: thrown or returned, written to the client as its Status. */
export class StatusError extends Error {
  override readonly name = 'StatusError';

  constructor(readonly status: Status) {
    super(status.message);
  }

  get code(): number {
    return this.status.code;
  }
}

/** KubeVirt's v1.Resource(name): the group is always kubevirt.io. */
export interface GroupResource {
  group: string;
  resource: string;
}

export const vmResource: GroupResource = { group: 'kubevirt.io', resource: 'virtualmachine' };
export const vmiResource: GroupResource = { group: 'kubevirt.io', resource: 'virtualmachineinstance' };

const qualified = (gr: GroupResource): string => (gr.group ? `${gr.resource}.${gr.group}` : gr.resource);

function status(code: number, reason: string, message: string, details?: Status['details']): StatusError {
  return new StatusError({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code });
}

export function conflict(gr: GroupResource, name: string, cause: string): StatusError {
  return status(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(gr)} ${JSON.stringify(name)}: ${cause}`, { name, group: gr.group, kind: gr.resource });
}

export function notFound(gr: GroupResource, name: string): StatusError {
  return status(404, 'NotFound', `${qualified(gr)} ${JSON.stringify(name)} not found`, { name, group: gr.group, kind: gr.resource });
}

export function badRequest(message: string): StatusError {
  return status(400, 'BadRequest', message);
}

/** 400 with one cause per problem, as KubeVirt answers an invalid object in a request body. */
export function badRequestWithCauses(message: string, causes: readonly string[]): StatusError {
  return status(400, 'BadRequest', message, { causes: causes.map((cause) => ({ message: cause })) });
}

export function forbidden(gr: GroupResource, name: string, cause: string): StatusError {
  return status(403, 'Forbidden', `${qualified(gr)} ${JSON.stringify(name)} is forbidden: ${cause}`, { name, group: gr.group, kind: gr.resource });
}

export function internalError(cause: string): StatusError {
  return status(500, 'InternalError', `Internal error occurred: ${cause}`);
}

export function unauthorized(message: string): StatusError {
  return status(401, 'Unauthorized', message);
}

/** A request the caller may not make: 403 with the authorizer's reason, as the API server words it. */
export function accessDenied(user: string, verb: string, what: string, reason: string): StatusError {
  const why = reason ? `: ${reason}` : '';
  return status(403, 'Forbidden', `User ${JSON.stringify(user)} cannot ${verb} ${what}${why}`);
}

export function notFoundPath(path: string): StatusError {
  return status(404, 'NotFound', `the server could not find the requested resource (${path})`);
}

export function methodNotAllowed(method: string, path: string): StatusError {
  return status(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource (${method} ${path})`);
}
