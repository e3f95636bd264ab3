// The three RBAC guards on the real cluster with kubevm installed (scripts/install-kubevm.sh), as a
// role matrix: users bound in one namespace to Kubernetes' view, edit and admin roles (into which
// kubevirt.io:view/edit/admin aggregate), to kubevirt.io:migrate, to edit plus the right to use one
// host device, to edit plus kubevm.io:launcher-entry, and to nothing; and the cluster admin. Each
// tries: exec, attach and port-forward into a running VM's launcher pod; creating a VM with a host
// device; creating a migration; the migrate subresource. Every cell is one real request through the
// kube-apiserver (RBAC, then the webhook); creates are server-side dry runs, so one VM serves all.
// The exec that succeeds also shows uid 107 binding port 80 inside the launcher (ADR 0013).
// Then the confinement of the components (operator/render/policies.ts), with the components' own
// service account tokens: the node handler's bound to its pod (so to its node), the controller's.
// And the webhooks, which answer only the kube-apiserver's client certificate.
// Fails, never skips, when the cluster or kubevm is missing.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
import { componentPodIp, scrape, scraperToken } from '../support/metrics-scraper.js';
import { createSmallVm, runningVmiUid, smallVmiSpec, vmiResource } from './small-vm.js';

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
const scratch = mkdtempSync(join(tmpdir(), 'kubevm-e2e-guards-'));

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
  // An operator install has them already (and would repair what this changed): add only the missing ones.
  const roles = renderUserRoles({ namespace: 'kubevirt', registry: 'kubevm', tag: 'dev', pullPolicy: 'IfNotPresent' });
  const existing = (await kubectl(env, ['get', 'clusterroles,clusterrolebindings', '-o', 'name'])).split('\n');
  const missing = roles.filter((r) => !existing.includes(`${r.kind === 'ClusterRole' ? 'clusterrole' : 'clusterrolebinding'}.rbac.authorization.k8s.io/${r.metadata.name}`));
  if (missing.length > 0) await kubectl(env, ['apply', '--server-side', '--field-manager', 'kubevm-e2e-guards', '-f', '-'], { input: missing.map((r) => YAML.stringify(r)).join('---\n') });
  namespace = await createTestNamespace(client, 'kubevm-e2e-guards');
  // The VM runs in a namespace that enforces the Restricted Pod Security Standard (ADR 0013).
  await kubectl(env, ['label', 'namespace', namespace, 'pod-security.kubernetes.io/enforce=restricted', 'pod-security.kubernetes.io/enforce-version=latest']);
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
  // The VMI can be Running before the kubelet reports its pod Running (ADR 0017); exec and attach
  // need the kubelet to know the container runs.
  await eventually('the launcher pod Running', 60_000, async () => {
    const pods = await client.resource<KubeObject & { status?: { phase?: string } }>(coreResources.pods).list({ namespace, labelSelector: 'kubevirt.io=virt-launcher' });
    pod = pods.items.find((p) => p.status?.phase === 'Running')?.metadata?.name ?? '';
    return pod !== '';
  });
  // Aggregation into edit/admin is asynchronous (the clusterrole-aggregation controller).
  await eventually('kubevirt.io:edit aggregated into edit', 30_000, async () => (await as('editor', ['auth', 'can-i', 'create', 'virtualmachines.kubevirt.io'])).output.trim() === 'yes');
}, 300_000);

afterAll(async () => {
  if (env && savedPermitted !== undefined) {
    await kubectl(env, ['-n', 'kubevirt', 'patch', 'kubevirts', 'kubevirt', '--type', 'merge', '-p', JSON.stringify({ spec: { configuration: { permittedHostDevices: savedPermitted } } })]).catch(() => undefined);
  }
  if (namespace) await deleteNamespace(client, namespace);
  client?.close();
  rmSync(scratch, { recursive: true, force: true });
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

/** A kubeconfig that authenticates with a token of `serviceAccount` (namespace kubevirt), bound to `pod` when given. */
async function tokenKubeconfig(serviceAccount: string, pod?: string): Promise<string> {
  const bound = pod ? ['--bound-object-kind', 'Pod', '--bound-object-name', pod] : [];
  const token = (await kubectl(env, ['-n', 'kubevirt', 'create', 'token', serviceAccount, '--duration', '10m', ...bound])).trim();
  const admin = JSON.parse(await kubectl(env, ['config', 'view', '--raw', '--minify', '--flatten', '-o', 'json'])) as { clusters: Array<{ cluster: object }> };
  const path = join(scratch, `${serviceAccount}${pod ? '-bound' : ''}.kubeconfig`);
  writeFileSync(
    path,
    YAML.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: 'c', cluster: admin.clusters[0]?.cluster }], users: [{ name: 'u', user: { token } }], contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }], 'current-context': 'x' }),
    { mode: 0o600 },
  );
  return path;
}

/** A merge patch sent with the token of a kubeconfig tokenKubeconfig wrote; the HTTP status and body. */
function patchAs(kubeconfig: string, path: string, body: object): Promise<{ code: number; body: string }> {
  const config = YAML.parse(readFileSync(kubeconfig, 'utf8')) as { clusters: Array<{ cluster: { server: string; 'certificate-authority-data'?: string } }>; users: Array<{ user: { token: string } }> };
  const cluster = config.clusters[0]?.cluster;
  const token = config.users[0]?.user.token ?? '';
  if (!cluster) throw new Error(`${kubeconfig} names no cluster`);
  const url = new URL(path, cluster.server);
  const ca = cluster['certificate-authority-data'] ? Buffer.from(cluster['certificate-authority-data'], 'base64') : undefined;
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: 'PATCH', ...(ca ? { ca } : {}), headers: { authorization: `Bearer ${token}`, 'content-type': 'application/merge-patch+json' } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ code: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** kubectl with another kubeconfig; the exit code and all it printed. */
async function using(kubeconfig: string, args: string[], input = ''): Promise<{ code: number; output: string }> {
  const res = await run(env.kubectl, ['--kubeconfig', kubeconfig, ...args], { input, timeoutMs: 60_000 });
  return { code: res.code, output: `${res.stdout}${res.stderr}` };
}

/** A running pod of the component; on `node` when given (the node handler of a VMI's node). */
async function componentPod(component: string, node?: string): Promise<KubeObject & { spec?: { nodeName?: string } }> {
  const pods = await client.resource<KubeObject & { spec?: { nodeName?: string }; status?: { phase?: string } }>(coreResources.pods).list({ namespace: 'kubevirt', labelSelector: `app.kubernetes.io/component=${component}` });
  const found = pods.items.find((p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp && (node === undefined || p.spec?.nodeName === node));
  if (!found?.metadata?.name) throw new Error(`no running ${component} pod${node === undefined ? '' : ` on node ${node}`}`);
  return found;
}

describe('the node handler is confined to its node', () => {
  let bound: string;
  let node: string;
  const otherNode = `kubevm-confinement-${Date.now().toString(36)}`;

  beforeAll(async () => {
    // The handler of the VM's node (on a two-node cluster the other one may not annotate it).
    const vmiNode = (await client.resource<KubeObject & { status?: { nodeName?: string } }>(vmiResource).get(VM, namespace)).status?.nodeName;
    const handler = await componentPod('node-handler', vmiNode);
    node = handler.spec?.nodeName ?? '';
    bound = await tokenKubeconfig('kubevm-node-handler', handler.metadata?.name);
    // A Node no kubelet serves, tainted so nothing is scheduled onto it.
    await kubectl(env, ['apply', '-f', '-'], { input: YAML.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: otherNode }, spec: { taints: [{ key: 'kubevm.io/confinement-test', effect: 'NoSchedule' }, { key: 'kubevm.io/confinement-test', effect: 'NoExecute' }] } }) });
  });

  afterAll(async () => {
    await kubectl(env, ['delete', 'node', otherNode, '--ignore-not-found']).catch(() => undefined);
  });

  it('its pod-bound token names its node', async () => {
    const whoami = await using(bound, ['auth', 'whoami', '-o', 'json']);
    const status = (JSON.parse(whoami.output) as { status: { userInfo: { username: string; extra?: Record<string, string[]> } } }).status.userInfo;
    expect(status.username).toBe('system:serviceaccount:kubevirt:kubevm-node-handler');
    expect(status.extra?.['authentication.kubernetes.io/node-name']).toEqual([node]);
  });

  it('may label its own Node and annotate a VMI on its node', async () => {
    expect(await using(bound, ['label', 'node', node, 'kubevm.io/confinement-test=own', '--overwrite'])).toMatchObject({ code: 0 });
    expect(await using(bound, ['-n', namespace, 'annotate', 'vmi', VM, 'kubevm.io/confinement-test=own', '--overwrite'])).toMatchObject({ code: 0 });
    await kubectl(env, ['label', 'node', node, 'kubevm.io/confinement-test-']);
  });

  it('may not change another Node', async () => {
    const refused = await using(bound, ['label', 'node', otherNode, 'kubevm.io/confinement-test=other', '--overwrite']);
    expect(refused.code).not.toBe(0);
    expect(refused.output).toContain(`ValidatingAdmissionPolicy 'kubevm-node-handler-node-restriction'`);
    expect(refused.output).toContain(`the node handler of node ${node} may change only its own Node, not ${otherNode}`);
    // Nor its status, where the handler writes its node conditions (its own: node-handler-node.test.ts).
    const status = await patchAs(bound, `/api/v1/nodes/${otherNode}/status`, { status: { conditions: [{ type: 'kubevm.io/CPUVulnerable', status: 'False', reason: 'Forged', message: '' }] } });
    expect(status.code).toBe(403);
    expect(status.body).toContain(`may change only its own Node, not ${otherNode}`);
  });

  it('may not change a VMI that is not on its node', async () => {
    // Pending: its pod can go nowhere, so it is on no node.
    await client.resource<KubeObject & { spec: unknown }>(vmiResource).create({
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      metadata: { name: 'elsewhere', namespace },
      spec: { ...smallVmiSpec(), nodeSelector: { 'kubevm.io/no-such-node': 'true' } },
    });
    const refused = await using(bound, ['-n', namespace, 'annotate', 'vmi', 'elsewhere', 'kubevm.io/confinement-test=other', '--overwrite']);
    expect(refused.code).not.toBe(0);
    expect(refused.output).toContain(`the node handler of node ${node} may change only VMIs on its node; elsewhere is on no node`);
    // The status subresource, as the handler writes it (kubectl patch --subresource would first get it, which the handler's RBAC does not allow).
    const status = await patchAs(bound, `/apis/kubevirt.io/v1/namespaces/${namespace}/virtualmachineinstances/elsewhere/status`, { status: { phase: 'Running' } });
    expect(status.code).toBe(403);
    expect(status.body).toContain('may change only VMIs on its node');
  });

  it('a token of its service account that is not bound to a node may change nothing', async () => {
    const unbound = await tokenKubeconfig('kubevm-node-handler');
    const refused = await using(unbound, ['label', 'node', node, 'kubevm.io/confinement-test=unbound', '--overwrite']);
    expect(refused.code).not.toBe(0);
    expect(refused.output).toContain("the node handler's credentials are not bound to a node");
  });
});

describe('the controller creates only launcher pods of the expected shape', () => {
  let controller: string;
  type PodManifest = KubeObject & { spec: Record<string, unknown> & { volumes?: object[] }; status?: unknown };
  let launcher: PodManifest;

  beforeAll(async () => {
    controller = await tokenKubeconfig('kubevm-controller', (await componentPod('controller')).metadata?.name);
    const live = await client.resource<PodManifest>(coreResources.pods).get(pod, namespace);
    // The pod as the controller sent it: without what the API server and the kubelet added.
    const { resourceVersion: _rv, uid: _uid, creationTimestamp: _ct, managedFields: _mf, ...metadata } = live.metadata ?? {};
    launcher = { apiVersion: 'v1', kind: 'Pod', metadata: { ...metadata, name: `${live.metadata?.name ?? ''}-copy` }, spec: live.spec };
  });

  // The VM's namespace enforces Restricted, which would refuse these before the policy sees them: send them to default (dry runs).
  const elsewhere = (pod: PodManifest): PodManifest => ({ ...pod, metadata: { ...pod.metadata, namespace: 'default' } });
  const create = async (manifest: object): Promise<{ code: number; output: string }> => using(controller, ['create', '--dry-run=server', '-f', '-'], YAML.stringify(manifest));
  const withCompute = (change: (compute: Record<string, unknown>) => Record<string, unknown>) => () => {
    const [compute, ...others] = launcher.spec['containers'] as Array<Record<string, unknown>>;
    return { ...elsewhere(launcher), spec: { ...launcher.spec, containers: [change(compute ?? {}), ...others] } };
  };

  it('may create a launcher pod like the ones it renders (a dry run of a copy of the running one)', async () => {
    const created = await create(launcher);
    expect(created.output).toContain('created (server dry run)');
  });

  it.each([
    ['a privileged pod in kube-system', () => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'escape', namespace: 'kube-system' }, spec: { hostPID: true, containers: [{ name: 'c', image: 'kubevm/launcher:0.1.0', securityContext: { privileged: true } }] } }), 'for a VirtualMachineInstance'],
    ['a launcher pod with a hostPath volume', () => ({ ...elsewhere(launcher), spec: { ...launcher.spec, volumes: [...(launcher.spec.volumes ?? []), { name: 'host', hostPath: { path: '/' } }] } }), 'volumes only of the types'],
    // The ServiceAccount admission plugin mounts the token as a projected volume, which the volume rule refuses first.
    ['a launcher pod with an API token', () => ({ ...elsewhere(launcher), spec: { ...launcher.spec, automountServiceAccountToken: true } }), 'volumes only of the types'],
    // Without the sysctl, which the API server refuses on the host network before any policy runs.
    ['a launcher pod on the host network', () => ({ ...elsewhere(launcher), spec: { ...launcher.spec, hostNetwork: true, securityContext: { ...(launcher.spec['securityContext'] as object), sysctls: [] } } }), 'no host network'],
    ['a launcher pod running another image', () => ({ ...elsewhere(launcher), spec: { ...launcher.spec, containers: (launcher.spec['containers'] as object[]).map((c) => ({ ...c, image: 'busybox:latest' })) } }), 'the first container, compute, running kubevm/launcher'],
    // Beside compute only image copies: the copier's busybox and the copy script, never an image's own entrypoint.
    [
      'a launcher pod with a container running its image\'s entrypoint',
      () => {
        const [compute] = launcher.spec['containers'] as Array<{ securityContext?: object }>;
        return { ...elsewhere(launcher), spec: { ...launcher.spec, containers: [...(launcher.spec['containers'] as object[]), { name: 'extra', image: 'busybox:latest', securityContext: compute?.securityContext }] } };
      },
      'every other container an image copy',
    ],
    // The kubelet runs hooks itself: an httpGet hook would make it connect wherever the pod says.
    ['a launcher pod whose compute container has an httpGet postStart hook', withCompute((c) => ({ ...c, lifecycle: { postStart: { httpGet: { host: '192.0.2.1', port: 80, path: '/' } } } })), 'no lifecycle hook but'],
    [
      'a launcher pod whose postStart hook runs another script',
      withCompute((c) => ({ ...c, lifecycle: { postStart: { exec: { command: ['/bin/busybox', 'sh', '-c', 'wget http://192.0.2.1/', 'prepare', '/bin/busybox', '/var/run/kubevm/bin', '/var/run/kubevm/image-copies'] } } } })),
      'no lifecycle hook but',
    ],
  ])('may not create %s', async (_what, manifest, message) => {
    const refused = await create(manifest());
    expect(refused.code).not.toBe(0);
    expect(refused.output).toContain("ValidatingAdmissionPolicy 'kubevm-controller-launcher-pods'");
    expect(refused.output).toContain(message);
  });

  it('may create no Secret at all: the launchers take their VMI from their node handlers', async () => {
    const token = { apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/service-account-token', metadata: { name: 'stolen', namespace: 'kube-system', annotations: { 'kubernetes.io/service-account.name': 'default' }, ownerReferences: launcher.metadata?.ownerReferences } };
    const opaque = { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name: 'input', namespace, ownerReferences: launcher.metadata?.ownerReferences }, data: {} };
    for (const secret of [token, opaque]) {
      const refused = await create(secret);
      expect(refused.code).not.toBe(0);
      expect(refused.output).toMatch(/secrets is forbidden: User "system:serviceaccount:[^"]+:kubevm-controller" cannot create resource "secrets"/);
    }
  });
});

describe('metrics are readable only by an authorized scraper, over TLS; health is plain', () => {
  let reader: string;
  let stranger: string;

  beforeAll(async () => {
    reader = await scraperToken(client, 'kubevm-e2e-scraper', true);
    stranger = await scraperToken(client, 'kubevm-e2e-stranger', false);
  });

  it.each([
    ['controller', 8443],
    ['node-handler', 8443],
    ['api-server', 8444],
  ])('%s', async (component, port) => {
    const { ip } = await componentPodIp(client, component);
    expect(await scrape(ip, port, undefined)).toEqual({ status: 401, body: 'no bearer token\n' });
    expect(await scrape(ip, port, 'not-a-token')).toMatchObject({ status: 401 });
    const refused = await scrape(ip, port, stranger);
    expect(refused.status).toBe(403);
    expect(refused.body).toContain('user "system:serviceaccount:kubevirt:kubevm-e2e-stranger" may not get the non-resource URL /metrics');
    const read = await scrape(ip, port, reader);
    expect(read.status).toBe(200);
    expect(read.body).toContain('# HELP ');
    const health = await fetch(`http://${ip}:8080/readyz`);
    expect(health.status).toBe(200);
    await expect(fetch(`http://${ip}:8080/metrics`).then((r) => r.status)).resolves.toBe(404);
  });
});

describe('the admission webhooks answer only the kube-apiserver (KUBEVM_WEBHOOK_CLIENT_AUTH=required on the local cluster)', () => {
  // Anything that reaches the api-server could otherwise post a review of its own making: a forged
  // eviction of another tenant's launcher pod would have its VMI marked and migrated.
  const pki = join(process.env['KUBEVM_STATE'] ?? '/var/lib/kubevm-local', 'pki');
  const forged = JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: 'forged', kind: { group: 'policy', version: 'v1', kind: 'Eviction' }, resource: { group: '', version: 'v1', resource: 'pods' }, subResource: 'eviction', operation: 'CREATE', namespace: 'default', name: 'virt-launcher-none-x', userInfo: { username: 'system:admin' }, object: { apiVersion: 'policy/v1', kind: 'Eviction' } },
  });
  const post = (ip: string, client: 'front-proxy-client' | undefined): Promise<{ code: number; body: string }> =>
    new Promise((resolve, reject) => {
      const request = httpsRequest(
        { host: ip, port: 8443, method: 'POST', path: '/admission/validate', rejectUnauthorized: false, ...(client ? { cert: readFileSync(join(pki, `${client}.crt`)), key: readFileSync(join(pki, `${client}.key`)) } : {}), headers: { 'content-type': 'application/json' }, agent: false },
        (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString()));
          res.on('end', () => resolve({ code: res.statusCode ?? 0, body }));
        },
      );
      request.on('error', reject);
      request.end(forged);
    });

  it('a review posted straight to the api-server is refused (401); with the certificate the kube-apiserver presents it is answered', async () => {
    const { ip } = await componentPodIp(client, 'api-server');
    const refused = await post(ip, undefined);
    expect(refused.code).toBe(401);
    expect(refused.body).toContain('admission reviews must come from the kube-apiserver');
    const answered = await post(ip, 'front-proxy-client');
    expect(answered.code).toBe(200);
    expect(JSON.parse(answered.body)).toMatchObject({ kind: 'AdmissionReview', response: { uid: 'forged', allowed: true } });
  });

  it('the kube-apiserver presents it: a VM write goes through the webhooks', async () => {
    const out = await as('editor', ['create', '--dry-run=server', '-f', '-'], YAML.stringify({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name: 'via-webhooks', namespace }, spec: { runStrategy: 'Halted', template: { spec: smallVmiSpec() } } }));
    expect(out).toMatchObject({ code: 0, output: expect.stringContaining('created (server dry run)') });
  });
});
