// The source launcher's end of an outgoing migration stream (docs/migration.md):
//
//   QEMU ──unix──▶ migration-qemu.sock ─▶ relay ─▶ migration-out.sock ◀──connect── source node handler ══mTLS══▶ target
//        (the launcher's, one connection, only while it migrates)   (the launcher listens)
//
// The node handler sees the pod's run directory read-only and must never create anything there, so
// the launcher owns both sockets and the handler only connects, as it does to the command socket
// and to the target's migration-in.sock. Node cannot pass QEMU's descriptor to the handler
// (no SCM_RIGHTS), hence the relay here, with the bridge's backpressure (runtime/stream-bridge.ts):
// each side holds at most a few high-water marks, whatever the peers' speeds.
import { chmod, rm } from 'node:fs/promises';
import net from 'node:net';
import type { Logger } from 'pino';
import type { MigrationOutAnswer, MigrationRelay } from '../runtime/contracts/launcher-protocol.js';
import { ndjsonLine } from '../runtime/ndjson.js';
import { bridge } from '../runtime/stream-bridge.js';

/** After a completed migration, how long QEMU's last bytes may take to leave through the relay. */
const FLUSH_TIMEOUT_MS = 10_000;
/** QEMU connects as soon as it runs `migrate`; not connecting in this long is a failure. */
const QEMU_CONNECT_TIMEOUT_MS = 10_000;

function listenUnix(server: net.Server, socketPath: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * `migration-out.sock` (and `migration-disks-out.sock`): holds the source node handler's
 * connections until `migrate` takes them, as many as the outlet's capacity (one for the memory
 * stream, one per pod-local disk for the disk streams), also while a migration still runs (they
 * are the next one's). Any connection beyond that is answered with a refusal and closed. On the memory outlet nothing may arrive
 * on a waiting connection (the target's QEMU speaks only after the source's): bytes before the
 * relay starts end it. A disk stream's target (an NBD server) greets first: those bytes stay
 * unread in the socket until the relay starts.
 */
export class MigrationOutlet {
  private server: net.Server | undefined;
  private readonly waiting: net.Socket[] = [];

  constructor(
    readonly socketPath: string,
    private readonly log: Logger,
    private readonly options: {
      /** How many connections may wait (default one). */
      capacity?: () => number;
      /** What an accepted connection is told (default `{ok: true}`). */
      accepted?: () => MigrationOutAnswer & { ok: true };
      /** The peer may speak before the relay starts (the disk streams' NBD greeting). */
      peerSpeaksFirst?: boolean;
    } = {},
  ) {}

  async listen(): Promise<void> {
    if (this.server) return;
    await rm(this.socketPath, { force: true });
    const server = net.createServer((socket) => this.onConnection(socket));
    await listenUnix(server, this.socketPath);
    server.on('error', (error) => this.log.warn({ err: error.message }, 'migration-out socket error'));
    // The launcher's uid only (and root, the node handler).
    await chmod(this.socketPath, 0o600);
    this.server = server;
  }

  async close(): Promise<void> {
    for (const socket of this.waiting.splice(0)) socket.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(this.socketPath, { force: true });
  }

  /** Whether a node handler's connection waits for `migrate`. */
  get hasWaiting(): boolean {
    return this.waiting.length > 0;
  }

  /**
   * The node handler's waiting connection, now this migration's (paused until the relay reads it);
   * a next one may already connect and wait. Throws when none waits.
   */
  take(): net.Socket {
    const [socket] = this.takeAll(1);
    return socket as net.Socket;
  }

  /** `count` waiting connections, oldest first (as take()); throws when fewer wait. */
  takeAll(count: number): net.Socket[] {
    const live = this.waiting.filter((s) => !s.destroyed);
    if (live.length < count) {
      throw new Error(`${count === 1 ? 'no connection' : `${live.length} of the ${count} connections`} of the node handler wait${count === 1 ? 's' : ''} on ${this.socketPath}: the source's node handler connects there, and through the migration channel to the target node, before it asks to migrate`);
    }
    this.waiting.splice(0);
    const taken = live.slice(0, count);
    for (const socket of live.slice(count)) socket.destroy();
    for (const socket of taken) {
      socket.removeAllListeners('data');
      socket.pause();
    }
    return taken;
  }


  private onConnection(socket: net.Socket): void {
    socket.on('error', () => socket.destroy());
    const answer = (a: MigrationOutAnswer) => ndjsonLine(a);
    const capacity = this.options.capacity?.() ?? 1;
    // A connection made while a migration still ends (its relays closing, a cancel unwinding) is
    // for the next one: it waits like any other, and the next `migrate` waits for the last to end.
    if (this.waiting.length >= capacity) {
      const message = capacity === 1 ? 'another connection already waits for the migration' : `the ${capacity} connections this migration takes already wait`;
      this.log.warn({ reason: message }, `refused a connection on ${this.socketPath}`);
      socket.end(answer({ ok: false, message }));
      return;
    }
    this.waiting.push(socket);
    socket.once('close', () => {
      const index = this.waiting.indexOf(socket);
      if (index >= 0) this.waiting.splice(index, 1);
    });
    if (this.options.peerSpeaksFirst) {
      // Read nothing yet: what the peer sent waits in the socket for the relay.
      socket.pause();
    } else {
      socket.on('data', () => {
        this.log.warn(`the node handler sent bytes on ${this.socketPath} before the migration started; closing it`);
        socket.destroy();
      });
    }
    socket.write(answer(this.options.accepted?.() ?? { ok: true }));
  }
}

/**
 * One migration's relay: listens on the launcher's private `migration-qemu.sock` for QEMU's one
 * connection and bridges it to the node handler's connection. finish() tears everything down,
 * after letting a completed migration's last bytes through.
 */
export class QemuStreamRelay {
  private qemu: net.Socket | undefined;
  private bridged: Promise<unknown> | undefined;
  private bytesOut = 0;
  private bytesIn = 0;
  private readonly cpuAtStart = process.cpuUsage();
  private connectTimer: NodeJS.Timeout | undefined;
  private finished: Promise<MigrationRelay> | undefined;

  private constructor(
    private readonly server: net.Server,
    /** The private socket QEMU connects to. */
    readonly socketPath: string,
    private readonly handler: net.Socket,
    private readonly log: Logger,
  ) {}

  static async open(socketPath: string, handler: net.Socket, log: Logger): Promise<QemuStreamRelay> {
    await rm(socketPath, { force: true });
    const server = net.createServer({ pauseOnConnect: true });
    const relay = new QemuStreamRelay(server, socketPath, handler, log);
    server.on('connection', (socket) => relay.onQemu(socket));
    server.on('error', (error) => log.warn({ err: error.message }, 'migration-qemu socket error'));
    try {
      await listenUnix(server, socketPath);
      await chmod(socketPath, 0o600);
    } catch (error) {
      server.close();
      throw error;
    }
    // A handler connection gone before QEMU connected: QEMU then finds nothing and fails.
    relay.connectTimer = setTimeout(() => {
      log.warn({ timeoutMs: QEMU_CONNECT_TIMEOUT_MS }, 'QEMU did not connect to the migration relay');
      handler.destroy();
      void relay.stopListening();
    }, QEMU_CONNECT_TIMEOUT_MS);
    return relay;
  }

  /** The URI QEMU migrates to. */
  get uri(): string {
    return `unix:${this.socketPath}`;
  }

  /**
   * Ends the relay however the migration ended. A completed migration's stream is let through to
   * its end (QEMU closes its side, the bridge flushes it to the handler), bounded by a timeout;
   * any other is cut at once. Idempotent.
   */
  finish(completed: boolean): Promise<MigrationRelay> {
    this.finished ??= this.doFinish(completed);
    return this.finished;
  }

  private async doFinish(completed: boolean): Promise<MigrationRelay> {
    clearTimeout(this.connectTimer);
    await this.stopListening();
    if (completed && this.bridged) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.bridged, new Promise((resolve) => (timer = setTimeout(resolve, FLUSH_TIMEOUT_MS)))]);
      clearTimeout(timer);
    }
    this.qemu?.destroy();
    this.handler.destroy();
    await this.bridged;
    const cpu = process.cpuUsage(this.cpuAtStart);
    return { bytesOut: this.bytesOut, bytesIn: this.bytesIn, launcherCpuMs: Math.round((cpu.user + cpu.system) / 1000) };
  }

  private async stopListening(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await rm(this.socketPath, { force: true });
  }

  private onQemu(socket: net.Socket): void {
    if (this.qemu || this.finished) {
      socket.destroy();
      return;
    }
    this.qemu = socket;
    clearTimeout(this.connectTimer);
    // One connection only: nothing else may connect to this migration's stream.
    void this.stopListening();
    socket.on('data', (chunk: Buffer) => (this.bytesOut += chunk.length));
    this.handler.on('data', (chunk: Buffer) => (this.bytesIn += chunk.length));
    this.bridged = bridge(socket, this.handler, { closeGraceMs: FLUSH_TIMEOUT_MS }).then((end) => {
      this.log.info({ side: end.side === 'a' ? 'qemu' : 'node handler', reason: end.reason, err: end.error?.message, bytesOut: this.bytesOut, bytesIn: this.bytesIn }, 'migration relay ended');
    });
  }
}
