// The metrics endpoint's HTTP behaviour with a given authorizer (the authorizer against the real
// API server: test/integration/metrics-authorization.test.ts).
import { afterEach, describe, expect, it } from '@jest/globals';
import * as https from 'node:https';
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

  it('speaks no plain HTTP', async () => {
    server = new MetricsServer({ port: 0, host: '127.0.0.1', authorizer, tls });
    const { port } = await server.listen();
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
  });
});
