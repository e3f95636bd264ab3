// A work queue with client-go's semantics (k8s.io/client-go/util/workqueue):
// - de-duplicating: a key waiting in the queue is held once however often it is added;
// - one key in flight at a time: a key added while being processed is parked ("dirty") and
//   queued again only when its worker calls done(key);
// - delaying: addAfter(key, ms) for requeueAfter, keeping the earliest deadline per key;
// - rate limited: addRateLimited(key) waits max(per-key exponential backoff, global token bucket),
//   forget(key) resets the key's backoff after a success.
import {
  registerInFlightWorkSource,
  workqueueAdds,
  workqueueDepth,
  workqueueQueueDuration,
  workqueueRetries,
  workqueueWorkDuration,
} from './metrics.js';
import { timerDelay } from './sleep.js';

export type Clock = () => number;

export interface RateLimiter {
  /** How long (ms) to wait before the key may be processed again; records a failure. */
  when(key: string): number;
  /** The key succeeded: reset whatever is tracked for it. */
  forget(key: string): void;
  /** Failures recorded for the key since the last forget. */
  numRequeues(key: string): number;
}

/** Per-key exponential backoff: base * 2^failures, capped (client-go: 5 ms → 1000 s). */
export class ExponentialBackoffRateLimiter implements RateLimiter {
  private readonly failures = new Map<string, number>();

  constructor(
    readonly baseDelayMs = 5,
    readonly maxDelayMs = 1_000_000,
  ) {}

  when(key: string): number {
    const exponent = this.failures.get(key) ?? 0;
    this.failures.set(key, exponent + 1);
    const delay = this.baseDelayMs * 2 ** exponent;
    return delay > this.maxDelayMs ? this.maxDelayMs : delay;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

/**
 * A global token bucket shared by all keys (client-go: 10 qps, burst 100): protects the API
 * server when many keys fail at once. Reservation semantics as golang.org/x/time/rate: each call
 * takes a token now or in the future and returns the wait.
 */
export class TokenBucketRateLimiter implements RateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    readonly qps = 10,
    readonly burst = 100,
    private readonly now: Clock = Date.now,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  when(): number {
    const now = this.now();
    const elapsedSeconds = Math.max(0, now - this.last) / 1000;
    this.last = now;
    this.tokens = Math.min(this.burst, this.tokens + elapsedSeconds * this.qps);
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.qps) * 1000;
  }

  forget(): void {}

  numRequeues(): number {
    return 0;
  }
}

/** The longest wait of several limiters (client-go's MaxOfRateLimiter). */
export class MaxOfRateLimiter implements RateLimiter {
  private readonly limiters: readonly RateLimiter[];

  constructor(...limiters: RateLimiter[]) {
    this.limiters = limiters;
  }

  when(key: string): number {
    let longest = 0;
    for (const limiter of this.limiters) longest = Math.max(longest, limiter.when(key));
    return longest;
  }

  forget(key: string): void {
    for (const limiter of this.limiters) limiter.forget(key);
  }

  numRequeues(key: string): number {
    let most = 0;
    for (const limiter of this.limiters) most = Math.max(most, limiter.numRequeues(key));
    return most;
  }
}

/** client-go's DefaultTypedControllerRateLimiter: max(5 ms → 1000 s per key, 10 qps burst 100). */
export function defaultControllerRateLimiter(now: Clock = Date.now): RateLimiter {
  return new MaxOfRateLimiter(new ExponentialBackoffRateLimiter(5, 1_000_000), new TokenBucketRateLimiter(10, 100, now));
}

export interface WorkQueueOptions {
  /** The `name` label of the kubevirt_workqueue_* metrics; usually the controller's name. */
  name: string;
  rateLimiter?: RateLimiter;
  /** Injected for tests; defaults to Date.now (which jest's fake timers also control). */
  now?: Clock;
}

export interface ShutDownOptions {
  /**
   * Drop keys that are queued but not yet handed to a worker. A process that is about to give up
   * its lease uses this: the next leader lists everything anyway. Without it, as client-go, get()
   * keeps handing out queued keys until the queue is empty.
   */
  discardQueued?: boolean;
}

type Waiter = (key: string | undefined) => void;

export class WorkQueue {
  readonly name: string;
  private readonly rateLimiter: RateLimiter;
  private readonly now: Clock;

  /** Keys ready for a worker, in order. Every key here is also in `dirty`. */
  private readonly queue: string[] = [];
  /** Keys that need processing (queued, or re-added while in flight). */
  private readonly dirty = new Set<string>();
  /** Keys handed to a worker and not yet done, with when they were handed out. */
  private readonly processing = new Map<string, number>();
  /** When each dirty key was first added, for the queue-duration histogram. */
  private readonly addedAt = new Map<string, number>();
  /** Delayed adds: key → (deadline, timer). */
  private readonly delayed = new Map<string, { readyAt: number; timer: NodeJS.Timeout }>();
  private readonly waiters: Waiter[] = [];
  private readonly drainWaiters: Array<() => void> = [];
  private shuttingDownFlag = false;
  private discardQueued = false;
  private readonly unregisterMetrics: () => void;

  constructor(options: WorkQueueOptions) {
    this.name = options.name;
    this.now = options.now ?? Date.now;
    this.rateLimiter = options.rateLimiter ?? defaultControllerRateLimiter(this.now);
    const processing = this.processing;
    this.unregisterMetrics = registerInFlightWorkSource({
      name: this.name,
      processingStartTimes: () => processing.values(),
    });
  }

  get shuttingDown(): boolean {
    return this.shuttingDownFlag;
  }

  /** Keys waiting for a worker (not counting keys in flight or delayed). */
  len(): number {
    return this.queue.length;
  }

  /** Keys currently being processed. */
  inFlight(): number {
    return this.processing.size;
  }

  add(key: string): void {
    if (this.shuttingDownFlag) return;
    if (this.dirty.has(key)) return;
    workqueueAdds.inc({ name: this.name });
    this.dirty.add(key);
    if (!this.addedAt.has(key)) this.addedAt.set(key, this.now());
    this.updateDepth();
    // In flight: done(key) will queue it again, so one worker at a time ever holds a key.
    if (this.processing.has(key)) return;
    this.queue.push(key);
    this.dispatch();
  }

  /** Add the key after `delayMs`; if it is already waiting for an earlier time, that wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDownFlag) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    // A requeue later than a timer can wait (a timeout from a manifest or the KubeVirt CR) comes
    // back after about 24.8 days, when the reconcile computes it again; it must not fire at once.
    const delay = timerDelay(delayMs);
    const readyAt = this.now() + delay;
    const existing = this.delayed.get(key);
    if (existing && existing.readyAt <= readyAt) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, delay);
    // A pending retry must not keep the process alive on shutdown.
    timer.unref?.();
    this.delayed.set(key, { readyAt, timer });
  }

  /** Add the key once the rate limiter allows: the retry path after a failed reconcile. */
  addRateLimited(key: string): void {
    if (this.shuttingDownFlag) return;
    workqueueRetries.inc({ name: this.name });
    this.addAfter(key, this.rateLimiter.when(key));
  }

  /** Stop tracking the key's failures (after success or a terminal error). */
  forget(key: string): void {
    this.rateLimiter.forget(key);
  }

  numRequeues(key: string): number {
    return this.rateLimiter.numRequeues(key);
  }

  /**
   * The next key to process, waiting for one if needed; `undefined` once the queue is shut down
   * and has nothing left to hand out. The caller must call done(key) when finished.
   */
  get(): Promise<string | undefined> {
    const key = this.take();
    if (key !== undefined) return Promise.resolve(key);
    if (this.finished()) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The worker has finished with the key; if it was re-added meanwhile, queue it again. */
  done(key: string): void {
    const startedAt = this.processing.get(key);
    if (startedAt === undefined) return;
    this.processing.delete(key);
    workqueueWorkDuration.observe({ name: this.name }, (this.now() - startedAt) / 1000);
    if (this.dirty.has(key)) {
      if (this.shuttingDownFlag && this.discardQueued) {
        this.dirty.delete(key);
        this.addedAt.delete(key);
        this.updateDepth();
      } else {
        this.queue.push(key);
      }
    }
    this.dispatch();
    this.checkDrained();
  }

  /** Stop accepting keys; pending delayed adds are cancelled. Waiting workers get `undefined`. */
  shutDown(options: ShutDownOptions = {}): void {
    this.shuttingDownFlag = true;
    if (options.discardQueued) {
      this.discardQueued = true;
      for (const key of this.queue) {
        this.dirty.delete(key);
        this.addedAt.delete(key);
      }
      this.queue.length = 0;
      for (const key of this.dirty) if (this.processing.has(key)) this.dirty.delete(key);
      this.updateDepth();
    }
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    this.dispatch();
    this.checkDrained();
  }

  /** Shut down and resolve when no key is queued or in flight. */
  shutDownWithDrain(options: ShutDownOptions = {}): Promise<void> {
    const drained = new Promise<void>((resolve) => this.drainWaiters.push(resolve));
    this.shutDown(options);
    return drained;
  }

  /** Release the metrics registration; call once the queue is no longer used. */
  dispose(): void {
    this.unregisterMetrics();
    workqueueDepth.remove(this.name);
  }

  private take(): string | undefined {
    const key = this.queue.shift();
    if (key === undefined) return undefined;
    const now = this.now();
    this.dirty.delete(key);
    this.processing.set(key, now);
    const addedAt = this.addedAt.get(key);
    this.addedAt.delete(key);
    if (addedAt !== undefined) workqueueQueueDuration.observe({ name: this.name }, (now - addedAt) / 1000);
    this.updateDepth();
    return key;
  }

  private dispatch(): void {
    while (this.waiters.length > 0 && this.queue.length > 0) {
      const waiter = this.waiters.shift();
      const key = this.take();
      waiter?.(key);
    }
    if (this.finished()) {
      for (const waiter of this.waiters.splice(0)) waiter(undefined);
    }
  }

  /**
   * Shut down with nothing left to hand out. A key re-added while in flight before the shutdown
   * still counts: done() will queue it, and an idle worker must be there to take it.
   */
  private finished(): boolean {
    if (!this.shuttingDownFlag || this.queue.length > 0) return false;
    for (const key of this.processing.keys()) if (this.dirty.has(key)) return false;
    return true;
  }

  private checkDrained(): void {
    if (!this.shuttingDownFlag || this.queue.length > 0 || this.processing.size > 0) return;
    for (const resolve of this.drainWaiters.splice(0)) resolve();
  }

  private updateDepth(): void {
    workqueueDepth.set({ name: this.name }, this.dirty.size);
  }
}
