// The api-server's settings, read by the one configuration loader (runtime/config.ts): each is a
// flag --name and a variable KUBEVM_NAME; a bad value stops the process with one line naming it.
import { z } from 'zod';
import { enumSetting, integerSetting, loadConfig, portSetting } from '../runtime/config.js';
import { WEBHOOK_CLIENT_AUTH, WEBHOOK_CLIENT_AUTH_ENV } from '../runtime/contracts/api-server.js';
import type { WebhookClientAuth } from '../runtime/contracts/api-server.js';
import type { SettingsOf } from '../runtime/config.js';
import { NODE_HANDLER_STREAM_PORT, STREAM_TLS_DIR } from '../runtime/contracts/streams.js';
import { metricsPortSetting, metricsTlsDirSetting } from '../runtime/metrics-server.js';

export const apiServerSettings = {
  port: { env: 'KUBEVM_API_PORT', schema: portSetting.default(8443), description: 'the HTTPS port of the subresource API and the admission webhooks (default 8443)' },
  tlsCert: {
    env: 'KUBEVM_API_TLS_CERT',
    schema: z.string().default('/etc/kubevm/tls/tls.crt'),
    description: 'the serving certificate, PEM (the Secret kubevm-api-tls mounted; default /etc/kubevm/tls/tls.crt)',
  },
  tlsKey: { env: 'KUBEVM_API_TLS_KEY', schema: z.string().default('/etc/kubevm/tls/tls.key'), description: 'its key, PEM (default /etc/kubevm/tls/tls.key)' },
  authRefreshSeconds: {
    env: 'KUBEVM_API_AUTH_REFRESH_SECONDS',
    schema: integerSetting(1, 86_400).default(60),
    description: 'how often kube-system/extension-apiserver-authentication is re-read (default 60)',
  },
  streamTlsDir: {
    env: 'KUBEVM_STREAM_TLS_DIR',
    schema: z.string().default(STREAM_TLS_DIR),
    description: `the client certificate for the node handlers' streams: tls.crt, tls.key and the CA ca.crt (default ${STREAM_TLS_DIR})`,
  },
  nodeHandlerStreamPort: {
    env: 'KUBEVM_NODE_HANDLER_STREAM_PORT',
    schema: portSetting.default(NODE_HANDLER_STREAM_PORT),
    description: `the node handlers' stream port (default ${NODE_HANDLER_STREAM_PORT})`,
  },
  healthPort: { env: 'KUBEVM_HEALTH_PORT', schema: portSetting.default(8080), description: '/healthz, /readyz over HTTP (default 8080)' },
  // Its API has 8443.
  metricsPort: metricsPortSetting(8444),
  metricsTlsDir: metricsTlsDirSetting(),
  webhookClientAuth: {
    env: WEBHOOK_CLIENT_AUTH_ENV,
    schema: enumSetting(WEBHOOK_CLIENT_AUTH).default('optional'),
    description:
      'required: admission reviews must come with the front proxy\'s client certificate, which the kube-apiserver presents only when its admission configuration says so (docs/operations.md); optional (default): any caller, as KubeVirt',
  },
  podNamespace: { env: 'POD_NAMESPACE', schema: z.string().default('kubevirt'), description: "kubevm's namespace (downward API; default kubevirt)" },
};

export type ApiServerConfig = {
  port: number;
  tlsCertFile: string;
  tlsKeyFile: string;
  authRefreshMs: number;
  healthPort: number;
  metricsPort: number;
  metricsTlsDir: string;
  namespace: string;
  streamTlsDir: string;
  nodeHandlerStreamPort: number;
  webhookClientAuth: WebhookClientAuth;
};

/** The server's configuration from its settings. */
export function apiServerConfig(settings: SettingsOf<typeof apiServerSettings>): ApiServerConfig {
  return {
    port: settings.port,
    tlsCertFile: settings.tlsCert,
    tlsKeyFile: settings.tlsKey,
    authRefreshMs: settings.authRefreshSeconds * 1000,
    healthPort: settings.healthPort,
    metricsPort: settings.metricsPort,
    metricsTlsDir: settings.metricsTlsDir,
    namespace: settings.podNamespace,
    streamTlsDir: settings.streamTlsDir,
    nodeHandlerStreamPort: settings.nodeHandlerStreamPort,
    webhookClientAuth: settings.webhookClientAuth,
  };
}

/** The configuration from flags and the environment; throws ConfigError naming a bad setting. */
export function configFrom(env: NodeJS.ProcessEnv, argv: readonly string[] = []): ApiServerConfig {
  return apiServerConfig(loadConfig(apiServerSettings, argv, env));
}
