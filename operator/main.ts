// kubevm operator (KubeVirt's virt-operator): reconciles the KubeVirt CR into the whole
// installation. Reads its configuration (config.ts), wires informers, leader election, the
// controller and the health/metrics endpoint, and shuts down gracefully. The logic lives beside it.
// Configuration: operatorSettings in config.ts (a flag --name and a variable KUBEVM_NAME each).
import { HealthServer } from '../runtime/health.js';
import { serveMetrics } from '../runtime/metrics-server.js';
import { KubeClient } from '../runtime/kube.js';
import { createRootLogger } from '../runtime/logging.js';
import { enableProcessMetrics, readyStatusGauge } from '../runtime/metrics.js';
import { ProcessLifecycle } from '../runtime/process.js';
import { loadConfigOrExit } from '../runtime/config.js';
import { operatorConfig, operatorSettings } from './config.js';
import { OperatorManager } from './manager.js';

async function main(): Promise<void> {
  const config = operatorConfig(loadConfigOrExit('operator', operatorSettings));
  const log = createRootLogger({ component: 'operator' });
  const lifecycle = new ProcessLifecycle({ log });
  lifecycle.installSignalHandlers();
  enableProcessMetrics();
  const ready = readyStatusGauge('virt_operator');

  const client = new KubeClient();
  const manager = new OperatorManager(client, config, log);
  const health = new HealthServer({ port: config.healthPort, log });
  health.addReadinessCheck('informers-synced', () => manager.hasSynced() || 'informer caches are still syncing');
  await health.listen();
  const metrics = await serveMetrics(client, config.metricsPort, 'kubevm-operator', log, config.metricsTlsDir);

  lifecycle.onShutdown('health-server', async () => health.close());
  lifecycle.onShutdown('metrics-server', async () => metrics.close());
  lifecycle.onShutdown('operator', async () => {
    health.markShuttingDown();
    ready.set(0);
    await manager.stop();
    client.close();
  });
  manager.start();
  log.info({ identity: config.identity, namespace: config.namespace, defaults: config.defaults }, 'operator started');
  const readyTimer = setInterval(() => ready.set(manager.hasSynced() ? 1 : 0), 1_000);
  readyTimer.unref();
}

main().catch((err: unknown) => {
  createRootLogger({ component: 'operator' }).fatal({ err }, 'operator failed to start');
  process.exit(1);
});
