// The launcher's command API for the node handler: newline-delimited JSON on a unix socket in the
// pod-local "private" volume. The protocol (commands, arguments, results, events) is declared once
// in runtime/contracts/launcher-protocol.ts; docs/launcher-protocol.md describes the wire format.
import { chmod, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import net from 'node:net';
import type { Logger } from 'pino';
import { DOMAIN_NOT_RUNNING_STEP, LAUNCHER_MAX_LINE_BYTES, LAUNCHER_PROTOCOL_VERSION, parseLauncherRequest } from '../runtime/contracts/launcher-protocol.js';
import type {
  DomainEvent,
  DomainStatus,
  LauncherArgs,
  LauncherCommand,
  LauncherErrorDetail,
  LauncherResult,
  LauncherStreamCommand,
  ParsedLauncherRequest,
} from '../runtime/contracts/launcher-protocol.js';
import { NdjsonReader, ndjsonLine, parseJsonLine } from '../runtime/ndjson.js';
import { bridge } from '../runtime/stream-bridge.js';
import type { Domain } from './domain.js';

/** The commands answered by a handler; subscribe and the streams act on the connection itself. */
type HandledCommand = Exclude<LauncherCommand, 'subscribe' | LauncherStreamCommand>;
type StreamRequest = Extract<ParsedLauncherRequest, { command: LauncherStreamCommand }>;

/**
 * A console whose client stops reading is cut after this long: QEMU's serial port would otherwise
 * hold the guest's console output (and a guest writing to it) until the client reads again.
 */
const CONSOLE_STALL_TIMEOUT_MS = 10_000;
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
  /** The client attached to QEMU's serial port and VNC server (each serves one at a time). */
  private readonly attached = new Map<'console' | 'vnc', net.Socket>();
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
      freeze: async (a) => d.freeze(a.unfreezeTimeoutSeconds),
      unfreeze: async () => d.unfreeze(),
      guestUsers: async () => d.guestUsers(),
      guestFilesystems: async () => d.guestFilesystems(),
      migrate: async (a) => d.migrate(a),
      queryMigration: async () => d.queryMigration(),
      migrateCancel: async () => d.migrateCancel(),
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
          case 'portForward':
          case 'screenshot':
            this.stream(socket, reader, request, write);
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
      (result) => {
        // A result is bounded by its schema, but a guest's strings may still add up: the client
        // would cut a line this long, so it becomes an error of this one command instead.
        const line = ndjsonLine({ id, ok: true, result });
        if (Buffer.byteLength(line) - 1 <= LAUNCHER_MAX_LINE_BYTES) return write({ id, ok: true, result });
        this.log.warn({ command, id, bytes: Buffer.byteLength(line) }, 'an answer over the line limit; answering an error instead');
        write({ id, ok: false, error: { message: `${command}: the answer is ${Buffer.byteLength(line)} bytes, more than the protocol's ${LAUNCHER_MAX_LINE_BYTES}` } });
      },
      (err: Error) => {
        const error: LauncherErrorDetail = err instanceof StartFailed ? err.detail : { message: err.message };
        this.log.warn({ command, id, err: err.message }, 'command failed');
        write({ id, ok: false, error });
      },
    );
  }

  /**
   * Switches the connection to a raw byte stream: QEMU's serial port or VNC server, a TCP port of
   * the guest, or a screenshot. The answer line goes first; bytes the client sent after its
   * request line belong to the stream.
   */
  private stream(socket: net.Socket, reader: NdjsonReader, request: StreamRequest, write: (msg: object) => void): void {
    const { id, command } = request;
    reader.stop();
    // Held until the stream takes over, so no byte of it is lost meanwhile.
    socket.removeAllListeners('data');
    socket.pause();
    const refuse = (message: string, step?: string): void => {
      this.log.info({ command, err: message, step }, 'stream refused');
      write({ id, ok: false, error: { message, ...(step ? { step } : {}) } });
      socket.end();
    };
    // QEMU's sockets live as long as QEMU: a stream asked for before it runs or after it stopped
    // (a console reconnecting while the VM stops) is refused as such, not as a fault.
    const refuseNotRunning = (why: string): void => refuse(why, DOMAIN_NOT_RUNNING_STEP);
    const phase = this.domain.status().phase;
    if (phase !== 'Running' && phase !== 'Paused') return refuseNotRunning(`the domain is ${phase}, not running`);
    if (command === 'screenshot') {
      this.domain.screenshot().then(
        (png) => {
          write({ id, ok: true, result: { stream: 'screenshot', contentType: 'image/png', bytes: png.length } });
          socket.end(png);
        },
        (err: Error) => refuse(`screenshot: ${err.message}`),
      );
      return;
    }
    if (command === 'vnc' || command === 'console') {
      const current = this.attached.get(command);
      // KubeVirt: a new console or VNC client replaces the attached one; a VNC client asking to
      // preserve the session is refused instead.
      if (current && command === 'vnc' && request.args.preserveSession === true) return refuse('Active VNC connection. Request denied.');
      if (current) {
        this.log.info({ command }, 'a new client replaces the attached one');
        current.destroy();
      }
      this.attached.set(command, socket);
      socket.once('close', () => {
        if (this.attached.get(command) === socket) this.attached.delete(command);
      });
    }
    const opened =
      command === 'portForward'
        ? this.domain.openPortForward(request.args.port)
        : connectUnix(command === 'console' ? this.domain.sockets.serial : this.domain.sockets.vnc);
    opened.then(
      (upstream) => {
        if (socket.destroyed) {
          upstream.destroy();
          return;
        }
        write({ id, ok: true, result: { stream: command } });
        const rest = reader.remainder();
        if (rest.length) upstream.write(rest);
        socket.resume();
        void bridge(socket, upstream, command === 'console' ? { stallTimeoutMs: CONSOLE_STALL_TIMEOUT_MS } : {}).then((end) =>
          this.log.info({ command, port: command === 'portForward' ? request.args.port : undefined, end: { side: end.side === 'a' ? 'client' : 'upstream', reason: end.reason } }, 'stream ended'),
        );
      },
      (err: NodeJS.ErrnoException) => {
        // The socket gone or refusing: QEMU exited (or is exiting) since the check above.
        if (command !== 'portForward' && (err.code === 'ENOENT' || err.code === 'ECONNREFUSED')) return refuseNotRunning(`QEMU's socket is gone: the domain is stopping (${err.message})`);
        refuse(`${command}: ${err.message}`);
      },
    );
  }
}

function connectUnix(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const upstream = net.createConnection(socketPath);
    upstream.once('connect', () => {
      upstream.off('error', reject);
      resolve(upstream);
    });
    upstream.once('error', reject);
  });
}
