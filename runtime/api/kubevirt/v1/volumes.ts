// Volumes (where a disk's data comes from) and networks (what an interface connects to).
import { z } from 'zod';
import { LocalObjectReference, PersistentVolumeClaimVolumeSource, PullPolicy } from '../../core.js';
import { Quantity } from '../../meta.js';
import { dnsLabel, exactlyOneOf, imagePath } from './domain.js';

export const ContainerDiskSource = z
  .strictObject({
    image: z.string().min(1).describe('The container image that holds the disk image (a qcow2 or raw file under /disk).'),
    imagePullSecret: z.string().optional().describe('Name of the pull secret for the image.'),
    imagePullPolicy: PullPolicy.optional(),
    path: imagePath('Absolute path of the disk image inside the container image, e.g. /disk/fedora.qcow2; the single file under /disk when unset.').optional(),
  })
  .describe('An ephemeral disk from a container image: writes go to a temporary overlay and are lost when the VM stops.');
export type ContainerDiskSource = z.infer<typeof ContainerDiskSource>;

export const CloudInitNoCloudSource = z
  .strictObject({
    userData: z.string().optional().describe('cloud-init user-data, inline.'),
    userDataBase64: z.string().optional().describe('cloud-init user-data, base64-encoded.'),
    secretRef: LocalObjectReference.optional().describe('A Secret holding the user-data under the key userdata (or userData).'),
    networkData: z.string().optional().describe('cloud-init network-config, inline.'),
    networkDataBase64: z.string().optional().describe('cloud-init network-config, base64-encoded.'),
    networkDataSecretRef: LocalObjectReference.optional().describe('A Secret holding the network-config under the key networkdata (or networkData).'),
  })
  .describe('A cloud-init NoCloud data source (a small disk labelled cidata).');
export type CloudInitNoCloudSource = z.infer<typeof CloudInitNoCloudSource>;

export const EmptyDiskSource = z
  .strictObject({
    capacity: Quantity.describe('The size of the blank disk, e.g. 2Gi.'),
  })
  .describe('A blank, temporary disk created when the VM starts and removed when it stops.');
export type EmptyDiskSource = z.infer<typeof EmptyDiskSource>;

export const VolumePersistentVolumeClaimSource = PersistentVolumeClaimVolumeSource.extend({
  hotpluggable: z.boolean().optional().describe('The volume is hot-plugged into a running VM.'),
}).describe('A PersistentVolumeClaim whose filesystem image (disk.img) or block device is the disk.');

export const EphemeralVolumeSource = z
  .strictObject({
    persistentVolumeClaim: PersistentVolumeClaimVolumeSource.optional().describe('The read-only base of the disk.'),
  })
  .describe('A PersistentVolumeClaim used as a read-only base with a temporary copy-on-write overlay.');

export const ConfigMapVolumeSource = z
  .strictObject({
    name: z.string().optional().describe('Name of the ConfigMap in the same namespace.'),
    optional: z.boolean().optional().describe('Start the VM even if the ConfigMap does not exist.'),
    volumeLabel: z.string().optional().describe('The filesystem label of the disk the guest sees.'),
  })
  .describe('A ConfigMap presented to the guest as a disk (an ISO image of its keys).');

export const SecretVolumeSource = z
  .strictObject({
    secretName: z.string().optional().describe('Name of the Secret in the same namespace.'),
    optional: z.boolean().optional().describe('Start the VM even if the Secret does not exist.'),
    volumeLabel: z.string().optional().describe('The filesystem label of the disk the guest sees.'),
  })
  .describe('A Secret presented to the guest as a disk (an ISO image of its keys).');

export const VOLUME_SOURCES = ['containerDisk', 'cloudInitNoCloud', 'emptyDisk', 'persistentVolumeClaim', 'ephemeral', 'configMap', 'secret'] as const;
export type VolumeSourceName = (typeof VOLUME_SOURCES)[number];

export const Volume = z
  .strictObject({
    name: dnsLabel('The volume name (a DNS label); a disk of the same name attaches it.'),
    containerDisk: ContainerDiskSource.optional(),
    cloudInitNoCloud: CloudInitNoCloudSource.optional(),
    emptyDisk: EmptyDiskSource.optional(),
    persistentVolumeClaim: VolumePersistentVolumeClaimSource.optional(),
    ephemeral: EphemeralVolumeSource.optional(),
    configMap: ConfigMapVolumeSource.optional(),
    secret: SecretVolumeSource.optional(),
  })
  .superRefine(exactlyOneOf(VOLUME_SOURCES))
  .describe('A named source of disk data; exactly one source is set.');
export type Volume = z.infer<typeof Volume>;

export const PodNetwork = z
  .strictObject({
    vmNetworkCIDR: z.string().optional().describe('The IPv4 CIDR of the masquerade network inside the VM; 10.0.2.0/24 when unset.'),
    vmIPv6NetworkCIDR: z.string().optional().describe('The IPv6 CIDR of the masquerade network inside the VM; fd10:0:2::/120 when unset.'),
  })
  .describe('The pod\'s own network (the default Kubernetes network).');
export type PodNetwork = z.infer<typeof PodNetwork>;

export const NETWORK_SOURCES = ['pod'] as const;

export const Network = z
  .strictObject({
    name: dnsLabel('The network name (a DNS label); an interface of the same name connects to it.'),
    pod: PodNetwork.optional(),
  })
  .superRefine(exactlyOneOf(NETWORK_SOURCES))
  .describe('A network the VM connects to; pod is the only source kubevm supports.');
export type Network = z.infer<typeof Network>;
