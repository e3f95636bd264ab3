// The cluster the validating webhook consults, read through the API server at admission time
// (no informer: reviews are rare next to the reads an informer would keep up to date).
import type { KubeClient, KubeObject } from '../../runtime/kube.js';
import { coreResources } from '../../runtime/kube.js';
import { VMI_STATUS_FIELD_MANAGER } from '../../runtime/contracts/vmi-status.js';
import { SubjectAccessReviewAuthorizer } from '../authorize.js';
import {
  KubeVirtNames,
  VirtualMachineInstanceMigrationNames,
  VirtualMachineInstanceNames,
} from '../../runtime/api/index.js';
import type { KubeVirt, VirtualMachineInstance, VirtualMachineInstanceMigration } from '../../runtime/api/index.js';
import { descriptorOf, instancetypeSources } from '../descriptors.js';
import type { AdmissionContext } from './admit.js';
import type { VmiLookup } from './launcher-pods.js';
import { LauncherPodFields, claimedVmi, launcherClaim } from './launcher-pods.js';

/** kubevm's own service accounts (namespace kubevirt) may change what users may not. */
export function kubevmComponent(namespace: string): (username: string) => boolean {
  return (username) => username.startsWith(`system:serviceaccount:${namespace}:kubevm-`);
}

export function clusterAdmissionContext(client: KubeClient, componentNamespace: string): AdmissionContext {
  const vmis = client.resource<VirtualMachineInstance & KubeObject>(descriptorOf(VirtualMachineInstanceNames));
  const kubevirts = client.resource<KubeVirt & KubeObject>(descriptorOf(KubeVirtNames));
  const migrations = client.resource<Omit<VirtualMachineInstanceMigration, 'metadata'> & KubeObject>(descriptorOf(VirtualMachineInstanceMigrationNames));
  const pods = client.resource<KubeObject>(coreResources.pods);
  const authorizer = new SubjectAccessReviewAuthorizer(client);
  const instancetypes = instancetypeSources(client);
  const lookup: VmiLookup = {
    findVmi: (namespace, name) => vmis.find(name, namespace),
    listVmis: async (namespace) => (await vmis.list({ namespace })).items,
  };
  return {
    async launcherPodVmi(namespace, podName) {
      const stored = await pods.find(podName, namespace);
      if (stored === undefined) return undefined;
      const pod = LauncherPodFields.parse(stored);
      const claim = launcherClaim(pod);
      if (claim === undefined) return undefined;
      const vmi = await claimedVmi(claim, namespace, lookup);
      // A launcher whose VMI is gone, or that names none, is still guarded: by an empty name, which
      // only a grant for every VMI of the namespace covers. A pod kubevm did not render (no VMI uid
      // in its spec) is guarded by the name it carries.
      return vmi?.metadata?.name ?? (claim.vmiUid === undefined ? claim.vmiNames[0] : undefined) ?? '';
    },
    authorize: (user, attributes) => authorizer.authorize(user, { ...attributes, version: 'v1' }),
    ...lookup,
    evictedPod: (namespace, name) => pods.find(name, namespace),
    async clusterEvictionStrategy() {
      return (await kubevirts.list()).items[0]?.spec?.configuration?.evictionStrategy;
    },
    async markForEvacuation(namespace, vmiName, nodeName, dryRun) {
      // The test keeps the mark off a VMI that has left the node since it was read (a 422, refused: the drain tries again).
      const patch = [
        { op: 'test', path: '/status/nodeName', value: nodeName },
        { op: 'add', path: '/status/evacuationNodeName', value: nodeName },
      ];
      await vmis.patchStatus(vmiName, namespace, patch, 'json', { fieldManager: VMI_STATUS_FIELD_MANAGER['api-server'], dryRun });
    },
    findInstancetypeSpec: (kind, namespace, name) => instancetypes.object(kind, namespace, name),
    async permittedHostDevices() {
      return (await kubevirts.list()).items[0]?.spec?.configuration?.permittedHostDevices;
    },
    async memoryOvercommit() {
      return (await kubevirts.list()).items[0]?.spec?.configuration?.developerConfiguration?.memoryOvercommit;
    },
    async activeMigrationFor(namespace, vmiName) {
      const items = (await migrations.list({ namespace })).items;
      const active = items.find((m) => m.spec.vmiName === vmiName && m.status?.phase !== 'Succeeded' && m.status?.phase !== 'Failed');
      return active ? (active.metadata?.uid ?? active.metadata?.name) : undefined;
    },
    async kubevirtCount() {
      return (await kubevirts.list()).items.length;
    },
    isKubevmComponent: kubevmComponent(componentNamespace),
  };
}
