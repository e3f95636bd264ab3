// The aggregated API subresources.kubevirt.io on the real cluster with kubevm installed (make images,
// scripts/install-kubevm.sh): requests go client → kube-apiserver (authentication, RBAC) → the
// APIService → the kubevm api-server pods (front-proxy certificate, SubjectAccessReview) → the VM
// or VMI, which the deployed controller and node handler then act on. What is checked is the
// resulting state of the world, as KubeVirt documents it for each subresource.
// Fails, never skips, when the cluster or kubevm is missing.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { join } from 'node:path';
import type { KubeClient, KubeObject } from '../../runtime/kube.js';
import { apiRequest, clusterEnv, kubectl, type ClusterEnv } from '../cluster/cluster-env.js';
import { clusterClient, createTestNamespace, deleteNamespace, requireCluster } from '../integration/runtime-support.js';
import { eventually } from '../support/eventually.js';
import { grant } from './support/rbac.js';
import type { VM, VMI } from './small-vm.js';
import { createSmallVm, guestConsole, hasCondition, occurrences, runningVmiUid, vmResource, vmiResource, vmimResource } from './small-vm.js';

jest.setTimeout(600_000);

let client: KubeClient;
let env: ClusterEnv;
let namespace: string;
const admin = () => join(env.kubeconfigDir, 'admin.kubeconfig');
const editor = () => join(env.kubeconfigDir, 'ns-editor.kubeconfig');
const viewer = () => join(env.kubeconfigDir, 'viewer.kubeconfig');

const vm = (name: string) => client.resource<VM>(vmResource).find(name, namespace);
const vmi = (name: string) => client.resource<VMI>(vmiResource).find(name, namespace);

/** PUT/GET a subresource as the user of `kubeconfig`; returns the code and the Status message. */
async function subresource(kubeconfig: string, method: 'PUT' | 'GET', kind: 'virtualmachines' | 'virtualmachineinstances', name: string, sub: string, body?: unknown, version = 'v1') {
  // GETs go without a body, as clients send them.
  const res = await apiRequest(kubeconfig, method, `/apis/subresources.kubevirt.io/${version}/namespaces/${namespace}/${kind}/${name}/${sub}`, method === 'GET' ? undefined : (body ?? {}));
  let parsed: { message?: string } = {};
  try {
    parsed = JSON.parse(res.body) as { message?: string };
  } catch {
    // an empty 2xx body
  }
  return { code: res.status, message: parsed.message ?? '', body: parsed };
}

const createVm = (name: string, runStrategy: string) => createSmallVm(client, namespace, name, runStrategy);
const runningUid = (name: string) => runningVmiUid(client, namespace, name);

beforeAll(async () => {
  env = clusterEnv();
  client = clusterClient();
  await requireCluster(client);
  namespace = await createTestNamespace(client, 'kubevm-e2e-api');
  // The editor may start VMs (and read them); the viewer may read VMs but not start them.
  await grant(env, namespace, 'vm-starter', 'kubevm-ns-editor', [
    { apiGroups: ['kubevirt.io'], resources: ['virtualmachines'], verbs: ['get'] },
    { apiGroups: ['subresources.kubevirt.io'], resources: ['virtualmachines/start'], verbs: ['update'] },
  ]);
  await grant(env, namespace, 'vm-reader', 'kubevm-viewer', [{ apiGroups: ['kubevirt.io'], resources: ['virtualmachines'], verbs: ['get', 'list'] }]);
}, 120_000);

afterAll(async () => {
  if (namespace) await deleteNamespace(client, namespace);
  client?.close();
});

describe('subresources.kubevirt.io through the kube-apiserver', () => {
  it('answers version and lists what it serves, in v1 and v1alpha3', async () => {
    const version = JSON.parse(await kubectl(env, ['get', '--raw', '/apis/subresources.kubevirt.io/v1/version'])) as { gitVersion?: string; platform?: string };
    expect(version.gitVersion).toMatch(/^v\d+\.\d+\.\d+/);
    expect(version.platform).toMatch(/^linux\//);
    for (const v of ['v1', 'v1alpha3']) {
      const list = JSON.parse(await kubectl(env, ['get', '--raw', `/apis/subresources.kubevirt.io/${v}`])) as { resources: Array<{ name: string }> };
      expect(list.resources.map((r) => r.name)).toEqual(expect.arrayContaining(['virtualmachines/start', 'virtualmachines/stop', 'virtualmachineinstances/pause']));
    }
    const health = JSON.parse(await kubectl(env, ['get', '--raw', '/apis/subresources.kubevirt.io/v1/healthz'])) as { apiserver?: { connectivity?: string } };
    expect(health.apiserver?.connectivity).toBe('ok');
  });

  it('a user whose role lacks virtualmachines/start gets 403; one whose role has it starts the VM', async () => {
    await createVm('rbac', 'Halted');
    const denied = await subresource(viewer(), 'PUT', 'virtualmachines', 'rbac', 'start');
    expect(denied.code).toBe(403);
    expect((await vm('rbac'))?.spec.runStrategy).toBe('Halted');
    const allowed = await subresource(editor(), 'PUT', 'virtualmachines', 'rbac', 'start');
    expect(allowed.code).toBe(202);
    expect((await vm('rbac'))?.spec.runStrategy).toBe('Always');
    // The same grant does not cover stop.
    expect((await subresource(editor(), 'PUT', 'virtualmachines', 'rbac', 'stop')).code).toBe(403);
    expect((await subresource(admin(), 'PUT', 'virtualmachines', 'rbac', 'stop')).code).toBe(202);
  });

  it('start, pause, unpause, soft reboot, restart, migrate and stop change the VM and VMI as KubeVirt documents', async () => {
    await createVm('life', 'Halted');
    // A dry run changes nothing.
    expect((await subresource(admin(), 'PUT', 'virtualmachines', 'life', 'start', { dryRun: ['All'] })).code).toBe(202);
    expect((await vm('life'))?.spec.runStrategy).toBe('Halted');
    expect((await subresource(admin(), 'PUT', 'virtualmachines', 'life', 'start')).code).toBe(202);
    expect((await vm('life'))?.spec.runStrategy).toBe('Always');
    const first = await runningUid('life');
    const again = await subresource(admin(), 'PUT', 'virtualmachines', 'life', 'start');
    expect(again).toMatchObject({ code: 409, message: 'Operation cannot be fulfilled on virtualmachine.kubevirt.io "life": VM is already running' });

    // pause / unpause through the node handler: the Paused condition follows.
    expect((await subresource(admin(), 'PUT', 'virtualmachineinstances', 'life', 'pause', {}, 'v1alpha3')).code).toBe(200);
    await eventually('VMI Paused', 60_000, async () => hasCondition(await vmi('life'), 'Paused'));
    expect(await subresource(admin(), 'PUT', 'virtualmachineinstances', 'life', 'pause')).toMatchObject({ code: 409, message: expect.stringMatching(/VMI is already paused$/) });
    expect(await subresource(admin(), 'PUT', 'virtualmachineinstances', 'life', 'softreboot')).toMatchObject({ code: 409, message: expect.stringMatching(/VMI is paused$/) });
    expect((await subresource(admin(), 'PUT', 'virtualmachineinstances', 'life', 'unpause')).code).toBe(200);
    await eventually('VMI unpaused', 60_000, async () => !hasCondition(await vmi('life'), 'Paused'));
    expect(await subresource(admin(), 'PUT', 'virtualmachineinstances', 'life', 'unpause')).toMatchObject({ code: 409, message: expect.stringMatching(/VMI is not paused$/) });

    // Soft reboot: the guest runs its own shutdown path (the test guest prints KUBEVM-POWEROFF when
    // the ACPI button reaches it) and boots again in the same VMI and pod.
    const booted = 'KUBEVM-GUEST-BOOTED';
    const poweroff = 'KUBEVM-POWEROFF acpi power button';
    const watching = 'KUBEVM-ACPI watching';
    const guestLog = () => guestConsole(client, namespace, 'life');
    await eventually('the guest watches its power button', 120_000, async () => occurrences(await guestLog(), watching) >= 1);
    const before = await guestLog();
    const [boots, poweroffs] = [occurrences(before, booted), occurrences(before, poweroff)];
    expect((await subresource(admin(), 'PUT', 'virtualmachineinstances', 'life', 'softreboot')).code).toBe(200);
    await eventually('the soft reboot consumed', 60_000, async () => (await vmi('life'))?.metadata?.annotations?.['kubevm.io/soft-reboot-requested'] === undefined);
    await eventually('the guest went down its shutdown path and booted again', 120_000, async () => {
      const text = await guestLog();
      return occurrences(text, poweroff) === poweroffs + 1 && occurrences(text, watching) >= boots + 1;
    });
    expect(occurrences(await guestLog(), booted)).toBe(boots + 1);
    expect((await vmi('life'))?.metadata?.uid).toBe(first);
    expect((await vmi('life'))?.status?.phase).toBe('Running');

    // Reset: the hard reset; the guest boots again without running its shutdown path.
    expect((await subresource(admin(), 'PUT', 'virtualmachineinstances', 'life', 'reset')).code).toBe(200);
    await eventually('the reset consumed', 60_000, async () => (await vmi('life'))?.metadata?.annotations?.['kubevm.io/reset-requested'] === undefined);
    await eventually('the guest booted again after the reset', 120_000, async () => occurrences(await guestLog(), watching) >= boots + 2);
    const afterReset = await guestLog();
    expect(occurrences(afterReset, booted)).toBe(boots + 2);
    expect(occurrences(afterReset, poweroff)).toBe(poweroffs + 1);
    expect((await vmi('life'))?.metadata?.uid).toBe(first);

    // Guest agent subresources: a clear 409 without an agent; the OS info with one.
    const agent = hasCondition(await vmi('life'), 'AgentConnected');
    const info = await subresource(admin(), 'GET', 'virtualmachineinstances', 'life', 'guestosinfo');
    const freeze = await subresource(admin(), 'PUT', 'virtualmachineinstances', 'life', 'freeze');
    if (agent) {
      expect(info.code).toBe(200);
      expect(freeze).toMatchObject({ code: 400, message: 'Unfreeze timeout in freeze request is not set' });
    } else {
      expect(info).toMatchObject({ code: 409, message: expect.stringMatching(/VMI does not have guest agent connected$/) });
      expect(freeze).toMatchObject({ code: 409, message: expect.stringMatching(/VMI does not have guest agent connected$/) });
    }

    // migrate: a dry run creates nothing; a real one creates a VirtualMachineInstanceMigration.
    const migrations = client.resource<KubeObject & { spec: { vmiName: string } }>(vmimResource);
    expect((await subresource(admin(), 'PUT', 'virtualmachines', 'life', 'migrate', { dryRun: ['All'] })).code).toBe(202);
    expect((await migrations.list({ namespace })).items).toHaveLength(0);
    expect((await subresource(admin(), 'PUT', 'virtualmachines', 'life', 'migrate', { addedNodeSelector: { 'kubevm.io/test': 'none' } })).code).toBe(202);
    const created = (await migrations.list({ namespace })).items;
    expect(created).toHaveLength(1);
    expect(created[0]?.metadata?.name).toMatch(/^kubevirt-migrate-vm-/);
    expect(created[0]?.spec).toMatchObject({ vmiName: 'life', addedNodeSelector: { 'kubevm.io/test': 'none' } });
    await migrations.delete(created[0]?.metadata?.name ?? '', namespace);

    // restart: a new VMI replaces the running one.
    expect(await subresource(admin(), 'PUT', 'virtualmachines', 'life', 'restart', { gracePeriodSeconds: 5 })).toMatchObject({ code: 400 });
    expect((await subresource(admin(), 'PUT', 'virtualmachines', 'life', 'restart')).code).toBe(202);
    await eventually('a new running VMI after restart', 240_000, async () => {
      const current = await vmi('life');
      return current !== undefined && current.metadata?.uid !== first && current.status?.phase === 'Running';
    });

    // stop: Always → Halted, the VMI goes; a second stop is refused.
    expect((await subresource(admin(), 'PUT', 'virtualmachines', 'life', 'stop', { gracePeriod: 0 })).code).toBe(202);
    expect((await vm('life'))?.spec.runStrategy).toBe('Halted');
    await eventually('VMI gone after stop', 120_000, async () => (await vmi('life')) === undefined);
    expect(await subresource(admin(), 'PUT', 'virtualmachines', 'life', 'stop')).toMatchObject({ code: 409, message: expect.stringMatching(/VM is not running$/) });
    expect(await subresource(admin(), 'PUT', 'virtualmachines', 'life', 'restart')).toMatchObject({ code: 409, message: expect.stringMatching(/RunStategy Halted does not support manual restart requests$/) });
  });

  it('Manual: start and stop go through stateChangeRequests', async () => {
    await createVm('manual', 'Manual');
    expect((await subresource(admin(), 'PUT', 'virtualmachines', 'manual', 'start')).code).toBe(202);
    expect((await vm('manual'))?.spec.runStrategy).toBe('Manual');
    await runningUid('manual');
    expect((await subresource(admin(), 'PUT', 'virtualmachines', 'manual', 'stop')).code).toBe(202);
    await eventually('VMI gone after stop', 120_000, async () => (await vmi('manual')) === undefined);
    expect((await vm('manual'))?.spec.runStrategy).toBe('Manual');
    expect(await subresource(admin(), 'PUT', 'virtualmachines', 'manual', 'stop')).toMatchObject({ code: 409, message: expect.stringMatching(/VM is not running$/) });
  });

  it('expand-spec and expand-vm-spec apply the instancetype to the template', async () => {
    await kubectl(env, ['apply', '-f', '-'], {
      input: JSON.stringify({ apiVersion: 'instancetype.kubevirt.io/v1beta1', kind: 'VirtualMachineInstancetype', metadata: { name: 'small', namespace }, spec: { cpu: { guest: 2 }, memory: { guest: '256Mi' } } }),
    });
    const manifest = {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachine',
      metadata: { name: 'typed', namespace },
      spec: { runStrategy: 'Halted', instancetype: { kind: 'VirtualMachineInstancetype', name: 'small' }, template: { spec: { domain: { devices: {} } } } },
    };
    await client.resource<KubeObject>(vmResource).create(manifest);
    interface Expanded {
      spec?: { instancetype?: unknown; template?: { spec?: { domain?: { cpu?: { sockets?: number }; memory?: { guest?: string } } } } };
    }
    const got = await subresource(admin(), 'GET', 'virtualmachines', 'typed', 'expand-spec');
    expect(got.code).toBe(200);
    const expanded = got.body as Expanded;
    expect(expanded.spec?.instancetype).toBeUndefined();
    expect(expanded.spec?.template?.spec?.domain).toMatchObject({ cpu: { sockets: 2 }, memory: { guest: '256Mi' } });

    const put = await apiRequest(admin(), 'PUT', `/apis/subresources.kubevirt.io/v1/namespaces/${namespace}/expand-vm-spec`, { ...manifest, metadata: { name: 'not-created' } });
    expect(put.status).toBe(200);
    expect((JSON.parse(put.body) as Expanded).spec?.template?.spec?.domain).toMatchObject({ cpu: { sockets: 2 }, memory: { guest: '256Mi' } });
    const wrong = await apiRequest(admin(), 'PUT', `/apis/subresources.kubevirt.io/v1/namespaces/${namespace}/expand-vm-spec`, { ...manifest, metadata: { name: 'x', namespace: 'elsewhere' } });
    expect(wrong.status).toBe(400);
    expect(wrong.body).toContain(`VM namespace must be empty or ${namespace}`);
  });

  it('answers 404 for a VM that does not exist', async () => {
    expect(await subresource(admin(), 'PUT', 'virtualmachines', 'nope', 'start')).toMatchObject({ code: 404, message: 'virtualmachine.kubevirt.io "nope" not found' });
  });
});
