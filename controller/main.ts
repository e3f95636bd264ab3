// kubevm controller (KubeVirt's virt-controller): VirtualMachine → VirtualMachineInstance → launcher
// pod. Reads its configuration, wires informers, leader election, the controllers and the
// health/metrics endpoint, and shuts down gracefully. The logic lives in vm/ and vmi/.
//
// Configuration: flags (--name=value) override the environment.
//   --launcher-image        KUBEVM_LAUNCHER_IMAGE        the launcher image (required)
//   --launcher-pull-policy  KUBEVM_LAUNCHER_PULL_POLICY  IfNotPresent (default), Always, Never
//   --launcher-command      KUBEVM_LAUNCHER_COMMAND      the launcher's command, space-separated; the image's entrypoint when unset
//   --use-emulation         KUBEVM_USE_EMULATION         true/false; unset: the KubeVirt CR's developerConfiguration.useEmulation
//   --memory-overhead       KUBEVM_LAUNCHER_MEMORY_OVERHEAD  launcher memory on top of the guest's (default 80Mi)
//   --image-source-mode     KUBEVM_IMAGE_SOURCE_MODE     init-copy (default) or image-volume: how containerDisk/kernelBoot images reach the launcher
//   --copier                KUBEVM_COPIER                static copier in the launcher image for init-copy (default /bin/busybox)
//   --namespace             POD_NAMESPACE                the Lease's namespace (default kubevirt)
//   --leader-elect          KUBEVM_LEADER_ELECT          true (default) / false
//   --health-port           HEALTH_PORT                  /healthz, /readyz, /metrics (default 8080)
//   --workers               KUBEVM_WORKERS               workers per controller (default 3)
//   POD_NAME (downward API): this replica's leader election identity; LOG_LEVEL.
import { HealthServer } from '../runtime/health.js';
import { KubeClient } from '../runtime/kube.js';
import { createRootLogger } from '../runtime/logging.js';
import { enableProcessMetrics, readyStatusGauge } from '../runtime/metrics.js';
import { ProcessLifecycle } from '../runtime/process.js';
import { configFrom } from './config.js';
import { ControllerManager } from './manager.js';

async function main(): Promise<void> {
  const log = createRootLogger({ component: 'controller' });
  const config = configFrom(process.argv.slice(2), process.env);
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

  // Shutdown hooks run in reverse: controllers and Lease first, then the endpoint.
  lifecycle.onShutdown('health-server', async () => health.close());
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
