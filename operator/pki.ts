// The operator's certificates as Secrets: the CA (kubevm-ca: tls.crt, tls.key, and previous.crt,
// the CAs it replaced, trusted until they expire) and the api-server's serving certificate
// (kubevm-api-server-tls: tls.crt, tls.key, ca.crt). Given the Secrets as they are, decides what
// they should be: kept while valid, renewed in the last fifth of their lifetime (certificates.ts).
import { X509Certificate, createHash } from 'node:crypto';
import type { KubeObject } from '../runtime/kube.js';
import { caBundle, issueCertificateAuthority, issueServingCertificate, needsRenewal, renewalTime } from '../runtime/certificates.js';
import type { InstallTarget, Manifest } from './install.js';
import { COMPONENTS, managedLabels } from './install.js';
import type { ApiServerTls } from './render/api-server.js';
import { API_SERVER_TLS_SECRET } from './render/api-server.js';

export const CA_SECRET = 'kubevm-ca';

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

function field(secret: SecretObject | undefined, key: string): string | undefined {
  const value = secret?.data?.[key];
  return value ? Buffer.from(value, 'base64').toString('utf8') : undefined;
}

function issuedBy(certPem: string, caPem: string): boolean {
  try {
    const cert = new X509Certificate(certPem);
    const ca = new X509Certificate(caPem);
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
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

export function serviceDnsNames(namespace: string): string[] {
  const service = COMPONENTS.apiServer.name;
  return [`${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`, `${service}.${namespace}`, service];
}

/** The certificate Secrets as they should be now, given the ones that exist. */
export function reconcilePki(current: { ca?: SecretObject | undefined; serving?: SecretObject | undefined }, target: InstallTarget, now = new Date()): Pki {
  let caCert = field(current.ca, 'tls.crt');
  let caKey = field(current.ca, 'tls.key');
  let previous = field(current.ca, 'previous.crt') ?? '';
  if (!caCert || !caKey || needsRenewal(caCert, now)) {
    if (caCert) previous = `${caCert}${previous}`;
    const ca = issueCertificateAuthority(`kubevm-ca@${Math.floor(now.getTime() / 1000)}`, now);
    caCert = ca.cert;
    caKey = ca.key;
  }
  const bundle = caBundle(caCert, previous, now);
  // Keep only the previous CAs still in the bundle.
  previous = bundle.slice(caCert.length);
  let servingCert = field(current.serving, 'tls.crt');
  let servingKey = field(current.serving, 'tls.key');
  // A serving certificate of a replaced CA is re-issued at once: the bundle drops that CA when it expires.
  if (!servingCert || !servingKey || needsRenewal(servingCert, now) || !issuedBy(servingCert, caCert)) {
    const serving = issueServingCertificate({ cert: caCert, key: caKey }, serviceDnsNames(target.namespace), now);
    servingCert = serving.cert;
    servingKey = serving.key;
  }
  return {
    secrets: [
      secret(CA_SECRET, target, { 'tls.crt': caCert, 'tls.key': caKey, 'previous.crt': previous }),
      secret(API_SERVER_TLS_SECRET, target, { 'tls.crt': servingCert, 'tls.key': servingKey, 'ca.crt': bundle }),
    ],
    tls: { caBundle: bundle, servingCertSha256: createHash('sha256').update(servingCert).digest('hex') },
    renewAt: Math.min(renewalTime(caCert), renewalTime(servingCert)),
  };
}
