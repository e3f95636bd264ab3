// Instancetype and preference expansion (shared by the controller, which creates VMIs from it, and
// the api-server's expand-spec and admission webhook): the VMI spec a VM gets is its template with the
// instancetype's resources imposed and the preference's defaults filled in (KubeVirt's
// instancetype.kubevirt.io semantics). An instancetype owns what it sets: a template that sets the
// same field is a conflict, named by path, not a silent override. A preference only fills gaps.
import type {
  InstancetypeMatcher,
  ObjectMeta,
  VirtualMachineInstanceSpec,
  VirtualMachineInstancetypeSpec as InstancetypeSpec,
  VirtualMachinePreferenceSpec as PreferenceSpec,
} from './api/index.js';

type PreferredCPUTopology = NonNullable<NonNullable<PreferenceSpec['cpu']>['preferredCPUTopology']>;

export const INSTANCETYPE_KINDS = ['VirtualMachineInstancetype', 'VirtualMachineClusterInstancetype'] as const;
export const PREFERENCE_KINDS = ['VirtualMachinePreference', 'VirtualMachineClusterPreference'] as const;
export type InstancetypeKind = (typeof INSTANCETYPE_KINDS)[number];
export type PreferenceKind = (typeof PREFERENCE_KINDS)[number];

const kindAliases: Record<string, InstancetypeKind | PreferenceKind> = {
  virtualmachineinstancetype: 'VirtualMachineInstancetype',
  virtualmachineinstancetypes: 'VirtualMachineInstancetype',
  virtualmachineclusterinstancetype: 'VirtualMachineClusterInstancetype',
  virtualmachineclusterinstancetypes: 'VirtualMachineClusterInstancetype',
  virtualmachinepreference: 'VirtualMachinePreference',
  virtualmachinepreferences: 'VirtualMachinePreference',
  virtualmachineclusterpreference: 'VirtualMachineClusterPreference',
  virtualmachineclusterpreferences: 'VirtualMachineClusterPreference',
};

/** Where a VM recorded the snapshot of its instancetype or preference (status.instancetypeRef / preferenceRef). */
export interface RecordedRevisionRef {
  name?: string | undefined;
  kind?: string | undefined;
  controllerRevisionRef?: { name?: string | undefined } | undefined;
}

/**
 * The ControllerRevision a VM's instancetype or preference expands from, as KubeVirt's
 * revisionFinder picks it: `spec.*.revisionName` when set, else the revision recorded in status
 * for this same matcher (name and kind; a changed matcher takes a new snapshot); undefined when
 * there is none, and the current object is used.
 */
export function pinnedRevisionName(matcher: InstancetypeMatcher, kind: string, recorded: RecordedRevisionRef | undefined): string | undefined {
  if (matcher.revisionName) return matcher.revisionName;
  const sameMatcher = recorded?.name === matcher.name && recorded?.kind === kind;
  return sameMatcher ? recorded?.controllerRevisionRef?.name || undefined : undefined;
}

/** The matcher's kind, KubeVirt's default being the cluster-scoped one. */
export function instancetypeKindOf(matcher: InstancetypeMatcher): InstancetypeKind {
  const kind = kindAliases[(matcher.kind ?? 'VirtualMachineClusterInstancetype').toLowerCase()];
  if (kind !== 'VirtualMachineInstancetype' && kind !== 'VirtualMachineClusterInstancetype') {
    throw new ExpansionError([{ path: 'spec.instancetype.kind', message: `unknown instancetype kind ${JSON.stringify(matcher.kind)}; use VirtualMachineInstancetype or VirtualMachineClusterInstancetype` }]);
  }
  return kind;
}

export function preferenceKindOf(matcher: InstancetypeMatcher): PreferenceKind {
  const kind = kindAliases[(matcher.kind ?? 'VirtualMachineClusterPreference').toLowerCase()];
  if (kind !== 'VirtualMachinePreference' && kind !== 'VirtualMachineClusterPreference') {
    throw new ExpansionError([{ path: 'spec.preference.kind', message: `unknown preference kind ${JSON.stringify(matcher.kind)}; use VirtualMachinePreference or VirtualMachineClusterPreference` }]);
  }
  return kind;
}

export interface Conflict {
  /** The VM field that conflicts, e.g. spec.template.spec.domain.cpu.sockets. */
  path: string;
  message: string;
}

/** Expansion cannot proceed: the VM must change (or the instancetype). */
export class ExpansionError extends Error {
  override readonly name = 'ExpansionError';
  constructor(
    readonly conflicts: Conflict[],
    /** The Failure condition's reason. */
    readonly reason = 'InstancetypeConflict',
  ) {
    super(conflicts.map((conflict) => `${conflict.path}: ${conflict.message}`).join('; '));
  }
}

export interface NamedSpec<S> {
  kind: string;
  name: string;
  spec: S;
}

export interface Expansion {
  spec: VirtualMachineInstanceSpec;
  /** Annotations the instancetype and preference add to the VMI (the VM's own win). */
  annotations: Record<string, string>;
}

const TEMPLATE = 'spec.template.spec';

function topology(vcpus: number, preferred: PreferredCPUTopology | undefined): { sockets: number; cores: number; threads: number } {
  // v1beta1 accepts both spellings: `cores` and the older `preferCores`.
  switch (preferred ?? 'sockets') {
    case 'cores':
    case 'preferCores':
    case 'any':
    case 'preferAny':
      return { sockets: 1, cores: vcpus, threads: 1 };
    case 'threads':
    case 'preferThreads':
      return { sockets: 1, cores: 1, threads: vcpus };
    case 'spread':
    case 'preferSpread':
      // KubeVirt's default spread: sockets and cores in a 1:2 ratio where the count allows it.
      return vcpus % 2 === 0 ? { sockets: vcpus / 2, cores: 2, threads: 1 } : { sockets: vcpus, cores: 1, threads: 1 };
    case 'sockets':
    case 'preferSockets':
      return { sockets: vcpus, cores: 1, threads: 1 };
  }
}

export function instancetypeConflicts(template: VirtualMachineInstanceSpec, instancetype: InstancetypeSpec, kind: string, name: string): Conflict[] {
  const conflicts: Conflict[] = [];
  const domain = template.domain;
  const conflict = (path: string, field: string) =>
    conflicts.push({ path: `${TEMPLATE}.${path}`, message: `conflicts with ${field} of ${kind} ${name}; remove it from the VM or choose another instancetype` });
  for (const field of ['sockets', 'cores', 'threads', 'model', 'dedicatedCpuPlacement', 'isolateEmulatorThread', 'realtime', 'maxSockets'] as const) {
    if (domain.cpu?.[field] !== undefined) conflict(`domain.cpu.${field}`, 'spec.cpu');
  }
  if (domain.resources?.requests?.['cpu'] !== undefined) conflict('domain.resources.requests.cpu', 'spec.cpu.guest');
  if (domain.resources?.limits?.['cpu'] !== undefined) conflict('domain.resources.limits.cpu', 'spec.cpu.guest');
  if (domain.memory?.guest !== undefined) conflict('domain.memory.guest', 'spec.memory.guest');
  if (domain.memory?.hugepages !== undefined && instancetype.memory.hugepages !== undefined) conflict('domain.memory.hugepages', 'spec.memory.hugepages');
  if (domain.memory?.maxGuest !== undefined && instancetype.memory.maxGuest !== undefined) conflict('domain.memory.maxGuest', 'spec.memory.maxGuest');
  if (domain.resources?.requests?.['memory'] !== undefined) conflict('domain.resources.requests.memory', 'spec.memory.guest');
  if (domain.resources?.limits?.['memory'] !== undefined) conflict('domain.resources.limits.memory', 'spec.memory.guest');
  if (instancetype.ioThreadsPolicy !== undefined && domain.ioThreadsPolicy !== undefined) conflict('domain.ioThreadsPolicy', 'spec.ioThreadsPolicy');
  if (instancetype.nodeSelector !== undefined && template.nodeSelector !== undefined) conflict('nodeSelector', 'spec.nodeSelector');
  if (instancetype.schedulerName !== undefined && template.schedulerName !== undefined) conflict('schedulerName', 'spec.schedulerName');
  return conflicts;
}

/**
 * The VMI spec for a VM template with an optional instancetype and preference. Pure: the caller
 * resolves the objects (from their snapshot, see revisions.ts). Throws ExpansionError listing every
 * conflict at once, so a user fixes them in one edit.
 */
export function expandTemplate(
  template: VirtualMachineInstanceSpec,
  templateMetadata: ObjectMeta | undefined,
  instancetype: NamedSpec<InstancetypeSpec> | undefined,
  preference: NamedSpec<PreferenceSpec> | undefined,
): Expansion {
  const spec = structuredClone(template);
  spec.domain.devices ??= {};
  const annotations: Record<string, string> = {};
  const own = templateMetadata?.annotations ?? {};

  if (instancetype) {
    const it = instancetype.spec;
    const conflicts = instancetypeConflicts(template, it, instancetype.kind, instancetype.name);
    if (conflicts.length > 0) throw new ExpansionError(conflicts);
    const cpu = topology(it.cpu.guest, preference?.spec.cpu?.preferredCPUTopology);
    spec.domain.cpu = {
      ...spec.domain.cpu,
      ...cpu,
      ...(it.cpu.model !== undefined ? { model: it.cpu.model } : {}),
      ...(it.cpu.dedicatedCPUPlacement !== undefined ? { dedicatedCpuPlacement: it.cpu.dedicatedCPUPlacement } : {}),
      ...(it.cpu.isolateEmulatorThread !== undefined ? { isolateEmulatorThread: it.cpu.isolateEmulatorThread } : {}),
      ...(it.cpu.realtime !== undefined ? { realtime: it.cpu.realtime } : {}),
      ...(it.cpu.maxSockets !== undefined ? { maxSockets: it.cpu.maxSockets } : {}),
    };
    spec.domain.memory = {
      ...spec.domain.memory,
      guest: it.memory.guest,
      ...(it.memory.hugepages !== undefined ? { hugepages: it.memory.hugepages } : {}),
      ...(it.memory.maxGuest !== undefined ? { maxGuest: it.memory.maxGuest } : {}),
    };
    if (it.ioThreadsPolicy !== undefined) spec.domain.ioThreadsPolicy = it.ioThreadsPolicy;
    if (it.nodeSelector !== undefined) spec.nodeSelector = { ...it.nodeSelector };
    if (it.schedulerName !== undefined) spec.schedulerName = it.schedulerName;
    for (const [key, value] of Object.entries(it.annotations ?? {})) if (!(key in own)) annotations[key] = value;
  }

  if (preference) {
    const pref = preference.spec;
    const devices = spec.domain.devices;
    for (const disk of devices.disks ?? []) {
      if (disk.cdrom) {
        if (pref.devices?.preferredCdromBus && !disk.cdrom.bus) disk.cdrom.bus = pref.devices.preferredCdromBus;
      } else if (!disk.lun && pref.devices?.preferredDiskBus) {
        disk.disk = { ...disk.disk, bus: disk.disk?.bus ?? pref.devices.preferredDiskBus };
      }
    }
    for (const iface of devices.interfaces ?? []) {
      if (pref.devices?.preferredInterfaceModel && iface.model === undefined) iface.model = pref.devices.preferredInterfaceModel;
    }
    if (pref.devices?.preferredRng !== undefined && devices.rng === undefined) devices.rng = {};
    if (pref.devices?.preferredAutoattachSerialConsole !== undefined && devices.autoattachSerialConsole === undefined) {
      devices.autoattachSerialConsole = pref.devices.preferredAutoattachSerialConsole;
    }
    if (pref.machine?.preferredMachineType && !spec.domain.machine?.type) spec.domain.machine = { ...spec.domain.machine, type: pref.machine.preferredMachineType };
    if (!spec.domain.firmware?.bootloader) {
      if (pref.firmware?.preferredUseEfi) {
        const secureBoot = pref.firmware.preferredUseSecureBoot;
        spec.domain.firmware = { ...spec.domain.firmware, bootloader: { efi: secureBoot !== undefined ? { secureBoot } : {} } };
      } else if (pref.firmware?.preferredUseBios) {
        spec.domain.firmware = { ...spec.domain.firmware, bootloader: { bios: {} } };
      }
    }
    if (pref.preferredTerminationGracePeriodSeconds !== undefined && spec.terminationGracePeriodSeconds === undefined) {
      spec.terminationGracePeriodSeconds = pref.preferredTerminationGracePeriodSeconds;
    }
    for (const [key, value] of Object.entries(pref.annotations ?? {})) if (!(key in own) && !(key in annotations)) annotations[key] = value;
  }
  return { spec, annotations };
}
