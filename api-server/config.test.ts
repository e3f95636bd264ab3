import { describe, expect, test } from '@jest/globals';
import { configFrom } from './config.js';

describe('the api-server configuration', () => {
  test('defaults, variables and flags', () => {
    expect(configFrom({})).toEqual({
      port: 8443,
      tlsCertFile: '/etc/kubevm/tls/tls.crt',
      tlsKeyFile: '/etc/kubevm/tls/tls.key',
      authRefreshMs: 60_000,
      healthPort: 8080,
      metricsPort: 8444,
      metricsTlsDir: '/etc/kubevm/metrics-tls',
      namespace: 'kubevirt',
      streamTlsDir: '/etc/kubevm/streams-tls',
      nodeHandlerStreamPort: 8186,
      webhookClientAuth: 'optional',
    });
    expect(configFrom({ KUBEVM_API_PORT: '9443', POD_NAMESPACE: 'kv' }, ['--health-port=9090', '--api-auth-refresh-seconds=5', '--node-handler-stream-port=9186'])).toMatchObject({
      nodeHandlerStreamPort: 9186,
      port: 9443,
      healthPort: 9090,
      authRefreshMs: 5000,
      namespace: 'kv',
    });
  });

  test('webhook callers: optional or required, nothing else', () => {
    expect(configFrom({ KUBEVM_API_WEBHOOK_CLIENT_AUTH: 'required' }).webhookClientAuth).toBe('required');
    expect(() => configFrom({ KUBEVM_API_WEBHOOK_CLIENT_AUTH: 'yes' })).toThrow('KUBEVM_API_WEBHOOK_CLIENT_AUTH="yes" is not accepted');
  });

  test('a bad value is named with what is accepted', () => {
    expect(() => configFrom({ KUBEVM_API_PORT: '70000' })).toThrow('KUBEVM_API_PORT="70000" is not accepted; accepted: a whole number from 0 to 65535');
    expect(() => configFrom({ KUBEVM_API_AUTH_REFRESH_SECONDS: '0' })).toThrow('KUBEVM_API_AUTH_REFRESH_SECONDS="0" is not accepted');
  });
});
