// Every endpoint between components is served with a certificate of the operator's CA, as
// installed (no script): a scraper holding only the CA bundle of the Secret kubevm-ca verifies each
// component's /metrics by its name <component>-metrics.kubevirt.svc (the operator's own too, whose
// Secret volume fills in after its pod started), and the node handlers' stream port chains to the
// same CA, serves the api-server's client certificate from its Secret and refuses a connection
// without one. The streams themselves: streams.test.ts.
import { X509Certificate } from 'node:crypto';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { KubeClient, KubeObject } from '../../runtime/kube.js';
import { MANAGED_KINDS } from '../../operator/managed-kinds.js';
import { API_SERVER_STREAMS_TLS_SECRET, NODE_HANDLER_STREAM_PORT, NODE_HANDLER_STREAM_SERVER_NAME, NODE_HANDLER_STREAMS_TLS_SECRET } from '../../runtime/contracts/streams.js';
import { clusterClient, requireCluster } from '../integration/runtime-support.js';
import { eventually } from '../support/eventually.js';
import { componentPodIp, scrape, scraperToken } from '../support/metrics-scraper.js';
import { requireKubevmController } from './kubevm-installed.js';

jest.setTimeout(240_000);

const NAMESPACE = 'kubevirt';
let client: KubeClient;
let ca: string;
let reader: string;

async function secretData(name: string): Promise<Record<string, string>> {
  const secret = await client.resource<KubeObject & { data?: Record<string, string> }>(MANAGED_KINDS.Secret).get(name, NAMESPACE);
  return Object.fromEntries(Object.entries(secret.data ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64').toString()]));
}

beforeAll(async () => {
  client = clusterClient();
  await requireCluster(client);
  await requireKubevmController(client);
  ca = (await secretData('kubevm-ca'))['tls.crt'] ?? '';
  expect(ca).toContain('BEGIN CERTIFICATE');
  reader = await scraperToken(client, 'kubevm-e2e-scraper', true);
});

afterAll(() => client?.close());

describe('the components serve certificates of the operator\'s CA', () => {
  it.each([
    ['controller', 'kubevm-controller', 8443],
    ['node-handler', 'kubevm-node-handler', 8443],
    ['api-server', 'kubevm-api-server', 8444],
    ['operator', 'kubevm-operator', 8443],
  ])('%s: /metrics verifies with the CA bundle, by its name', async (component, name, port) => {
    const { ip } = await componentPodIp(client, component);
    // The operator's pod started before it issued its own certificate: its Secret volume fills in within the kubelet's sync.
    const read = await eventually(
      `${component}'s metrics served with the operator's certificate`,
      150_000,
      async () => {
        const answer = await scrape(ip, port, reader, '/metrics', { ca, servername: `${name}-metrics.${NAMESPACE}.svc` });
        return answer.status === 200 && answer;
      },
      { intervalMs: 2_000 },
    );
    expect(read.body).toContain('# HELP ');
  });

  it('the node handler\'s stream port: chains to the CA under the node handler\'s name, and wants the api-server\'s client certificate', async () => {
    const { ip } = await componentPodIp(client, 'node-handler');
    const apiServer = await secretData(API_SERVER_STREAMS_TLS_SECRET);
    const connect = (options: tls.ConnectionOptions) =>
      new Promise<X509Certificate>((resolve, reject) => {
        const socket = tls.connect({ host: ip, port: NODE_HANDLER_STREAM_PORT, servername: NODE_HANDLER_STREAM_SERVER_NAME, ca, ...options }, () => {
          const peer = new X509Certificate(socket.getPeerX509Certificate()?.raw ?? Buffer.alloc(0));
          // TLS 1.3: the server judges the client certificate after the handshake; a refusal arrives as an alert.
          socket.once('data', () => undefined);
          setTimeout(() => {
            socket.destroy();
            resolve(peer);
          }, 500);
        });
        socket.once('error', reject);
      });
    const peer = await connect({ cert: apiServer['tls.crt'], key: apiServer['tls.key'] });
    expect(peer.subjectAltName).toBe(`DNS:${NODE_HANDLER_STREAM_SERVER_NAME}`);
    expect(peer.checkIssued(new X509Certificate(ca))).toBe(true);
    // The same certificate is in the node handler's Secret, which the operator wrote.
    expect(new X509Certificate((await secretData(NODE_HANDLER_STREAMS_TLS_SECRET))['tls.crt'] ?? '').fingerprint256).toBe(peer.fingerprint256);
    await expect(connect({})).rejects.toThrow(/certificate/i);
  });
});
