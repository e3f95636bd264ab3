// The controller against the real kube-apiserver (control plane only is enough: without a
// scheduler or kubelet the launcher pod stays Pending, so the VMI stays Scheduling). Started
// in-process, scoped to a throwaway namespace. Shows: VM → VMI → exactly one launcher pod of the
// right shape; VM deletion removes the VMI and pod; Halted creates nothing; Start/Stop state change
// requests; a restarted controller creates no duplicate; two replicas with leader election, one
// acting; a no-op resync writes nothing; a missing PVC is reported and recovered from; instancetype
// snapshots and conflicts.
// Needs KUBECONFIG (or ${KUBEVM_STATE:-/var/lib/kubevm-local}/env from make cluster-up-cp); fails,
// never skips, when no API server is reachable.
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import type { KubeClient, KubeObject, ResourceDescriptor } from '../../runtime/kube.js';
import { coreResources, isNotFound } from '../../runtime/kube.js';
import { silentLogger } from '../../runtime/logging.js';
import { restClientRequests } from '../../runtime/metrics.js';
import { ControllerManager } from '../../controller/manager.js';
import type { ControllerConfig } from '../../controller/manager.js';
import type { VirtualMachine, VirtualMachineInstance } from '../../controller/api.js';
import { VM_FINALIZER, vmResource } from '../../controller/vm/controller.js';
import { OUTDATED_LAUNCHER_IMAGE_LABEL, VMI_FINALIZER, vmiResource } from '../../controller/vmi/controller.js';
import { launcherPodName, launcherResources } from '../../controller/vmi/launcher-pod.js';
import { parseQuantity } from '../../runtime/quantity.js';
import { controllerRevisions } from '../../controller/vm/revisions.js';
import { applyKubevmCrds, clusterClient, useLocalClusterKubeconfig, createTestNamespace, requireCluster, requireNoInstalledController } from './runtime-support.js';
import { eventually } from '../support/eventually.js';
import { deleteNamespaceWithoutController } from './kubevm-namespace.js';

jest.setTimeout(120_000);


useLocalClusterKubeconfig();

const clusterInstancetypes: ResourceDescriptor = {
  group: 'instancetype.kubevirt.io',
  version: 'v1beta1',
  resource: 'virtualmachineclusterinstancetypes',
  kind: 'VirtualMachineClusterInstancetype',
  namespaced: false,
};

type Pod = V1Pod & KubeObject;
let client: KubeClient;
let namespace: string;
const managers: ControllerManager[] = [];

function config(overrides: Partial<ControllerConfig> = {}): ControllerConfig {
  return {
    launcherImage: 'kubevm/launcher:integration',
    launcherImagePullPolicy: 'IfNotPresent',
    useEmulation: true,
    namespace,
    leaseName: 'kubevm-controller-it',
    leaderElection: false,
    identity: 'controller-a',
    vmWorkers: 2,
    vmiWorkers: 2,
    watchNamespace: namespace,
    ...overrides,
  };
}

async function startManager(overrides: Partial<ControllerConfig> = {}): Promise<ControllerManager> {
  const manager = new ControllerManager(client, config(overrides), silentLogger);
  managers.push(manager);
  manager.start();
  await eventually('informers to sync', 30_000, () => manager.hasSynced());
  return manager;
}

async function stopManager(manager: ControllerManager): Promise<void> {
  const index = managers.indexOf(manager);
  if (index !== -1) managers.splice(index, 1);
  await manager.stop();
}

function vmManifest(name: string, spec: Partial<VirtualMachine['spec']> = {}): VirtualMachine {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name, namespace },
    spec: {
      runStrategy: 'Always',
      template: {
        metadata: { labels: { 'kubevirt.io/vm': name } },
        spec: {
          // No scheduler serves this name, so on a full cluster too the launcher pod stays Pending,
          // unbound and unpulled: these tests are about the controller, not the node.
          schedulerName: 'kubevm-integration-no-scheduler',
          domain: { memory: { guest: '128Mi' }, devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }] } },
          volumes: [{ name: 'root', containerDisk: { image: 'kubevm/test-containerdisk:latest' } }],
        },
      },
      ...spec,
    },
  };
}

const vms = () => client.resource<VirtualMachine>(vmResource);
const vmis = () => client.resource<VirtualMachineInstance>(vmiResource);
const pods = () => client.resource<Pod>(coreResources.pods);

async function launcherPods(): Promise<Pod[]> {
  return (await pods().list({ namespace, labelSelector: 'kubevirt.io=virt-launcher' })).items;
}

async function vmStatus(name: string): Promise<VirtualMachine['status']> {
  return (await vms().get(name, namespace)).status;
}

/** Sum of the in-process client's requests matching the filter (kubevirt_rest_client_requests_total). */
async function requestCount(filter: (labels: Record<string, string | number>) => boolean): Promise<number> {
  const metric = await restClientRequests.get();
  return metric.values.filter((value) => filter(value.labels as Record<string, string | number>)).reduce((sum, value) => sum + value.value, 0);
}
const WRITE_VERBS = new Set(['CREATE', 'UPDATE', 'PATCH', 'DELETE']);
/** Writes by the controller to kubevm's objects and pods (events and the Lease are bookkeeping). */
const writesTo = (resource?: string) => (labels: Record<string, string | number>) =>
  WRITE_VERBS.has(String(labels['verb'])) && (resource ? labels['resource'] === resource : !['events', 'leases'].includes(String(labels['resource'])));

async function settle(manager: ControllerManager, quietMs = 1_500): Promise<void> {
  // Idle for a while: no key queued or in flight, and no event arriving to enqueue one.
  let quietSince = Date.now();
  await eventually('the controller to settle', 30_000, () => {
    if (!manager.idle()) quietSince = Date.now();
    return Date.now() - quietSince >= quietMs;
  });
}

beforeAll(async () => {
  client = clusterClient();
  await requireCluster(client);
  await requireNoInstalledController(client);
  await applyKubevmCrds(client, 'kubevm-controller-test');
  namespace = await createTestNamespace(client, 'kubevm-ctl-it');
});

afterEach(async () => {
  for (const manager of managers.splice(0)) await manager.stop();
});

afterAll(async () => {
  if (namespace) await deleteNamespaceWithoutController(client, namespace);
  client?.close();
});

/** A finalizer of the test's own that keeps a launcher pod in the API (as a kubelet still stopping it would). */
const HOLD = 'kubevm.io/test-hold';
async function holdLauncherPod(vmName: string): Promise<Pod> {
  let pod: Pod | undefined;
  await eventually(`${vmName}'s launcher pod`, 30_000, async () => (pod = (await launcherPods()).find((p) => p.metadata?.annotations?.['kubevirt.io/domain'] === vmName)) !== undefined);
  return pods().patch(pod?.metadata?.name ?? '', namespace, { metadata: { finalizers: [HOLD] } });
}
async function releaseLauncherPod(pod: Pod): Promise<void> {
  await pods().patch(pod.metadata?.name ?? '', namespace, { metadata: { finalizers: null } });
}

describe('VirtualMachine → VMI → launcher pod', () => {
  it('runStrategy Always creates the VMI and exactly one launcher pod of the right shape, with at most the expected writes', async () => {
    const manager = await startManager();
    const vmiWritesBefore = await requestCount((l) => l['resource'] === 'virtualmachineinstances' && (l['verb'] === 'UPDATE' || l['verb'] === 'PATCH'));
    const podWritesBefore = await requestCount((l) => l['resource'] === 'pods' && (l['verb'] === 'UPDATE' || l['verb'] === 'PATCH'));
    const conflictsBefore = await requestCount((l) => String(l['code']) === '409');
    await vms().create(vmManifest('always'));

    await eventually('VMI Scheduling', 30_000, async () => (await vmis().find('always', namespace))?.status?.phase === 'Scheduling');
    const vm = await vms().get('always', namespace);
    const vmi = await vmis().get('always', namespace);
    expect(vmi.metadata?.ownerReferences).toEqual([
      { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', name: 'always', uid: vm.metadata?.uid, controller: true, blockOwnerDeletion: true },
    ]);
    expect(vmi.spec.domain.firmware?.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

    await settle(manager);
    const launchers = await launcherPods();
    expect(launchers).toHaveLength(1);
    const pod = launchers[0]!;
    expect(pod.metadata?.name).toBe(launcherPodName(vmi));
    expect(pod.metadata?.labels?.['kubevirt.io/created-by']).toBe(vmi.metadata?.uid);
    expect(pod.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'VirtualMachineInstance', uid: vmi.metadata?.uid, controller: true });
    expect(pod.spec?.automountServiceAccountToken).toBe(false);
    // The sizing itself is unit-tested (controller/vmi/launcher-pod.test.ts); here: the pod carries it.
    const requests = pod.spec?.containers[0]?.resources?.requests ?? {};
    expect(requests).toEqual(launcherResources(vmi, manager.launcherConfig()).requests);
    expect(parseQuantity(requests['memory'] ?? '0')).toBeGreaterThan(parseQuantity('128Mi'));
    expect(requests).toMatchObject({ 'ephemeral-storage': '50Mi', cpu: '100m' });
    expect(pod.spec?.containers[0]?.securityContext?.capabilities).toEqual({ drop: ['ALL'] });
    // The VMI reaches the launcher from its node handler, not in an annotation nor a Secret: the
    // pod names only the VMI's uid (runtime/contracts/launcher-input.ts).
    expect(pod.metadata?.annotations).toEqual({ 'kubevirt.io/domain': vmi.metadata?.name });
    expect(pod.spec?.containers[0]?.env).toContainEqual({ name: 'KUBEVM_VMI_UID', value: vmi.metadata?.uid });
    expect(pod.spec?.volumes?.filter((v) => v.secret)).toEqual([]);

    const status = await vmStatus('always');
    expect(status?.printableStatus).toBe('Starting');
    expect(status?.created).toBe(true);
    expect(status?.ready).toBe(false);
    expect(status?.observedGeneration).toBe(vm.metadata?.generation);
    expect(status?.runStrategy).toBe('Always');

    // Without a kubelet the VMI stays Scheduling: one controller write so far (of the ≤ 2 it makes
    // before the node handler's Running), and none to the pod after creating it.
    const vmiWrites = (await requestCount((l) => l['resource'] === 'virtualmachineinstances' && (l['verb'] === 'UPDATE' || l['verb'] === 'PATCH'))) - vmiWritesBefore;
    expect(vmiWrites).toBe(1);
    const podWrites = (await requestCount((l) => l['resource'] === 'pods' && (l['verb'] === 'UPDATE' || l['verb'] === 'PATCH'))) - podWritesBefore;
    expect(podWrites).toBe(0);
    // ...and no write computed from a cache that did not show our previous one yet.
    expect((await requestCount((l) => String(l['code']) === '409')) - conflictsBefore).toBe(0);

    // A no-op resync of every VM and VMI writes nothing at all.
    const writesBefore = await requestCount(writesTo());
    manager.resyncAll();
    await settle(manager);
    expect((await requestCount(writesTo())) - writesBefore).toBe(0);
  });

  it('deleting the VM removes its VMI and launcher pod', async () => {
    await startManager();
    await vms().create(vmManifest('doomed'));
    await eventually('launcher pod', 30_000, async () => (await launcherPods()).some((p) => p.metadata?.annotations?.['kubevirt.io/domain'] === 'doomed'));
    await vms().delete('doomed', namespace);
    await eventually('VMI gone', 60_000, async () => (await vmis().find('doomed', namespace)) === undefined);
    await eventually('pod gone', 60_000, async () => !(await launcherPods()).some((p) => p.metadata?.annotations?.['kubevirt.io/domain'] === 'doomed'));
  });

  it('deleting a VM deletes its VMI, and the VMI goes only when its launcher pod is gone, the VM after it', async () => {
    const manager = await startManager();
    await vms().create(vmManifest('ordered'));
    await eventually('the VM finalizer', 30_000, async () => (await vms().get('ordered', namespace)).metadata?.finalizers?.includes(VM_FINALIZER) === true);
    const pod = await holdLauncherPod('ordered');
    const vmi = await vmis().get('ordered', namespace);
    expect(vmi.metadata?.finalizers).toEqual([VMI_FINALIZER]);

    await vms().delete('ordered', namespace);
    // The pod is being deleted (the kubelet would be stopping QEMU): VMI and VM wait for it.
    await eventually('the launcher pod to be deleted', 30_000, async () => Boolean((await pods().get(pod.metadata?.name ?? '', namespace)).metadata?.deletionTimestamp));
    await settle(manager);
    expect((await vmis().get('ordered', namespace)).metadata?.deletionTimestamp).toBeTruthy();
    expect((await vms().get('ordered', namespace)).metadata?.deletionTimestamp).toBeTruthy();

    await releaseLauncherPod(pod);
    await eventually('the VMI to go after its pod', 30_000, async () => (await vmis().find('ordered', namespace)) === undefined);
    await eventually('the VM to go after its VMI', 30_000, async () => (await vms().find('ordered', namespace)) === undefined);
  });

  it('deleting a VM with propagationPolicy Orphan leaves its VMI and pod running', async () => {
    const manager = await startManager();
    await vms().create(vmManifest('orphaner'));
    await eventually('VMI Scheduling', 30_000, async () => (await vmis().find('orphaner', namespace))?.status?.phase === 'Scheduling');
    const vmi = await vmis().get('orphaner', namespace);
    await vms().delete('orphaner', namespace, { propagationPolicy: 'Orphan' });
    // The garbage collector removes its `orphan` finalizer only once it watches VMs. It looks for new
    // resources every 30 s, and the CRDs may be new: the operator suite uninstalls them, this one
    // applies them again. The VM may wait that long.
    await eventually('the VM to go', 90_000, async () => (await vms().find('orphaner', namespace)) === undefined);
    await settle(manager);
    const left = await vmis().get('orphaner', namespace);
    expect(left.metadata?.uid).toBe(vmi.metadata?.uid);
    expect(left.metadata?.deletionTimestamp).toBeUndefined();
    expect((await launcherPods()).filter((p) => p.metadata?.annotations?.['kubevirt.io/domain'] === 'orphaner')).toHaveLength(1);
    // A VMI without its VM is deleted as a VMI: it waits for its pod the same way.
    await vmis().delete('orphaner', namespace);
    await eventually('the orphaned VMI to go', 30_000, async () => (await vmis().find('orphaner', namespace)) === undefined);
  });

  it('runStrategy Halted creates nothing and reports Stopped', async () => {
    const manager = await startManager();
    await vms().create(vmManifest('halted', { runStrategy: 'Halted' }));
    await eventually('Stopped', 30_000, async () => (await vmStatus('halted'))?.printableStatus === 'Stopped');
    await settle(manager);
    expect(await vmis().find('halted', namespace)).toBeUndefined();
    expect((await vmStatus('halted'))?.created).toBe(false);
  });

  it('the deprecated running: false is Halted, running: true is Always', async () => {
    await startManager();
    const off = vmManifest('running-false');
    delete off.spec.runStrategy;
    off.spec.running = false;
    await vms().create(off);
    await eventually('Stopped', 30_000, async () => (await vmStatus('running-false'))?.printableStatus === 'Stopped');
    expect(await vmis().find('running-false', namespace)).toBeUndefined();
    await vms().patch('running-false', namespace, { spec: { running: true } });
    await eventually('VMI created', 30_000, async () => (await vmis().find('running-false', namespace)) !== undefined);
  });

  it('Start and Stop state change requests drive a Manual VM', async () => {
    await startManager();
    await vms().create(vmManifest('manual', { runStrategy: 'Manual' }));
    await eventually('Stopped', 30_000, async () => (await vmStatus('manual'))?.printableStatus === 'Stopped');

    // What the start subresource will write.
    await vms().patchStatus('manual', namespace, { status: { stateChangeRequests: [{ action: 'Start' }] } });
    await eventually('VMI created on Start', 30_000, async () => (await vmis().find('manual', namespace)) !== undefined);
    await eventually('Start request trimmed', 30_000, async () => (await vmStatus('manual'))?.stateChangeRequests === undefined);
    const vmi = await vmis().get('manual', namespace);

    await vms().patchStatus('manual', namespace, { status: { stateChangeRequests: [{ action: 'Stop', uid: vmi.metadata?.uid }] } });
    await eventually('VMI deleted on Stop', 60_000, async () => (await vmis().find('manual', namespace)) === undefined);
    await eventually('Stop trimmed, VM Stopped', 30_000, async () => {
      const status = await vmStatus('manual');
      return status?.stateChangeRequests === undefined && status?.printableStatus === 'Stopped';
    });
  });

  it('a missing PVC is reported as ErrorPvcNotFound, and the VM proceeds once it exists', async () => {
    await startManager();
    const vm = vmManifest('needs-pvc');
    vm.spec.template.spec.domain.devices.disks = [{ name: 'root', disk: { bus: 'virtio' } }, { name: 'data', disk: { bus: 'virtio' } }];
    vm.spec.template.spec.volumes = [...(vm.spec.template.spec.volumes ?? []), { name: 'data', persistentVolumeClaim: { claimName: 'data-pvc' } }];
    await vms().create(vm);
    await eventually('ErrorPvcNotFound', 30_000, async () => (await vmStatus('needs-pvc'))?.printableStatus === 'ErrorPvcNotFound');
    const synchronized = (await vmis().get('needs-pvc', namespace)).status?.conditions?.find((c) => c.type === 'Synchronized');
    expect(synchronized?.message).toContain(`PersistentVolumeClaim ${namespace}/data-pvc not found`);
    expect(await launcherPods()).not.toContainEqual(expect.objectContaining({ metadata: expect.objectContaining({ annotations: expect.objectContaining({ 'kubevirt.io/domain': 'needs-pvc' }) }) }));

    await client.resource<KubeObject>(coreResources.persistentVolumeClaims).create({
      metadata: { name: 'data-pvc', namespace },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    } as KubeObject);
    await eventually('VMI Scheduling after the PVC appeared', 30_000, async () => (await vmis().find('needs-pvc', namespace))?.status?.phase === 'Scheduling');
    await eventually('VM Starting', 30_000, async () => (await vmStatus('needs-pvc'))?.printableStatus === 'Starting');
  });
});

describe('after the guest stops (what the node handler reports)', () => {
  // The node handler writes Succeeded when the guest powers itself off and Failed when it crashes;
  // here the test writes it, after a Running phase so it is not a start failure.
  async function guestStops(name: string, phase: 'Succeeded' | 'Failed'): Promise<string> {
    await eventually(`${name} Scheduling`, 30_000, async () => (await vmis().find(name, namespace))?.status?.phase === 'Scheduling');
    const vmi = await vmis().get(name, namespace);
    const at = `${new Date().toISOString().slice(0, 19)}Z`;
    await vmis().replaceStatus({
      ...vmi,
      status: {
        ...vmi.status,
        phase,
        phaseTransitionTimestamps: [...(vmi.status?.phaseTransitionTimestamps ?? []), { phase: 'Running', phaseTransitionTimestamp: at }, { phase, phaseTransitionTimestamp: at }],
      },
    });
    return vmi.metadata?.uid ?? '';
  }
  const replaced = (name: string, uid: string) => async () => {
    const vmi = await vmis().find(name, namespace);
    return vmi !== undefined && vmi.metadata?.uid !== uid;
  };

  const table: Array<[NonNullable<VirtualMachine['spec']['runStrategy']>, 'Succeeded' | 'Failed', 'restarted' | 'removed' | 'kept']> = [
    ['Always', 'Succeeded', 'restarted'],
    ['Always', 'Failed', 'restarted'],
    ['RerunOnFailure', 'Failed', 'restarted'],
    ['RerunOnFailure', 'Succeeded', 'removed'],
    ['Once', 'Succeeded', 'kept'],
    ['Once', 'Failed', 'kept'],
    ['Manual', 'Succeeded', 'kept'],
  ];
  it('runStrategy Always starts the next VMI only once the previous launcher pod is gone', async () => {
    const manager = await startManager();
    await vms().create(vmManifest('one-at-a-time'));
    const pod = await holdLauncherPod('one-at-a-time');
    const uid = await guestStops('one-at-a-time', 'Succeeded');
    await eventually('the final VMI to be deleted', 30_000, async () => Boolean((await vmis().find('one-at-a-time', namespace))?.metadata?.deletionTimestamp));
    await settle(manager);
    // Old pod still there: the old VMI stays, and no new VMI (nor a second pod) exists.
    expect((await vmis().get('one-at-a-time', namespace)).metadata?.uid).toBe(uid);
    expect((await launcherPods()).filter((p) => p.metadata?.annotations?.['kubevirt.io/domain'] === 'one-at-a-time')).toHaveLength(1);

    await releaseLauncherPod(pod);
    await eventually('the next VMI after the pod went', 30_000, replaced('one-at-a-time', uid));
  });

  it.each(table)('runStrategy %s, VMI %s → %s', async (runStrategy, phase, outcome) => {
    const manager = await startManager();
    const name = `stop-${runStrategy.toLowerCase()}-${phase.toLowerCase()}`;
    await vms().create(vmManifest(name, { runStrategy }));
    if (runStrategy === 'Manual') await vms().patchStatus(name, namespace, { status: { stateChangeRequests: [{ action: 'Start' }] } });
    const uid = await guestStops(name, phase);
    if (outcome === 'restarted') {
      await eventually('a new VMI', 30_000, replaced(name, uid));
      expect((await vmStatus(name))?.startFailure).toBeUndefined();
    } else {
      await eventually('Stopped', 30_000, async () => (await vmStatus(name))?.printableStatus === 'Stopped');
      await settle(manager, 3_000);
      const vmi = await vmis().find(name, namespace);
      if (outcome === 'removed') expect(vmi).toBeUndefined();
      else expect(vmi?.metadata?.uid).toBe(uid);
      expect((await vmStatus(name))?.printableStatus).toBe('Stopped');
    }
    if (runStrategy === 'Manual') {
      // A Start request after the guest powered off clears the old VMI and starts a new one.
      await vms().patchStatus(name, namespace, { status: { stateChangeRequests: [{ action: 'Start' }] } });
      await eventually('a new VMI on Start', 30_000, replaced(name, uid));
    }
  });
});

describe('on the real kubelet', () => {
  it('the VMI goes Scheduled with nodeName and activePods; ≤ 3 VMI writes from creation to Running, none to the pod (needs kubelet)', async () => {
    // The pause image stands in for the launcher: the kubelet runs it, so the pod becomes Ready as a
    // launcher's would. No containerDisk, so no init containers that need the launcher's copier.
    const manager = await startManager({ launcherImage: 'registry.k8s.io/pause:3.10.1', launcherImagePullPolicy: 'Never' });
    const vm = vmManifest('kubelet');
    delete vm.spec.template.spec.schedulerName;
    vm.spec.template.spec.volumes = [{ name: 'root', emptyDisk: { capacity: '1Gi' } }];
    const vmiWrites = () => requestCount((l) => l['resource'] === 'virtualmachineinstances' && (l['verb'] === 'UPDATE' || l['verb'] === 'PATCH'));
    const podWrites = () => requestCount((l) => l['resource'] === 'pods' && (l['verb'] === 'UPDATE' || l['verb'] === 'PATCH'));
    // The counts are the API server's, for all VMIs: the earlier tests' VMIs whose pods no scheduler
    // binds get their first write BIND_GRACE_MS after their pod's creation; wait for those first.
    await eventually('every other VMI past its first status write', 30_000, async () => (await vmis().list({ namespace })).items.every((v) => Boolean(v.status?.phase)));
    const [vmiBefore, podBefore] = [await vmiWrites(), await podWrites()];
    await vms().create(vm);

    await eventually('VMI Scheduled', 90_000, async () => (await vmis().find('kubelet', namespace))?.status?.phase === 'Scheduled');
    const scheduled = await vmis().get('kubelet', namespace);
    const pod = (await launcherPods()).find((p) => p.metadata?.annotations?.['kubevirt.io/domain'] === 'kubelet');
    expect(pod?.spec?.nodeName).toBeTruthy();
    expect(scheduled.status?.nodeName).toBe(pod?.spec?.nodeName);
    expect(scheduled.status?.activePods).toEqual({ [pod?.metadata?.uid ?? '']: pod?.spec?.nodeName });
    expect(scheduled.status?.launcherContainerImageVersion).toBe('registry.k8s.io/pause:3.10.1');
    expect(scheduled.status?.phaseTransitionTimestamps?.map((t) => t.phase)).toEqual(['Scheduling', 'Scheduled']);

    // What the node handler writes once the guest runs (one write).
    const now = `${new Date().toISOString().slice(0, 19)}Z`;
    await vmis().replaceStatus({
      ...scheduled,
      status: {
        ...scheduled.status,
        phase: 'Running',
        phaseTransitionTimestamps: [...(scheduled.status?.phaseTransitionTimestamps ?? []), { phase: 'Running', phaseTransitionTimestamp: now }],
        conditions: [{ type: 'Ready', status: 'True', lastProbeTime: null, lastTransitionTime: now }],
      },
    });
    await eventually('VM Running', 30_000, async () => (await vmStatus('kubelet'))?.printableStatus === 'Running');
    expect((await vmStatus('kubelet'))?.ready).toBe(true);
    await settle(manager);
    expect((await vmiWrites()) - vmiBefore).toBe(3); // Scheduling, Scheduled (controller), Running (node handler)
    expect((await podWrites()) - podBefore).toBe(0);

    // An upgrade: a controller with another launcher image marks the running VMI as KubeVirt does
    // and leaves its pod alone; back on the pod's image, the mark goes.
    await stopManager(manager);
    await startManager({ launcherImage: 'registry.k8s.io/pause:upgraded', launcherImagePullPolicy: 'Never' });
    await eventually('the VMI marked as running an outdated launcher', 30_000, async () => (await vmis().get('kubelet', namespace)).metadata?.labels?.[OUTDATED_LAUNCHER_IMAGE_LABEL] === '');
    // Other tests' launcher pods share the namespace: only this VM's count.
    const podsOfVm = async () => (await launcherPods()).filter((p) => p.metadata?.annotations?.['kubevirt.io/domain'] === 'kubelet').map((p) => p.metadata?.uid);
    expect(await podsOfVm()).toEqual([pod?.metadata?.uid]);
    expect((await vmis().get('kubelet', namespace)).status?.phase).toBe('Running');
    await stopManager(managers[managers.length - 1]!);
    await startManager({ launcherImage: 'registry.k8s.io/pause:3.10.1', launcherImagePullPolicy: 'Never' });
    await eventually('the mark removed', 30_000, async () => (await vmis().get('kubelet', namespace)).metadata?.labels?.[OUTDATED_LAUNCHER_IMAGE_LABEL] === undefined);
  });
});

describe('failures', () => {
  it('a launcher pod that vanishes fails its VMI; a VM that keeps failing to start backs off (CrashLoopBackOff)', async () => {
    await startManager();
    await vms().create(vmManifest('crashy'));
    await eventually('VMI Scheduling', 30_000, async () => (await vmis().find('crashy', namespace))?.status?.phase === 'Scheduling');
    const first = await vmis().get('crashy', namespace);
    await pods().delete(launcherPodName(first), namespace, { gracePeriodSeconds: 0 });

    // The VMI fails before its guest ever ran: a start failure, so the next start waits.
    await eventually('CrashLoopBackOff', 30_000, async () => (await vmStatus('crashy'))?.printableStatus === 'CrashLoopBackOff');
    const status = await vmStatus('crashy');
    expect(status?.startFailure).toMatchObject({ consecutiveFailCount: 1, lastFailedVMIUID: first.metadata?.uid });
    const retryAfter = new Date(status?.startFailure?.retryAfterTimestamp ?? 0).getTime();
    expect(retryAfter - Date.now()).toBeGreaterThan(3_000); // 10-15 s after the failure
    // The failed VMI goes during the back-off; the VM may show CrashLoopBackOff while it is
    // still terminating (its finalizer goes once the pod is gone).
    await eventually('the failed VMI deleted during the back-off', 10_000, async () => (await vmis().find('crashy', namespace)) === undefined);

    // After the back-off it starts again with a new VMI.
    await eventually('a new VMI after the back-off', 30_000, async () => {
      const next = await vmis().find('crashy', namespace);
      return next !== undefined && next.metadata?.uid !== first.metadata?.uid;
    });
    expect(Date.now()).toBeGreaterThanOrEqual(retryAfter - 1_000);
  });
});

describe('scheduling failures', () => {
  it('an unschedulable launcher pod shows ErrorUnschedulable with the scheduler\'s message (needs kube-scheduler)', async () => {
    await startManager();
    const vm = vmManifest('nowhere');
    delete vm.spec.template.spec.schedulerName;
    vm.spec.template.spec.nodeSelector = { 'kubevm.io/no-such-label': 'true' };
    await vms().create(vm);
    await eventually('ErrorUnschedulable', 60_000, async () => (await vmStatus('nowhere'))?.printableStatus === 'ErrorUnschedulable');
    const condition = (await vmStatus('nowhere'))?.conditions?.find((c) => c.type === 'PodScheduled');
    expect(condition).toMatchObject({ status: 'False', reason: 'Unschedulable' });
    expect(condition?.message).toMatch(/didn't match Pod's node affinity\/selector/);
    expect(condition?.message).toContain('check the VM\'s nodeSelector');
    expect((await vmis().get('nowhere', namespace)).status?.phase).toBe('Scheduling');
  });
});

describe('the KubeVirt CR', () => {
  it('developerConfiguration.useEmulation decides whether launcher pods request /dev/kvm', async () => {
    // No emulation setting in the controller's own config: the KubeVirt CR decides.
    await startManager({ useEmulation: undefined });
    const kubevirts = client.resource<KubeObject & { spec?: unknown }>({ group: 'kubevirt.io', version: 'v1', resource: 'kubevirts', kind: 'KubeVirt', namespaced: true });
    await kubevirts.create({
      apiVersion: 'kubevirt.io/v1',
      kind: 'KubeVirt',
      metadata: { name: 'kubevirt', namespace },
      spec: { configuration: { developerConfiguration: { useEmulation: true } } },
    });
    const kvmOf = async (name: string) => {
      let pod: Pod | undefined;
      await eventually(`${name}'s launcher pod`, 30_000, async () => (pod = (await launcherPods()).find((p) => p.metadata?.annotations?.['kubevirt.io/domain'] === name)) !== undefined);
      return pod?.spec?.containers[0]?.resources?.limits?.['devices.kubevirt.io/kvm'];
    };
    const manager = managers[managers.length - 1]!;
    await eventually('the controller to see the KubeVirt CR', 30_000, () => manager.launcherConfig().useEmulation);
    await vms().create(vmManifest('emulated'));
    expect(await kvmOf('emulated')).toBeUndefined();

    await kubevirts.patch('kubevirt', namespace, { spec: { configuration: { developerConfiguration: { useEmulation: false } } } });
    await eventually('the controller to see the changed KubeVirt CR', 30_000, () => !manager.launcherConfig().useEmulation);
    await vms().create(vmManifest('accelerated'));
    expect(await kvmOf('accelerated')).toBe('1');
    await kubevirts.delete('kubevirt', namespace);
  });
});

describe('instancetypes', () => {
  const itName = `it-small-${Math.random().toString(36).slice(2, 8)}`;
  afterAll(async () => {
    try {
      await client.resource(clusterInstancetypes).delete(itName);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  });

  it('expands the instancetype from a snapshot that later edits do not change; conflicts are a Failure condition', async () => {
    await startManager();
    await client.resource<KubeObject>(clusterInstancetypes).create({
      apiVersion: 'instancetype.kubevirt.io/v1beta1',
      kind: 'VirtualMachineClusterInstancetype',
      metadata: { name: itName },
      spec: { cpu: { guest: 2 }, memory: { guest: '256Mi' } },
    } as KubeObject);
    const vm = vmManifest('sized', { runStrategy: 'Manual', instancetype: { name: itName } });
    delete vm.spec.template.spec.domain.memory;
    await vms().create(vm);
    await eventually('instancetype snapshot', 30_000, async () => Boolean((await vmStatus('sized'))?.instancetypeRef?.controllerRevisionRef?.name));
    const ref = (await vmStatus('sized'))?.instancetypeRef;
    expect(ref).toMatchObject({ name: itName, kind: 'VirtualMachineClusterInstancetype' });
    const revision = await client.resource<KubeObject & { data: { spec: unknown } }>(controllerRevisions).get(ref?.controllerRevisionRef?.name ?? '', namespace);
    expect(revision.data.spec).toEqual({ cpu: { guest: 2 }, memory: { guest: '256Mi' } });

    // Edit the instancetype, then start: the VM runs with its snapshot.
    await client.resource(clusterInstancetypes).patch(itName, undefined, { spec: { cpu: { guest: 8 }, memory: { guest: '1Gi' } } });
    await vms().patchStatus('sized', namespace, { status: { stateChangeRequests: [{ action: 'Start' }] } });
    await eventually('VMI created', 30_000, async () => (await vmis().find('sized', namespace)) !== undefined);
    const vmi = await vmis().get('sized', namespace);
    expect(vmi.spec.domain.cpu).toMatchObject({ sockets: 2, cores: 1, threads: 1 });
    expect(vmi.spec.domain.memory?.guest).toBe('256Mi');

    // A VM that sets what its instancetype owns is refused with the field named.
    const conflicting = vmManifest('conflicting', { instancetype: { name: itName } });
    await vms().create(conflicting); // memory.guest 128Mi conflicts with the instancetype's memory
    await eventually('Failure condition', 30_000, async () => (await vmStatus('conflicting'))?.conditions?.some((c) => c.type === 'Failure' && c.status === 'True') ?? false);
    const failure = (await vmStatus('conflicting'))?.conditions?.find((c) => c.type === 'Failure');
    expect(failure?.reason).toBe('InstancetypeConflict');
    expect(failure?.message).toContain('spec.template.spec.domain.memory.guest');
    expect(await vmis().find('conflicting', namespace)).toBeUndefined();
  });
});

describe('restarts and leader election', () => {
  it('a restarted controller converges without a second launcher pod, even when its predecessor died before writing status', async () => {
    const first = await startManager();
    await vms().create(vmManifest('survivor'));
    await eventually('VMI Scheduling', 30_000, async () => (await vmis().find('survivor', namespace))?.status?.phase === 'Scheduling');
    await settle(first);
    await stopManager(first);

    // As if the controller had crashed between creating the pod and recording it: the VMI still
    // says it was never processed.
    const vmi = await vmis().get('survivor', namespace);
    await vmis().replaceStatus({ ...vmi, status: {} });
    const podCreatesBefore = await requestCount((l) => l['resource'] === 'pods' && l['verb'] === 'CREATE');

    const second = await startManager({ identity: 'controller-b' });
    await eventually('VMI Scheduling again', 30_000, async () => (await vmis().find('survivor', namespace))?.status?.phase === 'Scheduling');
    await settle(second);
    const survivors = (await launcherPods()).filter((p) => p.metadata?.annotations?.['kubevirt.io/domain'] === 'survivor');
    expect(survivors).toHaveLength(1);
    expect((await requestCount((l) => l['resource'] === 'pods' && l['verb'] === 'CREATE')) - podCreatesBefore).toBe(0);
    expect(await vmis().find('survivor', namespace)).toMatchObject({ metadata: { uid: vmi.metadata?.uid } });
  });

  it('two replicas with leader election: one acts; when it stops the other takes over without duplicates', async () => {
    const lease = { leaderElection: true, leaseName: `kubevm-controller-${Math.random().toString(36).slice(2, 8)}`, leaseDurationMs: 4_000, renewDeadlineMs: 3_000, retryPeriodMs: 500 };
    const a = await startManager({ ...lease, identity: 'replica-a' });
    const b = await startManager({ ...lease, identity: 'replica-b' });
    await eventually('a leader', 30_000, () => a.isLeader() || b.isLeader());
    const [leader, standby] = a.isLeader() ? [a, b] : [b, a];
    // The standby has read the Lease and seen it held by the leader: it stays a standby.
    await eventually('the standby to see the leader', 30_000, () => standby.observedLeader() === leader.observedLeader() && leader.observedLeader() !== '');
    expect([a.isLeader(), b.isLeader()].filter(Boolean)).toHaveLength(1);

    await vms().create(vmManifest('elected'));
    await eventually('VMI Scheduling', 30_000, async () => (await vmis().find('elected', namespace))?.status?.phase === 'Scheduling');
    await settle(leader);
    expect(standby.isLeader()).toBe(false);

    await stopManager(leader); // releases the Lease
    await eventually('the standby to lead', 30_000, () => standby.isLeader());
    await vms().create(vmManifest('after-failover'));
    await eventually('new VM handled by the new leader', 30_000, async () => (await vmis().find('after-failover', namespace))?.status?.phase === 'Scheduling');
    await settle(standby);
    for (const name of ['elected', 'after-failover']) {
      expect((await launcherPods()).filter((p) => p.metadata?.annotations?.['kubevirt.io/domain'] === name)).toHaveLength(1);
    }
  });
});

describe('validation before reconcile (ADR 0001)', () => {
  it('a VM the CRD accepts but zod refuses is not reconciled; a Warning Event names the field; other VMs go on; a fix is reconciled', async () => {
    await startManager();
    // running and runStrategy together: the structural schema cannot forbid it without CEL, so the
    // API server stores it; the controller's zod check refuses it.
    await vms().create(vmManifest('both-run-fields', { running: true }));
    const events = client.resource<KubeObject & { reason?: string; type?: string; message?: string }>(coreResources.events);
    const event = await eventually('a FailedValidation Event for the VM', 30_000, async () =>
      (await events.list({ namespace, fieldSelector: 'involvedObject.name=both-run-fields' })).items.find((e) => e.reason === 'FailedValidation'),
    );
    expect(event.type).toBe('Warning');
    expect(event.message).toContain('spec.running: running and runStrategy are mutually exclusive');

    // The controller did not stop: a valid VM created after it is reconciled.
    await vms().create(vmManifest('valid-after-invalid', { runStrategy: 'Halted' }));
    await eventually('the valid VM Stopped', 30_000, async () => (await vmStatus('valid-after-invalid'))?.printableStatus === 'Stopped');
    expect(await vmis().find('both-run-fields', namespace)).toBeUndefined();

    // Fixed, it is reconciled like any other.
    await vms().patch('both-run-fields', namespace, { spec: { running: null } }, 'merge');
    await eventually('a VMI for the fixed VM', 30_000, async () => (await vmis().find('both-run-fields', namespace)) !== undefined);
  });
});
