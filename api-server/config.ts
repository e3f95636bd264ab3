// The api-server's configuration, from the environment, validated by one zod schema (so it moves
// to the shared configuration loader unchanged once that exists). See main.ts for the list.
import { z } from 'zod';

const Port = z.coerce.number().int().min(0).max(65535);

export const ApiServerEnvironment = z.object({
  /** The HTTPS port of the subresource API and the admission webhooks. */
  KUBEVM_API_PORT: Port.default(8443),
  /** The serving certificate and key (PEM files; the Secret kubevm-api-tls mounted). */
  KUBEVM_API_TLS_CERT: z.string().min(1).default('/etc/kubevm/tls/tls.crt'),
  KUBEVM_API_TLS_KEY: z.string().min(1).default('/etc/kubevm/tls/tls.key'),
  /** How often the front-proxy settings are re-read from kube-system/extension-apiserver-authentication. */
  KUBEVM_API_AUTH_REFRESH_SECONDS: z.coerce.number().int().min(1).default(60),
  /** /healthz, /readyz, /metrics (plain HTTP, as every kubevm component). */
  HEALTH_PORT: Port.default(8080),
});

export type ApiServerConfig = {
  port: number;
  tlsCertFile: string;
  tlsKeyFile: string;
  authRefreshMs: number;
  healthPort: number;
};

/** The configuration, or an error naming each variable that is wrong. */
export function configFrom(env: NodeJS.ProcessEnv): ApiServerConfig {
  const parsed = ApiServerEnvironment.safeParse(env);
  if (!parsed.success) {
    throw new Error(`invalid configuration: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const e = parsed.data;
  return {
    port: e.KUBEVM_API_PORT,
    tlsCertFile: e.KUBEVM_API_TLS_CERT,
    tlsKeyFile: e.KUBEVM_API_TLS_KEY,
    authRefreshMs: e.KUBEVM_API_AUTH_REFRESH_SECONDS * 1000,
    healthPort: e.HEALTH_PORT,
  };
}
