// Every failure ends the command with one line a user can act on (kubectl's "error: ..." form)
// and a non-zero exit. The line is built from what was asked (which verb on which object) and
// what the server answered (its Status), not from the request's URL.
import { ApiError } from '../runtime/kube.js';

/** A failure whose message is already the line to print. */
export class UserError extends Error {
  override readonly name = 'UserError';

  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** What a request was for, to word its failure. */
export interface Attempt {
  /** Kubernetes verb the server authorizes: update (PUT), get, list, delete, create. */
  verb: string;
  /** The resource as RBAC names it: virtualmachines, virtualmachines/start, ... */
  resource: string;
  group: string;
  namespace?: string;
  /** The object's kind and name as the user named it (VirtualMachine "x"). */
  kind?: string;
  name?: string;
  /** The API server's URL. */
  server?: string;
}

interface StatusBody {
  message?: string;
  reason?: string;
  details?: { name?: string; kind?: string; causes?: Array<{ message?: string; field?: string }> };
}

function statusOf(err: ApiError): StatusBody {
  return typeof err.status === 'object' && err.status !== null ? (err.status) : {};
}

const conflictPrefix = /^Operation cannot be fulfilled on [^ ]+ "[^"]*": /;
const subresourceGroup = 'subresources.kubevirt.io';

function objectName(attempt: Attempt): string {
  return attempt.kind && attempt.name ? `${attempt.kind} "${attempt.name}"` : attempt.resource;
}

function inNamespace(attempt: Attempt): string {
  return attempt.namespace ? ` in namespace "${attempt.namespace}"` : '';
}

/** The one line for a failed API request. */
export function describeApiError(err: ApiError, attempt: Attempt): string {
  const status = statusOf(err);
  const message = (status.message ?? err.message).replace(/\s+/g, ' ').trim();
  const viaAggregated = attempt.group === subresourceGroup;
  switch (err.code) {
    case 401:
      return `unauthorized: the API server${attempt.server ? ` at ${attempt.server}` : ''} did not accept the kubeconfig's credentials; log in again or choose another --context`;
    case 403: {
      const user = /User "([^"]*)"/.exec(message)?.[1];
      const who = user !== undefined ? `user "${user}"` : 'you';
      return `forbidden: ${who} may not ${attempt.verb} ${attempt.resource} (API group "${attempt.group}")${inNamespace(attempt)}; ask for a Role granting "${attempt.verb}" on "${attempt.resource}"`;
    }
    case 404:
      if (status.reason === 'NotFound' && (status.details?.name !== undefined || /not found$/.test(message))) {
        return `${objectName(attempt)} not found${inNamespace(attempt)}`;
      }
      if (viaAggregated) {
        return `the API group ${subresourceGroup} is not served by this cluster: is kubevm installed? (kubectl get apiservice v1.${subresourceGroup})`;
      }
      return `${objectName(attempt)} not found${inNamespace(attempt)}`;
    case 409: {
      const cause = message.replace(conflictPrefix, '');
      if (/guest agent/i.test(cause)) return `${objectName(attempt)}: ${cause}: the guest runs no qemu-guest-agent (or it has not connected yet)`;
      return `${objectName(attempt)}: ${cause}`;
    }
    case 502:
    case 503:
      if (viaAggregated) {
        return `the kubevm api-server is unreachable (${err.code} from the APIService v1.${subresourceGroup}: ${message}); check kubectl -n kubevirt get pods -l app.kubernetes.io/component=api-server`;
      }
      return `the API server is unavailable (${err.code}): ${message}`;
    default: {
      const causes = (status.details?.causes ?? []).map((c) => (c.field ? `${c.field}: ${c.message ?? ''}` : (c.message ?? ''))).filter((c) => c !== '');
      const detail = causes.length > 0 && !causes.every((c) => message.includes(c)) ? `: ${causes.join('; ')}` : '';
      return `${attempt.verb} ${objectName(attempt)} failed (${err.code} ${err.reason}): ${message}${detail}`;
    }
  }
}

/** The one line for anything thrown while running a command. */
export function describeFailure(err: unknown, attempt?: Attempt): string {
  if (err instanceof UserError) return err.message;
  if (err instanceof ApiError && attempt) return describeApiError(err, attempt);
  if (err instanceof ApiError) return `${err.verb} ${err.path} failed (${err.code} ${err.reason})`;
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  const message = err instanceof Error ? err.message : String(err);
  if (typeof code === 'string' && /^(ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|ECONNRESET|EAI_AGAIN|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED)/.test(code)) {
    return `cannot reach the Kubernetes API server${attempt?.server ? ` at ${attempt.server}` : ''}: ${code}${message.includes(code) ? '' : ` (${message})`}`;
  }
  return message.replace(/\s+/g, ' ').trim();
}

/** Runs a request, rethrowing its failure as the one line for what was attempted. */
export async function attempt<T>(what: Attempt, request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (err) {
    throw new UserError(describeFailure(err, what));
  }
}

/** The command ran another program (ssh, scp) that already said what went wrong: exit with its status. */
export class ExitStatus extends Error {
  override readonly name = 'ExitStatus';

  constructor(readonly exitCode: number) {
    super(`exit status ${exitCode}`);
  }
}
