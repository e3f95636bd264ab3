// The cluster the validating webhook consults, read through the API server at admission time
// (no informer: reviews are rare next to the reads an informer would keep up to date).
import type { KubeClient, KubeObject } from '../../runtime/kube.js';
import {
  KubeVirtNames,
  VirtualMachineInstanceMigrationNames,
  VirtualMachineInstanceNames,
} from '../../runtime/api/index.js';
import type { KubeVirt, PermittedHostDevices, VirtualMachineInstance, VirtualMachineInstanceMigration } from '../../runtime/api/index.js';
import { descriptorOf, instancetypeSpecFinder } from '../descriptors.js';
import type { AdmissionContext } from './admit.js';

/** kubevm's own service accounts (namespace kubevirt) may change what users may not. */
export function kubevmComponent(namespace: string): (username: string) => boolean {
  return (username) => username.startsWith(`system:serviceaccount:${namespace}:kubevm-`);
}

export function clusterAdmissionContext(client: KubeClient, componentNamespace: string): AdmissionContext & { refresh(): Promise<void> } {
  const vmis = client.resource<VirtualMachineInstance & KubeObject>(descriptorOf(VirtualMachineInstanceNames));
  const kubevirts = client.resource<KubeVirt & KubeObject>(descriptorOf(KubeVirtNames));
  const migrations = client.resource<Omit<VirtualMachineInstanceMigration, 'metadata'> & KubeObject>(descriptorOf(VirtualMachineInstanceMigrationNames));
  let permitted: PermittedHostDevices | undefined;
  return {
    findVmi: (namespace, name) => vmis.find(name, namespace),
    findInstancetypeSpec: instancetypeSpecFinder(client),
    permittedHostDevices: () => permitted,
    async activeMigrationFor(namespace, vmiName) {
      const items = (await migrations.list({ namespace })).items;
      const active = items.find((m) => m.spec.vmiName === vmiName && m.status?.phase !== 'Succeeded' && m.status?.phase !== 'Failed');
      return active ? (active.metadata?.uid ?? active.metadata?.name) : undefined;
    },
    async kubevirtCount() {
      return (await kubevirts.list()).items.length;
    },
    isKubevmComponent: kubevmComponent(componentNamespace),
    /** Re-read the KubeVirt CR's permitted host devices (main calls it periodically). */
    async refresh() {
      const items = (await kubevirts.list()).items;
      permitted = items[0]?.spec?.configuration?.permittedHostDevices;
    },
  };
}
