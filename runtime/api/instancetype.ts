// instancetype.kubevirt.io/v1beta1: instancetypes (CPU and memory sizes, like cloud flavors) and
// preferences (defaults for devices, firmware, features) that a VirtualMachine references.
import { z } from 'zod';
import { Quantity, typeMeta, type ResourceNames } from './meta.js';
import {
  CPUFeature,
  DiskBus,
  DiskCache,
  GPU,
  HostDevice,
  Hugepages,
  InterfaceModel,
  namedList,
  Timer,
} from './kubevirt/v1/domain.js';

export const INSTANCETYPE_GROUP = 'instancetype.kubevirt.io';
export const INSTANCETYPE_VERSION = 'v1beta1';
export const INSTANCETYPE_API_VERSION = `${INSTANCETYPE_GROUP}/${INSTANCETYPE_VERSION}` as const;

export const VirtualMachineInstancetypeNames = {
  group: INSTANCETYPE_GROUP,
  version: INSTANCETYPE_VERSION,
  kind: 'VirtualMachineInstancetype',
  plural: 'virtualmachineinstancetypes',
  singular: 'virtualmachineinstancetype',
  shortNames: ['vminstancetype', 'vminstancetypes', 'vmf', 'vmfs'],
  categories: ['all'],
  scope: 'Namespaced',
} as const satisfies ResourceNames;

export const VirtualMachineClusterInstancetypeNames = {
  group: INSTANCETYPE_GROUP,
  version: INSTANCETYPE_VERSION,
  kind: 'VirtualMachineClusterInstancetype',
  plural: 'virtualmachineclusterinstancetypes',
  singular: 'virtualmachineclusterinstancetype',
  shortNames: ['vmclusterinstancetype', 'vmclusterinstancetypes', 'vmcf', 'vmcfs'],
  categories: [],
  scope: 'Cluster',
} as const satisfies ResourceNames;

export const VirtualMachinePreferenceNames = {
  group: INSTANCETYPE_GROUP,
  version: INSTANCETYPE_VERSION,
  kind: 'VirtualMachinePreference',
  plural: 'virtualmachinepreferences',
  singular: 'virtualmachinepreference',
  shortNames: ['vmpref', 'vmprefs', 'vmp', 'vmps'],
  categories: ['all'],
  scope: 'Namespaced',
} as const satisfies ResourceNames;

export const VirtualMachineClusterPreferenceNames = {
  group: INSTANCETYPE_GROUP,
  version: INSTANCETYPE_VERSION,
  kind: 'VirtualMachineClusterPreference',
  plural: 'virtualmachineclusterpreferences',
  singular: 'virtualmachineclusterpreference',
  shortNames: ['vmcp', 'vmcps'],
  categories: [],
  scope: 'Cluster',
} as const satisfies ResourceNames;

export const CPUInstancetype = z
  .strictObject({
    guest: z.int().min(1).describe('The number of vCPUs; laid out as sockets, cores or threads according to the preference.'),
    model: z.string().optional().describe('The guest CPU model, as domain.cpu.model.'),
    dedicatedCPUPlacement: z.boolean().optional().describe('Pin each vCPU to a dedicated host CPU.'),
    isolateEmulatorThread: z.boolean().optional().describe('Give the QEMU emulator thread its own dedicated host CPU.'),
    realtime: z
      .strictObject({ mask: z.string().optional().describe('The vCPUs that run with real-time scheduling.') })
      .optional()
      .describe('Tune the VM for real-time workloads.'),
    numa: z
      .strictObject({ guestMappingPassthrough: z.strictObject({}).optional().describe('Mirror the host NUMA topology into the guest.') })
      .optional()
      .describe('Guest NUMA topology.'),
    maxSockets: z.int().min(1).optional().describe('Upper bound of sockets for CPU hotplug.'),
  })
  .describe('The CPU an instancetype provides.');

export const MemoryInstancetype = z
  .strictObject({
    guest: Quantity.describe('The guest memory, e.g. 2Gi.'),
    hugepages: Hugepages.optional(),
    overcommitPercent: z.int().min(0).max(100).optional().describe('Request this percentage less memory from the node than the guest sees.'),
    maxGuest: Quantity.optional().describe('Upper bound of guest memory for memory hotplug.'),
  })
  .describe('The memory an instancetype provides.');

export const VirtualMachineInstancetypeSpec = z
  .strictObject({
    cpu: CPUInstancetype,
    memory: MemoryInstancetype,
    nodeSelector: z.record(z.string(), z.string()).optional().describe('Node labels the VM\'s node must have.'),
    schedulerName: z.string().optional().describe('The scheduler that places the VM\'s pod.'),
    gpus: namedList(GPU).optional().describe('GPUs passed through to the VM.'),
    hostDevices: namedList(HostDevice).optional().describe('Host devices passed through to the VM.'),
    ioThreadsPolicy: z.enum(['shared', 'auto', 'supplementalPool']).optional().describe('How disk I/O threads are allocated.'),
    annotations: z.record(z.string(), z.string()).optional().describe('Annotations added to the VMI.'),
  })
  .describe('Resources a VM gets from this instancetype; a VM using it may not set them itself.');
export type VirtualMachineInstancetypeSpec = z.infer<typeof VirtualMachineInstancetypeSpec>;

const FeatureStatePreference = z
  .strictObject({ enabled: z.boolean().optional().describe('Whether the feature is on.') })
  .describe('A feature that is either enabled or disabled.');

export const PreferredCPUTopology = z
  .enum(['sockets', 'cores', 'threads', 'spread', 'any', 'preferSockets', 'preferCores', 'preferThreads', 'preferSpread', 'preferAny'])
  .describe('How the instancetype\'s vCPUs are laid out: sockets (the default), cores, threads, spread, or any. The prefer* forms are deprecated spellings.');

export const VirtualMachinePreferenceSpec = z
  .strictObject({
    cpu: z
      .strictObject({
        preferredCPUTopology: PreferredCPUTopology.optional(),
        spreadOptions: z
          .strictObject({
            across: z.enum(['SocketsCoresThreads', 'SocketsCores', 'CoresThreads']).optional().describe('What the vCPUs are spread across.'),
            ratio: z.int().min(1).optional().describe('The ratio of the spread; 2 when unset.'),
          })
          .optional()
          .describe('How vCPUs are spread with the spread topology.'),
        preferredCPUFeatures: z.array(CPUFeature).optional().describe('CPU features added unless the VM sets its own.'),
      })
      .optional()
      .describe('CPU preferences.'),
    devices: z
      .strictObject({
        preferredDiskBus: DiskBus.optional().describe('The bus of disks that name none.'),
        preferredCdromBus: DiskBus.optional().describe('The bus of CD-ROMs that name none.'),
        preferredLunBus: DiskBus.optional().describe('The bus of LUNs that name none.'),
        preferredDiskCache: DiskCache.optional().describe('The cache mode of disks that name none.'),
        preferredDiskDedicatedIoThread: z.boolean().optional().describe('Give disks a dedicated I/O thread.'),
        preferredInterfaceModel: InterfaceModel.optional().describe('The NIC model of interfaces that name none.'),
        preferredInterfaceMasquerade: z.strictObject({}).optional().describe('Use the masquerade binding for interfaces that name none.'),
        preferredRng: z.strictObject({}).optional().describe('Add a virtio RNG device.'),
        preferredAutoattachGraphicsDevice: z.boolean().optional().describe('Default of autoattachGraphicsDevice.'),
        preferredAutoattachMemBalloon: z.boolean().optional().describe('Default of autoattachMemBalloon.'),
        preferredAutoattachPodInterface: z.boolean().optional().describe('Default of autoattachPodInterface.'),
        preferredAutoattachSerialConsole: z.boolean().optional().describe('Default of autoattachSerialConsole.'),
        preferredAutoattachInputDevice: z.boolean().optional().describe('Default of autoattachInputDevice.'),
        preferredInputBus: z.enum(['usb', 'virtio']).optional().describe('The bus of input devices that name none.'),
        preferredInputType: z.enum(['tablet', 'keyboard']).optional().describe('The type of input devices that name none.'),
        preferredUseVirtioTransitional: z.boolean().optional().describe('Default of useVirtioTransitional.'),
        preferredBlockMultiQueue: z.boolean().optional().describe('Default of blockMultiQueue.'),
        preferredNetworkInterfaceMultiQueue: z.boolean().optional().describe('Default of networkInterfaceMultiqueue.'),
      })
      .optional()
      .describe('Device preferences.'),
    features: z
      .strictObject({
        preferredAcpi: FeatureStatePreference.optional().describe('Default of features.acpi.'),
        preferredApic: z
          .strictObject({
            enabled: z.boolean().optional().describe('Whether the APIC is on.'),
            endOfInterrupt: z.boolean().optional().describe('Enable the paravirtual end-of-interrupt.'),
          })
          .optional()
          .describe('Default of features.apic.'),
        preferredKvm: z.strictObject({ hidden: z.boolean().optional().describe('Hide the KVM signature.') }).optional().describe('Default of features.kvm.'),
        preferredPvspinlock: FeatureStatePreference.optional().describe('Default of features.pvspinlock.'),
        preferredSmm: FeatureStatePreference.optional().describe('Default of features.smm.'),
      })
      .optional()
      .describe('Feature preferences.'),
    firmware: z
      .strictObject({
        preferredUseBios: z.boolean().optional().describe('Boot with BIOS.'),
        preferredUseBiosSerial: z.boolean().optional().describe('Show BIOS output on the serial console.'),
        preferredUseEfi: z.boolean().optional().describe('Deprecated: use preferredEfi. Boot with EFI.'),
        preferredUseSecureBoot: z.boolean().optional().describe('Deprecated: use preferredEfi. Enable Secure Boot.'),
        preferredEfi: z
          .strictObject({
            secureBoot: z.boolean().optional().describe('Enable Secure Boot.'),
            persistent: z.boolean().optional().describe('Keep the EFI variable store across restarts.'),
          })
          .optional()
          .describe('Boot with EFI with these settings.'),
      })
      .optional()
      .describe('Firmware preferences.'),
    machine: z
      .strictObject({ preferredMachineType: z.string().optional().describe('The machine type of VMs that name none.') })
      .optional()
      .describe('Machine preferences.'),
    clock: z
      .strictObject({
        preferredClockOffset: z
          .strictObject({
            utc: z.strictObject({ offsetSeconds: z.int().optional().describe('Offset from UTC in seconds.') }).optional().describe('UTC clock.'),
            timezone: z.string().optional().describe('Time zone clock.'),
          })
          .optional()
          .describe('Default clock offset.'),
        preferredTimer: Timer.optional().describe('Default timers.'),
      })
      .optional()
      .describe('Clock preferences.'),
    volumes: z
      .strictObject({ preferredStorageClassName: z.string().optional().describe('Storage class for volumes created for the VM.') })
      .optional()
      .describe('Volume preferences.'),
    preferredSubdomain: z.string().optional().describe('Default of spec.subdomain.'),
    preferredTerminationGracePeriodSeconds: z.int().min(0).optional().describe('Default of terminationGracePeriodSeconds.'),
    preferSpreadSocketToCoreRatio: z.int().min(1).optional().describe('Deprecated: use cpu.spreadOptions.ratio.'),
    preferredArchitecture: z.string().optional().describe('Default of spec.architecture.'),
    requirements: z
      .strictObject({
        cpu: z.strictObject({ guest: z.int().min(1).describe('Minimum vCPUs.') }).optional().describe('Minimum CPU the VM must have.'),
        memory: z.strictObject({ guest: Quantity.describe('Minimum guest memory.') }).optional().describe('Minimum memory the VM must have.'),
        architecture: z.string().optional().describe('The architecture the VM must have.'),
      })
      .optional()
      .describe('Resources a VM must have to use this preference.'),
    annotations: z.record(z.string(), z.string()).optional().describe('Annotations added to the VMI.'),
  })
  .describe('Defaults applied to a VM that leaves these settings unset.');
export type VirtualMachinePreferenceSpec = z.infer<typeof VirtualMachinePreferenceSpec>;

export const VirtualMachineInstancetypeSchema = z
  .strictObject({ ...typeMeta(INSTANCETYPE_API_VERSION, 'VirtualMachineInstancetype'), spec: VirtualMachineInstancetypeSpec })
  .describe('A namespaced instancetype: CPU and memory for the VMs that reference it.');
export type VirtualMachineInstancetype = z.infer<typeof VirtualMachineInstancetypeSchema>;

export const VirtualMachineClusterInstancetypeSchema = z
  .strictObject({ ...typeMeta(INSTANCETYPE_API_VERSION, 'VirtualMachineClusterInstancetype'), spec: VirtualMachineInstancetypeSpec })
  .describe('A cluster-wide instancetype: CPU and memory for the VMs that reference it.');
export type VirtualMachineClusterInstancetype = z.infer<typeof VirtualMachineClusterInstancetypeSchema>;

export const VirtualMachinePreferenceSchema = z
  .strictObject({ ...typeMeta(INSTANCETYPE_API_VERSION, 'VirtualMachinePreference'), spec: VirtualMachinePreferenceSpec })
  .describe('A namespaced preference: defaults for the VMs that reference it.');
export type VirtualMachinePreference = z.infer<typeof VirtualMachinePreferenceSchema>;

export const VirtualMachineClusterPreferenceSchema = z
  .strictObject({ ...typeMeta(INSTANCETYPE_API_VERSION, 'VirtualMachineClusterPreference'), spec: VirtualMachinePreferenceSpec })
  .describe('A cluster-wide preference: defaults for the VMs that reference it.');
export type VirtualMachineClusterPreference = z.infer<typeof VirtualMachineClusterPreferenceSchema>;
