// The controller's settings (runtime/config.ts: a flag --name and a variable KUBEVM_NAME each;
// a flag wins). `controllerSettings` is the list; main.ts prints it as usage.
import { hostname } from 'node:os';
import { z } from 'zod';
import { booleanSetting, enumSetting, integerSetting, loadConfig, portSetting, quantitySetting } from '../runtime/config.js';
import type { SettingsOf } from '../runtime/config.js';
import type { ControllerConfig } from './manager.js';
import { metricsPortSetting, metricsTlsDirSetting } from '../runtime/metrics-server.js';

export const controllerSettings = {
  launcherImage: { env: 'KUBEVM_LAUNCHER_IMAGE', schema: z.string(), description: 'the launcher image (required)' },
  launcherPullPolicy: {
    env: 'KUBEVM_LAUNCHER_PULL_POLICY',
    schema: enumSetting(['IfNotPresent', 'Always', 'Never']).default('IfNotPresent'),
    description: 'IfNotPresent (default), Always or Never',
  },
  launcherCommand: {
    env: 'KUBEVM_LAUNCHER_COMMAND',
    schema: z.string().optional(),
    description: "the launcher's command, space-separated; the image's entrypoint when unset",
  },
  useEmulation: {
    env: 'KUBEVM_USE_EMULATION',
    schema: booleanSetting.optional(),
    description: "true or false; unset: the KubeVirt CR's developerConfiguration.useEmulation",
  },
  launcherMemoryOverhead: {
    env: 'KUBEVM_LAUNCHER_MEMORY_OVERHEAD',
    schema: quantitySetting.optional(),
    description: "launcher memory on top of the guest's (default: from the VMI's vCPUs, graphics and memory, see launcherMemoryOverhead)",
  },
  imageSourceMode: {
    env: 'KUBEVM_IMAGE_SOURCE_MODE',
    schema: enumSetting(['init-copy', 'image-volume']).optional(),
    description: 'init-copy (default) or image-volume: how containerDisk/kernelBoot images reach the launcher',
  },
  copier: { env: 'KUBEVM_COPIER', schema: z.string().optional(), description: 'static copier in the launcher image for init-copy (default /bin/busybox)' },
  podNamespace: { env: 'POD_NAMESPACE', schema: z.string().default('kubevirt'), description: "the Lease's namespace (downward API; default kubevirt)" },
  podName: { env: 'POD_NAME', schema: z.string().optional(), description: "this replica's leader election identity (downward API; default the host name)" },
  leaderElect: { env: 'KUBEVM_LEADER_ELECT', schema: booleanSetting.default(true), description: 'true (default) or false' },
  healthPort: { env: 'KUBEVM_HEALTH_PORT', schema: portSetting.default(8080), description: '/healthz, /readyz over HTTP (default 8080)' },
  metricsPort: metricsPortSetting(),
  metricsTlsDir: metricsTlsDirSetting(),
  workers: { env: 'KUBEVM_WORKERS', schema: integerSetting(1, 1000).default(3), description: 'workers per controller (default 3)' },
  syncPeriodSeconds: {
    env: 'KUBEVM_SYNC_PERIOD_SECONDS',
    schema: integerSetting(0, 7 * 24 * 3600).default(600),
    description: 'every VM and VMI is reconciled again this often, +0-10 % jitter (default 600; 0: off)',
  },
};

export type ControllerSettings = SettingsOf<typeof controllerSettings>;

/** The manager's configuration from the settings. */
export function controllerConfig(settings: ControllerSettings): ControllerConfig & { healthPort: number; metricsPort: number; metricsTlsDir: string } {
  return {
    launcherImage: settings.launcherImage,
    launcherImagePullPolicy: settings.launcherPullPolicy,
    ...(settings.launcherCommand ? { launcherCommand: settings.launcherCommand.split(/\s+/).filter(Boolean) } : {}),
    ...(settings.useEmulation !== undefined ? { useEmulation: settings.useEmulation } : {}),
    ...(settings.launcherMemoryOverhead ? { memoryOverhead: settings.launcherMemoryOverhead } : {}),
    ...(settings.imageSourceMode ? { imageSourceMode: settings.imageSourceMode } : {}),
    ...(settings.copier ? { copierPath: settings.copier } : {}),
    namespace: settings.podNamespace,
    leaseName: 'kubevm-controller',
    leaderElection: settings.leaderElect,
    identity: settings.podName ?? hostname(),
    vmWorkers: settings.workers,
    vmiWorkers: settings.workers,
    healthPort: settings.healthPort,
    metricsPort: settings.metricsPort,
    metricsTlsDir: settings.metricsTlsDir,
    syncPeriodMs: settings.syncPeriodSeconds * 1000,
  };
}

/** Flags and environment to the manager's configuration; throws ConfigError naming a bad setting. */
export function configFrom(argv: readonly string[], env: NodeJS.ProcessEnv): ControllerConfig & { healthPort: number; metricsPort: number; metricsTlsDir: string } {
  return controllerConfig(loadConfig(controllerSettings, argv, env));
}
