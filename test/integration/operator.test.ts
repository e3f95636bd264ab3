// The operator against the real API server (make cluster-up-cp is enough: the control plane with
// its controller-manager, so RBAC aggregation and garbage collection are real; without a kubelet
// the component pods never run, and the status must say so honestly). The operator runs
// in-process, as the controller suites run the controller:
//   KubeVirt CR → every rendered object exists, finalizer set, status with KubeVirt's conditions;
//   a deleted Deployment and an edited ClusterRole are restored within seconds;
//   users bound to view/edit/admin/migrate get KubeVirt's answers (SubjectAccessReviews);
//   deleting the CR is refused while a VM exists (BlockUninstallIfWorkloadsExist), then removes
//   everything the operator created, and nothing else.
// Fails, never skips, when no API server is reachable.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { HttpMethod } from '@kubernetes/client-node';
import type { KubeClient, KubeObject, ResourceDescriptor } from '../../runtime/kube.js';
import { coreResources, isAlreadyExists, objectKey } from '../../runtime/kube.js';
import { jsonEqual } from '../../runtime/json.js';
import { silentLogger } from '../../runtime/logging.js';
import { FIELD_MANAGER, KUBEVIRT_FINALIZER, MANAGED_SELECTOR, type Manifest } from '../../operator/install.js';
import { MANAGED_KINDS, isManagedKind } from '../../operator/managed-kinds.js';
import { OperatorManager } from '../../operator/manager.js';
import type { KubeVirtCR } from '../../operator/reconciler.js';
import { installTarget, kubevirtResource } from '../../operator/reconciler.js';
import { renderKubeVirtCrd } from '../../operator/render/crds.js';
import { renderInstallation } from '../../operator/render/index.js';
import { API_SERVER_TLS_SECRET } from '../../operator/render/api-server.js';
import type { SecretObject } from '../../operator/pki.js';
import { currentPki } from '../../operator/pki.js';
import { eventually } from '../support/eventually.js';
import { clusterClient, createTestNamespace, deleteNamespace, requireCluster, useLocalClusterKubeconfig } from './runtime-support.js';

jest.setTimeout(180_000);
/** A ClusterRole with kubevm's labels that the operator did not create: an uninstall leaves it. */
const UNRELATED_CLUSTER_ROLE = 'kubevm-op-test-unrelated';
useLocalClusterKubeconfig();

// No image of this version exists anywhere: on a cluster with kubelets the component pods fail at
// once (ErrImageNeverPull) instead of hanging in a pull that the uninstall would wait for (the
// kubelet cannot stop a pod while its image pull runs: about 50 s from the second node's netns).
const defaults = { version: '0.1.0-optest', registry: 'kubevm', pullPolicy: 'Never' as const, webhookClientAuth: 'optional' as const };
const vms: ResourceDescriptor = { group: 'kubevirt.io', version: 'v1', resource: 'virtualmachines', kind: 'VirtualMachine', namespaced: true };
const DRIFT_DEADLINE_MS = 10_000;

let admin: KubeClient;
let namespace: string;
let workloadNamespace: string;
let manager: OperatorManager | undefined;

/** What the operator should have applied: the rendering, with the certificate Secrets as they are in the cluster. */
async function rendered(kv: KubeVirtCR): Promise<Manifest[]> {
  const target = installTarget(kv, kv.spec, defaults);
  const secrets = admin.resource<SecretObject>(MANAGED_KINDS.Secret);
  const pki = await currentPki((name) => secrets.find(name, namespace), target);
  return renderInstallation(kv.spec, target, pki);
}

function clientFor(manifest: Manifest) {
  if (!isManagedKind(manifest.kind)) throw new Error(`unexpected kind ${manifest.kind}`);
  return admin.resource<KubeObject>(MANAGED_KINDS[manifest.kind]);
}

async function getKubeVirt(): Promise<KubeVirtCR | undefined> {
  return admin.resource<KubeVirtCR>(kubevirtResource).find('kubevirt', namespace);
}

/** The operator's objects currently in the cluster, by kind/namespace/name. */
async function managedObjects(): Promise<string[]> {
  const out: string[] = [];
  for (const descriptor of Object.values(MANAGED_KINDS)) {
    const list = await admin.resource<KubeObject>(descriptor).list({ labelSelector: MANAGED_SELECTOR });
    for (const item of list.items) out.push(`${descriptor.kind}/${item.metadata?.namespace ?? ''}/${item.metadata?.name}`);
  }
  return out.sort();
}

async function allowed(user: string, verb: string, group: string, resource: string, subresource?: string): Promise<boolean> {
  const review = (await admin.request(HttpMethod.POST, '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
    body: {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: { user, groups: ['system:authenticated'], resourceAttributes: { namespace: workloadNamespace, verb, group, resource, ...(subresource ? { subresource } : {}) } },
    },
  })) as { status?: { allowed?: boolean } };
  return review.status?.allowed === true;
}

beforeAll(async () => {
  admin = clusterClient();
  await requireCluster(admin);
  const installed = await admin.resource<KubeObject>(MANAGED_KINDS.Deployment).list({ labelSelector: MANAGED_SELECTOR });
  if (installed.items.length > 0) {
    throw new Error(`kubevm is installed by an operator (${installed.items.map((d) => d.metadata?.name).join(', ')}): run the integration suites before installing it`);
  }
  const crd = renderKubeVirtCrd();
  await admin.resource<KubeObject>(MANAGED_KINDS.CustomResourceDefinition).patch(crd.metadata.name, undefined, crd, 'apply', { fieldManager: 'kubevm-operator-test', force: true });
  await eventually('the KubeVirt CRD to be served', 30_000, async () => {
    await admin.resource(kubevirtResource).list({ namespace: 'default', limit: 1 });
    return true;
  });
  // Uninstall is refused while any VM or VMI exists in the cluster (KubeVirt's rule): start without any.
  // Suites that ran before may still be deleting their namespaces (and the VMs in them): wait for
  // those to go; anything else left is an error.
  const namespaceOf = (item: KubeObject) => admin.resource<KubeObject>(coreResources.namespaces).find(item.metadata?.namespace ?? '');
  for (const resource of ['virtualmachines', 'virtualmachineinstances']) {
    const list = async () => (await admin.resource<KubeObject>({ ...vms, resource }).list().catch(() => ({ items: [] as KubeObject[] }))).items;
    const staying: KubeObject[] = [];
    for (const item of await list()) {
      if (!item.metadata?.deletionTimestamp && !(await namespaceOf(item))?.metadata?.deletionTimestamp) staying.push(item);
    }
    if (staying.length > 0) throw new Error(`the cluster has ${resource} left by other suites (${staying.map((item) => objectKey(item)).join(', ')}): this suite needs a cluster without any`);
    await eventually(`the ${resource} of deleted namespaces to go`, 150_000, async () => (await list()).length === 0);
  }
  namespace = await createTestNamespace(admin, 'kubevm-op');
  workloadNamespace = await createTestNamespace(admin, 'kubevm-op-vms');
  manager = new OperatorManager(admin, { namespace, defaults, identity: 'operator-test', leaderElection: false, leaseName: 'kubevm-operator' }, silentLogger);
  manager.start();
  await eventually('the operator\'s informers to sync', 30_000, () => manager?.hasSynced() ?? false);
});

afterAll(async () => {
  await manager?.stop();
  // After a failure midway: what the operator left must not stay behind (its finalizer would hold the namespace).
  const left = await getKubeVirt().catch(() => undefined);
  if (left) await admin.resource<KubeVirtCR>(kubevirtResource).patch('kubevirt', namespace, { metadata: { finalizers: [] } }).catch(() => undefined);
  for (const descriptor of Object.values(MANAGED_KINDS)) {
    const list = await admin.resource<KubeObject>(descriptor).list({ labelSelector: MANAGED_SELECTOR }).catch(() => ({ items: [] as KubeObject[] }));
    for (const item of list.items) await admin.resource<KubeObject>(descriptor).delete(item.metadata?.name ?? '', item.metadata?.namespace).catch(() => undefined);
  }
  // The uninstall test's own ClusterRole, also when it failed midway (the Helm suite checks that nothing named kubevm is left).
  await admin.resource<KubeObject>(MANAGED_KINDS.ClusterRole).delete(UNRELATED_CLUSTER_ROLE).catch(() => undefined);
  for (const name of [workloadNamespace, namespace]) if (name) await deleteNamespace(admin, name);
  admin?.close();
});

describe('the operator', () => {
  let kv: KubeVirtCR;

  it('installs everything the KubeVirt CR renders and reports the rollout honestly', async () => {
    await admin.resource<KubeVirtCR>(kubevirtResource).create({
      apiVersion: 'kubevirt.io/v1',
      kind: 'KubeVirt',
      metadata: { name: 'kubevirt', namespace },
      spec: { uninstallStrategy: 'BlockUninstallIfWorkloadsExist', configuration: { developerConfiguration: { useEmulation: true } } },
    });
    await eventually('the first status', 60_000, async () => (await getKubeVirt())?.status?.observedGeneration !== undefined);
    kv = (await getKubeVirt()) as KubeVirtCR;
    expect(kv.metadata?.finalizers).toContain(KUBEVIRT_FINALIZER);
    const desired = await rendered(kv);
    for (const manifest of desired) {
      const live = (await clientFor(manifest).find(manifest.metadata.name, manifest.metadata.namespace)) as (KubeObject & { metadata?: { managedFields?: Array<{ manager?: string; operation?: string }> } }) | undefined;
      expect(live?.metadata?.managedFields?.some((entry: { manager?: string; operation?: string }) => entry.manager === FIELD_MANAGER && entry.operation === 'Apply')).toBe(true);
    }
    expect(await managedObjects()).toEqual(desired.map((m) => `${m.kind}/${m.metadata.namespace ?? ''}/${m.metadata.name}`).sort());

    const status = kv.status ?? {};
    expect(status.observedGeneration).toBe(kv.metadata?.generation);
    expect(status).toMatchObject({ operatorVersion: '0.1.0-optest', targetKubeVirtVersion: '0.1.0-optest', targetKubeVirtRegistry: 'kubevm' });
    const available = status.conditions?.find((c) => c.type === 'Available');
    if (status.phase === 'Deployed') {
      expect(available).toMatchObject({ status: 'True', reason: 'AllComponentsReady' });
    } else {
      // A control plane without a kubelet runs no pod: the status says which component waits and why.
      expect(status.phase).toBe('Deploying');
      expect(available).toMatchObject({ status: 'False', reason: 'DeploymentInProgress' });
      expect(available?.message).toContain('kubevm-controller');
      expect(status.conditions?.find((c) => c.type === 'Degraded')).toMatchObject({ status: 'False' });
      expect(status.conditions?.find((c) => c.type === 'Created')).toMatchObject({ status: 'True', reason: 'AllResourcesCreated' });
    }
  });

  it('makes the kube-apiserver trust the api-server through its own CA', async () => {
    const secret = await admin.resource<SecretObject>(MANAGED_KINDS.Secret).get(API_SERVER_TLS_SECRET, namespace);
    const pem = (key: string): string => Buffer.from(secret.data?.[key] ?? '', 'base64').toString();
    const serving = new X509Certificate(pem('tls.crt'));
    const ca = new X509Certificate(pem('ca.crt'));
    expect(serving.checkIssued(ca) && serving.verify(ca.publicKey)).toBe(true);
    expect(serving.subjectAltName).toContain(`DNS:kubevm-api-server.${namespace}.svc`);
    for (const version of ['v1', 'v1alpha3']) {
      const apiService = (await admin.resource<KubeObject & { spec?: { caBundle?: string; service?: { namespace?: string } } }>(MANAGED_KINDS.APIService).get(`${version}.subresources.kubevirt.io`)).spec;
      expect(Buffer.from(apiService?.caBundle ?? '', 'base64').toString()).toBe(pem('ca.crt'));
      expect(apiService?.service?.namespace).toBe(namespace);
    }
    // The CA's key never leaves the operator's namespace, and a second pass keeps the same certificates.
    const before = secret.metadata?.resourceVersion;
    manager?.resync();
    await eventually('a resync to settle', 10_000, () => manager?.idle() ?? false);
    expect((await admin.resource<SecretObject>(MANAGED_KINDS.Secret).get(API_SERVER_TLS_SECRET, namespace)).metadata?.resourceVersion).toBe(before);
  });

  it('restores a deleted Deployment within seconds', async () => {
    const deployments = admin.resource<KubeObject>(MANAGED_KINDS.Deployment);
    const before = await deployments.get('kubevm-controller', namespace);
    await deployments.delete('kubevm-controller', namespace);
    const started = Date.now();
    await eventually('the deleted Deployment to be re-created', DRIFT_DEADLINE_MS, async () => {
      const now = await deployments.find('kubevm-controller', namespace);
      return now !== undefined && now.metadata?.uid !== before.metadata?.uid && !now.metadata?.deletionTimestamp;
    });
    expect(Date.now() - started).toBeLessThan(DRIFT_DEADLINE_MS);
  });

  it('restores an edited ClusterRole within seconds', async () => {
    const clusterRoles = admin.resource<KubeObject & { rules?: unknown[] }>(MANAGED_KINDS.ClusterRole);
    const desired = (await rendered(kv)).find((m) => m.kind === 'ClusterRole' && m.metadata.name === 'kubevm-controller');
    await clusterRoles.patch('kubevm-controller', undefined, { rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }] }, 'merge', { fieldManager: 'someone-else' });
    expect((await clusterRoles.get('kubevm-controller')).rules).toEqual([{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }]);
    // Compared as JSON values: the API server writes a rule's keys in its own order.
    await eventually('the edited ClusterRole to be restored', DRIFT_DEADLINE_MS, async () => jsonEqual((await clusterRoles.get('kubevm-controller')).rules, desired?.['rules']));
  });

  it('gives users bound to view, edit, admin and migrate exactly KubeVirt\'s answers', async () => {
    const rbac = (resource: string): ResourceDescriptor => ({ group: 'rbac.authorization.k8s.io', version: 'v1', resource, kind: resource === 'rolebindings' ? 'RoleBinding' : 'ClusterRole', namespaced: resource === 'rolebindings' });
    for (const [user, role] of [['view-user', 'view'], ['edit-user', 'edit'], ['admin-user', 'admin'], ['migrate-user', 'kubevirt.io:migrate']] as const) {
      try {
        await admin.resource<KubeObject>(rbac('rolebindings')).create({
          metadata: { name: user, namespace: workloadNamespace },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
          subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: user }],
        } as KubeObject);
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
      }
    }
    // verb, group, resource, subresource → view, edit, admin, migrate, (no binding)
    const matrix: Array<[string, string, string, string | undefined, boolean[]]> = [
      ['get', 'kubevirt.io', 'virtualmachines', undefined, [true, true, true, false, false]],
      ['list', 'kubevirt.io', 'virtualmachineinstances', undefined, [true, true, true, false, false]],
      ['create', 'kubevirt.io', 'virtualmachines', undefined, [false, true, true, false, false]],
      ['delete', 'kubevirt.io', 'virtualmachines', undefined, [false, true, true, false, false]],
      ['deletecollection', 'kubevirt.io', 'virtualmachines', undefined, [false, false, true, false, false]],
      ['update', 'subresources.kubevirt.io', 'virtualmachines', 'start', [false, true, true, false, false]],
      ['update', 'subresources.kubevirt.io', 'virtualmachines', 'stop', [false, true, true, false, false]],
      ['update', 'subresources.kubevirt.io', 'virtualmachineinstances', 'pause', [false, true, true, false, false]],
      ['get', 'subresources.kubevirt.io', 'virtualmachineinstances', 'console', [false, true, true, false, false]],
      ['get', 'subresources.kubevirt.io', 'virtualmachineinstances', 'guestosinfo', [true, true, true, false, false]],
      // Since KubeVirt v1.5 namespace admins may only read migrations; migrating is granted explicitly.
      ['update', 'subresources.kubevirt.io', 'virtualmachines', 'migrate', [false, false, false, true, false]],
      ['create', 'kubevirt.io', 'virtualmachineinstancemigrations', undefined, [false, false, false, true, false]],
      ['get', 'kubevirt.io', 'virtualmachineinstancemigrations', undefined, [true, true, true, true, false]],
      // kubevirt.io:default: every authenticated user.
      ['get', 'subresources.kubevirt.io', 'version', undefined, [true, true, true, true, true]],
      ['list', 'kubevirt.io', 'kubevirts', undefined, [true, true, true, true, true]],
      // instancetype.kubevirt.io:view: cluster-wide instancetypes for everyone.
      ['list', 'instancetype.kubevirt.io', 'virtualmachineclusterinstancetypes', undefined, [true, true, true, true, true]],
    ];
    const users = ['view-user', 'edit-user', 'admin-user', 'migrate-user', 'nobody'];
    const expected = matrix.map(([verb, group, resource, sub, answers]) => `${verb} ${group}/${resource}${sub ? `/${sub}` : ''}: ${answers.join(' ')}`);
    const actual = async (): Promise<string[]> =>
      Promise.all(matrix.map(async ([verb, group, resource, sub]) => `${verb} ${group}/${resource}${sub ? `/${sub}` : ''}: ${(await Promise.all(users.map((user) => allowed(user, verb, group, resource, sub)))).join(' ')}`));
    // Aggregation into admin/edit/view is the controller-manager's work and takes a moment.
    await eventually('the aggregated roles to take effect', 30_000, async () => JSON.stringify(await actual()) === JSON.stringify(expected)).catch(() => undefined);
    expect(await actual()).toEqual(expected);
  });

  it('refuses to uninstall while a VM exists, then removes everything it created and nothing else', async () => {
    const unrelated = { metadata: { name: UNRELATED_CLUSTER_ROLE, labels: { 'app.kubernetes.io/part-of': 'kubevm' } }, rules: [] } as KubeObject;
    const clusterRoles = admin.resource<KubeObject>(MANAGED_KINDS.ClusterRole);
    await clusterRoles.create(unrelated).catch((err: unknown) => {
      if (!isAlreadyExists(err)) throw err;
    });
    await admin.resource<KubeObject>(vms).create({
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachine',
      metadata: { name: 'keeps-kubevm', namespace: workloadNamespace },
      spec: { runStrategy: 'Halted', template: { spec: { domain: { devices: {} } } } },
    } as KubeObject);
    await admin.resource<KubeVirtCR>(kubevirtResource).delete('kubevirt', namespace);
    await eventually('the uninstall to be refused', 30_000, async () => (await getKubeVirt())?.status?.conditions?.some((c) => c.type === 'Degraded' && c.reason === 'DeletionBlocked') ?? false);
    const blocked = await getKubeVirt();
    expect(blocked?.status?.phase).toBe('Deleting');
    expect(blocked?.status?.conditions?.find((c) => c.type === 'Degraded')?.message).toContain('Virtual Machines');
    expect(await managedObjects()).toHaveLength((await rendered(kv)).length);

    await admin.resource<KubeObject>(vms).delete('keeps-kubevm', workloadNamespace);
    let last: KubeVirtCR | undefined;
    // The status names what is left: objects, then the node handler pods the operator waits for.
    await eventually(() => `the KubeVirt CR to be released (status: ${JSON.stringify(last?.status?.conditions)})`, 120_000, async () => (last = await getKubeVirt()) === undefined);
    let left: string[] = [];
    await eventually(() => `every managed object to be gone (left: ${left.join(', ')})`, 60_000, async () => {
      left = await managedObjects();
      return left.length === 0;
    });
    expect(await clusterRoles.find(UNRELATED_CLUSTER_ROLE)).toBeDefined();
    expect(await admin.resource<KubeObject>(MANAGED_KINDS.CustomResourceDefinition).find('kubevirts.kubevirt.io')).toBeDefined();
    expect(await admin.resource<KubeObject>(coreResources.namespaces).find(namespace)).toBeDefined();
  }, 300_000);
});
