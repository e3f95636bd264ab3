// A Deployment of a locally built image (no registry) runs on the real kubelet + containerd;
// kubectl logs and exec go through the apiserver to the kubelet; a pod reaches the apiserver
// through the kubernetes Service (kube-proxy) with its ServiceAccount token.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { buildTestImage, clusterEnv, freshNamespace, kubectl, requireCluster, type ClusterEnv } from './cluster-env.js';
import { eventually } from '../support/eventually.js';

const namespace = 'kubevm-cluster-workload';
let env: ClusterEnv;
let image: string;

beforeAll(async () => {
  env = clusterEnv();
  await requireCluster(env);
  image = await buildTestImage();
  await freshNamespace(env, namespace);
}, 240_000);

afterAll(async () => {
  if (env) await kubectl(env, ['delete', 'namespace', namespace, '--wait=false']).catch(() => undefined);
}, 30_000);

describe('a Deployment with a locally built image', () => {
  it('reaches Running on a node', async () => {
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'hello', namespace },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'hello' } },
        template: {
          metadata: { labels: { app: 'hello' } },
          spec: {
            containers: [{ name: 'hello', image, imagePullPolicy: 'IfNotPresent', args: ['hello'] }],
            terminationGracePeriodSeconds: 1,
          },
        },
      },
    };
    await kubectl(env, ['apply', '-f', '-'], { input: JSON.stringify(deployment) });
    await kubectl(env, ['-n', namespace, 'rollout', 'status', 'deployment/hello', '--timeout=120s'], { timeoutMs: 130_000 });
    const pod = JSON.parse(await kubectl(env, ['-n', namespace, 'get', 'pods', '-l', 'app=hello', '-o', 'json'])) as {
      items: Array<{ spec: { nodeName: string }; status: { phase: string; podIP: string } }>;
    };
    expect(pod.items).toHaveLength(1);
    expect(pod.items[0]?.status.phase).toBe('Running');
    // Node 1's pod CIDR is 10.244.0.0/24, node 2's (KUBEVM_NODES=2) 10.244.1.0/24.
    expect(pod.items[0]?.status.podIP).toMatch(/^10\.244\.[01]\.\d+$/);
    if (env.nodeName) expect([env.nodeName, env.node2Name].filter(Boolean)).toContain(pod.items[0]?.spec.nodeName);
  }, 150_000);

  it('serves its output to kubectl logs', async () => {
    const logs = await eventually('the greeting in the logs', 30_000, async () => {
      const out = await kubectl(env, ['-n', namespace, 'logs', 'deployment/hello']);
      return out.includes('hello from kubevm cluster-test') ? out : undefined;
    });
    expect(logs).toContain('hello from kubevm cluster-test');
  }, 40_000);

  it('runs commands through kubectl exec', async () => {
    const out = await kubectl(env, ['-n', namespace, 'exec', 'deployment/hello', '--', '/testserver', 'echo', 'exec', 'works']);
    expect(out.trim()).toBe('exec works');
  }, 30_000);

  it('reaches the apiserver through the kubernetes Service with its ServiceAccount token', async () => {
    const out = await kubectl(env, ['-n', namespace, 'exec', 'deployment/hello', '--', '/testserver', 'kube-version']);
    const version = JSON.parse(out) as { gitVersion: string };
    const server = JSON.parse(await kubectl(env, ['get', '--raw', '/version'])) as { gitVersion: string };
    expect(version.gitVersion).toBe(server.gitVersion);
  }, 30_000);
});
