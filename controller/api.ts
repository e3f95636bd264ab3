// The API types the controller uses, under the short names its modules speak in. The source of
// truth is runtime/api (zod schemas, inferred types); nothing is redefined here.
export type {
  ObjectMeta,
  OwnerReference,
  Quantity,
  ConditionStatus,
  DomainSpec,
  Disk,
  Interface,
  Volume,
  VirtualMachineInstance,
  VirtualMachineInstanceSpec,
  VirtualMachineInstanceStatus,
  VirtualMachineInstanceCondition as VMICondition,
  VirtualMachineInstancePhase,
  VirtualMachine,
  VirtualMachineSpec,
  VirtualMachineStatus,
  VirtualMachineCondition as VMCondition,
  VirtualMachineStateChangeRequest as StateChangeRequest,
  VirtualMachinePrintableStatus as PrintableStatus,
  RunStrategy,
  InstancetypeMatcher,
  PreferenceMatcher,
  VirtualMachineInstancetypeSpec as InstancetypeSpec,
  VirtualMachinePreferenceSpec as PreferenceSpec,
  VirtualMachineInstancetype,
  VirtualMachineClusterInstancetype,
  VirtualMachinePreference,
  VirtualMachineClusterPreference,
  KubeVirt as KubeVirtCR,
} from '../runtime/api/index.js';

import type { VirtualMachineInstancePhase, VirtualMachinePreferenceSpec } from '../runtime/api/index.js';

/** A VMI phase; '' before any controller has looked at the VMI (KubeVirt's "unprocessed"). */
export type VMIPhase = VirtualMachineInstancePhase | '';

export type PreferredCPUTopology = NonNullable<NonNullable<VirtualMachinePreferenceSpec['cpu']>['preferredCPUTopology']>;
