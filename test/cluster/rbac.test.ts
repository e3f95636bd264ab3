// Restricted users (client certificates from local-cluster/pki.sh), bound by cluster-up to the
// built-in ClusterRoles admin / edit / view in one namespace, get exactly what their role
// grants: 2xx for it, 403 for the rest. Requests go straight to the apiserver so the status
// codes are the real ones.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { apiRequest, clusterEnv, requireCluster, type ClusterEnv } from './cluster-env.js';

let env: ClusterEnv;
let ns: string;
const suffix = randomBytes(3).toString('hex');
const as = (user: 'admin' | 'ns-admin' | 'ns-editor' | 'viewer') => join(env.kubeconfigDir, `${user}.kubeconfig`);
const configMap = (name: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { k: 'v' } });

beforeAll(async () => {
  env = clusterEnv();
  await requireCluster(env);
  ns = env.testNamespace;
  // The namespace and bindings are made by cluster-up; a missing one is a bring-up defect.
  expect((await apiRequest(as('admin'), 'GET', `/api/v1/namespaces/${ns}`)).status).toBe(200);
}, 30_000);

describe('viewer (ClusterRole view in the test namespace)', () => {
  it('can list pods and read configmaps there', async () => {
    expect((await apiRequest(as('viewer'), 'GET', `/api/v1/namespaces/${ns}/pods`)).status).toBe(200);
    expect((await apiRequest(as('viewer'), 'GET', `/api/v1/namespaces/${ns}/configmaps`)).status).toBe(200);
  });

  it('gets 403 for writes, secrets and other namespaces', async () => {
    const create = await apiRequest(as('viewer'), 'POST', `/api/v1/namespaces/${ns}/configmaps`, configMap(`viewer-${suffix}`));
    expect(create.status).toBe(403);
    expect(JSON.parse(create.body)).toMatchObject({ reason: 'Forbidden' });
    expect(create.body).toContain('kubevm-viewer');
    expect((await apiRequest(as('viewer'), 'GET', `/api/v1/namespaces/${ns}/secrets`)).status).toBe(403);
    expect((await apiRequest(as('viewer'), 'GET', '/api/v1/namespaces/default/pods')).status).toBe(403);
    expect((await apiRequest(as('viewer'), 'GET', '/api/v1/nodes')).status).toBe(403);
  });
});

describe('ns-editor (ClusterRole edit in the test namespace)', () => {
  it('can create, read and delete configmaps and read secrets there', async () => {
    const name = `editor-${suffix}`;
    expect((await apiRequest(as('ns-editor'), 'POST', `/api/v1/namespaces/${ns}/configmaps`, configMap(name))).status).toBe(201);
    expect((await apiRequest(as('ns-editor'), 'GET', `/api/v1/namespaces/${ns}/configmaps/${name}`)).status).toBe(200);
    expect((await apiRequest(as('ns-editor'), 'GET', `/api/v1/namespaces/${ns}/secrets`)).status).toBe(200);
    expect((await apiRequest(as('ns-editor'), 'DELETE', `/api/v1/namespaces/${ns}/configmaps/${name}`)).status).toBe(200);
  });

  it('gets 403 for RBAC objects and for other namespaces', async () => {
    const binding = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: `editor-binding-${suffix}` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'someone' }],
    };
    const res = await apiRequest(as('ns-editor'), 'POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, binding);
    expect(res.status).toBe(403);
    expect((await apiRequest(as('ns-editor'), 'POST', '/api/v1/namespaces/default/configmaps', configMap(`editor-${suffix}`))).status).toBe(403);
  });
});

describe('ns-admin (ClusterRole admin in the test namespace)', () => {
  it('can manage RoleBindings in its namespace', async () => {
    const name = `admin-binding-${suffix}`;
    const binding = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'someone' }],
    };
    const base = `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`;
    expect((await apiRequest(as('ns-admin'), 'POST', base, binding)).status).toBe(201);
    expect((await apiRequest(as('ns-admin'), 'DELETE', `${base}/${name}`)).status).toBe(200);
  });

  it('gets 403 for cluster-scoped objects and its own namespace object', async () => {
    const namespace = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: `kubevm-forbidden-${suffix}` } };
    expect((await apiRequest(as('ns-admin'), 'POST', '/api/v1/namespaces', namespace)).status).toBe(403);
    expect((await apiRequest(as('ns-admin'), 'GET', '/api/v1/nodes')).status).toBe(403);
    expect((await apiRequest(as('ns-admin'), 'DELETE', `/api/v1/namespaces/${ns}`)).status).toBe(403);
    expect((await apiRequest(as('ns-admin'), 'GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions')).status).toBe(403);
  });
});
