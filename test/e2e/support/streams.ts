// Stream subresources (console, VNC, port-forward) through the kube-apiserver as the admin of the
// local cluster, with KubeVirt's plain.kubevirt.io websocket protocol: for the suites that check
// streams end to end (streams.test.ts, the Helm suite).
import { readFileSync } from 'node:fs';
import { WebSocket } from 'ws';
import YAML from 'yaml';

/** The admin kubeconfig's server and client certificate, for requests the helpers cannot make. */
export function adminTls(kubeconfig: string): { server: string; ca: Buffer; cert: Buffer; key: Buffer } {
  const config = YAML.parse(readFileSync(kubeconfig, 'utf8')) as {
    clusters: Array<{ cluster: { server: string; 'certificate-authority-data': string } }>;
    users: Array<{ user: { 'client-certificate-data': string; 'client-key-data': string } }>;
  };
  const cluster = config.clusters[0]?.cluster;
  const user = config.users[0]?.user;
  if (!cluster || !user) throw new Error(`${kubeconfig} has no cluster or user`);
  const b64 = (s: string) => Buffer.from(s, 'base64');
  return { server: cluster.server, ca: b64(cluster['certificate-authority-data']), cert: b64(user['client-certificate-data']), key: b64(user['client-key-data']) };
}

/** A websocket to a stream subresource, as the admin, offering KubeVirt's subprotocol. */
export function openStream(kubeconfig: string, path: string): Promise<WebSocket> {
  const tls = adminTls(kubeconfig);
  const socket = new WebSocket(new URL(path, tls.server.replace(/^https/, 'wss')), ['plain.kubevirt.io'], { ca: tls.ca, cert: tls.cert, key: tls.key });
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve(socket));
    socket.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => reject(new Error(`${path}: ${res.statusCode} ${body}`)));
    });
    socket.once('error', reject);
  });
}

/** Collects a websocket's binary messages until `done` accepts what arrived. */
export function receive(socket: WebSocket, done: (bytes: Buffer) => boolean, timeoutMs = 30_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let bytes = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.off('message', onMessage);
      reject(new Error(`only received ${JSON.stringify(bytes.toString('latin1').slice(-300))}`));
    }, timeoutMs);
    const onMessage = (data: Buffer, isBinary: boolean) => {
      if (!isBinary) return;
      bytes = Buffer.concat([bytes, data]);
      if (done(bytes)) {
        clearTimeout(timer);
        socket.off('message', onMessage);
        resolve(bytes);
      }
    };
    socket.on('message', onMessage);
  });
}

export const includes = (text: string) => (bytes: Buffer) => bytes.toString('latin1').includes(text);
