// The stream contract between the api-server and the node handlers (ADR 0014), declared once: the
// node handler's stream endpoint, the identities in the two certificates, and the paths. The
// api-server reaches the node handler of a VMI's node at that handler pod's IP on
// NODE_HANDLER_STREAM_PORT over TLS with mutual authentication; a stream request is an HTTP/1.1
// GET asking to upgrade to STREAM_UPGRADE_PROTOCOL; after the 101 answer the connection carries
// the stream's raw bytes both ways. A refusal is an HTTP error whose body is NodeStreamError.
// The same endpoint runs the guest agent commands of the subresource API (freeze, unfreeze,
// userlist, filesystemlist) as plain HTTP requests answered with JSON (NodeGuestAgentRequest).
import { z } from 'zod';
import { GuestFileSystems, GuestOSUsers } from '../api/kubevirt/v1/subresources.js';
import { FsFreezeStatus, MAX_UNFREEZE_TIMEOUT_SECONDS } from './launcher-protocol.js';

export { GUEST_AGENT_FREEZE_TIMEOUT_MS } from './launcher-protocol.js';

/** KubeVirt's virt-handler serves its console server on 8186; so does the node handler. */
export const NODE_HANDLER_STREAM_PORT = 8186;

/** The Upgrade token of a stream request. */
export const STREAM_UPGRADE_PROTOCOL = 'kubevm-stream';

/** The name the node handler's serving certificate carries (DNS SAN); checked by the api-server. */
export const NODE_HANDLER_STREAM_SERVER_NAME = 'kubevm-node-handler.kubevirt.svc';

/** The common name of the api-server's client certificate; the only client the node handler serves. */
export const API_SERVER_STREAM_CLIENT_NAME = 'kubevm-api-server';

/** Where each side's certificate, key and the streams CA are mounted (Secret keys tls.crt, tls.key, ca.crt). */
export const STREAM_TLS_DIR = '/etc/kubevm/streams-tls';

/**
 * The Secrets holding them, issued and renewed by the operator from its CA (operator/pki.ts; ca.crt
 * is its CA bundle), mounted optionally: until its Secret is there a node handler serves no
 * streams and the api-server answers 503; both take a renewed certificate without a restart.
 */
export const NODE_HANDLER_STREAMS_TLS_SECRET = 'kubevm-node-handler-streams-tls';
export const API_SERVER_STREAMS_TLS_SECRET = 'kubevm-api-server-streams-tls';

/** The label the api-server finds node handler pods by (KubeVirt's kubevirt.io=virt-handler). */
export const NODE_HANDLER_POD_SELECTOR = 'kubevirt.io=virt-handler';

export const nodeStreamKinds = ['console', 'vnc', 'portforward', 'screenshot'] as const;
export type NodeStreamKind = (typeof nodeStreamKinds)[number];

/** Kubernetes' name rules: a namespace is a DNS label, a VMI name a DNS subdomain. */
const dnsLabel = z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
const dnsSubdomain = z
  .string()
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/);

export const NodeStreamRequest = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('console'), namespace: dnsLabel, name: dnsSubdomain }),
  z.object({ kind: z.literal('vnc'), namespace: dnsLabel, name: dnsSubdomain, preserveSession: z.boolean() }),
  z.object({ kind: z.literal('portforward'), namespace: dnsLabel, name: dnsSubdomain, port: z.int().min(1).max(65535) }),
  z.object({ kind: z.literal('screenshot'), namespace: dnsLabel, name: dnsSubdomain }),
]);
export type NodeStreamRequest = z.infer<typeof NodeStreamRequest>;

/** The path (and query) of a stream request on the node handler. */
export function nodeStreamPath(request: NodeStreamRequest): string {
  const base = `/v1/namespaces/${request.namespace}/virtualmachineinstances/${request.name}`;
  switch (request.kind) {
    case 'console':
    case 'screenshot':
      return `${base}/${request.kind}`;
    case 'vnc':
      return `${base}/vnc${request.preserveSession ? '?preserveSession=true' : ''}`;
    case 'portforward':
      return `${base}/portforward/${request.port}`;
  }
}

const pathPattern = /^\/v1\/namespaces\/([^/]+)\/virtualmachineinstances\/([^/]+)\/(console|vnc|screenshot|portforward\/([0-9]{1,5}))$/;

/** The request a path names, or why it names none (the path is untrusted input). */
export function parseNodeStreamPath(url: string): { ok: true; request: NodeStreamRequest } | { ok: false; message: string } {
  if (url.length > 1024) return { ok: false, message: 'the path is too long' };
  const [path = '', query = ''] = url.split('?', 2);
  const match = pathPattern.exec(path);
  if (!match) return { ok: false, message: `no stream at ${JSON.stringify(path.slice(0, 200))}` };
  const [, namespace, name, what, port] = match;
  const kind = what?.startsWith('portforward') ? 'portforward' : what;
  const candidate = {
    kind,
    namespace,
    name,
    ...(kind === 'portforward' ? { port: Number(port) } : {}),
    ...(kind === 'vnc' ? { preserveSession: new URLSearchParams(query).get('preserveSession') === 'true' } : {}),
  };
  const parsed = NodeStreamRequest.safeParse(candidate);
  if (!parsed.success) return { ok: false, message: `invalid stream request: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` };
  return { ok: true, request: parsed.data };
}

/** The body of a refused stream request. */
export const NodeStreamError = z.object({ message: z.string().max(4096) });
export type NodeStreamError = z.infer<typeof NodeStreamError>;

/**
 * A guest agent command on a VMI of the node: PUT .../freeze?unfreezeTimeoutSeconds=N, PUT
 * .../unfreeze, GET .../userlist, GET .../filesystemlist. The answer is JSON (nodeGuestAgentAnswers).
 */
export const NodeGuestAgentRequest = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('freeze'), namespace: dnsLabel, name: dnsSubdomain, unfreezeTimeoutSeconds: z.int().min(0).max(MAX_UNFREEZE_TIMEOUT_SECONDS) }),
  z.object({ kind: z.literal('unfreeze'), namespace: dnsLabel, name: dnsSubdomain }),
  z.object({ kind: z.literal('userlist'), namespace: dnsLabel, name: dnsSubdomain }),
  z.object({ kind: z.literal('filesystemlist'), namespace: dnsLabel, name: dnsSubdomain }),
]);
export type NodeGuestAgentRequest = z.infer<typeof NodeGuestAgentRequest>;
export type NodeGuestAgentKind = NodeGuestAgentRequest['kind'];

/** The HTTP method of each guest agent command (KubeVirt's: PUT acts, GET reads). */
export const nodeGuestAgentMethods: Readonly<Record<NodeGuestAgentKind, 'PUT' | 'GET'>> = { freeze: 'PUT', unfreeze: 'PUT', userlist: 'GET', filesystemlist: 'GET' };

/** What the node handler answers each guest agent command with (200, JSON). */
export const nodeGuestAgentAnswers = {
  freeze: z.object({ fsFreezeStatus: FsFreezeStatus }),
  unfreeze: z.object({ fsFreezeStatus: FsFreezeStatus }),
  userlist: z.object({ items: GuestOSUsers }),
  filesystemlist: z.object({ items: GuestFileSystems }),
} as const satisfies Record<NodeGuestAgentKind, z.ZodType>;
export type NodeGuestAgentAnswer<K extends NodeGuestAgentKind> = z.infer<(typeof nodeGuestAgentAnswers)[K]>;

/** The largest guest agent answer (a filesystem list at its bounds is far below). */
export const NODE_GUEST_AGENT_ANSWER_MAX_BYTES = 2 * 1024 * 1024;


export function nodeGuestAgentPath(request: NodeGuestAgentRequest): string {
  const base = `/v1/namespaces/${request.namespace}/virtualmachineinstances/${request.name}/${request.kind}`;
  return request.kind === 'freeze' ? `${base}?unfreezeTimeoutSeconds=${request.unfreezeTimeoutSeconds}` : base;
}

const agentPathPattern = /^\/v1\/namespaces\/([^/]+)\/virtualmachineinstances\/([^/]+)\/(freeze|unfreeze|userlist|filesystemlist)$/;

/**
 * The guest agent command a request names; undefined when its path names none (it may be a
 * stream), a refusal when it names one wrongly (the method and query are untrusted input).
 */
export function parseNodeGuestAgentRequest(method: string, url: string): { ok: true; request: NodeGuestAgentRequest } | { ok: false; code: number; message: string } | undefined {
  if (url.length > 1024) return undefined;
  const [path = '', query = ''] = url.split('?', 2);
  const match = agentPathPattern.exec(path);
  if (!match) return undefined;
  const [, namespace, name, what] = match;
  const kind = what as NodeGuestAgentKind;
  if (method !== nodeGuestAgentMethods[kind]) return { ok: false, code: 405, message: `${method} is not served for ${kind}; use ${nodeGuestAgentMethods[kind]}` };
  const timeout = new URLSearchParams(query).get('unfreezeTimeoutSeconds');
  const candidate = { kind, namespace, name, ...(kind === 'freeze' ? { unfreezeTimeoutSeconds: timeout !== null && /^[0-9]{1,9}$/.test(timeout) ? Number(timeout) : timeout } : {}) };
  const parsed = NodeGuestAgentRequest.safeParse(candidate);
  if (!parsed.success) return { ok: false, code: 400, message: `invalid ${kind} request: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` };
  return { ok: true, request: parsed.data };
}
