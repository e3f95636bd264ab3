// The e2e suites run against kubevm as installed on the local cluster (make images &&
// scripts/install-kubevm.sh); they fail, never skip, without it.
import type { KubeClient, KubeObject } from '../../runtime/kube.js';
import { coreResources } from '../../runtime/kube.js';

export async function requireKubevmController(client: KubeClient): Promise<void> {
  const controllers = await client.resource<KubeObject & { status?: { phase?: string } }>(coreResources.pods).list({ namespace: 'kubevirt', labelSelector: 'app.kubernetes.io/component=controller' });
  if (!controllers.items.some((pod) => pod.status?.phase === 'Running')) {
    throw new Error('no running kubevm controller in namespace kubevirt: install kubevm first (make images && scripts/install-kubevm.sh)');
  }
}
