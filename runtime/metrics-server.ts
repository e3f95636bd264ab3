// The metrics endpoint every component serves: /metrics over HTTPS, readable only by an authorized
// scraper, as kube-rbac-proxy does it: the scraper's bearer token is checked with a TokenReview,
// then the user it names with a SubjectAccessReview for `get` on the non-resource URL /metrics
// (the ClusterRole kubevm-metrics-reader grants it; so does cluster-admin). Health endpoints stay
// plain HTTP on their own port (runtime/health.ts): probes carry no token.
// The certificate is the component's own, issued by the operator's CA (operator/pki.ts) into a
// Secret mounted at KUBEVM_METRICS_TLS_DIR and re-read when the operator renews it, so a scraper
// trusting the CA bundle (ca.crt of that Secret, or of kubevm-ca) verifies it by the name
// `<component>-metrics.<namespace>.svc`. Until that Secret is mounted (the operator's own first
// start, a component run outside the cluster) it serves a self-signed one and says so.
import { createHash } from 'node:crypto';
import * as https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpMethod } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import { issueCertificateAuthority, issueServingCertificate } from './certificates.js';
import { TlsDirWatcher } from './tls-files.js';
import { portSetting } from './config.js';
import { closeServer, listenOn } from './health.js';
import type { KubeClient } from './kube.js';
import type { Logger } from './logging.js';
import { silentLogger } from './logging.js';
import { registry as defaultRegistry } from './metrics.js';

export const METRICS_PATH = '/metrics';
/** The ClusterRole that lets a scraper read every component's /metrics. */
export const METRICS_READER_ROLE = 'kubevm-metrics-reader';

/** The setting every main reads for its metrics port (the api-server's own API is on 8443: it passes another default). */
export function metricsPortSetting(defaultPort = 8443) {
  return { env: 'KUBEVM_METRICS_PORT', schema: portSetting.default(defaultPort), description: `/metrics over HTTPS, for authorized scrapers (default ${defaultPort})` };
}

/** Where every component's metrics certificate is mounted (Secret keys tls.crt, tls.key, ca.crt). */
export const METRICS_TLS_DIR = '/etc/kubevm/metrics-tls';

/** The setting every main reads for its metrics certificate's directory. */
export function metricsTlsDirSetting() {
  return {
    env: 'KUBEVM_METRICS_TLS_DIR',
    schema: z.string().default(METRICS_TLS_DIR),
    description: `the metrics serving certificate the operator issues: tls.crt, tls.key, ca.crt (default ${METRICS_TLS_DIR}); re-read when renewed; self-signed while absent`,
  };
}

export type MetricsDecision = { allowed: true; user: string } | { allowed: false; code: 401 | 403; reason: string };

/** Decides whether a bearer token may read /metrics. */
export interface MetricsAuthorizer {
  authorize(token: string | undefined): Promise<MetricsDecision>;
}

const TokenReviewAnswer = z.object({
  status: z.object({
    authenticated: z.boolean().optional(),
    error: z.string().optional(),
    // An unauthenticated review answers `user: {}`.
    user: z.object({ username: z.string().optional(), uid: z.string().optional(), groups: z.array(z.string()).optional(), extra: z.record(z.string(), z.array(z.string())).optional() }).optional(),
  }),
});
const AccessReviewAnswer = z.object({ status: z.object({ allowed: z.boolean(), reason: z.string().optional() }) });

/**
 * TokenReview + SubjectAccessReview through the API server, with a short cache per token (Prometheus
 * scrapes every few seconds; kube-rbac-proxy caches too). Only decisions are cached, keyed by the
 * token's SHA-256, never the token.
 */
export class KubeMetricsAuthorizer implements MetricsAuthorizer {
  private readonly cache = new Map<string, { decision: MetricsDecision; until: number }>();

  constructor(
    private readonly client: KubeClient,
    private readonly cacheMs = 30_000,
    private readonly now: () => number = Date.now,
  ) {}

  async authorize(token: string | undefined): Promise<MetricsDecision> {
    if (!token) return { allowed: false, code: 401, reason: 'no bearer token' };
    const key = createHash('sha256').update(token).digest('hex');
    const cached = this.cache.get(key);
    if (cached && cached.until > this.now()) return cached.decision;
    const decision = await this.review(token);
    if (this.cache.size > 1000) this.cache.clear();
    this.cache.set(key, { decision, until: this.now() + this.cacheMs });
    return decision;
  }

  private async review(token: string): Promise<MetricsDecision> {
    const reviewed = TokenReviewAnswer.parse(
      await this.client.request(HttpMethod.POST, '/apis/authentication.k8s.io/v1/tokenreviews', { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } } }),
    ).status;
    const user = reviewed.user;
    if (!reviewed.authenticated || !user?.username) return { allowed: false, code: 401, reason: reviewed.error ?? 'the token is not valid' };
    const username = user.username;
    const access = AccessReviewAnswer.parse(
      await this.client.request(HttpMethod.POST, '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: { user: username, ...(user.uid ? { uid: user.uid } : {}), groups: user.groups ?? [], ...(user.extra ? { extra: user.extra } : {}), nonResourceAttributes: { path: METRICS_PATH, verb: 'get' } },
        },
      }),
    ).status;
    return access.allowed
      ? { allowed: true, user: username }
      : { allowed: false, code: 403, reason: `user "${username}" may not get the non-resource URL ${METRICS_PATH}${access.reason ? ` (${access.reason})` : ''}; bind the ClusterRole ${METRICS_READER_ROLE}` };
  }
}

/**
 * A serving certificate of this process's own, one-off CA (validity one year: it lives as long as
 * the pod); `cert` is the chain (leaf, then the CA) a scraper may pin by the CA.
 */
export function selfSignedCertificate(name: string, now = new Date()): { cert: string; key: string; ca: string } {
  const year = 365 * 24 * 3600 * 1000;
  const ca = issueCertificateAuthority(`${name} metrics (self-signed)`, now, year);
  const leaf = issueServingCertificate(ca, [name, 'localhost'], now, year);
  return { cert: `${leaf.cert.trimEnd()}\n${ca.cert}`, key: leaf.key, ca: ca.cert };
}

export interface MetricsServerOptions {
  port: number;
  host?: string;
  authorizer: MetricsAuthorizer;
  /**
   * A certificate, or the directory of a mounted one (followed as it is renewed; a self-signed one
   * for `selfSignedName` is served while the directory holds none).
   */
  tls: { cert: string | Buffer; key: string | Buffer } | { dir: string; selfSignedName: string };
  registry?: Registry;
  log?: Logger;
}

export class MetricsServer {
  private readonly server: https.Server;
  private readonly registry: Registry;
  private readonly log: Logger;
  private readonly watcher: TlsDirWatcher | undefined;

  constructor(private readonly options: MetricsServerOptions) {
    this.registry = options.registry ?? defaultRegistry;
    this.log = (options.log ?? silentLogger).child({ server: 'metrics' });
    let tls: { cert: string | Buffer; key: string | Buffer };
    if ('dir' in options.tls) {
      this.watcher = new TlsDirWatcher(options.tls.dir, (files) => this.setTls(files), this.log);
      const mounted = this.watcher.start();
      if (!mounted) this.log.warn({ dir: options.tls.dir }, 'no metrics certificate mounted: serving a self-signed one until the operator\'s appears');
      tls = mounted ?? selfSignedCertificate(options.tls.selfSignedName);
    } else {
      tls = options.tls;
    }
    this.server = https.createServer({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' }, (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.log.warn({ err }, 'metrics request failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('could not authorize the request; try again\n');
      });
    });
    this.server.keepAliveTimeout = 5_000;
  }

  /** Serves new connections with this certificate (a renewed one); open connections keep theirs. */
  setTls(tls: { cert: string | Buffer; key: string | Buffer }): void {
    this.server.setSecureContext({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' });
  }

  /** Looks at the mounted certificate now (it is also looked at periodically); true when a new one was taken. */
  reloadTls(): boolean {
    return this.watcher?.check() ?? false;
  }

  async listen(): Promise<AddressInfo> {
    const address = await listenOn(this.server, this.options.port, this.options.host);
    this.log.info({ port: address.port }, 'metrics endpoint listening (HTTPS, authorized scrapers only)');
    return address;
  }

  async close(): Promise<void> {
    this.watcher?.stop();
    await closeServer(this.server);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if ((req.url ?? '/').split('?')[0] !== METRICS_PATH) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const decision = await this.options.authorizer.authorize(bearer);
    if (!decision.allowed) {
      this.log.debug({ code: decision.code, reason: decision.reason }, 'metrics scrape refused');
      res.writeHead(decision.code, { 'content-type': 'text/plain', ...(decision.code === 401 ? { 'www-authenticate': 'Bearer' } : {}) }).end(`${decision.reason}\n`);
      return;
    }
    const body = await this.registry.metrics();
    res.writeHead(200, { 'content-type': this.registry.contentType }).end(body);
  }
}

/** What a main does: HTTPS /metrics for authorized scrapers on `port`, with the certificate mounted in `tlsDir`. */
export async function serveMetrics(client: KubeClient, port: number, name: string, log: Logger, tlsDir = METRICS_TLS_DIR): Promise<MetricsServer> {
  const server = new MetricsServer({ port, authorizer: new KubeMetricsAuthorizer(client), tls: { dir: tlsDir, selfSignedName: name }, log });
  await server.listen();
  return server;
}
