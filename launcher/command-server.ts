// The launcher's command API for the node handler: newline-delimited JSON on a unix socket in the
// pod-local "private" volume. See docs/launcher-protocol.md for the wire format.
import { chmod, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import net from 'node:net';
import type { Logger } from 'pino';
import type { Domain, DomainEvent } from './domain.js';

export const PROTOCOL_VERSION = 1;

export interface CommandRequest {
  id?: string | number;
  command: string;
  args?: Record<string, unknown>;
}

export type CommandResponse =
  | { id?: string | number; ok: true; result: unknown }
  | { id?: string | number; ok: false; error: { message: string; step?: string; qemuStderr?: string[] } };

type Handler = (args: Record<string, unknown>) => Promise<unknown>;

function numberArg(args: Record<string, unknown>, name: string): number | undefined {
  const v = args[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Error(`args.${name}: must be a non-negative number`);
  return v;
}

function stringArg(args: Record<string, unknown>, name: string): string {
  const v = args[name];
  if (typeof v !== 'string' || v === '') throw new Error(`args.${name}: must be a non-empty string`);
  return v;
}

export class CommandServer {
  private server: net.Server | undefined;
  private readonly connections = new Set<net.Socket>();
  private readonly streams = new Set<'console' | 'vnc'>();
  private readonly handlers: Record<string, Handler>;

  constructor(
    private readonly domain: Domain,
    private readonly socketPath: string,
    private readonly log: Logger,
    /** Called for "shutdown" and "kill" so main can exit once QEMU is gone. */
    private readonly onStopped: () => void = () => undefined,
  ) {
    const d = domain;
    this.handlers = {
      hello: async () => ({ protocol: PROTOCOL_VERSION, vmi: d.status().vmi }),
      status: async () => d.status(),
      start: async (a) => this.startResult(await d.start(a['incoming'] === undefined ? {} : { incoming: stringArg(a, 'incoming') })),
      sync: async (a) => this.startResult(await d.start(a['incoming'] === undefined ? {} : { incoming: stringArg(a, 'incoming') })),
      pause: async () => d.pause(),
      unpause: async () => d.unpause(),
      reset: async () => d.reset(),
      shutdown: async (a) => {
        const r = await d.shutdown(numberArg(a, 'gracePeriodSeconds'));
        this.onStopped();
        return r;
      },
      kill: async () => {
        const r = await d.kill();
        this.onStopped();
        return r;
      },
      guestInfo: async () => d.guestInfo(),
      migrate: async (a) => d.migrate(stringArg(a, 'uri'), numberArg(a, 'timeoutSeconds')),
      queryMigration: async () => d.queryMigration(),
      serialLog: async () => ({ log: await d.serialLog() }),
    };
  }

  /** A failed start answers ok:false with the step and QEMU's stderr, so callers need not dig. */
  private startResult(status: ReturnType<Domain['status']>): unknown {
    if (status.phase === 'Failed' && status.error) {
      const err = new Error(status.error.message) as Error & { step?: string; qemuStderr?: string[] };
      err.step = status.error.step;
      err.qemuStderr = status.error.qemuStderr;
      throw err;
    }
    return status;
  }

  async listen(): Promise<void> {
    await mkdir(path.dirname(this.socketPath), { recursive: true, mode: 0o700 });
    await rm(this.socketPath, { force: true });
    const server = net.createServer((socket) => this.onConnection(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => resolve());
    });
    // The node handler (root on the node) and the launcher's own uid only.
    await chmod(this.socketPath, 0o660);
    this.log.info({ socket: this.socketPath }, 'command socket listening');
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private onConnection(socket: net.Socket): void {
    this.connections.add(socket);
    let buffer = Buffer.alloc(0);
    let streaming = false;
    let unsubscribe: (() => void) | undefined;
    const write = (msg: object) => {
      if (!socket.destroyed) socket.write(`${JSON.stringify(msg)}\n`);
    };
    socket.on('close', () => {
      this.connections.delete(socket);
      unsubscribe?.();
    });
    socket.on('error', () => socket.destroy());
    const onData = (chunk: Buffer) => {
      if (streaming) return;
      buffer = Buffer.concat([buffer, chunk]);
      let nl: number;
      while (!streaming && (nl = buffer.indexOf(0x0a)) >= 0) {
        const line = buffer.subarray(0, nl).toString('utf8').trim();
        buffer = buffer.subarray(nl + 1);
        if (!line) continue;
        let req: CommandRequest;
        try {
          req = JSON.parse(line) as CommandRequest;
          if (typeof req.command !== 'string') throw new Error('"command" must be a string');
        } catch (err) {
          write({ ok: false, error: { message: `bad request: ${(err as Error).message}` } });
          continue;
        }
        const id = req.id;
        if (req.command === 'subscribe') {
          if (!unsubscribe) {
            const listener = (e: DomainEvent) => write({ event: e });
            this.domain.on('event', listener);
            unsubscribe = () => this.domain.off('event', listener);
          }
          write({ id, ok: true, result: this.domain.status() });
          continue;
        }
        if (req.command === 'console' || req.command === 'vnc') {
          const kind = req.command;
          // QEMU's chardev and VNC sockets serve one client at a time; a second would hang.
          if (this.streams.has(kind)) {
            write({ id, ok: false, error: { message: `a ${kind} stream is already attached` } });
            continue;
          }
          this.streams.add(kind);
          socket.once('close', () => this.streams.delete(kind));
          // From here on the connection is a raw byte stream to QEMU's socket.
          streaming = true;
          socket.off('data', onData);
          const rest = buffer;
          this.proxy(socket, req.command === 'console' ? this.domain.sockets.serial : this.domain.sockets.vnc, rest, () => write({ id, ok: true, result: { stream: req.command } }), (message) => {
            write({ id, ok: false, error: { message } });
            socket.end();
          });
          return;
        }
        const handler = this.handlers[req.command];
        if (!handler) {
          write({ id, ok: false, error: { message: `unknown command "${req.command}"; known: ${[...Object.keys(this.handlers), 'subscribe', 'console', 'vnc'].join(', ')}` } });
          continue;
        }
        const args = req.args && typeof req.args === 'object' ? req.args : {};
        this.log.info({ command: req.command, id }, 'command');
        handler(args).then(
          (result) => write({ id, ok: true, result }),
          (err: Error & { step?: string; qemuStderr?: string[] }) => {
            const error: { message: string; step?: string; qemuStderr?: string[] } = { message: err.message };
            if (err.step) error.step = err.step;
            if (err.qemuStderr) error.qemuStderr = err.qemuStderr;
            this.log.warn({ command: req.command, id, err: err.message }, 'command failed');
            write({ id, ok: false, error });
          },
        );
      }
    };
    socket.on('data', onData);
  }

  private proxy(client: net.Socket, target: string, initial: Buffer, onOpen: () => void, onFail: (message: string) => void): void {
    const upstream = net.createConnection(target);
    upstream.once('connect', () => {
      onOpen();
      if (initial.length) upstream.write(initial);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    upstream.once('error', (err) => onFail(`cannot open ${target}: ${err.message}`));
    upstream.on('close', () => client.end());
    client.on('close', () => upstream.destroy());
  }
}
