// Graceful shutdown on SIGTERM/SIGINT. The kubelet sends SIGTERM and, after the pod's
// terminationGracePeriodSeconds (30 s by default), SIGKILL; we finish within a deadline below that.
//
// Hooks run one after another in reverse order of registration, like deferred calls: a main that
// registers the health server, then the leader elector, then its controllers, shuts down the
// controllers first (no new reconciles, in-flight ones finish), then releases the Lease (the
// next leader starts at once), then closes the servers.
import type { Logger } from './logging.js';
import { silentLogger } from './logging.js';

export type ShutdownHook = (signal: AbortSignal) => void | Promise<void>;

export interface ProcessLifecycleOptions {
  log?: Logger;
  /** Total time for all hooks. Default 25 s, inside the kubelet's default 30 s grace period. */
  deadlineMs?: number;
  /** Called with the exit code once shutdown is done; process.exit unless replaced (tests). */
  exit?: (code: number) => void;
}

export class ProcessLifecycle {
  private readonly hooks: Array<{ name: string; hook: ShutdownHook }> = [];
  private readonly shutdownController = new AbortController();
  private readonly log: Logger;
  private readonly deadlineMs: number;
  private readonly exit: (code: number) => void;
  private shuttingDown: Promise<void> | undefined;
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    if (this.shuttingDown) {
      this.log.warn({ signal }, 'second signal during shutdown; exiting now');
      this.exit(1);
      return;
    }
    void this.shutdown(`signal ${signal}`);
  };

  constructor(options: ProcessLifecycleOptions = {}) {
    this.log = (options.log ?? silentLogger).child({ lifecycle: 'shutdown' });
    this.deadlineMs = options.deadlineMs ?? 25_000;
    this.exit = options.exit ?? ((code) => process.exit(code));
  }

  /** Aborted when shutdown begins: long-running loops watch it to stop taking new work. */
  get signal(): AbortSignal {
    return this.shutdownController.signal;
  }

  onShutdown(name: string, hook: ShutdownHook): void {
    this.hooks.push({ name, hook });
  }

  installSignalHandlers(): void {
    process.on('SIGTERM', this.onSignal);
    process.on('SIGINT', this.onSignal);
  }

  removeSignalHandlers(): void {
    process.off('SIGTERM', this.onSignal);
    process.off('SIGINT', this.onSignal);
  }

  /** Run the hooks (once), then exit: 0 when all finished in time, 1 otherwise. */
  shutdown(reason: string): Promise<void> {
    this.shuttingDown ??= this.runHooks(reason);
    return this.shuttingDown;
  }

  private async runHooks(reason: string): Promise<void> {
    this.log.info({ reason, deadlineMs: this.deadlineMs }, 'shutting down');
    this.shutdownController.abort();
    const deadline = Date.now() + this.deadlineMs;
    const deadlineSignal = AbortSignal.timeout(this.deadlineMs);
    let clean = true;
    for (const { name, hook } of [...this.hooks].reverse()) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        this.log.error({ hook: name }, 'shutdown deadline passed; skipping the remaining hooks');
        clean = false;
        break;
      }
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), remaining);
      });
      try {
        const outcome = await Promise.race([Promise.resolve().then(() => hook(deadlineSignal)), timedOut]);
        if (outcome === 'timeout') {
          clean = false;
          this.log.error({ hook: name }, 'shutdown hook did not finish before the deadline');
        } else {
          this.log.debug({ hook: name }, 'shutdown hook done');
        }
      } catch (err) {
        clean = false;
        this.log.error({ err, hook: name }, 'shutdown hook failed');
      } finally {
        if (timer) clearTimeout(timer);
      }
    }
    this.removeSignalHandlers();
    this.log.info({ clean }, 'shutdown complete');
    this.exit(clean ? 0 : 1);
  }
}
