// The node-handler-to-node-handler migration channel (runtime/contracts/migration-channel.ts).
//
//   source launcher ◀──unix── MigrationSender ══TCP+mTLS══▶ MigrationReceiver ──unix──▶ target QEMU
//   (migration-out.sock; it relays    (connects)         (one per node)      (migration-in.sock of the
//    its QEMU's stream)                                                        target launcher)
//
// The launcher pod's network belongs to the guest (KubeVirt found the same), so QEMU never opens a
// network connection itself: each end is a unix socket the launcher listens on in its run directory,
// the node handlers connect to them (the pods directory is read-only to a node handler: it never
// makes anything there) and carry the bytes between the nodes. Both ends present a certificate from the
// cluster's CA; the receiver accepts a stream only for a migration it was told to expect. Buffers
// are bounded: a side that does not read stops the other (socket backpressure), so a stalled peer
// costs at most a few high-water marks per connection, never the whole stream.
import net from 'node:net';
import tls from 'node:tls';
import { Counter } from 'prom-client';
import type { Logger } from 'pino';
import {
  MIGRATION_CHANNEL_MAX_LINE_BYTES,
  MIGRATION_CHANNEL_PROTOCOL_VERSION,
  MigrationChannelAnswer,
  MigrationChannelHello,
} from '../runtime/contracts/migration-channel.js';
import type { MigrationStreamKind } from '../runtime/contracts/migration-channel.js';
import { MigrationOutAnswer, describeZodError } from '../runtime/contracts/launcher-protocol.js';
import { LAUNCHER_UID, launcherSockets } from '../runtime/contracts/launcher-pod.js';
import { registry } from '../runtime/metrics.js';
import { ndjsonLine, readFirstLine } from '../runtime/ndjson.js';
import { bridge } from '../runtime/stream-bridge.js';
import { openLauncherSocket } from './launcher-client.js';

export const migrationChannelBytes = new Counter({
  name: 'kubevm_migration_channel_bytes_total',
  help: 'Bytes of migration streams carried between node handlers, by direction (sent by this node, received by it).',
  labelNames: ['direction'] as const,
  registers: [registry],
});

export const migrationChannelRefused = new Counter({
  name: 'kubevm_migration_channel_refused_total',
  help: 'Migration channel connections refused (bad hello, unexpected migration, target socket unavailable).',
  labelNames: ['reason'] as const,
  registers: [registry],
});

/** This node's certificate and the CA that signs every node's (PEM). */
export interface MigrationTls {
  ca: string;
  cert: string;
  key: string;
}

const HELLO_TIMEOUT_MS = 10_000;

/**
 * Carries bytes both ways between two sockets with backpressure (runtime/stream-bridge.ts), counted.
 * A stream cut on one side is cut on the other at once, so QEMU sees the failure, not a timeout.
 */
function splice(a: net.Socket, b: net.Socket, counted: { ab?: 'sent' | 'received'; ba?: 'sent' | 'received' }): void {
  const count = (from: net.Socket, direction: 'sent' | 'received' | undefined) => {
    if (direction) from.on('data', (chunk: Buffer) => migrationChannelBytes.inc({ direction }, chunk.length));
  };
  count(a, counted.ab);
  count(b, counted.ba);
  void bridge(a, b, { closeGraceMs: 1000 });
}

/** The common name and DNS subject alternative names of a peer certificate. */
function certificateNames(certificate: tls.PeerCertificate): string[] {
  const dns = (certificate.subjectaltname ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.startsWith('DNS:'))
    .map((entry) => entry.slice(4));
  const cn = certificate.subject?.CN;
  return [...(typeof cn === 'string' ? [cn] : []), ...dns];
}

export interface MigrationReceiverOptions {
  tls: MigrationTls;
  log: Logger;
  /**
   * The names a peer's certificate must carry (common name or DNS name): the CA signs other
   * components' certificates too (the api-server's streams client certificate), and only a node
   * handler may feed a target QEMU. Unset: any certificate of the CA (tests of one CA per node).
   */
  peerNames?: readonly string[];
  host?: string;
  /** 0 (default): any free port. */
  port?: number;
}

/** The open sockets of a receiver or sender: what they buffer now, and closing them all. */
class OpenSockets {
  private readonly sockets = new Set<net.Socket>();

  track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
  }

  /** Bytes held in the sockets' buffers now (bounded by the high-water marks). */
  bufferedBytes(): number {
    let total = 0;
    for (const s of this.sockets) total += s.writableLength + s.readableLength;
    return total;
  }

  destroyAll(): void {
    for (const s of this.sockets) s.destroy();
  }
}

/**
 * The target node's end: a TLS server that requires a client certificate from the CA, and maps a
 * migration's uid to the way to reach its target launcher's incoming socket.
 */
export class MigrationReceiver {
  private server: tls.Server | undefined;
  private readonly expected = new Map<string, (stream: MigrationStreamKind) => Promise<net.Socket>>();
  private readonly sockets = new OpenSockets();

  constructor(private readonly options: MigrationReceiverOptions) {}

  async listen(): Promise<{ host: string; port: number }> {
    const server = tls.createServer({
      ca: this.options.tls.ca,
      cert: this.options.tls.cert,
      key: this.options.tls.key,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
    });
    server.on('secureConnection', (socket) => void this.onConnection(socket));
    // A handshake refused (no certificate, another CA) ends there; nothing of it reaches a launcher.
    server.on('tlsClientError', (error) => {
      migrationChannelRefused.inc({ reason: 'tls' });
      this.options.log.warn({ err: error.message }, 'refused a migration channel connection (TLS)');
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? 0, this.options.host ?? '0.0.0.0', () => resolve());
    });
    const address = server.address() as net.AddressInfo;
    this.options.log.info({ address: address.address, port: address.port }, 'migration channel listening');
    return { host: address.address, port: address.port };
  }

  /**
   * Accepts streams for this migration from now on, each connected to a socket `openTarget`
   * opens (the target launcher's migration-in.sock, opened safely). Returns the undo.
   */
  expect(migrationUid: string, openTarget: (stream: MigrationStreamKind) => Promise<net.Socket>): () => void {
    this.expected.set(migrationUid, openTarget);
    return () => {
      if (this.expected.get(migrationUid) === openTarget) this.expected.delete(migrationUid);
    };
  }

  /** Bytes held in this receiver's sockets' buffers now (bounded by the high-water marks). */
  bufferedBytes(): number {
    return this.sockets.bufferedBytes();
  }

  async close(): Promise<void> {
    this.sockets.destroyAll();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }


  private async onConnection(peer: tls.TLSSocket): Promise<void> {
    this.sockets.track(peer);
    peer.on('error', () => peer.destroy());
    const certificate = peer.getPeerCertificate();
    const log = this.options.log.child({ peer: peer.remoteAddress, peerCertificate: certificate.subject?.CN });
    const refuse = (reason: string, message: string) => {
      migrationChannelRefused.inc({ reason });
      log.warn({ reason, err: message }, 'refused a migration stream');
      peer.end(ndjsonLine({ ok: false, message: message.slice(0, 512) }));
    };

    let first: { value: unknown; rest: Buffer };
    try {
      first = await readFirstLine(peer, HELLO_TIMEOUT_MS, MIGRATION_CHANNEL_MAX_LINE_BYTES);
    } catch (error) {
      return refuse('hello', `bad hello: ${(error as Error).message}`);
    }
    // Checked once the hello is read, so the refusal reaches the peer as an answer.
    const { peerNames } = this.options;
    if (peerNames && !certificateNames(certificate).some((name) => peerNames.includes(name))) {
      return refuse('peer', `a certificate for ${certificateNames(certificate).join(', ') || 'no name'} is not a node handler's (${peerNames.join(', ')})`);
    }
    const hello = MigrationChannelHello.safeParse(first.value);
    if (!hello.success) return refuse('hello', `bad hello: ${describeZodError(hello.error)}`);
    const openTarget = this.expected.get(hello.data.migrationUid);
    if (!openTarget) return refuse('unexpected', `this node expects no migration ${hello.data.migrationUid}`);
    let target: net.Socket;
    try {
      target = await openTarget(hello.data.stream);
    } catch (error) {
      return refuse('target', `the target launcher's incoming socket cannot be opened: ${(error as Error).message}`);
    }
    this.sockets.track(target);
    log.info({ migrationUid: hello.data.migrationUid, stream: hello.data.stream }, 'migration stream connected to the target launcher');
    peer.write(ndjsonLine({ ok: true }));
    if (first.rest.length) target.write(first.rest);
    splice(peer, target, { ab: 'received' });
    peer.resume();
  }
}

export interface MigrationSenderOptions {
  tls: MigrationTls;
  log: Logger;
  migrationUid: string;
  /**
   * The kubelet's pods directory and the source launcher's run directory inside it, as the node
   * sees them: the launcher listens on `migration-out.sock` there (launcherSockets().migrationOut).
   */
  podsDir: string;
  runDir: string;
  /** The uid that must own the launcher's socket; default the contract's. */
  ownerUid?: number;
  /** The target node's receiver. */
  target: { host: string; port: number; serverName: string };
  /** The memory stream (migration-out.sock, the default) or a disk stream (migration-disks-out.sock). */
  stream?: MigrationStreamKind;
}

/**
 * The source node's end for one migration: connects to the source launcher's migration-out.sock
 * (the launcher's socket, opened as every launcher socket is: no link followed, owner checked; the
 * handler never makes anything in the pod's directory, which it sees read-only), then to the
 * target node's receiver, and joins the two. The launcher relays QEMU's stream over this
 * connection once it is told to migrate.
 */
export class MigrationSender {
  private readonly sockets = new OpenSockets();

  /** How many disk streams the launcher's answer asked for besides this one (memory stream only). */
  diskStreams = 0;

  private constructor(private readonly options: MigrationSenderOptions) {}

  /** Resolves once both ends are connected and the target node expects the stream; throws why not. */
  static async connect(options: MigrationSenderOptions): Promise<MigrationSender> {
    const sender = new MigrationSender(options);
    try {
      await sender.join();
    } catch (error) {
      sender.sockets.destroyAll();
      throw error;
    }
    return sender;
  }

  bufferedBytes(): number {
    return this.sockets.bufferedBytes();
  }

  /** Cuts both connections (the launcher ends its relay, the target its incoming stream). */
  close(): void {
    this.sockets.destroyAll();
  }

  private async join(): Promise<void> {
    const { tls: creds, target, log, migrationUid } = this.options;
    const stream = this.options.stream ?? 'memory';
    const sockets = launcherSockets(this.options.runDir);
    const socketPath = stream === 'disks' ? sockets.migrationDisksOut : sockets.migrationOut;
    const launcher = await openLauncherSocket(this.options.podsDir, socketPath, { ownerUid: this.options.ownerUid ?? LAUNCHER_UID });
    this.sockets.track(launcher);
    launcher.on('error', () => launcher.destroy());
    let fromLauncher: { value: unknown; rest: Buffer };
    try {
      fromLauncher = await readFirstLine(launcher, HELLO_TIMEOUT_MS, MIGRATION_CHANNEL_MAX_LINE_BYTES);
    } catch (error) {
      throw new Error(`the source launcher did not answer on ${socketPath}: ${(error as Error).message}`, { cause: error });
    }
    const launcherAnswer = MigrationOutAnswer.safeParse(fromLauncher.value);
    if (!launcherAnswer.success) throw new Error(`the source launcher answered something else than its migration-out answer: ${describeZodError(launcherAnswer.error)}`);
    if (!launcherAnswer.data.ok) throw new Error(`the source launcher refused the migration connection: ${launcherAnswer.data.message}`);
    this.diskStreams = launcherAnswer.data.disks ?? 0;
    // The launcher sends nothing more before QEMU's stream starts.
    if (fromLauncher.rest.length) throw new Error('the source launcher sent bytes before the migration started');

    const remote = tls.connect({
      host: target.host,
      port: target.port,
      servername: target.serverName,
      ca: creds.ca,
      cert: creds.cert,
      key: creds.key,
      minVersion: 'TLSv1.3',
    });
    this.sockets.track(remote);
    try {
      await new Promise<void>((resolve, reject) => {
        remote.once('secureConnect', resolve);
        remote.once('error', reject);
      });
      const hello: MigrationChannelHello = { protocol: MIGRATION_CHANNEL_PROTOCOL_VERSION, migrationUid, stream };
      remote.write(ndjsonLine(hello));
      const first = await readFirstLine(remote, HELLO_TIMEOUT_MS, MIGRATION_CHANNEL_MAX_LINE_BYTES);
      const answer = MigrationChannelAnswer.safeParse(first.value);
      if (!answer.success) throw new Error(`the target node answered something else than the channel's answer: ${describeZodError(answer.error)}`);
      if (!answer.data.ok) throw new Error(`the target node refused the stream: ${answer.data.message}`);
      if (first.rest.length) launcher.write(first.rest);
    } catch (error) {
      throw new Error(`cannot carry the migration stream to the target node ${target.host}:${target.port}: ${(error as Error).message}`, { cause: error });
    }
    remote.on('error', () => remote.destroy());
    log.info({ migrationUid, stream, target: `${target.host}:${target.port}` }, 'migration stream connected from the source launcher to the target node');
    splice(launcher, remote, { ab: 'sent' });
  }
}
