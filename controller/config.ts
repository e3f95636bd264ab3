// The controller's configuration from flags (--name=value) and the environment; flags win.
// See main.ts for the list.
import { hostname } from 'node:os';
import type { ControllerConfig } from './manager.js';

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
  const imageSourceMode = setting('image-source-mode', 'KUBEVM_IMAGE_SOURCE_MODE');
  if (imageSourceMode !== undefined && imageSourceMode !== 'init-copy' && imageSourceMode !== 'image-volume') {
    throw new Error(`image source mode must be init-copy or image-volume, not ${JSON.stringify(imageSourceMode)}`);
  }
  const copier = setting('copier', 'KUBEVM_COPIER');
  return {
    launcherImage,
    launcherImagePullPolicy: pullPolicy,
    ...(command ? { launcherCommand: command.split(/\s+/).filter(Boolean) } : {}),
    ...(useEmulation !== undefined ? { useEmulation } : {}),
    ...(overhead ? { memoryOverhead: overhead } : {}),
    ...(imageSourceMode ? { imageSourceMode } : {}),
    ...(copier ? { copierPath: copier } : {}),
    namespace: setting('namespace', 'POD_NAMESPACE') ?? 'kubevirt',
    leaseName: 'kubevm-controller',
    leaderElection: parseBoolean('leader-elect', setting('leader-elect', 'KUBEVM_LEADER_ELECT')) ?? true,
    identity: env['POD_NAME'] ?? hostname(),
    vmWorkers: workers,
    vmiWorkers: workers,
    healthPort,
  };
}
