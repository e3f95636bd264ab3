// The user's cluster, context and namespace, chosen as kubectl chooses them: --kubeconfig, else
// KUBECONFIG (a list of files, merged, the first file winning), else ~/.kube/config, else the
// pod's service account; --context, else the current context; -n, else the context's namespace,
// else "default".
import { KubeConfig, KubeClient } from '../runtime/kube.js';
import { UserError } from './errors.js';

/** The flags every command takes (kubectl's names). */
export interface ConnectionFlags {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
}

export interface Connection {
  client: KubeClient;
  kubeConfig: KubeConfig;
  namespace: string;
  /** The API server's URL, for messages. */
  server: string;
}

export function loadUserKubeConfig(flags: ConnectionFlags): KubeConfig {
  const kubeConfig = new KubeConfig();
  try {
    if (flags.kubeconfig) kubeConfig.loadFromFile(flags.kubeconfig);
    else kubeConfig.loadFromDefault();
  } catch (err) {
    const what = flags.kubeconfig ?? process.env['KUBECONFIG'] ?? '~/.kube/config';
    throw new UserError(`cannot read the kubeconfig ${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (flags.context) {
    if (!kubeConfig.getContextObject(flags.context)) {
      const known = kubeConfig.getContexts().map((c) => c.name);
      throw new UserError(`context "${flags.context}" does not exist in the kubeconfig (contexts: ${known.join(', ') || 'none'})`);
    }
    kubeConfig.setCurrentContext(flags.context);
  }
  if (!kubeConfig.getCurrentCluster()) {
    throw new UserError('no cluster configured: pass --kubeconfig, set KUBECONFIG, or write ~/.kube/config (kubectl config view shows what kubectl uses)');
  }
  return kubeConfig;
}

/** The namespace kubectl would use: -n, else the context's, else "default". */
export function namespaceOf(kubeConfig: KubeConfig, flags: ConnectionFlags): string {
  if (flags.namespace) return flags.namespace;
  const context = kubeConfig.getContextObject(kubeConfig.getCurrentContext());
  return context?.namespace || 'default';
}

export function connect(flags: ConnectionFlags): Connection {
  const kubeConfig = loadUserKubeConfig(flags);
  return {
    client: new KubeClient(kubeConfig),
    kubeConfig,
    namespace: namespaceOf(kubeConfig, flags),
    server: kubeConfig.getCurrentCluster()?.server ?? '',
  };
}
