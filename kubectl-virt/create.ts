// create vm / instancetype / preference: manifests printed as YAML for `kubectl apply -f -` and
// GitOps, with virtctl's flags and defaults (run strategy Always, grace period 180 s, a random
// name, volumes as "src:...,name:...,bootorder:N"). What is printed is validated with the API's
// zod schemas first, so a manifest this prints is one kubevm accepts.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import type { z } from 'zod';
import {
  INSTANCETYPE_API_VERSION,
  KUBEVIRT_API_VERSION,
  PreferredCPUTopology,
  RunStrategy,
  VirtualMachineClusterInstancetypeSchema,
  VirtualMachineClusterPreferenceSchema,
  VirtualMachineInstancetypeSchema,
  VirtualMachinePreferenceSchema,
  VirtualMachineSchema,
  formatIssues,
} from '../runtime/api/index.js';
import { UserError } from './errors.js';

/** "src:img:tag,name:root,bootorder:1" → { src: 'img:tag', name: 'root', bootorder: '1' }; a bare value is src. */
export function parseVolumeParams(flag: string, text: string, allowed: readonly string[]): Record<string, string> {
  const params: Record<string, string> = {};
  for (const part of text.split(',')) {
    const colon = part.indexOf(':');
    const key = colon > 0 ? part.slice(0, colon) : '';
    if (!allowed.includes(key)) {
      if (Object.keys(params).length === 0 && !text.includes(',') && colon <= 0) return { src: text };
      throw new UserError(`--${flag}: unknown parameter "${key || part}" (supported: ${allowed.join(', ')}; e.g. --${flag}=src:NAME,name:disk0,bootorder:1)`);
    }
    params[key] = part.slice(colon + 1);
  }
  return params;
}

/** A 5-letter suffix like Kubernetes' rand.String (consonants and digits). */
function randomSuffix(): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  return [...randomBytes(5)].map((b) => alphabet[b % alphabet.length]).join('');
}

/** "[kind/]name" with the kinds' singular names as virtctl spells them. */
function splitPrefixed(flag: string, text: string, kinds: Record<string, string>): { kind?: string; name: string } {
  const slash = text.indexOf('/');
  if (slash === -1) return { name: text };
  const prefix = text.slice(0, slash);
  const kind = kinds[prefix.toLowerCase()];
  if (!kind) throw new UserError(`--${flag}: unknown kind "${prefix}" (supported: ${Object.keys(kinds).join(', ')})`);
  return { kind, name: text.slice(slash + 1) };
}

function validated<S extends z.ZodType>(schema: S, value: unknown, kind: string): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new UserError(`the ${kind} would not be valid: ${formatIssues(parsed.error.issues, kind).join('; ')}`);
  return parsed.data;
}

export interface CreateVmFlags {
  name?: string;
  runStrategy: string;
  terminationGracePeriod: number;
  instancetype?: string;
  preference?: string;
  volumeContainerdisk: string[];
  volumePvc: string[];
  cloudInitUserData?: string;
  cloudInitUserDataFile?: string;
  cloudInitNetworkData?: string;
  memory?: string;
}

interface Volume {
  name: string;
  [source: string]: unknown;
}

/** The VirtualMachine manifest of `create vm`. */
export function createVm(flags: CreateVmFlags): z.infer<typeof VirtualMachineSchema> {
  const name = flags.name ?? `vm-${randomSuffix()}`;
  if (!RunStrategy.safeParse(flags.runStrategy).success) {
    throw new UserError(`--run-strategy: invalid RunStrategy "${flags.runStrategy}", supported values are: ${RunStrategy.options.join(', ')}`);
  }
  if (flags.memory && flags.instancetype) throw new UserError('--memory and --instancetype exclude each other: the instancetype provides the memory');
  const volumes: Volume[] = [];
  const disks: Array<{ name: string; disk: { bus: 'virtio' }; bootOrder?: number }> = [];
  const bootOrders = new Set<number>();
  const addVolume = (flag: string, volume: Volume, bootorder: string | undefined) => {
    if (volumes.some((v) => v.name === volume.name)) throw new UserError(`--${flag}: there is already a volume named "${volume.name}"`);
    let bootOrder: number | undefined;
    if (bootorder !== undefined) {
      bootOrder = Number(bootorder);
      if (!Number.isInteger(bootOrder) || bootOrder < 1) throw new UserError(`--${flag}: bootorder must be an integer greater than 0, not "${bootorder}"`);
      if (bootOrders.has(bootOrder)) throw new UserError(`--${flag}: bootorder ${bootOrder} was given to two volumes`);
      bootOrders.add(bootOrder);
    }
    volumes.push(volume);
    // Each volume gets its disk here: kubevm adds none for a volume that names no disk.
    disks.push({ name: volume.name, disk: { bus: 'virtio' }, ...(bootOrder !== undefined ? { bootOrder } : {}) });
  };
  flags.volumeContainerdisk.forEach((text, i) => {
    const p = parseVolumeParams('volume-containerdisk', text, ['src', 'name', 'bootorder']);
    if (!p['src']) throw new UserError('--volume-containerdisk: src must be given (e.g. --volume-containerdisk=src:quay.io/containerdisks/fedora:41)');
    addVolume('volume-containerdisk', { name: p['name'] ?? `${name}-containerdisk-${i}`, containerDisk: { image: p['src'] } }, p['bootorder']);
  });
  flags.volumePvc.forEach((text) => {
    const p = parseVolumeParams('volume-pvc', text, ['src', 'name', 'bootorder']);
    if (!p['src']) throw new UserError('--volume-pvc: src must be given (e.g. --volume-pvc=src:my-pvc)');
    addVolume('volume-pvc', { name: p['name'] ?? p['src'], persistentVolumeClaim: { claimName: p['src'] } }, p['bootorder']);
  });
  if (flags.cloudInitUserData !== undefined && flags.cloudInitUserDataFile !== undefined) {
    throw new UserError('--cloud-init-user-data and --cloud-init-user-data-file exclude each other');
  }
  const cloudInit: Record<string, string> = {};
  if (flags.cloudInitUserData !== undefined) cloudInit['userDataBase64'] = flags.cloudInitUserData;
  if (flags.cloudInitUserDataFile !== undefined) {
    try {
      cloudInit['userData'] = readFileSync(flags.cloudInitUserDataFile, 'utf8');
    } catch (err) {
      throw new UserError(`--cloud-init-user-data-file: cannot read ${flags.cloudInitUserDataFile}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (flags.cloudInitNetworkData !== undefined) cloudInit['networkDataBase64'] = flags.cloudInitNetworkData;
  if (Object.keys(cloudInit).length > 0) addVolume('cloud-init-user-data', { name: 'cloudinitdisk', cloudInitNoCloud: cloudInit }, undefined);

  const instancetype = flags.instancetype
    ? splitPrefixed('instancetype', flags.instancetype, { virtualmachineinstancetype: 'VirtualMachineInstancetype', virtualmachineclusterinstancetype: 'VirtualMachineClusterInstancetype' })
    : undefined;
  const preference = flags.preference
    ? splitPrefixed('preference', flags.preference, { virtualmachinepreference: 'VirtualMachinePreference', virtualmachineclusterpreference: 'VirtualMachineClusterPreference' })
    : undefined;
  const vm = {
    apiVersion: KUBEVIRT_API_VERSION,
    kind: 'VirtualMachine',
    metadata: { name },
    spec: {
      runStrategy: flags.runStrategy,
      ...(instancetype ? { instancetype } : {}),
      ...(preference ? { preference } : {}),
      template: {
        spec: {
          terminationGracePeriodSeconds: flags.terminationGracePeriod,
          domain: {
            ...(flags.memory ? { memory: { guest: flags.memory } } : {}),
            devices: disks.length > 0 ? { disks } : {},
          },
          ...(volumes.length > 0 ? { volumes } : {}),
        },
      },
    },
  };
  return validated(VirtualMachineSchema, vm, 'VirtualMachine');
}

export interface CreateInstancetypeFlags {
  name?: string;
  namespaced?: boolean;
  cpu: number;
  memory: string;
}

export function createInstancetype(flags: CreateInstancetypeFlags): unknown {
  const kind = flags.namespaced ? 'VirtualMachineInstancetype' : 'VirtualMachineClusterInstancetype';
  const schema = flags.namespaced ? VirtualMachineInstancetypeSchema : VirtualMachineClusterInstancetypeSchema;
  if (!Number.isInteger(flags.cpu) || flags.cpu < 1) throw new UserError(`--cpu: the number of vCPUs must be an integer of at least 1, not "${flags.cpu}"`);
  const object = {
    apiVersion: INSTANCETYPE_API_VERSION,
    kind,
    metadata: { name: flags.name ?? `instancetype-${randomSuffix()}` },
    spec: { cpu: { guest: flags.cpu }, memory: { guest: flags.memory } },
  };
  return validated(schema, object, kind);
}

export interface CreatePreferenceFlags {
  name?: string;
  namespaced?: boolean;
  cpuTopology?: string;
  machineType?: string;
  volumeStorageClass?: string;
}

export function createPreference(flags: CreatePreferenceFlags): unknown {
  const kind = flags.namespaced ? 'VirtualMachinePreference' : 'VirtualMachineClusterPreference';
  const schema = flags.namespaced ? VirtualMachinePreferenceSchema : VirtualMachineClusterPreferenceSchema;
  if (flags.cpuTopology !== undefined && !PreferredCPUTopology.safeParse(flags.cpuTopology).success) {
    throw new UserError(`--cpu-topology: invalid value "${flags.cpuTopology}", supported values are: ${PreferredCPUTopology.options.join(', ')}`);
  }
  const object = {
    apiVersion: INSTANCETYPE_API_VERSION,
    kind,
    metadata: { name: flags.name ?? `preference-${randomSuffix()}` },
    spec: {
      ...(flags.cpuTopology ? { cpu: { preferredCPUTopology: flags.cpuTopology } } : {}),
      ...(flags.machineType ? { machine: { preferredMachineType: flags.machineType } } : {}),
      ...(flags.volumeStorageClass ? { volumes: { preferredStorageClassName: flags.volumeStorageClass } } : {}),
    },
  };
  return validated(schema, object, kind);
}

/** YAML as `kubectl get -o yaml` prints it. */
export const toYaml = (object: unknown): string => YAML.stringify(object, { lineWidth: 0 });
