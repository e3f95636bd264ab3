// The node handler's client of the launcher's command socket (docs/launcher-protocol.md,
// launcher/command-server.ts): newline-delimited JSON requests `{id, command, args}` answered by
// `{id, ok, result | error}`; after `subscribe`, the launcher pushes `{event}` lines, each carrying
// the domain's whole status. The handler keeps the latest one (level, not edges), so a missed or
// repeated event never matters.
import { closeSync, openSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { VirtualMachineInstanceGuestOSInfo, VirtualMachineInstanceNetworkInterface } from '../runtime/api/index.js';
import type { DomainState, PauseReason } from './domain-state.js';
import type { LauncherDialer, LauncherSession, LauncherSessionHandlers } from './launcher-connections.js';

/** The launcher's domain status, as far as the handler reads it (launcher/domain.ts DomainStatus). */
export interface LauncherDomainStatus {
  phase: 'Pending' | 'Starting' | 'Running' | 'Paused' | 'ShuttingDown' | 'Succeeded' | 'Failed';
  reason?: string;
  qemuStatus?: string;
  accelerator?: { accel: 'kvm' | 'tcg'; reason: string };
  conditions?: { type: string; status: string; reason: string; message: string }[];
  guestInfo?: {
    agentConnected: boolean;
    hostname?: string;
    os?: VirtualMachineInstanceGuestOSInfo;
    interfaces?: { interfaceName: string; mac?: string; ipAddress?: string; ipAddresses: string[] }[];
  };
  error?: { step: string; message: string; qemuStderr: string[] };
}

interface LauncherResponse {
  id?: number | string;
  ok: boolean;
  result?: unknown;
  error?: { message: string; step?: string; qemuStderr?: string[] };
}

/** A command the launcher refused or failed, with its step and QEMU's last lines when it has them. */
export class LauncherCommandError extends Error {
  constructor(
    readonly command: string,
    message: string,
    readonly step?: string,
    readonly qemuStderr: string[] = [],
  ) {
    super(`launcher ${command}: ${message}`);
    this.name = 'LauncherCommandError';
  }
}

const qemuStderrLinesInMessages = 5;

/** The handler's view of a launcher status: a whole DomainState (minus the pod), absent fields explicit. */
export function domainStateFromLauncher(status: LauncherDomainStatus): Omit<DomainState, 'podUid'> {
  const guest = status.guestInfo;
  const state: Omit<DomainState, 'podUid'> = {
    phase: 'Starting',
    agentConnected: guest?.agentConnected === true,
    accelerator: status.accelerator?.accel,
    acceleratorReason: status.accelerator?.reason,
    guestOSInfo: guest?.agentConnected && guest.os && Object.keys(guest.os).length > 0 ? guest.os : undefined,
    interfaces: guest?.agentConnected ? guestInterfaces(guest.interfaces ?? []) : undefined,
    pauseReason: undefined,
    failure: undefined,
    shutoffReason: undefined,
  };
  switch (status.phase) {
    case 'Pending':
      state.phase = 'Pending';
      break;
    case 'Starting':
      state.phase = 'Starting';
      break;
    case 'Running':
      state.phase = 'Running';
      break;
    case 'Paused':
      state.phase = 'Paused';
      state.pauseReason = pauseReasonOf(status);
      break;
    case 'ShuttingDown':
      state.phase = 'ShuttingDown';
      break;
    case 'Succeeded':
      state.phase = 'Shutoff';
      state.shutoffReason = status.reason === 'GuestShutdown' ? 'GuestShutdown' : 'Stopped';
      break;
    case 'Failed': {
      state.phase = 'Failed';
      const lines = (status.error?.qemuStderr ?? []).slice(-qemuStderrLinesInMessages);
      const step = status.error?.step && status.error.step !== 'runtime' ? `${status.error.step}: ` : '';
      const message = status.error ? `${step}${status.error.message}${lines.length ? `; QEMU said: ${lines.join(' | ')}` : ''}` : `the domain failed (${status.reason ?? 'no reason given'})`;
      state.failure = { reason: (status.reason ?? 'LauncherFailed').replace(/:/g, ''), message };
      break;
    }
  }
  return state;
}

function pauseReasonOf(status: LauncherDomainStatus): PauseReason {
  if (status.reason === 'MigrationTarget') return 'Migration';
  const paused = status.conditions?.find((condition) => condition.type === 'Paused');
  if (paused?.reason === 'PausedIOError' || status.qemuStatus === 'io-error') return 'IOError';
  return 'User';
}

/** The guest agent's interfaces in VMI status shape; the loopback is nobody's business. */
function guestInterfaces(interfaces: NonNullable<NonNullable<LauncherDomainStatus['guestInfo']>['interfaces']>): VirtualMachineInstanceNetworkInterface[] {
  return interfaces
    .filter((iface) => iface.interfaceName !== 'lo')
    .map((iface) => {
      const out: VirtualMachineInstanceNetworkInterface = { interfaceName: iface.interfaceName, infoSource: 'guest-agent' };
      if (iface.mac) out.mac = iface.mac;
      if (iface.ipAddress) out.ipAddress = iface.ipAddress;
      if (iface.ipAddresses.length > 0) out.ipAddresses = iface.ipAddresses;
      return out;
    });
}

/** The longest path a unix socket address holds (sun_path is 108 bytes with its NUL). */
const maxSocketPathLength = 107;

/**
 * Connects to a unix socket whatever its path's length. A launcher's socket under the kubelet's
 * pods directory is longer than sun_path allows (/var/lib/kubelet/pods/<uid>/volumes/
 * kubernetes.io~empty-dir/private/launcher.sock is 112 bytes), so a long path is reached through
 * an open descriptor of its directory: /proc/self/fd/<fd>/launcher.sock.
 */
export async function connectUnixSocket(socketPath: string, timeoutMs = 5000): Promise<net.Socket> {
  let dirFd: number | undefined;
  let address = socketPath;
  if (Buffer.byteLength(socketPath) > maxSocketPathLength) {
    dirFd = openSync(path.dirname(socketPath), 'r');
    address = `/proc/self/fd/${dirFd}/${path.basename(socketPath)}`;
  }
  try {
    return await new Promise<net.Socket>((resolve, reject) => {
      const candidate = net.createConnection(address);
      const timer = setTimeout(() => {
        candidate.destroy();
        reject(new Error(`timed out connecting to ${socketPath}`));
      }, timeoutMs);
      candidate.once('connect', () => {
        clearTimeout(timer);
        resolve(candidate);
      });
      candidate.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  } finally {
    if (dirFd !== undefined) closeSync(dirFd);
  }
}

/** Commands whose answer comes only when a long action ends (QEMU started, QEMU gone). */
const longCommands = new Set(['start', 'sync', 'shutdown', 'kill', 'migrate']);
const shortCommandTimeoutMs = 30_000;

/** One connection to one launcher. */
export class LauncherClient implements LauncherSession {
  private readonly pending = new Map<number, { command: string; resolve: (value: unknown) => void; reject: (error: Error) => void; timer?: NodeJS.Timeout }>();
  private nextId = 1;
  private buffer = '';
  private closed = false;

  private constructor(
    private readonly socket: net.Socket,
    private readonly handlers: LauncherSessionHandlers,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('close', () => this.onClosed(new Error('the launcher closed the connection')));
    socket.on('error', (error) => this.onClosed(error));
  }

  /** Connects, subscribes, and hands the current status to onState before resolving. */
  static async connect(socketPath: string, handlers: LauncherSessionHandlers, timeoutMs = 5000): Promise<LauncherClient> {
    const socket = await connectUnixSocket(socketPath, timeoutMs);
    const client = new LauncherClient(socket, handlers);
    const status = (await client.request('subscribe')) as LauncherDomainStatus;
    handlers.onState(domainStateFromLauncher(status));
    return client;
  }

  /** Sends a command and resolves with its result; rejects with LauncherCommandError. */
  request(command: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error(`launcher ${command}: the connection is closed`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const entry: { command: string; resolve: (value: unknown) => void; reject: (error: Error) => void; timer?: NodeJS.Timeout } = { command, resolve, reject };
      if (!longCommands.has(command)) {
        entry.timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new LauncherCommandError(command, `no answer within ${shortCommandTimeoutMs / 1000} s`));
        }, shortCommandTimeoutMs);
      }
      this.pending.set(id, entry);
      this.socket.write(`${JSON.stringify({ id, command, ...(args ? { args } : {}) })}\n`);
    });
  }

  /** Starts the domain (the launcher's idempotent sync); the outcome also arrives as events. */
  async start(): Promise<void> {
    await this.request('start');
  }

  async pause(): Promise<void> {
    await this.request('pause');
  }

  async unpause(): Promise<void> {
    await this.request('unpause');
  }

  /** The launcher offers a system reset (QMP system_reset), which is what a reboot request gets. */
  async softReboot(): Promise<void> {
    await this.request('reset');
  }

  /** Resolves when QEMU is gone: the launcher powers the guest off, and forces it after the grace period. */
  async shutdown(gracePeriodSeconds: number): Promise<void> {
    await this.request('shutdown', { gracePeriodSeconds });
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
    this.failPending(new Error('the connection was closed'));
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline).trim();
      this.buffer = this.buffer.slice(newline + 1);
      if (line) this.onLine(line);
    }
  }

  private onLine(line: string): void {
    let message: { event?: { status?: LauncherDomainStatus } } & Partial<LauncherResponse>;
    try {
      message = JSON.parse(line) as typeof message;
    } catch {
      this.onClosed(new Error(`the launcher sent a line that is not JSON: ${line.slice(0, 200)}`));
      this.socket.destroy();
      return;
    }
    if (message.event) {
      if (message.event.status) this.handlers.onState(domainStateFromLauncher(message.event.status));
      return;
    }
    if (typeof message.id !== 'number') return;
    const entry = this.pending.get(message.id);
    if (!entry) return;
    this.pending.delete(message.id);
    clearTimeout(entry.timer);
    if (message.ok) entry.resolve(message.result);
    else entry.reject(new LauncherCommandError(entry.command, message.error?.message ?? 'failed', message.error?.step, message.error?.qemuStderr));
  }

  private onClosed(error: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.failPending(error);
    this.handlers.onClose(error);
  }

  private failPending(error: Error): void {
    for (const [id, entry] of this.pending) {
      clearTimeout(entry.timer);
      entry.reject(new LauncherCommandError(entry.command, error.message));
      this.pending.delete(id);
    }
  }
}

/** The dialer main.ts gives LauncherConnections. */
export const dialLauncher: LauncherDialer = (socketPath, handlers) => LauncherClient.connect(socketPath, handlers);
