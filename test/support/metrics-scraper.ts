// A metrics scraper for the cluster suites: a service account bound to kubevm-metrics-reader (as
// an admin binds Prometheus'), its token, and HTTPS GETs of a pod's /metrics with it; verified
// with the operator's CA bundle and the component's metrics name when `trust` is given
// (certificates.test.ts), unverified otherwise (guards.test.ts tests who may read).
import * as https from 'node:https';
import { HttpMethod } from '@kubernetes/client-node';
import type { KubeClient, KubeObject } from '../../runtime/kube.js';
import { coreResources, isNotFound } from '../../runtime/kube.js';
import { renderMetricsReaderRole } from '../../operator/render/rbac.js';

const NAMESPACE = 'kubevirt';

async function ensure(client: KubeClient, path: string, object: KubeObject & { metadata: { name: string } }): Promise<void> {
  try {
    await client.request(HttpMethod.GET, `${path}/${object.metadata.name}`);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await client.request(HttpMethod.POST, path, { body: object });
  }
}

/** A token of service account `name` in kubevirt; bound to kubevm-metrics-reader when `reader`. */
export async function scraperToken(client: KubeClient, name: string, reader: boolean): Promise<string> {
  await ensure(client, `/api/v1/namespaces/${NAMESPACE}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: NAMESPACE } });
  if (reader) {
    const role = renderMetricsReaderRole({ namespace: NAMESPACE, registry: 'kubevm', tag: 'test', pullPolicy: 'IfNotPresent' });
    await ensure(client, '/apis/rbac.authorization.k8s.io/v1/clusterroles', role);
    await ensure(client, '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: `${name}-metrics-reader` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata.name },
      subjects: [{ kind: 'ServiceAccount', name, namespace: NAMESPACE }],
    } as KubeObject & { metadata: { name: string } });
  }
  const answer = (await client.request(HttpMethod.POST, `/api/v1/namespaces/${NAMESPACE}/serviceaccounts/${name}/token`, {
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 600 } },
  })) as { status?: { token?: string } };
  if (!answer.status?.token) throw new Error(`no token for service account ${name}`);
  return answer.status.token;
}

/** GET https://<pod IP>:<port><path>; the status and the body. */
export function scrape(ip: string, port: number, token: string | undefined, path = '/metrics', trust?: { ca: string; servername: string }): Promise<{ status: number; body: string }> {
  const verification = trust ? { ca: trust.ca, servername: trust.servername, agent: false as const } : { rejectUnauthorized: false };
  return new Promise((resolve, reject) => {
    const req = https.get({ host: ip, port, path, ...verification, timeout: 10_000, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${ip}:${port}`)));
    req.on('error', reject);
  });
}

/** The IP of the first running pod of a kubevm component. */
export async function componentPodIp(client: KubeClient, component: string): Promise<{ name: string; ip: string }> {
  const pods = await client.resource<KubeObject & { status?: { phase?: string; podIP?: string } }>(coreResources.pods).list({ namespace: NAMESPACE, labelSelector: `app.kubernetes.io/component=${component}` });
  const pod = pods.items.find((p) => p.status?.phase === 'Running' && p.status.podIP && !p.metadata?.deletionTimestamp);
  if (!pod?.metadata?.name || !pod.status?.podIP) throw new Error(`no running ${component} pod with an IP`);
  return { name: pod.metadata.name, ip: pod.status.podIP };
}
