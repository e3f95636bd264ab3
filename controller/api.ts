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
  VirtualMachineInstanceSpec,
  VirtualMachineInstanceStatus,
  VirtualMachineInstanceCondition as VMICondition,
  VirtualMachineInstancePhase,
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
} from '../runtime/api/index.js';

import type * as api from '../runtime/api/index.js';
import type { VirtualMachineInstancePhase, VirtualMachinePreferenceSpec } from '../runtime/api/index.js';
import type { KubeObject } from '../runtime/kube.js';

// The runtime's KubeObject types metadata timestamps as strings, the API schemas as nullable
// strings (Go serialises an unset time as null); the intersection is what both accept.
export type VirtualMachineInstance = api.VirtualMachineInstance & KubeObject;
export type VirtualMachine = api.VirtualMachine & KubeObject;
export type VirtualMachineInstancetype = api.VirtualMachineInstancetype & KubeObject;
export type VirtualMachineClusterInstancetype = api.VirtualMachineClusterInstancetype & KubeObject;
export type VirtualMachinePreference = api.VirtualMachinePreference & KubeObject;
export type VirtualMachineClusterPreference = api.VirtualMachineClusterPreference & KubeObject;
export type KubeVirtCR = api.KubeVirt & KubeObject;

/** A VMI phase; '' before any controller has looked at the VMI (KubeVirt's "unprocessed"). */
export type VMIPhase = VirtualMachineInstancePhase | '';

export type PreferredCPUTopology = NonNullable<NonNullable<VirtualMachinePreferenceSpec['cpu']>['preferredCPUTopology']>;
