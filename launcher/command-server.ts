// The launcher's command API for the node handler: newline-delimited JSON on a unix socket in the
// pod-local "private" volume. The protocol (commands, arguments, results, events) is declared once
// in runtime/contracts/launcher-protocol.ts; docs/launcher-protocol.md describes the wire format.
import { chmod, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import net from 'node:net';
import type { Logger } from 'pino';
import { LAUNCHER_MAX_LINE_BYTES, LAUNCHER_PROTOCOL_VERSION, parseLauncherRequest } from '../runtime/contracts/launcher-protocol.js';
import type { DomainEvent, DomainStatus, LauncherArgs, LauncherCommand, LauncherErrorDetail, LauncherResult, ParsedLauncherRequest } from '../runtime/contracts/launcher-protocol.js';
import { NdjsonReader, ndjsonLine, parseJsonLine } from '../runtime/ndjson.js';
import type { Domain } from './domain.js';

/** The commands answered by a handler; subscribe, console and vnc act on the connection itself. */
type HandledCommand = Exclude<LauncherCommand, 'subscribe' | 'console' | 'vnc'>;
type Handlers = { [C in HandledCommand]: (args: LauncherArgs<C>) => Promise<LauncherResult<C>> };

/** An error that carries a failed start's step and QEMU's last lines to the client. */
class StartFailed extends Error {
  constructor(readonly detail: LauncherErrorDetail) {
    super(detail.message);
  }
}

export class CommandServer {
  private server: net.Server | undefined;
  private readonly connections = new Set<net.Socket>();
  private readonly streams = new Set<'console' | 'vnc'>();
  private readonly handlers: Handlers;

  constructor(
    private readonly domain: Domain,
    private readonly socketPath: string,
    private readonly log: Logger,
    /** Called for "shutdown" and "kill" so main can exit once QEMU is gone. */
    private readonly onStopped: () => void = () => undefined,
  ) {
    const d = domain;
    const start = async (a: LauncherArgs<'start'>) => this.startResult(await d.start(a.incoming === undefined ? {} : { incoming: a.incoming }));
    this.handlers = {
      hello: async () => ({ protocol: LAUNCHER_PROTOCOL_VERSION, vmi: d.status().vmi }),
      status: async () => d.status(),
      start,
      sync: start,
      pause: async () => d.pause(),
      unpause: async () => d.unpause(),
      reset: async () => d.reset(),
      softReboot: async () => d.softReboot(),
      shutdown: async (a) => {
        const r = await d.shutdown(a.gracePeriodSeconds);
        this.onStopped();
        return r;
      },
      kill: async () => {
        const r = await d.kill();
        this.onStopped();
        return r;
      },
      guestInfo: async () => d.guestInfo(),
      migrate: async (a) => d.migrate(a.uri, a.timeoutSeconds),
      queryMigration: async () => d.queryMigration(),
      serialLog: async () => ({ log: await d.serialLog() }),
    };
  }

  /** A failed start answers ok:false with the step and QEMU's stderr, so callers need not dig. */
  private startResult(status: DomainStatus): DomainStatus {
    if (status.phase === 'Failed' && status.error) throw new StartFailed({ message: status.error.message, step: status.error.step, qemuStderr: status.error.qemuStderr });
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
    let unsubscribe: (() => void) | undefined;
    const write = (msg: object) => {
      if (!socket.destroyed) socket.write(ndjsonLine(msg));
    };
    const fail = (id: string | number | undefined, error: LauncherErrorDetail) => write({ id, ok: false, error });
    socket.on('close', () => {
      this.connections.delete(socket);
      unsubscribe?.();
    });
    socket.on('error', () => socket.destroy());
    const reader = new NdjsonReader({
      maxLineBytes: LAUNCHER_MAX_LINE_BYTES,
      onOverflow: (bytes) => {
        this.log.warn({ bytes }, 'command connection sent a line over the limit; closing it');
        socket.destroy();
      },
      onLine: (line) => {
        const json = parseJsonLine(line);
        const parsed = json.ok ? parseLauncherRequest(json.value) : { ok: false as const, id: undefined, message: `bad request: not JSON (${json.error})` };
        if (!parsed.ok) {
          this.log.warn({ id: parsed.id, err: parsed.message }, 'refused a command');
          fail(parsed.id, { message: parsed.message });
          return;
        }
        const request = parsed.request;
        switch (request.command) {
          case 'subscribe':
            if (!unsubscribe) {
              const listener = (e: DomainEvent) => write({ event: e });
              this.domain.on('event', listener);
              unsubscribe = () => this.domain.off('event', listener);
            }
            write({ id: request.id, ok: true, result: this.domain.status() });
            return;
          case 'console':
          case 'vnc':
            this.stream(socket, reader, request.command, request.id, write);
            return;
          default:
            this.run(request, write);
        }
      },
    });
    socket.on('data', (chunk: Buffer) => reader.push(chunk));
  }

  private run(request: Extract<ParsedLauncherRequest, { command: HandledCommand }>, write: (msg: object) => void): void {
    const { id, command } = request;
    this.log.info({ command, id }, 'command');
    const handler = this.handlers[command] as (args: typeof request.args) => Promise<unknown>;
    handler(request.args).then(
      (result) => write({ id, ok: true, result }),
      (err: Error) => {
        const error: LauncherErrorDetail = err instanceof StartFailed ? err.detail : { message: err.message };
        this.log.warn({ command, id, err: err.message }, 'command failed');
        write({ id, ok: false, error });
      },
    );
  }

  /** Switches the connection to a raw byte stream to QEMU's serial or VNC socket. */
  private stream(socket: net.Socket, reader: NdjsonReader, kind: 'console' | 'vnc', id: string | number | undefined, write: (msg: object) => void): void {
    // QEMU's chardev and VNC sockets serve one client at a time; a second would hang.
    if (this.streams.has(kind)) {
      write({ id, ok: false, error: { message: `a ${kind} stream is already attached` } });
      return;
    }
    this.streams.add(kind);
    socket.once('close', () => this.streams.delete(kind));
    reader.stop();
    // Held until the pipe below takes over, so no byte of the stream is lost meanwhile.
    socket.removeAllListeners('data');
    socket.pause();
    const target = kind === 'console' ? this.domain.sockets.serial : this.domain.sockets.vnc;
    const upstream = net.createConnection(target);
    upstream.once('connect', () => {
      write({ id, ok: true, result: { stream: kind } });
      // Bytes the client sent after its request line belong to the stream.
      const rest = reader.remainder();
      if (rest.length) upstream.write(rest);
      socket.pipe(upstream);
      upstream.pipe(socket);
    });
    upstream.once('error', (err) => {
      write({ id, ok: false, error: { message: `cannot open ${target}: ${err.message}` } });
      socket.end();
    });
    upstream.on('close', () => socket.end());
    socket.on('close', () => upstream.destroy());
  }
}
