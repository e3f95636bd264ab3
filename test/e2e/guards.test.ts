// The three RBAC guards on the real cluster with kubevm installed (scripts/install-kubevm.sh), as a
// role matrix: users bound in one namespace to Kubernetes' view, edit and admin roles (into which
// kubevirt.io:view/edit/admin aggregate), to kubevirt.io:migrate, to edit plus the right to use one
// host device, to edit plus kubevm.io:launcher-entry, and to nothing; and the cluster admin. Each
// tries: exec, attach and port-forward into a running VM's launcher pod; creating a VM with a host
// device; creating a migration; the migrate subresource. Every cell is one real request through the
// kube-apiserver (RBAC, then the webhook); creates are server-side dry runs, so one VM serves all.
// The exec that succeeds also shows uid 107 binding port 80 inside the launcher (ADR 0013).
// Fails, never skips, when the cluster or kubevm is missing.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import YAML from 'yaml';
import { renderUserRoles } from '../../operator/render/user-roles.js';
import { HOST_DEVICE_USE, LAUNCHER_ENTRY_ROLE } from '../../runtime/contracts/guard-permissions.js';
import type { KubeClient, KubeObject } from '../../runtime/kube.js';
import { coreResources } from '../../runtime/kube.js';
import { clusterEnv, kubectl, run, type ClusterEnv } from '../cluster/cluster-env.js';
import { clusterClient, createTestNamespace, deleteNamespace, requireCluster } from '../integration/runtime-support.js';
import { eventually } from '../support/eventually.js';
import { requireKubevmController } from './kubevm-installed.js';
import { createSmallVm, runningVmiUid, smallVmiSpec } from './small-vm.js';

jest.setTimeout(300_000);

/** A resource name no node advertises: admission is all this suite exercises (the launcher has no passthrough yet). */
const FAKE_DEVICE = 'devices.kubevm.io/test-fake';
const VM = 'guarded';

type Outcome = 'allowed' | 'rbac' | 'guard';
const USERS = ['viewer', 'editor', 'ns-admin', 'migrator', 'device-user', 'entrant', 'nobody', 'cluster-admin'] as const;
type User = (typeof USERS)[number];

/** The bindings in the test namespace: ClusterRoles by name, plus the device Role. */
const BINDINGS: Record<User, string[]> = {
  viewer: ['view'],
  editor: ['edit'],
  'ns-admin': ['admin'],
  migrator: ['kubevirt.io:migrate'],
  'device-user': ['edit', 'Role:host-device-user'],
  entrant: ['edit', LAUNCHER_ENTRY_ROLE],
  nobody: [],
  'cluster-admin': [],
};

/** The documented matrix (SECURITY.md, "The three guards"). */
const MATRIX: Record<string, Record<User, Outcome>> = {
  exec: { viewer: 'rbac', editor: 'guard', 'ns-admin': 'guard', migrator: 'rbac', 'device-user': 'guard', entrant: 'allowed', nobody: 'rbac', 'cluster-admin': 'allowed' },
  attach: { viewer: 'rbac', editor: 'guard', 'ns-admin': 'guard', migrator: 'rbac', 'device-user': 'guard', entrant: 'allowed', nobody: 'rbac', 'cluster-admin': 'allowed' },
  portforward: { viewer: 'rbac', editor: 'guard', 'ns-admin': 'guard', migrator: 'rbac', 'device-user': 'guard', entrant: 'allowed', nobody: 'rbac', 'cluster-admin': 'allowed' },
  'host-device VM': { viewer: 'rbac', editor: 'guard', 'ns-admin': 'guard', migrator: 'rbac', 'device-user': 'allowed', entrant: 'guard', nobody: 'rbac', 'cluster-admin': 'allowed' },
  'create migration': { viewer: 'rbac', editor: 'rbac', 'ns-admin': 'rbac', migrator: 'allowed', 'device-user': 'rbac', entrant: 'rbac', nobody: 'rbac', 'cluster-admin': 'allowed' },
  'migrate subresource': { viewer: 'rbac', editor: 'rbac', 'ns-admin': 'rbac', migrator: 'allowed', 'device-user': 'rbac', entrant: 'rbac', nobody: 'rbac', 'cluster-admin': 'allowed' },
};

let env: ClusterEnv;
let client: KubeClient;
let namespace: string;
let pod: string;
let savedPermitted: unknown;

/** kubectl as `user` (impersonated by the admin; the cluster admin is the admin itself). */
async function as(user: User, args: string[], input = ''): Promise<{ code: number; output: string }> {
  const identity = user === 'cluster-admin' ? [] : ['--as', user];
  const res = await run(env.kubectl, ['--kubeconfig', env.kubeconfig, ...identity, '-n', namespace, ...args], { input, timeoutMs: 60_000 });
  return { code: res.code, output: `${res.stdout}${res.stderr}` };
}

const hostDeviceVm = (deviceName: string): string =>
  YAML.stringify({
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: 'with-device', namespace },
    spec: { runStrategy: 'Halted', template: { spec: { ...smallVmiSpec(), domain: { ...(smallVmiSpec()['domain'] as object), devices: { gpus: [{ name: 'gpu1', deviceName }] } } } } },
  });

/** One cell: what the user gets, judged from what kubectl printed. */
async function attempt(action: string, user: User): Promise<{ outcome: Outcome | 'unexpected'; output: string }> {
  let result: { code: number; output: string };
  let allowed: (r: { code: number; output: string }) => boolean;
  switch (action) {
    case 'exec':
      // uid 107 binds port 80 in the launcher's network namespace (the pod's sysctl, ADR 0013).
      result = await as(user, ['exec', pod, '-c', 'compute', '--', '/usr/local/bin/node', '-e', "require('net').createServer().listen(80, () => { console.log('LISTENING-80'); process.exit(0); })"]);
      allowed = (r) => r.code === 0 && r.output.includes('LISTENING-80');
      break;
    case 'attach':
    case 'portforward': {
      // A POST without the upgrade: RBAC and admission run first; past them the kubelet side answers "Upgrade request required".
      const query = action === 'attach' ? 'container=compute&stdout=true' : 'ports=80';
      result = await as(user, ['create', '--raw', `/api/v1/namespaces/${namespace}/pods/${pod}/${action}?${query}`, '-f', '-']);
      allowed = (r) => r.output.includes('Upgrade request required');
      break;
    }
    case 'host-device VM':
      result = await as(user, ['create', '--dry-run=server', '-f', '-'], hostDeviceVm(FAKE_DEVICE));
      allowed = (r) => r.code === 0 && r.output.includes('created (server dry run)');
      break;
    case 'create migration':
      result = await as(user, ['create', '--dry-run=server', '-f', '-'], YAML.stringify({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstanceMigration', metadata: { name: 'm1', namespace }, spec: { vmiName: VM } }));
      allowed = (r) => r.code === 0 && r.output.includes('created (server dry run)');
      break;
    case 'migrate subresource':
      result = await as(user, ['replace', '--raw', `/apis/subresources.kubevirt.io/v1/namespaces/${namespace}/virtualmachines/${VM}/migrate`, '-f', '-'], JSON.stringify({ dryRun: ['All'] }));
      allowed = (r) => r.code === 0;
      break;
    default:
      throw new Error(`no such action ${action}`);
  }
  const guardMessage = action === 'host-device VM' ? `may not use host device "${FAKE_DEVICE}"` : `needs "${action}" on "virtualmachineinstances/launcher"`;
  if (allowed(result)) return { outcome: 'allowed', output: result.output };
  if (result.code !== 0 && /Forbidden|forbidden/.test(result.output) && !result.output.includes('denied the request')) return { outcome: 'rbac', output: result.output };
  if (result.code !== 0 && result.output.includes('denied the request') && result.output.includes(guardMessage)) return { outcome: 'guard', output: result.output };
  return { outcome: 'unexpected', output: result.output };
}

async function bind(user: User): Promise<void> {
  for (const role of BINDINGS[user]) {
    const [kind, name] = role.startsWith('Role:') ? ['Role', role.slice(5)] : ['ClusterRole', role];
    await kubectl(env, ['-n', namespace, 'create', 'rolebinding', `${user}-${name.replace(/[^a-z0-9-]/g, '-')}`, `--${kind.toLowerCase()}=${name}`, `--user=${user}`]);
  }
}

beforeAll(async () => {
  env = clusterEnv();
  client = clusterClient();
  await requireCluster(client);
  await requireKubevmController(client);
  // KubeVirt's user roles and kubevm's launcher-entry role, as the operator renders them (the
  // local cluster installs with scripts/install-kubevm.sh, which applies no user roles).
  const roles = renderUserRoles({ namespace: 'kubevirt', registry: 'kubevm', tag: 'dev', pullPolicy: 'IfNotPresent' });
  await kubectl(env, ['apply', '--server-side', '--force-conflicts', '--field-manager', 'kubevm-e2e-guards', '-f', '-'], { input: roles.map((r) => YAML.stringify(r)).join('---\n') });
  namespace = await createTestNamespace(client, 'kubevm-e2e-guards');
  // What an admin writes to let someone use one device (kubectl create role would look the resource up in discovery: it is a permission, not a served resource).
  const deviceRole = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'host-device-user', namespace }, rules: [{ apiGroups: [HOST_DEVICE_USE.group], resources: [HOST_DEVICE_USE.resource], verbs: [HOST_DEVICE_USE.verb], resourceNames: [FAKE_DEVICE] }] };
  await kubectl(env, ['apply', '-f', '-'], { input: YAML.stringify(deviceRole) });
  for (const user of USERS) await bind(user);
  // The KubeVirt CR permits the fake device (restored afterwards).
  const kv = JSON.parse(await kubectl(env, ['-n', 'kubevirt', 'get', 'kubevirts', '-o', 'json'])) as { items: Array<KubeObject & { spec?: { configuration?: { permittedHostDevices?: unknown } } }> };
  const kubevirt = kv.items[0];
  if (!kubevirt?.metadata?.name) throw new Error('no KubeVirt CR in namespace kubevirt');
  savedPermitted = kubevirt.spec?.configuration?.permittedHostDevices ?? null;
  await kubectl(env, ['-n', 'kubevirt', 'patch', 'kubevirts', kubevirt.metadata.name, '--type', 'merge', '-p', JSON.stringify({ spec: { configuration: { permittedHostDevices: { pciHostDevices: [{ pciVendorSelector: '1af4:1000', resourceName: FAKE_DEVICE, externalResourceProvider: true }] } } } })]);
  await createSmallVm(client, namespace, VM, 'Always');
  await runningVmiUid(client, namespace, VM);
  const pods = await client.resource<KubeObject & { status?: { phase?: string } }>(coreResources.pods).list({ namespace, labelSelector: 'kubevirt.io=virt-launcher' });
  pod = pods.items.find((p) => p.status?.phase === 'Running')?.metadata?.name ?? '';
  expect(pod).not.toBe('');
  // Aggregation into edit/admin is asynchronous (the clusterrole-aggregation controller).
  await eventually('kubevirt.io:edit aggregated into edit', 30_000, async () => (await as('editor', ['auth', 'can-i', 'create', 'virtualmachines.kubevirt.io'])).output.trim() === 'yes');
}, 300_000);

afterAll(async () => {
  if (env && savedPermitted !== undefined) {
    await kubectl(env, ['-n', 'kubevirt', 'patch', 'kubevirts', 'kubevirt', '--type', 'merge', '-p', JSON.stringify({ spec: { configuration: { permittedHostDevices: savedPermitted } } })]).catch(() => undefined);
  }
  if (namespace) await deleteNamespace(client, namespace);
  client?.close();
});

describe('the role matrix of the guarded actions', () => {
  it.each(Object.keys(MATRIX))('%s: every user gets what SECURITY.md says', async (action) => {
    const got: Record<string, string> = {};
    const outputs: Record<string, string> = {};
    for (const user of USERS) {
      const cell = await attempt(action, user);
      got[user] = cell.outcome;
      outputs[user] = cell.output.trim().slice(0, 400);
    }
    // On a mismatch the diff shows the cell, and the outputs say why.
    expect({ got, outputs }).toMatchObject({ got: MATRIX[action] });
  });

  it('a denial names the missing permission and the role that grants it', async () => {
    const denied = await as('editor', ['exec', pod, '-c', 'compute', '--', '/usr/local/bin/node', '-e', '0']);
    expect(denied.output).toContain('admission webhook "launcher-pods.connect.kubevm.io" denied the request');
    expect(denied.output).toContain(`needs "exec" on "virtualmachineinstances/launcher" in API group "subresources.kubevirt.io" (name "${VM}")`);
    expect(denied.output).toContain(LAUNCHER_ENTRY_ROLE);
  });

  it('a device the KubeVirt CR does not permit is refused even to the cluster admin', async () => {
    const refused = await as('cluster-admin', ['create', '--dry-run=server', '-f', '-'], hostDeviceVm('devices.kubevm.io/not-permitted'));
    expect(refused.code).not.toBe(0);
    expect(refused.output).toContain('spec.template.spec.domain.devices.gpus[0].deviceName: "devices.kubevm.io/not-permitted" is not permitted');
  });
});
