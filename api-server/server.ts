// The HTTPS server of the aggregated API subresources.kubevirt.io (fastify). It serves:
//   discovery (/, /apis, /apis/subresources.kubevirt.io[/{version}]), {version}/version and
//   {version}/healthz: to anyone, as KubeVirt's virt-api does (the aggregator needs them);
//   the subresource routes: only through the front proxy (front-proxy.ts), each authorized with
//   a SubjectAccessReview (authorize.ts) before its handler runs.
// Failures are metav1.Status objects with the code and reason Kubernetes clients expect.
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import Fastify from 'fastify';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SUBRESOURCE_GROUP, SUBRESOURCE_VERSIONS } from '../runtime/api/index.js';
import type { Logger } from '../runtime/logging.js';
import type { Authorizer, RbacVerb } from './authorize.js';
import { describeAttributes } from './authorize.js';
import { apiGroup, apiGroupList, apiResourceList, rootPaths } from './discovery.js';
import type { FrontProxyConfig, UserInfo } from './front-proxy.js';
import { authenticate, distinctHeaders, peerCertificateOf } from './front-proxy.js';
import { apiRequestDuration, apiRequests, trackStream } from './metrics.js';
import { StatusError, accessDenied, badRequest, internalError, methodNotAllowed, notFoundPath, unauthorized } from './status.js';
import type { StreamHandler } from './stream-routes.js';
import { bridge } from '../runtime/stream-bridge.js';

/** What a subresource handler gets: the path's names, the raw body, the caller. */
export interface SubresourceRequest {
  version: string;
  namespace: string;
  /** The VM's or VMI's name; undefined for expand-vm-spec. */
  name: string | undefined;
  /** Further path parameters (port, protocol). */
  params: Record<string, string>;
  /** The body as sent ('' when none): handlers decode it with their options schema. */
  body: string;
  user: UserInfo;
  log: Logger;
}

export interface SubresourceReply {
  code: number;
  /** JSON-encoded unless a Buffer (then sent with contentType). */
  body?: unknown;
  contentType?: string;
}

export interface SubresourceRoute {
  method: 'GET' | 'PUT';
  resource: 'virtualmachines' | 'virtualmachineinstances' | 'expand-vm-spec';
  /** e.g. "start", "vnc/screenshot"; undefined for expand-vm-spec. */
  subresource?: string;
  /** Extra path parameters after the subresource, e.g. ['port'] for portforward/{port}. */
  extraParams?: readonly string[];
  handle(request: SubresourceRequest): Promise<SubresourceReply>;
  /** A websocket stream (console, vnc, portforward): served on the upgrade; `handle` answers a plain GET. */
  stream?: StreamHandler;
}

/** KubeVirt's websocket subprotocol: each binary message carries raw bytes of the stream. */
export const PLAIN_STREAM_PROTOCOL = 'plain.kubevirt.io';

export const verbOfMethod: Record<SubresourceRoute['method'], RbacVerb> = { GET: 'get', PUT: 'update' };

export interface ApiServerOptions {
  /** The current front-proxy settings (refreshed from the ConfigMap by the caller). */
  frontProxy: () => FrontProxyConfig;
  authorizer: Authorizer;
  routes: readonly SubresourceRoute[];
  log: Logger;
  /** KubeVirt's version.Info. */
  version: object;
  /** {version}/healthz: KubeVirt's {"apiserver": {"connectivity": ...}} and whether it is healthy. */
  health: () => Promise<{ healthy: boolean; body: object }>;
  /** Serving certificate; without it the server speaks plain HTTP (unit tests use inject()). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Extra route registrations on the same server (the admission webhooks). */
  extend?: (app: FastifyInstance) => void;
  /** How long a websocket stream's client may stop reading before the stream is closed (default 60 s). */
  streamStallTimeoutMs?: number;
}

const groupPrefix = `/apis/${SUBRESOURCE_GROUP}`;

export function routePath(route: Pick<SubresourceRoute, 'resource' | 'subresource' | 'extraParams'>): string {
  const base = `${groupPrefix}/:version/namespaces/:namespace/${route.resource}`;
  if (route.resource === 'expand-vm-spec') return base;
  const extra = (route.extraParams ?? []).map((p) => `/:${p}`).join('');
  return `${base}/:name/${route.subresource ?? ''}${extra}`;
}

function sendStatus(reply: FastifyReply, error: StatusError): FastifyReply {
  return reply.code(error.code).type('application/json').send(error.status);
}

/** Longer than the 90 s idle timeout of kube-apiserver's (Go's) HTTP clients. */
export const IDLE_CONNECTION_MS = 120_000;

export function buildApiServer(options: ApiServerOptions): FastifyInstance {
  const { log } = options;
  const app = Fastify({
    // Our own pino logger writes one line per handled request; fastify's stays off.
    logger: false,
    bodyLimit: 1024 * 1024,
    // The certificate verification result is read per request (front-proxy.ts): probes and
    // discovery come without a client certificate, so the handshake must not demand one.
    serverFactory: (handler) => {
      const tls = options.tls;
      const server = tls
        ? https.createServer(
            { cert: tls.cert, key: tls.key, ca: options.frontProxy().clientCA, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' },
            handler,
          )
        : http.createServer(handler);
      // kube-apiserver keeps an idle connection to a webhook or an aggregated API for 90 s and
      // sends the next POST on it: a server that closes it sooner (Node's default is 5 s) races
      // that write, and the admission call fails with "broken pipe". The client must close first.
      server.keepAliveTimeout = IDLE_CONNECTION_MS;
      server.headersTimeout = IDLE_CONNECTION_MS + 1_000;
      return server;
    },
  });

  // Bodies are read as text and decoded by each handler with its zod schema (KubeVirt accepts
  // JSON or YAML, with or without a content type, and an empty body).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));

  app.setErrorHandler((error: unknown, request, reply) => {
    if (error instanceof StatusError) return sendStatus(reply, error);
    const statusCode = (error as { statusCode?: unknown }).statusCode;
    if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
      const message = error instanceof Error ? error.message : String(error);
      return reply.code(statusCode).send({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'BadRequest', code: statusCode });
    }
    log.error({ err: error, route: request.routeOptions.url }, 'request failed');
    return sendStatus(reply, internalError(error instanceof Error ? error.message : String(error)));
  });
  app.setNotFoundHandler((request, reply) => sendStatus(reply, notFoundPath(request.url.split('?')[0] ?? request.url)));

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    apiRequests.inc({ route, method: request.method, code: String(reply.statusCode) });
    apiRequestDuration.observe({ route, method: request.method }, reply.elapsedTime / 1000);
  });

  // ---- open endpoints: discovery, version, health ---------------------------------------------
  const json = (body: object) => async (_request: FastifyRequest, reply: FastifyReply) => reply.type('application/json').send(body);
  app.get('/', json(rootPaths()));
  app.get('/apis', json(apiGroupList()));
  app.get(groupPrefix, json(apiGroup()));
  const healthz = async (_request: FastifyRequest, reply: FastifyReply) => {
    const result = await options.health();
    return reply.code(result.healthy ? 200 : 500).type('application/json').send(result.body);
  };
  app.get('/healthz', healthz);
  for (const version of SUBRESOURCE_VERSIONS) {
    app.get(`${groupPrefix}/${version}`, json(apiResourceList(version, options.routes.map((r) => ({ ...r, verb: verbOfMethod[r.method] })))));
    app.get(`${groupPrefix}/${version}/version`, json(options.version));
    app.get(`${groupPrefix}/${version}/healthz`, healthz);
  }

  // ---- subresources: authenticated by the front proxy, authorized by a SubjectAccessReview ----
  /** Who asks, and whether they may: the caller, or the Status to answer with. */
  async function checkRequest(route: SubresourceRoute, url: string, params: Record<string, string>, raw: http.IncomingMessage) {
    const version = params['version'] ?? '';
    if (!(SUBRESOURCE_VERSIONS as readonly string[]).includes(version)) return notFoundPath(raw.url ?? url);
    const authn = authenticate(options.frontProxy(), peerCertificateOf(raw.socket), distinctHeaders(raw));
    if (!authn.ok) {
      log.warn({ server: 'api', route: url, reason: authn.reason }, 'unauthenticated request refused');
      return unauthorized(authn.reason);
    }
    const { version: _v, namespace = '', name, ...rest } = params;
    const attributes = {
      namespace,
      verb: verbOfMethod[route.method],
      group: SUBRESOURCE_GROUP,
      version,
      resource: route.resource,
      ...(route.subresource ? { subresource: route.subresource.split('/')[0] === 'portforward' ? 'portforward' : route.subresource } : {}),
      ...(name ? { name } : {}),
    };
    const decision = await options.authorizer.authorize(authn.user, attributes);
    const requestLog = log.child({ server: 'api', user: authn.user.username, route: url, namespace, name });
    if (!decision.allowed) {
      requestLog.info({ reason: decision.reason }, 'request denied by authorization');
      return accessDenied(authn.user.username, attributes.verb, describeAttributes(attributes), decision.reason);
    }
    return { version, namespace, name, rest, user: authn.user, requestLog };
  }

  const served = new Map<string, Set<string>>();
  for (const route of options.routes) {
    const url = routePath(route);
    served.set(url, (served.get(url) ?? new Set()).add(route.method));
    app.route({
      method: route.method,
      url,
      handler: async (request, reply) => {
        const params = request.params as Record<string, string>;
        const checked = await checkRequest(route, url, params, request.raw);
        if (checked instanceof StatusError) return sendStatus(reply, checked);
        const { version, namespace, name, rest, user, requestLog } = checked;
        const result = await route.handle({
          version,
          namespace,
          name,
          params: rest,
          body: typeof request.body === 'string' ? request.body : '',
          user,
          log: requestLog,
        });
        requestLog.info({ code: result.code }, `${route.method} ${route.resource}${route.subresource ? `/${route.subresource}` : ''}`);
        reply.code(result.code);
        if (result.body === undefined) return reply.send();
        if (Buffer.isBuffer(result.body)) return reply.type(result.contentType ?? 'application/octet-stream').send(result.body);
        return reply.type('application/json').send(result.body);
      },
    });
  }
  // A known path with another method: 405, as the API server answers.
  for (const [url, methods] of served) {
    const others = (['GET', 'PUT', 'POST', 'PATCH', 'DELETE'] as const).filter((m) => !methods.has(m));
    app.route({ method: others, url, handler: async (request, reply) => sendStatus(reply, methodNotAllowed(request.method, request.url)) });
  }
  serveStreams(app, options, checkRequest);
  options.extend?.(app);
  return app;
}

type RequestCheck = (
  route: SubresourceRoute,
  url: string,
  params: Record<string, string>,
  raw: http.IncomingMessage,
) => Promise<StatusError | { version: string; namespace: string; name: string | undefined; rest: Record<string, string>; user: UserInfo; requestLog: Logger }>;

/** A route template as a matcher of concrete paths, its :params as named groups. */
function pathMatcher(template: string): RegExp {
  const pattern = template
    .split('/')
    .map((part) => (part.startsWith(':') ? `(?<${part.slice(1)}>[^/]+)` : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${pattern}$`);
}

/** Writes a Status on a socket that asked for an upgrade and closes it. */
function refuseUpgrade(socket: Duplex, error: StatusError): void {
  const body = JSON.stringify(error.status);
  const reason = http.STATUS_CODES[error.code] ?? 'Error';
  socket.end(`HTTP/1.1 ${error.code} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/**
 * The websocket streams: an upgrade request on a stream route is authenticated and authorized as
 * every request, the route opens its upstream on the VMI's node, and only then is the websocket
 * accepted (with KubeVirt's subprotocol when the client offers it); binary messages and the
 * upstream's bytes are then bridged with bounded buffers (runtime/stream-bridge.ts).
 */
function serveStreams(app: FastifyInstance, options: ApiServerOptions, checkRequest: RequestCheck): void {
  const { log } = options;
  const streams = options.routes.filter((route) => route.stream).map((route) => ({ route, url: routePath(route), matcher: pathMatcher(routePath(route)) }));
  const websockets = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: 1024 * 1024,
    handleProtocols: (protocols) => (protocols.has(PLAIN_STREAM_PROTOCOL) ? PLAIN_STREAM_PROTOCOL : false),
  });
  const open = new Set<Duplex>();
  app.addHook('onClose', async () => {
    for (const socket of open) socket.destroy();
  });
  app.server.on('upgrade', (raw: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const started = process.hrtime.bigint();
    const [path = '', query = ''] = (raw.url ?? '').split('?', 2);
    const found = streams.map((s) => ({ ...s, match: s.matcher.exec(path) })).find((s) => s.match);
    let code = 101;
    const record = (route: string) => {
      apiRequests.inc({ route, method: 'GET', code: String(code) });
      apiRequestDuration.observe({ route, method: 'GET' }, Number(process.hrtime.bigint() - started) / 1e9);
    };
    if (!found?.route.stream || raw.method !== 'GET') {
      code = 404;
      record('unmatched');
      return refuseUpgrade(socket, notFoundPath(path));
    }
    const { route, url } = found;
    const stream = route.stream as StreamHandler;
    if (raw.headers.upgrade?.toLowerCase() !== 'websocket' || !raw.headers['sec-websocket-key']) {
      code = 400;
      record(url);
      return refuseUpgrade(socket, badRequest('only a websocket upgrade is served on this subresource'));
    }
    const params = Object.fromEntries(Object.entries(found.match?.groups ?? {}).map(([k, v]) => [k, safeDecode(v)]));
    void (async () => {
      const checked = await checkRequest(route, url, params, raw);
      if (checked instanceof StatusError) throw checked;
      const { version, namespace, name, rest, user, requestLog } = checked;
      const { upstream, vmi } = await stream.open({ version, namespace, name, params: rest, body: '', user, log: requestLog, query: new URLSearchParams(query) });
      if (socket.destroyed) {
        upstream.destroy();
        return;
      }
      // A handshake ws refuses closes the socket without calling back: the upstream goes too.
      let accepted = false;
      socket.once('close', () => {
        if (!accepted) upstream.destroy();
      });
      websockets.handleUpgrade(raw, socket, head, (ws) => {
        accepted = true;
        record(url);
        const done = trackStream(stream.kind, namespace, vmi);
        requestLog.info({ stream: stream.kind, protocol: ws.protocol }, 'stream opened');
        open.add(socket);
        void bridge(createWebSocketStream(ws), upstream, { stallTimeoutMs: options.streamStallTimeoutMs ?? 60_000 }).then((end) => {
          open.delete(socket);
          done();
          requestLog.info({ stream: stream.kind, endedBy: end.side === 'a' ? 'client' : 'node-handler', reason: end.reason }, 'stream closed');
        });
      });
    })().catch((error: unknown) => {
      const status = error instanceof StatusError ? error : internalError(error instanceof Error ? error.message : String(error));
      if (!(error instanceof StatusError)) log.error({ err: error, route: url }, 'stream request failed');
      code = status.code;
      record(url);
      refuseUpgrade(socket, status);
    });
  });
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** Listen and report the bound address. */
export async function listen(app: FastifyInstance, port: number, host = '0.0.0.0'): Promise<AddressInfo> {
  await app.listen({ port, host });
  return app.server.address() as AddressInfo;
}
