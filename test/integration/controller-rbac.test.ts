// deploy/controller/rbac.yaml is enough, and no more than enough: the controller runs in-process
// with the kubevm-controller ServiceAccount's token (nothing else) through a VM's whole lifecycle
// (create, instancetype snapshot, PVC check, Start/Stop requests, Halted → Start, deletion) and no
// request is refused; SubjectAccessReviews show the Lease rights and a few rights it must not have.
// Needs KUBECONFIG of a cluster admin (or ${KUBEVM_STATE:-/var/lib/kubevm-local}/env); fails,
// never skips, when no API server is reachable.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { HttpMethod } from '@kubernetes/client-node';
import { KubeClient, KubeConfig, coreResources, isAlreadyExists } from '../../runtime/kube.js';
import { MANAGED_KINDS } from '../../operator/managed-kinds.js';
import type { KubeObject, ResourceDescriptor } from '../../runtime/kube.js';
import { silentLogger } from '../../runtime/logging.js';
import { restClientRequests } from '../../runtime/metrics.js';
import { ControllerManager } from '../../controller/manager.js';
import type { VirtualMachine, VirtualMachineInstance } from '../../controller/api.js';
import { vmResource } from '../../controller/vm/controller.js';
import { vmiResource } from '../../controller/vmi/controller.js';
import { clusterClient, useLocalClusterKubeconfig, createTestNamespace, requireCluster, requireNoInstalledController } from './runtime-support.js';
import { eventually } from '../support/eventually.js';
import { deleteNamespaceWithoutController } from './kubevm-namespace.js';

jest.setTimeout(120_000);

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

useLocalClusterKubeconfig();

const byKind: Record<string, ResourceDescriptor> = MANAGED_KINDS;
const instancetypes: ResourceDescriptor = { group: 'instancetype.kubevirt.io', version: 'v1beta1', resource: 'virtualmachineinstancetypes', kind: 'VirtualMachineInstancetype', namespaced: true };
const SERVICE_ACCOUNT = 'system:serviceaccount:kubevirt:kubevm-controller';

let admin: KubeClient;
let asController: KubeClient;
let namespace: string;
let manager: ControllerManager | undefined;

async function applyFile(path: string): Promise<void> {
  for (const doc of parseAllDocuments(readFileSync(path, 'utf8'))) {
    const obj = doc.toJS() as KubeObject | null;
    if (!obj?.kind || !obj.metadata?.name) continue;
    const descriptor = byKind[obj.kind];
    if (!descriptor) throw new Error(`${path}: no descriptor for kind ${obj.kind}`);
    await admin.resource(descriptor).patch(obj.metadata.name, obj.metadata.namespace, obj, 'apply', { fieldManager: 'kubevm-controller-test', force: true });
  }
}

async function serviceAccountClient(): Promise<KubeClient> {
  const answer = (await admin.request(HttpMethod.POST, '/api/v1/namespaces/kubevirt/serviceaccounts/kubevm-controller/token', {
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } },
  })) as { status?: { token?: string } };
  const token = answer.status?.token;
  if (!token) throw new Error('no token for the kubevm-controller ServiceAccount');
  const cluster = admin.kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error('admin kubeconfig has no cluster');
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ ...cluster, name: 'cluster' }],
    users: [{ name: 'kubevm-controller', token }],
    contexts: [{ name: 'controller', cluster: 'cluster', user: 'kubevm-controller' }],
    currentContext: 'controller',
  });
  return new KubeClient(kubeConfig);
}

async function allowed(verb: string, group: string, resource: string, options: { namespace?: string; name?: string; subresource?: string } = {}): Promise<boolean> {
  const review = (await admin.request(HttpMethod.POST, '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
    body: {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: {
        user: SERVICE_ACCOUNT,
        groups: ['system:serviceaccounts', 'system:serviceaccounts:kubevirt', 'system:authenticated'],
        resourceAttributes: { verb, group, resource, ...options },
      },
    },
  })) as { status?: { allowed?: boolean } };
  return review.status?.allowed === true;
}

async function forbiddenCount(): Promise<number> {
  const metric = await restClientRequests.get();
  return metric.values.filter((value) => String(value.labels['code']) === '403').reduce((sum, value) => sum + value.value, 0);
}

beforeAll(async () => {
  admin = clusterClient();
  await requireCluster(admin);
  await requireNoInstalledController(admin);
  for (const file of readdirSync(join(repoRoot, 'crds')).filter((name) => name.endsWith('.yaml'))) await applyFile(join(repoRoot, 'crds', file));
  try {
    await admin.resource<KubeObject>(coreResources.namespaces).create({ metadata: { name: 'kubevirt' } });
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
  await applyFile(join(repoRoot, 'deploy', 'controller', 'rbac.yaml'));
  namespace = await createTestNamespace(admin, 'kubevm-ctl-rbac');
  asController = await serviceAccountClient();
  // RBAC changes reach the authorizer's cache within moments.
  await eventually('the ClusterRole to take effect', 30_000, () => allowed('list', 'kubevirt.io', 'virtualmachines'));
});

afterAll(async () => {
  await manager?.stop();
  if (namespace) await deleteNamespaceWithoutController(admin, namespace);
  asController?.close();
  admin?.close();
});

describe('the controller with exactly deploy/controller/rbac.yaml', () => {
  it('runs a VM through its lifecycle without a single refused request', async () => {
    const refusedBefore = await forbiddenCount();
    manager = new ControllerManager(
      asController,
      {
        launcherImage: 'kubevm/launcher:rbac-test',
        launcherImagePullPolicy: 'IfNotPresent',
        useEmulation: false,
        namespace: 'kubevirt',
        leaseName: 'kubevm-controller',
        // The Lease rights are checked below by review, so this test never competes with an
        // installed controller for the real Lease.
        leaderElection: false,
        identity: 'rbac-test',
        vmWorkers: 1,
        vmiWorkers: 1,
        watchNamespace: namespace,
      },
      silentLogger,
    );
    manager.start();
    await eventually('informers to sync as the ServiceAccount', 30_000, () => manager?.hasSynced() ?? false);

    const vms = admin.resource<VirtualMachine>(vmResource);
    const vmis = admin.resource<VirtualMachineInstance>(vmiResource);
    await admin.resource<KubeObject>(instancetypes).create({
      apiVersion: 'instancetype.kubevirt.io/v1beta1',
      kind: 'VirtualMachineInstancetype',
      metadata: { name: 'tiny', namespace },
      spec: { cpu: { guest: 1 }, memory: { guest: '128Mi' } },
    } as KubeObject);
    await admin.resource<KubeObject>(coreResources.persistentVolumeClaims).create({
      metadata: { name: 'data', namespace },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    } as KubeObject);
    await vms.create({
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachine',
      metadata: { name: 'rbac', namespace },
      spec: {
        runStrategy: 'Halted',
        instancetype: { name: 'tiny', kind: 'VirtualMachineInstancetype' },
        template: {
          spec: {
            schedulerName: 'kubevm-integration-no-scheduler',
            domain: { devices: { disks: [{ name: 'data', disk: {} }] } },
            volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }],
          },
        },
      },
    });
    await eventually('Stopped', 30_000, async () => (await vms.get('rbac', namespace)).status?.printableStatus === 'Stopped');
    // Start on a Halted VM: the controller patches spec.runStrategy, creates the VMI, the pod.
    await vms.patchStatus('rbac', namespace, { status: { stateChangeRequests: [{ action: 'Start' }] } });
    await eventually('VMI Scheduling', 30_000, async () => (await vmis.find('rbac', namespace))?.status?.phase === 'Scheduling');
    expect((await vms.get('rbac', namespace)).spec.runStrategy).toBe('Always');
    // Stop for good: Halted deletes the VMI.
    await vms.patch('rbac', namespace, { spec: { runStrategy: 'Halted' } });
    await eventually('VMI deleted', 30_000, async () => (await vmis.find('rbac', namespace)) === undefined);
    await eventually('Stopped again', 30_000, async () => (await vms.get('rbac', namespace)).status?.printableStatus === 'Stopped');

    expect((await forbiddenCount()) - refusedBefore).toBe(0);
  });

  it('may use its own Lease and nothing it does not need', async () => {
    expect(await allowed('get', 'coordination.k8s.io', 'leases', { namespace: 'kubevirt', name: 'kubevm-controller' })).toBe(true);
    expect(await allowed('update', 'coordination.k8s.io', 'leases', { namespace: 'kubevirt', name: 'kubevm-controller' })).toBe(true);
    expect(await allowed('create', 'coordination.k8s.io', 'leases', { namespace: 'kubevirt' })).toBe(true);
    expect(await allowed('update', 'coordination.k8s.io', 'leases', { namespace: 'kubevirt', name: 'someone-else' })).toBe(false);
    expect(await allowed('update', 'coordination.k8s.io', 'leases', { namespace: 'default', name: 'kubevm-controller' })).toBe(false);
    // No Secret at all: the launchers' input comes from their node handlers.
    for (const verb of ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete']) expect(await allowed(verb, '', 'secrets', { namespace })).toBe(false);
    expect(await allowed('update', '', 'pods', { namespace })).toBe(false);
    expect(await allowed('patch', '', 'pods', { namespace })).toBe(false);
    expect(await allowed('create', '', 'pods', { namespace, subresource: 'exec' })).toBe(false);
    expect(await allowed('update', 'kubevirt.io', 'virtualmachineinstances', { namespace })).toBe(false);
    expect(await allowed('delete', 'kubevirt.io', 'virtualmachines', { namespace })).toBe(false);
  });
});
