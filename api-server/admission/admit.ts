// The validating admission webhook: one AdmissionReview in, one answer out. Every kind is first
// judged by its zod schema (the same one the CRD is generated from, so the messages name the field
// path and the accepted values), then by the rules a schema cannot say (rules.ts) and those that
// need the cluster (does the VMI exist, may it migrate, does the instancetype exist).
// Never throws: a malformed review or a failing lookup is an answer too (see ADR 0008).
import { z } from 'zod';
import {
  API_RESOURCES,
  KubeVirtSchema,
  VirtualMachineInstanceMigrationSchema,
  VirtualMachineInstanceSchema,
  VirtualMachineInstancetypeSpec,
  VirtualMachineSchema,
  formatIssues,
} from '../../runtime/api/index.js';
import type { KubeVirt, PermittedHostDevices, VirtualMachine, VirtualMachineInstance, VirtualMachineInstanceSpec } from '../../runtime/api/index.js';
import { jsonEqual } from '../../runtime/json.js';
import type { DeviceHolder, Findings } from './rules.js';
import { checkMemoryOvercommit, checkPermittedDevices, checkVmiSpec, declaresMemoryOvercommit, emptyFindings } from './rules.js';
import { ExpansionError, instancetypeConflicts, instancetypeKindOf, preferenceKindOf } from '../../runtime/instancetype.js';
import type { InstancetypeMatcher } from '../../runtime/api/index.js';
import type { GuardContext, RequestUser } from './guards.js';
import { checkHostDeviceUse, judgeLauncherEntry, launcherEntryVerb, requestedDeviceNames } from './guards.js';
import type { EvictionContext } from './eviction.js';
import { admitEviction } from './eviction.js';

export const AdmissionReview = z.object({
  apiVersion: z.literal('admission.k8s.io/v1'),
  kind: z.literal('AdmissionReview'),
  request: z.object({
    uid: z.string().min(1),
    kind: z.object({ group: z.string(), version: z.string(), kind: z.string() }),
    resource: z.object({ group: z.string(), version: z.string(), resource: z.string() }).optional(),
    subResource: z.string().optional(),
    operation: z.enum(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']),
    namespace: z.string().optional(),
    name: z.string().optional(),
    userInfo: z
      .object({
        username: z.string().optional(),
        uid: z.string().optional(),
        groups: z.array(z.string()).optional(),
        extra: z.record(z.string(), z.array(z.string())).optional(),
      })
      .optional(),
    object: z.unknown().optional(),
    oldObject: z.unknown().optional(),
    dryRun: z.boolean().optional(),
  }),
});
export type AdmissionReview = z.infer<typeof AdmissionReview>;
export type AdmissionRequest = AdmissionReview['request'];

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; reason: string; message: string };
  warnings?: string[];
  /** The mutating webhook's changes: a base64-encoded JSONPatch. */
  patchType?: 'JSONPatch';
  patch?: string;
}

/** What the admitters read from the cluster; lookups may fail (the answer then says so). */
export interface AdmissionContext extends GuardContext, EvictionContext {
  /** The spec of an instancetype or preference (by kind), undefined when it does not exist. */
  findInstancetypeSpec(kind: string, namespace: string, name: string): Promise<unknown>;
  /** The KubeVirt CR's spec.configuration.permittedHostDevices, read when a spec asks for a device. */
  permittedHostDevices(): Promise<PermittedHostDevices | undefined>;
  /** The KubeVirt CR's spec.configuration.developerConfiguration.memoryOvercommit, read when a spec states both guest memory and its request. */
  memoryOvercommit(): Promise<number | undefined>;
  /** The name of a migration of this VMI that has not ended, if any (only one at a time). */
  activeMigrationFor(namespace: string, vmiName: string): Promise<string | undefined>;
  /** How many KubeVirt CRs exist (only one may). */
  kubevirtCount(): Promise<number>;
  /** Service accounts of kubevm itself, which may change a running VMI's spec (stop's grace period). */
  isKubevmComponent(username: string): boolean;
}

const MAX_MESSAGES = 20;

export function deny(uid: string, messages: readonly string[], warnings: readonly string[] = []): AdmissionResponse {
  const shown = messages.slice(0, MAX_MESSAGES);
  const more = messages.length > MAX_MESSAGES ? `; and ${messages.length - MAX_MESSAGES} more` : '';
  return {
    uid,
    allowed: false,
    status: { code: 422, reason: 'Invalid', message: shown.join('; ') + more },
    ...(warnings.length > 0 ? { warnings: [...warnings] } : {}),
  };
}

export function allow(uid: string, warnings: readonly string[] = []): AdmissionResponse {
  return { uid, allowed: true, ...(warnings.length > 0 ? { warnings: [...warnings] } : {}) };
}

function answer(uid: string, findings: Findings): AdmissionResponse {
  return findings.denials.length > 0 ? deny(uid, findings.denials, findings.warnings) : allow(uid, findings.warnings);
}

function schemaOf(kind: string): z.ZodType | undefined {
  return API_RESOURCES.find((r) => r.names.kind === kind)?.schema;
}

function withoutStatus(object: unknown): unknown {
  if (typeof object !== 'object' || object === null || Array.isArray(object)) return object;
  const { status: _status, ...rest } = object as Record<string, unknown>;
  return rest;
}

const specOf = (object: unknown): unknown => (typeof object === 'object' && object !== null ? (object as { spec?: unknown }).spec : undefined);

/** What every instancetype sets (cpu.guest and memory.guest are required): the conflicts that hold whatever it is. */
const anyInstancetype: VirtualMachineInstancetypeSpec = { cpu: { guest: 1 }, memory: { guest: '1Mi' } };

/** Read only for objects with devices: an admin's change to the list applies to the next review, with no cache to wait for. */
async function permittedFor(holder: DeviceHolder, context: AdmissionContext): Promise<PermittedHostDevices | undefined> {
  return (holder.hostDevices?.length ?? 0) + (holder.gpus?.length ?? 0) > 0 ? context.permittedHostDevices() : undefined;
}

/** The guest memory a spec states may exceed its request only as far as the KubeVirt CR allows (read only when both are stated). */
async function checkOvercommit(spec: VirtualMachineInstanceSpec, at: string, context: AdmissionContext, findings: Findings): Promise<void> {
  if (declaresMemoryOvercommit(spec)) checkMemoryOvercommit(spec, at, await context.memoryOvercommit(), findings);
}

function requestUser(request: AdmissionRequest): RequestUser {
  const info = request.userInfo;
  return { username: info?.username ?? '', ...(info?.uid ? { uid: info.uid } : {}), groups: info?.groups ?? [], extra: info?.extra ?? {} };
}

/** Host devices new in this write need the writer's `use` permission; kubevm's own writers copy what a user was allowed. */
async function checkDeviceUse(request: AdmissionRequest, holder: DeviceHolder, at: string, before: DeviceHolder | undefined, context: AdmissionContext, findings: Findings): Promise<void> {
  const user = requestUser(request);
  if (context.isKubevmComponent(user.username)) return;
  await checkHostDeviceUse(requestedDeviceNames(holder, at, before), request.namespace ?? '', user, context, findings);
}

/** Devices come from the KubeVirt CR's permitted list, and the writer may use each new one. */
async function checkDevices(request: AdmissionRequest, holder: DeviceHolder, at: string, before: DeviceHolder | undefined, context: AdmissionContext, findings: Findings): Promise<void> {
  checkPermittedDevices(holder, at, await permittedFor(holder, context), findings);
  await checkDeviceUse(request, holder, at, before, context, findings);
}

/** An instancetype's devices go into every VM that uses it: whoever writes them must be allowed to use them. */
async function admitInstancetype(request: AdmissionRequest, object: unknown, context: AdmissionContext, findings: Findings): Promise<void> {
  const spec = VirtualMachineInstancetypeSpec.parse(specOf(object));
  const old = request.operation === 'UPDATE' ? VirtualMachineInstancetypeSpec.safeParse(specOf(request.oldObject)) : undefined;
  await checkDevices(request, spec, 'spec', old?.success ? old.data : undefined, context, findings);
}

/** The template of the VM being replaced, when it parses (an old object that does not is judged as new). */
function oldTemplate(request: AdmissionRequest): VirtualMachineInstanceSpec | undefined {
  if (request.operation !== 'UPDATE') return undefined;
  const old = VirtualMachineSchema.safeParse(withoutStatus(request.oldObject));
  return old.success ? old.data.spec.template.spec : undefined;
}

/**
 * The kind a matcher names, read as the controller reads it (KubeVirt's aliases, in any case), so
 * the webhook checks the object the controller will use; undefined, with a denial, for none.
 */
function kindOf<K extends string>(resolve: (matcher: InstancetypeMatcher) => K, matcher: InstancetypeMatcher, findings: Findings): K | undefined {
  try {
    return resolve(matcher);
  } catch (err) {
    if (!(err instanceof ExpansionError)) throw err;
    findings.denials.push(err.message);
    return undefined;
  }
}

async function admitVirtualMachine(request: AdmissionRequest, vm: VirtualMachine, context: AdmissionContext, findings: Findings): Promise<void> {
  const template = vm.spec.template.spec;
  checkVmiSpec(template, 'spec.template.spec', await permittedFor(template.domain.devices, context), findings);
  await checkOvercommit(template, 'spec.template.spec', context, findings);
  await checkDeviceUse(request, template.domain.devices, 'spec.template.spec.domain.devices', oldTemplate(request)?.domain.devices, context, findings);
  const namespace = request.namespace ?? '';
  const instancetype = vm.spec.instancetype;
  if (instancetype) {
    if (!instancetype.name && !(instancetype as { inferFromVolume?: string }).inferFromVolume) {
      findings.denials.push('spec.instancetype.name: required: the name of a VirtualMachineClusterInstancetype (or, with kind, a VirtualMachineInstancetype)');
    }
    const kind = kindOf(instancetypeKindOf, instancetype, findings);
    const found = instancetype.name && kind ? await context.findInstancetypeSpec(kind, namespace, instancetype.name) : undefined;
    const spec = VirtualMachineInstancetypeSpec.safeParse(found);
    if (instancetype.name && kind && found === undefined) {
      // It may be created after the VM (GitOps applies in any order), as KubeVirt allows.
      findings.warnings.push(`spec.instancetype.name: ${kind} ${JSON.stringify(instancetype.name)} does not exist (yet); the VM cannot start until it does`);
    }
    if (spec.success) {
      // The instancetype's devices are the VM's: its writer must be allowed them too (unless the reference is unchanged).
      const unchanged = request.operation === 'UPDATE' && jsonEqual((specOf(request.oldObject) as { instancetype?: unknown } | undefined)?.instancetype, instancetype);
      await checkDevices(request, spec.data, 'spec.instancetype', unchanged ? spec.data : undefined, context, findings);
    }
    // The controller refuses these when the VM starts; refuse them at apply time.
    for (const conflict of kind ? instancetypeConflicts(template, spec.success ? spec.data : anyInstancetype, kind, instancetype.name ?? '') : []) {
      findings.denials.push(`${conflict.path}: ${conflict.message}`);
    }
  }
  const preference = vm.spec.preference;
  if (preference?.name) {
    const kind = kindOf(preferenceKindOf, preference, findings);
    if (kind && (await context.findInstancetypeSpec(kind, namespace, preference.name)) === undefined) {
      findings.warnings.push(`spec.preference.name: ${kind} ${JSON.stringify(preference.name)} does not exist (yet); the VM cannot start until it does`);
    }
  }
}

async function admitVirtualMachineInstance(request: AdmissionRequest, vmi: VirtualMachineInstance, context: AdmissionContext, findings: Findings): Promise<void> {
  if (request.operation === 'UPDATE') {
    // A running VMI's spec is fixed; kubevm's own components may adjust it (stop's grace period).
    // The specs as sent, not as parsed (parsing may fill defaults).
    if (!jsonEqual(specOf(request.oldObject), specOf(request.object)) && !context.isKubevmComponent(request.userInfo?.username ?? '')) {
      findings.denials.push('spec: a VirtualMachineInstance\'s spec cannot be changed once created; change the VirtualMachine and restart it');
    }
    return;
  }
  checkVmiSpec(vmi.spec, 'spec', await permittedFor(vmi.spec.domain.devices, context), findings);
  await checkOvercommit(vmi.spec, 'spec', context, findings);
  await checkDeviceUse(request, vmi.spec.domain.devices, 'spec.domain.devices', undefined, context, findings);
}

async function admitMigration(request: AdmissionRequest, object: unknown, context: AdmissionContext, findings: Findings): Promise<void> {
  if (request.operation === 'UPDATE') {
    if (!jsonEqual(specOf(request.oldObject), specOf(object))) {
      findings.denials.push('spec: a migration\'s spec cannot be changed; delete it and create another');
    }
    return;
  }
  const spec = VirtualMachineInstanceMigrationSchema.parse(object).spec;
  if (spec.priority !== undefined && !context.isKubevmComponent(request.userInfo?.username ?? '')) {
    findings.denials.push('spec.priority: only kubevm\'s controller sets a migration\'s priority; leave it unset');
  }
  const namespace = request.namespace ?? '';
  const vmi = await context.findVmi(namespace, spec.vmiName);
  if (!vmi) {
    findings.denials.push(`spec.vmiName: the VMI "${namespace}/${spec.vmiName}" does not exist; name a VirtualMachineInstance of this namespace`);
    return;
  }
  if (vmi.status?.phase === 'Succeeded' || vmi.status?.phase === 'Failed') {
    findings.denials.push(`spec.vmiName: Cannot migrate VMI in finalized state (${vmi.status.phase}); only a VMI that has not ended can migrate`);
    return;
  }
  const migratable = vmi.status?.conditions?.find((c) => c.type === 'LiveMigratable');
  if (migratable?.status === 'False') {
    findings.denials.push(`spec.vmiName: Cannot migrate VMI, Reason: ${migratable.reason ?? ''}, Message: ${migratable.message ?? ''}`);
  }
  const active = await context.activeMigrationFor(namespace, spec.vmiName);
  if (active) {
    findings.denials.push(`spec.vmiName: in-flight migration detected. Active migration job (${active}) is currently already in progress for VMI ${spec.vmiName}.`);
  }
}

async function admitKubeVirt(request: AdmissionRequest, context: AdmissionContext, findings: Findings): Promise<void> {
  if (request.operation === 'CREATE' && (await context.kubevirtCount()) > 0) {
    findings.denials.push('metadata.name: a KubeVirt resource already exists; kubevm is configured by exactly one');
  }
}

const lookupFailed = (uid: string, err: unknown): AdmissionResponse => ({
  uid,
  allowed: false,
  status: { code: 500, reason: 'InternalError', message: `kubevm could not check this object: ${err instanceof Error ? err.message : String(err)}; try again` },
});

/** exec, attach, port-forward into a pod: guarded when it is a launcher pod (guards.ts). */
async function admitConnect(request: AdmissionRequest, context: AdmissionContext): Promise<AdmissionResponse> {
  const verb = launcherEntryVerb(request.resource, request.subResource);
  if (!verb) return allow(request.uid);
  try {
    const denial = await judgeLauncherEntry(verb, request.namespace ?? '', request.name ?? '', requestUser(request), context);
    return denial === undefined ? allow(request.uid) : { uid: request.uid, allowed: false, status: { code: 403, reason: 'Forbidden', message: denial } };
  } catch (err) {
    return lookupFailed(request.uid, err);
  }
}

/** An eviction of a pod (pods/eviction): a launcher pod's may become a migration (eviction.ts). */
function isPodEviction(request: AdmissionRequest): boolean {
  return request.operation === 'CREATE' && request.resource?.group === '' && request.resource.resource === 'pods' && request.subResource === 'eviction';
}

async function admitPodEviction(request: AdmissionRequest, context: AdmissionContext): Promise<AdmissionResponse> {
  const answer = await admitEviction(request.namespace ?? '', request.name ?? '', request.object, request.dryRun, context);
  // 429: kubectl drain and the descheduler try an eviction refused with it again, as for a PodDisruptionBudget.
  return answer.allowed ? allow(request.uid) : { uid: request.uid, allowed: false, status: { code: 429, reason: 'TooManyRequests', message: answer.message } };
}

/** Judges one AdmissionRequest. */
export async function admit(request: AdmissionRequest, context: AdmissionContext): Promise<AdmissionResponse> {
  const uid = request.uid;
  if (request.operation === 'CONNECT') return admitConnect(request, context);
  if (isPodEviction(request)) return admitPodEviction(request, context);
  if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return allow(uid);
  const kind = request.kind.kind;
  const schema = schemaOf(kind);
  if (!schema) return deny(uid, [`kind: ${JSON.stringify(kind)} is not a kind kubevm validates; this webhook configuration is wrong`]);
  // Status is written by kubevm's controllers through the status subresource, which this webhook
  // does not intercept; an UPDATE of the main resource carries it along unchanged. Judge the rest.
  const object = withoutStatus(request.object);
  const parsed = schema.safeParse(object);
  if (!parsed.success) return deny(uid, formatIssues(parsed.error.issues, kind));
  const findings = emptyFindings();
  try {
    switch (kind) {
      case 'VirtualMachine':
        await admitVirtualMachine(request, VirtualMachineSchema.parse(object), context, findings);
        break;
      case 'VirtualMachineInstance':
        await admitVirtualMachineInstance(request, VirtualMachineInstanceSchema.parse(object), context, findings);
        break;
      case 'VirtualMachineInstanceMigration':
        await admitMigration(request, object, context, findings);
        break;
      case 'KubeVirt':
        KubeVirtSchema.parse(object) satisfies KubeVirt;
        await admitKubeVirt(request, context, findings);
        break;
      case 'VirtualMachineInstancetype':
      case 'VirtualMachineClusterInstancetype':
        await admitInstancetype(request, object, context, findings);
        break;
      default:
        // Preferences, MigrationPolicy: their schema says everything.
        break;
    }
  } catch (err) {
    // A lookup failed: refuse rather than admit unchecked (the client retries).
    return lookupFailed(uid, err);
  }
  return answer(uid, findings);
}

/** The webhook endpoint's logic: any JSON in, an AdmissionReview out (400-like denial when malformed). */
export async function handleAdmissionReview(body: unknown, context: AdmissionContext): Promise<{ apiVersion: 'admission.k8s.io/v1'; kind: 'AdmissionReview'; response: AdmissionResponse }> {
  const parsed = AdmissionReview.safeParse(body);
  const wrap = (response: AdmissionResponse) => ({ apiVersion: 'admission.k8s.io/v1' as const, kind: 'AdmissionReview' as const, response });
  if (!parsed.success) {
    const sentUid = typeof body === 'object' && body !== null ? (body as { request?: { uid?: unknown } }).request?.uid : undefined;
    const uid = typeof sentUid === 'string' ? sentUid : '';
    return wrap({ uid, allowed: false, status: { code: 400, reason: 'BadRequest', message: `not an admission.k8s.io/v1 AdmissionReview: ${formatIssues(parsed.error.issues).join('; ')}` } });
  }
  return wrap(await admit(parsed.data.request, context));
}
