// Certificate Secrets over time: every leaf the installation needs (the api-server's serving
// certificate, both ends of the streams' mutual TLS, a metrics certificate per component) issued
// by the one CA with the names and usages its peer checks; kept while valid, renewed in its last
// fifth, the CA rotated with its predecessor kept in the bundle, and leaves of the old CA kept
// until every pod trusts the new one. Checked by OpenSSL (X509Certificate) and real TLS handshakes.
import { describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { checkServerIdentity } from 'node:tls';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { issueCertificateAuthority, issueLeafCertificate } from '../runtime/certificates.js';
import { API_SERVER_STREAM_CLIENT_NAME, API_SERVER_STREAMS_TLS_SECRET, NODE_HANDLER_STREAM_SERVER_NAME, NODE_HANDLER_STREAMS_TLS_SECRET } from '../runtime/contracts/streams.js';
import type { InstallTarget } from './install.js';
import { metricsTlsSecret } from './install.js';
import type { SecretObject } from './pki.js';
import { CA_PROPAGATION_MS, CA_SECRET, pkiSecretNames, reconcilePki } from './pki.js';
import { API_SERVER_TLS_SECRET } from './render/api-server.js';

const target: InstallTarget = { namespace: 'kubevirt', registry: 'kubevm', tag: '0.1.0', pullPolicy: 'IfNotPresent' };
const HOUR = 3600 * 1000;
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

type Live = Record<string, SecretObject>;
function asLive(pki: ReturnType<typeof reconcilePki>): Live {
  return Object.fromEntries(pki.secrets.map((secret) => [secret.metadata.name, secret as unknown as SecretObject]));
}
const data = (secret: SecretObject | undefined, key: string): string => Buffer.from(secret?.data?.[key] ?? '', 'base64').toString();
const count = (pem: string): number => (pem.match(/BEGIN CERTIFICATE/g) ?? []).length;
const x509 = (live: Live, name: string): X509Certificate => new X509Certificate(data(live[name], 'tls.crt'));
const signedBy = (cert: X509Certificate, ca: string): boolean => cert.checkIssued(new X509Certificate(ca)) && cert.verify(new X509Certificate(ca).publicKey);
const leafNames = pkiSecretNames(target.namespace).filter((name) => name !== CA_SECRET);

/** A mutual-TLS handshake as the node handler and the api-server do it (rejectUnauthorized both ways, the server name checked whatever address is dialled). */
async function streamsHandshake(server: SecretObject | undefined, client: { cert: string; key: string }, trusted: string): Promise<string> {
  const listener = https.createServer({ cert: data(server, 'tls.crt'), key: data(server, 'tls.key'), ca: data(server, 'ca.crt'), requestCert: true, rejectUnauthorized: true }, (req, res) =>
    res.end((req.socket as TLSSocket).getPeerCertificate().subject?.CN ?? ''),
  );
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const { port } = listener.address() as AddressInfo;
  try {
    return await new Promise<string>((resolve, reject) => {
      const req = https.get(
        {
          host: '127.0.0.1',
          port,
          cert: client.cert,
          key: client.key,
          ca: trusted,
          agent: false,
          servername: NODE_HANDLER_STREAM_SERVER_NAME,
          checkServerIdentity: (_host: string, peer: PeerCertificate) => checkServerIdentity(NODE_HANDLER_STREAM_SERVER_NAME, peer),
        },
        (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString()));
          res.on('end', () => resolve(body));
        },
      );
      req.on('error', reject);
    });
  } finally {
    listener.close();
  }
}

describe('reconcilePki', () => {
  const start = new Date();
  const first = reconcilePki(new Map(), target, start);
  const live = asLive(first);
  const caPem = data(live[CA_SECRET], 'tls.crt');

  it('issues the CA and every leaf from it, each Secret carrying the CA bundle', () => {
    expect(Object.keys(live).sort()).toEqual(pkiSecretNames(target.namespace).sort());
    for (const name of leafNames) {
      expect(signedBy(x509(live, name), caPem)).toBe(true);
      expect(data(live[name], 'ca.crt')).toBe(caPem);
      expect(live[name]?.type).toBe('kubernetes.io/tls');
    }
    expect(x509(live, API_SERVER_TLS_SECRET).subjectAltName).toContain('DNS:kubevm-api-server.kubevirt.svc');
  });

  it('gives the streams\' two ends the names and usages their peers check: a server for the node handler, a client for the api-server', () => {
    const server = x509(live, NODE_HANDLER_STREAMS_TLS_SECRET);
    expect(server.subjectAltName).toBe(`DNS:${NODE_HANDLER_STREAM_SERVER_NAME}`);
    expect(server.keyUsage).toEqual([SERVER_AUTH]);
    const client = x509(live, API_SERVER_STREAMS_TLS_SECRET);
    expect(client.subject).toBe(`CN=${API_SERVER_STREAM_CLIENT_NAME}`);
    expect(client.subjectAltName).toBeUndefined();
    expect(client.keyUsage).toEqual([CLIENT_AUTH]);
  });

  it('gives every component a metrics serving certificate named <component>-metrics.<namespace>.svc', () => {
    for (const [component, name] of [
      ['controller', 'kubevm-controller'],
      ['nodeHandler', 'kubevm-node-handler'],
      ['apiServer', 'kubevm-api-server'],
      ['operator', 'kubevm-operator'],
    ] as const) {
      const cert = x509(live, metricsTlsSecret(component));
      expect(cert.subjectAltName).toBe(`DNS:${name}-metrics.kubevirt.svc, DNS:${name}-metrics.kubevirt.svc.cluster.local`);
      expect(cert.keyUsage).toEqual([SERVER_AUTH]);
    }
  });

  it('lets the api-server\'s client certificate through the node handler\'s mutual TLS, and nothing else the CA signed', async () => {
    const apiServer = { cert: data(live[API_SERVER_STREAMS_TLS_SECRET], 'tls.crt'), key: data(live[API_SERVER_STREAMS_TLS_SECRET], 'tls.key') };
    const nodeHandler = live[NODE_HANDLER_STREAMS_TLS_SECRET];
    await expect(streamsHandshake(nodeHandler, apiServer, data(live[API_SERVER_STREAMS_TLS_SECRET], 'ca.crt'))).resolves.toBe(API_SERVER_STREAM_CLIENT_NAME);
    // A serving certificate of the same CA (a node's own streams or metrics certificate) is no client certificate.
    for (const stolen of [NODE_HANDLER_STREAMS_TLS_SECRET, metricsTlsSecret('nodeHandler')]) {
      await expect(streamsHandshake(nodeHandler, { cert: data(live[stolen], 'tls.crt'), key: data(live[stolen], 'tls.key') }, caPem)).rejects.toThrow();
    }
    // The api-server refuses a server that is not the node handler, even one of its CA (a metrics certificate).
    await expect(streamsHandshake(live[metricsTlsSecret('nodeHandler')], apiServer, caPem)).rejects.toThrow(/does not match|altnames/i);
    // A client certificate of another CA is refused.
    const stranger = issueCertificateAuthority('stranger', start);
    await expect(streamsHandshake(nodeHandler, issueLeafCertificate(stranger, { commonName: API_SERVER_STREAM_CLIENT_NAME, dnsNames: [], usage: 'client' }, start), caPem)).rejects.toThrow();
  });

  it('keeps valid certificates exactly as they are (no write, no pod roll)', () => {
    const again = reconcilePki(new Map(Object.entries(live)), target, new Date(start.getTime() + HOUR));
    expect(again.secrets).toEqual(first.secrets);
    expect(again.tls).toEqual(first.tls);
  });

  it('replaces a leaf its CA bundle does not vouch for, or one with other names (the streams script\'s, an older release\'s)', () => {
    const foreign = issueLeafCertificate(issueCertificateAuthority('kubevm-streams-ca', start), { commonName: NODE_HANDLER_STREAM_SERVER_NAME, dnsNames: [NODE_HANDLER_STREAM_SERVER_NAME], usage: 'server' }, start);
    const misnamed = issueLeafCertificate({ cert: caPem, key: data(live[CA_SECRET], 'tls.key') }, { commonName: 'other', dnsNames: ['other'], usage: 'server' }, start);
    const edited: Live = {
      ...live,
      [NODE_HANDLER_STREAMS_TLS_SECRET]: { data: { 'tls.crt': Buffer.from(foreign.cert).toString('base64'), 'tls.key': Buffer.from(foreign.key).toString('base64') } },
      [metricsTlsSecret('controller')]: { data: { 'tls.crt': Buffer.from(misnamed.cert).toString('base64'), 'tls.key': Buffer.from(misnamed.key).toString('base64') } },
    };
    const repaired = asLive(reconcilePki(new Map(Object.entries(edited)), target, new Date(start.getTime() + HOUR)));
    expect(signedBy(x509(repaired, NODE_HANDLER_STREAMS_TLS_SECRET), caPem)).toBe(true);
    expect(x509(repaired, metricsTlsSecret('controller')).subjectAltName).toContain('kubevm-controller-metrics');
    expect(repaired[API_SERVER_STREAMS_TLS_SECRET]).toEqual(live[API_SERVER_STREAMS_TLS_SECRET]);
  });

  it('renews the leaves in their last fifth, under the same CA', () => {
    const later = reconcilePki(new Map(Object.entries(live)), target, new Date(start.getTime() + 20 * HOUR));
    const renewed = asLive(later);
    expect(data(renewed[CA_SECRET], 'tls.crt')).toBe(caPem);
    for (const name of leafNames) {
      expect(data(renewed[name], 'tls.crt')).not.toBe(data(live[name], 'tls.crt'));
      expect(signedBy(x509(renewed, name), caPem)).toBe(true);
    }
    expect(later.tls.servingCertSha256).not.toBe(first.tls.servingCertSha256);
  });

  it('rotates the CA in its last fifth; leaves of the old CA stay until every pod trusts the new one, then the bundle drops the old CA when it expires', () => {
    // Leaves issued on day 5 by the old CA (valid until day 6, due from day 5.8).
    const dayFive = asLive(reconcilePki(new Map(Object.entries(live)), target, new Date(start.getTime() + 5 * 24 * HOUR)));
    expect(data(dayFive[CA_SECRET], 'tls.crt')).toBe(caPem);
    const rotationTime = new Date(start.getTime() + 5.9 * 24 * HOUR);
    const rotated = reconcilePki(new Map(Object.entries(dayFive)), target, rotationTime);
    const afterRotation = asLive(rotated);
    const newCa = data(afterRotation[CA_SECRET], 'tls.crt');
    expect(newCa).not.toBe(caPem);
    expect(count(rotated.tls.caBundle)).toBe(2);
    expect(data(afterRotation[CA_SECRET], 'previous.crt')).toBe(caPem);
    for (const name of leafNames) {
      // Due, but the same leaf with the new bundle: the pods learn the new CA before any certificate of it is presented.
      expect(data(afterRotation[name], 'tls.crt')).toBe(data(dayFive[name], 'tls.crt'));
      expect(data(afterRotation[name], 'ca.crt')).toBe(rotated.tls.caBundle);
    }
    expect(rotated.renewAt).toBeGreaterThan(rotationTime.getTime() + CA_PROPAGATION_MS - 1000);
    expect(rotated.renewAt).toBeLessThanOrEqual(rotationTime.getTime() + CA_PROPAGATION_MS);
    // Once the new CA has had time to reach every pod, the due leaves are renewed by it.
    const propagated = asLive(reconcilePki(new Map(Object.entries(afterRotation)), target, new Date(rotated.renewAt + 1000)));
    for (const name of leafNames) {
      expect(signedBy(x509(propagated, name), newCa)).toBe(true);
      expect(data(propagated[name], 'ca.crt')).toBe(rotated.tls.caBundle);
    }
    // After the old CA's expiry it leaves the bundle.
    const afterExpiry = reconcilePki(new Map(Object.entries(propagated)), target, new Date(start.getTime() + 7 * 24 * HOUR + HOUR));
    expect(count(afterExpiry.tls.caBundle)).toBe(1);
    expect(data(asLive(afterExpiry)[CA_SECRET], 'previous.crt')).toBe('');
  });
});
