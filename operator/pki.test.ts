// Certificate Secrets over time: kept while valid, the serving certificate renewed in its last
// fifth, the CA rotated with its predecessor kept in the bundle, and a serving certificate of a
// replaced CA re-issued at once.
import { describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import type { InstallTarget } from './install.js';
import type { SecretObject } from './pki.js';
import { reconcilePki } from './pki.js';

const target: InstallTarget = { namespace: 'kubevirt', registry: 'kubevm', tag: '0.1.0', pullPolicy: 'IfNotPresent' };
const HOUR = 3600 * 1000;

function asLive(pki: ReturnType<typeof reconcilePki>): { ca: SecretObject; serving: SecretObject } {
  const [ca, serving] = pki.secrets as unknown as [SecretObject, SecretObject];
  return { ca, serving };
}
const data = (secret: SecretObject, key: string): string => Buffer.from(secret.data?.[key] ?? '', 'base64').toString();
const count = (pem: string): number => (pem.match(/BEGIN CERTIFICATE/g) ?? []).length;

describe('reconcilePki', () => {
  const start = new Date();
  const first = reconcilePki({}, target, start);

  it('issues a CA and a serving certificate for the api-server Service', () => {
    const live = asLive(first);
    const serving = new X509Certificate(data(live.serving, 'tls.crt'));
    expect(serving.subjectAltName).toContain('DNS:kubevm-api-server.kubevirt.svc');
    expect(serving.checkIssued(new X509Certificate(data(live.ca, 'tls.crt')))).toBe(true);
    expect(count(data(live.serving, 'ca.crt'))).toBe(1);
    expect(live.serving.type).toBe('kubernetes.io/tls');
  });

  it('keeps valid certificates exactly as they are (no write, no pod roll)', () => {
    const again = reconcilePki(asLive(first), target, new Date(start.getTime() + HOUR));
    expect(again.secrets).toEqual(first.secrets);
    expect(again.tls).toEqual(first.tls);
  });

  it('renews the serving certificate in its last fifth, under the same CA', () => {
    const later = reconcilePki(asLive(first), target, new Date(start.getTime() + 20 * HOUR));
    expect(data(asLive(later).ca, 'tls.crt')).toBe(data(asLive(first).ca, 'tls.crt'));
    expect(data(asLive(later).serving, 'tls.crt')).not.toBe(data(asLive(first).serving, 'tls.crt'));
    expect(later.tls.servingCertSha256).not.toBe(first.tls.servingCertSha256);
  });

  it('rotates the CA in its last fifth, trusting the old one beside the new until it expires', () => {
    const rotationTime = new Date(start.getTime() + 6 * 24 * HOUR);
    const rotated = reconcilePki(asLive(first), target, rotationTime);
    const live = asLive(rotated);
    expect(data(live.ca, 'tls.crt')).not.toBe(data(asLive(first).ca, 'tls.crt'));
    expect(count(rotated.tls.caBundle)).toBe(2);
    expect(data(live.ca, 'previous.crt')).toBe(data(asLive(first).ca, 'tls.crt'));
    // The serving certificate is re-issued by the new CA at once.
    expect(new X509Certificate(data(live.serving, 'tls.crt')).checkIssued(new X509Certificate(data(live.ca, 'tls.crt')))).toBe(true);
    // After the old CA's expiry it leaves the bundle.
    const afterExpiry = reconcilePki(live, target, new Date(start.getTime() + 7 * 24 * HOUR + HOUR));
    expect(count(afterExpiry.tls.caBundle)).toBe(1);
    expect(data(asLive(afterExpiry).ca, 'previous.crt')).toBe('');
  });
});
