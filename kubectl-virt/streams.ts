// The streaming subresources (console, vnc, portforward) are websockets with KubeVirt's
// subprotocol plain.kubevirt.io: every binary message carries raw bytes of the one stream. A
// refusal comes before the upgrade as an HTTP answer with a Status, worded like any other failure.
// vnc/screenshot is a plain GET with a PNG body.
import * as http from 'node:http';
import * as https from 'node:https';
import type { Duplex } from 'node:stream';
import WebSocket, { createWebSocketStream } from 'ws';
import { SUBRESOURCE_GROUP } from '../runtime/api/index.js';
import { ApiError } from '../runtime/kube.js';
import type { Target, VirtApi } from './api.js';
import type { Attempt } from './errors.js';
import { describeFailure, UserError } from './errors.js';

export const STREAM_SUBPROTOCOL = 'plain.kubevirt.io';

/** A refused stream: the line for the user, and whether waiting may help (the VMI is not running yet). */
export class StreamRefused extends UserError {
  constructor(
    message: string,
    readonly code: number,
    readonly transient: boolean,
  ) {
    super(message);
  }
}

function attemptFor(virt: VirtApi, target: Target, name: string, subresource: string): Attempt {
  const plural = target === 'vm' ? 'virtualmachines' : 'virtualmachineinstances';
  return {
    verb: 'get',
    resource: `${plural}/${subresource.split('/')[0] ?? subresource}`,
    group: SUBRESOURCE_GROUP,
    namespace: virt.namespace,
    kind: target === 'vm' ? 'VirtualMachine' : 'VirtualMachineInstance',
    name,
    server: virt.connection.server,
  };
}

/** The refusal of a stream or GET as one line; 400 "not running" and 404 are worth waiting on. */
function refusal(code: number, body: string, attempt: Attempt, path: string): StreamRefused {
  let status: { reason?: string; message?: string } = {};
  try {
    status = JSON.parse(body) as typeof status;
  } catch {
    status = { message: body.trim().slice(0, 300) };
  }
  const err = new ApiError(code, status.reason ?? String(code), status.message ?? '', 'GET', path, status);
  const transient = code === 404 || (code === 400 && /not running|no node yet/i.test(status.message ?? '')) || code === 503;
  return new StreamRefused(describeFailure(err, attempt), code, transient);
}

async function tlsOptions(virt: VirtApi): Promise<https.RequestOptions> {
  const options: https.RequestOptions = {};
  await virt.connection.kubeConfig.applyToHTTPSOptions(options);
  return options;
}

/** Opens a stream subresource; resolves once the server accepted the upgrade. */
export async function openStream(virt: VirtApi, target: Target, name: string, subresource: string): Promise<WebSocket> {
  const path = virt.subresourcePath(target, name, subresource);
  const attempt = attemptFor(virt, target, name, subresource);
  const url = virt.connection.server.replace(/^http/, 'ws').replace(/\/+$/, '') + path;
  const options = await tlsOptions(virt);
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, [STREAM_SUBPROTOCOL], { ...options, handshakeTimeout: 30_000 });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_request, response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => reject(refusal(response.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'), attempt, path)));
      response.on('error', (err) => reject(new UserError(describeFailure(err, attempt))));
    });
    ws.once('error', (err) => reject(new UserError(describeFailure(err, attempt))));
  });
}

/** A websocket as a byte stream (with backpressure), for piping sockets and stdio through it. */
export const streamOf = (ws: WebSocket): Duplex => createWebSocketStream(ws);

/** GET a binary subresource (vnc/screenshot). */
export async function getBinary(virt: VirtApi, target: Target, name: string, subresource: string): Promise<{ body: Buffer; contentType: string }> {
  const path = virt.subresourcePath(target, name, subresource);
  const attempt = attemptFor(virt, target, name, subresource);
  const url = new URL(virt.connection.server.replace(/\/+$/, '') + path);
  const options = await tlsOptions(virt);
  return new Promise((resolve, reject) => {
    const send = url.protocol === 'http:' ? http.request : https.request;
    const request = send(url, { ...options, method: 'GET', headers: { ...(options.headers ?? {}), Accept: 'image/png, application/json' } }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        const body = Buffer.concat(chunks);
        const code = response.statusCode ?? 0;
        if (code >= 200 && code < 300) resolve({ body, contentType: String(response.headers['content-type'] ?? '') });
        else reject(refusal(code, body.toString('utf8'), attempt, path));
      });
    });
    request.on('error', (err) => reject(new UserError(describeFailure(err, attempt))));
    request.end();
  });
}
