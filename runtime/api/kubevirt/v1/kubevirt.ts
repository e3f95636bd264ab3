// KubeVirt (kubevirt.io/v1): the installation and its cluster-wide configuration. kubevm's
// operator reconciles this one object into its deployments.
import { z } from 'zod';
import { Affinity, LabelSelector, LocalObjectReference, PullPolicy, Toleration } from '../../core.js';
import { conditionSchema, typeMeta, type ResourceNames } from '../../meta.js';
import { KUBEVIRT_API_VERSION, KUBEVIRT_GROUP, KUBEVIRT_VERSION, EvictionStrategy, MigrationConfiguration } from './virtualmachineinstance.js';
import { GoDuration } from '../../../duration.js';

export const KubeVirtNames = {
  group: KUBEVIRT_GROUP,
  version: KUBEVIRT_VERSION,
  kind: 'KubeVirt',
  plural: 'kubevirts',
  singular: 'kubevirt',
  shortNames: ['kv', 'kvs'],
  categories: ['all'],
  scope: 'Namespaced',
} as const satisfies ResourceNames;

export const NodePlacement = z
  .strictObject({
    nodeSelector: z.record(z.string(), z.string()).optional().describe('Node labels the component\'s pods require.'),
    affinity: Affinity.optional(),
    tolerations: z.array(Toleration).optional().describe('Taints the component\'s pods tolerate.'),
  })
  .describe('Where the component\'s pods may run.');

export const ComponentConfig = z
  .strictObject({
    nodePlacement: NodePlacement.optional(),
    replicas: z.int().min(0).max(255).optional().describe('Replicas of each control-plane deployment (infra only).'),
  })
  .describe('Placement of a group of kubevm components.');

export const DeveloperConfiguration = z
  .strictObject({
    featureGates: z
      .array(z.string())
      .optional()
      .describe(
        'Feature gates to enable. kubevm acts on ImageVolume: launcher pods mount containerDisk and kernelBoot images as Kubernetes image volumes instead of copying them (the cluster needs the ImageVolume feature and containerd >= 2.1 or CRI-O). Other gates are accepted and have no effect.',
      ),
    disabledFeatureGates: z.array(z.string()).optional().describe('Feature gates to disable.'),
    useEmulation: z
      .boolean()
      .optional()
      .describe('Run guests with software emulation (QEMU TCG) when /dev/kvm is missing, instead of refusing to start them.'),
    memoryOvercommit: z.int().min(10).optional().describe('Guest memory as a percentage of the pod memory request; 100 when unset. A VM stating both guest memory and a request above this ratio (or above 100 % when it is lower) is refused.'),
    nodeSelectors: z.record(z.string(), z.string()).optional().describe('Node labels every VM\'s pod requires.'),
  })
  .describe('Settings for development and feature gates.');


export const NetworkConfiguration = z
  .strictObject({
    defaultNetworkInterface: z.string().optional().describe('The binding used when an interface on the pod network names none: bridge or masquerade.'),
    permitBridgeInterfaceOnPodNetwork: z.boolean().optional().describe('Allow the bridge binding on the pod network; true when unset.'),
  })
  .describe('Cluster-wide network settings.');

export const PermittedHostDevices = z
  .strictObject({
    pciHostDevices: z
      .array(
        z.strictObject({
          pciVendorSelector: z.string().min(1).describe('vendor:device ID of the PCI device, e.g. 10de:1eb8.'),
          resourceName: z.string().min(1).describe('The resource name VMs request it by (hostDevices[].deviceName, gpus[].deviceName).'),
          externalResourceProvider: z.boolean().optional().describe('A device plugin other than kubevm\'s advertises it.'),
        }),
      )
      .optional()
      .describe('PCI devices VMs may have passed through.'),
    mediatedDevices: z
      .array(
        z.strictObject({
          mdevNameSelector: z.string().min(1).describe('The mediated device type name, e.g. GRID T4-1Q.'),
          resourceName: z.string().min(1).describe('The resource name VMs request it by.'),
          externalResourceProvider: z.boolean().optional().describe('A device plugin other than kubevm\'s advertises it.'),
        }),
      )
      .optional()
      .describe('Mediated devices (vGPUs) VMs may have.'),
  })
  .describe('The host devices VMs may use (hostDevices and gpus name them by resourceName); none when unset.');
export type PermittedHostDevices = z.infer<typeof PermittedHostDevices>;

export const KSMConfiguration = z
  .strictObject({
    nodeLabelSelector: LabelSelector.optional().describe('The nodes whose node handler turns KSM on (an empty selector: every node); no node when unset.'),
  })
  .describe('Kernel samepage merging: off everywhere unless this selects nodes. Where kubevm turned it on and the node is no longer selected, kubevm turns it off.');
export type KSMConfiguration = z.infer<typeof KSMConfiguration>;

export const KubeVirtConfiguration = z
  .strictObject({
    developerConfiguration: DeveloperConfiguration.optional(),
    ksmConfiguration: KSMConfiguration.optional(),
    permittedHostDevices: PermittedHostDevices.optional(),
    imagePullPolicy: PullPolicy.optional().describe('Pull policy of the images of VM pods (launchers, container disks).'),
    cpuModel: z.string().optional().describe('The CPU model of VMs that name none.'),
    machineType: z.string().optional().describe('The machine type of VMs that name none.'),
    evictionStrategy: EvictionStrategy.optional().describe('The eviction strategy of VMs that name none.'),
    migrations: MigrationConfiguration.optional(),
    network: NetworkConfiguration.optional(),
  })
  .describe('Cluster-wide configuration of VMs.');
export type KubeVirtConfiguration = z.infer<typeof KubeVirtConfiguration>;

export const KubeVirtSpec = z
  .strictObject({
    imageTag: z.string().optional().describe('The tag of the kubevm images to deploy; the operator\'s own version when unset.'),
    imageRegistry: z.string().optional().describe('The registry of the kubevm images; the operator\'s own when unset.'),
    imagePullPolicy: PullPolicy.optional().describe('Pull policy of the kubevm component images.'),
    imagePullSecrets: z.array(LocalObjectReference).optional().describe('Pull secrets for the kubevm component images.'),
    monitorNamespace: z.string().optional().describe('Namespace of the Prometheus that scrapes kubevm.'),
    monitorAccount: z.string().optional().describe('Service account of the Prometheus that scrapes kubevm.'),
    workloadUpdateStrategy: z
      .strictObject({
        workloadUpdateMethods: z.array(z.enum(['LiveMigrate', 'Evict'])).optional().describe('How running VMs move to a new launcher after an update: LiveMigrate and/or Evict; none when unset.'),
        batchEvictionSize: z.int().min(1).optional().describe('VMs evicted per batch.'),
        batchEvictionInterval: GoDuration.optional().describe('Time between eviction batches, e.g. 1m.'),
      })
      .optional()
      .describe('How running VMs are updated after kubevm itself is updated.'),
    uninstallStrategy: z
      .enum(['RemoveWorkloads', 'BlockUninstallIfWorkloadsExist'])
      .optional()
      .describe('Whether deleting the KubeVirt object removes VMs (RemoveWorkloads) or is refused while any exist (BlockUninstallIfWorkloadsExist).'),
    configuration: KubeVirtConfiguration.optional(),
    infra: ComponentConfig.optional().describe('Placement of the control-plane components (API server, controller).'),
    workloads: ComponentConfig.optional().describe('Placement of the node components and VMs.'),
  })
  .describe('The desired kubevm installation.');
export type KubeVirtSpec = z.infer<typeof KubeVirtSpec>;

export const KubeVirtPhase = z
  .enum(['Deploying', 'Deployed', 'Deleting', 'Deleted'])
  .describe('Where the installation is: Deploying, Deployed, Deleting or Deleted.');
export type KubeVirtPhase = z.infer<typeof KubeVirtPhase>;

export const KubeVirtCondition = conditionSchema(
  'The condition type: Available, Progressing, Degraded, Created or Synchronized.',
  'An observation about the installation.',
);
export type KubeVirtCondition = z.infer<typeof KubeVirtCondition>;

export const KubeVirtStatus = z
  .strictObject({
    phase: KubeVirtPhase.optional(),
    conditions: z.array(KubeVirtCondition).optional().describe('The conditions of the installation.'),
    operatorVersion: z.string().optional().describe('The version of the operator.'),
    targetKubeVirtVersion: z.string().optional().describe('The version being deployed.'),
    targetKubeVirtRegistry: z.string().optional().describe('The registry being deployed from.'),
    targetDeploymentID: z.string().optional().describe('The identifier of the configuration being deployed.'),
    observedKubeVirtVersion: z.string().optional().describe('The version deployed.'),
    observedKubeVirtRegistry: z.string().optional().describe('The registry deployed from.'),
    observedDeploymentID: z.string().optional().describe('The identifier of the configuration deployed.'),
    observedGeneration: z.int().optional().describe('The KubeVirt generation last acted on.'),
    defaultArchitecture: z.string().optional().describe('The default guest architecture of the cluster.'),
    outdatedVirtualMachineInstanceWorkloads: z.int().optional().describe('VMs still running with an outdated launcher.'),
    generations: z
      .array(
        z
          .strictObject({
            group: z.string().describe('The API group of the deployed object.'),
            resource: z.string().describe('The resource of the deployed object.'),
            namespace: z.string().optional().describe('The namespace of the deployed object.'),
            name: z.string().describe('The name of the deployed object.'),
            lastGeneration: z.int().describe('The generation of the object last applied.'),
            hash: z.string().optional().describe('The hash of the object last applied.'),
          })
          .describe('The last applied generation of a deployed object.'),
      )
      .optional()
      .describe('The objects the operator deployed and their last applied generations.'),
  })
  .describe('The observed state of the installation.');
export type KubeVirtStatus = z.infer<typeof KubeVirtStatus>;

export const KubeVirtSchema = z
  .strictObject({
    ...typeMeta(KUBEVIRT_API_VERSION, 'KubeVirt'),
    spec: KubeVirtSpec,
    status: KubeVirtStatus.optional(),
  })
  .describe('The kubevm installation: which version runs, and the cluster-wide VM configuration.');
export type KubeVirt = z.infer<typeof KubeVirtSchema>;
