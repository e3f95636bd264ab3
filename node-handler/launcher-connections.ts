// One connection per launcher on this node, keyed by VMI, feeding the DomainStateCache from the
// launcher's pushed events. A connection that drops (launcher restarting, pod going away) is
// redialled with backoff for as long as the VMI's active pod is the same; the handler itself keeps
// no state a restart could lose: on start it dials every active pod again (ADR 0007).
import { KUBELET_PODS_DIR, nodeLauncherSocketPath } from '../runtime/contracts/launcher-pod.js';
import type { Logger } from '../runtime/logging.js';
import { silentLogger } from '../runtime/logging.js';
import type { DomainState, DomainStateCache } from './domain-state.js';

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

/** Where a launcher pod's command socket is, seen from the node (the launcher pod contract). */
export const launcherSocketPath = nodeLauncherSocketPath;

function vmiOfKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf('/');
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

interface Entry {
  podUid: string;
  session: LauncherSession | undefined;
  dialing: boolean;
  retryTimer: NodeJS.Timeout | undefined;
  failures: number;
  lastError: string | undefined;
  closed: boolean;
}

export interface LauncherConnectionsOptions {
  dial: LauncherDialer;
  domains: DomainStateCache;
  /** The kubelet's pods directory as mounted in the handler (default /var/lib/kubelet/pods). */
  podsDir?: string;
  /** Called when a connection comes up or goes down, so the VMI is looked at again. */
  onConnectionChange?: (key: string) => void;
  log?: Logger;
}

const maxRetryMs = 5000;

export class LauncherConnections {
  private readonly entries = new Map<string, Entry>();
  private readonly podsDir: string;
  private readonly log: Logger;

  constructor(private readonly options: LauncherConnectionsOptions) {
    this.podsDir = options.podsDir ?? KUBELET_PODS_DIR;
    this.log = (options.log ?? silentLogger).child({ module: 'launcher-connections' });
  }

  /** Keeps a session open to `podUid`'s launcher for VMI `key`; replaces one to another pod. */
  ensure(key: string, podUid: string): void {
    const existing = this.entries.get(key);
    if (existing && existing.podUid === podUid) {
      if (!existing.session && !existing.dialing && !existing.retryTimer) this.dial(key, existing);
      return;
    }
    if (existing) this.drop(key);
    const entry: Entry = { podUid, session: undefined, dialing: false, retryTimer: undefined, failures: 0, lastError: undefined, closed: false };
    this.entries.set(key, entry);
    this.dial(key, entry);
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

  private dial(key: string, entry: Entry): void {
    entry.dialing = true;
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
    let session: LauncherSession | undefined;
    this.options
      .dial(
        { podsDir: this.podsDir, socketPath, vmi: vmiOfKey(key) },
        {
        onState: (change) => {
          if (!entry.closed) this.options.domains.update(key, { ...change, podUid: entry.podUid });
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
        log.info({ socket: socketPath }, 'attached to launcher');
        this.options.onConnectionChange?.(key);
      })
      .catch((error: unknown) => {
        entry.dialing = false;
        if (entry.closed) return;
        const failure = error instanceof Error ? error : new Error(String(error));
        // Once per distinct reason: a launcher not up yet fails the same way many times.
        if (failure.message !== entry.lastError) log.warn({ err: failure.message, socket: socketPath }, 'cannot attach to launcher');
        this.retry(key, entry, failure);
      });
  }

  private retry(key: string, entry: Entry, error: Error | undefined): void {
    entry.failures += 1;
    entry.lastError = error?.message;
    // The socket appears only once the launcher runs: early failures are expected, so retry fast
    // first and back off to a few seconds.
    const delay = Math.min(maxRetryMs, 100 * 2 ** Math.min(entry.failures, 6));
    clearTimeout(entry.retryTimer);
    entry.retryTimer = setTimeout(() => {
      entry.retryTimer = undefined;
      if (!entry.closed) this.dial(key, entry);
    }, delay);
    entry.retryTimer.unref();
  }
}
