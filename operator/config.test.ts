import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../runtime/config.js';
import { OPERATOR_VERSION, operatorConfig, operatorSettings } from './config.js';

describe('operator settings', () => {
  it('install the operator\'s own version by default, which is the package\'s', () => {
    const pkg = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'package.json'), 'utf8')) as { version: string };
    expect(OPERATOR_VERSION).toBe(pkg.version);
    const config = operatorConfig(loadConfig(operatorSettings, [], { POD_NAME: 'op-1' }));
    expect(config).toMatchObject({ namespace: 'kubevirt', identity: 'op-1', leaderElection: true, defaults: { version: pkg.version, registry: 'kubevm', pullPolicy: 'IfNotPresent' } });
  });

  it('refuses a pull policy Kubernetes does not know, naming the variable', () => {
    expect(() => loadConfig(operatorSettings, [], { KUBEVM_IMAGE_PULL_POLICY: 'Sometimes' })).toThrow(/KUBEVM_IMAGE_PULL_POLICY="Sometimes" is not accepted; accepted: IfNotPresent, Always, Never/);
  });
});
