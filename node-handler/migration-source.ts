// The source node handler's part of a migration (KubeVirt's virt-handler on the source): once the
// target's handler has written its address into the VMI's migrationState, migrate the launcher's
// domain to it over the migration channel (migration-endpoints.ts migrateOut), and report start and
// end in the same migrationState. Deleting the migration object aborts a migration in flight
// (migrateCancel); a failed or aborted migration leaves the guest running here.
//
// The migration runs beside the reconcile: the launcher's `migrate` answers only when it ended.
// What this handler knows of it lives in memory; a handler that restarts mid-migration has cut the
// stream it carried (the sender was its socket), asks the launcher how the migration ended (cancelling
// one QEMU still runs), and records that.
import type { VirtualMachineInstance, VirtualMachineInstanceMigration, VirtualMachineInstanceMigrationState } from '../runtime/api/index.js';
import { formatConditionTime } from '../runtime/conditions.js';
import { nodeLauncherRunDir } from '../runtime/contracts/launcher-pod.js';
import { NODE_HANDLER_MIGRATION_PORT } from '../runtime/contracts/migration-channel.js';
import { LAUNCHER_STATUS_LIMITS } from '../runtime/contracts/launcher-protocol.js';
import type { MigrationResult } from '../runtime/contracts/launcher-protocol.js';
import { NODE_HANDLER_STREAM_SERVER_NAME } from '../runtime/contracts/streams.js';
import type { KubeObject } from '../runtime/kube.js';
import type { Logger } from '../runtime/logging.js';
import { migrateArgsFromConfiguration } from '../runtime/migration-policy.js';
import { storableText } from '../runtime/text.js';
import { guestMemoryBytes } from '../runtime/vmi-defaults.js';
import type { LauncherSession } from './launcher-connections.js';
import { migrateOut } from './migration-endpoints.js';
import type { MigrationTls } from './migration-channel.js';

/** A VirtualMachineInstanceMigration as the node handlers' informer holds it (validated against its schema). */
export type MigrationObject = VirtualMachineInstanceMigration & KubeObject;

/** QEMU's migration states of a pre-copy migration that has not ended. */
const PRE_COPY_RUNNING: ReadonlySet<string> = new Set(['setup', 'active', 'device', 'pre-switchover', 'wait-unplug']);

interface Outgoing {
  migrationUid: string;
  startTimestamp: string;
  /** How it ended, once the launcher answered (or failed to). */
  ended?: { outcome: MigrationResult['outcome']; reason?: string; at: string };
  cancelSent: boolean;
}

export interface MigrationSourceOptions {
  nodeName: string;
  podsDir: string;
  /** The node handlers' certificate; without it this node cannot migrate out. */
  tls: () => MigrationTls | undefined;
  /** The migration object of this uid, as the node's informer has it; undefined once it is deleted. */
  findMigration: (uid: string) => MigrationObject | undefined;
  /** Look at the VMI again (the migration ended). */
  enqueue: (vmiKey: string) => void;
  log: Logger;
  now?: () => Date;
}

/** Whether this node is the source of the VMI's current migration. */
export function isMigrationSource(vmi: VirtualMachineInstance, nodeName: string): boolean {
  const state = vmi.status?.migrationState;
  return state?.migrationUid !== undefined && state.sourceNode === nodeName && vmi.status?.nodeName === nodeName;
}

/** A migration of this VMI started here and has not ended: the launcher is not to be told anything else. */
export function migrationInFlight(vmi: VirtualMachineInstance, nodeName: string): boolean {
  const state = vmi.status?.migrationState;
  return isMigrationSource(vmi, nodeName) && state?.startTimestamp !== undefined && state.endTimestamp === undefined;
}

/** A migration from here completed: the guest runs on the target, this launcher's copy is stale. */
export function migratedAway(vmi: VirtualMachineInstance, nodeName: string): boolean {
  return isMigrationSource(vmi, nodeName) && vmi.status?.migrationState?.completed === true;
}

export class MigrationSource {
  private readonly outgoing = new Map<string, Outgoing>();
  private readonly now: () => Date;

  constructor(private readonly options: MigrationSourceOptions) {
    this.now = options.now ?? (() => new Date());
  }

  /**
   * Whether this handler runs (or ran, and has not yet seen recorded) a migration of the VMI out
   * of here: known before the VMI's status says so, as the informer may lag behind the write.
   */
  migrating(key: string): boolean {
    return this.outgoing.has(key);
  }

  /**
   * The VMI's migrationState after this pass: unchanged unless a migration from here starts, is
   * aborted, or ended. Starts the migration (not awaited) when the target is ready.
   */
  async migrationState(key: string, vmi: VirtualMachineInstance, podUid: string, session: LauncherSession | undefined): Promise<VirtualMachineInstanceMigrationState | undefined> {
    const state = vmi.status?.migrationState;
    if (!state || !isMigrationSource(vmi, this.options.nodeName)) {
      this.outgoing.delete(key);
      return state;
    }
    const uid = state.migrationUid ?? '';
    if (state.endTimestamp !== undefined) {
      // Recorded: nothing more to say about it.
      if (this.outgoing.get(key)?.migrationUid === uid) this.outgoing.delete(key);
      return state;
    }
    let run = this.outgoing.get(key);
    if (run && run.migrationUid !== uid) {
      this.outgoing.delete(key);
      run = undefined;
    }
    const migration = this.options.findMigration(uid);
    const abandoned = !migration || migration.metadata?.deletionTimestamp !== undefined || migration.status?.phase === 'Failed';

    if (!run) {
      if (state.startTimestamp !== undefined) return this.afterRestart(state, session);
      if (!state.targetNodeAddress || abandoned) return state;
      return this.start(key, vmi, state, podUid, session);
    }
    if (run.ended) return this.ended(state, run, run.ended);
    if (abandoned && !run.cancelSent && session?.launcher) {
      run.cancelSent = true;
      this.options.log.info({ vmi: key, migrationUid: uid }, 'the migration was deleted or failed: aborting it');
      session.launcher.call('migrateCancel').catch((error: unknown) => this.options.log.warn({ vmi: key, err: error }, 'migrateCancel failed'));
    }
    return { ...state, startTimestamp: run.startTimestamp, mode: 'PreCopy', ...(run.cancelSent ? { abortRequested: true, abortStatus: 'Aborting' as const } : {}) };
  }

  private start(key: string, vmi: VirtualMachineInstance, state: VirtualMachineInstanceMigrationState, podUid: string, session: LauncherSession | undefined): VirtualMachineInstanceMigrationState {
    const at = formatConditionTime(this.now());
    const tls = this.options.tls();
    const failed = (reason: string): VirtualMachineInstanceMigrationState => ({ ...state, startTimestamp: at, endTimestamp: at, failed: true, failureReason: reason });
    if (!tls) return failed(`node ${this.options.nodeName} has no migration certificate (the node handlers' streams Secret is not mounted): it cannot migrate out`);
    if (!session?.launcher) return state; // not connected yet: the connection's change enqueues the VMI again
    const uid = state.migrationUid ?? '';
    const port = Number(Object.keys(state.targetDirectMigrationNodePorts ?? {})[0] ?? NODE_HANDLER_MIGRATION_PORT);
    const run: Outgoing = { migrationUid: uid, startTimestamp: at, cancelSent: false };
    this.outgoing.set(key, run);
    const log = this.options.log.child({ vmi: key, migrationUid: uid, targetNode: state.targetNode });
    log.info({ target: `${state.targetNodeAddress}:${port}` }, 'migrating to the target node');
    const finish = (outcome: MigrationResult['outcome'], reason?: string) => {
      // The reason comes from the launcher (or its error): bounded before it reaches the VMI status.
      run.ended = { outcome, ...(reason !== undefined ? { reason: storableText(reason, LAUNCHER_STATUS_LIMITS.messageChars) } : {}), at: formatConditionTime(this.now()) };
      log.info({ outcome, reason }, 'the migration ended');
      this.options.enqueue(key);
    };
    migrateOut(session.launcher, {
      migrationUid: uid,
      podsDir: this.options.podsDir,
      runDir: nodeLauncherRunDir(this.options.podsDir, podUid),
      tls,
      target: { host: state.targetNodeAddress ?? '', port, serverName: NODE_HANDLER_STREAM_SERVER_NAME },
      args: migrateArgsFromConfiguration(state.migrationConfiguration, Number(guestMemoryBytes(vmi) ?? 0n)),
      log,
    }).then(
      (result) => finish(result.outcome, result.reason),
      (error: unknown) => finish('Failed', `the source's node handler could not run the migration: ${error instanceof Error ? error.message : String(error)}`),
    );
    return { ...state, startTimestamp: at, mode: 'PreCopy' };
  }

  private ended(state: VirtualMachineInstanceMigrationState, run: Outgoing, end: NonNullable<Outgoing['ended']>): VirtualMachineInstanceMigrationState {
    const { outcome, reason, at } = end;
    const base = { ...state, startTimestamp: run.startTimestamp, endTimestamp: at };
    // An abort asked for too late fails: the migration completed.
    if (outcome === 'Succeeded') return { ...base, completed: true, ...(run.cancelSent ? { abortRequested: true, abortStatus: 'Failed' as const } : {}) };
    return {
      ...base,
      failed: true,
      failureReason: reason ?? (outcome === 'Aborted' ? 'the migration was aborted' : 'the migration failed'),
      ...(run.cancelSent ? { abortRequested: true, abortStatus: 'Succeeded' as const } : {}),
    };
  }

  /**
   * A migration this handler started before it restarted. Its stream went with the old process
   * (the handler carries every byte between the launcher's migration-out.sock and the target
   * node), so QEMU's migration cannot complete any more; QEMU may take a while to notice (the
   * launcher's relay gives a closed peer time to flush), and the launcher reports no change when
   * it does. So one still running is cancelled now, and the migration recorded failed at once:
   * the guest stays with the source. Post-copy is left alone (the guest's state is split between
   * the two nodes; cancelling it is not possible).
   */
  private async afterRestart(state: VirtualMachineInstanceMigrationState, session: LauncherSession | undefined): Promise<VirtualMachineInstanceMigrationState> {
    if (!session?.launcher) return state;
    const launcher = session.launcher;
    let progress = await launcher.call('queryMigration');
    const at = formatConditionTime(this.now());
    if (progress.status === 'completed') return { ...state, endTimestamp: at, completed: true };
    if (progress.status.startsWith('postcopy')) return state;
    if (PRE_COPY_RUNNING.has(progress.status)) {
      this.options.log.info({ migrationUid: state.migrationUid, qemuStatus: progress.status }, 'a migration started before this handler restarted lost its stream: cancelling it');
      // The launcher refuses when its migration ended meanwhile; then QEMU says how.
      progress = await launcher.call('migrateCancel').catch(() => launcher.call('queryMigration'));
      if (progress.status === 'completed') return { ...state, endTimestamp: at, completed: true };
    }
    return { ...state, endTimestamp: at, failed: true, failureReason: `the source's node handler restarted during the migration, which cut its stream (QEMU: ${storableText(progress.status, LAUNCHER_STATUS_LIMITS.reasonChars)})` };
  }
}
