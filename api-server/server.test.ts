// The server's open endpoints and its refusals, over real HTTP on a loopback port (no TLS: every
// subresource request is therefore unauthenticated; the cluster suite covers the rest).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { FastifyInstance } from 'fastify';
import { WebSocket } from 'ws';
import { silentLogger } from '../runtime/logging.js';
import type { Authorizer } from './authorize.js';
import { subresourceRoutes } from './app.js';
import { NodeStreams } from './node-streams.js';
import { buildApiServer } from './server.js';
import type { VmBackends } from './vm-subresources.js';

const unreachable = new Proxy({}, { get: () => () => Promise.reject(new Error('no backend in this test')) }) as unknown as VmBackends;
const authorizer: Authorizer = { authorize: () => Promise.reject(new Error('must not be asked: the request is unauthenticated')) };
const noNodes = new NodeStreams(() => Promise.reject(new Error('must not be asked: the request is unauthenticated')), () => undefined);
const noCluster = () => Promise.reject(new Error('no cluster in this test'));
const routes = subresourceRoutes({ vms: unreachable.vms, vmis: unreachable.vmis, migrations: unreachable.migrations }, { object: noCluster, revision: noCluster }, noNodes);
const app: FastifyInstance = buildApiServer({
  frontProxy: () => ({ clientCA: '', allowedNames: [], usernameHeaders: ['X-Remote-User'], groupHeaders: ['X-Remote-Group'], extraHeaderPrefixes: ['X-Remote-Extra-'] }),
  authorizer,
  routes,
  log: silentLogger,
  version: { gitVersion: 'v0.1.0' },
  health: async () => ({ healthy: true, body: { apiserver: { connectivity: 'ok' } } }),
});

let base = '';
beforeAll(async () => {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  base = typeof address === 'object' && address ? `http://127.0.0.1:${address.port}` : '';
});
afterAll(async () => app.close());

interface Answer {
  statusCode: number;
  json<T = unknown>(): T;
}

async function call(request: { method?: string; url: string; headers?: Record<string, string> }): Promise<Answer> {
  const res = await fetch(base + request.url, { method: request.method ?? 'GET', headers: request.headers ?? {} });
  const text = await res.text();
  return { statusCode: res.status, json: <T>() => JSON.parse(text) as T };
}

describe('connections', () => {
  it('keeps an idle connection open longer than kube-apiserver does, so the apiserver closes it first', async () => {
    const res = await fetch(base + '/healthz');
    await res.text();
    const hint = /timeout=(\d+)/.exec(res.headers.get('keep-alive') ?? '');
    expect(Number(hint?.[1])).toBeGreaterThan(90);
  });
});

describe('discovery', () => {
  it('lists exactly the served subresources, with the RBAC verb of their method, in both versions', async () => {
    for (const version of ['v1', 'v1alpha3']) {
      const res = await call({ method: 'GET', url: `/apis/subresources.kubevirt.io/${version}` });
      expect(res.statusCode).toBe(200);
      const list = res.json<{ groupVersion: string; resources: Array<{ name: string; verbs: string[]; namespaced: boolean }> }>();
      expect(list.groupVersion).toBe(`subresources.kubevirt.io/${version}`);
      const served = [...new Set(routes.map((r) => (r.subresource ? `${r.resource}/${r.subresource}` : r.resource)))].sort();
      expect(list.resources.map((r) => r.name).sort()).toEqual(served);
      expect(list.resources.find((r) => r.name === 'virtualmachines/start')).toMatchObject({ verbs: ['update'], namespaced: true });
      expect(list.resources.find((r) => r.name === 'virtualmachineinstances/guestosinfo')).toMatchObject({ verbs: ['get'] });
      for (const stream of ['virtualmachineinstances/console', 'virtualmachineinstances/vnc', 'virtualmachineinstances/vnc/screenshot', 'virtualmachineinstances/portforward', 'virtualmachines/portforward']) {
        expect(list.resources.find((r) => r.name === stream)).toMatchObject({ verbs: ['get'] });
      }
    }
  });

  it('serves the group, the group list and version without a client certificate', async () => {
    expect((await call({ url: '/apis/subresources.kubevirt.io' })).json()).toMatchObject({
      kind: 'APIGroup',
      name: 'subresources.kubevirt.io',
      preferredVersion: { groupVersion: 'subresources.kubevirt.io/v1' },
    });
    expect((await call({ url: '/apis' })).json()).toMatchObject({ kind: 'APIGroupList' });
    expect((await call({ url: '/apis/subresources.kubevirt.io/v1/version' })).json()).toEqual({ gitVersion: 'v0.1.0' });
    expect((await call({ url: '/apis/subresources.kubevirt.io/v1alpha3/healthz' })).statusCode).toBe(200);
  });
});

describe('refusals', () => {
  it('answers 401 to a subresource request that did not come through the front proxy', async () => {
    const res = await call({ method: 'PUT', url: '/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachines/vm1/start', headers: { 'x-remote-user': 'system:admin', 'x-remote-group': 'system:masters' } });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ kind: 'Status', reason: 'Unauthorized', code: 401 });
  });

  it('answers 404 Status for an unknown version or path, 405 for a served path with another method', async () => {
    expect((await call({ method: 'PUT', url: '/apis/subresources.kubevirt.io/v2/namespaces/ns/virtualmachines/vm1/start' })).statusCode).toBe(404);
    expect((await call({ method: 'PUT', url: '/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachines/vm1/fly' })).json()).toMatchObject({ kind: 'Status', code: 404 });
    expect((await call({ method: 'POST', url: '/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachines/vm1/start' })).statusCode).toBe(405);
  });
});

describe('websocket streams', () => {
  /** The HTTP answer to a websocket upgrade request: refused ones carry a Status. */
  async function upgrade(path: string): Promise<{ statusCode: number; body: string }> {
    const socket = new WebSocket(`${base.replace('http', 'ws')}${path}`, ['plain.kubevirt.io']);
    return new Promise((resolve, reject) => {
      socket.once('unexpected-response', (_request, response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () => resolve({ statusCode: response.statusCode ?? 0, body }));
      });
      socket.once('open', () => reject(new Error('the upgrade was accepted')));
      socket.once('error', () => undefined);
    });
  }

  it('refuses an upgrade that did not come through the front proxy, before any stream is opened', async () => {
    for (const path of ['virtualmachineinstances/vm1/console', 'virtualmachineinstances/vm1/vnc', 'virtualmachines/vm1/portforward/22', 'virtualmachineinstances/vm1/portforward/22/tcp']) {
      const res = await upgrade(`/apis/subresources.kubevirt.io/v1/namespaces/ns/${path}`);
      expect(res.statusCode).toBe(401);
      expect(JSON.parse(res.body)).toMatchObject({ kind: 'Status', reason: 'Unauthorized' });
    }
  });

  it('answers 404 to an upgrade on a path that is no stream; a plain GET of a stream is authenticated like any request', async () => {
    expect((await upgrade('/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachines/vm1/start')).statusCode).toBe(404);
    expect((await upgrade('/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachineinstances/vm1/console/extra')).statusCode).toBe(404);
    expect((await call({ url: '/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachineinstances/vm1/console' })).statusCode).toBe(401);
  });
});
