// The migration channel between two node handlers (node-handler/migration-channel.ts), declared
// once: TCP with mutual TLS, one connection per QEMU migration stream. The source's node handler
// opens it and sends one hello line naming the migration; the target's answers one line, and from
// then on the connection carries the migration stream's bytes both ways, untouched.
import { z } from 'zod';

export const MIGRATION_CHANNEL_PROTOCOL_VERSION = 1;

/** The longest hello or answer line; both are a few dozen bytes. */
export const MIGRATION_CHANNEL_MAX_LINE_BYTES = 1024;

export const MigrationChannelHello = z.object({
  protocol: z.literal(MIGRATION_CHANNEL_PROTOCOL_VERSION),
  /** The VirtualMachineInstanceMigration's uid: the target accepts streams only for migrations it expects. */
  migrationUid: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9-]{0,62}$/),
});
export type MigrationChannelHello = z.infer<typeof MigrationChannelHello>;

export const MigrationChannelAnswer = z.discriminatedUnion('ok', [z.object({ ok: z.literal(true) }), z.object({ ok: z.literal(false), message: z.string().max(512) })]);
export type MigrationChannelAnswer = z.infer<typeof MigrationChannelAnswer>;
