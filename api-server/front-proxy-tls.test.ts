// The trust boundary over real TLS: only a client certificate of the requestheader CA with an
// allowed name makes the identity headers count; the authorizer then decides. The same
// certificate, when the operator requires it, is the only way into the admission webhooks. Certificates are
// made with openssl for the test (a CA, the server's, the front proxy's, and an impostor's from
// another CA that claims the front proxy's name).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient } from '../runtime/kube.js';
import { silentLogger } from '../runtime/logging.js';
import type { AdmissionContext } from './admission/admit.js';
import { createApiServer } from './app.js';
import { NodeStreams } from './node-streams.js';
import type { ResourceAttributes } from './authorize.js';
import type { UserInfo } from './front-proxy.js';
import { buildApiServer } from './server.js';
import type { VirtualMachineInstance } from './types.js';
import { vmiSubresourceRoutes } from './vmi-subresources.js';

let dir: string;
let app: FastifyInstance;
let port: number;
const asked: Array<{ user: UserInfo; attributes: ResourceAttributes }> = [];
const patches: unknown[] = [];
const file = (name: string) => readFileSync(join(dir, name));

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

function certificate(name: string, cn: string, ca: string): void {
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`);
  openssl('req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`);
  writeFileSync(join(dir, `${name}.ext`), 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '1', '-extfile', `${name}.ext`, '-out', `${name}.crt`);
}

function authority(name: string): void {
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`);
  openssl('req', '-x509', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-days', '1', '-out', `${name}.crt`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
}

const runningVmi = { metadata: { name: 'vm1', namespace: 'ns' }, spec: { domain: { devices: {} } }, status: { phase: 'Running' } } as VirtualMachineInstance;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kubevm-front-proxy-'));
  authority('ca');
  authority('other-ca');
  certificate('server', 'localhost', 'ca');
  certificate('proxy', 'front-proxy-client', 'ca');
  certificate('stranger', 'someone-else', 'ca');
  certificate('impostor', 'front-proxy-client', 'other-ca');
  const vmis = { find: async () => runningVmi, patch: async (_n: string, _ns: string | undefined, patch: unknown) => (patches.push(patch), runningVmi) };
  app = buildApiServer({
    frontProxy: () => ({ clientCA: file('ca.crt').toString(), allowedNames: ['front-proxy-client'], usernameHeaders: ['X-Remote-User'], groupHeaders: ['X-Remote-Group'], extraHeaderPrefixes: ['X-Remote-Extra-'] }),
    authorizer: {
      authorize: async (user, attributes) => {
        asked.push({ user, attributes });
        return user.username === 'alice' ? { allowed: true, reason: '' } : { allowed: false, reason: 'no RBAC policy matched' };
      },
    },
    routes: vmiSubresourceRoutes({ vmis: vmis as never }, () => Promise.reject(new Error('no node handler in this test'))),
    log: silentLogger,
    version: {},
    health: async () => ({ healthy: true, body: {} }),
    tls: { cert: file('server.crt'), key: file('server.key') },
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  port = (app.server.address() as { port: number }).port;
}, 30_000);

afterAll(async () => {
  await app?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function pause(client: string | undefined, user: string): Promise<{ code: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = https.request(
      {
        host: 'localhost',
        port,
        method: 'PUT',
        path: '/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachineinstances/vm1/pause',
        ca: file('ca.crt'),
        ...(client ? { cert: file(`${client}.crt`), key: file(`${client}.key`) } : {}),
        headers: { 'x-remote-user': user, 'x-remote-group': ['dev', 'system:authenticated'], 'x-remote-extra-scopes': 'vm', 'content-type': 'application/json' },
        agent: false,
      },
      (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ code: res.statusCode ?? 0, body }));
      },
    );
    request.on('error', reject);
    request.end('{}');
  });
}

describe('the front-proxy trust boundary over TLS', () => {
  it('acts for the forwarded user when the front proxy\'s certificate is presented, after asking the authorizer', async () => {
    expect((await pause('proxy', 'alice')).code).toBe(200);
    expect(asked.at(-1)).toEqual({
      user: { username: 'alice', groups: ['dev', 'system:authenticated'], extra: { scopes: ['vm'] } },
      attributes: { namespace: 'ns', verb: 'update', group: 'subresources.kubevirt.io', version: 'v1', resource: 'virtualmachineinstances', subresource: 'pause', name: 'vm1' },
    });
    expect(patches).toHaveLength(1);
  });

  it('answers 403 with the authorizer\'s reason when the user may not', async () => {
    const res = await pause('proxy', 'mallory');
    expect(res.code).toBe(403);
    expect(JSON.parse(res.body)).toMatchObject({ reason: 'Forbidden', message: expect.stringContaining('User "mallory" cannot update resource "virtualmachineinstances/pause"') });
    expect(patches).toHaveLength(1);
  });

  it.each([
    ['no client certificate', undefined],
    ['a certificate of the CA with a name that is not allowed', 'stranger'],
    ['a certificate of another CA claiming the front proxy\'s name', 'impostor'],
  ])('answers 401 and never asks the authorizer for %s', async (_what, client) => {
    const before = asked.length;
    const res = await pause(client, 'alice');
    expect(res.code).toBe(401);
    expect(asked).toHaveLength(before);
    expect(patches).toHaveLength(1);
  });
});

describe('the webhooks, when the operator requires the kube-apiserver\'s client certificate', () => {
  let webhooks: FastifyInstance;
  let webhooksPort: number;
  beforeAll(async () => {
    const nowhere = new KubeConfig();
    nowhere.loadFromOptions({ clusters: [{ name: 'c', server: 'https://127.0.0.1:9' }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
    const unreachable = async (): Promise<never> => Promise.reject(new Error('no cluster in this test'));
    webhooks = createApiServer({
      client: new KubeClient(nowhere),
      authorizer: { authorize: unreachable },
      frontProxy: () => ({ clientCA: file('ca.crt').toString(), allowedNames: ['front-proxy-client'], usernameHeaders: ['X-Remote-User'], groupHeaders: ['X-Remote-Group'], extraHeaderPrefixes: ['X-Remote-Extra-'] }),
      log: silentLogger,
      tls: { cert: file('server.crt'), key: file('server.key') },
      admission: new Proxy({} as AdmissionContext, { get: () => unreachable }),
      streams: new NodeStreams(unreachable, () => undefined),
      webhookClientAuth: 'required',
    });
    await webhooks.listen({ port: 0, host: '127.0.0.1' });
    webhooksPort = (webhooks.server.address() as { port: number }).port;
  }, 30_000);
  afterAll(async () => {
    await webhooks?.close();
  });

  function review(path: string, client: string | undefined, body?: string): Promise<{ code: number; body: string }> {
    return new Promise((resolve, reject) => {
      const request = https.request(
        { host: 'localhost', port: webhooksPort, method: 'POST', path, ca: file('ca.crt'), ...(client ? { cert: file(`${client}.crt`), key: file(`${client}.key`) } : {}), headers: { 'content-type': 'application/json' }, agent: false },
        (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString()));
          res.on('end', () => resolve({ code: res.statusCode ?? 0, body }));
        },
      );
      request.on('error', reject);
      // A forged eviction review: without the check, the webhook would look the pod up and mark its VMI.
      request.end(body ?? JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'forged', kind: { group: 'policy', version: 'v1', kind: 'Eviction' }, resource: { group: '', version: 'v1', resource: 'pods' }, subResource: 'eviction', operation: 'CREATE', namespace: 'tenant', name: 'virt-launcher-victim-x', userInfo: { username: 'system:admin' }, object: { apiVersion: 'policy/v1', kind: 'Eviction' } } }));
    });
  }

  it('reads an UPDATE of a VMI with 1.4 MiB of inline user data (object and oldObject: 2.8 MiB), not refusing it for its size', async () => {
    const vmi = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'big', namespace: 'ns' }, spec: { domain: { devices: {} }, volumes: [{ name: 'cloudinit', cloudInitNoCloud: { userData: 'x'.repeat(1_400_000) } }] } };
    const body = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'big', kind: { group: 'kubevirt.io', version: 'v1', kind: 'VirtualMachineInstance' }, resource: { group: 'kubevirt.io', version: 'v1', resource: 'virtualmachineinstances' }, operation: 'UPDATE', namespace: 'ns', name: 'big', userInfo: { username: 'u' }, object: vmi, oldObject: vmi } });
    expect(body.length).toBeGreaterThan(2_800_000);
    const res = await review('/admission/mutate', 'proxy', body);
    expect(res.code).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ response: { uid: 'big', allowed: true } });
  });

  it.each([
    ['no client certificate', undefined],
    ['a certificate of the CA with a name that is not allowed', 'stranger'],
    ['a certificate of another CA claiming the front proxy\'s name', 'impostor'],
  ])('refuses a review with 401 before reading it, for %s', async (_what, client) => {
    for (const path of ['/admission/validate', '/admission/mutate', '/admission/validate?timeout=10s']) {
      const res = await review(path, client);
      expect(res.code).toBe(401);
      expect(JSON.parse(res.body)).toMatchObject({ kind: 'Status', reason: 'Unauthorized', message: expect.stringContaining('kube-apiserver') });
    }
  });

  it('answers the kube-apiserver, which presents the front proxy\'s certificate', async () => {
    const mutated = await review('/admission/mutate', 'proxy');
    expect(mutated.code).toBe(200);
    expect(JSON.parse(mutated.body)).toMatchObject({ kind: 'AdmissionReview', response: { uid: 'forged' } });
    // Past the check, the eviction webhook looks the pod up: this test has no cluster, so it refuses (429), as a drain retries.
    const validated = await review('/admission/validate', 'proxy');
    expect(validated.code).toBe(200);
    expect(JSON.parse(validated.body)).toMatchObject({ response: { uid: 'forged', allowed: false, status: { code: 429, message: expect.stringContaining('no cluster in this test') } } });
  });
});

