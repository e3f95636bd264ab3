// kubevm api-server (KubeVirt's virt-api): the aggregated API subresources.kubevirt.io (start,
// stop, restart, migrate, pause, ...) behind the kube-apiserver. Reads its configuration, the
// front-proxy settings and its certificate, serves, and shuts down gracefully. The logic lives in
// the modules beside it.
//
// Configuration: apiServerSettings in config.ts (runtime/config.ts reads them: a flag --name or a
// variable KUBEVM_NAME each, e.g. --api-port / KUBEVM_API_PORT); LOG_LEVEL.
import { readFileSync } from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import { HealthServer } from '../runtime/health.js';
import { serveMetrics } from '../runtime/metrics-server.js';
import { KubeClient, coreResources } from '../runtime/kube.js';
import type { KubeObject } from '../runtime/kube.js';
import { createRootLogger } from '../runtime/logging.js';
import { enableProcessMetrics } from '../runtime/metrics.js';
import { ProcessLifecycle } from '../runtime/process.js';
import { clusterAdmissionContext } from './admission/context.js';
import { createApiServer } from './app.js';
import { SubjectAccessReviewAuthorizer } from './authorize.js';
import { loadConfigOrExit } from '../runtime/config.js';
import { apiServerConfig, apiServerSettings } from './config.js';
import { loadFrontProxyConfig } from './front-proxy.js';
import { listen } from './server.js';
import { NodeStreams, podIpLocator } from './node-streams.js';
import { TlsDirWatcher } from '../runtime/tls-files.js';
import type { TlsFiles } from '../runtime/tls-files.js';

async function main(): Promise<void> {
  const config = apiServerConfig(loadConfigOrExit('api-server', apiServerSettings));
  const log = createRootLogger({ component: 'api-server' });
  const lifecycle = new ProcessLifecycle({ log });
  lifecycle.installSignalHandlers();
  enableProcessMetrics();

  const client = new KubeClient();
  const configMaps = client.resource<KubeObject & { data?: Record<string, string> }>(coreResources.configMaps);
  let frontProxy = await loadFrontProxyConfig(configMaps);
  const tls = { cert: readFileSync(config.tlsCertFile), key: readFileSync(config.tlsKeyFile) };

  // The streams client certificate the operator issues; a renewed one is used from the next stream on.
  let streamTls: TlsFiles | undefined;
  const streamTlsWatcher = new TlsDirWatcher(config.streamTlsDir, (files) => (streamTls = files), log.child({ client: 'streams' }));
  streamTls = streamTlsWatcher.start();
  if (!streamTls) log.warn({ dir: config.streamTlsDir }, 'no streams certificate yet: console, VNC and port-forward answer 503 until the operator issues it');
  const streams = new NodeStreams(podIpLocator(client.resource(coreResources.pods), config.namespace, config.nodeHandlerStreamPort), () => streamTls);

  const admission = clusterAdmissionContext(client, config.namespace);
  const app = createApiServer({ client, authorizer: new SubjectAccessReviewAuthorizer(client), frontProxy: () => frontProxy, log, tls, admission, streams, webhookClientAuth: config.webhookClientAuth });
  const health = new HealthServer({ port: config.healthPort, log, component: 'virt_api' });
  let serving = false;
  health.addReadinessCheck('serving', () => serving || 'the HTTPS server is not listening yet');
  await health.listen();
  const metrics = await serveMetrics(client, config.metricsPort, 'kubevm-api-server', log, config.metricsTlsDir);

  // The API server may rotate its front-proxy CA: follow it without a restart.
  const refresh = setInterval(() => {
    loadFrontProxyConfig(configMaps)
      .then((next) => {
        if (next.clientCA !== frontProxy.clientCA) {
          (app.server as unknown as HttpsServer).setSecureContext({ ...tls, ca: next.clientCA });
          log.info('front-proxy CA changed; serving with the new one');
        }
        frontProxy = next;
      })
      .catch((err: unknown) => log.warn({ err }, 'could not re-read the front-proxy settings; keeping the last ones'));
  }, config.authRefreshMs);
  refresh.unref();

  lifecycle.onShutdown('health-server', async () => health.close());
  lifecycle.onShutdown('metrics-server', async () => metrics.close());
  lifecycle.onShutdown('api-server', async () => {
    health.markShuttingDown();
    clearInterval(refresh);
    streamTlsWatcher.stop();
    await app.close();
    client.close();
  });
  const address = await listen(app, config.port);
  serving = true;
  log.info({ port: address.port, allowedNames: frontProxy.allowedNames }, 'api-server serving subresources.kubevirt.io');
}

main().catch((err: unknown) => {
  createRootLogger({ component: 'api-server' }).fatal({ err }, 'api-server failed to start');
  process.exit(1);
});
