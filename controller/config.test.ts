import { describe, expect, test } from '@jest/globals';
import { ConfigError } from '../runtime/config.js';
import { configFrom } from './config.js';

describe('the controller configuration', () => {
  test('environment, with flags overriding', () => {
    const config = configFrom(['--workers=5', '--use-emulation', 'true'], {
      KUBEVM_LAUNCHER_IMAGE: 'kubevm/launcher:1',
      KUBEVM_WORKERS: '2',
      POD_NAME: 'ctl-0',
      KUBEVM_LAUNCHER_COMMAND: 'node dist/launcher/main.js',
    });
    expect(config).toMatchObject({
      launcherImage: 'kubevm/launcher:1',
      launcherImagePullPolicy: 'IfNotPresent',
      launcherCommand: ['node', 'dist/launcher/main.js'],
      useEmulation: true,
      namespace: 'kubevirt',
      leaderElection: true,
      identity: 'ctl-0',
      vmWorkers: 5,
      vmiWorkers: 5,
      healthPort: 8080,
    });
    expect(config).not.toHaveProperty('memoryOverhead');
  });

  test('every setting has its flag and its variable', () => {
    const config = configFrom(
      ['--launcher-pull-policy=Never', '--launcher-memory-overhead=100Mi', '--image-source-mode=image-volume', '--pod-namespace=kv', '--leader-elect=false', '--health-port=9090'],
      { KUBEVM_LAUNCHER_IMAGE: 'img', KUBEVM_COPIER: '/bin/cp', KUBEVM_USE_EMULATION: 'false' },
    );
    expect(config).toMatchObject({
      launcherImagePullPolicy: 'Never',
      memoryOverhead: '100Mi',
      imageSourceMode: 'image-volume',
      copierPath: '/bin/cp',
      useEmulation: false,
      namespace: 'kv',
      leaderElection: false,
      healthPort: 9090,
    });
  });

  test.each([
    [[], {}, '--launcher-image (or KUBEVM_LAUNCHER_IMAGE) is required: the launcher image (required)'],
    [['--use-emulation=maybe'], { KUBEVM_LAUNCHER_IMAGE: 'x' }, '--use-emulation="maybe" is not accepted; accepted: true, false'],
    [[], { KUBEVM_LAUNCHER_IMAGE: 'x', KUBEVM_LAUNCHER_PULL_POLICY: 'Sometimes' }, 'KUBEVM_LAUNCHER_PULL_POLICY="Sometimes" is not accepted; accepted: IfNotPresent, Always, Never'],
    [[], { KUBEVM_LAUNCHER_IMAGE: 'x', KUBEVM_WORKERS: '0' }, 'KUBEVM_WORKERS="0" is not accepted; accepted: a whole number from 1 to 1000'],
    [[], { KUBEVM_LAUNCHER_IMAGE: 'x', KUBEVM_HEALTH_PORT: '80a' }, 'KUBEVM_HEALTH_PORT="80a" is not accepted; accepted: a whole number from 0 to 65535'],
    [[], { KUBEVM_LAUNCHER_IMAGE: 'x', KUBEVM_LAUNCHER_MEMORY_OVERHEAD: '80MB' }, 'KUBEVM_LAUNCHER_MEMORY_OVERHEAD="80MB" is not accepted; accepted: a Kubernetes quantity'],
    [['--namespace=kv'], { KUBEVM_LAUNCHER_IMAGE: 'x' }, 'unknown flag --namespace; accepted: --copier,'],
  ])('%j %j is refused naming the setting and what is accepted', (argv, env, message) => {
    let thrown: unknown;
    try {
      configFrom(argv, env);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as Error).message).toContain(message);
  });
});
