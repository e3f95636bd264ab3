// The node handler's stream endpoint for the api-server (KubeVirt's virt-handler console server):
// the serial console, VNC, port-forwarding and screenshots of this node's VMIs, and the guest agent
// commands freeze, unfreeze, userlist and filesystemlist (runtime/contracts/streams.ts, ADR 0014).
// - HTTPS with mutual TLS: the handshake needs a client certificate of the streams CA, and only
//   the api-server's name is served; anyone else in the cluster network gets nothing.
// - Everything in a request is untrusted: the path is matched exactly and its names checked; the
//   VMI must be in this handler's cache, assigned to this node, Running, with its launcher pod
//   here; the launcher is reached through the same symlink-proof socket walk as the command
//   connection, and must say it serves that VMI.
// - One console per VMI: the launcher replaces the attached one (KubeVirt's behaviour), VNC too
//   unless the new client asks to preserve the session. Backpressure and teardown: stream-bridge.
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { Gauge } from 'prom-client';
import { LAUNCHER_UID, nodeLauncherSocketPath } from '../runtime/contracts/launcher-pod.js';
import { DOMAIN_NOT_RUNNING_STEP, LAUNCHER_MAX_LINE_BYTES } from '../runtime/contracts/launcher-protocol.js';
import {
  API_SERVER_STREAM_CLIENT_NAME,
  GUEST_AGENT_FREEZE_TIMEOUT_MS,
  STREAM_UPGRADE_PROTOCOL,
  parseNodeGuestAgentRequest,
  parseNodeStreamPath,
} from '../runtime/contracts/streams.js';
import type { NodeGuestAgentRequest, NodeStreamRequest } from '../runtime/contracts/streams.js';
import type { Logger } from '../runtime/logging.js';
import { registry } from '../runtime/metrics.js';
import { bridge } from '../runtime/stream-bridge.js';
import { LauncherCommandError, LauncherSocketRefused, openLauncherSocket } from './launcher-client.js';
import { requestOnLauncherConnection } from './launcher-request.js';
import type { VirtualMachineInstance } from './vmi-handler.js';
import { activePodOnNode } from './vmi-handler.js';

export const nodeStreamsActive = new Gauge({
  name: 'kubevm_node_handler_streams_active',
  help: 'Streams (console, vnc, portforward) the node handler is relaying between the api-server and launchers.',
  labelNames: ['kind'] as const,
  registers: [registry],
});

/** A console whose reader stalls this long is cut, so the guest's serial port is not held. */
const CONSOLE_STALL_TIMEOUT_MS = 10_000;

export interface StreamServerOptions {
  nodeName: string;
  /** The kubelet's pods directory as mounted in the handler. */
  podsDir: string;
  /** A VMI of this handler's cache, by namespace/name. */
  vmi: (key: string) => VirtualMachineInstance | undefined;
  /** PEM: the serving certificate, its key, and the CA client certificates must chain to. */
  tls: { cert: string | Buffer; key: string | Buffer; ca: string | Buffer };
  /** Client certificate common names served (default: the api-server's). */
  allowedClientNames?: readonly string[];
  /** uid that owns launcher sockets (default the launcher's, 107). */
  launcherUid?: number;
  log: Logger;
}

/** A refusal: the HTTP code and a message for the api-server to pass on. */
class StreamRefused extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export class StreamServer {
  readonly server: https.Server;
  private readonly sockets = new Set<Duplex>();
  private readonly allowed: readonly string[];

  constructor(private readonly options: StreamServerOptions) {
    this.allowed = options.allowedClientNames ?? [API_SERVER_STREAM_CLIENT_NAME];
    this.server = https.createServer(
      { cert: options.tls.cert, key: options.tls.key, ca: options.tls.ca, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' },
      (request, response) => void this.onRequest(request, response),
    );
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
    this.server.on('upgrade', (request: http.IncomingMessage, socket: Duplex, head: Buffer) => void this.onUpgrade(request, socket, head));
    this.server.on('tlsClientError', (error) => options.log.debug({ err: error.message }, 'stream client refused by TLS'));
  }

  /** New handshakes use this certificate and CA bundle (a renewal, a CA rotation); open streams keep theirs. */
  setTls(tls: { cert: string | Buffer; key: string | Buffer; ca: string | Buffer }): void {
    this.server.setSecureContext({ cert: tls.cert, key: tls.key, ca: tls.ca, minVersion: 'TLSv1.2' });
  }

  async listen(port: number, host = '0.0.0.0'): Promise<net.AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    return this.server.address() as net.AddressInfo;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Only the api-server: the TLS layer verified the chain, this checks the name. */
  private clientAllowed(socket: unknown): string | undefined {
    const tls = socket as TLSSocket;
    if (tls.authorized !== true) return 'no verified client certificate';
    const cn = tls.getPeerCertificate().subject?.CN;
    const name = Array.isArray(cn) ? cn[0] : cn;
    return name !== undefined && this.allowed.includes(name) ? undefined : `client certificate ${JSON.stringify(name ?? '')} is not the api-server's`;
  }

  private parse(request: http.IncomingMessage): NodeStreamRequest {
    const refused = this.clientAllowed(request.socket);
    if (refused) throw new StreamRefused(403, refused);
    if (request.method !== 'GET') throw new StreamRefused(405, `${request.method ?? ''} is not served; streams are GET`);
    const parsed = parseNodeStreamPath(request.url ?? '');
    if (!parsed.ok) throw new StreamRefused(404, parsed.message);
    return parsed.request;
  }

  /**
   * A connection to the launcher of the VMI `request` names, once the VMI is this node's and
   * running and the launcher has said it serves that VMI.
   */
  private async connectLauncher(request: { namespace: string; name: string }, log: Logger): Promise<net.Socket> {
    const key = `${request.namespace}/${request.name}`;
    const vmi = this.options.vmi(key);
    if (!vmi || vmi.status?.nodeName !== this.options.nodeName) throw new StreamRefused(404, `VirtualMachineInstance ${key} is not on node ${this.options.nodeName}`);
    if (vmi.status?.phase !== 'Running') throw new StreamRefused(409, `VirtualMachineInstance ${key} is ${vmi.status?.phase ?? 'not running'}, not Running`);
    const podUid = activePodOnNode(vmi, this.options.nodeName);
    if (!podUid) throw new StreamRefused(409, `VirtualMachineInstance ${key} has no launcher pod on node ${this.options.nodeName}`);
    let socket: net.Socket;
    try {
      socket = await openLauncherSocket(this.options.podsDir, nodeLauncherSocketPath(this.options.podsDir, podUid), { ownerUid: this.options.launcherUid ?? LAUNCHER_UID });
    } catch (error) {
      log.warn({ err: error }, 'cannot reach the launcher for a stream');
      throw new StreamRefused(error instanceof LauncherSocketRefused ? 403 : 503, `cannot reach the launcher of ${key}: ${(error as Error).message}`);
    }
    try {
      // The launcher must serve this VMI (a pod cannot answer for another one).
      const hello = await helloOf(socket);
      if (hello.namespace !== request.namespace || hello.name !== request.name) {
        throw new StreamRefused(403, `the launcher of pod ${podUid} serves ${hello.namespace}/${hello.name}, not ${key}`);
      }
      return socket;
    } catch (error) {
      socket.destroy();
      if (error instanceof StreamRefused) throw error;
      throw new StreamRefused(502, error instanceof LauncherCommandError ? error.message : `the launcher failed: ${(error as Error).message}`);
    }
  }

  /** Opens the launcher's stream for `request` after checking the VMI is this node's and running. */
  private async openLauncher(request: NodeStreamRequest, log: Logger): Promise<{ socket: net.Socket; bytes?: number }> {
    const socket = await this.connectLauncher(request, log);
    try {
      switch (request.kind) {
        case 'console':
          await requestOnLauncherConnection(socket, 'console', {});
          return { socket };
        case 'vnc':
          await requestOnLauncherConnection(socket, 'vnc', { preserveSession: request.preserveSession });
          return { socket };
        case 'portforward':
          await requestOnLauncherConnection(socket, 'portForward', { port: request.port });
          return { socket };
        case 'screenshot': {
          const result = await requestOnLauncherConnection(socket, 'screenshot', {});
          return { socket, bytes: result.bytes };
        }
      }
    } catch (error) {
      socket.destroy();
      if (error instanceof StreamRefused) throw error;
      const message = error instanceof LauncherCommandError ? error.message : `the launcher failed: ${(error as Error).message}`;
      // The domain stopped (or stops) under a VMI still shown Running: its state, as for a VMI that is not Running.
      if (error instanceof LauncherCommandError && error.step === DOMAIN_NOT_RUNNING_STEP) throw new StreamRefused(409, `VirtualMachineInstance ${request.namespace}/${request.name}: ${message}`);
      throw new StreamRefused(message.includes('Active VNC connection') ? 503 : 502, message);
    }
  }

  /**
   * Runs a guest agent command through the VMI's launcher; its answer (validated by the launcher
   * client against the protocol's schema) is the response. A launcher's refusal (no agent, an
   * agent that refused or answered nonsense) is a 502 carrying its message.
   */
  private async guestAgent(request: NodeGuestAgentRequest, log: Logger): Promise<unknown> {
    const socket = await this.connectLauncher(request, log);
    try {
      switch (request.kind) {
        case 'freeze':
          return await requestOnLauncherConnection(socket, 'freeze', { unfreezeTimeoutSeconds: request.unfreezeTimeoutSeconds }, GUEST_AGENT_FREEZE_TIMEOUT_MS + 5000);
        case 'unfreeze':
          return await requestOnLauncherConnection(socket, 'unfreeze', {}, GUEST_AGENT_FREEZE_TIMEOUT_MS + 5000);
        case 'userlist':
          return await requestOnLauncherConnection(socket, 'guestUsers', {}, 15_000, LAUNCHER_MAX_LINE_BYTES);
        case 'filesystemlist':
          return await requestOnLauncherConnection(socket, 'guestFilesystems', {}, 15_000, LAUNCHER_MAX_LINE_BYTES);
      }
    } catch (error) {
      throw new StreamRefused(502, error instanceof LauncherCommandError ? error.message : `the launcher failed: ${(error as Error).message}`);
    } finally {
      socket.destroy();
    }
  }

  private async onRequest(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const log = this.options.log.child({ module: 'stream-server', url: request.url?.slice(0, 200) });
    try {
      const refused = this.clientAllowed(request.socket);
      if (refused) throw new StreamRefused(403, refused);
      const agent = parseNodeGuestAgentRequest(request.method ?? '', request.url ?? '');
      if (agent && !agent.ok) throw new StreamRefused(agent.code, agent.message);
      if (agent?.ok) {
        // Nothing is read from a body: every argument is in the path and query.
        request.resume();
        const answer = await this.guestAgent(agent.request, log);
        log.info({ kind: agent.request.kind, namespace: agent.request.namespace, name: agent.request.name }, 'guest agent command');
        const body = JSON.stringify(answer);
        response.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
        response.end(body);
        return;
      }
      const parsed = this.parse(request);
      if (parsed.kind !== 'screenshot') throw new StreamRefused(400, `${parsed.kind} is a stream: ask for an upgrade to ${STREAM_UPGRADE_PROTOCOL}`);
      const { socket, bytes = 0 } = await this.openLauncher(parsed, log);
      const png = await readExactly(socket, bytes);
      response.writeHead(200, { 'Content-Type': 'image/png', 'Content-Length': png.length });
      response.end(png);
    } catch (error) {
      const refused = asRefusal(error);
      if (refused.code >= 500) log.warn({ code: refused.code, err: refused.message }, 'stream request failed');
      if (!response.headersSent) {
        response.writeHead(refused.code, { 'Content-Type': 'application/json' });
        response.end(JSON.stringify({ message: refused.message }));
      } else response.destroy();
    }
  }

  private async onUpgrade(request: http.IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
    const log = this.options.log.child({ module: 'stream-server', url: request.url?.slice(0, 200) });
    this.sockets.add(client);
    client.once('close', () => this.sockets.delete(client));
    client.on('error', () => client.destroy());
    let upstream: net.Socket | undefined;
    let parsed: NodeStreamRequest;
    try {
      parsed = this.parse(request);
      if (request.headers.upgrade?.toLowerCase() !== STREAM_UPGRADE_PROTOCOL) throw new StreamRefused(400, `only an upgrade to ${STREAM_UPGRADE_PROTOCOL} is served`);
      if (parsed.kind === 'screenshot') throw new StreamRefused(400, 'a screenshot is a plain GET, not a stream');
      ({ socket: upstream } = await this.openLauncher(parsed, log));
    } catch (error) {
      const refused = asRefusal(error);
      log.info({ code: refused.code, err: refused.message }, 'stream refused');
      writeRefusal(client, refused);
      return;
    }
    if (client.destroyed) {
      upstream.destroy();
      return;
    }
    client.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${STREAM_UPGRADE_PROTOCOL}\r\n\r\n`);
    if (head.length) upstream.write(head);
    const kind = parsed.kind;
    nodeStreamsActive.inc({ kind });
    log.info({ kind, namespace: parsed.namespace, name: parsed.name }, 'stream opened');
    const end = await bridge(client, upstream, kind === 'console' ? { stallTimeoutMs: CONSOLE_STALL_TIMEOUT_MS } : {});
    nodeStreamsActive.dec({ kind });
    log.info({ kind, namespace: parsed.namespace, name: parsed.name, endedBy: end.side === 'a' ? 'api-server' : 'launcher', reason: end.reason }, 'stream closed');
  }
}

function asRefusal(error: unknown): StreamRefused {
  return error instanceof StreamRefused ? error : new StreamRefused(500, error instanceof Error ? error.message : String(error));
}

function writeRefusal(client: Duplex, refused: StreamRefused): void {
  const body = JSON.stringify({ message: refused.message });
  const reason = http.STATUS_CODES[refused.code] ?? 'Error';
  client.end(`HTTP/1.1 ${refused.code} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/** `hello` first on the stream's connection: which VMI the launcher serves. */
async function helloOf(socket: net.Socket): Promise<{ namespace: string; name: string }> {
  return (await requestOnLauncherConnection(socket, 'hello', {})).vmi;
}

/** Exactly `bytes` bytes from `socket` (a screenshot), then the socket is closed. */
function readExactly(socket: net.Socket, bytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (received >= bytes) {
        socket.destroy();
        resolve(Buffer.concat(chunks).subarray(0, bytes));
      }
    });
    socket.once('close', () => reject(new Error(`the launcher sent ${received} of ${bytes} screenshot bytes`)));
    socket.once('error', reject);
    socket.resume();
  });
}
