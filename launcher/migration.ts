// A source's outgoing live migration over QMP: capabilities and parameters from the resolved
// migration policy, `migrate` to the unix socket the node handler serves, then query-migrate until
// it ends. The two timeouts are KubeVirt's: completion (abort, or switch to post-copy when allowed)
// and progress (abort when the remaining bytes stop going down). However it ends, the answer says
// how; a failed or aborted migration leaves the guest running on the source (domain.ts resumes it).
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { MigrateArgs, MigrationInfo, MigrationProgress, MigrationResult, QmpEvent } from '../runtime/contracts/launcher-protocol.js';
import type { DiskMirrors } from './disk-mirror.js';
import { qmp } from './qmp.js';
import type { QmpClient } from './qmp.js';

/** QEMU's max-bandwidth has no "unlimited": 1 TiB/s is more than any link. */
const UNLIMITED_BANDWIDTH = 2 ** 40;
const MIB = 1024 * 1024;
const DEFAULT_COMPLETION_TIMEOUT_SECONDS = 600;
const DEFAULT_PROGRESS_TIMEOUT_SECONDS = 150;
const POLL_MS = 200;
const PROGRESS_EVENT_MS = 1000;
/** The guest is stopped while the mirrors copy what is left: that is downtime, kept short. */
const MIRROR_FINISH_TIMEOUT_MS = 30_000;

/** query-migrate in kubevm's terms. */
export function migrationProgress(info: MigrationInfo): MigrationProgress {
  const ram = info.ram;
  const progress: MigrationProgress = {
    status: info.status ?? 'none',
    transferredBytes: ram?.transferred ?? 0,
    remainingBytes: ram?.remaining ?? 0,
    totalBytes: ram?.total ?? 0,
    dirtyRateBytesPerSecond: (ram?.['dirty-pages-rate'] ?? 0) * (ram?.['page-size'] ?? 4096),
    // QEMU's mbps is megabits (10^6) per second.
    transferRateBytesPerSecond: ((ram?.mbps ?? 0) * 1_000_000) / 8,
    iterations: ram?.['dirty-sync-count'] ?? 0,
    cpuThrottlePercent: info['cpu-throttle-percentage'] ?? 0,
  };
  if (info['total-time'] !== undefined) progress.totalTimeMs = info['total-time'];
  const downtime = info.downtime ?? info['expected-downtime'];
  if (downtime !== undefined) progress.downtimeMs = downtime;
  if (info['error-desc'] !== undefined) progress.errorDescription = info['error-desc'];
  return progress;
}

/** The capabilities a source (and, for post-copy, a target) sets before a migration. */
export function migrationCapabilities(options: { autoConverge?: boolean | undefined; postCopy?: boolean | undefined; mirroredDisks?: boolean; lateBlockActivate?: boolean }): { capability: string; state: boolean }[] {
  return [
    // MIGRATION events on both ends, so a target's end is seen without polling.
    { capability: 'events', state: true },
    { capability: 'auto-converge', state: options.autoConverge === true },
    { capability: 'postcopy-ram', state: options.postCopy === true },
    // With disks mirrored, the source stops at pre-switchover (guest stopped) until the mirrors
    // have copied their last writes; only then does the target take over.
    { capability: 'pause-before-switchover', state: options.mirroredDisks === true },
    // A target with exported disks (started with -S) activates them only on `cont`, after its NBD
    // exports are gone: an export still holding a disk at activation conflicts with the disk's
    // device, and the guest's next migration then fails to inactivate it (libvirt does the same).
    { capability: 'late-block-activate', state: options.lateBlockActivate === true },
  ];
}

/** migrate-set-parameters for a policy: bandwidth in bytes/s, the allowed downtime in ms. */
export function migrationParameters(args: MigrateArgs): Record<string, number> {
  const parameters: Record<string, number> = { 'max-bandwidth': args.bandwidthMiBps ? args.bandwidthMiBps * MIB : UNLIMITED_BANDWIDTH };
  if (args.maxDowntimeMs !== undefined) parameters['downtime-limit'] = args.maxDowntimeMs;
  return parameters;
}

const ENDED = new Set(['completed', 'failed', 'cancelled']);

/** Resolves at QEMU's next MIGRATION event (a status change), or after `ms` at the latest. */
export function nextMigrationEvent(c: QmpClient, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      c.off('event', onEvent);
      resolve();
    };
    const onEvent = (e: QmpEvent) => {
      if (e.event === 'MIGRATION') done();
    };
    const timer = setTimeout(done, ms);
    c.on('event', onEvent);
  });
}

export interface OutgoingMigrationHooks {
  log: Logger;
  onProgress: (progress: MigrationProgress) => void;
}

/**
 * One outgoing migration. `run` resolves when it has ended; `cancel` asks QEMU to abort it (the
 * answer of `run` is then Aborted).
 */
export class OutgoingMigration {
  private cancelRequested = false;
  private switchedToPostCopy = false;
  private timedOut: string | undefined;

  constructor(
    private readonly qmpClient: QmpClient,
    private readonly uri: string,
    private readonly args: MigrateArgs,
    private readonly hooks: OutgoingMigrationHooks,
    /** The pod-local disks to copy before the memory switches over (none: a shared-storage VM). */
    private readonly mirrors?: DiskMirrors,
  ) {}

  async run(): Promise<MigrationResult> {
    const c = this.qmpClient;
    const mirrors = this.mirrors;
    const started = Date.now();
    const completionMs = (this.args.completionTimeoutSeconds ?? DEFAULT_COMPLETION_TIMEOUT_SECONDS) * 1000;
    const progressMs = (this.args.progressTimeoutSeconds ?? DEFAULT_PROGRESS_TIMEOUT_SECONDS) * 1000;
    const capabilitiesWanted = migrationCapabilities({ ...this.args, mirroredDisks: mirrors !== undefined && !mirrors.empty });
    await qmp.migrateSetCapabilities(c, capabilitiesWanted);
    await qmp.migrateSetParameters(c, migrationParameters(this.args));
    const parameters = await qmp.queryMigrateParameters(c);
    const capabilities = Object.fromEntries((await qmp.queryMigrateCapabilities(c)).map((e) => [e.capability, e.state]));
    const result = (progress: MigrationProgress) => ({ postCopy: this.switchedToPostCopy, progress, parameters, capabilities });

    if (mirrors && !mirrors.empty) {
      const failed = await this.mirrorUntilInSync(mirrors, started, completionMs, progressMs);
      if (failed) {
        await mirrors.abort();
        const progress = migrationProgress(await qmp.queryMigrate(c));
        if (failed === 'cancelled') return { outcome: 'Aborted', reason: 'the migration was cancelled on request', ...result(progress) };
        return { outcome: 'Failed', reason: failed, ...result(progress) };
      }
    }

    this.hooks.log.info({ uri: this.uri, parameters: { 'max-bandwidth': parameters['max-bandwidth'], 'downtime-limit': parameters['downtime-limit'] }, autoConverge: capabilities['auto-converge'], postCopy: capabilities['postcopy-ram'], mirroredDisks: capabilities['pause-before-switchover'] }, 'migration starting');
    await qmp.migrate(c, this.uri);

    let lowestRemaining = Number.POSITIVE_INFINITY;
    let lastProgressAt = Date.now();
    let lastEventAt = 0;
    let progress: MigrationProgress;
    let switchedOver = false;
    for (;;) {
      progress = migrationProgress(await qmp.queryMigrate(c));
      const now = Date.now();
      if (ENDED.has(progress.status)) break;
      if (progress.status === 'pre-switchover' && !switchedOver) {
        // The guest is stopped: the mirrors copy their last writes, then the target takes over.
        switchedOver = true;
        try {
          await mirrors?.finish(MIRROR_FINISH_TIMEOUT_MS);
          await c.execute('migrate-continue', { state: 'pre-switchover' });
        } catch (error) {
          await this.abort((error as Error).message);
        }
        continue;
      }
      if (now - lastEventAt >= PROGRESS_EVENT_MS) {
        lastEventAt = now;
        this.hooks.onProgress(progress);
      }
      if (progress.status === 'active' && progress.remainingBytes < lowestRemaining) {
        lowestRemaining = progress.remainingBytes;
        lastProgressAt = now;
      }
      if (this.timedOut === undefined && !this.switchedToPostCopy) {
        if (now - started > completionMs) {
          if (this.args.postCopy && progress.status === 'active') {
            this.hooks.log.info({ completionTimeoutSeconds: completionMs / 1000 }, 'migration did not complete in time; switching to post-copy');
            await qmp.migrateStartPostcopy(c);
            this.switchedToPostCopy = true;
          } else {
            await this.abort(`the migration did not complete within its completion timeout of ${completionMs / 1000} s (completionTimeoutPerGiB)`);
          }
        } else if (progress.status === 'active' && now - lastProgressAt > progressMs) {
          await this.abort(`the migration made no progress for ${progressMs / 1000} s (progressTimeout); ${progress.remainingBytes} bytes remained`);
        }
      }
      // A status change (pre-switchover above all: the guest is stopped until it is handled) is
      // acted on at once, not at the next poll.
      await nextMigrationEvent(c, POLL_MS);
    }
    this.hooks.onProgress(progress);
    if (progress.status !== 'completed') await mirrors?.abort();
    if (progress.status === 'completed') return { outcome: 'Succeeded', ...result(progress) };
    if (progress.status === 'cancelled' && this.cancelRequested && this.timedOut === undefined) return { outcome: 'Aborted', reason: 'the migration was cancelled on request', ...result(progress) };
    const reason = this.timedOut ?? `the migration failed: ${progress.errorDescription ?? 'QEMU gave no reason'}`;
    return { outcome: 'Failed', reason, ...result(progress) };
  }

  /**
   * Copies the disks until every mirror is in sync (from then on each guest write goes to both
   * ends). Undefined when in sync; else why not: 'cancelled', a timeout, or the mirror's failure.
   */
  private async mirrorUntilInSync(mirrors: DiskMirrors, started: number, completionMs: number, progressMs: number): Promise<string | undefined> {
    try {
      await mirrors.start(this.args.bandwidthMiBps ? this.args.bandwidthMiBps * MIB : undefined);
      let mostCopied = -1;
      let lastProgressAt = Date.now();
      let lastEventAt = 0;
      for (;;) {
        if (this.cancelRequested) return 'cancelled';
        const p = await mirrors.progress();
        if (p.ready) return undefined;
        const now = Date.now();
        if (p.copiedBytes > mostCopied) {
          mostCopied = p.copiedBytes;
          lastProgressAt = now;
        }
        if (now - lastEventAt >= PROGRESS_EVENT_MS) {
          lastEventAt = now;
          this.hooks.onProgress({ status: 'setup', transferredBytes: p.copiedBytes, remainingBytes: Math.max(0, p.totalBytes - p.copiedBytes), totalBytes: p.totalBytes, dirtyRateBytesPerSecond: 0, transferRateBytesPerSecond: 0, iterations: 0, cpuThrottlePercent: 0 });
        }
        if (now - started > completionMs) return `the disks were not copied within the migration's completion timeout of ${completionMs / 1000} s (completionTimeoutPerGiB)`;
        if (now - lastProgressAt > progressMs) return `the disk copy made no progress for ${progressMs / 1000} s (progressTimeout)`;
        await delay(POLL_MS);
      }
    } catch (error) {
      return `the disks could not be copied to the target: ${(error as Error).message}`;
    }
  }

  /** A cancel on request (migrateCancel). */
  async cancel(): Promise<void> {
    this.cancelRequested = true;
    await qmp.migrateCancel(this.qmpClient);
  }

  private async abort(reason: string): Promise<void> {
    this.timedOut = reason;
    this.hooks.log.warn({ reason }, 'aborting the migration');
    await qmp.migrateCancel(this.qmpClient);
  }
}
