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
//   --namespace             POD_NAMESPACE                the Lease's namespace (default kubevirt)
//   --leader-elect          KUBEVM_LEADER_ELECT          true (default) / false
//   --health-port           HEALTH_PORT                  /healthz, /readyz, /metrics (default 8080)
//   --workers               KUBEVM_WORKERS               workers per controller (default 3)
//   POD_NAME (downward API): this replica's leader election identity; LOG_LEVEL.
import { hostname } from 'node:os';
import { HealthServer } from '../runtime/health.js';
import { KubeClient } from '../runtime/kube.js';
import { createRootLogger } from '../runtime/logging.js';
import { enableProcessMetrics, readyStatusGauge } from '../runtime/metrics.js';
import { ProcessLifecycle } from '../runtime/process.js';
import type { ControllerConfig } from './manager.js';
import { ControllerManager } from './manager.js';

type Settings = Record<string, string | undefined>;

function parseFlags(argv: readonly string[]): Settings {
  const flags: Settings = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${JSON.stringify(arg)}; flags are --name=value`);
    const eq = arg.indexOf('=');
    if (eq !== -1) flags[arg.slice(2, eq)] = arg.slice(eq + 1);
    else flags[arg.slice(2)] = argv[++i];
  }
  return flags;
}

function parseBoolean(name: string, value: string | undefined): boolean | undefined {
  if (value === undefined || value === '') return undefined;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new Error(`${name} must be true or false, not ${JSON.stringify(value)}`);
}

export function configFrom(argv: readonly string[], env: NodeJS.ProcessEnv): ControllerConfig & { healthPort: number } {
  const flags = parseFlags(argv);
  const setting = (flag: string, variable: string): string | undefined => flags[flag] ?? env[variable];
  const launcherImage = setting('launcher-image', 'KUBEVM_LAUNCHER_IMAGE');
  if (!launcherImage) throw new Error('the launcher image is not set: --launcher-image or KUBEVM_LAUNCHER_IMAGE');
  const pullPolicy = setting('launcher-pull-policy', 'KUBEVM_LAUNCHER_PULL_POLICY') ?? 'IfNotPresent';
  if (pullPolicy !== 'IfNotPresent' && pullPolicy !== 'Always' && pullPolicy !== 'Never') {
    throw new Error(`launcher pull policy must be IfNotPresent, Always or Never, not ${JSON.stringify(pullPolicy)}`);
  }
  const workers = Number(setting('workers', 'KUBEVM_WORKERS') ?? 3);
  const healthPort = Number(setting('health-port', 'HEALTH_PORT') ?? 8080);
  if (!Number.isInteger(workers) || workers < 1) throw new Error('workers must be a positive integer');
  if (!Number.isInteger(healthPort) || healthPort < 0 || healthPort > 65535) throw new Error('health port must be a port number');
  const command = setting('launcher-command', 'KUBEVM_LAUNCHER_COMMAND');
  const useEmulation = parseBoolean('use-emulation', setting('use-emulation', 'KUBEVM_USE_EMULATION'));
  const overhead = setting('memory-overhead', 'KUBEVM_LAUNCHER_MEMORY_OVERHEAD');
  return {
    launcherImage,
    launcherImagePullPolicy: pullPolicy,
    ...(command ? { launcherCommand: command.split(/\s+/).filter(Boolean) } : {}),
    ...(useEmulation !== undefined ? { useEmulation } : {}),
    ...(overhead ? { memoryOverhead: overhead } : {}),
    namespace: setting('namespace', 'POD_NAMESPACE') ?? 'kubevirt',
    leaseName: 'kubevm-controller',
    leaderElection: parseBoolean('leader-elect', setting('leader-elect', 'KUBEVM_LEADER_ELECT')) ?? true,
    identity: env['POD_NAME'] ?? hostname(),
    vmWorkers: workers,
    vmiWorkers: workers,
    healthPort,
  };
}

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
