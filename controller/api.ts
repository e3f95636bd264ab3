// The API types the controller reads and writes, in one place so the rest of controller/ imports
// them from here. They mirror KubeVirt's kubevirt.io/v1 field names; once runtime/api exports the
// zod-inferred kinds, this file re-exports those instead of describing them.
import type { V1Affinity, V1Toleration } from '@kubernetes/client-node';

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string | null;
  deletionTimestamp?: string | null;
  deletionGracePeriodSeconds?: number | null;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export type Quantity = string | number;

export interface CPU {
  cores?: number;
  sockets?: number;
  threads?: number;
  maxSockets?: number;
  model?: string;
  dedicatedCpuPlacement?: boolean;
  isolateEmulatorThread?: boolean;
  realtime?: { mask?: string };
  features?: { name: string; policy?: string }[];
  numa?: unknown;
}

export interface DomainSpec {
  resources?: { requests?: Record<string, Quantity>; limits?: Record<string, Quantity>; overcommitGuestOverhead?: boolean };
  cpu?: CPU;
  memory?: { guest?: Quantity; maxGuest?: Quantity; hugepages?: { pageSize?: string } };
  machine?: { type?: string };
  firmware?: {
    uuid?: string;
    serial?: string;
    bootloader?: { bios?: Record<string, unknown>; efi?: { secureBoot?: boolean; persistent?: boolean } };
    kernelBoot?: unknown;
  };
  clock?: unknown;
  features?: Record<string, unknown>;
  devices: {
    disks?: Disk[];
    interfaces?: Interface[];
    rng?: Record<string, never>;
    autoattachSerialConsole?: boolean;
    [key: string]: unknown;
  };
  ioThreadsPolicy?: string;
}

export interface Disk {
  name: string;
  disk?: { bus?: string; readonly?: boolean; pciAddress?: string };
  cdrom?: { bus?: string; readonly?: boolean; tray?: string };
  lun?: { bus?: string; readonly?: boolean };
  bootOrder?: number;
  serial?: string;
  cache?: string;
  shareable?: boolean;
  errorPolicy?: string;
}

export interface Interface {
  name: string;
  model?: string;
  masquerade?: Record<string, never>;
  bridge?: Record<string, never>;
  passt?: Record<string, never>;
  slirp?: Record<string, never>;
  [key: string]: unknown;
}

export interface Volume {
  name: string;
  containerDisk?: { image: string; imagePullPolicy?: 'Always' | 'Never' | 'IfNotPresent'; imagePullSecret?: string; path?: string };
  cloudInitNoCloud?: {
    userData?: string;
    userDataBase64?: string;
    secretRef?: { name?: string };
    networkData?: string;
    networkDataBase64?: string;
    networkDataSecretRef?: { name?: string };
  };
  emptyDisk?: { capacity: Quantity };
  persistentVolumeClaim?: { claimName: string; readOnly?: boolean; hotpluggable?: boolean };
  ephemeral?: { persistentVolumeClaim?: { claimName: string; readOnly?: boolean } };
  configMap?: { name?: string; optional?: boolean; volumeLabel?: string };
  secret?: { secretName?: string; optional?: boolean; volumeLabel?: string };
}

export interface VirtualMachineInstanceSpec {
  domain: DomainSpec;
  volumes?: Volume[];
  networks?: { name: string; pod?: Record<string, unknown> }[];
  nodeSelector?: Record<string, string>;
  affinity?: V1Affinity;
  tolerations?: V1Toleration[];
  schedulerName?: string;
  priorityClassName?: string;
  terminationGracePeriodSeconds?: number;
  evictionStrategy?: string;
  hostname?: string;
  subdomain?: string;
  startStrategy?: 'Paused';
}

export interface VMICondition {
  type: string;
  status: ConditionStatus;
  reason?: string;
  message?: string;
  lastProbeTime?: string | null;
  lastTransitionTime?: string | null;
}

export type VMIPhase = '' | 'Pending' | 'Scheduling' | 'Scheduled' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown' | 'WaitingForSync';

export interface VirtualMachineInstanceStatus {
  phase?: VMIPhase;
  reason?: string;
  conditions?: VMICondition[];
  nodeName?: string;
  activePods?: Record<string, string>;
  phaseTransitionTimestamps?: { phase: VMIPhase; phaseTransitionTimestamp: string }[];
  launcherContainerImageVersion?: string;
  migrationState?: { completed?: boolean; failed?: boolean; startTimestamp?: string | null; endTimestamp?: string | null };
  interfaces?: unknown[];
  guestOSInfo?: unknown;
  qosClass?: string;
}

export interface VirtualMachineInstance {
  apiVersion: 'kubevirt.io/v1';
  kind: 'VirtualMachineInstance';
  metadata?: ObjectMeta;
  spec: VirtualMachineInstanceSpec;
  status?: VirtualMachineInstanceStatus;
}

export type RunStrategy = 'Always' | 'RerunOnFailure' | 'Manual' | 'Halted' | 'Once';

export interface InstancetypeMatcher {
  name?: string;
  kind?: string;
  revisionName?: string;
  inferFromVolume?: string;
}

export interface StateChangeRequest {
  action: 'Start' | 'Stop';
  data?: Record<string, string>;
  uid?: string;
}

export interface VirtualMachineSpec {
  running?: boolean;
  runStrategy?: RunStrategy;
  instancetype?: InstancetypeMatcher;
  preference?: InstancetypeMatcher;
  template: { metadata?: ObjectMeta; spec: VirtualMachineInstanceSpec };
}

export type PrintableStatus =
  | 'Stopped'
  | 'Provisioning'
  | 'Starting'
  | 'Running'
  | 'Paused'
  | 'Stopping'
  | 'Terminating'
  | 'CrashLoopBackOff'
  | 'Migrating'
  | 'Unknown'
  | 'ErrorUnschedulable'
  | 'ErrImagePull'
  | 'ImagePullBackOff'
  | 'ErrorPvcNotFound'
  | 'DataVolumeError'
  | 'WaitingForVolumeBinding';

export interface VMCondition extends VMICondition {}

export interface InstancetypeStatusRef {
  name?: string;
  kind?: string;
  controllerRevisionRef?: { name?: string };
}

export interface VirtualMachineStatus {
  printableStatus?: PrintableStatus;
  ready?: boolean;
  created?: boolean;
  runStrategy?: RunStrategy;
  conditions?: VMCondition[];
  observedGeneration?: number;
  desiredGeneration?: number;
  stateChangeRequests?: StateChangeRequest[];
  startFailure?: { consecutiveFailCount?: number; lastFailedVMIUID?: string; retryAfterTimestamp?: string | null };
  instancetypeRef?: InstancetypeStatusRef;
  preferenceRef?: InstancetypeStatusRef;
}

export interface VirtualMachine {
  apiVersion: 'kubevirt.io/v1';
  kind: 'VirtualMachine';
  metadata?: ObjectMeta;
  spec: VirtualMachineSpec;
  status?: VirtualMachineStatus;
}

/** instancetype.kubevirt.io/v1beta1 VirtualMachine(Cluster)InstancetypeSpec, the fields kubevm applies. */
export interface InstancetypeSpec {
  cpu: {
    guest: number;
    model?: string;
    dedicatedCPUPlacement?: boolean;
    isolateEmulatorThread?: boolean;
    realtime?: { mask?: string };
    maxSockets?: number;
  };
  memory: { guest: Quantity; hugepages?: { pageSize?: string }; overcommitPercent?: number; maxGuest?: Quantity };
  ioThreadsPolicy?: string;
  nodeSelector?: Record<string, string>;
  schedulerName?: string;
  annotations?: Record<string, string>;
}

export type PreferredCPUTopology = 'preferSockets' | 'preferCores' | 'preferThreads' | 'preferSpread' | 'preferAny';

/** instancetype.kubevirt.io/v1beta1 VirtualMachine(Cluster)PreferenceSpec, the fields kubevm applies. */
export interface PreferenceSpec {
  cpu?: { preferredCPUTopology?: PreferredCPUTopology };
  devices?: {
    preferredDiskBus?: string;
    preferredCdromBus?: string;
    preferredInterfaceModel?: string;
    preferredRng?: Record<string, never>;
    preferredAutoattachSerialConsole?: boolean;
  };
  firmware?: { preferredUseEfi?: boolean; preferredUseBios?: boolean; preferredUseSecureBoot?: boolean };
  machine?: { preferredMachineType?: string };
  preferredTerminationGracePeriodSeconds?: number;
  annotations?: Record<string, string>;
}

export interface InstancetypeObject {
  apiVersion: string;
  kind: 'VirtualMachineInstancetype' | 'VirtualMachineClusterInstancetype';
  metadata?: ObjectMeta;
  spec: InstancetypeSpec;
}

export interface PreferenceObject {
  apiVersion: string;
  kind: 'VirtualMachinePreference' | 'VirtualMachineClusterPreference';
  metadata?: ObjectMeta;
  spec: PreferenceSpec;
}

/** The KubeVirt CR, only what the controller reads. */
export interface KubeVirtCR {
  apiVersion: 'kubevirt.io/v1';
  kind: 'KubeVirt';
  metadata?: ObjectMeta;
  spec?: { configuration?: { developerConfiguration?: { useEmulation?: boolean; featureGates?: string[] } } };
}
