// The VirtualMachine subresources start, stop, restart and migrate, with KubeVirt's behaviour per
// run strategy (facts from virt-api's lifecycle.go; the controller acts on what these write):
//   start    Halted → runStrategy Always (a paused start queues a Start request instead);
//            Manual / RerunOnFailure → a Start request (Stop+Start when the last VMI has ended);
//            Always / Once → 409.
//   stop     Always / Once → runStrategy Halted; Manual / RerunOnFailure → a Stop request for the
//            running VMI; Halted → only a forced stop with a shorter grace period.
//   restart  Always / Manual / RerunOnFailure → Stop (for the running VMI) + Start requests;
//            Halted / Once → 409; gracePeriodSeconds 0 first shortens the VMI's grace period to 1.
//   migrate  creates a VirtualMachineInstanceMigration for the running VMI.
// Each answers 202 Accepted once its write is accepted; with dryRun ["All"] the writes are dry runs.
// The decisions are pure functions returning JSON patches; the handlers fetch and write.
import type { z } from 'zod';
import YAML from 'yaml';
import type { RunStrategy, VirtualMachineStateChangeRequest } from '../runtime/api/index.js';
import { MigrateOptions, RestartOptions, StartOptions, StopOptions, formatIssues } from '../runtime/api/index.js';
import type { ResourceClient } from '../runtime/kube.js';
import { isNotFound } from '../runtime/kube.js';
import type { SubresourceReply, SubresourceRequest, SubresourceRoute } from './server.js';
import type { StatusError } from './status.js';
import { badRequest, conflict, internalError, notFound, vmResource, vmiResource } from './status.js';
import type { VirtualMachine, VirtualMachineInstance, VirtualMachineInstanceMigration } from './types.js';

export const vmNotRunning = 'VM is not running';
/** The API server's message when a JSON patch's test operation fails (a concurrent writer). */
export const jsonPatchTestFailed = 'jsonpatch test operation does not apply';

export type JsonPatchOperation =
  | { op: 'test'; path: string; value: unknown }
  | { op: 'add' | 'replace'; path: string; value: unknown }
  | { op: 'remove'; path: string };

/** Where a decision writes: the VM (spec), the VM's status subresource, or nowhere (an error). */
export type VmWrite = { target: 'spec' | 'status'; patch: JsonPatchOperation[] };

/**
 * YAML bodies are for people typing options by hand; they are small. The yaml parser recurses per
 * nesting level and a few hundred levels abort the whole process (V8's regexp compiler runs out of
 * memory), so a YAML body is bounded in size and in the indicators that can open a level.
 */
export const YAML_BODY_MAX_BYTES = 4096;
export const YAML_BODY_MAX_INDICATORS = 128;

/** Parses a body as KubeVirt's YAML-or-JSON decoder does: JSON when it starts with `{`, else YAML. */
function parseBody(body: string): unknown {
  const text = body.trim();
  if (text === '') return {};
  if (text.startsWith('{')) return JSON.parse(text) as unknown;
  if (Buffer.byteLength(text) > YAML_BODY_MAX_BYTES) throw new Error(`a YAML body may be at most ${YAML_BODY_MAX_BYTES} bytes; send JSON`);
  const indicators = text.match(/[[{\-:?]/g)?.length ?? 0;
  if (indicators > YAML_BODY_MAX_INDICATORS) throw new Error(`a YAML body may hold at most ${YAML_BODY_MAX_INDICATORS} of the characters that open a level ([ { - : ?); send JSON`);
  return YAML.parse(text, { maxAliasCount: 16 }) as unknown;
}

/** Decode a subresource body (JSON or YAML, possibly empty) with its options schema; 400 otherwise. */
export function decodeOptions<S extends z.ZodType>(schema: S, body: string): z.infer<S> {
  let value: unknown;
  try {
    value = parseBody(body);
  } catch (err) {
    throw badRequest(`Can not unmarshal Request body to struct, error: ${err instanceof Error ? err.message : String(err)}`);
  }
  const parsed = schema.safeParse(value ?? {});
  if (!parsed.success) throw badRequest(`Can not unmarshal Request body to struct, error: ${formatIssues(parsed.error.issues).join('; ')}`);
  return parsed.data;
}

export function runStrategyOf(vm: VirtualMachine): RunStrategy {
  if (vm.spec.runStrategy) return vm.spec.runStrategy;
  return vm.spec.running ? 'Always' : 'Halted';
}

const isFinal = (vmi: VirtualMachineInstance | undefined): boolean => vmi?.status?.phase === 'Succeeded' || vmi?.status?.phase === 'Failed';

/** Sets the run strategy (or the deprecated `running`), guarded by a test of the current value. */
export function runningPatch(vm: VirtualMachine, running: boolean): JsonPatchOperation[] {
  if (vm.spec.runStrategy !== undefined) {
    return [
      { op: 'test', path: '/spec/runStrategy', value: vm.spec.runStrategy },
      { op: 'replace', path: '/spec/runStrategy', value: running ? 'Always' : 'Halted' },
    ];
  }
  return [
    { op: 'test', path: '/spec/running', value: vm.spec.running ?? null },
    { op: 'replace', path: '/spec/running', value: running },
  ];
}

/**
 * Queues state change requests on the VM's status, guarded by a test of the current queue. A new
 * queue is started when there is none; a lone Stop replaces what is queued; anything else while a
 * request is pending is refused ("stop/start already underway").
 */
export function changeRequestPatch(vm: VirtualMachine, changes: VirtualMachineStateChangeRequest[]): JsonPatchOperation[] {
  const status = vm.status ?? {};
  const patch: JsonPatchOperation[] = [];
  if (Object.keys(status).length === 0) {
    patch.push({ op: 'add', path: '/status', value: { stateChangeRequests: changes } });
  } else {
    const queued = status.stateChangeRequests ?? [];
    patch.push({ op: 'test', path: '/status/stateChangeRequests', value: status.stateChangeRequests ?? null });
    if (queued.length === 0) patch.push({ op: 'add', path: '/status/stateChangeRequests', value: changes });
    else if (changes.length === 1 && changes[0]?.action === 'Stop') patch.push({ op: 'replace', path: '/status/stateChangeRequests', value: changes });
    else throw internalError('unable to complete request: stop/start already underway');
  }
  if (status.startFailure !== undefined) patch.push({ op: 'remove', path: '/status/startFailure' });
  return patch;
}

/** Replaces the VMI's terminationGracePeriodSeconds, guarded by a test of the current value. */
export function gracePeriodPatch(vmi: VirtualMachineInstance, seconds: number): JsonPatchOperation[] {
  return [
    { op: 'test', path: '/spec/terminationGracePeriodSeconds', value: vmi.spec.terminationGracePeriodSeconds ?? null },
    { op: 'replace', path: '/spec/terminationGracePeriodSeconds', value: seconds },
  ];
}

const vmName = (vm: VirtualMachine): string => vm.metadata?.name ?? '';

export function decideStart(vm: VirtualMachine, vmi: VirtualMachineInstance | undefined, options: StartOptions): VmWrite {
  const name = vmName(vm);
  const phase = vmi?.status?.phase;
  if (vmi && !isFinal(vmi) && phase !== undefined && phase !== 'Unknown' && (phase as string) !== '') {
    throw conflict(vmResource, name, 'VM is already running');
  }
  const data = options.paused ? { paused: 'true' } : undefined;
  const start: VirtualMachineStateChangeRequest = { action: 'Start', ...(data ? { data } : {}) };
  const strategy = runStrategyOf(vm);
  switch (strategy) {
    case 'Halted':
      // A paused start goes through a Start request (the controller switches the strategy and
      // starts the VMI paused), unless the template already starts paused.
      if (options.paused && vm.spec.template.spec.startStrategy !== 'Paused') return { target: 'status', patch: changeRequestPatch(vm, [start]) };
      return { target: 'spec', patch: runningPatch(vm, true) };
    case 'Manual':
    case 'RerunOnFailure': {
      if (strategy === 'RerunOnFailure' && phase === 'Failed') throw conflict(vmResource, name, 'RerunOnFailure does not support starting VM from failed state');
      const needsRestart = vmi !== undefined && (strategy === 'RerunOnFailure' ? phase === 'Succeeded' : isFinal(vmi));
      const uid = vmi?.metadata?.uid;
      const changes: VirtualMachineStateChangeRequest[] = needsRestart ? [{ action: 'Stop', ...(uid ? { uid } : {}) }, start] : [start];
      return { target: 'status', patch: changeRequestPatch(vm, changes) };
    }
    case 'Always':
    case 'Once':
      throw conflict(vmResource, name, `${strategy} does not support manual start requests`);
  }
}

/** The stop decision; `gracePeriodBefore` is the VMI's grace period before this request changed it. */
export function decideStop(vm: VirtualMachine, vmi: VirtualMachineInstance | undefined, options: StopOptions, gracePeriodBefore: number): VmWrite {
  const name = vmName(vm);
  const strategy = runStrategyOf(vm);
  const stopRequest = (): VmWrite => {
    const uid = vmi?.metadata?.uid;
    return { target: 'status', patch: changeRequestPatch(vm, [{ action: 'Stop', ...(uid ? { uid } : {}) }]) };
  };
  switch (strategy) {
    case 'Halted':
      if (!vmi || isFinal(vmi)) throw conflict(vmResource, name, vmNotRunning);
      if (options.gracePeriod === undefined || (vmi.spec.terminationGracePeriodSeconds !== undefined && options.gracePeriod >= gracePeriodBefore)) {
        throw conflict(vmResource, name, 'Halted only supports manual stop requests with a shorter graceperiod');
      }
      return stopRequest();
    case 'Manual':
    case 'RerunOnFailure':
      if (!vmi || isFinal(vmi)) throw conflict(vmResource, name, vmNotRunning);
      return stopRequest();
    case 'Always':
    case 'Once':
      return { target: 'spec', patch: runningPatch(vm, false) };
  }
}

/** Checks the restart body before anything is read (KubeVirt's order: 400 before 404). */
export function validateRestartOptions(options: RestartOptions): void {
  if (options.gracePeriodSeconds !== undefined) {
    if (options.gracePeriodSeconds > 0) throw badRequest('For force restart, only gracePeriod=0 is supported for now');
    if (options.gracePeriodSeconds < 0) throw badRequest('gracePeriod has to be greater or equal to 0');
  }
}

export function decideRestart(vm: VirtualMachine, vmi: VirtualMachineInstance | undefined): VmWrite {
  const name = vmName(vm);
  const strategy = runStrategyOf(vm);
  // KubeVirt's wording, typo included: clients match on it.
  if (strategy === 'Halted' || strategy === 'Once') throw conflict(vmResource, name, `RunStategy ${strategy} does not support manual restart requests`);
  if (!vmi) throw conflict(vmResource, name, 'VM is not running: Halted');
  const uid = vmi.metadata?.uid;
  return { target: 'status', patch: changeRequestPatch(vm, [{ action: 'Stop', ...(uid ? { uid } : {}) }, { action: 'Start' }]) };
}

/** The migration `migrate` creates; validated like any other by the API server (and webhooks). */
export function migrationFor(vmi: VirtualMachineInstance, options: MigrateOptions): VirtualMachineInstanceMigration {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstanceMigration',
    metadata: { generateName: 'kubevirt-migrate-vm-', namespace: vmi.metadata?.namespace ?? '' },
    spec: { vmiName: vmi.metadata?.name ?? '', ...(options.addedNodeSelector ? { addedNodeSelector: options.addedNodeSelector } : {}) },
  };
}

// ---- handlers ---------------------------------------------------------------------------------

export interface VmBackends {
  vms: ResourceClient<VirtualMachine>;
  vmis: ResourceClient<VirtualMachineInstance>;
  migrations: ResourceClient<VirtualMachineInstanceMigration>;
}

const accepted: SubresourceReply = { code: 202 };

/** A failed write: a failed patch test is a concurrent change (409), anything else is ours (500). */
function writeFailure(name: string, err: unknown): StatusError {
  const message = err instanceof Error ? err.message : String(err);
  if (message.includes(jsonPatchTestFailed)) return conflict(vmResource, name, message);
  return internalError(message);
}

export async function fetchVm(vms: VmBackends['vms'], namespace: string, name: string): Promise<VirtualMachine> {
  try {
    return await vms.get(name, namespace);
  } catch (err) {
    if (isNotFound(err)) throw notFound(vmResource, name);
    throw internalError(`unable to retrieve vm [${name}]: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export async function findVmi(vmis: VmBackends['vmis'], namespace: string, name: string): Promise<VirtualMachineInstance | undefined> {
  try {
    return await vmis.find(name, namespace);
  } catch (err) {
    throw internalError(err instanceof Error ? err.message : String(err));
  }
}

export async function fetchVmi(vmis: VmBackends['vmis'], namespace: string, name: string): Promise<VirtualMachineInstance> {
  const vmi = await findVmi(vmis, namespace, name);
  if (!vmi) throw notFound(vmiResource, name);
  return vmi;
}

async function apply(backends: VmBackends, vm: VirtualMachine, write: VmWrite, dryRun: boolean): Promise<void> {
  const name = vmName(vm);
  const namespace = vm.metadata?.namespace;
  try {
    if (write.target === 'spec') await backends.vms.patch(name, namespace, write.patch, 'json', { dryRun });
    else await backends.vms.patchStatus(name, namespace, write.patch, 'json', { dryRun });
  } catch (err) {
    throw writeFailure(name, err);
  }
}

async function patchGracePeriod(backends: VmBackends, vmi: VirtualMachineInstance, seconds: number, dryRun: boolean): Promise<void> {
  try {
    await backends.vmis.patch(vmi.metadata?.name ?? '', vmi.metadata?.namespace, gracePeriodPatch(vmi, seconds), 'json', { dryRun });
  } catch (err) {
    throw internalError(err instanceof Error ? err.message : String(err));
  }
}

const isDryRun = (options: { dryRun?: readonly string[] | undefined }): boolean => (options.dryRun ?? []).includes('All');
const nameOf = (request: SubresourceRequest): string => request.name ?? '';

export function vmSubresourceRoutes(backends: VmBackends): SubresourceRoute[] {
  return [
    {
      method: 'PUT',
      resource: 'virtualmachines',
      subresource: 'start',
      async handle(request) {
        const vm = await fetchVm(backends.vms, request.namespace, nameOf(request));
        const vmi = await findVmi(backends.vmis, request.namespace, nameOf(request));
        const options = decodeOptions(StartOptions, request.body);
        await apply(backends, vm, decideStart(vm, vmi, options), isDryRun(options));
        return accepted;
      },
    },
    {
      method: 'PUT',
      resource: 'virtualmachines',
      subresource: 'stop',
      async handle(request) {
        const options = decodeOptions(StopOptions, request.body);
        const vm = await fetchVm(backends.vms, request.namespace, nameOf(request));
        const vmi = await findVmi(backends.vmis, request.namespace, nameOf(request));
        const before = vmi?.spec.terminationGracePeriodSeconds ?? 0;
        // The new grace period goes on the VMI first, so the shutdown that follows uses it.
        if (vmi && !isFinal(vmi) && options.gracePeriod !== undefined) await patchGracePeriod(backends, vmi, options.gracePeriod, isDryRun(options));
        await apply(backends, vm, decideStop(vm, vmi, options, before), isDryRun(options));
        return accepted;
      },
    },
    {
      method: 'PUT',
      resource: 'virtualmachines',
      subresource: 'restart',
      async handle(request) {
        const options = decodeOptions(RestartOptions, request.body);
        validateRestartOptions(options);
        const vm = await fetchVm(backends.vms, request.namespace, nameOf(request));
        const vmi = await findVmi(backends.vmis, request.namespace, nameOf(request));
        const write = decideRestart(vm, vmi);
        const force = options.gracePeriodSeconds === 0 && vmi !== undefined;
        const before = vmi?.spec.terminationGracePeriodSeconds;
        // A forced restart: the shortest safe grace period first, so the guest goes down promptly.
        if (force) await patchGracePeriod(backends, vmi, 1, isDryRun(options));
        try {
          await apply(backends, vm, write, isDryRun(options));
        } catch (err) {
          if (force) {
            const patched = { ...vmi, spec: { ...vmi.spec, terminationGracePeriodSeconds: 1 } };
            await patchGracePeriod(backends, patched, before ?? 0, isDryRun(options)).catch((rollback: unknown) =>
              request.log.error({ err: rollback }, 'could not restore the VMI\'s terminationGracePeriodSeconds'),
            );
          }
          throw err;
        }
        return accepted;
      },
    },
    {
      method: 'PUT',
      resource: 'virtualmachines',
      subresource: 'migrate',
      async handle(request) {
        const options = decodeOptions(MigrateOptions, request.body);
        await fetchVm(backends.vms, request.namespace, nameOf(request));
        const vmi = await fetchVmi(backends.vmis, request.namespace, nameOf(request));
        if (vmi.status?.phase !== 'Running') throw conflict(vmResource, nameOf(request), vmNotRunning);
        try {
          await backends.migrations.create(migrationFor(vmi, options), { dryRun: isDryRun(options) });
        } catch (err) {
          // As KubeVirt: whatever refused it (the API server, the migration webhook), a 500 carrying its message.
          throw internalError(err instanceof Error ? err.message : String(err));
        }
        return accepted;
      },
    },
  ];
}
