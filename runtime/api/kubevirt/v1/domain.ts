// The virtual hardware of a VirtualMachineInstance (kubevirt.io/v1 DomainSpec): the subset kubevm
// runs. Field names and enum values are KubeVirt's; anything else is rejected with its path.
import { z } from 'zod';
import { PullPolicy } from '../../core.js';
import { Quantity, ResourceList } from '../../meta.js';
import { DISK_SERIAL_MESSAGE, DISK_SERIAL_PATTERN, DNS_LABEL_MESSAGE, DNS_LABEL_PATTERN, DNS_SUBDOMAIN_PATTERN } from '../../names.js';

/** Counts how many of the given keys are set, for "exactly one of" / "at most one of" rules. */
function countSet(value: object, keys: readonly string[]): number {
  return keys.filter((key) => (value as Record<string, unknown>)[key] !== undefined).length;
}

/** A refinement: at most one of `keys` may be set (KubeVirt defaults the choice when none is). */
export function atMostOneOf(keys: readonly string[]) {
  return (value: object, ctx: z.RefinementCtx) => {
    if (countSet(value, keys) > 1) {
      ctx.addIssue({ code: 'custom', message: `only one of ${keys.join(', ')} may be set` });
    }
  };
}

/**
 * Marks the issue "none of the choices is set". When the object also has an unknown key (say a
 * KubeVirt volume source kubevm does not support), that key is the real problem, and
 * formatIssues drops this issue rather than confuse the user with two messages.
 */
export const NO_CHOICE_SET = 'kubevm/no-choice-set';

/** A refinement: exactly one of `keys` must be set. */
export function exactlyOneOf(keys: readonly string[]) {
  return (value: object, ctx: z.RefinementCtx) => {
    const set = countSet(value, keys);
    if (set === 0) {
      ctx.addIssue({ code: 'custom', message: `one of ${keys.join(', ')} must be set`, params: { reason: NO_CHOICE_SET } });
    } else if (set > 1) {
      ctx.addIssue({ code: 'custom', message: `only one of ${keys.join(', ')} may be set` });
    }
  };
}

/**
 * An array whose items are identified by `name` (disks, interfaces, volumes, ...): duplicates are
 * rejected, as the API server does for the CRD's list-map.
 */
export function namedList<Item extends z.ZodType<{ name: string }>>(item: Item) {
  return z
    .array(item)
    .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] })
    .superRefine((items, ctx) => {
      const seen = new Set<string>();
      items.forEach((entry, index) => {
        if (seen.has(entry.name)) ctx.addIssue({ code: 'custom', path: [index, 'name'], message: `duplicate name ${JSON.stringify(entry.name)}` });
        seen.add(entry.name);
      });
    });
}

export function dnsLabel(description: string) {
  return z.string().regex(new RegExp(DNS_LABEL_PATTERN), DNS_LABEL_MESSAGE).describe(description);
}

/**
 * A file's path inside a container image (containerDisk.path, kernelPath, initrdPath), as KubeVirt
 * requires it: absolute, naming a file (not "/"), without empty, "." or ".." components. Control
 * characters (newline, NUL, ...) are refused too: the path is copied out of the image by the launcher
 * pod's init container and appears in messages. A regular expression, so the CRD refuses the same.
 */
const PATH_CHAR = '[^/\\x00-\\x1f\\x7f]';
const PATH_CHAR_NOT_DOT = '[^/.\\x00-\\x1f\\x7f]';
// A component other than "." and "..": one non-dot; a non-dot then anything; a dot then a non-dot; three or more.
const PATH_COMPONENT = `(${PATH_CHAR_NOT_DOT}|${PATH_CHAR_NOT_DOT}${PATH_CHAR}|\\.${PATH_CHAR_NOT_DOT}|${PATH_CHAR}{3,})`;
export const IMAGE_PATH_PATTERN = `^(/${PATH_COMPONENT})+$`;
const IMAGE_PATH_MESSAGE = 'must be an absolute path to a file inside the image, without empty, "." or ".." components or control characters (e.g. /disk/fedora.qcow2)';

export function imagePath(description: string) {
  return z.string().max(4096).regex(new RegExp(IMAGE_PATH_PATTERN), IMAGE_PATH_MESSAGE).describe(description);
}

export function dnsSubdomain(description: string) {
  return z
    .string()
    .max(253)
    .regex(new RegExp(DNS_SUBDOMAIN_PATTERN), 'must be a DNS subdomain: dot-separated DNS labels of lowercase letters, digits and "-"')
    .describe(description);
}

const FeatureState = z
  .strictObject({ enabled: z.boolean().optional().describe('Whether the feature is on; on when unset.') })
  .describe('A feature that is either enabled or disabled.');

// ---- CPU -------------------------------------------------------------------------------------

export const CPUFeature = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/, 'must be a CPU feature name: letters, digits, "_", "." and "-"')
      .describe('The CPU feature flag, as QEMU names it (e.g. vmx, pcid).'),
    policy: z
      .enum(['force', 'require', 'optional', 'disable', 'forbid'])
      .optional()
      .describe('What to do with the flag: force, require (the default), optional, disable or forbid.'),
  })
  .describe('A CPU feature flag to add to or remove from the CPU model.');
export type CPUFeature = z.infer<typeof CPUFeature>;

export const CPU = z
  .strictObject({
    cores: z.int().min(1).optional().describe('Cores per socket of the guest CPU topology.'),
    sockets: z.int().min(1).optional().describe('Sockets of the guest CPU topology.'),
    maxSockets: z.int().min(1).optional().describe('Upper bound of sockets for CPU hotplug.'),
    threads: z.int().min(1).optional().describe('Threads per core of the guest CPU topology.'),
    model: z
      .string()
      .optional()
      .describe('The guest CPU model: host-passthrough, host-model, or a named QEMU model. Under emulation the default is the emulated model.'),
    features: z.array(CPUFeature).optional().describe('CPU feature flags on top of the model.'),
    dedicatedCpuPlacement: z.boolean().optional().describe('Pin each vCPU to a dedicated host CPU (needs the kubelet static CPU manager).'),
    isolateEmulatorThread: z.boolean().optional().describe('Give the QEMU emulator thread its own dedicated host CPU; requires dedicatedCpuPlacement.'),
    realtime: z
      .strictObject({
        mask: z.string().optional().describe('The vCPUs that run with real-time scheduling, e.g. "0-3,^1"; all vCPUs when unset.'),
      })
      .optional()
      .describe('Tune the VM for real-time workloads; requires dedicatedCpuPlacement.'),
    numa: z
      .strictObject({
        guestMappingPassthrough: z.strictObject({}).optional().describe('Mirror the host NUMA topology of the pinned CPUs into the guest.'),
      })
      .optional()
      .describe('Guest NUMA topology.'),
  })
  .describe('The guest CPU: topology, model, features and placement.');
export type CPU = z.infer<typeof CPU>;

// ---- memory and resources --------------------------------------------------------------------

export const Hugepages = z
  .strictObject({
    pageSize: z.string().optional().describe('The huge page size backing guest memory, e.g. 2Mi or 1Gi.'),
  })
  .describe('Back guest memory with huge pages of this size.');
export type Hugepages = z.infer<typeof Hugepages>;

export const Memory = z
  .strictObject({
    guest: Quantity.optional().describe('Memory the guest sees. Defaults to the memory request; may exceed it when overcommitting.'),
    maxGuest: Quantity.optional().describe('Upper bound of guest memory for memory hotplug.'),
    hugepages: Hugepages.optional().describe('Back guest memory with huge pages.'),
  })
  .describe('Guest memory.');
export type Memory = z.infer<typeof Memory>;

export const DomainResources = z
  .strictObject({
    requests: ResourceList.optional().describe('Resources requested for the VM (cpu, memory); the launcher pod requests these plus overhead.'),
    limits: ResourceList.optional().describe('Resource limits of the VM.'),
    overcommitGuestOverhead: z
      .boolean()
      .optional()
      .describe('Do not add the virtualization overhead to the memory request (the limit still includes it).'),
  })
  .describe('Compute resources of the VM.');
export type DomainResources = z.infer<typeof DomainResources>;

export const Machine = z
  .strictObject({
    type: z.string().optional().describe('The QEMU machine type, e.g. q35 or pc-q35-rhel9.6.0; q35 when unset.'),
  })
  .describe('The emulated machine.');
export type Machine = z.infer<typeof Machine>;

// ---- firmware --------------------------------------------------------------------------------

export const BIOS = z
  .strictObject({
    useSerial: z.boolean().optional().describe('Show the BIOS output on the serial console.'),
  })
  .describe('Boot with legacy BIOS (SeaBIOS).');

export const EFI = z
  .strictObject({
    secureBoot: z.boolean().optional().describe('Enable Secure Boot; on when unset. Requires the SMM feature.'),
    persistent: z.boolean().optional().describe('Keep the EFI variable store across restarts.'),
  })
  .describe('Boot with UEFI (OVMF).');

export const Bootloader = z
  .strictObject({
    bios: BIOS.optional().describe('Boot with legacy BIOS.'),
    efi: EFI.optional().describe('Boot with UEFI.'),
  })
  .superRefine(atMostOneOf(['bios', 'efi']))
  .describe('The firmware that boots the guest: bios or efi (one of them).');
export type Bootloader = z.infer<typeof Bootloader>;

export const KernelBootContainer = z
  .strictObject({
    image: z.string().min(1).describe('Container image holding the kernel and initrd.'),
    imagePullSecret: z.string().optional().describe('Name of the pull secret for the image.'),
    imagePullPolicy: PullPolicy.optional(),
    kernelPath: imagePath('Absolute path of the kernel inside the image, e.g. /boot/vmlinuz.').optional(),
    initrdPath: imagePath('Absolute path of the initrd inside the image.').optional(),
  })
  .describe('A container image that provides the kernel and initrd to boot directly.');

export const KernelBoot = z
  .strictObject({
    kernelArgs: z.string().optional().describe('The kernel command line.'),
    container: KernelBootContainer.optional().describe('Where the kernel and initrd come from.'),
  })
  .describe('Boot a kernel directly (QEMU -kernel/-initrd/-append) instead of from a disk.');
export type KernelBoot = z.infer<typeof KernelBoot>;

export const Firmware = z
  .strictObject({
    uuid: z.string().optional().describe('The SMBIOS system UUID; derived from the VM name when unset.'),
    serial: z.string().optional().describe('The SMBIOS system serial number.'),
    bootloader: Bootloader.optional(),
    kernelBoot: KernelBoot.optional(),
  })
  .describe('Firmware settings.');
export type Firmware = z.infer<typeof Firmware>;

// ---- features and clock ----------------------------------------------------------------------

export const Features = z
  .strictObject({
    acpi: FeatureState.optional().describe('ACPI; on unless disabled.'),
    apic: z
      .strictObject({
        enabled: z.boolean().optional().describe('Whether the feature is on; on when unset.'),
        endOfInterrupt: z.boolean().optional().describe('Enable the paravirtual end-of-interrupt.'),
      })
      .optional()
      .describe('The APIC.'),
    smm: FeatureState.optional().describe('System Management Mode, needed for EFI Secure Boot.'),
    kvm: z
      .strictObject({ hidden: z.boolean().optional().describe('Hide the KVM hypervisor signature from the guest.') })
      .optional()
      .describe('KVM features.'),
    pvspinlock: FeatureState.optional().describe('Paravirtual spinlocks.'),
  })
  .describe('Guest-visible platform features.');
export type Features = z.infer<typeof Features>;

const timerPresent = z.boolean().optional().describe('Whether the timer is present; present when unset.');

export const Timer = z
  .strictObject({
    hpet: z
      .strictObject({ present: timerPresent, tickPolicy: z.enum(['delay', 'catchup', 'merge', 'discard']).optional().describe('What to do with missed ticks.') })
      .optional()
      .describe('The HPET timer.'),
    kvm: z.strictObject({ present: timerPresent }).optional().describe('The KVM paravirtual clock.'),
    pit: z
      .strictObject({ present: timerPresent, tickPolicy: z.enum(['delay', 'catchup', 'discard']).optional().describe('What to do with missed ticks.') })
      .optional()
      .describe('The PIT timer.'),
    rtc: z
      .strictObject({
        present: timerPresent,
        tickPolicy: z.enum(['delay', 'catchup']).optional().describe('What to do with missed ticks.'),
        track: z.enum(['guest', 'wall']).optional().describe('What the RTC tracks: guest or wall time.'),
      })
      .optional()
      .describe('The RTC timer.'),
    hyperv: z.strictObject({ present: timerPresent }).optional().describe('The Hyper-V reference time counter.'),
  })
  .describe('Timers exposed to the guest.');

export const Clock = z
  .strictObject({
    utc: z
      .strictObject({ offsetSeconds: z.int().optional().describe('Offset of the guest clock from UTC, in seconds.') })
      .optional()
      .describe('The guest clock runs in UTC (plus an offset).'),
    timezone: z.string().optional().describe('The guest clock runs in this time zone, e.g. Europe/Berlin.'),
    timer: Timer.optional(),
  })
  .superRefine(atMostOneOf(['utc', 'timezone']))
  .describe('The guest clock: utc or timezone, and its timers.');
export type Clock = z.infer<typeof Clock>;

// ---- devices ---------------------------------------------------------------------------------

export const DiskBus = z.enum(['virtio', 'sata', 'scsi', 'usb']).describe('The bus the disk is attached to: virtio, sata, scsi or usb.');
export type DiskBus = z.infer<typeof DiskBus>;

export const DiskTarget = z
  .strictObject({
    bus: DiskBus.optional(),
    readonly: z.boolean().optional().describe('Expose the disk read-only.'),
    pciAddress: z.string().optional().describe('The guest PCI address, e.g. 0000:81:01.1 (virtio bus only).'),
  })
  .describe('Attach the volume as a disk.');

export const CDRomTarget = z
  .strictObject({
    bus: DiskBus.optional(),
    readonly: z.boolean().optional().describe('Expose the CD-ROM read-only; read-only when unset.'),
    tray: z.enum(['open', 'closed']).optional().describe('Whether the tray is open or closed; closed when unset.'),
  })
  .describe('Attach the volume as a CD-ROM.');

export const LunTarget = z
  .strictObject({
    bus: DiskBus.optional(),
    readonly: z.boolean().optional().describe('Expose the LUN read-only.'),
    reservation: z.boolean().optional().describe('Allow the guest to use SCSI persistent reservations.'),
  })
  .describe('Attach the volume as a SCSI LUN (passes SCSI commands through).');

export const DiskCache = z
  .enum(['none', 'writethrough', 'writeback'])
  .describe('The host page cache mode: none (O_DIRECT), writethrough or writeback.');
export type DiskCache = z.infer<typeof DiskCache>;

export const DiskErrorPolicy = z
  .enum(['stop', 'ignore', 'report', 'enospace'])
  .describe('What happens on an I/O error: stop (pause the VM), ignore, report (to the guest) or enospace (report only out-of-space).');
export type DiskErrorPolicy = z.infer<typeof DiskErrorPolicy>;

export const DISK_DEVICE_KINDS = ['disk', 'cdrom', 'lun'] as const;

export const Disk = z
  .strictObject({
    name: dnsLabel('The disk name (a DNS label); must match the name of a volume.'),
    disk: DiskTarget.optional(),
    cdrom: CDRomTarget.optional(),
    lun: LunTarget.optional(),
    bootOrder: z.int().min(1).optional().describe('Boot priority, 1 first; disks and interfaces without one are not bootable when any has one.'),
    serial: z
      .string()
      .regex(new RegExp(DISK_SERIAL_PATTERN), DISK_SERIAL_MESSAGE)
      .optional()
      .describe('The serial number the guest sees for the disk: 1 to 256 characters of A-Z a-z 0-9 _ . + -.'),
    dedicatedIOThread: z.boolean().optional().describe('Give this disk its own I/O thread (virtio bus only).'),
    cache: DiskCache.optional(),
    shareable: z.boolean().optional().describe('The disk may be attached to several VMs at once.'),
    errorPolicy: DiskErrorPolicy.optional(),
    tag: z.string().optional().describe('A tag passed to the guest in the device role metadata.'),
  })
  .superRefine(atMostOneOf(DISK_DEVICE_KINDS))
  .describe('A disk of the VM: how a volume appears to the guest (disk, cdrom or lun; disk when none is given).');
export type Disk = z.infer<typeof Disk>;

export const InterfaceModel = z
  .enum(['virtio', 'e1000', 'e1000e', 'igb', 'ne2k_pci', 'pcnet', 'rtl8139'])
  .describe('The emulated NIC model; virtio when unset.');
export type InterfaceModel = z.infer<typeof InterfaceModel>;

export const Port = z
  .strictObject({
    name: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$/, 'must be a port name: at most 15 lowercase letters, digits and "-", starting and ending with a letter or digit')
      .optional()
      .describe('A name for the port (at most 15 lowercase letters, digits and "-").'),
    protocol: z.enum(['TCP', 'UDP']).optional().describe('TCP (the default) or UDP.'),
    port: z.int().min(1).max(65535).describe('The port forwarded to the guest.'),
  })
  .describe('A port forwarded from the pod to the guest.');
export type Port = z.infer<typeof Port>;

/** The bindings that connect a guest NIC to its network; exactly one applies to an interface. */
export const INTERFACE_BINDINGS = ['bridge', 'masquerade', 'slirp', 'passt', 'binding'] as const;
export type InterfaceBindingName = (typeof INTERFACE_BINDINGS)[number];

export const Interface = z
  .strictObject({
    name: dnsLabel('The interface name (a DNS label); must match the name of a network.'),
    model: InterfaceModel.optional(),
    bridge: z.strictObject({}).optional().describe('Bridge the guest NIC to the pod interface; the guest takes over the pod IP.'),
    masquerade: z.strictObject({}).optional().describe('NAT the guest behind the pod IP; the guest gets its address by DHCP.'),
    slirp: z.strictObject({}).optional().describe('User-mode networking in QEMU (deprecated in KubeVirt).'),
    passt: z.strictObject({}).optional().describe('User-mode networking through passt (deprecated core binding in KubeVirt).'),
    binding: z
      .strictObject({ name: z.string().min(1).describe('Name of a network binding plugin registered in the KubeVirt configuration.') })
      .optional()
      .describe('Connect through a named network binding plugin.'),
    ports: z.array(Port).optional().describe('Ports forwarded to the guest (masquerade); all ports when unset.'),
    macAddress: z.string().optional().describe('The guest MAC address, e.g. de:ad:00:00:be:af.'),
    bootOrder: z.int().min(1).optional().describe('Boot priority for network boot, 1 first.'),
    pciAddress: z.string().optional().describe('The guest PCI address of the NIC.'),
    tag: z.string().optional().describe('A tag passed to the guest in the device role metadata.'),
    state: z.enum(['up', 'down', 'absent']).optional().describe('The link state: up, down, or absent (hot-unplug).'),
  })
  .superRefine(atMostOneOf(INTERFACE_BINDINGS))
  .describe('A guest network interface and how it is bound to its network.');
export type Interface = z.infer<typeof Interface>;

export const WatchdogAction = z
  .enum(['poweroff', 'reset', 'shutdown'])
  .describe('What happens when the watchdog expires: poweroff, reset or shutdown; reset when unset.');

export const Watchdog = z
  .strictObject({
    name: dnsLabel('The watchdog name (a DNS label).'),
    i6300esb: z
      .strictObject({ action: WatchdogAction.optional() })
      .optional()
      .describe('An Intel 6300ESB watchdog on the PCI bus.'),
  })
  .describe('A hardware watchdog.');
export type Watchdog = z.infer<typeof Watchdog>;

export const Input = z
  .strictObject({
    name: dnsLabel('The input device name (a DNS label).'),
    type: z.enum(['tablet', 'keyboard']).describe('The device type: tablet or keyboard.'),
    bus: z.enum(['usb', 'virtio']).optional().describe('The bus: usb or virtio.'),
  })
  .describe('An input device.');

export const HostDevice = z
  .strictObject({
    name: dnsLabel('The device name in the VM (a DNS label).'),
    deviceName: z.string().optional().describe('The resource name a device plugin advertises for the host device.'),
    tag: z.string().optional().describe('A tag passed to the guest in the device role metadata.'),
  })
  .describe('A host PCI or mediated device passed through to the guest.');
export type HostDevice = z.infer<typeof HostDevice>;

export const GPU = z
  .strictObject({
    name: dnsLabel('The device name in the VM (a DNS label).'),
    deviceName: z.string().optional().describe('The resource name a device plugin advertises for the GPU.'),
    tag: z.string().optional().describe('A tag passed to the guest in the device role metadata.'),
  })
  .describe('A host GPU (or vGPU) passed through to the guest.');
export type GPU = z.infer<typeof GPU>;

export const Devices = z
  .strictObject({
    disks: namedList(Disk).optional().describe('The disks of the VM, each backed by the volume of the same name.'),
    interfaces: namedList(Interface).optional().describe('The network interfaces, each connected to the network of the same name.'),
    inputs: z.array(Input).optional().describe('Input devices.'),
    watchdog: Watchdog.optional(),
    rng: z.strictObject({}).optional().describe('A virtio RNG device fed from the host\'s /dev/urandom.'),
    autoattachPodInterface: z.boolean().optional().describe('Add an interface on the pod network when none is given; true when unset.'),
    autoattachGraphicsDevice: z.boolean().optional().describe('Add a VGA device and VNC server; true when unset.'),
    autoattachSerialConsole: z.boolean().optional().describe('Add a serial console; true when unset.'),
    autoattachMemBalloon: z.boolean().optional().describe('Add a virtio memory balloon device; true when unset.'),
    autoattachInputDevice: z.boolean().optional().describe('Add a USB tablet input device.'),
    logSerialConsole: z.boolean().optional().describe('Copy the serial console output into the launcher\'s log.'),
    blockMultiQueue: z.boolean().optional().describe('Give virtio disks one queue per vCPU.'),
    networkInterfaceMultiqueue: z.boolean().optional().describe('Give virtio NICs one queue pair per vCPU.'),
    useVirtioTransitional: z.boolean().optional().describe('Use virtio-transitional devices so older guests (e.g. CentOS 6) find them.'),
    hostDevices: namedList(HostDevice).optional().describe('Host devices passed through.'),
    gpus: namedList(GPU).optional().describe('GPUs passed through.'),
  })
  .describe('The devices of the VM.');
export type Devices = z.infer<typeof Devices>;

export const DomainSpec = z
  .strictObject({
    resources: DomainResources.optional(),
    cpu: CPU.optional(),
    memory: Memory.optional(),
    machine: Machine.optional(),
    firmware: Firmware.optional(),
    clock: Clock.optional(),
    features: Features.optional(),
    devices: Devices,
    ioThreadsPolicy: z
      .enum(['shared', 'auto', 'supplementalPool'])
      .optional()
      .describe('How disk I/O threads are allocated: shared (one for all), auto (a pool), or supplementalPool.'),
  })
  .describe('The virtual hardware of the VM.');
export type DomainSpec = z.infer<typeof DomainSpec>;
