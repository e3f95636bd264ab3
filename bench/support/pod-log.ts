// Waiting for a line in a container's log as it is written: one streamed request (follow=true),
// not a poll that reads the whole log again and again through the API server and the kubelet.
import * as https from 'node:https';
import type { KubeClient } from '../../runtime/kube.js';

/**
 * Follows a container's log until `marker` appears in it: resolves with the time it was read, or
 * undefined when the stream ends (the container stopped) or `signal` aborts first; rejects when the
 * API server refuses the request or the connection fails. The log is streamed from its
 * beginning, so a marker written before the call is found too.
 */
export async function whenLogShows(client: KubeClient, target: { namespace: string; pod: string; container: string }, marker: string, signal: AbortSignal): Promise<number | undefined> {
  const server = client.kubeConfig.getCurrentCluster()?.server;
  if (!server) throw new Error('the kubeconfig names no API server');
  const url = new URL(`${server}/api/v1/namespaces/${encodeURIComponent(target.namespace)}/pods/${encodeURIComponent(target.pod)}/log`);
  url.searchParams.set('container', target.container);
  url.searchParams.set('follow', 'true');
  const options: https.RequestOptions = { host: url.hostname, port: url.port, path: `${url.pathname}${url.search}`, headers: {} };
  await client.kubeConfig.applyToHTTPSOptions(options);
  return new Promise((resolve, reject) => {
    if (signal.aborted) return resolve(undefined);
    const req = https.get({ ...options, signal }, (res) => {
      if (res.statusCode !== 200) {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => reject(new Error(`${target.namespace}/${target.pod} log: ${String(res.statusCode)} ${body.slice(0, 300)}`)));
        return;
      }
      // The marker may arrive split over two chunks: keep the end of the previous one.
      let tail = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        const text = tail + chunk;
        if (text.includes(marker)) {
          resolve(Date.now());
          req.destroy();
        }
        tail = text.slice(-marker.length);
      });
      res.on('end', () => resolve(undefined));
      res.on('error', (error) => (signal.aborted ? resolve(undefined) : reject(error)));
    });
    req.on('error', (error) => (signal.aborted ? resolve(undefined) : reject(error)));
  });
}
