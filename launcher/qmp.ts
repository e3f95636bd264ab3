// A small QMP client (QEMU Machine Protocol, docs/interop/qmp-spec): one unix socket, the greeting,
// qmp_capabilities, then commands tagged with ids and answered in any order, and asynchronous
// events. The same framing serves qemu-guest-agent, which has no greeting and no events
// (see guest-agent.ts).
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { QmpEvent } from '../runtime/contracts/launcher-protocol.js';
import type { MigrationInfo } from '../runtime/contracts/launcher-protocol.js';
import { NdjsonReader, parseJsonLine } from '../runtime/ndjson.js';

export type { QmpEvent };

/**
 * The longest line read from QEMU or a guest agent. The agent is the guest's: what it sends is
 * untrusted, and a longer line ends the connection (the agent is then reported as not connected).
 */
export const QMP_MAX_LINE_BYTES = 1024 * 1024;

export class QmpError extends Error {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    desc: string,
  ) {
    super(`QMP ${command}: ${errorClass}: ${desc}`);
    this.name = 'QmpError';
  }
}

interface Pending {
  command: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export interface QmpClientOptions {
  /** Per-command timeout unless a call gives its own. */
  timeoutMs?: number;
  /** Default QMP_MAX_LINE_BYTES. */
  maxLineBytes?: number;
}

/**
 * Emits 'event' (QmpEvent) and 'close' (Error | undefined). Commands after close reject.
 */
export class QmpClient extends EventEmitter {
  private readonly reader: NdjsonReader;
  /**
   * Ids are unique across connections, not only within one: a guest agent may answer a command of
   * an earlier, timed-out connection into this one, and that answer must match nothing here.
   */
  private readonly idPrefix = `kubevm-${randomBytes(4).toString('hex')}-`;
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private closed: Error | undefined;
  private readonly timeoutMs: number;
  private greetingWaiter: { resolve: (g: unknown) => void; reject: (e: Error) => void } | undefined;

  private constructor(
    private readonly socket: net.Socket,
    options: QmpClientOptions,
  ) {
    super();
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.reader = new NdjsonReader({
      maxLineBytes: options.maxLineBytes ?? QMP_MAX_LINE_BYTES,
      // qemu-guest-agent answers guest-sync-delimited with a 0xFF sentinel before its JSON
      // (decoded as U+FFFD from UTF-8).
      onLine: (line) => this.onMessage(line.replace(/^[\xff\ufffd]+/, '')),
      onOverflow: (bytes) => {
        this.fail(new Error(`the peer sent a line of more than ${bytes} bytes`));
        socket.destroy();
      },
    });
    socket.on('data', (chunk: Buffer) => this.reader.push(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('QMP connection closed')));
  }

  /** Connects to a QMP monitor socket and negotiates capabilities. */
  static async connect(path: string, options: QmpClientOptions = {}): Promise<QmpClient> {
    const client = await QmpClient.open(path, options);
    const greeting = new Promise<unknown>((resolve, reject) => (client.greetingWaiter = { resolve, reject }));
    await withTimeout(greeting, client.timeoutMs, 'QMP greeting');
    await client.execute('qmp_capabilities');
    return client;
  }

  /** Connects without a greeting (qemu-guest-agent speaks the framing but does not greet). */
  static async open(path: string, options: QmpClientOptions = {}): Promise<QmpClient> {
    const socket = net.createConnection(path);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new QmpClient(socket, options);
  }

  /** Runs a command and resolves to its `return` value. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = this.timeoutMs): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`QMP ${command}: ${this.closed.message}`));
    const id = `${this.idPrefix}${this.nextId++}`;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`QMP ${command}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, timer });
      const msg: Record<string, unknown> = { execute: command, id };
      if (args) msg['arguments'] = args;
      this.socket.write(`${JSON.stringify(msg)}\n`);
    });
  }

  /**
   * Sends a command that has no answer (e.g. the guest agent's guest-shutdown); resolves once the
   * bytes are handed to the kernel, so closing right after loses nothing.
   */
  send(command: string, args?: Record<string, unknown>): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`QMP ${command}: ${this.closed.message}`));
    return new Promise((resolve, reject) => {
      this.socket.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`, (error) => (error ? reject(error) : resolve()));
    });
  }

  /**
   * Sends the 0xFF byte that makes qemu-guest-agent drop whatever partial request an interrupted
   * client left in its parser (qga's guest-sync-delimited documentation).
   */
  resetAgentParser(): void {
    if (!this.closed) this.socket.write(Buffer.from([0xff]));
  }

  /** Resolves on the next event of this name (optionally matching `filter`), or rejects on timeout. */
  waitForEvent(name: string, timeoutMs: number, filter?: (e: QmpEvent) => boolean): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      const onEvent = (e: QmpEvent) => {
        if (e.event !== name || (filter && !filter(e))) return;
        cleanup();
        resolve(e);
      };
      const onClose = (err?: Error) => {
        cleanup();
        reject(err ?? new Error('QMP connection closed'));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`QMP: no ${name} event within ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.off('event', onEvent);
        this.off('close', onClose);
      };
      this.on('event', onEvent);
      this.on('close', onClose);
    });
  }

  get isClosed(): boolean {
    return this.closed !== undefined;
  }

  close(): void {
    this.socket.destroy();
    this.fail(new Error('QMP connection closed by the client'));
  }

  private onMessage(text: string): void {
    if (!text) return;
    const parsed = parseJsonLine(text);
    // A garbled line (a dying peer, a guest agent's noise): nothing to resolve.
    if (!parsed.ok || typeof parsed.value !== 'object' || parsed.value === null || Array.isArray(parsed.value)) return;
    const msg = parsed.value as Record<string, unknown>;
    if ('QMP' in msg) {
      this.greetingWaiter?.resolve(msg['QMP']);
      this.greetingWaiter = undefined;
      return;
    }
    if ('event' in msg) {
      const event = QmpEvent.safeParse(msg);
      if (event.success) this.emit('event', event.data);
      return;
    }
    const id = typeof msg['id'] === 'string' ? msg['id'] : undefined;
    const pending = id !== undefined ? this.pending.get(id) : undefined;
    if (!pending || id === undefined) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    if ('error' in msg) {
      const err = msg['error'] as { class?: string; desc?: string };
      pending.reject(new QmpError(pending.command, err.class ?? 'GenericError', err.desc ?? 'unknown error'));
    } else {
      pending.resolve(msg['return']);
    }
  }

  private fail(err: Error): void {
    if (this.closed) return;
    this.closed = err;
    this.greetingWaiter?.reject(err);
    this.greetingWaiter = undefined;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new Error(`QMP ${p.command}: ${err.message}`));
      this.pending.delete(id);
    }
    this.emit('close', err);
  }
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// The QMP commands the launcher uses, typed.

export interface QmpStatus {
  running: boolean;
  singlestep?: boolean;
  status: string;
}

export type QmpMigrationInfo = MigrationInfo;

export const qmp = {
  queryStatus: (c: QmpClient) => c.execute<QmpStatus>('query-status'),
  stop: (c: QmpClient) => c.execute('stop'),
  cont: (c: QmpClient) => c.execute('cont'),
  systemPowerdown: (c: QmpClient) => c.execute('system_powerdown'),
  systemReset: (c: QmpClient) => c.execute('system_reset'),
  /** What QEMU does when the guest powers off: 'poweroff' (exit, the default) or 'pause' (stay, stopped). */
  setShutdownAction: (c: QmpClient, action: 'poweroff' | 'pause') => c.execute('set-action', { shutdown: action }),
  quit: (c: QmpClient) => c.execute('quit'),
  migrate: (c: QmpClient, uri: string) => c.execute('migrate', { uri }),
  migrateIncoming: (c: QmpClient, uri: string) => c.execute('migrate-incoming', { uri }),
  migrateCancel: (c: QmpClient) => c.execute('migrate_cancel'),
  queryMigrate: (c: QmpClient) => c.execute<QmpMigrationInfo>('query-migrate'),
  migrateSetCapabilities: (c: QmpClient, capabilities: { capability: string; state: boolean }[]) =>
    c.execute('migrate-set-capabilities', { capabilities }),
  /** The display as a PNG file (QEMU ≥ 7.1). */
  screendump: (c: QmpClient, filename: string) => c.execute('screendump', { filename, format: 'png' }),
  /**
   * An HMP command (for what QMP lacks: slirp's hostfwd_add/hostfwd_remove). HMP reports failure
   * only as text: any output is an error.
   */
  hmp: async (c: QmpClient, commandLine: string): Promise<void> => {
    const output = await c.execute<string>('human-monitor-command', { 'command-line': commandLine });
    if (typeof output === 'string' && output.trim() !== '') throw new Error(`${commandLine.split(' ')[0] ?? 'HMP'}: ${output.trim()}`);
  },
  queryMigrateCapabilities: (c: QmpClient) => c.execute<{ capability: string; state: boolean }[]>('query-migrate-capabilities'),
  migrateSetParameters: (c: QmpClient, parameters: Record<string, number>) => c.execute('migrate-set-parameters', parameters),
  queryMigrateParameters: (c: QmpClient) => c.execute<Record<string, unknown> & { 'max-bandwidth'?: number; 'downtime-limit'?: number }>('query-migrate-parameters'),
  migrateStartPostcopy: (c: QmpClient) => c.execute('migrate-start-postcopy'),
};
