// The VirtualMachineInstance subresources that act on a running guest. The checks, codes and
// messages are KubeVirt's (virt-api lifecycle.go and subresource.go); the action reaches the
// node handler of the VMI's node as a request annotation on the VMI (runtime/vmi-requests.ts),
// which it converges the domain to:
//   pause       annotation pause-requested=true            (200; 409 not running / already paused)
//   unpause     annotation pause-requested=false           (200; 409 not running / not paused):
//               false, not removed, so it also ends a start strategy of Paused
//   softreboot  annotation soft-reboot-requested=<time>    (200; 409 not running / paused): the
//               guest's own reboot, through its agent, else ACPI
//   reset       annotation reset-requested=<time>          (200; 409 not running): a hard reset
// The guest agent subresources (409 "VMI does not have guest agent connected" without one):
//   guestosinfo     status.guestOSInfo, as the node handler keeps it
//   freeze          body {unfreezeTimeout: "5m0s"} (required, 400 without; "0s": no automatic
//                   thaw): guest-fsfreeze-freeze run by the VMI's launcher, which thaws the guest
//                   itself after unfreezeTimeout unless unfreeze comes first            (200)
//   unfreeze        guest-fsfreeze-thaw                                                 (200)
//   userlist        guest-get-users as VirtualMachineInstanceGuestOSUserList            (200)
//   filesystemlist  guest-get-fsinfo as VirtualMachineInstanceFileSystemList            (200)
// These four reach the launcher through the node handler of the VMI's node (node-streams.ts,
// ADR 0014); its answer is validated against the contract before it is passed on. While the
// guest is frozen, status.fsFreezeStatus is "frozen" (written by the node handler).
import { FreezeUnfreezeTimeout, PauseOptions, UnpauseOptions } from '../runtime/api/index.js';
import { MAX_UNFREEZE_TIMEOUT_SECONDS } from '../runtime/contracts/launcher-protocol.js';
import type { NodeGuestAgentAnswer, NodeGuestAgentKind, NodeGuestAgentRequest } from '../runtime/contracts/streams.js';
import { parseGoDuration } from '../runtime/duration.js';
import { pauseRequestAnnotation, resetRequestAnnotation, softRebootRequestAnnotation } from '../runtime/vmi-requests.js';
import type { SubresourceReply, SubresourceRoute } from './server.js';
import { badRequest, conflict, internalError, vmiResource } from './status.js';
import type { VirtualMachineInstance } from './types.js';
import type { VmBackends } from './vm-subresources.js';
import { decodeOptions, fetchVmi, vmNotRunning } from './vm-subresources.js';

export const vmiNotRunning = 'VMI is not running';
export const vmiNotPaused = 'VMI is not paused';
export const vmiGuestAgentErr = 'VMI does not have guest agent connected';

const hasCondition = (vmi: VirtualMachineInstance, type: string): boolean => vmi.status?.conditions?.some((c) => c.type === type && c.status === 'True') === true;
const nameOf = (vmi: VirtualMachineInstance): string => vmi.metadata?.name ?? '';
const isDryRun = (options: { dryRun?: readonly string[] | undefined }): boolean => (options.dryRun ?? []).includes('All');

export function validatePause(vmi: VirtualMachineInstance): void {
  if (vmi.status?.phase !== 'Running') throw conflict(vmiResource, nameOf(vmi), vmNotRunning);
  // KubeVirt also refuses to pause a VMI with a non-guest-agent liveness probe (403); kubevm's
  // schema has no liveness probes, so that case cannot arise.
  if (hasCondition(vmi, 'Paused')) throw conflict(vmiResource, nameOf(vmi), 'VMI is already paused');
}

export function validateUnpause(vmi: VirtualMachineInstance): void {
  if (vmi.status?.phase !== 'Running') throw conflict(vmiResource, nameOf(vmi), vmiNotRunning);
  if (!hasCondition(vmi, 'Paused')) throw conflict(vmiResource, nameOf(vmi), vmiNotPaused);
}

export function validateSoftReboot(vmi: VirtualMachineInstance): void {
  if (vmi.status?.phase !== 'Running') throw conflict(vmiResource, nameOf(vmi), vmNotRunning);
  if (hasCondition(vmi, 'Paused')) throw conflict(vmiResource, nameOf(vmi), 'VMI is paused');
  const acpi = vmi.spec.domain.features?.acpi;
  if (!hasCondition(vmi, 'AgentConnected') && acpi?.enabled === false) {
    throw conflict(vmiResource, nameOf(vmi), 'VMI neither have the agent connected nor the ACPI feature enabled');
  }
}

export function validateReset(vmi: VirtualMachineInstance): void {
  if (vmi.status?.phase !== 'Running') {
    throw conflict(vmiResource, nameOf(vmi), `Failed to reset non-running VMI with phase ${vmi.status?.phase ?? ''}: ${vmiNotRunning}`);
  }
}

/** The guest agent subresources need a running VMI with a connected agent. */
export function validateGuestAgent(vmi: VirtualMachineInstance): void {
  if (vmi.status?.phase !== 'Running') throw conflict(vmiResource, nameOf(vmi), vmiNotRunning);
  if (!hasCondition(vmi, 'AgentConnected')) throw conflict(vmiResource, nameOf(vmi), vmiGuestAgentErr);
}

/** freeze checks "VM is not running", unfreeze "VMI is not running", as KubeVirt words them. */
function validateFreeze(message: string) {
  return (vmi: VirtualMachineInstance): void => {
    if (vmi.status?.phase !== 'Running') throw conflict(vmiResource, nameOf(vmi), message);
    if (!hasCondition(vmi, 'AgentConnected')) throw conflict(vmiResource, nameOf(vmi), vmiGuestAgentErr);
  };
}

/** Runs a guest agent command on the VMI's node (node-streams.ts nodeGuestAgent). */
export type GuestAgentCall = <K extends NodeGuestAgentKind>(nodeName: string, request: Extract<NodeGuestAgentRequest, { kind: K }>) => Promise<NodeGuestAgentAnswer<K>>;

/**
 * The whole seconds of a freeze's unfreezeTimeout, as KubeVirt's int32(Seconds()). KubeVirt's
 * handler refuses a body without it; kubevm also refuses more than a day.
 */
export function unfreezeTimeoutSeconds(body: string): number {
  const options = decodeOptions(FreezeUnfreezeTimeout, body);
  if (options.unfreezeTimeout === undefined || options.unfreezeTimeout === null) throw badRequest('Unfreeze timeout in freeze request is not set');
  const ms = parseGoDuration(options.unfreezeTimeout);
  if (ms === undefined) throw badRequest(`Can not unmarshal Request body to struct, error: unfreezeTimeout: ${JSON.stringify(options.unfreezeTimeout)} is not a duration such as 5m0s`);
  const seconds = Math.trunc(ms / 1000);
  if (seconds > MAX_UNFREEZE_TIMEOUT_SECONDS) throw badRequest(`unfreezeTimeout ${options.unfreezeTimeout} is longer than the ${MAX_UNFREEZE_TIMEOUT_SECONDS}s (24h) kubevm accepts`);
  return seconds;
}

/** The node a running VMI is on (the node handler there runs its agent commands). */
function nodeOf(vmi: VirtualMachineInstance): string {
  const node = vmi.status?.nodeName;
  if (!node) throw internalError(`VirtualMachineInstance ${nameOf(vmi)} has no status.nodeName`);
  return node;
}

/** KubeVirt's VirtualMachineInstanceGuestAgentInfo, from what the node handler recorded. */
export function guestAgentInfo(vmi: VirtualMachineInstance): object {
  const os = vmi.status?.guestOSInfo ?? {};
  return { kind: 'VirtualMachineInstanceGuestAgentInfo', apiVersion: 'kubevirt.io/v1', os };
}

const ok: SubresourceReply = { code: 200 };

/** KubeVirt's VirtualMachineInstanceGuestOSUserList / ...FileSystemList. */
function guestList<K extends string, T>(kind: K, items: T[]): { kind: K; apiVersion: 'kubevirt.io/v1'; metadata: Record<string, never>; items: T[] } {
  return { kind, apiVersion: 'kubevirt.io/v1', metadata: {}, items };
}

export function vmiSubresourceRoutes(backends: Pick<VmBackends, 'vmis'>, guestAgent: GuestAgentCall): SubresourceRoute[] {
  const { vmis } = backends;
  async function annotate(vmi: VirtualMachineInstance, annotations: Record<string, string | null>, dryRun: boolean): Promise<void> {
    try {
      await vmis.patch(nameOf(vmi), vmi.metadata?.namespace, { metadata: { annotations } }, 'merge', { dryRun, fieldManager: 'kubevm-api-server' });
    } catch (err) {
      throw internalError(err instanceof Error ? err.message : String(err));
    }
  }
  const put = (subresource: string, act: (vmi: VirtualMachineInstance, body: string) => Promise<void>): SubresourceRoute => ({
    method: 'PUT',
    resource: 'virtualmachineinstances',
    subresource,
    async handle(request) {
      const vmi = await fetchVmi(vmis, request.namespace, request.name ?? '');
      await act(vmi, request.body);
      return ok;
    },
  });
  const get = (subresource: string, answer: (vmi: VirtualMachineInstance) => SubresourceReply | Promise<SubresourceReply>): SubresourceRoute => ({
    method: 'GET',
    resource: 'virtualmachineinstances',
    subresource,
    async handle(request) {
      return answer(await fetchVmi(vmis, request.namespace, request.name ?? ''));
    },
  });
  /** A request the node handler consumes; a timestamp, so a repeated request is a new value. */
  const request = async (vmi: VirtualMachineInstance, annotation: string): Promise<void> =>
    annotate(vmi, { [annotation]: new Date().toISOString() }, false);

  return [
    put('pause', async (vmi, body) => {
      const options = decodeOptions(PauseOptions, body);
      validatePause(vmi);
      await annotate(vmi, { [pauseRequestAnnotation]: 'true' }, isDryRun(options));
    }),
    put('unpause', async (vmi, body) => {
      const options = decodeOptions(UnpauseOptions, body);
      validateUnpause(vmi);
      await annotate(vmi, { [pauseRequestAnnotation]: 'false' }, isDryRun(options));
    }),
    put('softreboot', async (vmi) => {
      validateSoftReboot(vmi);
      await request(vmi, softRebootRequestAnnotation);
    }),
    put('reset', async (vmi) => {
      validateReset(vmi);
      await request(vmi, resetRequestAnnotation);
    }),
    put('freeze', async (vmi, body) => {
      validateFreeze(vmNotRunning)(vmi);
      const seconds = unfreezeTimeoutSeconds(body);
      await guestAgent(nodeOf(vmi), { kind: 'freeze', namespace: vmi.metadata?.namespace ?? '', name: nameOf(vmi), unfreezeTimeoutSeconds: seconds });
    }),
    put('unfreeze', async (vmi) => {
      validateFreeze(vmiNotRunning)(vmi);
      await guestAgent(nodeOf(vmi), { kind: 'unfreeze', namespace: vmi.metadata?.namespace ?? '', name: nameOf(vmi) });
    }),
    get('guestosinfo', (vmi) => {
      validateGuestAgent(vmi);
      return { code: 200, body: guestAgentInfo(vmi) };
    }),
    get('userlist', async (vmi) => {
      validateGuestAgent(vmi);
      const { items } = await guestAgent(nodeOf(vmi), { kind: 'userlist', namespace: vmi.metadata?.namespace ?? '', name: nameOf(vmi) });
      return { code: 200, body: guestList('VirtualMachineInstanceGuestOSUserList', items) };
    }),
    get('filesystemlist', async (vmi) => {
      validateGuestAgent(vmi);
      const { items } = await guestAgent(nodeOf(vmi), { kind: 'filesystemlist', namespace: vmi.metadata?.namespace ?? '', name: nameOf(vmi) });
      return { code: 200, body: guestList('VirtualMachineInstanceFileSystemList', items) };
    }),
  ];
}
