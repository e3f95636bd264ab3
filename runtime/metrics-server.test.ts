// The metrics endpoint's HTTP behaviour with a given authorizer (the authorizer against the real
// API server: test/integration/metrics-authorization.test.ts).
import { afterEach, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { issueCertificateAuthority, issueServingCertificate } from './certificates.js';
import type { MetricsAuthorizer, MetricsDecision } from './metrics-server.js';
import { MetricsServer, selfSignedCertificate } from './metrics-server.js';
import { WorkQueue } from './workqueue.js';

let server: MetricsServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const tls = selfSignedCertificate('metrics-test');

function get(port: number, path: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path, ca: tls.ca, servername: 'localhost', headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

/** Tokens as users: "reader" may read, "other" may not, anything else is not a token. */
const authorizer: MetricsAuthorizer = {
  authorize: async (token): Promise<MetricsDecision> =>
    token === 'reader' ? { allowed: true, user: 'reader' } : token === 'other' ? { allowed: false, code: 403, reason: 'user "other" may not' } : { allowed: false, code: 401, reason: 'no bearer token' },
};

describe('MetricsServer', () => {
  it('serves the registry over TLS to an authorized scraper only', async () => {
    server = new MetricsServer({ port: 0, host: '127.0.0.1', authorizer, tls });
    const { port } = await server.listen();
    const queue = new WorkQueue({ name: 'metrics-test' });
    queue.add('k');
    const ok = await get(port, '/metrics', 'reader');
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('kubevirt_workqueue_depth{name="metrics-test"} 1');
    queue.dispose();
    expect(await get(port, '/metrics')).toEqual({ status: 401, body: 'no bearer token\n' });
    expect(await get(port, '/metrics', 'other')).toEqual({ status: 403, body: 'user "other" may not\n' });
    expect((await get(port, '/healthz', 'reader')).status).toBe(404);
  });

  it('answers 500, never the metrics, when the authorizer fails', async () => {
    server = new MetricsServer({ port: 0, host: '127.0.0.1', authorizer: { authorize: async () => Promise.reject(new Error('API server unreachable')) }, tls });
    const { port } = await server.listen();
    const failed = await get(port, '/metrics', 'reader');
    expect(failed.status).toBe(500);
    expect(failed.body).not.toContain('kubevirt_');
  });

  it('serves the certificate mounted in its directory, self-signed until there is one, and a renewed one without a restart', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kubevm-metrics-tls-'));
    const name = 'kubevm-controller-metrics.kubevirt.svc';
    // What a scraper with the operator's CA bundle does: verify the chain and the name.
    const verifiedBy = (ca: string, port: number) =>
      new Promise<PeerCertificate>((resolve, reject) => {
        const req = https.get({ host: '127.0.0.1', port, path: '/metrics', ca, servername: name, agent: false }, (res) => {
          res.resume();
          resolve((res.socket as TLSSocket).getPeerCertificate());
        });
        req.on('error', reject);
      });
    const mount = (ca: { cert: string; key: string }) => {
      const leaf = issueServingCertificate(ca, [name]);
      for (const [file, text] of [['tls.crt', leaf.cert], ['tls.key', leaf.key], ['ca.crt', ca.cert]] as const) writeFileSync(path.join(dir, file), text);
      return leaf;
    };
    try {
      server = new MetricsServer({ port: 0, host: '127.0.0.1', authorizer, tls: { dir, selfSignedName: 'kubevm-controller' } });
      const { port } = await server.listen();
      const ca = issueCertificateAuthority('kubevm-ca');
      await expect(verifiedBy(ca.cert, port)).rejects.toThrow();
      expect(server.reloadTls()).toBe(false);
      const first = mount(ca);
      expect(server.reloadTls()).toBe(true);
      expect((await verifiedBy(ca.cert, port)).fingerprint256).toBe(new X509Certificate(first.cert).fingerprint256);
      // The operator renews it: the next connection gets the new one.
      const renewed = mount(ca);
      expect(server.reloadTls()).toBe(true);
      expect((await verifiedBy(ca.cert, port)).fingerprint256).toBe(new X509Certificate(renewed.cert).fingerprint256);
      // A half-written pair (a key of another certificate) is not taken; the last good one stays.
      writeFileSync(path.join(dir, 'tls.key'), first.key);
      expect(server.reloadTls()).toBe(false);
      expect((await verifiedBy(ca.cert, port)).fingerprint256).toBe(new X509Certificate(renewed.cert).fingerprint256);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('speaks no plain HTTP', async () => {
    server = new MetricsServer({ port: 0, host: '127.0.0.1', authorizer, tls });
    const { port } = await server.listen();
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
  });
});
