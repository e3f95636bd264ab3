// The aggregation layer: an APIService backed by a pod (a TLS test server in a locally built
// image) is served through the kube-apiserver. The apiserver proxies to the pod's endpoint
// (--enable-aggregator-routing), authenticates to it with the front-proxy client certificate
// (the test server only accepts that), forwards the caller's identity in X-Remote-User, and
// still applies RBAC in front of the aggregated API.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { apiRequest, buildTestImage, clusterEnv, kubectl, requireCluster, run, type ClusterEnv } from './cluster-env.js';
import { eventually } from '../support/eventually.js';

const namespace = 'kubevm-cluster-apiservice';
const service = 'kubevm-test-api';
const apiService = 'v1alpha1.testing.kubevm.io';
let env: ClusterEnv;
let image: string;
let workDir: string;

async function openssl(args: string[]): Promise<void> {
  const res = await run('openssl', args, { timeoutMs: 30_000 });
  if (res.code !== 0) throw new Error(`openssl ${args.join(' ')}: ${res.stderr}`);
}

/** A throwaway CA and a serving certificate for the Service's DNS name. */
async function servingCert(dir: string): Promise<{ caPem: string }> {
  const p = (f: string) => join(dir, f);
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', p('ca.key')]);
  await openssl(['req', '-x509', '-new', '-key', p('ca.key'), '-subj', '/CN=kubevm-test-api-ca', '-days', '1', '-out', p('ca.crt'),
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', p('tls.key')]);
  await openssl(['req', '-new', '-key', p('tls.key'), '-subj', `/CN=${service}.${namespace}.svc`, '-out', p('tls.csr')]);
  writeFileSync(p('ext'), `subjectAltName=DNS:${service}.${namespace}.svc\nextendedKeyUsage=serverAuth\n`);
  await openssl(['x509', '-req', '-in', p('tls.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial',
    '-days', '1', '-extfile', p('ext'), '-out', p('tls.crt')]);
  return { caPem: readFileSync(p('ca.crt'), 'utf8') };
}

beforeAll(async () => {
  env = clusterEnv();
  await requireCluster(env);
  image = await buildTestImage();
  workDir = mkdtempSync(join(tmpdir(), 'kubevm-apiservice-'));
  await kubectl(env, ['delete', 'apiservice', apiService, '--ignore-not-found']);
  await kubectl(env, ['delete', 'namespace', namespace, '--ignore-not-found', '--wait=true', '--timeout=60s'], { timeoutMs: 70_000 });
  await kubectl(env, ['create', 'namespace', namespace]);
}, 240_000);

afterAll(async () => {
  if (env) {
    await kubectl(env, ['delete', 'apiservice', apiService, '--ignore-not-found']).catch(() => undefined);
    await kubectl(env, ['delete', 'namespace', namespace, '--wait=false']).catch(() => undefined);
  }
  if (workDir) rmSync(workDir, { recursive: true, force: true });
}, 30_000);

describe('an aggregated APIService backed by a pod', () => {
  it('becomes Available and serves requests through the kube-apiserver', async () => {
    const { caPem } = await servingCert(workDir);
    await kubectl(env, ['-n', namespace, 'create', 'secret', 'tls', 'serving', '--cert', join(workDir, 'tls.crt'), '--key', join(workDir, 'tls.key')]);
    // The requestheader CA the apiserver publishes for extension apiservers.
    const auth = JSON.parse(
      await kubectl(env, ['-n', 'kube-system', 'get', 'configmap', 'extension-apiserver-authentication', '-o', 'json']),
    ) as { data: Record<string, string> };
    const requestheaderCa = auth.data['requestheader-client-ca-file'];
    expect(requestheaderCa).toContain('BEGIN CERTIFICATE');
    const allowedNames = JSON.parse(auth.data['requestheader-allowed-names'] ?? '[]') as string[];

    const objects = [
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'requestheader', namespace }, data: { 'ca.crt': requestheaderCa } },
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: service, namespace },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: service } },
          template: {
            metadata: { labels: { app: service } },
            spec: {
              terminationGracePeriodSeconds: 1,
              containers: [{
                name: 'server',
                image,
                imagePullPolicy: 'IfNotPresent',
                args: ['serve'],
                env: [{ name: 'ALLOWED_NAMES', value: allowedNames.join(',') }],
                ports: [{ containerPort: 8443 }],
                readinessProbe: { httpGet: { path: '/healthz', port: 8443, scheme: 'HTTPS' }, periodSeconds: 1 },
                volumeMounts: [{ name: 'tls', mountPath: '/tls' }, { name: 'requestheader', mountPath: '/requestheader' }],
              }],
              volumes: [{ name: 'tls', secret: { secretName: 'serving' } }, { name: 'requestheader', configMap: { name: 'requestheader' } }],
            },
          },
        },
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: service, namespace },
        spec: { selector: { app: service }, ports: [{ port: 443, targetPort: 8443 }] },
      },
      {
        apiVersion: 'apiregistration.k8s.io/v1',
        kind: 'APIService',
        metadata: { name: apiService },
        spec: {
          group: 'testing.kubevm.io',
          version: 'v1alpha1',
          service: { namespace, name: service, port: 443 },
          caBundle: Buffer.from(caPem).toString('base64'),
          groupPriorityMinimum: 1000,
          versionPriority: 15,
        },
      },
    ];
    await kubectl(env, ['apply', '-f', '-'], { input: objects.map((o) => JSON.stringify(o)).join('\n') });
    await kubectl(env, ['-n', namespace, 'rollout', 'status', `deployment/${service}`, '--timeout=120s'], { timeoutMs: 130_000 });

    await eventually(`APIService ${apiService} Available`, 90_000, async () => {
      const svc = JSON.parse(await kubectl(env, ['get', 'apiservice', apiService, '-o', 'json'])) as {
        status?: { conditions?: Array<{ type: string; status: string; message?: string }> };
      };
      const available = svc.status?.conditions?.find((c) => c.type === 'Available');
      if (available?.status === 'True') return true;
      throw new Error(`Available=${available?.status}: ${available?.message ?? ''}`);
    });

    // Through the apiserver as the admin: the test server saw the admin's identity.
    const res = await apiRequest(join(env.kubeconfigDir, 'admin.kubeconfig'), 'GET', '/apis/testing.kubevm.io/v1alpha1/whoamis');
    expect(res.status).toBe(200);
    const whoami = JSON.parse(res.body) as { kind: string; user: string; groups: string[] };
    expect(whoami.kind).toBe('WhoAmI');
    expect(whoami.user).toBe('kubevm-admin');
    expect(whoami.groups).toContain('system:masters');

    // Discovery lists the aggregated group.
    const groups = await kubectl(env, ['api-versions']);
    expect(groups.split('\n')).toContain('testing.kubevm.io/v1alpha1');
  }, 300_000);

  it('is still guarded by RBAC: a viewer without a grant on the group gets 403', async () => {
    const res = await apiRequest(join(env.kubeconfigDir, 'viewer.kubeconfig'), 'GET', '/apis/testing.kubevm.io/v1alpha1/whoamis');
    expect(res.status).toBe(403);
  }, 30_000);
});
