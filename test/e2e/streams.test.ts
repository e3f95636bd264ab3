// Console, VNC, screenshot and port-forward on the real cluster with kubevm installed (make images,
// scripts/install-kubevm.sh): client → kube-apiserver (authentication, RBAC, the websocket
// upgrade) → the kubevm api-server (front proxy, SubjectAccessReview) → the node handler of the
// VMI's node (mutual TLS, ADR 0014) → the launcher → QEMU and the guest. One running test guest
// (a shell on its serial console, an HTTP server on port 8080) serves every test, first through
// plain websockets as KubeVirt's protocol defines them, then through KubeVirt's own virtctl.
// Fails, never skips, when the cluster or kubevm is missing.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFile, spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request } from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import type { KubeClient, KubeObject } from '../../runtime/kube.js';
import { clusterEnv, run, type ClusterEnv } from '../cluster/cluster-env.js';
import { clusterClient, createTestNamespace, deleteNamespace, requireCluster } from '../integration/runtime-support.js';
import { eventually } from '../support/eventually.js';
import { builtVirtctl, guestConsole, runningVmiUid, smallVmiSpec, vmResource } from './small-vm.js';
import { byteReader, rfbHandshake } from './support/rfb.js';
import { adminTls, includes, openStream as openAdminStream, receive } from './support/streams.js';

jest.setTimeout(300_000);

let client: KubeClient;
let env: ClusterEnv;
let namespace: string;
let virtctlPath: string;
let keyDir: string;
const vmName = 'streams';

const subresourcePath = (kind: 'virtualmachines' | 'virtualmachineinstances', sub: string) => `/apis/subresources.kubevirt.io/v1/namespaces/${namespace}/${kind}/${vmName}/${sub}`;

/** A websocket to a stream subresource, as the admin. */
const openStream = (path: string): Promise<WebSocket> => openAdminStream(env.kubeconfig, path);

/** A GET returning the raw body (a PNG). */
function getBinary(path: string): Promise<{ status: number; type: string; body: Buffer }> {
  const tls = adminTls(env.kubeconfig);
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, tls.server), { ca: tls.ca, cert: tls.cert, key: tls.key, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks) }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** A process whose output the test reads as it comes. */
function start(args: string[]): { child: ChildProcessWithoutNullStreams; output: () => string; exited: Promise<number> } {
  const child = spawn(virtctlPath, ['--kubeconfig', env.kubeconfig, '-n', namespace, ...args]);
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  child.stdin.on('error', () => undefined);
  const exited = new Promise<number>((resolve) => child.once('close', (code) => resolve(code ?? 128)));
  return { child, output: () => output, exited };
}

/** An HTTP/1.0 GET over a raw TCP connection to localhost:port. */
function httpGet(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ host: '127.0.0.1', port }, () => socket.write('GET / HTTP/1.0\r\nHost: guest\r\n\r\n'));
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
  });
}

beforeAll(async () => {
  env = clusterEnv();
  client = clusterClient();
  await requireCluster(client);
  virtctlPath = await builtVirtctl();
  namespace = await createTestNamespace(client, 'kubevm-e2e-streams');
  keyDir = mkdtempSync(join(tmpdir(), 'kubevm-e2e-ssh-'));
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'kubevm-e2e', '-f', join(keyDir, 'key')]);
  const sshKey = readFileSync(join(keyDir, 'key.pub')).toString('base64');
  const spec = smallVmiSpec() as { domain: { firmware: { kernelBoot: { kernelArgs: string } } } };
  spec.domain.firmware.kernelBoot.kernelArgs = `console=ttyS0 kubevm.net=dhcp kubevm.http=8080 kubevm.shell kubevm.counter=0 kubevm.ssh=${sshKey}`;
  await client.resource<KubeObject & { spec: unknown }>(vmResource).create({
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: vmName, namespace },
    spec: { runStrategy: 'Always', template: { spec } },
  });
  await runningVmiUid(client, namespace, vmName);
  await eventually('the guest ready, its HTTP server listening', 120_000, async () => {
    const log = await guestConsole(client, namespace, vmName);
    return log.includes('KUBEVM-HTTP listening on 8080') && log.includes('KUBEVM-SSH listening on 22') && log.includes('KUBEVM-READY');
  });
}, 1_700_000);

afterAll(async () => {
  if (keyDir) rmSync(keyDir, { recursive: true, force: true });
  if (namespace) await deleteNamespace(client, namespace);
  client?.close();
});

describe('streams through the kube-apiserver', () => {
  it('console: a websocket reaches the serial console both ways; a second console replaces the first', async () => {
    const first = await openStream(subresourcePath('virtualmachineinstances', 'console'));
    expect(first.protocol).toBe('plain.kubevirt.io');
    first.send(Buffer.from('echo KUBEVM-SUM-$((20+22))\r'));
    await receive(first, includes('KUBEVM-SUM-42'));

    const firstClosed = new Promise<void>((resolve) => first.once('close', () => resolve()));
    const second = await openStream(subresourcePath('virtualmachineinstances', 'console'));
    await firstClosed;
    second.send(Buffer.from('echo KUBEVM-AGAIN-$((1+2))\r'));
    await receive(second, includes('KUBEVM-AGAIN-3'));
    second.close();
  });

  it('vnc: completes the RFB handshake; the screenshot is a PNG of that display', async () => {
    const vnc = await openStream(subresourcePath('virtualmachineinstances', 'vnc'));
    const read = byteReader((push) => vnc.on('message', (data: Buffer, isBinary: boolean) => isBinary && push(data)));
    const display = await rfbHandshake(read, (b) => vnc.send(b));
    expect(display.width).toBeGreaterThan(0);
    vnc.close();

    const shot = await getBinary(subresourcePath('virtualmachineinstances', 'vnc/screenshot'));
    expect(shot.status).toBe(200);
    expect(shot.type).toBe('image/png');
    expect(shot.body.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect({ width: shot.body.readUInt32BE(16), height: shot.body.readUInt32BE(20) }).toEqual(display);
  });

  it('portforward: reaches the guest\'s HTTP server through the VMI and through the VM', async () => {
    for (const path of [subresourcePath('virtualmachineinstances', 'portforward/8080'), subresourcePath('virtualmachines', 'portforward/8080/tcp')]) {
      const tunnel = await openStream(path);
      tunnel.send(Buffer.from('GET / HTTP/1.0\r\nHost: guest\r\n\r\n'));
      const answer = (await receive(tunnel, includes('kubevm-guest-http'))).toString();
      expect(answer).toMatch(/^HTTP\/1\.[01] 200/);
      tunnel.close();
    }
    await expect(openStream(subresourcePath('virtualmachineinstances', 'portforward/8080/udp'))).rejects.toThrow(/400 .*udp/);
  });
});

describe('KubeVirt\'s virtctl', () => {
  it('console: types a command and reads its output, Ctrl+] leaves', async () => {
    const console = start(['console', vmName]);
    await eventually(() => `virtctl console connected (${console.output()})`, 60_000, () => console.output().includes('Successfully connected'));
    console.child.stdin.write('echo KUBEVM-VIRTCTL-$((6*7))\r');
    await eventually(() => `the command's output (${console.output().slice(-300)})`, 30_000, () => console.output().includes('KUBEVM-VIRTCTL-42'));
    console.child.stdin.write('\x1d');
    expect(await console.exited).toBe(0);
  });

  it('vnc --proxy-only: serves the VNC stream on a local port', async () => {
    const proxy = start(['vnc', '--proxy-only', vmName]);
    try {
      const port = await eventually(() => `virtctl's port (${proxy.output()})`, 60_000, () => {
        const match = /\{"port":(\d+)\}/.exec(proxy.output());
        return match ? Number(match[1]) : undefined;
      });
      const socket = net.createConnection({ host: '127.0.0.1', port });
      const read = byteReader((push) => socket.on('data', push));
      const display = await rfbHandshake(read, (b) => socket.write(b));
      expect(display.width).toBeGreaterThan(0);
      socket.destroy();
    } finally {
      proxy.child.kill('SIGINT');
      await proxy.exited;
    }
  });

  it('port-forward: a local port reaches the guest\'s HTTP server', async () => {
    const localPort = 18_000 + Math.floor(Math.random() * 2000);
    const forward = start(['port-forward', `vm/${vmName}`, `${localPort}:8080`]);
    try {
      const page = await eventually(() => `a page through virtctl port-forward (${forward.output()})`, 60_000, async () => {
        const text = await httpGet(localPort).catch(() => '');
        return text.includes('kubevm-guest-http') ? text : undefined;
      });
      expect(page).toMatch(/^HTTP\/1\.[01] 200/);
    } finally {
      forward.child.kill('SIGINT');
      await forward.exited;
    }
  });

  it('ssh: runs a command in the guest through the local ssh client over port-forward', async () => {
    // virtctl runs ssh with itself as the ProxyCommand (port-forward --stdio), which reads KUBECONFIG.
    const args = ['ssh', '-n', namespace, '-i', join(keyDir, 'key'), '-t', '-o StrictHostKeyChecking=no', '-t', '-o UserKnownHostsFile=/dev/null', '-t', '-o BatchMode=yes'];
    const out = await new Promise<string>((resolve, reject) =>
      execFile(virtctlPath, [...args, '--command', 'echo KUBEVM-SSH-$((3*3))', `root@vmi/${vmName}`], { env: { ...process.env, KUBECONFIG: env.kubeconfig }, timeout: 60_000 }, (error, stdout, stderr) =>
        error ? reject(new Error(`virtctl ssh: ${error.message}: ${stderr}`)) : resolve(stdout),
      ),
    );
    expect(out.trim()).toBe('KUBEVM-SSH-9');
  });
});
