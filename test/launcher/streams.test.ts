// The stream path below the api-server, with every part real: the api-server's node-handler
// client (api-server/node-streams.ts) → mutual TLS with the certificates the operator issues (operator/pki.ts)
// → the node handler's stream server (node-handler/stream-server.ts), reaching the launcher
// through the kubelet's pod directory layout → a REAL launcher and QEMU (TCG) running the test
// guest. Shows: the serial console both ways and the second console replacing the first; VNC's RFB
// handshake and a preserved session refused; the screenshot is a PNG of the display VNC reports;
// port-forward reaches the guest's HTTP and SSH servers; and the node handler serves nobody but the
// api-server, and nothing but this node's running VMIs; a renewed certificate is taken without a restart.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { NodeStreams } from '../../api-server/node-streams.js';
import type { StreamTls } from '../../api-server/node-streams.js';
import type { StatusError } from '../../api-server/status.js';
import { StreamServer, nodeStreamsActive } from '../../node-handler/stream-server.js';
import { API_SERVER_STREAMS_TLS_SECRET, NODE_HANDLER_STREAM_SERVER_NAME, NODE_HANDLER_STREAMS_TLS_SECRET } from '../../runtime/contracts/streams.js';
import { issueLeafCertificate } from '../../runtime/certificates.js';
import { CA_SECRET } from '../../operator/pki.js';
import { bridge } from '../../runtime/stream-bridge.js';
import { eventually } from '../support/eventually.js';
import { issuedStreamSecrets, makePodsDir, serveNodeStreams, startLauncher, testVmi } from './harness.js';
import type { LauncherRun, PodsDir } from './harness.js';

jest.setTimeout(180_000);

const podUid = 'pod-5eam5';
const node = 'node1';
const namespace = 'launcher-test';
const name = 'streams';

let run: LauncherRun;
let pods: PodsDir;
let certs: string;
let server: StreamServer;
let streams: NodeStreams;
let port = 0;

const pki = issuedStreamSecrets();

beforeAll(async () => {
  certs = mkdtempSync(path.join(os.tmpdir(), 'kubevm-stream-keys-'));
  pods = makePodsDir();
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'kubevm-test', '-f', path.join(certs, 'ssh-key')]);
  const sshKey = readFileSync(path.join(certs, 'ssh-key.pub')).toString('base64');
  const vmi = testVmi(name, `kubevm.net=dhcp kubevm.http=8080 kubevm.shell kubevm.counter=0 kubevm.ssh=${sshKey}`);
  delete vmi.spec.domain.devices.autoattachGraphicsDevice; // VNC and screenshots need the display
  run = await startLauncher(vmi, { runDir: pods.privateDir(podUid) });
  expect((await run.client.call('start')).phase).toBe('Running');
  await run.waitForSerial(/KUBEVM-HTTP listening on 8080/, 90_000);
  await run.waitForSerial(/KUBEVM-SSH listening on 22/, 30_000);
  await run.waitForSerial(/KUBEVM-READY/, 30_000);

  const served = await serveNodeStreams({ pki, pods, podUid, node, namespace, name });
  ({ server, streams, port } = served);
});

afterAll(async () => {
  await server?.close();
  await run?.stop();
  pods?.remove();
  if (certs) rmSync(certs, { recursive: true, force: true });
});

/** Reads from `socket` until `done` says the text so far is enough. */
function readUntil(socket: net.Socket, done: (bytes: Buffer) => boolean, timeoutMs = 20_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let bytes = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.off('data', onData);
      reject(new Error(`only read: ${JSON.stringify(bytes.toString('latin1').slice(-300))}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      bytes = Buffer.concat([bytes, chunk]);
      if (done(bytes)) {
        clearTimeout(timer);
        socket.off('data', onData);
        resolve(bytes);
      }
    };
    socket.on('data', onData);
  });
}

const closed = (socket: net.Socket) => new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));

/** RFB 3.8 up to ServerInit (security type None): the framebuffer's size and the desktop name. */
async function rfbHandshake(socket: net.Socket): Promise<{ width: number; height: number; name: string }> {
  expect((await readUntil(socket, (b) => b.length >= 12)).toString('latin1')).toBe('RFB 003.008\n');
  socket.write('RFB 003.008\n');
  const types = await readUntil(socket, (b) => b.length >= 1 && b.length >= 1 + (b[0] ?? 0));
  expect([...types.subarray(1)]).toContain(1); // None: QEMU's VNC without a password
  socket.write(Buffer.from([1]));
  const result = await readUntil(socket, (b) => b.length >= 4);
  expect(result.readUInt32BE(0)).toBe(0);
  socket.write(Buffer.from([1])); // ClientInit, shared
  const init = await readUntil(socket, (b) => b.length >= 24 && b.length >= 24 + b.readUInt32BE(20));
  return { width: init.readUInt16BE(0), height: init.readUInt16BE(2), name: init.subarray(24, 24 + init.readUInt32BE(20)).toString('utf8') };
}

describe('api-server → node handler → launcher streams (real QEMU)', () => {
  it('reaches the guest\'s serial console both ways; a second console replaces the first', async () => {
    const first = await streams.open(node, { kind: 'console', namespace, name });
    first.write('echo KUBEVM-SUM-$((20+22))\r');
    // The echo of the line shows the expression; only the shell's output shows 42.
    expect((await readUntil(first, (b) => b.toString().includes('KUBEVM-SUM-42'))).toString()).toContain('KUBEVM-SUM-42');

    const second = await streams.open(node, { kind: 'console', namespace, name });
    await closed(first);
    second.write('echo KUBEVM-SECOND-$((1+1))\r');
    await readUntil(second, (b) => b.toString().includes('KUBEVM-SECOND-2'));
    second.destroy();
  });

  it('completes the RFB handshake over VNC, refuses a second client that preserves the session, and screenshots the same display', async () => {
    const vnc = await streams.open(node, { kind: 'vnc', namespace, name, preserveSession: false });
    const display = await rfbHandshake(vnc);
    expect(display.width).toBeGreaterThan(0);
    expect(display.height).toBeGreaterThan(0);
    await expect(streams.open(node, { kind: 'vnc', namespace, name, preserveSession: true })).rejects.toMatchObject({ code: 503, message: expect.stringContaining('Active VNC connection') });

    const png = await streams.screenshot(node, { kind: 'screenshot', namespace, name });
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(png.subarray(12, 16).toString('latin1')).toBe('IHDR');
    expect({ width: png.readUInt32BE(16), height: png.readUInt32BE(20) }).toEqual({ width: display.width, height: display.height });
    vnc.destroy();
  });

  it('forwards TCP connections to the guest\'s HTTP server and, for ssh, its SSH server, each tunnel on its own', async () => {
    const get = async (): Promise<string> => {
      const tunnel = await streams.open(node, { kind: 'portforward', namespace, name, port: 8080 });
      tunnel.write('GET / HTTP/1.0\r\nHost: guest\r\n\r\n');
      const answer = await readUntil(tunnel, (b) => b.toString().includes('kubevm-guest-http'));
      tunnel.destroy();
      return answer.toString();
    };
    const answers = await Promise.all([get(), get()]);
    for (const answer of answers) expect(answer).toMatch(/^HTTP\/1\.[01] 200[\s\S]*kubevm-guest-http/);
    // ssh logs into the guest (dropbear, root with the key) through a tunnel per connection.
    const relay = net.createServer((local) => {
      void streams.open(node, { kind: 'portforward', namespace, name, port: 22 }).then((tunnel) => bridge(local, tunnel), () => local.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', () => resolve()));
    try {
      const sshPort = (relay.address() as net.AddressInfo).port;
      const options = ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-i', path.join(certs, 'ssh-key'), '-p', String(sshPort)];
      const out = await new Promise<string>((resolve, reject) =>
        execFile('ssh', [...options, 'root@127.0.0.1', 'echo KUBEVM-SSH-$((3*3))'], { timeout: 30_000 }, (error, stdout, stderr) => (error ? reject(new Error(`${error.message}: ${stderr}`)) : resolve(stdout))),
      );
      expect(out.trim()).toBe('KUBEVM-SSH-9');
    } finally {
      relay.close();
    }
    // A port nothing listens on: the tunnel opens (slirp accepts) and is closed by the guest's refusal.
    const nothing = await streams.open(node, { kind: 'portforward', namespace, name, port: 9 });
    await closed(nothing);
  });

  it('serves nobody but the api-server, and only this node\'s running VMIs', async () => {
    const ask = (tls: Partial<StreamTls>, requestPath: string) =>
      new Promise<{ code: number; body: string } | { error: string }>((resolve) => {
        const req = https.request(
          { host: '127.0.0.1', port, path: requestPath, ...tls, servername: NODE_HANDLER_STREAM_SERVER_NAME, checkServerIdentity: () => undefined, agent: false },
          (res) => {
            let body = '';
            res.on('data', (chunk: Buffer) => (body += chunk.toString()));
            res.on('end', () => resolve({ code: res.statusCode ?? 0, body }));
          },
        );
        req.on('error', (error) => resolve({ error: error.message }));
        req.end();
      });
    const screenshot = `/v1/namespaces/${namespace}/virtualmachineinstances/${name}/screenshot`;
    const apiServer = pki(API_SERVER_STREAMS_TLS_SECRET);
    expect(await ask(apiServer, screenshot)).toMatchObject({ code: 200 });
    // No client certificate, or one of another CA: the TLS handshake fails.
    expect(await ask({ ca: apiServer.ca }, screenshot)).toHaveProperty('error');
    // Another installation's api-server (another CA): the handshake fails.
    const stranger = issuedStreamSecrets();
    expect(await ask({ ...stranger(API_SERVER_STREAMS_TLS_SECRET), ca: apiServer.ca }, screenshot)).toHaveProperty('error');
    // A client certificate of the right CA under another name: refused by name.
    const other = issueLeafCertificate({ cert: pki(CA_SECRET).cert, key: pki(CA_SECRET).key }, { commonName: 'someone-else', dnsNames: [], usage: 'client' });
    expect(await ask({ ...other, ca: apiServer.ca }, screenshot)).toMatchObject({ code: 403, body: expect.stringContaining('someone-else') });
    // Untrusted paths and names; a VMI this node does not run.
    for (const bad of [
      `/v1/namespaces/${namespace}/virtualmachineinstances/..%2f..%2fetc/console`,
      `/v1/namespaces/${namespace}/virtualmachineinstances/${name}/portforward/99999`,
      `/v1/namespaces/${namespace}/virtualmachineinstances/${name}/exec`,
      `/v1/namespaces/UPPER/virtualmachineinstances/${name}/screenshot`,
    ]) {
      expect(await ask(apiServer, bad)).toMatchObject({ code: 404 });
    }
    expect(await ask(apiServer, `/v1/namespaces/${namespace}/virtualmachineinstances/elsewhere/screenshot`)).toMatchObject({ code: 404, body: expect.stringContaining('not on node node1') });
    const refused = await streams.open(node, { kind: 'console', namespace, name: 'elsewhere' }).catch((error: StatusError) => error);
    expect((refused as StatusError).code).toBe(404);
    // The console still works for the api-server after all that.
    const again = await streams.open(node, { kind: 'console', namespace, name });
    again.write('echo KUBEVM-STILL-$((2+3))\r');
    await readUntil(again, (b) => b.toString().includes('KUBEVM-STILL-5'));
    again.destroy();
    await eventually('no stream left open on the node handler', 5000, async () => (await nodeStreamsActive.get()).values.every((v) => v.value === 0));
  });

  it('takes a new certificate and CA bundle for new handshakes without a restart', async () => {
    const next = issuedStreamSecrets();
    server.setTls(next(NODE_HANDLER_STREAMS_TLS_SECRET));
    try {
      // The old CA's client is refused now; the new one's is served.
      await expect(streams.open(node, { kind: 'console', namespace, name })).rejects.toMatchObject({ code: 503 });
      const renewed = new NodeStreams(async () => ({ host: '127.0.0.1', port }), () => next(API_SERVER_STREAMS_TLS_SECRET));
      const serial = await renewed.open(node, { kind: 'console', namespace, name });
      serial.write('echo KUBEVM-RENEWED-$((3+4))\r');
      await readUntil(serial, (b) => b.toString().includes('KUBEVM-RENEWED-7'));
      serial.destroy();
    } finally {
      server.setTls(pki(NODE_HANDLER_STREAMS_TLS_SECRET));
    }
  });
});
