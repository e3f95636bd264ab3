// The streaming subresources, with KubeVirt's paths, checks and messages (virt-api console.go,
// vnc.go, portforward.go):
//   GET virtualmachineinstances/{name}/console                   websocket: the serial console
//   GET virtualmachineinstances/{name}/vnc[?preserveSession=true] websocket: RFB
//   GET virtualmachineinstances/{name}/vnc/screenshot            image/png
//   GET virtualmachineinstances/{name}/portforward/{port}[/{protocol}]  websocket: a guest TCP port
//   GET virtualmachines/{name}/portforward/{port}[/{protocol}]          the same, through the VM
// Each opens the stream on the VMI's node handler (node-streams.ts) before the websocket is
// accepted, so a refusal is an HTTP answer with a Status, as KubeVirt's are. A second console
// replaces the first; a second VNC client too, unless it asks to preserve the session (503).
import type { Duplex } from 'node:stream';
import type { NodeStreamRequest } from '../runtime/contracts/streams.js';
import type { NodeStreams } from './node-streams.js';
import type { SubresourceReply, SubresourceRequest, SubresourceRoute } from './server.js';
import { badRequest, conflict, internalError, vmResource, vmiResource } from './status.js';
import type { VirtualMachineInstance } from './types.js';
import type { VmBackends } from './vm-subresources.js';
import { fetchVm, fetchVmi } from './vm-subresources.js';
import { vmiNotRunning } from './vmi-subresources.js';

/** What a stream route does once authorized: check, then open the upstream on the VMI's node. */
export interface StreamHandler {
  /** The metric it is counted in. */
  kind: 'console' | 'vnc' | 'portforward';
  open(request: SubresourceRequest & { query: URLSearchParams }): Promise<{ upstream: Duplex; vmi: string }>;
}

const nameOf = (vmi: VirtualMachineInstance): string => vmi.metadata?.name ?? '';
const hasCondition = (vmi: VirtualMachineInstance, type: string): boolean => vmi.status?.conditions?.some((c) => c.type === type && c.status === 'True') === true;

export function validateVmiForConsole(vmi: VirtualMachineInstance): void {
  if (vmi.spec.domain.devices.autoattachSerialConsole === false) throw badRequest('No serial consoles are present.');
  if (vmi.status?.phase === 'Failed') throw conflict(vmiResource, nameOf(vmi), 'VMI is in failed status');
  if (vmi.status?.phase !== 'Running') throw badRequest(vmiNotRunning);
}

export function validateVmiHasDisplay(vmi: VirtualMachineInstance): void {
  if (vmi.spec.domain.devices.autoattachGraphicsDevice === false) throw badRequest('No graphics devices are present.');
  if (vmi.status?.phase !== 'Running') throw badRequest(vmiNotRunning);
}

export function validateVmiForPortForward(vmi: VirtualMachineInstance): void {
  if (hasCondition(vmi, 'Paused')) throw conflict(vmiResource, nameOf(vmi), 'VMI is paused');
  if (vmi.status?.phase !== 'Running') throw badRequest(vmiNotRunning);
}

/** The port and protocol of a portforward path; only TCP is forwarded by kubevm. */
export function portForwardParams(params: Record<string, string>): number {
  const text = params['port'] ?? '';
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) throw badRequest(`port ${JSON.stringify(text)} is not a port number (1-65535)`);
  const protocol = (params['protocol'] ?? 'tcp').toLowerCase();
  if (protocol === 'udp') throw badRequest('protocol udp is not supported by kubevm\'s port-forward; only tcp is');
  if (protocol !== 'tcp') throw badRequest(`protocol ${JSON.stringify(params['protocol'])} is not supported; use tcp`);
  return port;
}

/** The VMI a VM's portforward reaches: the VM must have created it, and own it. */
async function vmiOfVm(backends: Pick<VmBackends, 'vms' | 'vmis'>, namespace: string, name: string): Promise<VirtualMachineInstance> {
  const vm = await fetchVm(backends.vms, namespace, name);
  if (vm.status?.created !== true) throw conflict(vmResource, name, 'VMI is not started');
  const vmi = await fetchVmi(backends.vmis, namespace, name);
  if (!(vmi.metadata?.ownerReferences ?? []).some((ref) => ref.uid === vm.metadata?.uid)) throw internalError(`unable to retrieve vmi [${name}] for vm`);
  return vmi;
}

function nodeOf(vmi: VirtualMachineInstance): string {
  const node = vmi.status?.nodeName;
  if (!node) throw badRequest(`Unable to connect to VirtualMachineInstance because it has no node yet (phase ${vmi.status?.phase ?? 'unknown'})`);
  return node;
}

/** Answers a plain GET to a stream route as KubeVirt's upgrader does: 400. */
const upgradeRequired = async (): Promise<SubresourceReply> => {
  throw badRequest('websocket: the client is not using the websocket protocol: this subresource is a stream (Upgrade: websocket, subprotocol plain.kubevirt.io)');
};

export function streamRoutes(backends: Pick<VmBackends, 'vms' | 'vmis'>, streams: NodeStreams): SubresourceRoute[] {
  const { vmis } = backends;
  const open = async (vmi: VirtualMachineInstance, request: Exclude<NodeStreamRequest, { kind: 'screenshot' }>) => ({
    upstream: await streams.open(nodeOf(vmi), request),
    vmi: nameOf(vmi),
  });
  const portForward = (resource: 'virtualmachines' | 'virtualmachineinstances', extraParams: readonly string[]): SubresourceRoute => ({
    method: 'GET',
    resource,
    subresource: 'portforward',
    extraParams,
    handle: upgradeRequired,
    stream: {
      kind: 'portforward',
      async open(request) {
        const port = portForwardParams(request.params);
        const name = request.name ?? '';
        const vmi = resource === 'virtualmachines' ? await vmiOfVm(backends, request.namespace, name) : await fetchVmi(vmis, request.namespace, name);
        validateVmiForPortForward(vmi);
        return open(vmi, { kind: 'portforward', namespace: request.namespace, name: nameOf(vmi), port });
      },
    },
  });
  return [
    {
      method: 'GET',
      resource: 'virtualmachineinstances',
      subresource: 'console',
      handle: upgradeRequired,
      stream: {
        kind: 'console',
        async open(request) {
          const vmi = await fetchVmi(vmis, request.namespace, request.name ?? '');
          validateVmiForConsole(vmi);
          return open(vmi, { kind: 'console', namespace: request.namespace, name: nameOf(vmi) });
        },
      },
    },
    {
      method: 'GET',
      resource: 'virtualmachineinstances',
      subresource: 'vnc',
      handle: upgradeRequired,
      stream: {
        kind: 'vnc',
        async open(request) {
          const vmi = await fetchVmi(vmis, request.namespace, request.name ?? '');
          validateVmiHasDisplay(vmi);
          const preserveSession = request.query.get('preserveSession') === 'true';
          return open(vmi, { kind: 'vnc', namespace: request.namespace, name: nameOf(vmi), preserveSession });
        },
      },
    },
    {
      method: 'GET',
      resource: 'virtualmachineinstances',
      subresource: 'vnc/screenshot',
      async handle(request) {
        const vmi = await fetchVmi(vmis, request.namespace, request.name ?? '');
        validateVmiHasDisplay(vmi);
        const png = await streams.screenshot(nodeOf(vmi), { kind: 'screenshot', namespace: request.namespace, name: nameOf(vmi) });
        return { code: 200, body: png, contentType: 'image/png' };
      },
    },
    portForward('virtualmachineinstances', ['port']),
    portForward('virtualmachineinstances', ['port', 'protocol']),
    portForward('virtualmachines', ['port']),
    portForward('virtualmachines', ['port', 'protocol']),
  ];
}

