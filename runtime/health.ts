// The probe endpoint every component serves:
//   /healthz  liveness: the process and its event loop answer (plus any liveness checks)
//   /readyz   readiness: every readiness check passes (informers synced, leading if it matters)
// Plain HTTP by default (the kubelet's probes carry no token); HTTPS when a certificate and key are
// given. /metrics is served apart, over HTTPS to authorized scrapers only (metrics-server.ts).
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from './logging.js';
import { silentLogger } from './logging.js';
import type { KubevirtComponentName } from './metrics.js';
import { readyStatusGauge } from './metrics.js';

/** A named check: true when healthy, or a string explaining why not. */
export type HealthCheck = () => boolean | string | Promise<boolean | string>;

/** Ready once every informer has its first list (reconciling a partial cache creates duplicates). */
export function informersSynced(informers: ReadonlyArray<{ hasSynced(): boolean; readonly descriptor: { resource: string } }>): HealthCheck {
  return () => {
    const pending = informers.filter((informer) => !informer.hasSynced()).map((informer) => informer.descriptor.resource);
    return pending.length === 0 || `not synced: ${pending.join(', ')}`;
  };
}

/** Listen on port (0: any) and host (default all addresses); the address it got. */
export async function listenOn(server: http.Server | https.Server, port: number, host = '0.0.0.0'): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server.address() as AddressInfo;
}

/** Stop accepting and drop idle keep-alive connections (probes and scrapers must not hold shutdown up). */
export async function closeServer(server: http.Server | https.Server): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections?.();
  });
}

export interface HealthServerOptions {
  port: number;
  host?: string;
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Drive kubevirt_<component>_ready_status from the readiness checks. */
  component?: KubevirtComponentName;
  log?: Logger;
}

export class HealthServer {
  private readonly liveness = new Map<string, HealthCheck>();
  private readonly readiness = new Map<string, HealthCheck>();
  private readonly server: http.Server | https.Server;
  private readonly options: HealthServerOptions;
  private readonly log: Logger;
  private shuttingDown = false;

  constructor(options: HealthServerOptions) {
    this.options = options;
    this.log = (options.log ?? silentLogger).child({ server: 'health' });
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      this.handle(req, res).catch((err: unknown) => {
        this.log.error({ err }, 'health endpoint failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('internal error\n');
      });
    };
    this.server = options.tls ? https.createServer({ cert: options.tls.cert, key: options.tls.key }, handler) : http.createServer(handler);
    // Probes must not hold the process open on shutdown.
    this.server.keepAliveTimeout = 5_000;
  }

  addLivenessCheck(name: string, check: HealthCheck): void {
    this.liveness.set(name, check);
  }

  addReadinessCheck(name: string, check: HealthCheck): void {
    this.readiness.set(name, check);
  }

  /** Report not-ready from now on, so the Service stops sending traffic while we shut down. */
  markShuttingDown(): void {
    this.shuttingDown = true;
  }

  async listen(): Promise<AddressInfo> {
    const address = await listenOn(this.server, this.options.port, this.options.host);
    this.log.info({ port: address.port, tls: Boolean(this.options.tls) }, 'health endpoint listening');
    return address;
  }

  async close(): Promise<void> {
    await closeServer(this.server);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    switch (path) {
      case '/healthz':
      case '/livez':
        return this.respondChecks(res, this.liveness, false);
      case '/readyz':
        return this.respondChecks(res, this.readiness, this.shuttingDown);
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  }

  private async respondChecks(res: http.ServerResponse, checks: Map<string, HealthCheck>, shuttingDown: boolean): Promise<void> {
    const lines: string[] = [];
    let ok = !shuttingDown;
    if (shuttingDown) lines.push('[-]shutdown: shutting down');
    for (const [name, check] of checks) {
      let result: boolean | string;
      try {
        result = await check();
      } catch (err) {
        result = err instanceof Error ? err.message : String(err);
      }
      if (result === true) {
        lines.push(`[+]${name} ok`);
      } else {
        ok = false;
        lines.push(`[-]${name} failed${typeof result === 'string' ? `: ${result}` : ''}`);
      }
    }
    lines.push(ok ? 'ok' : 'not ok');
    if (checks === this.readiness && this.options.component) readyStatusGauge(this.options.component).set(ok ? 1 : 0);
    res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(`${lines.join('\n')}\n`);
  }
}
