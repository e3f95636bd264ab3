// The migration channel between two node handlers (node-handler/migration-channel.ts), declared
// once: TCP with mutual TLS, one connection per QEMU migration stream. The source's node handler
// opens it and sends one hello line naming the migration; the target's answers one line, and from
// then on the connection carries the migration stream's bytes both ways, untouched.
import { z } from 'zod';

export const MIGRATION_CHANNEL_PROTOCOL_VERSION = 1;

/**
 * Where a node handler's MigrationReceiver listens, on its pod IP (beside the streams port 8186).
 * The target's node handler writes its pod IP into the VMI's migrationState.targetNodeAddress and
 * this port into targetDirectMigrationNodePorts; the source dials them.
 *
 * Certificates, from the operator's CA (operator/pki.ts): the receiver serves with the node
 * handlers' streams server certificate (NODE_HANDLER_STREAM_SERVER_NAME, which the source checks
 * whatever pod IP it dials), and accepts only the client certificate below, which every node handler
 * has and nothing else: the api-server's streams client certificate is of the same CA and is refused.
 */
export const NODE_HANDLER_MIGRATION_PORT = 8187;
/** The common name of the node handlers' migration client certificate (usable only as a client). */
export const NODE_HANDLER_MIGRATION_CLIENT_NAME = 'kubevm-node-handler-migration';
export const NODE_HANDLER_MIGRATION_TLS_SECRET = 'kubevm-node-handler-migration-tls';
/** Where the node handler mounts it. */
export const MIGRATION_TLS_DIR = '/etc/kubevm/migration-tls';

/** The longest hello or answer line; both are a few dozen bytes. */
export const MIGRATION_CHANNEL_MAX_LINE_BYTES = 1024;

/**
 * What a stream carries: QEMU's migration stream (memory and device state), or one pod-local disk
 * being mirrored (NBD, launcher/disk-mirror.ts). The target connects each to its launcher's socket.
 */
export const MigrationStreamKind = z.enum(['memory', 'disks']);
export type MigrationStreamKind = z.infer<typeof MigrationStreamKind>;

export const MigrationChannelHello = z.object({
  protocol: z.literal(MIGRATION_CHANNEL_PROTOCOL_VERSION),
  /** The VirtualMachineInstanceMigration's uid: the target accepts streams only for migrations it expects. */
  migrationUid: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9-]{0,62}$/),
  /** Unset from a handler that predates disk streams: the memory stream. */
  stream: MigrationStreamKind.default('memory'),
});
export type MigrationChannelHello = z.input<typeof MigrationChannelHello>;

export const MigrationChannelAnswer = z.discriminatedUnion('ok', [z.object({ ok: z.literal(true) }), z.object({ ok: z.literal(false), message: z.string().max(512) })]);
export type MigrationChannelAnswer = z.infer<typeof MigrationChannelAnswer>;
