// The request bodies of KubeVirt's subresource API (subresources.kubevirt.io): what virtctl and
// other clients PUT to start, stop, restart, migrate, pause and unpause. Field names and meanings
// as kubevirt.io/api/core/v1 StartOptions, StopOptions, RestartOptions, MigrateOptions,
// PauseOptions, UnpauseOptions, FreezeUnfreezeTimeout; and the guest agent lists GET userlist and
// filesystemlist answer with (VirtualMachineInstanceGuestOSUserList, ...FileSystemList). Like
// KubeVirt's decoder, unknown fields (apiVersion, kind, ...)
// are ignored; a known field of the wrong type is a 400 naming it.
import { z } from 'zod';
import { GoDuration } from '../../../duration.js';

/** The API group and versions of the subresource API; v1alpha3 is the alias KubeVirt also serves. */
export const SUBRESOURCE_GROUP = 'subresources.kubevirt.io';
export const SUBRESOURCE_VERSIONS = ['v1', 'v1alpha3'] as const;
export type SubresourceVersion = (typeof SUBRESOURCE_VERSIONS)[number];

/** metav1 dryRun: ["All"] makes the request's writes dry runs; the only value Kubernetes knows. */
const DryRun = z.array(z.literal('All')).optional().describe('["All"]: validate and report, but persist nothing.');

export const StartOptions = z
  .object({
    paused: z.boolean().optional().describe('Start the VM paused.'),
    dryRun: DryRun,
  })
  .describe('The body of PUT .../virtualmachines/{name}/start.');
export type StartOptions = z.infer<typeof StartOptions>;

export const StopOptions = z
  .object({
    gracePeriod: z.int().min(0).optional().describe('Seconds the guest gets to shut down; replaces the VMI\'s terminationGracePeriodSeconds.'),
    dryRun: DryRun,
  })
  .describe('The body of PUT .../virtualmachines/{name}/stop.');
export type StopOptions = z.infer<typeof StopOptions>;

export const RestartOptions = z
  .object({
    // KubeVirt accepts only 0 (a forced restart); any other value is refused by the handler with
    // KubeVirt's own message, so the schema lets every integer through.
    gracePeriodSeconds: z.int().optional().describe('0 forces the restart (the guest is not asked to shut down).'),
    dryRun: DryRun,
  })
  .describe('The body of PUT .../virtualmachines/{name}/restart.');
export type RestartOptions = z.infer<typeof RestartOptions>;

export const MigrateOptions = z
  .object({
    addedNodeSelector: z.record(z.string(), z.string()).optional().describe('Extra node labels the target node must have.'),
    dryRun: DryRun,
  })
  .describe('The body of PUT .../virtualmachines/{name}/migrate.');
export type MigrateOptions = z.infer<typeof MigrateOptions>;

export const PauseOptions = z.object({ dryRun: DryRun }).describe('The body of PUT .../virtualmachineinstances/{name}/pause.');
export type PauseOptions = z.infer<typeof PauseOptions>;

export const UnpauseOptions = z.object({ dryRun: DryRun }).describe('The body of PUT .../virtualmachineinstances/{name}/unpause.');
export type UnpauseOptions = z.infer<typeof UnpauseOptions>;

export const FreezeUnfreezeTimeout = z
  .object({
    unfreezeTimeout: GoDuration.nullable().optional().describe('After this long the guest is thawed even without an unfreeze; 0s: never (a Go duration, e.g. 5m0s).'),
  })
  .describe('The body of PUT .../virtualmachineinstances/{name}/freeze.');
export type FreezeUnfreezeTimeout = z.infer<typeof FreezeUnfreezeTimeout>;

// The guest agent's answers, as KubeVirt serves them. A hostile guest writes them, so every list
// and string is bounded: an agent answer over a bound is refused whole, never shown in part.
export const GUEST_AGENT_MAX_USERS = 256;
export const GUEST_AGENT_MAX_FILESYSTEMS = 128;
export const GUEST_AGENT_MAX_DISKS_PER_FILESYSTEM = 16;
/** A user or domain name, a device name, a serial. */
export const GUEST_AGENT_MAX_NAME = 256;
/** A mount point: Linux's PATH_MAX. */
export const GUEST_AGENT_MAX_PATH = 4096;

const name = z.string().max(GUEST_AGENT_MAX_NAME);
const bytes = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const VirtualMachineInstanceGuestOSUser = z
  .object({
    userName: name.describe('The user\'s login name.'),
    domain: name.optional().describe('The user\'s domain (Windows guests).'),
    loginTime: z.number().nonnegative().max(1e12).optional().describe('The earliest login of this user, in fractional seconds since the epoch.'),
  })
  .describe('A user logged in to the guest (VirtualMachineInstanceGuestOSUser).');
export type VirtualMachineInstanceGuestOSUser = z.infer<typeof VirtualMachineInstanceGuestOSUser>;

export const VirtualMachineInstanceFileSystemDisk = z
  .object({
    serial: name.optional().describe('The disk\'s serial number.'),
    busType: z.string().max(32).describe('The bus the disk is on: virtio, scsi, ide, sata, ...'),
  })
  .describe('A disk a guest filesystem lives on (VirtualMachineInstanceFileSystemDisk).');

export const VirtualMachineInstanceFileSystem = z
  .object({
    diskName: name.describe('The guest\'s device name, e.g. vda1.'),
    mountPoint: z.string().max(GUEST_AGENT_MAX_PATH).describe('Where it is mounted in the guest.'),
    fileSystemType: z.string().max(64).describe('e.g. ext4, xfs, NTFS.'),
    usedBytes: bytes.describe('Bytes in use.'),
    totalBytes: bytes.describe('The filesystem\'s size in bytes.'),
    disk: z.array(VirtualMachineInstanceFileSystemDisk).max(GUEST_AGENT_MAX_DISKS_PER_FILESYSTEM).optional().describe('The disks it lives on.'),
  })
  .describe('A mounted guest filesystem (VirtualMachineInstanceFileSystem).');
export type VirtualMachineInstanceFileSystem = z.infer<typeof VirtualMachineInstanceFileSystem>;

export const GuestOSUsers = z.array(VirtualMachineInstanceGuestOSUser).max(GUEST_AGENT_MAX_USERS);
export const GuestFileSystems = z.array(VirtualMachineInstanceFileSystem).max(GUEST_AGENT_MAX_FILESYSTEMS);

/** The answer of GET .../userlist and .../filesystemlist: a list, as KubeVirt's List types. */
function guestList<T extends z.ZodType>(kind: string, items: T) {
  return z.object({ kind: z.literal(kind), apiVersion: z.literal('kubevirt.io/v1'), metadata: z.object({}), items });
}
export const VirtualMachineInstanceGuestOSUserList = guestList('VirtualMachineInstanceGuestOSUserList', GuestOSUsers);
export type VirtualMachineInstanceGuestOSUserList = z.infer<typeof VirtualMachineInstanceGuestOSUserList>;
export const VirtualMachineInstanceFileSystemList = guestList('VirtualMachineInstanceFileSystemList', GuestFileSystems);
export type VirtualMachineInstanceFileSystemList = z.infer<typeof VirtualMachineInstanceFileSystemList>;

// Here, not beside the VMI status that embeds it, because the launcher protocol reports it too: the
// launcher then builds this schema without the whole VMI spec's (about 0.1 s of CPU at its start).
export const VirtualMachineInstanceGuestOSInfo = z
  .strictObject({
    name: z.string().optional().describe('The guest OS name.'),
    kernelRelease: z.string().optional().describe('The guest kernel release.'),
    version: z.string().optional().describe('The guest OS version.'),
    prettyName: z.string().optional().describe('The guest OS pretty name.'),
    versionId: z.string().optional().describe('The guest OS version id.'),
    kernelVersion: z.string().optional().describe('The guest kernel version.'),
    machine: z.string().optional().describe('The guest machine type, e.g. x86_64.'),
    id: z.string().optional().describe('The guest OS id, e.g. fedora.'),
  })
  .describe('The guest OS as the guest agent reports it.');
export type VirtualMachineInstanceGuestOSInfo = z.infer<typeof VirtualMachineInstanceGuestOSInfo>;
