// The CA and serving certificates, checked by parts other than the code that made them: Node's
// X509Certificate (OpenSSL) verifies signatures and reads extensions, and a real TLS handshake
// trusts the serving certificate through the CA bundle, before and after a CA rotation.
import { describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import * as https from 'node:https';
import forge from 'node-forge';
import { caBundle, issueCertificateAuthority, issueServingCertificate, needsRenewal, renewalTime } from './certificates.js';

const names = ['kubevm-api-server.kubevirt.svc', 'kubevm-api-server.kubevirt.svc.cluster.local'];

async function handshake(serving: { cert: string; key: string }, trusted: string): Promise<string> {
  const server = https.createServer({ cert: serving.cert, key: serving.key }, (_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    return await new Promise<string>((resolve, reject) => {
      const req = https.get({ host: '127.0.0.1', port, servername: names[0], ca: trusted, checkServerIdentity: () => undefined }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve(body));
      });
      req.on('error', reject);
    });
  } finally {
    server.close();
  }
}

/** Every PrintableString in a DER tree: Go's x509 parser (the kube-apiserver's) refuses any with a character outside its set. */
function printableStrings(node: forge.asn1.Asn1): string[] {
  if (Array.isArray(node.value)) return node.value.flatMap(printableStrings);
  return node.tagClass === forge.asn1.Class.UNIVERSAL && node.type === forge.asn1.Type.PRINTABLESTRING ? [node.value] : [];
}

describe('certificates', () => {
  const now = new Date();
  const ca = issueCertificateAuthority('kubevm-ca', now);
  const serving = issueServingCertificate(ca, names, now);

  it('makes a CA and a serving certificate OpenSSL verifies', () => {
    const caCert = new X509Certificate(ca.cert);
    const leaf = new X509Certificate(serving.cert);
    expect(caCert.ca).toBe(true);
    expect(caCert.verify(caCert.publicKey)).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.verify(caCert.publicKey)).toBe(true);
    expect(leaf.checkIssued(caCert)).toBe(true);
    expect(leaf.subjectAltName).toBe(names.map((name) => `DNS:${name}`).join(', '));
    expect(leaf.checkHost(names[1] ?? '')).toBe(names[1]);
    expect(leaf.keyUsage).toContain('1.3.6.1.5.5.7.3.1');
    // A leaf never outlives its CA.
    expect(new Date(leaf.validTo).getTime()).toBeLessThanOrEqual(new Date(caCert.validTo).getTime());
  });

  it('writes names Go parses: the CA\'s "@" in a UTF8String, no PrintableString outside its character set', () => {
    const named = issueCertificateAuthority('kubevm-ca@1796143589', now);
    const leaf = issueServingCertificate(named, names, now);
    for (const pem of [named.cert, leaf.cert]) {
      const der = forge.asn1.fromDer(forge.pem.decode(pem)[0]?.body ?? '');
      for (const text of printableStrings(der)) expect(text).toMatch(/^[A-Za-z0-9 '()+,\-./:=?]*$/);
    }
    expect(new X509Certificate(leaf.cert).issuer).toBe('CN=kubevm-ca@1796143589');
  });

  it('serves TLS that a client trusting the CA bundle accepts, and one trusting another CA refuses', async () => {
    expect(await handshake(serving, ca.cert)).toBe('ok');
    const other = issueCertificateAuthority('someone-else', now);
    await expect(handshake(serving, other.cert)).rejects.toThrow();
  });

  it('keeps the previous CA in the bundle while it is valid, so old and new leaves both verify', async () => {
    const next = issueCertificateAuthority('kubevm-ca', new Date(now.getTime() + 1000));
    const bundle = caBundle(next.cert, ca.cert, now);
    expect(bundle.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(await handshake(serving, bundle)).toBe('ok');
    expect(await handshake(issueServingCertificate(next, names, now), bundle)).toBe('ok');
    // Once the previous CA has expired it leaves the bundle; the same CA is never listed twice.
    expect(caBundle(next.cert, ca.cert, new Date(now.getTime() + 8 * 24 * 3600 * 1000)).match(/BEGIN CERTIFICATE/g)).toHaveLength(1);
    expect(caBundle(next.cert, next.cert, now).match(/BEGIN CERTIFICATE/g)).toHaveLength(1);
  });

  it('asks for renewal in the last fifth of a lifetime, or when there is nothing readable', () => {
    const due = renewalTime(serving.cert);
    const { validFrom, validTo } = new X509Certificate(serving.cert);
    const lifetime = new Date(validTo).getTime() - new Date(validFrom).getTime();
    expect(due).toBe(new Date(validTo).getTime() - lifetime / 5);
    expect(needsRenewal(serving.cert, new Date(due - 1000))).toBe(false);
    expect(needsRenewal(serving.cert, new Date(due + 1000))).toBe(true);
    expect(needsRenewal(undefined)).toBe(true);
    expect(needsRenewal('not a certificate')).toBe(true);
  });
});
