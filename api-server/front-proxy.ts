// Who is calling: the kube-apiserver's aggregator (the "front proxy") authenticates the user and
// forwards the identity in request headers, over a TLS connection on which it presents its
// front-proxy client certificate. We trust those headers only on a connection whose client
// certificate chains to the requestheader CA and carries one of the allowed names, as every
// extension API server does. The CA, the allowed names and the header names come from the
// ConfigMap kube-system/extension-apiserver-authentication the API server publishes.
import type { IncomingHttpHeaders } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { z } from 'zod';
import { jsonText } from '../runtime/config.js';

export const authenticationConfigMap = { namespace: 'kube-system', name: 'extension-apiserver-authentication' } as const;

/** A JSON array of strings in a ConfigMap value, as the API server writes them. */
const JsonStringList = jsonText(z.array(z.string()));

export const ExtensionApiserverAuthentication = z.object({
  'requestheader-client-ca-file': z.string().includes('BEGIN CERTIFICATE', { message: 'holds no PEM certificate' }),
  'requestheader-allowed-names': JsonStringList.default([]),
  'requestheader-username-headers': JsonStringList.default(['X-Remote-User']),
  'requestheader-group-headers': JsonStringList.default(['X-Remote-Group']),
  'requestheader-extra-headers-prefix': JsonStringList.default(['X-Remote-Extra-']),
});

export interface FrontProxyConfig {
  /** PEM: the CA that signs the front proxy's client certificate. */
  clientCA: string;
  /** Common names a front-proxy certificate may carry; empty means any certificate of the CA. */
  allowedNames: readonly string[];
  usernameHeaders: readonly string[];
  groupHeaders: readonly string[];
  extraHeaderPrefixes: readonly string[];
}

/** The front-proxy settings from the ConfigMap's data; throws naming the key that is wrong. */
export function frontProxyConfigFrom(data: Record<string, string> | undefined): FrontProxyConfig {
  const parsed = ExtensionApiserverAuthentication.safeParse(data ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '<data>'}: ${issue.message}`);
    throw new Error(
      `ConfigMap ${authenticationConfigMap.namespace}/${authenticationConfigMap.name} cannot configure front-proxy authentication: ${problems.join('; ')}` +
        ' (is the API server started with --requestheader-client-ca-file?)',
    );
  }
  const value = parsed.data;
  return {
    clientCA: value['requestheader-client-ca-file'],
    allowedNames: value['requestheader-allowed-names'],
    usernameHeaders: value['requestheader-username-headers'],
    groupHeaders: value['requestheader-group-headers'],
    extraHeaderPrefixes: value['requestheader-extra-headers-prefix'],
  };
}

/** The authenticated caller, as a SubjectAccessReview spec wants it. */
export interface UserInfo {
  username: string;
  groups: string[];
  extra: Record<string, string[]>;
}

export type Authentication = { ok: true; user: UserInfo } | { ok: false; reason: string };

/** What the TLS layer established about the client certificate. */
export interface PeerCertificate {
  /** The chain verified against the requestheader CA. */
  verified: boolean;
  /** Subject common name of the client certificate, when one was presented. */
  commonName: string | undefined;
}

export function peerCertificateOf(socket: unknown): PeerCertificate {
  const tls = socket as Partial<TLSSocket>;
  if (typeof tls.getPeerCertificate !== 'function') return { verified: false, commonName: undefined };
  const cert = tls.getPeerCertificate();
  const cn = cert && typeof cert.subject === 'object' ? cert.subject.CN : undefined;
  return { verified: tls.authorized === true, commonName: Array.isArray(cn) ? cn[0] : cn };
}

/** Header values as a list: Node joins repeated headers, `headersDistinct` keeps them apart. */
export type DistinctHeaders = Record<string, string[] | undefined>;

function firstHeader(headers: DistinctHeaders, names: readonly string[]): string[] | undefined {
  for (const name of names) {
    const values = headers[name.toLowerCase()];
    if (values && values.length > 0) return values;
  }
  return undefined;
}

/**
 * The caller of a request that came through the front proxy, or why it is refused: no verified
 * certificate, a certificate whose name is not allowed, or no user header.
 */
export function authenticate(config: FrontProxyConfig, peer: PeerCertificate, headers: DistinctHeaders): Authentication {
  const refused = frontProxyPeerRefusal(config, peer);
  if (refused !== undefined) return { ok: false, reason: `${refused}: requests must come through the kube-apiserver` };
  const username = firstHeader(headers, config.usernameHeaders)?.[0];
  if (!username) return { ok: false, reason: `no user header (${config.usernameHeaders.join(', ')})` };
  const groups = firstHeader(headers, config.groupHeaders) ?? [];
  const extra: Record<string, string[]> = {};
  for (const prefix of config.extraHeaderPrefixes) {
    const lower = prefix.toLowerCase();
    for (const [name, values] of Object.entries(headers)) {
      if (!values || !name.startsWith(lower) || name.length === lower.length) continue;
      const key = safeDecode(name.slice(lower.length));
      extra[key] = [...(extra[key] ?? []), ...values];
    }
  }
  return { ok: true, user: { username, groups, extra } };
}

/**
 * The caller of a webhook, when webhook callers must authenticate: the kube-apiserver presents the
 * front proxy's client certificate to kubevm's webhooks when its admission configuration says so
 * (WebhookAdmission kubeConfigFile; docs/operations.md). Without it, anything that reaches the
 * Service could post an AdmissionReview of its own making, and the eviction webhook writes.
 */
export function authenticateWebhookCaller(config: FrontProxyConfig, peer: PeerCertificate): { ok: true } | { ok: false; reason: string } {
  const refused = frontProxyPeerRefusal(config, peer);
  return refused === undefined ? { ok: true } : { ok: false, reason: `${refused}: admission reviews must come from the kube-apiserver` };
}

/** Why the connection's client certificate is not the front proxy's; undefined when it is. */
function frontProxyPeerRefusal(config: FrontProxyConfig, peer: PeerCertificate): string | undefined {
  if (!peer.verified) return 'no client certificate signed by the requestheader CA';
  if (config.allowedNames.length > 0 && !config.allowedNames.includes(peer.commonName ?? '')) {
    return `client certificate ${JSON.stringify(peer.commonName ?? '')} is not one of the allowed front-proxy names`;
  }
  return undefined;
}

/** Extra keys are %-encoded by the front proxy; a malformed one is kept as sent (as Kubernetes does). */
function safeDecode(key: string): string {
  try {
    return decodeURIComponent(key);
  } catch {
    return key;
  }
}

/** Node's headersDistinct, for a request object that may predate it. */
export function distinctHeaders(raw: { headersDistinct?: DistinctHeaders; headers: IncomingHttpHeaders }): DistinctHeaders {
  if (raw.headersDistinct) return raw.headersDistinct;
  const out: DistinctHeaders = {};
  for (const [name, value] of Object.entries(raw.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value : [value];
  }
  return out;
}

/** Reads the front-proxy settings the API server publishes. */
export async function loadFrontProxyConfig(configMaps: { get(name: string, namespace?: string): Promise<{ data?: Record<string, string> }> }): Promise<FrontProxyConfig> {
  const configMap = await configMaps.get(authenticationConfigMap.name, authenticationConfigMap.namespace);
  return frontProxyConfigFrom(configMap.data);
}
