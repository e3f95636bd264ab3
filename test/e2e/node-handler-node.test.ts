// The installed node handler labels its node and keeps the kubevirt.io/heartbeat annotation fresh,
// so the controller can tell a dead handler (stale heartbeat) from a quiet one; it writes its node
// conditions; it turns KSM on only where the KubeVirt CR's ksmConfiguration selects the node (the
// node is this machine: its /sys/kernel/mm/ksm/run is read here); and its view of the kubelet's
// pods directory does not show the Secret and token volumes of pods started after it.
// Fails (never skips) when the cluster or the node handler is missing.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { coreResources } from '../../runtime/kube.js';
import type { KubeClient, KubeObject, ResourceDescriptor } from '../../runtime/kube.js';
import { heartbeatPeriodMs, probeHost } from '../../node-handler/node-labels.js';
import type { NodeCondition } from '../../node-handler/node-labels.js';
import {
  cpuVulnerabilityLabelPrefix,
  cpuVulnerableCondition,
  cpuVulnerableLabel,
  heartbeatAnnotation,
  hostCpuModelLabel,
  ksmCondition,
  ksmEnabledLabel,
  ksmHandlerManagedAnnotation,
  kvmUsableLabel,
  nestedVirtualizationCondition,
  nodeIsVirtualLabel,
  schedulableLabel,
} from '../../runtime/contracts/node-marks.js';
import { clusterEnv, kubectl } from '../cluster/cluster-env.js';
import { clusterClient, createTestNamespace, deleteNamespace, requireCluster } from '../integration/runtime-support.js';
import { eventually } from '../support/eventually.js';

jest.setTimeout(240_000);

interface PodObject extends KubeObject {
  spec?: { nodeName?: string; containers?: Array<{ image?: string; env?: Array<{ name: string; value?: string }> }> };
  status?: { conditions?: { type: string; status: string }[] };
}
interface NodeObject extends KubeObject {
  status?: { conditions?: NodeCondition[] };
}

const kubevirtResource: ResourceDescriptor = { group: 'kubevirt.io', version: 'v1', resource: 'kubevirts', kind: 'KubeVirt', namespaced: true };
const handlerSelector = 'app.kubernetes.io/component=node-handler';
const KSM_RUN = '/sys/kernel/mm/ksm/run';

describe('the installed node handler’s node labels and heartbeat', () => {
  let client: KubeClient;
  let node: string;

  beforeAll(async () => {
    client = clusterClient();
    await requireCluster(client);
    const pods = await client.resource<PodObject>(coreResources.pods).list({ namespace: 'kubevirt', labelSelector: 'app.kubernetes.io/component=node-handler' });
    const ready = pods.items.find((pod) => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    if (!ready?.spec?.nodeName) throw new Error('no ready node handler pod in namespace kubevirt: install kubevm first');
    node = ready.spec.nodeName;
  }, 60_000);

  afterAll(() => client?.close());

  it('marks the node schedulable, says whether KVM is usable and names the host CPU', async () => {
    const object = await client.resource<KubeObject>(coreResources.nodes).get(node);
    const labels = object.metadata?.labels ?? {};
    expect(labels[schedulableLabel]).toBe('true');
    expect(['true', 'false']).toContain(labels[kvmUsableLabel]);
    expect(labels[hostCpuModelLabel]).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]*$/);
  });

  // The local cluster's node is this machine: the handler's labels must say what this kernel says.
  it('labels the CPU vulnerability mitigation state the kernel reports, and whether the node is a VM', async () => {
    const labels = (await client.resource<KubeObject>(coreResources.nodes).get(node)).metadata?.labels ?? {};
    const host = await probeHost({ qemuBinary: '/nonexistent' });
    const vulnerabilities = Object.entries(host.cpuVulnerabilities ?? {});
    expect(vulnerabilities.length).toBeGreaterThan(0);
    for (const [name, state] of vulnerabilities) expect(labels[`${cpuVulnerabilityLabelPrefix}${name}`]).toBe(state);
    expect(labels[cpuVulnerableLabel]).toBe(String(vulnerabilities.some(([, state]) => state === 'vulnerable')));
    expect(labels[nodeIsVirtualLabel]).toBe(String(host.nodeIsVirtual));
  });

  it('writes its node conditions: the CPU\'s vulnerability verdicts and nested virtualization as this kernel reports them, and KSM', async () => {
    const conditions = (await client.resource<NodeObject>(coreResources.nodes).get(node)).status?.conditions ?? [];
    const byType = Object.fromEntries(conditions.map((c) => [c.type, c]));
    const host = await probeHost({ qemuBinary: '/nonexistent' });
    const vulnerable = Object.entries(host.cpuVulnerabilities ?? {}).filter(([, state]) => state === 'vulnerable').map(([name]) => name);
    expect(byType[cpuVulnerableCondition]).toMatchObject({ status: vulnerable.length > 0 ? 'True' : 'False', message: expect.stringContaining(`vulnerable: ${vulnerable.join(', ') || 'none'}`) });
    const nested = host.nestedVirtualization === undefined ? 'Unknown' : host.nestedVirtualization ? 'True' : 'False';
    expect(byType[nestedVirtualizationCondition]).toMatchObject({ status: nested });
    expect(byType[ksmCondition]?.status).toMatch(/^(True|False|Unknown)$/);
    // The kubelet's own conditions are still there (the handler's patch merges by type).
    expect(byType['Ready']).toMatchObject({ status: 'True' });
  });

  it('beats: the heartbeat is at most one period (plus slack) old', async () => {
    const object = await client.resource<KubeObject>(coreResources.nodes).get(node);
    const beat = object.metadata?.annotations?.[heartbeatAnnotation];
    expect(beat).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(Date.now() - Date.parse(beat ?? '')).toBeLessThan(heartbeatPeriodMs + 15_000);
  });
});

/**
 * Once every node's handler (one per node: this machine's, and node 2's when the cluster has two)
 * has rolled to `ksm` (its KUBEVM_KSM_CONFIGURATION, undefined: none) and is ready: the handler of
 * this machine's node, whose /var/lib/kubelet and /sys the test reads.
 */
async function rolledHandler(client: KubeClient, ksm: string | undefined): Promise<PodObject> {
  const env = clusterEnv();
  const nodes = env.node2Name ? 2 : 1;
  let seen = '';
  const what = () => `the node handlers (${nodes}) rolled to KUBEVM_KSM_CONFIGURATION=${ksm ?? '(unset)'}; their pods: ${seen}`;
  return eventually(what, 120_000, async () => {
    const pods = (await client.resource<PodObject>(coreResources.pods).list({ namespace: 'kubevirt', labelSelector: handlerSelector })).items;
    seen = JSON.stringify(pods.map((p) => ({ name: p.metadata?.name, node: p.spec?.nodeName, deleting: Boolean(p.metadata?.deletionTimestamp), ksm: p.spec?.containers?.[0]?.env?.find((e) => e.name === 'KUBEVM_KSM_CONFIGURATION')?.value, conditions: p.status?.conditions })));
    const rolled = (pod: PodObject) =>
      !pod.metadata?.deletionTimestamp &&
      pod.spec?.containers?.[0]?.env?.find((e) => e.name === 'KUBEVM_KSM_CONFIGURATION')?.value === ksm &&
      pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    if (pods.length !== nodes || !pods.every(rolled)) return false;
    return (env.nodeName ? pods.find((pod) => pod.spec?.nodeName === env.nodeName) : pods[0]) ?? false;
  });
}

describe('KSM follows the KubeVirt CR\'s ksmConfiguration (the installed handler, this machine\'s KSM)', () => {
  let client: KubeClient;
  let node: string;
  let runBefore: string;
  let configurationBefore: unknown;
  const kubevirts = () => client.resource<KubeObject & { spec?: { configuration?: Record<string, unknown> } }>(kubevirtResource);
  // A JSON patch replaces the whole ksmConfiguration (a merge patch would merge the selectors' matchLabels); null removes it.
  const setKsm = (ksmConfiguration: unknown) =>
    ksmConfiguration === null
      ? kubevirts().patch('kubevirt', 'kubevirt', { spec: { configuration: { ksmConfiguration: null } } }, 'merge')
      : kubevirts().patch('kubevirt', 'kubevirt', [{ op: 'add', path: '/spec/configuration/ksmConfiguration', value: ksmConfiguration }], 'json');
  const nodeState = async () => {
    const object = await client.resource<NodeObject>(coreResources.nodes).get(node);
    return {
      run: (await readFile(KSM_RUN, 'utf8')).trim(),
      label: object.metadata?.labels?.[ksmEnabledLabel],
      managed: object.metadata?.annotations?.[ksmHandlerManagedAnnotation],
      condition: object.status?.conditions?.find((c) => c.type === ksmCondition),
    };
  };

  beforeAll(async () => {
    client = clusterClient();
    await requireCluster(client);
    const handler = await rolledHandler(client, undefined);
    node = handler.spec?.nodeName ?? '';
    runBefore = (await readFile(KSM_RUN, 'utf8')).trim();
    configurationBefore = (await kubevirts().get('kubevirt', 'kubevirt')).spec?.configuration?.['ksmConfiguration'];
    expect(configurationBefore).toBeUndefined();
  }, 150_000);

  afterAll(async () => {
    // Whatever happened: the CR as it was, the handler rolled back, and this machine's KSM as it was.
    await setKsm(null).catch(() => undefined);
    await rolledHandler(client, undefined).catch(() => undefined);
    if (runBefore !== undefined && (await readFile(KSM_RUN, 'utf8')).trim() !== runBefore) await writeFile(KSM_RUN, `${runBefore}\n`);
    client?.close();
  }, 150_000);

  it('is off without a ksmConfiguration: the node says so', async () => {
    const state = await nodeState();
    expect(state.label).toBe('false');
    expect(state.condition?.status).toBe(runBefore === '1' ? 'True' : 'False');
    expect(state.condition?.reason).toBe(runBefore === '1' ? 'EnabledOutsideKubevm' : 'NotSelected');
  });

  it('turns KSM on where the selector selects the node, marked with KubeVirt\'s label and annotation', async () => {
    const selectsNode = { nodeLabelSelector: { matchLabels: { 'kubernetes.io/hostname': node } } };
    await setKsm(selectsNode);
    await rolledHandler(client, JSON.stringify(selectsNode));
    const state = await eventually('KSM on, labelled', 30_000, async () => {
      const s = await nodeState();
      return s.label === 'true' ? s : false;
    });
    expect(state).toMatchObject({ run: '1', label: 'true', managed: 'true', condition: { status: 'True', reason: 'EnabledBySelector' } });
  });

  it('turns off the KSM it turned on once the selector no longer selects the node', async () => {
    const selectsNone = { nodeLabelSelector: { matchLabels: { 'kubevm.io/e2e-ksm': 'no-node' } } };
    await setKsm(selectsNone);
    await rolledHandler(client, JSON.stringify(selectsNone));
    const state = await eventually('KSM off, unlabelled', 30_000, async () => {
      const s = await nodeState();
      return s.label === 'false' && s.managed === 'false' ? s : false;
    });
    expect(state).toMatchObject({ run: '0', condition: { status: 'False', reason: 'NotSelected', message: expect.stringMatching(/turned off/) } });
  });
});

describe('the node handler\'s view of the kubelet\'s pods directory (no mount propagation)', () => {
  let client: KubeClient;
  let namespace: string;

  beforeAll(async () => {
    client = clusterClient();
    await requireCluster(client);
    namespace = await createTestNamespace(client, 'kubevm-e2e-handler-view');
  }, 60_000);

  afterAll(async () => {
    if (namespace) await deleteNamespace(client, namespace);
    client?.close();
  });

  it('does not show the Secret and service-account token of a pod started after the handler, while the host has them', async () => {
    const handler = await rolledHandler(client, undefined);
    const env = clusterEnv();
    const image = handler.spec?.containers?.[0]?.image ?? '';
    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'marker', namespace }, stringData: { password: 'kubevm-e2e-marker' } };
    const holder = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'holder', namespace },
      spec: {
        nodeName: handler.spec?.nodeName,
        // The kubelet mounts only volumes a container uses.
        containers: [{ name: 'holder', image, command: ['node', '-e', 'setInterval(() => {}, 1 << 30)'], volumeMounts: [{ name: 'marker', mountPath: '/marker', readOnly: true }], securityContext: { runAsNonRoot: true, runAsUser: 1000, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } } }],
        volumes: [{ name: 'marker', secret: { secretName: 'marker' } }],
      },
    };
    await kubectl(env, ['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [secret, holder] }) });
    const pod = await client.resource<PodObject>(coreResources.pods).get('holder', namespace);
    const uid = pod.metadata?.uid ?? '';
    const volumes = path.join('/var/lib/kubelet/pods', uid, 'volumes');
    // The host (this machine is the node) sees both tmpfs volumes filled once the kubelet mounted them.
    const tokenDir = await eventually('the pod\'s volumes mounted on the host', 60_000, async () => {
      const secret = await readdir(path.join(volumes, 'kubernetes.io~secret', 'marker'));
      const projected = (await readdir(path.join(volumes, 'kubernetes.io~projected'))).find((name) => name.startsWith('kube-api-access-'));
      const token = projected ? await readdir(path.join(volumes, 'kubernetes.io~projected', projected)) : [];
      return secret.includes('password') && token.includes('token') && projected ? path.join(volumes, 'kubernetes.io~projected', projected) : false;
    });
    const list = (dir: string) => `try { console.log(JSON.stringify(require('fs').readdirSync(${JSON.stringify(dir)}))) } catch (e) { console.log(JSON.stringify(e.code)) }`;
    const seen = async (dir: string) => JSON.parse(await kubectl(env, ['-n', 'kubevirt', 'exec', handler.metadata?.name ?? '', '--', 'node', '-e', list(dir)])) as unknown;
    // The handler sees the pod's directory (that is how it reaches launchers), but the tmpfs volumes in it are empty.
    expect(await seen(volumes)).toEqual(expect.arrayContaining(['kubernetes.io~secret', 'kubernetes.io~projected']));
    expect(await seen(path.join(volumes, 'kubernetes.io~secret', 'marker'))).toEqual([]);
    expect(await seen(tokenDir)).toEqual([]);
  });
});
