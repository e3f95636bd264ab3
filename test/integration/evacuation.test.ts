// On the real API server, without a launcher (VMIs are given a Running status by hand): a drain's two
// writes, the eviction webhook's mark (the api-server's cluster context, a JSON patch of the status
// subresource that tests status.nodeName: a dry run changes nothing, a VMI on another node is
// refused) and the evacuation controller's migration for a marked VMI (one, KubeVirt's name,
// annotation and priority, not a second one on a resync); and which VMI a launcher pod runs, for the
// webhooks that protect it.
// Needs the local cluster (make cluster-up), no installed kubevm; fails, never skips.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import { Controller } from '../../runtime/controller.js';
import { ControllerExpectations } from '../../runtime/expectations.js';
import { Informer, ownerUidIndex } from '../../runtime/informer.js';
import type { KubeClient, KubeObject } from '../../runtime/kube.js';
import { ApiError, coreResources } from '../../runtime/kube.js';
import { silentLogger } from '../../runtime/logging.js';
import type { EventRecorder } from '../../runtime/events.js';
import type { KubeVirtCR, VirtualMachineInstance } from '../../controller/api.js';
import { kubevirtResource } from '../../controller/manager.js';
import { vmiResource } from '../../controller/vmi/controller.js';
import { migrationResource } from '../../controller/migration/controller.js';
import type { Migration } from '../../controller/migration/target-pod.js';
import { EvacuationController, markedVmi, markedVmiOfPod, observeEvacuationMigrations, vmiOfMigration } from '../../controller/evacuation/controller.js';
import { clusterAdmissionContext } from '../../api-server/admission/context.js';
import { admitEviction, evacuationMessage } from '../../api-server/admission/eviction.js';
import { applyKubevmCrds, clusterClient, createTestNamespace, requireCluster, useLocalClusterKubeconfig } from './runtime-support.js';
import { deleteNamespaceWithoutController } from './kubevm-namespace.js';
import { eventually } from '../support/eventually.js';

jest.setTimeout(120_000);
useLocalClusterKubeconfig();

type Pod = V1Pod & KubeObject;
const NODE = 'node-being-drained';

let client: KubeClient;
let namespace: string;
let controller: Controller;
let informers: Array<Informer<KubeObject>>;
const recorded: Array<{ reason: string; message: string }> = [];

/** A VMI that looks Running and LiveMigratable on NODE, as the node handler and the controller would report it. */
async function runningVmi(name: string): Promise<void> {
  const vmis = client.resource<VirtualMachineInstance>(vmiResource);
  await vmis.create({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name, namespace }, spec: { domain: { memory: { guest: '128Mi' }, devices: {} }, evictionStrategy: 'LiveMigrate' } });
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  await vmis.patchStatus(name, namespace, { status: { phase: 'Running', nodeName: NODE, conditions: [{ type: 'LiveMigratable', status: 'True', lastTransitionTime: now }] } }, 'merge');
}

const vmiNow = (name: string) => client.resource<VirtualMachineInstance>(vmiResource).get(name, namespace);
const migrationsOf = async (vmi: string) => (await client.resource<Migration>(migrationResource).list({ namespace })).items.filter((m) => m.spec.vmiName === vmi);

beforeAll(async () => {
  client = clusterClient();
  await requireCluster(client);
  await applyKubevmCrds(client, 'kubevm-evacuation-test');
  namespace = await createTestNamespace(client, 'kubevm-evacuation');
  const common = { client, log: silentLogger, namespace };
  const migrations = new Informer<Migration>({ ...common, descriptor: migrationResource });
  const vmis = new Informer<VirtualMachineInstance>({ ...common, descriptor: vmiResource });
  const pods = new Informer<Pod>({ ...common, descriptor: coreResources.pods, labelSelector: 'kubevirt.io=virt-launcher', indexers: { ownerUid: ownerUidIndex } });
  const kubevirts = new Informer<KubeVirtCR>({ ...common, descriptor: kubevirtResource });
  informers = [migrations, vmis, pods, kubevirts] as Array<Informer<KubeObject>>;
  const expectations = new ControllerExpectations();
  const events: EventRecorder = { record: (_object, _type, reason, message) => void recorded.push({ reason, message }) };
  const evacuation = new EvacuationController({ client, vmis, migrations, pods, kubevirts, expectations, events });
  observeEvacuationMigrations(migrations, expectations);
  controller = new Controller({ name: 'evacuation-test', kind: 'VirtualMachineInstance', reconcile: evacuation.reconcile, log: silentLogger })
    .watch(vmis, markedVmi)
    .watch(migrations, vmiOfMigration)
    .watch(pods, markedVmiOfPod(vmis));
  for (const informer of informers) informer.start();
  await controller.start();
});

afterAll(async () => {
  await controller?.stop({ deadlineMs: 2000 });
  await Promise.all((informers ?? []).map((informer) => informer.stop()));
  if (namespace) await eventually('the test namespace cleaned up', 60_000, async () => (await deleteNamespaceWithoutController(client, namespace), true));
});

describe('a drain on the real API server', () => {
  it("the eviction webhook's mark: a dry run changes nothing, a VMI on another node is refused, the real one sets evacuationNodeName", async () => {
    await runningVmi('marked');
    const admission = clusterAdmissionContext(client, 'kubevirt');
    await admission.markForEvacuation(namespace, 'marked', NODE, true);
    expect((await vmiNow('marked')).status?.evacuationNodeName).toBeUndefined();
    // The VMI is not on that node (it moved since it was read): the patch's test refuses it.
    const refused = await admission.markForEvacuation(namespace, 'marked', 'another-node', false).then(() => undefined, (err: unknown) => err);
    expect(refused).toBeInstanceOf(ApiError);
    expect((refused as ApiError).code).toBe(422);
    expect((await vmiNow('marked')).status?.evacuationNodeName).toBeUndefined();
    await admission.markForEvacuation(namespace, 'marked', NODE, false);
    const marked = await vmiNow('marked');
    expect(marked.status).toMatchObject({ phase: 'Running', nodeName: NODE, evacuationNodeName: NODE });
    const managers = (marked.metadata?.managedFields ?? []) as Array<{ manager?: string; subresource?: string }>;
    expect(managers.some((f) => f.manager === 'kubevm-api-server' && f.subresource === 'status')).toBe(true);
  });

  it('the evacuation controller creates one migration for the marked VMI, named, annotated and prioritised as KubeVirt does', async () => {
    const [migration] = await eventually('an evacuation migration', 30_000, async () => {
      const found = await migrationsOf('marked');
      return found.length > 0 ? found : undefined;
    });
    expect(migration?.metadata?.name).toMatch(/^kubevirt-evacuation-/);
    expect(migration?.metadata?.annotations).toEqual({ 'kubevirt.io/evacuationMigration': NODE });
    expect(migration?.spec).toEqual({ vmiName: 'marked', priority: 'system-critical' });
    // Recorded once the controller has the create's answer, which may come after the list above saw the migration.
    const created = { reason: 'SuccessfulCreate', message: `Created Migration ${migration?.metadata?.name ?? ''} to evacuate node ${NODE}` };
    await eventually('the SuccessfulCreate event', 10_000, () => recorded.some((event) => event.reason === created.reason && event.message === created.message));
    // A pass over every key again (and the VMI changing) makes no second one: one is in flight.
    controller.resync();
    await client.resource<VirtualMachineInstance>(vmiResource).patch('marked', namespace, { metadata: { labels: { touched: 'yes' } } });
    await eventually('the controller idle', 10_000, () => controller.queue.len() === 0 && controller.queue.inFlight() === 0);
    expect(await migrationsOf('marked')).toHaveLength(1);
  });
});

describe('which VMI a launcher pod runs, for the launcher-entry guard and the eviction webhook', () => {
  // Whoever may patch pods can change a pod's labels and annotations; nobody can change its
  // containers' environment. So the VMI is the one whose uid compute's KUBEVM_VMI_UID names, and a
  // pod the controller never recorded in the VMI's activePods marks nothing.
  const launcherPodOf = (name: string, vmi: VirtualMachineInstance, labels: Record<string, string>, annotation: string): Pod => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels, annotations: { 'kubevirt.io/domain': annotation } },
    spec: { nodeName: NODE, containers: [{ name: 'compute', image: 'localhost:5999/kubevm-it/none:1', env: [{ name: 'KUBEVM_VMI_UID', value: vmi.metadata?.uid ?? '' }] }] },
  });
  const evictionOf = (pod: string) => ({ apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: pod, namespace } });

  it('a launcher pod stripped of its label and annotated with another VMI is still guarded and evacuated as its own VMI', async () => {
    await runningVmi('entry-victim');
    await runningVmi('entry-own');
    const victim = await vmiNow('entry-victim');
    const pods = client.resource<Pod>(coreResources.pods);
    const created = await pods.create(launcherPodOf('virt-launcher-entry-victim-x1', victim, { 'kubevirt.io': 'virt-launcher' }, 'entry-victim'));
    await client.resource<VirtualMachineInstance>(vmiResource).patchStatus('entry-victim', namespace, { status: { activePods: { [created.metadata?.uid ?? '']: NODE } } }, 'merge');
    // What a user with the edit role can do to the pod: drop the label, point the annotation elsewhere.
    await pods.patch('virt-launcher-entry-victim-x1', namespace, { metadata: { labels: { 'kubevirt.io': null }, annotations: { 'kubevirt.io/domain': 'entry-own' } } });
    const admission = clusterAdmissionContext(client, 'kubevirt');
    expect(await admission.launcherPodVmi(namespace, 'virt-launcher-entry-victim-x1')).toBe('entry-victim');
    expect(await admitEviction(namespace, 'virt-launcher-entry-victim-x1', evictionOf('virt-launcher-entry-victim-x1'), true, admission)).toEqual({
      allowed: false,
      message: evacuationMessage(namespace, 'entry-victim'),
    });
  });

  it("a pod that only claims a VMI (its uid, the label, the annotation, on the VMI's node) is guarded as that VMI's but marks nothing", async () => {
    const victim = await vmiNow('entry-victim');
    const pods = client.resource<Pod>(coreResources.pods);
    await pods.create(launcherPodOf('virt-launcher-impostor-x2', victim, { 'kubevirt.io': 'virt-launcher' }, 'entry-victim'));
    const admission = clusterAdmissionContext(client, 'kubevirt');
    expect(await admission.launcherPodVmi(namespace, 'virt-launcher-impostor-x2')).toBe('entry-victim');
    expect(await admitEviction(namespace, 'virt-launcher-impostor-x2', evictionOf('virt-launcher-impostor-x2'), false, admission)).toEqual({
      allowed: false,
      message: 'Eviction request for target Pod',
    });
    expect((await vmiNow('entry-victim')).status?.evacuationNodeName).toBeUndefined();
    // Any other pod is no launcher: not guarded.
    await pods.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'plain-x3', namespace }, spec: { nodeName: NODE, containers: [{ name: 'compute', image: 'localhost:5999/kubevm-it/none:1' }] } });
    expect(await admission.launcherPodVmi(namespace, 'plain-x3')).toBeUndefined();
  });
});
