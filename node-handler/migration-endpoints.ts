// A node handler's two roles in a migration, over the launcher protocol and the migration channel:
// the target's handler makes the target launcher wait for the stream (QEMU -incoming on its
// migration-in.sock) and tells its MigrationReceiver to expect the migration; the source's handler
// connects the source launcher's migration-out.sock to the target node (MigrationSender), then
// tells the launcher to migrate, closing the connections however the migration ends.
import type { Logger } from 'pino';
import type { MigrateArgs, MigrationResult } from '../runtime/contracts/launcher-protocol.js';
import { LAUNCHER_UID, launcherSockets } from '../runtime/contracts/launcher-pod.js';
import type { DomainEvent, DomainStatus } from '../runtime/contracts/launcher-protocol.js';
import type { LauncherClient } from './launcher-client.js';
import { openLauncherSocket } from './launcher-client.js';
import { MigrationSender } from './migration-channel.js';
import { recordMigrationProgress } from './migration-metrics.js';
import type { MigrationReceiver, MigrationTls } from './migration-channel.js';

export interface IncomingMigration {
  migrationUid: string;
  /** The kubelet's pods directory and the target launcher's run directory inside it, as the node sees them. */
  podsDir: string;
  runDir: string;
  postCopy?: boolean;
  ownerUid?: number;
}

/**
 * Starts the target launcher as a migration target and lets the receiver carry this migration's
 * stream to it. Returns the launcher's status (Paused, MigrationTarget) and the undo.
 */
export async function prepareIncoming(launcher: LauncherClient, receiver: MigrationReceiver, m: IncomingMigration): Promise<{ status: DomainStatus; stopExpecting: () => void }> {
  const status = await launcher.call('start', { incoming: m.postCopy ? { postCopy: true } : {} });
  const sockets = launcherSockets(m.runDir);
  // Opened as every launcher socket is: no link followed, owned by the launcher's uid. The memory
  // stream goes to QEMU's incoming socket, each disk stream to its NBD server (disk-mirror.ts).
  const stopExpecting = receiver.expect(m.migrationUid, (stream) =>
    openLauncherSocket(m.podsDir, stream === 'disks' ? sockets.migrationDisksIn : sockets.migrationIn, { ownerUid: m.ownerUid ?? LAUNCHER_UID }),
  );
  return { status, stopExpecting };
}

export interface OutgoingMigration {
  migrationUid: string;
  /** The kubelet's pods directory and the source launcher's run directory inside it, as the node sees them. */
  podsDir: string;
  runDir: string;
  tls: MigrationTls;
  target: { host: string; port: number; serverName: string };
  args: MigrateArgs;
  log: Logger;
  /** The uid that must own the launcher's sockets; default the contract's. */
  ownerUid?: number;
}

/**
 * Migrates the source launcher's domain to the target node; resolves with how it ended. The stream
 * is joined before the launcher is told to migrate: its migration-out.sock to the target node's
 * receiver (MigrationSender). Its progress goes to the kubevirt_vmi_migration_* metrics.
 */
export async function migrateOut(launcher: LauncherClient, m: OutgoingMigration): Promise<MigrationResult> {
  const options = {
    tls: m.tls,
    log: m.log,
    migrationUid: m.migrationUid,
    podsDir: m.podsDir,
    runDir: m.runDir,
    ownerUid: m.ownerUid ?? LAUNCHER_UID,
    target: m.target,
  };
  const sender = await MigrationSender.connect(options);
  // One more stream per pod-local disk the launcher mirrors (its answer says how many).
  const senders = [sender];
  try {
    for (let i = 0; i < sender.diskStreams; i++) senders.push(await MigrationSender.connect({ ...options, stream: 'disks' }));
  } catch (error) {
    for (const s of senders) s.close();
    throw error;
  }
  // The launcher pushes its progress about once a second to a subscribed connection.
  const onEvent = (event: DomainEvent) => {
    if (event.type === 'migration') recordMigrationProgress(event.status.vmi, event.progress);
  };
  launcher.on('event', onEvent);
  try {
    const result = await launcher.call('migrate', m.args);
    const vmi = (await launcher.call('hello')).vmi;
    recordMigrationProgress(vmi, result.progress);
    if (result.relay) m.log.info({ outcome: result.outcome, downtimeMs: result.progress.downtimeMs, totalTimeMs: result.progress.totalTimeMs, relay: result.relay }, 'the source launcher relayed the migration stream');
    return result;
  } finally {
    launcher.off('event', onEvent);
    for (const s of senders) s.close();
  }
}
