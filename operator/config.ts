// The operator's settings (runtime/config.ts: a flag --name and a variable KUBEVM_NAME each; a
// flag wins). The operator's Deployment (deploy/, the chart) sets them. `operatorSettings` is the
// list; main.ts prints it as usage.
import { hostname } from 'node:os';
import { z } from 'zod';
import { booleanSetting, enumSetting, portSetting } from '../runtime/config.js';
import type { SettingsOf } from '../runtime/config.js';
import type { OperatorConfig } from './manager.js';
import { WEBHOOK_CLIENT_AUTH } from '../runtime/contracts/api-server.js';
import { metricsPortSetting, metricsTlsDirSetting } from '../runtime/metrics-server.js';

/** The version this operator is, and installs when a KubeVirt CR names no imageTag (package.json's). */
export const OPERATOR_VERSION = '0.1.0';

export const operatorSettings = {
  version: { env: 'KUBEVM_VERSION', schema: z.string().min(1).default(OPERATOR_VERSION), description: `the image tag a KubeVirt CR without imageTag gets (default ${OPERATOR_VERSION})` },
  imageRegistry: { env: 'KUBEVM_IMAGE_REGISTRY', schema: z.string().min(1).default('kubevm'), description: 'the registry a KubeVirt CR without imageRegistry gets (default kubevm)' },
  imagePullPolicy: {
    env: 'KUBEVM_IMAGE_PULL_POLICY',
    schema: enumSetting(['IfNotPresent', 'Always', 'Never']).default('IfNotPresent'),
    description: 'the component images\' pull policy when the CR names none: IfNotPresent (default), Always or Never',
  },
  webhookClientAuth: {
    env: 'KUBEVM_WEBHOOK_CLIENT_AUTH',
    schema: enumSetting(WEBHOOK_CLIENT_AUTH).default('optional'),
    description:
      "required: the api-server refuses admission reviews without the kube-apiserver's front-proxy client certificate (configure the kube-apiserver to present it first: docs/operations.md); optional (default): as KubeVirt",
  },
  podNamespace: { env: 'POD_NAMESPACE', schema: z.string().default('kubevirt'), description: 'where the KubeVirt CR and the Lease live (downward API; default kubevirt)' },
  podName: { env: 'POD_NAME', schema: z.string().optional(), description: "this replica's leader election identity (downward API; default the host name)" },
  leaderElect: { env: 'KUBEVM_LEADER_ELECT', schema: booleanSetting.default(true), description: 'true (default) or false' },
  healthPort: { env: 'KUBEVM_HEALTH_PORT', schema: portSetting.default(8080), description: '/healthz, /readyz over HTTP (default 8080)' },
  metricsPort: metricsPortSetting(),
  metricsTlsDir: metricsTlsDirSetting(),
};

export type OperatorSettings = SettingsOf<typeof operatorSettings>;

export function operatorConfig(settings: OperatorSettings): OperatorConfig & { healthPort: number; metricsPort: number; metricsTlsDir: string } {
  return {
    namespace: settings.podNamespace,
    identity: settings.podName ?? hostname(),
    defaults: { version: settings.version, registry: settings.imageRegistry, pullPolicy: settings.imagePullPolicy, webhookClientAuth: settings.webhookClientAuth },
    leaderElection: settings.leaderElect,
    leaseName: 'kubevm-operator',
    healthPort: settings.healthPort,
    metricsPort: settings.metricsPort,
    metricsTlsDir: settings.metricsTlsDir,
  };
}
