// qemu-guest-agent over its virtio-serial channel (org.qemu.guest_agent.0): OS info, host name,
// interfaces and the freeze state for the VMI's status; freeze and thaw; the logged-in users and
// mounted filesystems. The agent is optional in a guest, so every call is bounded by a timeout and
// "no agent" is a normal answer.
//
// The agent runs inside the guest, so its answers are a hostile guest's to choose: each one is
// validated against a bounded schema before use. An invalid answer is an error of that one call
// (or, while polling, an absent field), never an exception that escapes this module.
import { z } from 'zod';
import {
  GUEST_AGENT_MAX_DISKS_PER_FILESYSTEM,
  GUEST_AGENT_MAX_FILESYSTEMS,
  GUEST_AGENT_MAX_NAME,
  GUEST_AGENT_MAX_PATH,
  GUEST_AGENT_MAX_USERS,
} from '../runtime/api/kubevirt/v1/subresources.js';
import type { VirtualMachineInstanceFileSystem, VirtualMachineInstanceGuestOSUser } from '../runtime/api/kubevirt/v1/subresources.js';
import { FsFreezeStatus, GUEST_AGENT_FREEZE_TIMEOUT_MS, describeZodError } from '../runtime/contracts/launcher-protocol.js';
import type { GuestInfo, GuestInterface } from '../runtime/contracts/launcher-protocol.js';
import { QmpClient, QmpError } from './qmp.js';

export type { GuestInfo, GuestInterface } from '../runtime/contracts/launcher-protocol.js';
type GuestOSInfo = NonNullable<GuestInfo['os']>;

// The agent's own answer shapes (qemu's qga/qapi-schema.json), bounded. Extra fields are ignored.
const text = z.string().max(GUEST_AGENT_MAX_NAME);
const byteCount = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

const AgentInfo = z.looseObject({ version: text.optional() });
const AgentHostName = z.looseObject({ 'host-name': text.optional() });
const AgentOsInfo = z.looseObject({
  id: text.optional(),
  name: text.optional(),
  'pretty-name': text.optional(),
  version: text.optional(),
  'version-id': text.optional(),
  'kernel-release': text.optional(),
  'kernel-version': text.optional(),
  machine: text.optional(),
});
type AgentOsInfo = z.infer<typeof AgentOsInfo>;
const AgentInterfaces = z
  .array(
    z.looseObject({
      name: text,
      'hardware-address': text.optional(),
      'ip-addresses': z.array(z.looseObject({ 'ip-address': text })).max(64).optional(),
    }),
  )
  .max(64);
type AgentInterface = z.infer<typeof AgentInterfaces>[number];
const AgentUsers = z
  .array(z.looseObject({ user: text, domain: text.optional(), 'login-time': z.number().nonnegative().max(1e12) }))
  .max(GUEST_AGENT_MAX_USERS);
const AgentFilesystems = z
  .array(
    z.looseObject({
      name: text,
      mountpoint: z.string().max(GUEST_AGENT_MAX_PATH),
      type: z.string().max(64),
      'used-bytes': byteCount.optional(),
      'total-bytes': byteCount.optional(),
      disk: z
        .array(z.looseObject({ serial: text.optional(), 'bus-type': z.string().max(32) }))
        .max(GUEST_AGENT_MAX_DISKS_PER_FILESYSTEM)
        .optional(),
    }),
  )
  .max(GUEST_AGENT_MAX_FILESYSTEMS);
/** guest-fsfreeze-freeze and -thaw answer the number of filesystems they acted on. */
const AgentCount = z.int().nonnegative();

/** A guest agent call that failed: no agent, a refusal, or an answer that is not valid. */
export class GuestAgentError extends Error {
  override readonly name = 'GuestAgentError';
}

/** The message of an agent that does not answer guest-sync-delimited. */
export const NO_GUEST_AGENT = 'no guest agent answers on the org.qemu.guest_agent.0 channel';

/** Converts the agent's answers to the shapes of VMI status (guestOSInfo, interfaces). */
export function guestInfoFromAgent(info: { version?: string | undefined }, os: AgentOsInfo | undefined, host: { 'host-name'?: string | undefined } | undefined, ifaces: AgentInterface[] | undefined): GuestInfo {
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

/** guest-get-users in KubeVirt's shape (VirtualMachineInstanceGuestOSUser). */
export function usersFromAgent(answer: unknown): VirtualMachineInstanceGuestOSUser[] {
  return parseAnswer('guest-get-users', AgentUsers, answer).map((u) => ({
    userName: u.user,
    ...(u.domain !== undefined ? { domain: u.domain } : {}),
    loginTime: u['login-time'],
  }));
}

/** guest-get-fsinfo in KubeVirt's shape (VirtualMachineInstanceFileSystem). */
export function filesystemsFromAgent(answer: unknown): VirtualMachineInstanceFileSystem[] {
  return parseAnswer('guest-get-fsinfo', AgentFilesystems, answer).map((fs) => ({
    diskName: fs.name,
    mountPoint: fs.mountpoint,
    fileSystemType: fs.type,
    usedBytes: fs['used-bytes'] ?? 0,
    totalBytes: fs['total-bytes'] ?? 0,
    disk: (fs.disk ?? []).map((d) => ({ ...(d.serial !== undefined ? { serial: d.serial } : {}), busType: d['bus-type'] })),
  }));
}

function parseAnswer<T extends z.ZodType>(command: string, schema: T, answer: unknown): z.infer<T> {
  const parsed = schema.safeParse(answer);
  if (!parsed.success) throw new GuestAgentError(`the guest agent's answer to ${command} is not valid: ${describeZodError(parsed.error, 'return')}`);
  return parsed.data;
}

/** The answer when valid, else undefined (an optional part of the polled guest information). */
function optionalPart<T extends z.ZodType>(schema: T, answer: unknown): z.infer<T> | undefined {
  const parsed = schema.safeParse(answer);
  return parsed.success ? parsed.data : undefined;
}

/**
 * The guest agent channel of one domain. QEMU's chardev serves one client at a time, so the
 * sessions (the status poll, a soft reboot, a freeze) run one after another, never interleaved.
 */
export class GuestAgent {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly socketPath: string) {}

  /**
   * Runs `fn` on a fresh connection once guest-sync-delimited has flushed whatever an earlier,
   * interrupted client left in the channel: a partial request (the 0xFF byte resets the agent's
   * parser) and the late answers to its requests, which the agent writes into this connection
   * before the sync's answer and which match no id of this one. Rejects with NO_GUEST_AGENT when
   * nothing answers within `timeoutMs`, which is also the default for each of `fn`'s commands.
   */
  session<T>(timeoutMs: number, fn: (client: QmpClient) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      let client: QmpClient | undefined;
      try {
        try {
          client = await QmpClient.open(this.socketPath, { timeoutMs });
          client.resetAgentParser();
          const token = Math.floor(Math.random() * 2 ** 31);
          if ((await client.execute<unknown>('guest-sync-delimited', { id: token })) !== token) throw new Error('guest-sync-delimited echoed another token');
        } catch (error) {
          throw new GuestAgentError(`${NO_GUEST_AGENT} (${(error as Error).message})`);
        }
        return await fn(client);
      } catch (error) {
        if (error instanceof GuestAgentError) throw error;
        if (error instanceof QmpError) throw new GuestAgentError(`the guest agent refused ${error.command}: ${error.message.slice(0, 512)}`);
        throw new GuestAgentError(`the guest agent: ${(error as Error).message.slice(0, 512)}`);
      } finally {
        client?.close();
      }
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Queries the agent once; resolves to agentConnected=false when no agent answers. */
  async readGuestInfo(timeoutMs = 3000): Promise<GuestInfo> {
    try {
      return await this.session(timeoutMs, async (client) => {
        const info = optionalPart(AgentInfo, await client.execute<unknown>('guest-info')) ?? {};
        const fsFreezeStatus = optionalPart(FsFreezeStatus, await client.execute<unknown>('guest-fsfreeze-status').catch(() => undefined));
        // A frozen agent refuses everything but a few commands (qemu-ga's freeze allow-list): the
        // caller keeps what it read before the freeze.
        const optional = <T extends z.ZodType>(command: string, schema: T) =>
          fsFreezeStatus === 'frozen' ? undefined : client.execute<unknown>(command).then((a) => optionalPart(schema, a), () => undefined);
        const [os, host, ifaces] = [await optional('guest-get-osinfo', AgentOsInfo), await optional('guest-get-host-name', AgentHostName), await optional('guest-network-get-interfaces', AgentInterfaces)];
        const result = guestInfoFromAgent(info, os, host, ifaces);
        if (fsFreezeStatus) result.fsFreezeStatus = fsFreezeStatus;
        return result;
      });
    } catch {
      return { agentConnected: false, interfaces: [] };
    }
  }

  /**
   * Asks the guest agent to reboot the guest its own way (guest-shutdown, mode reboot: the guest's
   * `shutdown -r`), as KubeVirt's soft reboot does when an agent is connected. Resolves to false,
   * having sent nothing, when no agent answers a guest-sync-delimited first.
   */
  async requestReboot(timeoutMs = 2000): Promise<boolean> {
    try {
      // guest-shutdown answers nothing on success: the guest goes down.
      await this.session(timeoutMs, async (client) => client.send('guest-shutdown', { mode: 'reboot' }));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Freezes every filesystem the agent can freeze, unless they are frozen already (KubeVirt's
   * freeze is idempotent). The guest flushes its writes first, which may take a while.
   */
  async freeze(timeoutMs = 3000): Promise<{ frozen: number | undefined }> {
    return this.session(timeoutMs, async (client) => {
      const status = parseAnswer('guest-fsfreeze-status', FsFreezeStatus, await client.execute<unknown>('guest-fsfreeze-status'));
      if (status === 'frozen') return { frozen: undefined };
      return { frozen: parseAnswer('guest-fsfreeze-freeze', AgentCount, await client.execute<unknown>('guest-fsfreeze-freeze', undefined, GUEST_AGENT_FREEZE_TIMEOUT_MS)) };
    });
  }

  /** Thaws the guest's filesystems unless they are thawed already. */
  async thaw(timeoutMs = 3000): Promise<{ thawed: number | undefined }> {
    return this.session(timeoutMs, async (client) => {
      const status = parseAnswer('guest-fsfreeze-status', FsFreezeStatus, await client.execute<unknown>('guest-fsfreeze-status'));
      if (status === 'thawed') return { thawed: undefined };
      return { thawed: parseAnswer('guest-fsfreeze-thaw', AgentCount, await client.execute<unknown>('guest-fsfreeze-thaw', undefined, GUEST_AGENT_FREEZE_TIMEOUT_MS)) };
    });
  }

  async users(timeoutMs = 5000): Promise<VirtualMachineInstanceGuestOSUser[]> {
    return this.session(timeoutMs, async (client) => usersFromAgent(await client.execute<unknown>('guest-get-users')));
  }

  async filesystems(timeoutMs = 5000): Promise<VirtualMachineInstanceFileSystem[]> {
    return this.session(timeoutMs, async (client) => filesystemsFromAgent(await client.execute<unknown>('guest-get-fsinfo')));
  }
}
