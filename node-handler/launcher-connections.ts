// One connection per launcher on this node, keyed by VMI, feeding the DomainStateCache from the
// launcher's pushed events. A connection that drops (launcher restarting, pod going away) is
// redialled for as long as the VMI's active pod is the same; the handler itself keeps no state a
// restart could lose: on start it dials every active pod again (ADR 0007).
//
// A launcher that is not listening yet is waited for on the condition, not on a timer: once a dial
// fails, the pod's socket directory is watched (inotify) and the next dial follows the socket's
// appearance. Retries with a bounded backoff stay underneath, because a watch can miss an event or
// not be possible yet (the directory appears late), and a watch event is only a hint: every dial
// checks the socket as before (no link followed, a socket, the launcher's uid).
import { KUBELET_PODS_DIR, nodeLauncherSocketPath } from '../runtime/contracts/launcher-pod.js';
import type { Logger } from '../runtime/logging.js';
import { silentLogger } from '../runtime/logging.js';
import type { DomainState, DomainStateCache } from './domain-state.js';
import { LauncherSocketRefused } from './launcher-client.js';
import type { LauncherClient } from './launcher-client.js';

/** The user intents the handler forwards to a launcher. */
export interface LauncherCommands {
  /** Start the domain (idempotent); resolves when it started or failed, which events also report. */
  start(): Promise<void>;
  pause(): Promise<void>;
  unpause(): Promise<void>;
  /** The guest's own orderly reboot (agent, else ACPI), not a hard reset. */
  softReboot(): Promise<void>;
  /** A hard reset: the guest's OS gets no say. */
  reset(): Promise<void>;
  /** Graceful (ACPI) shutdown; the launcher forces the stop when the grace period runs out. */
  shutdown(gracePeriodSeconds: number): Promise<void>;
}

/** One live, subscribed connection to a launcher's command socket. */
export interface LauncherSession extends LauncherCommands {
  close(): void;
  /**
   * The protocol connection itself, for the migration roles (migration-endpoints.ts), which speak
   * more of the protocol than the commands above. Test doubles of a session have none.
   */
  readonly launcher?: LauncherClient;
}

export interface LauncherSessionHandlers {
  /** A change of the domain's state, in the handler's terms. */
  onState(change: Partial<Omit<DomainState, 'podUid'>>): void;
  /** The connection ended (launcher gone, socket closed, protocol error). */
  onClose(error?: Error): void;
}

/** Which launcher to dial: its socket, the directory it must be reached from, the VMI it must serve. */
export interface LauncherTarget {
  /**
   * The kubelet's pods directory as the handler mounts it: trusted. Every component below it is
   * the pod's and is opened without following symlinks.
   */
  podsDir: string;
  socketPath: string;
  /** The VMI (namespace/name) the launcher must say it serves. */
  vmi: { namespace: string; name: string };
}

/** Connects to the socket and subscribes to events; the first state arrives through onState. */
export type LauncherDialer = (target: LauncherTarget, handlers: LauncherSessionHandlers, log?: Logger) => Promise<LauncherSession>;

/** A watch on a launcher's socket directory. */
export interface LauncherSocketWatch {
  close(): void;
}

/**
 * Starts watching the directory of `target.socketPath`: `onChange` when an entry of the socket's
 * name may have changed, `onError` once if the watch ends by itself. Throws when it cannot watch
 * (the directory is not there yet).
 */
export type LauncherSocketWatcher = (target: LauncherTarget, onChange: () => void, onError: (error: Error) => void) => LauncherSocketWatch;

/** Where a launcher pod's command socket is, seen from the node (the launcher pod contract). */
export const launcherSocketPath = nodeLauncherSocketPath;

function vmiOfKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf('/');
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** What made a dial happen, for the attach log line. */
type DialTrigger = 'ensure' | 'retry' | 'socket-event';

interface Entry {
  podUid: string;
  session: LauncherSession | undefined;
  dialing: boolean;
  retryTimer: NodeJS.Timeout | undefined;
  failures: number;
  lastError: string | undefined;
  closed: boolean;
  /** The watch on the socket's directory while no session is open. */
  watch: LauncherSocketWatch | undefined;
  /** A watch event came while a dial was in flight: if that dial fails, dial again. */
  wokenWhileDialing: boolean;
  /** Dials watch events may still cause before the next retry: a pod busy in its directory cannot make the handler spin. */
  eventDials: number;
}

export interface LauncherConnectionsOptions {
  dial: LauncherDialer;
  domains: DomainStateCache;
  /** The kubelet's pods directory as mounted in the handler (default /var/lib/kubelet/pods). */
  podsDir?: string;
  /** Called when a connection comes up or goes down, so the VMI is looked at again. */
  onConnectionChange?: (key: string) => void;
  /** Watches a socket directory so a dial follows the socket's appearance; without it, retries only. */
  watch?: LauncherSocketWatcher;
  /** The retries' backoff: the first delay, doubled per failure up to the longest. Default 200 ms → 2 s. */
  retryDelayMs?: { first: number; longest: number };
  log?: Logger;
}

const defaultRetryDelayMs = { first: 200, longest: 2000 };

/** A dial that failed because the pod's directory or the launcher's socket is not there, or not listening, yet. */
function notUpYet(error: Error): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ECONNREFUSED' || /\b(ENOENT|ECONNREFUSED)\b/.test(error.message);
}

/** A retry's delay after `failures` failures (1 or more): the first delay, doubled per failure up to the longest. */
export function retryDelay(delays: { first: number; longest: number }, failures: number): number {
  return Math.min(delays.longest, delays.first * 2 ** Math.min(Math.max(failures - 1, 0), 20));
}
/** Dials watch events may cause between two retries (the socket's creation, its chmod, a stale one removed). */
const eventDialsPerRetry = 3;

export class LauncherConnections {
  private readonly entries = new Map<string, Entry>();
  private readonly podsDir: string;
  private readonly retryDelayMs: { first: number; longest: number };
  private readonly log: Logger;

  constructor(private readonly options: LauncherConnectionsOptions) {
    this.podsDir = options.podsDir ?? KUBELET_PODS_DIR;
    this.retryDelayMs = options.retryDelayMs ?? defaultRetryDelayMs;
    this.log = (options.log ?? silentLogger).child({ module: 'launcher-connections' });
  }

  /** Keeps a session open to `podUid`'s launcher for VMI `key`; replaces one to another pod. */
  ensure(key: string, podUid: string): void {
    const existing = this.entries.get(key);
    if (existing && existing.podUid === podUid) {
      if (!existing.session && !existing.dialing && !existing.retryTimer) this.dial(key, existing, 'ensure');
      return;
    }
    if (existing) this.drop(key);
    const entry: Entry = {
      podUid,
      session: undefined,
      dialing: false,
      retryTimer: undefined,
      failures: 0,
      lastError: undefined,
      closed: false,
      watch: undefined,
      wokenWhileDialing: false,
      eventDials: eventDialsPerRetry,
    };
    this.entries.set(key, entry);
    this.dial(key, entry, 'ensure');
  }

  /** The open session for `key`, if connected to `podUid`'s launcher. */
  session(key: string, podUid: string): LauncherSession | undefined {
    const entry = this.entries.get(key);
    return entry && entry.podUid === podUid ? entry.session : undefined;
  }

  /** Why the last dial failed, for conditions and logs. */
  lastError(key: string): string | undefined {
    return this.entries.get(key)?.lastError;
  }

  /** Stops talking to the launcher of `key` (VMI gone, final, or moved away) and forgets its state. */
  drop(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    entry.closed = true;
    clearTimeout(entry.retryTimer);
    this.unwatch(entry);
    entry.session?.close();
    this.entries.delete(key);
    this.options.domains.delete(key);
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  closeAll(): void {
    for (const key of this.keys()) this.drop(key);
  }

  private dial(key: string, entry: Entry, trigger: DialTrigger): void {
    entry.dialing = true;
    entry.wokenWhileDialing = false;
    if (trigger !== 'socket-event') entry.eventDials = eventDialsPerRetry;
    const log = this.log.child({ vmi: key, podUid: entry.podUid });
    let socketPath: string;
    try {
      socketPath = launcherSocketPath(this.podsDir, entry.podUid);
    } catch (error) {
      // A pod uid that is no uid (it comes from the VMI's status): a failed dial like any other.
      entry.dialing = false;
      if ((error as Error).message !== entry.lastError) log.warn({ err: (error as Error).message }, 'cannot attach to launcher');
      this.retry(key, entry, error as Error);
      return;
    }
    const target: LauncherTarget = { podsDir: this.podsDir, socketPath, vmi: vmiOfKey(key) };
    let session: LauncherSession | undefined;
    this.options
      .dial(
        target,
        {
          onState: (change) => {
            if (entry.closed) return;
            const before = this.options.domains.get(key);
            // One line per transition (not per event): when the launcher's news reached the handler.
            if (change.phase && (before?.phase !== change.phase || before.podUid !== entry.podUid)) log.info({ phase: change.phase }, 'launcher reports domain phase');
            this.options.domains.update(key, { ...change, podUid: entry.podUid });
          },
          onClose: (error) => {
            if (entry.closed || (session && entry.session !== session)) return;
            entry.session = undefined;
            log.info({ err: error }, 'launcher connection closed');
            this.options.onConnectionChange?.(key);
            this.retry(key, entry, error);
          },
        },
        log,
      )
      .then((opened) => {
        session = opened;
        entry.dialing = false;
        if (entry.closed) {
          opened.close();
          return;
        }
        entry.session = opened;
        entry.failures = 0;
        entry.lastError = undefined;
        clearTimeout(entry.retryTimer);
        entry.retryTimer = undefined;
        this.unwatch(entry);
        log.info({ socket: socketPath, trigger }, 'attached to launcher');
        this.options.onConnectionChange?.(key);
      })
      .catch((error: unknown) => {
        entry.dialing = false;
        if (entry.closed) return;
        const failure = error instanceof Error ? error : new Error(String(error));
        // Once per distinct reason: a launcher not up yet fails the same way many times. The handler
        // dials as soon as the pod is bound to its node, before the kubelet has made the pod's
        // directory and the launcher its socket: that is routine, anything else is worth a warning.
        if (failure.message !== entry.lastError) log[notUpYet(failure) ? 'debug' : 'warn']({ err: failure.message, socket: socketPath }, 'cannot attach to launcher');
        this.retry(key, entry, failure);
        // A refused socket (a link, another owner) gets retries only: nothing a pod does in its
        // directory makes the handler dial sooner.
        const watchStarted = !(failure instanceof LauncherSocketRefused) && this.watchSocket(key, entry, target, log);
        // The socket may have appeared between this dial and the watch's start, or during the dial.
        if (watchStarted || entry.wokenWhileDialing) this.wake(key, entry);
      });
  }

  /** Starts watching the socket's directory unless already watching; true if it started now. */
  private watchSocket(key: string, entry: Entry, target: LauncherTarget, log: Logger): boolean {
    if (entry.watch || !this.options.watch) return false;
    try {
      const watch = this.options.watch(
        target,
        () => this.wake(key, entry),
        (error) => {
          if (entry.watch !== watch) return;
          entry.watch = undefined;
          log.debug({ err: error.message }, 'the watch on the launcher socket directory ended; retries go on');
        },
      );
      entry.watch = watch;
      return true;
    } catch (error) {
      // Not there yet (the kubelet has not made the pod's volumes), or no watch possible: the
      // retries go on, and each failed one tries to watch again.
      log.debug({ err: (error as Error).message }, 'cannot watch the launcher socket directory yet');
      return false;
    }
  }

  /** The socket may be there now: dial, unless a dial is running or this retry period's event dials are spent. */
  private wake(key: string, entry: Entry): void {
    if (entry.closed || entry.session) return;
    if (entry.dialing) {
      entry.wokenWhileDialing = true;
      return;
    }
    if (entry.eventDials <= 0) return;
    entry.eventDials -= 1;
    this.dial(key, entry, 'socket-event');
  }

  private unwatch(entry: Entry): void {
    entry.watch?.close();
    entry.watch = undefined;
  }

  private retry(key: string, entry: Entry, error: Error | undefined): void {
    entry.failures += 1;
    entry.lastError = error?.message;
    // The fallback under the watch: it bounds how late a missed event can make the attach.
    const delay = retryDelay(this.retryDelayMs, entry.failures);
    clearTimeout(entry.retryTimer);
    entry.retryTimer = setTimeout(() => {
      entry.retryTimer = undefined;
      if (!entry.closed && !entry.session && !entry.dialing) this.dial(key, entry, 'retry');
    }, delay);
    entry.retryTimer.unref();
  }
}
