// VirtualMachineInstance (kubevirt.io/v1): one running VM, backed by one launcher pod.
import { z } from 'zod';
import { Affinity, DNSPolicy, PodDNSConfig, PodQOSClass, Toleration } from '../../core.js';
import { conditionSchema, Quantity, Time, typeMeta, type ResourceNames } from '../../meta.js';
import { DomainSpec, Machine, dnsLabel, dnsSubdomain, namedList } from './domain.js';
import { Network, Volume } from './volumes.js';
import { VirtualMachineInstanceGuestOSInfo } from './subresources.js';

export const KUBEVIRT_GROUP = 'kubevirt.io';
export const KUBEVIRT_VERSION = 'v1';
export const KUBEVIRT_API_VERSION = `${KUBEVIRT_GROUP}/${KUBEVIRT_VERSION}` as const;

export const VirtualMachineInstanceNames = {
  group: KUBEVIRT_GROUP,
  version: KUBEVIRT_VERSION,
  kind: 'VirtualMachineInstance',
  plural: 'virtualmachineinstances',
  singular: 'virtualmachineinstance',
  shortNames: ['vmi', 'vmis'],
  categories: ['all'],
  scope: 'Namespaced',
} as const satisfies ResourceNames;

export const EvictionStrategy = z
  .enum(['None', 'LiveMigrate', 'LiveMigrateIfPossible', 'External'])
  .describe(
    'What happens when the node is drained: None (the VM is stopped), LiveMigrate (migrate; block the drain if it cannot), ' +
      'LiveMigrateIfPossible (migrate if possible, else stop), External (block the drain and leave it to an external controller).',
  );
export type EvictionStrategy = z.infer<typeof EvictionStrategy>;

export const VirtualMachineInstanceSpec = z
  .strictObject({
    domain: DomainSpec,
    volumes: namedList(Volume).optional().describe('The volumes that back the disks.'),
    networks: namedList(Network).optional().describe('The networks the interfaces connect to.'),
    nodeSelector: z.record(z.string(), z.string()).optional().describe('Node labels the VM\'s node must have.'),
    affinity: Affinity.optional(),
    tolerations: z.array(Toleration).optional().describe('Taints the VM\'s pod tolerates.'),
    schedulerName: z.string().optional().describe('The scheduler that places the VM\'s pod; the default scheduler when unset.'),
    priorityClassName: z.string().optional().describe('The PriorityClass of the VM\'s pod.'),
    evictionStrategy: EvictionStrategy.optional(),
    startStrategy: z.enum(['Paused']).optional().describe('Paused: start the VM paused, to be unpaused later.'),
    terminationGracePeriodSeconds: z
      .int()
      .min(0)
      .optional()
      .describe('Seconds the guest gets to shut down after an ACPI power-off before it is killed.'),
    hostname: dnsLabel('The guest hostname (a DNS label); the VM name when unset.').optional(),
    subdomain: dnsSubdomain('The subdomain: the guest\'s FQDN becomes <hostname>.<subdomain>.<namespace>.svc.<cluster domain>.').optional(),
    dnsPolicy: DNSPolicy.optional(),
    dnsConfig: PodDNSConfig.optional(),
    architecture: z.string().optional().describe('The guest CPU architecture, e.g. amd64.'),
  })
  .describe('The desired state of a VirtualMachineInstance.');
export type VirtualMachineInstanceSpec = z.infer<typeof VirtualMachineInstanceSpec>;

export const VirtualMachineInstancePhase = z
  .enum(['Pending', 'Scheduling', 'Scheduled', 'Running', 'Succeeded', 'Failed', 'WaitingForSync', 'Unknown'])
  .describe(
    'Where the VMI is in its lifecycle: Pending (accepted, no pod yet), Scheduling (pod created; its node recorded once bound), ' +
      'Scheduled (pod ready on its node; kubevm goes past it in the same write when the guest runs first), ' +
      'Running, Succeeded (the guest shut down), Failed, WaitingForSync (migration target), Unknown.',
  );
export type VirtualMachineInstancePhase = z.infer<typeof VirtualMachineInstancePhase>;

export const VirtualMachineInstanceCondition = conditionSchema(
  'The condition type, e.g. Ready, LiveMigratable, Paused, AgentConnected.',
  'An observation about the VMI.',
);
export type VirtualMachineInstanceCondition = z.infer<typeof VirtualMachineInstanceCondition>;

export const VirtualMachineInstanceNetworkInterface = z
  .strictObject({
    name: z.string().optional().describe('The interface name from the spec.'),
    ipAddress: z.string().optional().describe('The primary IP address of the interface.'),
    ipAddresses: z.array(z.string()).optional().describe('All IP addresses of the interface.'),
    mac: z.string().optional().describe('The MAC address.'),
    interfaceName: z.string().optional().describe('The interface name inside the guest, e.g. eth0.'),
    podInterfaceName: z.string().optional().describe('The pod interface the guest NIC is bound to.'),
    infoSource: z.string().optional().describe('Where the information comes from: domain, guest-agent, multus-status, comma-separated.'),
    queueCount: z.int().optional().describe('The number of queues of the NIC.'),
    linkState: z.string().optional().describe('The link state: up or down.'),
  })
  .describe('An observed guest network interface.');
export type VirtualMachineInstanceNetworkInterface = z.infer<typeof VirtualMachineInstanceNetworkInterface>;

// Declared here, where the migration state that records it is; the KubeVirt CR's spec.configuration.migrations uses it too.
export const MigrationConfiguration = z
  .strictObject({
    parallelMigrationsPerCluster: z.int().min(0).optional().describe('Migrations running at once in the cluster; 5 when unset.'),
    parallelOutboundMigrationsPerNode: z.int().min(0).optional().describe('Migrations leaving one node at once; 2 when unset.'),
    bandwidthPerMigration: Quantity.optional().describe('Bandwidth limit of each migration, e.g. 64Mi (per second); unlimited when unset.'),
    completionTimeoutPerGiB: z.int().min(0).optional().describe('Seconds per GiB of guest memory after which a migration is cancelled; 150 when unset.'),
    progressTimeout: z.int().min(0).optional().describe('Seconds without progress after which a migration is cancelled; 150 when unset.'),
    allowAutoConverge: z.boolean().optional().describe('Throttle the guest CPU when a migration does not converge.'),
    allowPostCopy: z.boolean().optional().describe('Switch to post-copy when a migration does not converge.'),
    unsafeMigrationOverride: z.boolean().optional().describe('Allow migrations that may corrupt data (e.g. with writeback caching).'),
    nodeDrainTaintKey: z.string().optional().describe('The taint that marks a node being drained; kubevirt.io/drain when unset.'),
  })
  .describe('Cluster-wide live-migration settings.');
export type MigrationConfiguration = z.infer<typeof MigrationConfiguration>;

export const VirtualMachineInstanceMigrationState = z
  .strictObject({
    migrationUid: z.string().optional().describe('The UID of the VirtualMachineInstanceMigration driving this migration.'),
    startTimestamp: Time.optional().describe('When the migration started.'),
    endTimestamp: Time.optional().describe('When the migration ended.'),
    sourceNode: z.string().optional().describe('The node the VM migrates from.'),
    sourcePod: z.string().optional().describe('The launcher pod the VM migrates from.'),
    targetNode: z.string().optional().describe('The node the VM migrates to.'),
    targetPod: z.string().optional().describe('The launcher pod the VM migrates to.'),
    targetNodeAddress: z.string().optional().describe('The address of the target node\'s agent.'),
    targetNodeDomainDetected: z.boolean().optional().describe('The target has seen the incoming domain.'),
    targetNodeDomainReadyTimestamp: Time.optional().describe('When the domain became ready on the target.'),
    targetDirectMigrationNodePorts: z.record(z.string(), z.int()).optional().describe('Ports the target listens on for migration traffic.'),
    completed: z.boolean().optional().describe('The migration completed.'),
    failed: z.boolean().optional().describe('The migration failed.'),
    abortRequested: z.boolean().optional().describe('An abort of the migration was requested.'),
    abortStatus: z.enum(['Succeeded', 'Failed', 'Aborting']).optional().describe('The outcome of an abort.'),
    failureReason: z.string().optional().describe('Why the migration failed.'),
    mode: z.enum(['PreCopy', 'PostCopy', 'Paused']).optional().describe('The migration mode in use.'),
    migrationPolicyName: z.string().optional().describe('The MigrationPolicy applied to this migration.'),
    migrationConfiguration: MigrationConfiguration.optional().describe('The migration settings in force for this migration: the cluster\'s, overridden by the MigrationPolicy.'),
  })
  .describe('The state of the current or last live migration.');
export type VirtualMachineInstanceMigrationState = z.infer<typeof VirtualMachineInstanceMigrationState>;

export const VirtualMachineInstancePhaseTransitionTimestamp = z
  .strictObject({
    phase: VirtualMachineInstancePhase.optional(),
    phaseTransitionTimestamp: Time.optional().describe('When the VMI entered the phase.'),
  })
  .describe('When the VMI entered a phase.');

export const VolumeStatus = z
  .strictObject({
    name: z.string().describe('The volume name.'),
    target: z.string().describe('The disk target the guest sees, e.g. vda.'),
    phase: z.string().optional().describe('The volume phase (e.g. Ready, Bound, Pending).'),
    reason: z.string().optional().describe('Why the volume is in this phase.'),
    message: z.string().optional().describe('A human-readable message.'),
    size: z.int().optional().describe('The size of the volume in bytes.'),
    persistentVolumeClaimInfo: z
      .strictObject({
        claimName: z.string().optional().describe('The claim name.'),
        accessModes: z.array(z.string()).optional().describe('The access modes of the claim.'),
        volumeMode: z.enum(['Block', 'Filesystem']).optional().describe('The volume mode of the claim.'),
        capacity: z.record(z.string(), Quantity).optional().describe('The capacity of the claim.'),
        requests: z.record(z.string(), Quantity).optional().describe('The requests of the claim.'),
      })
      .optional()
      .describe('The PersistentVolumeClaim behind the volume.'),
    containerDiskVolume: z
      .strictObject({ checksum: z.int().optional().describe('Deprecated checksum of the container disk.') })
      .optional()
      .describe('Information about a containerDisk volume.'),
  })
  .describe('The observed state of a volume.');
export type VolumeStatus = z.infer<typeof VolumeStatus>;

export const VirtualMachineInstanceStatus = z
  .strictObject({
    phase: VirtualMachineInstancePhase.optional(),
    reason: z.string().optional().describe('A brief CamelCase reason for the phase, e.g. NodeUnresponsive.'),
    nodeName: z.string().optional().describe('The node the VM runs on: set once its launcher pod is bound to a node.'),
    conditions: z.array(VirtualMachineInstanceCondition).optional().describe('The conditions of the VMI.'),
    phaseTransitionTimestamps: z.array(VirtualMachineInstancePhaseTransitionTimestamp).optional().describe('When the VMI entered each phase.'),
    interfaces: z.array(VirtualMachineInstanceNetworkInterface).optional().describe('The observed network interfaces (from the guest agent: at most 32, with at most 8 addresses each).'),
    guestOSInfo: VirtualMachineInstanceGuestOSInfo.optional(),
    migrationState: VirtualMachineInstanceMigrationState.optional(),
    migrationMethod: z.enum(['BlockMigration', 'LiveMigration']).optional().describe('How the VM would be migrated: BlockMigration (copies local disks) or LiveMigration.'),
    migrationTransport: z.enum(['Unix']).optional().describe('The migration transport.'),
    qosClass: PodQOSClass.optional().describe('The QoS class of the launcher pod.'),
    launcherContainerImageVersion: z.string().optional().describe('The launcher image the VM runs with.'),
    evacuationNodeName: z.string().optional().describe('The node being drained that the VM must leave.'),
    activePods: z.record(z.string(), z.string()).optional().describe('Launcher pods of this VMI: pod UID → node name.'),
    volumeStatus: z.array(VolumeStatus).optional().describe('The observed state of the volumes.'),
    machine: Machine.optional().describe('The machine type the VM runs with.'),
    currentCPUTopology: z
      .strictObject({
        cores: z.int().optional().describe('Cores per socket.'),
        sockets: z.int().optional().describe('Sockets.'),
        threads: z.int().optional().describe('Threads per core.'),
      })
      .optional()
      .describe('The CPU topology the VM runs with.'),
    memory: z
      .strictObject({
        guestAtBoot: Quantity.optional().describe('Guest memory at boot.'),
        guestCurrent: Quantity.optional().describe('Guest memory now.'),
        guestRequested: Quantity.optional().describe('Guest memory requested.'),
        memoryOverhead: Quantity.optional().describe('The virtualization overhead added to the pod.'),
      })
      .optional()
      .describe('The guest memory the VM runs with.'),
    selinuxContext: z.string().optional().describe('The SELinux context of the launcher.'),
    runtimeUser: z.int().min(0).optional().describe('The UID the launcher runs as.'),
    virtualMachineRevisionName: z.string().optional().describe('The ControllerRevision of the VM spec this VMI was created from.'),
    fsFreezeStatus: z
      .enum(['frozen'])
      .optional()
      .describe('"frozen" while the guest agent reports the guest\'s filesystems frozen (freeze subresource); unset otherwise.'),
  })
  .describe('The observed state of a VirtualMachineInstance.');
export type VirtualMachineInstanceStatus = z.infer<typeof VirtualMachineInstanceStatus>;

export const VirtualMachineInstanceSchema = z
  .strictObject({
    ...typeMeta(KUBEVIRT_API_VERSION, 'VirtualMachineInstance'),
    spec: VirtualMachineInstanceSpec,
    status: VirtualMachineInstanceStatus.optional(),
  })
  .describe('A running virtual machine: one QEMU process in one launcher pod.');
export type VirtualMachineInstance = z.infer<typeof VirtualMachineInstanceSchema>;
