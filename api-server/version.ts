// What {version}/version and {version}/healthz answer, in KubeVirt's shapes (virtctl version
// prints the first; monitoring reads the second).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HttpMethod } from '@kubernetes/client-node';
import type { KubeClient } from '../runtime/kube.js';

/** kubevm's version from the nearest package.json (the repository's, or the image's /opt/kubevm). */
export function kubevmVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) return (JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version ?? '0.0.0';
    dir = dirname(dir);
  }
  return '0.0.0';
}

const goArch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', s390x: 's390x', ppc64: 'ppc64le' };

/** KubeVirt's version.Info: gitVersion is kubevm's version; the compiler is node's. */
export function versionInfo(version = kubevmVersion()): object {
  return {
    gitVersion: `v${version}`,
    gitCommit: process.env['KUBEVM_GIT_COMMIT'] ?? '',
    gitTreeState: '',
    buildDate: process.env['KUBEVM_BUILD_DATE'] ?? '1970-01-01T00:00:00Z',
    goVersion: '',
    compiler: `node ${process.version}`,
    platform: `${process.platform}/${goArch[process.arch] ?? process.arch}`,
  };
}

/**
 * KubeVirt's health answer: the API server's version once reached (cached; cleared on failure).
 */
export function apiServerHealth(client: KubeClient): () => Promise<{ healthy: boolean; body: object }> {
  let cached: unknown;
  return async () => {
    try {
      cached ??= await client.request(HttpMethod.GET, '/version');
      return { healthy: true, body: { apiserver: { connectivity: 'ok', version: cached } } };
    } catch (err) {
      cached = undefined;
      return { healthy: false, body: { apiserver: { connectivity: 'failed', error: err instanceof Error ? err.message : String(err) } } };
    }
  };
}
