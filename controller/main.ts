// kubevm controller (KubeVirt's virt-controller): VirtualMachine → VirtualMachineInstance → launcher
// pod, and VirtualMachineInstanceMigration → target launcher pod. Reads its configuration, wires
// informers, leader election, the controllers and the health/metrics endpoint, and shuts down
// gracefully. The logic lives in vm/, vmi/ and migration/.
//
// Configuration: controllerSettings in config.ts; each setting is a flag --name and a variable
// KUBEVM_NAME (runtime/config.ts), e.g. --launcher-image / KUBEVM_LAUNCHER_IMAGE (required).
// A bad value stops the process with one line naming it and what is accepted (exit code 2).
import { HealthServer } from '../runtime/health.js';
import { serveMetrics } from '../runtime/metrics-server.js';
import { KubeClient } from '../runtime/kube.js';
import { createRootLogger } from '../runtime/logging.js';
import { enableProcessMetrics, readyStatusGauge } from '../runtime/metrics.js';
import { ProcessLifecycle } from '../runtime/process.js';
import { loadConfigOrExit } from '../runtime/config.js';
import { controllerConfig, controllerSettings } from './config.js';
import { ControllerManager } from './manager.js';

async function main(): Promise<void> {
  const config = controllerConfig(loadConfigOrExit('controller', controllerSettings));
  const log = createRootLogger({ component: 'controller' });
  const lifecycle = new ProcessLifecycle({ log });
  lifecycle.installSignalHandlers();
  enableProcessMetrics();
  const ready = readyStatusGauge('virt_controller');

  const client = new KubeClient();
  const manager = new ControllerManager(client, config, log);
  const health = new HealthServer({ port: config.healthPort, log });
  // Ready once the caches are filled, on every replica: a standby is a healthy replica.
  health.addReadinessCheck('informers-synced', () => manager.hasSynced() || 'informer caches are still syncing');
  await health.listen();
  const metrics = await serveMetrics(client, config.metricsPort, 'kubevm-controller', log, config.metricsTlsDir);

  // Shutdown hooks run in reverse: controllers and Lease first, then the endpoint.
  lifecycle.onShutdown('health-server', async () => health.close());
  lifecycle.onShutdown('metrics-server', async () => metrics.close());
  lifecycle.onShutdown('controllers', async () => {
    health.markShuttingDown();
    ready.set(0);
    await manager.stop();
    client.close();
  });
  manager.start();
  log.info({ identity: config.identity, leaderElection: config.leaderElection, launcherImage: config.launcherImage }, 'controller started');
  const readyTimer = setInterval(() => ready.set(manager.hasSynced() ? 1 : 0), 1_000);
  readyTimer.unref();
}

main().catch((err: unknown) => {
  createRootLogger({ component: 'controller' }).fatal({ err }, 'controller failed to start');
  process.exit(1);
});
