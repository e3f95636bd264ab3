import { afterEach, describe, expect, it } from '@jest/globals';
import { HealthServer, informersSynced } from './health.js';
import { readyStatusGauge } from './metrics.js';

let server: HealthServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: await response.text() };
}

describe('HealthServer', () => {
  it('serves /healthz and /readyz from its checks, and no /metrics', async () => {
    server = new HealthServer({ port: 0, host: '127.0.0.1' });
    let synced = false;
    server.addReadinessCheck('informers-synced', () => synced || 'vmi informer not synced');
    const { port } = await server.listen();

    expect(await get(port, '/healthz')).toEqual({ status: 200, body: 'ok\n' });
    const notReady = await get(port, '/readyz');
    expect(notReady.status).toBe(503);
    expect(notReady.body).toContain('[-]informers-synced failed: vmi informer not synced');

    synced = true;
    expect((await get(port, '/readyz')).status).toBe(200);

    // Metrics are not here: they are served over HTTPS to authorized scrapers (metrics-server.ts).
    expect((await get(port, '/metrics')).status).toBe(404);

    server.markShuttingDown();
    expect((await get(port, '/readyz')).status).toBe(503);
    expect((await get(port, '/nope')).status).toBe(404);
  });

  it('is ready when informers have synced, and drives kubevirt_<component>_ready_status', async () => {
    server = new HealthServer({ port: 0, host: '127.0.0.1', component: 'virt_api' });
    const vmis = { synced: false, hasSynced(): boolean { return this.synced; }, descriptor: { resource: 'virtualmachineinstances' } };
    const pods = { hasSynced: (): boolean => true, descriptor: { resource: 'pods' } };
    server.addReadinessCheck('informers', informersSynced([vmis, pods]));
    const { port } = await server.listen();
    const notReady = await get(port, '/readyz');
    expect(notReady.status).toBe(503);
    expect(notReady.body).toContain('not synced: virtualmachineinstances');
    expect((await readyStatusGauge('virt_api').get()).values[0]?.value).toBe(0);
    vmis.synced = true;
    expect((await get(port, '/readyz')).status).toBe(200);
    expect((await readyStatusGauge('virt_api').get()).values[0]?.value).toBe(1);
  });

  it('reports a failing liveness check', async () => {
    server = new HealthServer({ port: 0, host: '127.0.0.1' });
    server.addLivenessCheck('event-loop', () => {
      throw new Error('stuck');
    });
    const { port } = await server.listen();
    const response = await get(port, '/healthz');
    expect(response.status).toBe(503);
    expect(response.body).toContain('[-]event-loop failed: stuck');
  });
});
