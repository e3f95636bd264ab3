// The client of the launcher's command socket, the one both the node handler and the tests use.
// The protocol is declared once in runtime/contracts/launcher-protocol.ts: requests
// `{id, command, args}` answered by `{id, ok, result | error}`; after `subscribe`, the launcher
// pushes `{event}` lines, each carrying the domain's whole status. The handler keeps the latest
// one (level, not edges), so a missed or repeated event never matters.
//
// A launcher is not trusted (a tenant may exec into their launcher pod; a guest may escape QEMU):
// every line is capped, parsed and validated against the schema before use; an invalid message is
// logged and dropped; a line over the cap closes this connection only; nothing a launcher sends
// can throw out of this module.
import { EventEmitter } from 'node:events';
import { Counter } from 'prom-client';
import { closeSync, constants as fsConstants, fstatSync, openSync, watch } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { VirtualMachineInstanceGuestOSInfo, VirtualMachineInstanceNetworkInterface } from '../runtime/api/index.js';
import { LAUNCHER_UID } from '../runtime/contracts/launcher-pod.js';
import { LAUNCHER_MAX_LINE_BYTES, LAUNCHER_STATUS_LIMITS, LauncherMessage, describeZodError, launcherCommands } from '../runtime/contracts/launcher-protocol.js';
import type { DomainEvent, DomainStatus, GuestInterface, LauncherArgs, LauncherCommand, LauncherResult } from '../runtime/contracts/launcher-protocol.js';
import type { Logger } from '../runtime/logging.js';
import { silentLogger } from '../runtime/logging.js';
import { registry } from '../runtime/metrics.js';
import { NdjsonReader, ndjsonLine, parseJsonLine } from '../runtime/ndjson.js';
import { storableText } from '../runtime/text.js';
import type { DomainState, PauseReason } from './domain-state.js';
import type { LauncherDialer, LauncherSession, LauncherSocketWatcher } from './launcher-connections.js';

/** A command the launcher refused or failed, with its step and QEMU's last lines when it has them. */
export class LauncherCommandError extends Error {
  constructor(
    readonly command: string,
    message: string,
    readonly step?: string,
    readonly qemuStderr: string[] = [],
  ) {
    super(`launcher ${command}: ${message}${qemuStderr.length ? `\nQEMU said:\n  ${qemuStderr.slice(-5).join('\n  ')}` : ''}`);
    this.name = 'LauncherCommandError';
  }
}

const qemuStderrLinesInMessages = 5;

/** The parts of a launcher status the handler reads. */
export type LauncherStatusView = Pick<DomainStatus, 'phase'> & Partial<Pick<DomainStatus, 'reason' | 'qemuStatus' | 'accelerator' | 'conditions' | 'guestInfo' | 'error'>>;

/**
 * The handler's view of a launcher status: a whole DomainState (minus the pod), absent fields
 * explicit. Everything in it that reaches the VMI's status is bounded (LAUNCHER_STATUS_LIMITS).
 */
export function domainStateFromLauncher(status: LauncherStatusView): Omit<DomainState, 'podUid'> {
  const guest = status.guestInfo;
  const state: Omit<DomainState, 'podUid'> = {
    phase: 'Starting',
    agentConnected: guest?.agentConnected === true,
    accelerator: status.accelerator?.accel,
    acceleratorReason: status.accelerator?.reason === undefined ? undefined : storableText(status.accelerator.reason, LAUNCHER_STATUS_LIMITS.messageChars),
    kvmProbe: status.accelerator?.kvmProbe,
    guestOSInfo: guest?.agentConnected && guest.os && Object.keys(guest.os).length > 0 ? guestOSInfo(guest.os) : undefined,
    interfaces: guest?.agentConnected ? guestInterfaces(guest.interfaces ?? []) : undefined,
    fsFrozen: guest?.agentConnected === true && guest.fsFreezeStatus === 'frozen' ? true : undefined,
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
      state.failure = { reason: conditionReason(status.reason ?? '', 'LauncherFailed'), message: storableText(message, LAUNCHER_STATUS_LIMITS.messageChars) };
      break;
    }
  }
  return state;
}

/**
 * QEMU's run states of a guest a migration holds stopped: arriving (inmigrate), stopped for the
 * switch-over (finish-migrate), or gone to the target (postmigrate). Never the user's pause: an
 * unpause then would resume a guest whose memory is already on its way, or run it twice.
 */
const MIGRATION_QEMU_STATES: ReadonlySet<string> = new Set(['inmigrate', 'finish-migrate', 'postmigrate']);

function pauseReasonOf(status: LauncherStatusView): PauseReason {
  if (status.reason === 'MigrationTarget') return 'Migration';
  // A user's pause a failed migration left in QEMU's postmigrate is still the user's.
  if (status.reason !== 'PausedByUser' && MIGRATION_QEMU_STATES.has(status.qemuStatus ?? '')) return 'Migration';
  const paused = status.conditions?.find((condition) => condition.type === 'Paused');
  if (paused?.reason === 'PausedIOError' || status.qemuStatus === 'io-error') return 'IOError';
  return 'User';
}

/** A launcher's reason as a condition reason: only a reason's characters, bounded; `fallback` when none is left. */
function conditionReason(reason: string, fallback: string): string {
  return reason.replace(/[^A-Za-z0-9_-]/g, '').slice(0, LAUNCHER_STATUS_LIMITS.reasonChars) || fallback;
}

/** The guest OS as the agent reports it, each field bounded. */
function guestOSInfo(os: VirtualMachineInstanceGuestOSInfo): VirtualMachineInstanceGuestOSInfo {
  return Object.fromEntries(Object.entries(os).map(([field, value]) => [field, storableText(value, LAUNCHER_STATUS_LIMITS.textChars)]));
}

/** The guest agent's interfaces in VMI status shape, bounded; the loopback is nobody's business. */
function guestInterfaces(interfaces: GuestInterface[]): VirtualMachineInstanceNetworkInterface[] {
  const address = (text: string) => storableText(text, LAUNCHER_STATUS_LIMITS.addressChars);
  return interfaces
    .filter((iface) => iface.interfaceName !== 'lo')
    .slice(0, LAUNCHER_STATUS_LIMITS.interfaces)
    .map((iface) => {
      const out: VirtualMachineInstanceNetworkInterface = { interfaceName: address(iface.interfaceName), infoSource: 'guest-agent' };
      if (iface.mac) out.mac = address(iface.mac);
      if (iface.ipAddress) out.ipAddress = address(iface.ipAddress);
      if (iface.ipAddresses.length > 0) out.ipAddresses = iface.ipAddresses.slice(0, LAUNCHER_STATUS_LIMITS.addressesPerInterface).map(address);
      return out;
    });
}

/** Connects to a unix socket (the handler's are /proc/self/fd/<fd>: see openLauncherSocket). */
export function connectUnixSocket(socketPath: string, timeoutMs = 5000): Promise<net.Socket> {
  return new Promise<net.Socket>((resolve, reject) => {
    const candidate = net.createConnection(socketPath);
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
}

type DropReason = 'not-json' | 'schema' | 'unmatched' | 'invalid-result' | 'oversized' | 'other-vmi';

/** What launchers sent that the handler did not use: a launcher that misbehaves shows here. */
export const launcherMessagesDropped = new Counter({
  name: 'kubevm_node_handler_launcher_messages_dropped_total',
  help: 'Messages from launchers dropped as invalid (not JSON, not the protocol, unmatched, oversized lines, about another VMI).',
  labelNames: ['reason'] as const,
  registers: [registry],
});

export const launcherSocketsRefused = new Counter({
  name: 'kubevm_node_handler_launcher_sockets_refused_total',
  help: 'Launcher sockets or launchers the handler refused to talk to (links, not a socket, wrong owner, another VMI).',
  registers: [registry],
});

/** Commands whose answer comes only when a long action ends (QEMU started, QEMU gone, migrated). */
const longCommands: ReadonlySet<LauncherCommand> = new Set(['start', 'sync', 'shutdown', 'kill', 'migrate']);
const shortCommandTimeoutMs = 30_000;
/** Invalid messages logged per connection before only every thousandth is (a flood is one line). */
const invalidMessagesLogged = 10;

interface Pending {
  command: LauncherCommand;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer?: NodeJS.Timeout;
}

export interface LauncherClientOptions {
  log?: Logger;
  /** The longest line accepted; default the protocol's LAUNCHER_MAX_LINE_BYTES. */
  maxLineBytes?: number;
}

/**
 * One connection to one launcher. Emits 'event' (a validated DomainEvent, after subscribe()) and
 * 'close' (why). A listener that throws is logged; it cannot break the connection or the process.
 */
export class LauncherClient extends EventEmitter<{ event: [DomainEvent]; close: [Error] }> {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closedBecause: Error | undefined;
  private invalidMessages = 0;
  private readonly log: Logger;

  constructor(
    private readonly socket: net.Socket,
    options: LauncherClientOptions = {},
  ) {
    super();
    this.log = options.log ?? silentLogger;
    const reader = new NdjsonReader({
      maxLineBytes: options.maxLineBytes ?? LAUNCHER_MAX_LINE_BYTES,
      onLine: (line) => this.onLine(line),
      onOverflow: (bytes) => {
        launcherMessagesDropped.inc({ reason: 'oversized' });
        this.log.warn({ bytes }, 'the launcher sent a line over the limit; closing the connection');
        this.onClosed(new Error(`the launcher sent a line of more than ${bytes} bytes`));
        socket.destroy();
      },
    });
    socket.on('data', (chunk: Buffer) => reader.push(chunk));
    socket.on('close', () => this.onClosed(new Error('the launcher closed the connection')));
    socket.on('error', (error) => this.onClosed(error));
  }

  get isClosed(): boolean {
    return this.closedBecause !== undefined;
  }

  /** Why the connection ended, once it has. */
  get closeReason(): Error | undefined {
    return this.closedBecause;
  }

  /** Sends a command; resolves with its validated result, rejects with LauncherCommandError. */
  call<C extends LauncherCommand>(command: C, ...args: Record<never, never> extends LauncherArgs<C> ? [args?: LauncherArgs<C>] : [args: LauncherArgs<C>]): Promise<LauncherResult<C>> {
    if (this.closedBecause) return Promise.reject(new LauncherCommandError(command, `the connection is closed (${this.closedBecause.message})`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const entry: Pending = { command, resolve: resolve as (value: unknown) => void, reject };
      if (!longCommands.has(command)) {
        entry.timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new LauncherCommandError(command, `no answer within ${shortCommandTimeoutMs / 1000} s`));
        }, shortCommandTimeoutMs);
      }
      this.pending.set(id, entry);
      this.socket.write(ndjsonLine({ id, command, ...(args[0] ? { args: args[0] } : {}) }));
    });
  }

  /** Starts receiving pushed events; resolves to the status at the moment of subscribing. */
  subscribe(): Promise<DomainStatus> {
    return this.call('subscribe');
  }

  close(): void {
    this.onClosed(new Error('the connection was closed by the client'));
    this.socket.destroy();
  }

  private onLine(line: string): void {
    const json = parseJsonLine(line);
    if (!json.ok) return this.dropInvalid('not-json', `not JSON (${json.error})`, line);
    const parsed = LauncherMessage.safeParse(json.value);
    if (!parsed.success) return this.dropInvalid('schema', describeZodError(parsed.error), line);
    const message = parsed.data;
    if ('event' in message) {
      this.deliver(message.event);
      return;
    }
    if (typeof message.id !== 'number') return this.dropInvalid('unmatched', 'a response without a request id', line);
    const entry = this.pending.get(message.id);
    if (!entry) return this.dropInvalid('unmatched', `a response to no pending request (id ${message.id})`, line);
    this.pending.delete(message.id);
    clearTimeout(entry.timer);
    if (!message.ok) {
      entry.reject(new LauncherCommandError(entry.command, message.error.message, message.error.step, message.error.qemuStderr));
      return;
    }
    const result = launcherCommands[entry.command].result.safeParse(message.result);
    if (!result.success) {
      const why = `an invalid answer: ${describeZodError(result.error, 'result')}`;
      this.dropInvalid('invalid-result', why, line);
      entry.reject(new LauncherCommandError(entry.command, why));
      return;
    }
    entry.resolve(result.data);
  }

  private deliver(event: DomainEvent): void {
    try {
      this.emit('event', event);
    } catch (error) {
      this.log.error({ err: error, eventType: event.type }, 'handling a launcher event failed');
    }
  }

  private dropInvalid(reason: DropReason, why: string, line: string): void {
    launcherMessagesDropped.inc({ reason });
    this.invalidMessages += 1;
    if (this.invalidMessages <= invalidMessagesLogged || this.invalidMessages % 1000 === 0) {
      this.log.warn({ why, line: line.slice(0, 200), invalidMessages: this.invalidMessages }, 'dropped an invalid message from the launcher');
    }
  }

  private onClosed(error: Error): void {
    if (this.closedBecause) return;
    this.closedBecause = error;
    for (const [id, entry] of this.pending) {
      clearTimeout(entry.timer);
      entry.reject(new LauncherCommandError(entry.command, error.message));
      this.pending.delete(id);
    }
    try {
      this.emit('close', error);
    } catch (listenerError) {
      this.log.error({ err: listenerError }, 'handling a launcher connection close failed');
    }
  }
}

/** Linux's O_PATH (not in fs.constants): a descriptor naming an inode without opening it for I/O. */
export const O_PATH = 0o10000000;

/** Why the handler refused to talk to a launcher's socket: the pod tried something. */
export class LauncherSocketRefused extends Error {
  constructor(socketPath: string, why: string) {
    super(`refusing launcher socket ${socketPath}: ${why}`);
    this.name = 'LauncherSocketRefused';
    launcherSocketsRefused.inc();
  }
}

/**
 * Opens a directory inside the pods directory without following any symlink the pod may have
 * planted: each directory below `podsDir` is opened relative to its parent's descriptor with
 * O_NOFOLLOW (openat through /proc/self/fd), so no component can be swapped for a link between
 * check and use. Returns the directory's descriptor (the caller closes it); `/proc/self/fd/<fd>/name`
 * then names an entry of that very directory.
 */
export function openPodDirectory(podsDir: string, dirPath: string): number {
  const relative = path.relative(podsDir, dirPath);
  const parts = relative === '' ? [] : relative.split(path.sep);
  if (path.isAbsolute(relative) || parts.some((part) => part === '' || part === '.' || part === '..')) throw new LauncherSocketRefused(dirPath, `not inside ${podsDir}`);
  const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = fsConstants;
  let dirFd = openSync(podsDir, O_RDONLY | O_DIRECTORY);
  try {
    for (const [index, part] of parts.entries()) {
      let next: number;
      try {
        next = openSync(`/proc/self/fd/${dirFd}/${part}`, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        const where = parts.slice(0, index + 1).join('/');
        if (code === 'ELOOP' || code === 'ENOTDIR') throw new LauncherSocketRefused(dirPath, `${where} is a symbolic link or not a directory`);
        throw new Error(`cannot open ${path.join(podsDir, where)}: ${(error as Error).message}`, { cause: error });
      }
      closeSync(dirFd);
      dirFd = next;
    }
    return dirFd;
  } catch (error) {
    closeSync(dirFd);
    throw error;
  }
}

/**
 * Opens a launcher's socket inside the pods directory without following any symlink the pod may
 * have planted (its directory through openPodDirectory), and checks that it is what a launcher
 * makes: the socket itself is opened with O_PATH|O_NOFOLLOW and must be a socket, owned by the
 * launcher's uid, with no other name (a hard link made elsewhere). The connection then goes to that
 * very inode (/proc/self/fd/<fd>), not to whatever the path names by then. Returns the connected
 * socket.
 */
export async function openLauncherSocket(podsDir: string, socketPath: string, options: { ownerUid: number; timeoutMs?: number }): Promise<net.Socket> {
  const name = path.basename(socketPath);
  const parts = path.relative(podsDir, socketPath).split(path.sep);
  if (parts.length < 2 || name === '.' || name === '..') throw new LauncherSocketRefused(socketPath, `not inside ${podsDir}`);
  const dirFd = openPodDirectory(podsDir, path.dirname(socketPath));
  let socketFd: number | undefined;
  try {
    try {
      socketFd = openSync(`/proc/self/fd/${dirFd}/${name}`, O_PATH | fsConstants.O_NOFOLLOW);
    } catch (error) {
      throw new Error(`cannot open ${socketPath}: ${(error as Error).message}`, { cause: error });
    }
    const stats = fstatSync(socketFd);
    if (stats.isSymbolicLink()) throw new LauncherSocketRefused(socketPath, 'it is a symbolic link');
    if (!stats.isSocket()) throw new LauncherSocketRefused(socketPath, 'it is not a socket');
    if (stats.uid !== options.ownerUid) throw new LauncherSocketRefused(socketPath, `it is owned by uid ${stats.uid}, not by the launcher's uid ${options.ownerUid}`);
    if (stats.nlink !== 1) throw new LauncherSocketRefused(socketPath, `it has ${stats.nlink} names (a hard link)`);
    return await connectUnixSocket(`/proc/self/fd/${socketFd}`, options.timeoutMs);
  } finally {
    closeSync(dirFd);
    if (socketFd !== undefined) closeSync(socketFd);
  }
}

/**
 * Watches a launcher pod's socket directory (inotify) so the handler dials when the socket appears
 * rather than at its next retry. The directory is reached as openPodDirectory reaches it (no link
 * followed) and the watch is set on that very inode through /proc/self/fd; the descriptor is closed
 * at once (the watch holds the inode, not the descriptor). An event is only a hint to dial: the dial
 * checks the socket as always. Throws when the directory cannot be opened (not there yet).
 */
export const watchLauncherSocketDirectory: LauncherSocketWatcher = (target, onChange, onError) => {
  const name = path.basename(target.socketPath);
  const dirFd = openPodDirectory(target.podsDir, path.dirname(target.socketPath));
  try {
    // Not persistent: a watch must not keep a stopping handler alive.
    const watcher = watch(`/proc/self/fd/${dirFd}`, { persistent: false }, (_event, filename) => {
      // Other files of the directory (QMP, the serial log) change all the time: only the socket's name counts.
      if (filename === null || filename === name) onChange();
    });
    watcher.on('error', (error) => {
      watcher.close();
      onError(error);
    });
    return { close: () => watcher.close() };
  } finally {
    closeSync(dirFd);
  }
};

/**
 * The node handler's dialer: opens the pod's socket safely, subscribes, checks that the launcher
 * serves the VMI it is dialled for, and feeds every status the launcher pushes to the handler as
 * DomainState; the session forwards the user's intents.
 */
export function launcherDialer(options: { ownerUid?: number } = {}): LauncherDialer {
  const ownerUid = options.ownerUid ?? LAUNCHER_UID;
  return async (target, handlers, log = silentLogger) => {
    const socket = await openLauncherSocket(target.podsDir, target.socketPath, { ownerUid });
    const client = new LauncherClient(socket, { log });
    const serves = (status: DomainStatus) => status.vmi.namespace === target.vmi.namespace && status.vmi.name === target.vmi.name;
    let evented = false;
    const report = (status: DomainStatus) => handlers.onState(domainStateFromLauncher(status));
    client.on('event', (event) => {
      // A launcher speaks for its own VMI only; anything else is dropped, as any invalid message.
      if (!serves(event.status)) {
        launcherMessagesDropped.inc({ reason: 'other-vmi' });
        log.warn({ claimed: event.status.vmi }, 'dropped an event about another VMI from the launcher');
        return;
      }
      evented = true;
      report(event.status);
    });
    try {
      const initial = await client.subscribe();
      if (!serves(initial)) {
        throw new LauncherSocketRefused(target.socketPath, `the launcher serves VMI ${initial.vmi.namespace}/${initial.vmi.name}, not ${target.vmi.namespace}/${target.vmi.name}`);
      }
      // The answer may have come just before the connection was cut (e.g. an endless line).
      if (client.closeReason) throw client.closeReason;
      // An event that arrived with the answer is newer than the answer.
      if (!evented) report(initial);
    } catch (error) {
      client.close();
      throw error;
    }
    client.on('close', (error) => handlers.onClose(error));
    const session: LauncherSession = {
      start: async () => void (await client.call('start')),
      pause: async () => void (await client.call('pause')),
      unpause: async () => void (await client.call('unpause')),
      softReboot: async () => void (await client.call('softReboot')),
      reset: async () => void (await client.call('reset')),
      shutdown: async (gracePeriodSeconds) => void (await client.call('shutdown', { gracePeriodSeconds })),
      close: () => client.close(),
      launcher: client,
    };
    return session;
  };
}
