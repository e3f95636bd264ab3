// Deleting a test namespace that holds kubevm objects after the test's own controller has stopped:
// VMs and VMIs carry finalizers that only a running controller removes (controller/README.md), so
// the namespace would stay Terminating for good. Drop them first.
import type { KubeClient, KubeObject, ResourceDescriptor } from '../../runtime/kube.js';
import { isNotFound } from '../../runtime/kube.js';
import { deleteNamespace } from './runtime-support.js';

const kubevmKinds: ResourceDescriptor[] = [
  { group: 'kubevirt.io', version: 'v1', resource: 'virtualmachines', kind: 'VirtualMachine', namespaced: true },
  { group: 'kubevirt.io', version: 'v1', resource: 'virtualmachineinstances', kind: 'VirtualMachineInstance', namespaced: true },
];

export async function deleteNamespaceWithoutController(client: KubeClient, namespace: string): Promise<void> {
  for (const descriptor of kubevmKinds) {
    const objects = client.resource<KubeObject>(descriptor);
    // A suite that installs only some of kubevm's CRDs: a kind not served has nothing to clean.
    const listed = await objects.list({ namespace }).catch((err: unknown) => {
      if (isNotFound(err)) return { items: [] as KubeObject[] };
      throw err;
    });
    for (const object of listed.items) {
      if (!object.metadata?.finalizers?.length) continue;
      await objects.patch(object.metadata.name ?? '', namespace, { metadata: { finalizers: null } }).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
    }
  }
  await deleteNamespace(client, namespace);
}
