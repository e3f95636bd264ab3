// API requests by the client that made them, between two moments of a bench run. Each client
// counts its own requests: kubevm's pods kubevirt_rest_client_requests_total (over their
// authorized /metrics, summed per component), the kubelets, kube-scheduler, kube-controller-manager
// and kube-proxy rest_client_requests_total (the kubelets through the API server's node proxy, the
// others on this host, where the local cluster runs them). kube-apiserver's apiserver_request_total
// counts every client: what none of the others claims is the bench's own requests and any client
// not listed. A client counts a watch when it opens; the API server when it ends. The
// TokenReviews and SubjectAccessReviews are left out everywhere: in a bench's span they are the
// authorization of its own scrapes (each /metrics read costs the component one of each).
import * as http from 'node:http';
import * as https from 'node:https';
import { HttpMethod, KubeConfig } from '@kubernetes/client-node';
import type { V1Pod } from '@kubernetes/client-node';
import type { KubeClient, KubeObject } from '../../runtime/kube.js';
import { coreResources } from '../../runtime/kube.js';
import { scrape, scraperToken } from '../../test/support/metrics-scraper.js';
import { labelsOf, parseSamples } from './prometheus.js';
import type { Samples } from './prometheus.js';

/** The component kube-apiserver's own count is kept under. */
export const EVERY_CLIENT = 'kube-apiserver, every client';
/** What the API server counted and no listed client claims. */
export const UNCLAIMED = 'unclaimed (the bench itself, unlisted clients)';
const KUBEVM_NAMESPACE = 'kubevirt';
const WRITE_VERBS = new Set(['POST', 'PUT', 'PATCH', 'APPLY', 'DELETE', 'DELETECOLLECTION']);
/** The scrapes' own authorization: what the components and the API server do for each /metrics read. */
const SCRAPE_AUTHORIZATION = new Set(['POST tokenreviews', 'POST subjectaccessreviews']);

/** Requests per component, each counted by "VERB resource" (the resource where the client names it). */
export type RequestSample = Map<string, Map<string, number>>;

/** One component's requests between two samples, per VM of the span. */
export interface ComponentRequests {
  component: string;
  perVm: number;
  writesPerVm: number;
  /** Writes per VM by "VERB resource", largest first. */
  writesByKind: Record<string, number>;
}

/** Counts of one request metric by "VERB resource"; `verb` and `resource` name the labels that carry them. */
export function countsOf(samples: Samples, metric: string, verb: string, resource: string | undefined): Map<string, number> {
  const counts = new Map<string, number>();
  for (const [key, value] of samples) {
    if (!key.startsWith(`${metric}{`)) continue;
    const labels = labelsOf(key);
    const subresource = labels['subresource'] ? `/${labels['subresource']}` : '';
    const kind = [labels[verb] ?? '?', resource ? `${labels[resource] ?? ''}${subresource}` : ''].join(' ').trim();
    if (SCRAPE_AUTHORIZATION.has(kind)) continue;
    counts.set(kind, (counts.get(kind) ?? 0) + value);
  }
  return counts;
}

function add(into: Map<string, number>, from: Map<string, number>): Map<string, number> {
  for (const [kind, n] of from) into.set(kind, (into.get(kind) ?? 0) + n);
  return into;
}

/** GET of a metrics endpoint on this host: over TLS with the kubeconfig's client credentials, or plain HTTP. */
async function scrapeHost(url: string, kubeConfig: KubeConfig): Promise<string> {
  const target = new URL(url);
  const options: https.RequestOptions = { host: target.hostname, port: target.port, path: target.pathname, timeout: 10_000 };
  if (target.protocol === 'https:') {
    await kubeConfig.applyToHTTPSOptions(options);
    // The daemons serve self-signed certificates on 127.0.0.1; what matters here is who asks.
    options.rejectUnauthorized = false;
  }
  const get = target.protocol === 'https:' ? https.get : http.get;
  return new Promise((resolve, reject) => {
    const req = get(options, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${url} answered ${String(res.statusCode)}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url}`)));
    req.on('error', reject);
  });
}

/** The port a kubevm pod serves /metrics on: its KUBEVM_METRICS_PORT, as the operator rendered it. */
function metricsPort(pod: V1Pod): number | undefined {
  const value = pod.spec?.containers.flatMap((c) => c.env ?? []).find((e) => e.name === 'KUBEVM_METRICS_PORT')?.value;
  return value ? Number(value) : undefined;
}

/** Every listed client's request counts now; a source that cannot be read is left out, with a line on stderr. */
export async function sampleRequests(client: KubeClient): Promise<RequestSample> {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  const token = await scraperToken(client, 'kubevm-bench-scraper', true);
  const sources: Array<[string, () => Promise<Map<string, number>>]> = [
    [EVERY_CLIENT, async () => countsOf(parseSamples(String(await client.request(HttpMethod.GET, '/metrics'))), 'apiserver_request_total', 'verb', 'resource')],
    ['kube-scheduler', async () => countsOf(parseSamples(await scrapeHost('https://127.0.0.1:10259/metrics', kubeConfig)), 'rest_client_requests_total', 'method', undefined)],
    ['kube-controller-manager', async () => countsOf(parseSamples(await scrapeHost('https://127.0.0.1:10257/metrics', kubeConfig)), 'rest_client_requests_total', 'method', undefined)],
    ['kube-proxy', async () => countsOf(parseSamples(await scrapeHost('http://127.0.0.1:10249/metrics', kubeConfig)), 'rest_client_requests_total', 'method', undefined)],
  ];
  const nodes = await client.resource<KubeObject>(coreResources.nodes).list();
  const nodeNames = nodes.items.flatMap((n) => n.metadata?.name ?? []);
  sources.push([
    'kubelet',
    async () => {
      const counts = new Map<string, number>();
      for (const name of nodeNames) add(counts, countsOf(parseSamples(String(await client.request(HttpMethod.GET, `/api/v1/nodes/${name}/proxy/metrics`))), 'rest_client_requests_total', 'method', undefined));
      return counts;
    },
  ]);
  const pods = await client.resource<V1Pod & KubeObject>(coreResources.pods).list({ namespace: KUBEVM_NAMESPACE, labelSelector: 'app.kubernetes.io/name=kubevm,app.kubernetes.io/component' });
  const kubevmPods = pods.items.filter((p) => p.status?.phase === 'Running' && p.status.podIP && !p.metadata?.deletionTimestamp);
  for (const component of new Set(kubevmPods.map((p) => p.metadata?.labels?.['app.kubernetes.io/component'] ?? '?'))) {
    sources.push([
      `kubevm ${component}`,
      async () => {
        const counts = new Map<string, number>();
        for (const pod of kubevmPods.filter((p) => p.metadata?.labels?.['app.kubernetes.io/component'] === component)) {
          const port = metricsPort(pod);
          if (!port || !pod.status?.podIP) throw new Error(`${pod.metadata?.name ?? '?'}: no metrics port or IP`);
          const answer = await scrape(pod.status.podIP, port, token);
          if (answer.status !== 200) throw new Error(`${pod.metadata?.name ?? '?'}: /metrics answered ${String(answer.status)}`);
          add(counts, countsOf(parseSamples(answer.body), 'kubevirt_rest_client_requests_total', 'method', 'resource'));
        }
        return counts;
      },
    ]);
  }
  const sample: RequestSample = new Map();
  await Promise.all(
    sources.map(async ([component, read]) => {
      try {
        sample.set(component, await read());
      } catch (error) {
        console.error(`API requests of ${component} not counted: ${error instanceof Error ? error.message : String(error)}`);
      }
    }),
  );
  return sample;
}

/**
 * Each component's requests from `before` to `after`, per VM, largest first, and what the API
 * server counted beyond the listed clients. A component missing from either sample is left out.
 */
export function requestsBetween(before: RequestSample, after: RequestSample, vms: number): ComponentRequests[] {
  const round = (n: number) => Math.round((n / vms) * 100) / 100;
  const delta = (component: string): Map<string, number> | undefined => {
    const a = after.get(component);
    const b = before.get(component);
    if (!a || !b) return undefined;
    return new Map([...a].map(([kind, n]) => [kind, n - (b.get(kind) ?? 0)] as [string, number]).filter(([, n]) => n > 0));
  };
  const total = (counts: Map<string, number>) => [...counts.values()].reduce((s, n) => s + n, 0);
  const rows: ComponentRequests[] = [];
  const claimed = { all: 0, writes: 0 };
  for (const component of after.keys()) {
    const counts = delta(component);
    if (!counts) continue;
    const writes = [...counts].filter(([kind]) => WRITE_VERBS.has(kind.split(' ')[0] ?? ''));
    if (component !== EVERY_CLIENT) {
      claimed.all += total(counts);
      claimed.writes += total(new Map(writes));
    }
    rows.push({
      component,
      perVm: round(total(counts)),
      writesPerVm: round(writes.reduce((s, [, n]) => s + n, 0)),
      writesByKind: Object.fromEntries(writes.sort((x, y) => y[1] - x[1]).map(([kind, n]) => [kind, round(n)])),
    });
  }
  const every = rows.find((row) => row.component === EVERY_CLIENT);
  if (every) {
    rows.push({
      component: UNCLAIMED,
      perVm: Math.max(0, Math.round((every.perVm - claimed.all / vms) * 100) / 100),
      writesPerVm: Math.max(0, Math.round((every.writesPerVm - claimed.writes / vms) * 100) / 100),
      writesByKind: {},
    });
  }
  return rows.sort((x, y) => y.perVm - x.perVm);
}
