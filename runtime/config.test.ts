import { describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ConfigError, booleanSetting, flagOf, integerSetting, jsonText, loadConfig, quantitySetting } from './config.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const spec = {
  name: { env: 'KUBEVM_NAME', schema: z.string(), description: 'a name' },
  count: { env: 'KUBEVM_COUNT', schema: integerSetting(1, 10).default(3), description: 'a count' },
  enabled: { env: 'KUBEVM_ENABLED', schema: booleanSetting.optional(), description: 'on or off' },
  size: { env: 'KUBEVM_SIZE', schema: quantitySetting.optional(), description: 'a size' },
  node: { env: 'NODE_NAME', schema: z.string().optional(), description: 'the node' },
};

function refusal(argv: string[], env: NodeJS.ProcessEnv): string {
  try {
    loadConfig(spec, argv, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('accepted');
}

describe('loadConfig', () => {
  test('flags are derived from the variables', () => {
    expect(flagOf('KUBEVM_LAUNCHER_IMAGE')).toBe('--launcher-image');
    expect(flagOf('POD_NAMESPACE')).toBe('--pod-namespace');
  });

  test('reads variables, flags win, defaults fill in, empty is unset', () => {
    expect(loadConfig(spec, [], { KUBEVM_NAME: 'a', KUBEVM_ENABLED: '', NODE_NAME: 'n1' })).toEqual({ name: 'a', count: 3, enabled: undefined, size: undefined, node: 'n1' });
    expect(loadConfig(spec, ['--name=b', '--count', '7', '--enabled=false', '--size=1.5Gi', '--node-name=n2'], { KUBEVM_NAME: 'a', KUBEVM_COUNT: '2' })).toEqual({
      name: 'b',
      count: 7,
      enabled: false,
      size: '1.5Gi',
      node: 'n2',
    });
  });

  test.each([
    [[], {}, '--name (or KUBEVM_NAME) is required: a name'],
    [[], { KUBEVM_NAME: 'a', KUBEVM_COUNT: '11' }, 'KUBEVM_COUNT="11" is not accepted; accepted: a whole number from 1 to 10'],
    [['--count=2.5'], { KUBEVM_NAME: 'a' }, '--count="2.5" is not accepted; accepted: a whole number from 1 to 10'],
    [[], { KUBEVM_NAME: 'a', KUBEVM_ENABLED: 'yes' }, 'KUBEVM_ENABLED="yes" is not accepted; accepted: true, false'],
    [[], { KUBEVM_NAME: 'a', KUBEVM_SIZE: '1GB' }, 'KUBEVM_SIZE="1GB" is not accepted; accepted: a Kubernetes quantity such as 80Mi, 1Gi or 500m'],
    [['--colour=red'], { KUBEVM_NAME: 'a' }, 'unknown flag --colour; accepted: --count, --enabled, --name, --node-name, --size'],
    [['positional'], { KUBEVM_NAME: 'a' }, 'unexpected argument "positional": settings are flags --name=value'],
    [['--count'], { KUBEVM_NAME: 'a' }, '--count needs a value: --count=value'],
  ])('%j %j: %s', (argv, env, message) => {
    expect(refusal(argv, env)).toBe(message);
  });
});

describe('jsonText', () => {
  const selector = { selector: { env: 'KUBEVM_SELECTOR', schema: jsonText(z.strictObject({ matchLabels: z.record(z.string(), z.string()) }), 'accepted: a selector as JSON').optional(), description: 'a selector' } };

  test('parses a JSON setting and checks it with its schema', () => {
    expect(loadConfig(selector, [], { KUBEVM_SELECTOR: '{"matchLabels":{"a":"b"}}' })).toEqual({ selector: { matchLabels: { a: 'b' } } });
    expect(loadConfig(selector, [], {})).toEqual({ selector: undefined });
  });

  test('refuses text that is not JSON, and JSON the schema does not accept', () => {
    expect(() => loadConfig(selector, [], { KUBEVM_SELECTOR: '{matchLabels' })).toThrow(/KUBEVM_SELECTOR="\{matchLabels" is not accepted; accepted: a selector as JSON/);
    expect(() => loadConfig(selector, [], { KUBEVM_SELECTOR: '{"matchLabels":{"a":1}}' })).toThrow(ConfigError);
  });
});

describe('a main with a bad setting', () => {
  test('exits 2 with one line naming the setting and what is accepted, before starting anything', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'controller/main.ts'), '--workers=many'], {
      cwd: repoRoot,
      env: { PATH: process.env['PATH'], KUBEVM_LAUNCHER_IMAGE: 'kubevm/launcher:test' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toBe('controller: --workers="many" is not accepted; accepted: a whole number from 1 to 1000\n');
    expect(result.stdout).toBe('');
  }, 40_000);
});
