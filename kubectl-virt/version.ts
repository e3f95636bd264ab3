// `version`: the plugin's own version and the api-server's, in virtctl's version.Info form so
// scripts that read `virtctl version` read this too.
import { HttpMethod } from '@kubernetes/client-node';
import { kubevmVersion, versionInfo } from '../api-server/version.js';
import type { Connection } from './connection.js';
import { attempt } from './errors.js';

// Replaced by the bundler with package.json's version (the installed file has no package.json
// beside it); from the sources it is read from the repository.
declare const KUBECTL_VIRT_VERSION: string | undefined;

export function clientVersion(): string {
  return typeof KUBECTL_VIRT_VERSION === 'string' ? KUBECTL_VIRT_VERSION : kubevmVersion();
}

export function clientVersionInfo(): Record<string, unknown> {
  return versionInfo(clientVersion()) as Record<string, unknown>;
}

const fieldOrder = ['gitVersion', 'gitCommit', 'gitTreeState', 'buildDate', 'goVersion', 'compiler', 'platform'];

/** version.Info{GitVersion:"v1.0.0", ...} as Go's %#v-like form virtctl prints. */
export function formatVersionInfo(info: Record<string, unknown>): string {
  const keys = [...fieldOrder.filter((k) => k in info), ...Object.keys(info).filter((k) => !fieldOrder.includes(k))];
  const fields = keys.map((k) => `${k.charAt(0).toUpperCase()}${k.slice(1)}:${JSON.stringify(typeof info[k] === 'string' ? info[k] : JSON.stringify(info[k]))}`);
  return `version.Info{${fields.join(', ')}}`;
}

// The group's name as a literal: importing the API module would evaluate every schema, and
// `version` is the command that has to start fast.
const versionPath = '/apis/subresources.kubevirt.io/v1/version';

/** The api-server's version.Info. */
export async function serverVersionInfo(connection: Connection): Promise<Record<string, unknown>> {
  const what = { verb: 'get', resource: 'version', group: 'subresources.kubevirt.io', server: connection.server };
  return (await attempt(what, () => connection.client.request(HttpMethod.GET, versionPath))) as Record<string, unknown>;
}
