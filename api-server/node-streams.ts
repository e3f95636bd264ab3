// The api-server's side of the stream contract (runtime/contracts/streams.ts, ADR 0014): finds
// the node handler of a VMI's node (its pod, by label and node, as KubeVirt's virt-api finds
// virt-handler) and opens a stream there over mutual TLS: our client certificate, and a server
// certificate of the streams CA naming the node handler (checked whatever IP we dialled).
import https from 'node:https';
import type net from 'node:net';
import { checkServerIdentity } from 'node:tls';
import type { PeerCertificate } from 'node:tls';
import {
  API_SERVER_STREAMS_TLS_SECRET,
  NODE_HANDLER_POD_SELECTOR,
  NODE_HANDLER_STREAM_PORT,
  NODE_HANDLER_STREAM_SERVER_NAME,
  GUEST_AGENT_FREEZE_TIMEOUT_MS,
  NODE_GUEST_AGENT_ANSWER_MAX_BYTES,
  NodeStreamError,
  STREAM_UPGRADE_PROTOCOL,
  nodeGuestAgentAnswers,
  nodeGuestAgentMethods,
  nodeGuestAgentPath,
  nodeStreamKinds,
  nodeStreamPath,
} from '../runtime/contracts/streams.js';
import type { NodeGuestAgentAnswer, NodeGuestAgentRequest, NodeStreamRequest } from '../runtime/contracts/streams.js';
import { describeZodError } from '../runtime/contracts/launcher-protocol.js';
import { SCREENSHOT_MAX_BYTES } from '../runtime/contracts/launcher-protocol.js';
import { StatusError } from './status.js';

export interface StreamTls {
  cert: string | Buffer;
  key: string | Buffer;
  ca: string | Buffer;
}

/** Where the node handler of a node answers. */
export type NodeHandlerLocator = (nodeName: string) => Promise<{ host: string; port: number }>;

/** A pod list as the locator needs it. */
export interface PodLister {
  list(options: { namespace?: string; labelSelector?: string; fieldSelector?: string }): Promise<{
    items: Array<{ metadata?: { deletionTimestamp?: string }; status?: { phase?: string; podIP?: string } }>;
  }>;
}

/** The running node handler pod on `nodeName`, at its pod IP. */
export function podIpLocator(pods: PodLister, namespace: string, port = NODE_HANDLER_STREAM_PORT): NodeHandlerLocator {
  return async (nodeName) => {
    const list = await pods.list({ namespace, labelSelector: NODE_HANDLER_POD_SELECTOR, fieldSelector: `spec.nodeName=${nodeName}` });
    const pod = list.items.find((p) => p.status?.phase === 'Running' && p.status.podIP && !p.metadata?.deletionTimestamp);
    if (!pod?.status?.podIP) throw streamStatus(503, 'ServiceUnavailable', `no running node handler on node ${nodeName}`);
    return { host: pod.status.podIP, port };
  };
}

const isStreamRequest = (request: NodeStreamRequest | NodeGuestAgentRequest): request is NodeStreamRequest => (nodeStreamKinds as readonly string[]).includes(request.kind);

function streamStatus(code: number, reason: string, message: string): StatusError {
  return new StatusError({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
}

const reasons: Record<number, string> = { 400: 'BadRequest', 403: 'Forbidden', 404: 'NotFound', 409: 'Conflict', 503: 'ServiceUnavailable' };

/** A node handler's refusal as the user's answer: its code for 4xx and 503, 502 otherwise. */
function refusalStatus(code: number, body: string): StatusError {
  const parsed = NodeStreamError.safeParse(safeJson(body));
  const message = parsed.success ? parsed.data.message : `the node handler answered ${code}`;
  const passOn = (code >= 400 && code < 500) || code === 503 ? code : 502;
  return streamStatus(passOn, reasons[passOn] ?? 'BadGateway', message);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export class NodeStreams {
  constructor(
    private readonly locate: NodeHandlerLocator,
    /** The client certificate, its key and the streams CA; undefined while none is mounted. */
    private readonly tls: () => StreamTls | undefined,
    private readonly timeoutMs = 15_000,
  ) {}

  private requestOptions(target: { host: string; port: number }, request: NodeStreamRequest | NodeGuestAgentRequest): https.RequestOptions {
    const tls = this.tls();
    if (!tls) throw streamStatus(503, 'ServiceUnavailable', `the api-server has no streams certificate (Secret ${API_SERVER_STREAMS_TLS_SECRET}): console, VNC and port-forward are unavailable`);
    const { cert, key, ca } = tls;
    return {
      host: target.host,
      port: target.port,
      ...(isStreamRequest(request) ? { path: nodeStreamPath(request), method: 'GET' } : { path: nodeGuestAgentPath(request), method: nodeGuestAgentMethods[request.kind] }),
      cert,
      key,
      ca,
      agent: false,
      servername: NODE_HANDLER_STREAM_SERVER_NAME,
      // The node handler is dialled by pod IP; its certificate names the node handler instead.
      checkServerIdentity: (_host: string, peer: PeerCertificate) => checkServerIdentity(NODE_HANDLER_STREAM_SERVER_NAME, peer),
      minVersion: 'TLSv1.2',
      timeout: this.timeoutMs,
    };
  }

  /** Opens a stream (console, vnc, portforward) on the VMI's node; the socket then carries it. */
  async open(nodeName: string, request: Exclude<NodeStreamRequest, { kind: 'screenshot' }>): Promise<net.Socket> {
    const target = await this.locate(nodeName);
    const options = this.requestOptions(target, request);
    return new Promise<net.Socket>((resolve, reject) => {
      const req = https.request({ ...options, headers: { Connection: 'Upgrade', Upgrade: STREAM_UPGRADE_PROTOCOL } });
      req.once('upgrade', (_response, socket: net.Socket, head: Buffer) => {
        socket.setTimeout(0);
        if (head.length) socket.unshift(head);
        resolve(socket);
      });
      req.once('response', (response) => {
        readBody(response, 64 * 1024).then(
          (body) => reject(refusalStatus(response.statusCode ?? 502, body.toString('utf8'))),
          (error: Error) => reject(streamStatus(502, 'BadGateway', `the node handler of ${nodeName}: ${error.message}`)),
        );
      });
      req.once('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs / 1000} s`)));
      req.once('error', (error) => reject(streamStatus(503, 'ServiceUnavailable', `cannot reach the node handler of ${nodeName}: ${error.message}`)));
      req.end();
    });
  }

  /** The JSON body of a guest agent command's answer (nodeGuestAgent validates it). */
  async guestAgentBody(nodeName: string, request: NodeGuestAgentRequest): Promise<Buffer> {
    const target = await this.locate(nodeName);
    // A freeze waits for the guest to flush its writes; the node handler gives it that long.
    const timeoutMs = request.kind === 'freeze' || request.kind === 'unfreeze' ? GUEST_AGENT_FREEZE_TIMEOUT_MS + 10_000 : this.timeoutMs;
    const options = { ...this.requestOptions(target, request), timeout: timeoutMs };
    return this.fetch(nodeName, options, NODE_GUEST_AGENT_ANSWER_MAX_BYTES, timeoutMs);
  }

  /** A PNG of the VMI's display. */
  async screenshot(nodeName: string, request: Extract<NodeStreamRequest, { kind: 'screenshot' }>): Promise<Buffer> {
    const target = await this.locate(nodeName);
    return this.fetch(nodeName, this.requestOptions(target, request), SCREENSHOT_MAX_BYTES, this.timeoutMs);
  }

  /** A plain request's 200 body (at most `limit` bytes); any other answer as the user's Status. */
  private fetch(nodeName: string, options: https.RequestOptions, limit200: number, timeoutMs: number): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      const req = https.request(options, (response) => {
        const limit = response.statusCode === 200 ? limit200 : 64 * 1024;
        readBody(response, limit).then(
          (body) => (response.statusCode === 200 ? resolve(body) : reject(refusalStatus(response.statusCode ?? 502, body.toString('utf8')))),
          (error: Error) => reject(streamStatus(502, 'BadGateway', `the node handler of ${nodeName}: ${error.message}`)),
        );
      });
      req.once('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
      req.once('error', (error) => reject(streamStatus(503, 'ServiceUnavailable', `cannot reach the node handler of ${nodeName}: ${error.message}`)));
      req.end();
    });
  }
}

/**
 * Runs a guest agent command on the VMI's node and returns its answer, validated against the
 * contract (the node handler relays what a guest wrote).
 */
export async function nodeGuestAgent<K extends NodeGuestAgentRequest['kind']>(
  streams: Pick<NodeStreams, 'guestAgentBody'>,
  nodeName: string,
  request: Extract<NodeGuestAgentRequest, { kind: K }>,
): Promise<NodeGuestAgentAnswer<K>> {
  const body = await streams.guestAgentBody(nodeName, request);
  const parsed = nodeGuestAgentAnswers[request.kind].safeParse(safeJson(body.toString('utf8')));
  if (!parsed.success) throw streamStatus(502, 'BadGateway', `the node handler of ${nodeName} answered ${request.kind} with an invalid answer: ${describeZodError(parsed.error)}`);
  return parsed.data as NodeGuestAgentAnswer<K>;
}

/** A response body of at most `limit` bytes. */
function readBody(response: NodeJS.ReadableStream & { destroy(): void }, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    response.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        response.destroy();
        reject(new Error(`an answer of more than ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    response.once('end', () => resolve(Buffer.concat(chunks)));
    response.once('error', reject);
  });
}
