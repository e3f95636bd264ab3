// The part of a VirtualMachineInstance the launcher reads, typed structurally and loosely (plain
// strings where the API has enums): the launcher gets the VMI as JSON from a file and must turn a
// value it does not support into an error naming the field, not trust that admission caught it.
// The zod schemas in runtime/api are the API's source of truth; these shapes are a widening of
// them, and the compiler checks that (apiVmiIsLauncherVmi below), so an API change that the
// launcher would misread fails the build. Type-only: the launcher loads no schema at run time.
import type { VirtualMachineInstance } from '../runtime/api/index.js';
import { DNS_LABEL_MESSAGE, isDnsLabel } from '../runtime/api/names.js';

export type QuantityValue = string | number;

export interface LauncherDisk {
  name: string;
  disk?: { bus?: string; readonly?: boolean; pciAddress?: string };
  cdrom?: { bus?: string; readonly?: boolean; tray?: string };
  lun?: { bus?: string; readonly?: boolean };
  bootOrder?: number;
  serial?: string;
  cache?: string;
  errorPolicy?: string;
  dedicatedIOThread?: boolean;
  shareable?: boolean;
}

export interface LauncherInterface {
  name: string;
  model?: string;
  bridge?: object;
  masquerade?: object;
  slirp?: object;
  passt?: object;
  binding?: { name: string };
  ports?: { name?: string; protocol?: string; port: number }[];
  macAddress?: string;
  bootOrder?: number;
  pciAddress?: string;
  state?: string;
}

export interface LauncherDomain {
  resources?: { requests?: Record<string, QuantityValue>; limits?: Record<string, QuantityValue> };
  cpu?: { cores?: number; sockets?: number; threads?: number; model?: string; features?: { name: string; policy?: string }[] };
  memory?: { guest?: QuantityValue; hugepages?: { pageSize?: string } };
  machine?: { type?: string };
  firmware?: {
    uuid?: string;
    serial?: string;
    bootloader?: { bios?: { useSerial?: boolean }; efi?: { secureBoot?: boolean; persistent?: boolean } };
    kernelBoot?: { kernelArgs?: string; container?: { image: string; kernelPath?: string; initrdPath?: string } };
  };
  clock?: { utc?: { offsetSeconds?: number }; timezone?: string };
  features?: { acpi?: { enabled?: boolean } };
  devices: {
    disks?: LauncherDisk[];
    interfaces?: LauncherInterface[];
    watchdog?: { name: string; i6300esb?: { action?: string } };
    rng?: object;
    autoattachPodInterface?: boolean;
    autoattachGraphicsDevice?: boolean;
    autoattachSerialConsole?: boolean;
    autoattachMemBalloon?: boolean;
    logSerialConsole?: boolean;
    hostDevices?: unknown[];
    gpus?: unknown[];
  };
}

export interface LauncherVolume {
  name: string;
  containerDisk?: { image: string; path?: string };
  cloudInitNoCloud?: {
    userData?: string;
    userDataBase64?: string;
    secretRef?: { name?: string };
    networkData?: string;
    networkDataBase64?: string;
    networkDataSecretRef?: { name?: string };
  };
  emptyDisk?: { capacity: QuantityValue };
  persistentVolumeClaim?: { claimName: string; readOnly?: boolean };
  ephemeral?: { persistentVolumeClaim?: { claimName: string; readOnly?: boolean } };
  configMap?: object;
  secret?: object;
}

export interface LauncherVmi {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; uid?: string; annotations?: Record<string, string> };
  spec: {
    domain: LauncherDomain;
    volumes?: LauncherVolume[];
    networks?: { name: string; pod?: object; multus?: object }[];
    hostname?: string;
    subdomain?: string;
    terminationGracePeriodSeconds?: number;
    startStrategy?: string;
  };
}

/** Every named API VMI is a LauncherVmi (a compile-time check; the function is never called). */
export function apiVmiIsLauncherVmi(vmi: VirtualMachineInstance & { metadata: { name: string } }): LauncherVmi {
  return vmi;
}

/** Reads a VMI JSON document, checking only the shape the launcher cannot start without. */
export function parseLauncherVmi(text: string, source: string): LauncherVmi {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${source}: not JSON: ${(err as Error).message}`, { cause: err });
  }
  return checkLauncherVmi(value, source);
}

/** Checks a VMI value for the shape the launcher cannot start without. */
export function checkLauncherVmi(value: unknown, source: string): LauncherVmi {
  const vmi = value as Partial<LauncherVmi> | null;
  if (!vmi || typeof vmi !== 'object') throw new Error(`${source}: not a VirtualMachineInstance object`);
  if (!vmi.metadata?.name) throw new Error(`${source}: metadata.name is required`);
  if (!vmi.spec?.domain?.devices) throw new Error(`${source}: spec.domain.devices is required`);
  checkNames(vmi as LauncherVmi, source);
  return vmi as LauncherVmi;
}

/**
 * Volume, disk, interface and network names become file and socket names (image copies, overlays,
 * passt) and QEMU ids, so each must be a DNS label before anything builds a path from one.
 * Admission checks the same, but the launcher may be handed a VMI nobody admitted.
 */
function checkNames(vmi: LauncherVmi, source: string): void {
  const named: Array<[string, unknown]> = [
    ['spec.volumes', vmi.spec.volumes],
    ['spec.domain.devices.disks', vmi.spec.domain.devices.disks],
    ['spec.domain.devices.interfaces', vmi.spec.domain.devices.interfaces],
    ['spec.networks', vmi.spec.networks],
  ];
  for (const [field, list] of named) {
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw new Error(`${source}: ${field} must be a list`);
    list.forEach((item: unknown, i) => {
      const name = (item as { name?: unknown } | null)?.name;
      if (!isDnsLabel(name)) throw new Error(`${source}: ${field}[${i}].name: ${JSON.stringify(name ?? null)} ${DNS_LABEL_MESSAGE}`);
    });
  }
}
