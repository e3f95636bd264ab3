// qemu-guest-agent over its virtio-serial channel (org.qemu.guest_agent.0): OS info, host name and
// interfaces for the VMI's guestOSInfo and status.interfaces. The agent is optional in a guest, so
// every call is bounded by a short timeout and "no agent" is a normal answer.
import type { GuestInfo, GuestInterface } from '../runtime/contracts/launcher-protocol.js';
import { QmpClient } from './qmp.js';

export type { GuestInfo, GuestInterface } from '../runtime/contracts/launcher-protocol.js';
type GuestOSInfo = NonNullable<GuestInfo['os']>;

interface AgentOsInfo {
  id?: string;
  name?: string;
  'pretty-name'?: string;
  version?: string;
  'version-id'?: string;
  'kernel-release'?: string;
  'kernel-version'?: string;
  machine?: string;
}

interface AgentInterface {
  name: string;
  'hardware-address'?: string;
  'ip-addresses'?: { 'ip-address': string; 'ip-address-type': string; prefix: number }[];
}

/** Converts the agent's answers to the shapes of VMI status (guestOSInfo, interfaces). */
export function guestInfoFromAgent(info: { version?: string }, os: AgentOsInfo | undefined, host: { 'host-name'?: string } | undefined, ifaces: AgentInterface[] | undefined): GuestInfo {
  const result: GuestInfo = { agentConnected: true, interfaces: [] };
  if (info.version !== undefined) result.agentVersion = info.version;
  if (host?.['host-name'] !== undefined) result.hostname = host['host-name'];
  if (os) {
    const o: GuestOSInfo = {};
    if (os.id !== undefined) o.id = os.id;
    if (os.name !== undefined) o.name = os.name;
    if (os['pretty-name'] !== undefined) o.prettyName = os['pretty-name'];
    if (os.version !== undefined) o.version = os.version;
    if (os['version-id'] !== undefined) o.versionId = os['version-id'];
    if (os['kernel-release'] !== undefined) o.kernelRelease = os['kernel-release'];
    if (os['kernel-version'] !== undefined) o.kernelVersion = os['kernel-version'];
    if (os.machine !== undefined) o.machine = os.machine;
    result.os = o;
  }
  for (const i of ifaces ?? []) {
    if (i.name === 'lo') continue;
    const ips = (i['ip-addresses'] ?? []).map((a) => a['ip-address']);
    const gi: GuestInterface = { interfaceName: i.name, ipAddresses: ips };
    if (i['hardware-address'] !== undefined) gi.mac = i['hardware-address'];
    if (ips[0] !== undefined) gi.ipAddress = ips[0];
    result.interfaces.push(gi);
  }
  return result;
}

/** Queries the agent once; resolves to agentConnected=false when no agent answers. */
export async function readGuestInfo(socketPath: string, timeoutMs = 3000): Promise<GuestInfo> {
  let client: QmpClient | undefined;
  try {
    client = await QmpClient.open(socketPath, { timeoutMs });
    // guest-sync-delimited discards whatever a previous, interrupted client left in the channel.
    const token = Math.floor(Math.random() * 2 ** 31);
    const echoed = await client.execute<number>('guest-sync-delimited', { id: token });
    if (echoed !== token) return { agentConnected: false, interfaces: [] };
    const info = await client.execute<{ version?: string }>('guest-info');
    const optional = <T>(p: Promise<T>) => p.catch(() => undefined);
    const [os, host, ifaces] = await Promise.all([
      optional(client.execute<AgentOsInfo>('guest-get-osinfo')),
      optional(client.execute<{ 'host-name'?: string }>('guest-get-host-name')),
      optional(client.execute<AgentInterface[]>('guest-network-get-interfaces')),
    ]);
    return guestInfoFromAgent(info, os, host, ifaces);
  } catch {
    return { agentConnected: false, interfaces: [] };
  } finally {
    client?.close();
  }
}

/**
 * Asks the guest agent to reboot the guest its own way (guest-shutdown, mode reboot: the guest's
 * `shutdown -r`), as KubeVirt's soft reboot does when an agent is connected. Resolves to false,
 * having sent nothing, when no agent answers a guest-sync-delimited first.
 */
export async function requestGuestReboot(socketPath: string, timeoutMs = 2000): Promise<boolean> {
  let client: QmpClient | undefined;
  try {
    client = await QmpClient.open(socketPath, { timeoutMs });
    const token = Math.floor(Math.random() * 2 ** 31);
    if ((await client.execute<number>('guest-sync-delimited', { id: token })) !== token) return false;
    // guest-shutdown answers nothing on success: the guest goes down.
    await client.send('guest-shutdown', { mode: 'reboot' });
    return true;
  } catch {
    return false;
  } finally {
    client?.close();
  }
}
