// The two-node local cluster (KUBEVM_NODES=2 make cluster-up, docs/adr/0015-second-local-node.md):
// both nodes Ready; a pod pinned to each; TCP between the pods both ways, with the sender's own
// pod IP seen by the receiver (no NAT between pods), directly and through a Service whose
// endpoint is on the other node; logs, exec and the kubernetes Service from node 2's pod; and
// the same hostPath (/var/lib/kubelet/pods, with HostToContainer propagation as kubevm's node
// handler mounts it) resolving to each node's own kubelet root.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { eventually } from '../support/eventually.js';
import { buildTestImage, clusterEnv, freshNamespace, kubectl, requireCluster, type ClusterEnv } from './cluster-env.js';

const namespace = 'kubevm-cluster-two-nodes';
const PORT = 9000;
let env: ClusterEnv;
let image: string;

interface PodInfo {
  name: string;
  node: string;
  ip: string;
  uid: string;
}
const pods: Record<'one' | 'two', PodInfo> = {
  one: { name: 'on-node-1', node: '', ip: '', uid: '' },
  two: { name: 'on-node-2', node: '', ip: '', uid: '' },
};

function pod(info: PodInfo): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: info.name, namespace, labels: { pod: info.name } },
    spec: {
      nodeName: info.node,
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'echo',
          image,
          imagePullPolicy: 'IfNotPresent',
          args: ['tcp-echo', String(PORT)],
          // Root, to read the kubelet's pods directory (0750 root).
          securityContext: { runAsUser: 0 },
          // As kubevm's node handler mounts it: new pod mounts on the node must reach the container.
          volumeMounts: [{ name: 'kubelet-pods', mountPath: '/host-pods', readOnly: true, mountPropagation: 'HostToContainer' }],
        },
      ],
      volumes: [{ name: 'kubelet-pods', hostPath: { path: '/var/lib/kubelet/pods', type: 'Directory' } }],
    },
  };
}

function service(target: PodInfo): object {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: target.name, namespace },
    spec: { selector: { pod: target.name }, ports: [{ port: PORT, targetPort: PORT }] },
  };
}

const exec = (from: PodInfo, args: string[]): Promise<string> =>
  kubectl(env, ['-n', namespace, 'exec', from.name, '--', '/testserver', ...args], { timeoutMs: 30_000 });

beforeAll(async () => {
  env = clusterEnv();
  await requireCluster(env);
  if (!env.nodeName || !env.node2Name) {
    throw new Error('this suite needs the two-node cluster: KUBEVM_NODES=2 make cluster-up (the env file names no KUBEVM_NODE2_NAME)');
  }
  pods.one.node = env.nodeName;
  pods.two.node = env.node2Name;
  image = await buildTestImage();
  await freshNamespace(env, namespace);
  const items = [pod(pods.one), pod(pods.two), service(pods.one), service(pods.two)];
  await kubectl(env, ['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }) });
  await kubectl(env, ['-n', namespace, 'wait', '--for=condition=Ready', `pod/${pods.one.name}`, `pod/${pods.two.name}`, '--timeout=120s'], { timeoutMs: 130_000 });
  for (const info of Object.values(pods)) {
    const got = JSON.parse(await kubectl(env, ['-n', namespace, 'get', 'pod', info.name, '-o', 'json'])) as {
      metadata: { uid: string };
      spec: { nodeName: string };
      status: { podIP: string };
    };
    expect(got.spec.nodeName).toBe(info.node);
    info.ip = got.status.podIP;
    info.uid = got.metadata.uid;
  }
}, 300_000);

afterAll(async () => {
  if (env) await kubectl(env, ['delete', 'namespace', namespace, '--wait=false']).catch(() => undefined);
}, 30_000);

describe('the two-node local cluster', () => {
  it('has both nodes Ready, each with its own InternalIP', async () => {
    const nodes = JSON.parse(await kubectl(env, ['get', 'nodes', '-o', 'json'])) as {
      items: Array<{ metadata: { name: string }; status: { conditions: Array<{ type: string; status: string }>; addresses: Array<{ type: string; address: string }> } }>;
    };
    const byName = new Map(nodes.items.map((n) => [n.metadata.name, n]));
    const ips = [env.nodeName, env.node2Name].map((name) => {
      const node = byName.get(name);
      expect(node?.status.conditions.find((c) => c.type === 'Ready')?.status).toBe('True');
      return node?.status.addresses.find((a) => a.type === 'InternalIP')?.address;
    });
    expect(new Set(ips).size).toBe(2);
  });

  it('gives each node its own pod CIDR', () => {
    expect(pods.one.ip).toMatch(/^10\.244\.0\.\d+$/);
    expect(pods.two.ip).toMatch(/^10\.244\.1\.\d+$/);
  });

  it('carries TCP from node 1 to node 2 and back, the receiver seeing the sender\'s pod IP', async () => {
    expect((await exec(pods.one, ['tcp-send', `${pods.two.ip}:${PORT}`, 'from-node-1'])).trim()).toBe(`${pods.one.ip} from-node-1`);
    expect((await exec(pods.two, ['tcp-send', `${pods.one.ip}:${PORT}`, 'from-node-2'])).trim()).toBe(`${pods.two.ip} from-node-2`);
  }, 60_000);

  it('reaches a Service whose endpoint is on the other node, from either node', async () => {
    const clusterIp = async (target: PodInfo): Promise<string> => (await kubectl(env, ['-n', namespace, 'get', 'service', target.name, '-o', 'jsonpath={.spec.clusterIP}'])).trim();
    // Each node's kube-proxy programs the Service's endpoint when it syncs, a moment after the
    // EndpointSlice is written (longer on a loaded machine); until then the Service IP refuses.
    // What is waited for is that: a send that reaches the endpoint (a failed send is retried, and
    // the last failure reported); what the endpoint answered is then checked.
    const viaService = (from: PodInfo, to: PodInfo) =>
      eventually(`${from.name} to reach ${to.name} through its Service`, 45_000, async () => (await exec(from, ['tcp-send', `${await clusterIp(to)}:${PORT}`, 'via-service'])).trim());
    expect(await viaService(pods.one, pods.two)).toBe(`${pods.one.ip} via-service`);
    expect(await viaService(pods.two, pods.one)).toBe(`${pods.two.ip} via-service`);
  }, 120_000);

  it('serves logs and exec of node 2\'s pod through the apiserver', async () => {
    expect(await kubectl(env, ['-n', namespace, 'logs', pods.two.name])).toContain(`tcp-echo listening on :${PORT}`);
    expect((await exec(pods.two, ['echo', 'exec', 'on', 'node', '2'])).trim()).toBe('exec on node 2');
  }, 30_000);

  it('lets node 2\'s pod reach the apiserver through the kubernetes Service', async () => {
    const version = JSON.parse(await exec(pods.two, ['kube-version'])) as { gitVersion: string };
    const server = JSON.parse(await kubectl(env, ['get', '--raw', '/version'])) as { gitVersion: string };
    expect(version.gitVersion).toBe(server.gitVersion);
  }, 30_000);

  it('resolves the same hostPath to each node\'s own kubelet root', async () => {
    const one = (await exec(pods.one, ['ls', '/host-pods'])).split('\n');
    const two = (await exec(pods.two, ['ls', '/host-pods'])).split('\n');
    expect(one).toContain(pods.one.uid);
    expect(one).not.toContain(pods.two.uid);
    expect(two).toContain(pods.two.uid);
    expect(two).not.toContain(pods.one.uid);
  }, 30_000);
});
