// The operator's certificates as Secrets, all from one CA (kubevm-ca: tls.crt, tls.key, and
// previous.crt, the CAs it replaced, trusted until they expire). Each leaf Secret (tls.crt,
// tls.key, ca.crt: the CA bundle) is one of `leafCertificates`: the api-server's serving
// certificate (APIService, webhooks), the two ends of the console/VNC/port-forward streams (the
// node handlers' server certificate and the api-server's client certificate, ADR 0014), the node
// handlers' migration client certificate (docs/migration.md), and each
// component's metrics serving certificate. Given the Secrets as they are, decides what they should
// be: kept while valid, renewed in the last fifth of their lifetime (runtime/certificates.ts).
import { X509Certificate, createHash } from 'node:crypto';
import type { KubeObject } from '../runtime/kube.js';
import type { LeafRequest } from '../runtime/certificates.js';
import { BACKDATE_MS, caBundle, issueCertificateAuthority, issueLeafCertificate, issuedByBundle, needsRenewal, renewalTime } from '../runtime/certificates.js';
import {
  API_SERVER_STREAM_CLIENT_NAME,
  API_SERVER_STREAMS_TLS_SECRET,
  NODE_HANDLER_STREAM_SERVER_NAME,
  NODE_HANDLER_STREAMS_TLS_SECRET,
} from '../runtime/contracts/streams.js';
import { NODE_HANDLER_MIGRATION_CLIENT_NAME, NODE_HANDLER_MIGRATION_TLS_SECRET } from '../runtime/contracts/migration-channel.js';
import type { ComponentKey, InstallTarget, Manifest } from './install.js';
import { COMPONENTS, managedLabels, metricsDnsNames, metricsTlsSecret } from './install.js';
import type { ApiServerTls } from './render/api-server.js';
import { API_SERVER_TLS_SECRET } from './render/api-server.js';

export const CA_SECRET = 'kubevm-ca';

/**
 * How long a new CA is in the bundles before a leaf is signed by it: the kubelet updates a Secret
 * volume within a minute or two, and a peer that does not trust the new CA yet would refuse the
 * leaf (the streams' mutual TLS). A leaf due for renewal is still valid for hours, so it waits.
 */
export const CA_PROPAGATION_MS = 10 * 60 * 1000;

export interface SecretObject extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

export interface Pki {
  secrets: Manifest[];
  tls: ApiServerTls;
  /** When the next renewal is due (ms since epoch). */
  renewAt: number;
}

/** A certificate the operator issues, and the Secret it lives in. */
export interface LeafCertificate {
  secret: string;
  request: LeafRequest;
}

export function serviceDnsNames(namespace: string): string[] {
  const service = COMPONENTS.apiServer.name;
  return [`${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`, `${service}.${namespace}`, service];
}

const METRICS_COMPONENTS: readonly ComponentKey[] = ['controller', 'nodeHandler', 'apiServer', 'operator'];

/** Every leaf certificate of an installation in `namespace`. */
export function leafCertificates(namespace: string): LeafCertificate[] {
  const apiServerNames = serviceDnsNames(namespace);
  return [
    { secret: API_SERVER_TLS_SECRET, request: { commonName: apiServerNames[0] ?? COMPONENTS.apiServer.name, dnsNames: apiServerNames, usage: 'server' } },
    // The api-server dials node handlers by pod IP and checks this name (ADR 0014).
    { secret: NODE_HANDLER_STREAMS_TLS_SECRET, request: { commonName: NODE_HANDLER_STREAM_SERVER_NAME, dnsNames: [NODE_HANDLER_STREAM_SERVER_NAME], usage: 'server' } },
    // The only client the node handlers serve: known by its common name, usable only as a client.
    { secret: API_SERVER_STREAMS_TLS_SECRET, request: { commonName: API_SERVER_STREAM_CLIENT_NAME, dnsNames: [], usage: 'client' } },
    // A node handler sending a migration stream to another's receiver (docs/migration.md): the only client the receivers accept.
    { secret: NODE_HANDLER_MIGRATION_TLS_SECRET, request: { commonName: NODE_HANDLER_MIGRATION_CLIENT_NAME, dnsNames: [], usage: 'client' } },
    ...METRICS_COMPONENTS.map((component) => {
      const dnsNames = metricsDnsNames(component, namespace);
      return { secret: metricsTlsSecret(component), request: { commonName: dnsNames[0] ?? COMPONENTS[component].name, dnsNames, usage: 'server' as const } };
    }),
  ];
}

/** The names of every Secret `reconcilePki` reads: the CA's and the leaves'. */
export function pkiSecretNames(namespace: string): string[] {
  return [CA_SECRET, ...leafCertificates(namespace).map((leaf) => leaf.secret)];
}

/** Reads every certificate Secret (`find` by name in the installation's namespace) and decides what they should be. */
export async function currentPki(find: (name: string) => Promise<SecretObject | undefined>, target: InstallTarget, now = new Date()): Promise<Pki> {
  const names = pkiSecretNames(target.namespace);
  const found = await Promise.all(names.map(find));
  return reconcilePki(new Map(names.map((name, i) => [name, found[i]])), target, now);
}

function field(secret: SecretObject | undefined, key: string): string | undefined {
  const value = secret?.data?.[key];
  return value ? Buffer.from(value, 'base64').toString('utf8') : undefined;
}

const EXTENDED_KEY_USAGE = { server: '1.3.6.1.5.5.7.3.1', client: '1.3.6.1.5.5.7.3.2' } as const;

/** Whether a certificate is what `request` asks for: its subject, names and usage (a changed request re-issues it). */
function matches(certPem: string, request: LeafRequest): boolean {
  try {
    const cert = new X509Certificate(certPem);
    const names = request.dnsNames.map((name) => `DNS:${name}`).join(', ');
    return cert.subject === `CN=${request.commonName}` && (cert.subjectAltName ?? '') === names && (cert.keyUsage ?? []).join() === EXTENDED_KEY_USAGE[request.usage];
  } catch {
    return false;
  }
}

function secret(name: string, target: InstallTarget, data: Record<string, string>): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: target.namespace, labels: managedLabels('certificates', target) },
    type: 'kubernetes.io/tls',
    data: Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value).toString('base64')])),
  };
}

/** When a CA was made (its validity starts a little earlier, for clocks behind ours). */
function issuedAt(caPem: string): number {
  return new Date(new X509Certificate(caPem).validFrom).getTime() + BACKDATE_MS;
}

function expired(certPem: string, now: Date): boolean {
  return new Date(new X509Certificate(certPem).validTo).getTime() <= now.getTime();
}

/** The certificate Secrets as they should be now, given the ones that exist (by Secret name, `pkiSecretNames`). */
export function reconcilePki(current: ReadonlyMap<string, SecretObject | undefined>, target: InstallTarget, now = new Date()): Pki {
  const ca = current.get(CA_SECRET);
  let caCert = field(ca, 'tls.crt');
  let caKey = field(ca, 'tls.key');
  let previous = field(ca, 'previous.crt') ?? '';
  if (!caCert || !caKey || needsRenewal(caCert, now)) {
    if (caCert) previous = `${caCert}${previous}`;
    const issued = issueCertificateAuthority(`kubevm-ca@${Math.floor(now.getTime() / 1000)}`, now);
    caCert = issued.cert;
    caKey = issued.key;
  }
  const bundle = caBundle(caCert, previous, now);
  // Keep only the previous CAs still in the bundle.
  previous = bundle.slice(caCert.length);
  // A leaf of a replaced CA that is still in the bundle stays until its own renewal (it never
  // outlives its CA); a new CA signs nothing until every pod trusts it.
  const caPublished = issuedAt(caCert) + CA_PROPAGATION_MS;
  const renewals = [renewalTime(caCert)];
  const leaves = leafCertificates(target.namespace).map(({ secret: name, request }) => {
    const cert = field(current.get(name), 'tls.crt');
    const key = field(current.get(name), 'tls.key');
    const valid = cert !== undefined && key !== undefined && matches(cert, request) && issuedByBundle(cert, bundle) && !expired(cert, now);
    if (valid && !needsRenewal(cert, now)) {
      renewals.push(renewalTime(cert));
      return { name, cert, key };
    }
    if (valid && now.getTime() < caPublished) {
      renewals.push(caPublished);
      return { name, cert, key };
    }
    const issued = issueLeafCertificate({ cert: caCert, key: caKey }, request, now);
    renewals.push(renewalTime(issued.cert));
    return { name, ...issued };
  });
  const serving = leaves.find((leaf) => leaf.name === API_SERVER_TLS_SECRET);
  return {
    secrets: [
      secret(CA_SECRET, target, { 'tls.crt': caCert, 'tls.key': caKey, 'previous.crt': previous }),
      ...leaves.map((leaf) => secret(leaf.name, target, { 'tls.crt': leaf.cert, 'tls.key': leaf.key, 'ca.crt': bundle })),
    ],
    tls: { caBundle: bundle, servingCertSha256: createHash('sha256').update(serving?.cert ?? '').digest('hex') },
    renewAt: Math.min(...renewals),
  };
}
