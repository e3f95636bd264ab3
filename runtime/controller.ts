// A controller as controller-runtime shapes one: informers feed keys into a work queue, N workers
// take keys and call reconcile(key). Reconcile is level-triggered (it reads the cache, never an
// event) and has exactly four outcomes:
//   return nothing               success: the key's backoff is forgotten
//   return { requeueAfter: ms }  success, look again later
//   throw an Error               retried with per-key exponential backoff under a global bucket
//   throw a TerminalError        logged, not retried until the object changes (a new event)
// Before reconcile, the root object is validated against its kind's zod schema when its informer
// has a validator (ADR 0001): an invalid object is not reconciled, and is reported once per
// version (a log line and a Warning Event naming the field paths). Objects being deleted are
// reconciled anyway, so their children and finalizers are still cleaned up.
// Besides events, every root object is reconciled again each sync period (controller-runtime's
// SyncPeriod), so a lost event or a dropped key never strands an object; a pass that finds
// nothing to do writes nothing (diff before write), so a resync costs reads of the cache only.
import { randomUUID } from 'node:crypto';
import type { EventRecorder } from './events.js';
import type { Informer, RunnableInformer } from './informer.js';
import { waitForAllSynced } from './informer.js';
import type { KubeObject } from './kube.js';
import { isNamespaceTerminating, objectKey, splitKey } from './kube.js';
import type { Logger } from './logging.js';
import { silentLogger } from './logging.js';
import { reconcileTotal } from './metrics.js';
import type { RateLimiter } from './workqueue.js';
import { WorkQueue } from './workqueue.js';

/** An error retrying cannot fix (invalid spec, unsupported field): wait for the object to change. */
export class TerminalError extends Error {
  override readonly name = 'TerminalError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface ReconcileResult {
  /** Reconcile the key again after this many milliseconds. */
  requeueAfter?: number;
}

export interface ReconcileContext {
  /** Child logger with reconcileId, controller, kind, namespace, name. */
  log: Logger;
  reconcileId: string;
  namespace: string | undefined;
  name: string;
  /** Aborted when the controller stops and its shutdown deadline has passed. */
  signal: AbortSignal;
}

export type ReconcileFunction = (key: string, ctx: ReconcileContext) => Promise<ReconcileResult | void>;

export interface ControllerOptions {
  /** The controller's name: the queue's metric label and the `controller` log field. */
  name: string;
  /** The kind of the root object, for logs. */
  kind: string;
  reconcile: ReconcileFunction;
  /** Concurrent workers; a key is still only processed by one at a time. Default 1. */
  workers?: number;
  log?: Logger;
  rateLimiter?: RateLimiter;
  /** Where an invalid root object is reported (a Warning Event, reason FailedValidation). */
  events?: EventRecorder;
  /**
   * controller-runtime's SyncPeriod: every object of the root informers is enqueued again this
   * often, each period stretched by a random 0..syncJitter fraction so replicas and controllers do
   * not resync in step. Default 10 min; 0 turns it off.
   */
  syncPeriodMs?: number;
  /** Default 0.1 (controller-runtime's jitter). */
  syncJitter?: number;
  /** For tests: the random source of the jitter. */
  random?: () => number;
}

/** The Event reason of a root object the controller refuses to reconcile because it is invalid. */
export const FAILED_VALIDATION_REASON = 'FailedValidation';

export const DEFAULT_SYNC_PERIOD_MS = 10 * 60_000;

/** Maps a watched object to the root keys it concerns (e.g. a launcher pod to its VMI). */
export type KeyMapper<T> = (obj: T) => readonly string[];

/** The owner's key, for objects owned (controller: true) by a `kind` in the same namespace. */
export function controllerOwnerKey(kind: string): KeyMapper<KubeObject> {
  return (obj) => {
    const owner = obj.metadata?.ownerReferences?.find((ref) => ref.controller === true && ref.kind === kind);
    if (!owner) return [];
    const namespace = obj.metadata?.namespace;
    return [namespace ? `${namespace}/${owner.name}` : owner.name];
  };
}

export interface StopOptions {
  /** How long in-flight reconciles may run before their signal is aborted. Default 20 s. */
  deadlineMs?: number;
}

export class Controller {
  readonly name: string;
  readonly kind: string;
  readonly queue: WorkQueue;
  private readonly reconcileFn: ReconcileFunction;
  private readonly workerCount: number;
  private readonly log: Logger;
  private readonly events: EventRecorder | undefined;
  private readonly informers: RunnableInformer[] = [];
  /** The root object of a key with what is wrong with it; set by watch() without a mapper. */
  private rootOf: ((key: string) => { obj: KubeObject; errors: readonly string[] } | undefined) | undefined;
  /** Invalid object versions already reported (cached objects are replaced on change). */
  private readonly reportedInvalid = new WeakSet<KubeObject>();
  /** Informers watched without a mapper: their objects are this controller's keys. */
  private readonly roots: Array<{ keys(): string[] }> = [];
  private readonly syncPeriodMs: number;
  private readonly syncJitter: number;
  private readonly random: () => number;
  private syncTimer: NodeJS.Timeout | undefined;
  private resyncCount = 0;
  private readonly unregister: Array<() => void> = [];
  private readonly abortInFlight = new AbortController();
  private workers: Array<Promise<void>> = [];
  private started = false;

  constructor(options: ControllerOptions) {
    this.name = options.name;
    this.kind = options.kind;
    this.reconcileFn = options.reconcile;
    this.workerCount = Math.max(1, options.workers ?? 1);
    this.log = (options.log ?? silentLogger).child({ controller: options.name });
    this.events = options.events;
    this.queue = new WorkQueue({ name: options.name, ...(options.rateLimiter ? { rateLimiter: options.rateLimiter } : {}) });
    this.syncPeriodMs = options.syncPeriodMs ?? DEFAULT_SYNC_PERIOD_MS;
    this.syncJitter = options.syncJitter ?? 0.1;
    this.random = options.random ?? Math.random;
  }

  /**
   * Enqueue keys for the informer's events. Without a mapper the object's own key is enqueued
   * (the root type); with one, the keys it returns (owned or related objects). Updates enqueue
   * both the old and the new object's keys, so a changed owner is seen by both.
   */
  watch<T extends KubeObject>(informer: Informer<T>, mapToKeys?: KeyMapper<T>): this {
    const keysOf = mapToKeys ?? ((obj: T) => [objectKey(obj)]);
    const enqueue = (obj: T): void => {
      for (const key of keysOf(obj)) this.queue.add(key);
    };
    this.informers.push(informer);
    if (!mapToKeys) {
      this.roots.push(informer);
      this.rootOf = (key) => {
        const obj = informer.get(key);
        return obj ? { obj, errors: informer.validationErrors(obj) } : undefined;
      };
    }
    this.unregister.push(
      informer.addEventHandler({
        onAdd: enqueue,
        onUpdate: (oldObj, newObj) => {
          enqueue(oldObj);
          enqueue(newObj);
        },
        onDelete: enqueue,
      }),
    );
    return this;
  }

  /** Enqueue a key by hand (e.g. from a notification that is not an informer). */
  enqueue(key: string, afterMs = 0): void {
    if (afterMs > 0) this.queue.addAfter(key, afterMs);
    else this.queue.add(key);
  }

  /** True once every watched informer has synced. */
  hasSynced(): boolean {
    return this.informers.every((informer) => informer.hasSynced());
  }

  /**
   * Start the workers once all informers have synced (reconciling against a partial cache would
   * create what already exists). Informers are started by their owner, since several controllers
   * can share one. Resolves when the workers are running.
   */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.started) return;
    this.started = true;
    await waitForAllSynced(this.informers, signal);
    if (signal?.aborted || this.queue.shuttingDown) return;
    this.log.info({ workers: this.workerCount }, 'starting workers');
    for (let i = 0; i < this.workerCount; i++) this.workers.push(this.runWorker());
    this.scheduleResync();
  }

  /** Periodic resyncs done so far (each enqueued every root object once). */
  resyncs(): number {
    return this.resyncCount;
  }

  /** Enqueue every object of the root informers now, as the periodic resync does. */
  resync(): void {
    if (this.queue.shuttingDown) return;
    let keys = 0;
    for (const informer of this.roots) {
      for (const key of informer.keys()) {
        this.queue.add(key);
        keys++;
      }
    }
    this.resyncCount++;
    this.log.debug({ keys }, 'periodic resync: every object enqueued');
  }

  private scheduleResync(): void {
    if (this.syncPeriodMs <= 0 || this.queue.shuttingDown) return;
    const delay = this.syncPeriodMs * (1 + this.random() * this.syncJitter);
    this.syncTimer = setTimeout(() => {
      this.resync();
      this.scheduleResync();
    }, delay);
    this.syncTimer.unref?.();
  }

  /**
   * Stop taking new keys, let in-flight reconciles finish; after the deadline their signal is
   * aborted. Queued keys are dropped: whoever leads next lists everything again.
   */
  async stop(options: StopOptions = {}): Promise<void> {
    for (const off of this.unregister.splice(0)) off();
    if (this.syncTimer) clearTimeout(this.syncTimer);
    const drained = this.queue.shutDownWithDrain({ discardQueued: true });
    const deadlineMs = options.deadlineMs ?? 20_000;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), deadlineMs);
    });
    const outcome = await Promise.race([drained.then(() => 'drained' as const), deadline]);
    if (timer) clearTimeout(timer);
    if (outcome === 'deadline') {
      this.log.warn({ inFlight: this.queue.inFlight(), deadlineMs }, 'shutdown deadline passed; aborting in-flight reconciles');
      this.abortInFlight.abort();
    }
    await Promise.all(this.workers);
    this.queue.dispose();
  }

  private async runWorker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        await this.processKey(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  private async processKey(key: string): Promise<void> {
    const { namespace, name } = splitKey(key);
    const reconcileId = randomUUID();
    const log = this.log.child({ reconcileId, kind: this.kind, namespace, name });
    const ctx: ReconcileContext = { log, reconcileId, namespace, name, signal: this.abortInFlight.signal };
    try {
      // Inside the try: a validator that throws is a failed reconcile (retried), never a dead worker.
      if (this.refuseInvalid(key, log)) {
        reconcileTotal.inc({ controller: this.name, result: 'invalid' });
        this.queue.forget(key);
        return;
      }
      const result = await this.reconcileFn(key, ctx);
      this.queue.forget(key);
      const requeueAfter = result?.requeueAfter;
      if (requeueAfter !== undefined && requeueAfter > 0) {
        reconcileTotal.inc({ controller: this.name, result: 'requeue_after' });
        this.queue.addAfter(key, requeueAfter);
      } else {
        reconcileTotal.inc({ controller: this.name, result: 'success' });
      }
    } catch (err) {
      if (err instanceof TerminalError) {
        reconcileTotal.inc({ controller: this.name, result: 'terminal_error' });
        this.queue.forget(key);
        log.error({ err }, 'reconcile failed terminally; waiting for the object to change');
        return;
      }
      if (isNamespaceTerminating(err)) {
        // What the pass created can never be created there; deleting the namespace's objects,
        // this one included, brings the key back. Retrying would only repeat the refusal.
        reconcileTotal.inc({ controller: this.name, result: 'namespace_terminating' });
        this.queue.forget(key);
        log.info('the namespace is being deleted: nothing more is created in it');
        return;
      }
      reconcileTotal.inc({ controller: this.name, result: 'error' });
      log.warn({ err, retries: this.queue.numRequeues(key) }, 'reconcile failed; retrying with backoff');
      this.queue.addRateLimited(key);
    }
  }

  /** True when the root object fails validation and is not being deleted: do not reconcile it. */
  private refuseInvalid(key: string, log: Logger): boolean {
    const root = this.rootOf?.(key);
    if (!root || root.errors.length === 0 || root.obj.metadata?.deletionTimestamp) return false;
    if (!this.reportedInvalid.has(root.obj)) {
      this.reportedInvalid.add(root.obj);
      log.error({ errors: root.errors, resourceVersion: root.obj.metadata?.resourceVersion }, `invalid ${this.kind}: not reconciled until it changes`);
      this.events?.record(root.obj, 'Warning', FAILED_VALIDATION_REASON, `invalid ${this.kind}, not reconciled until it changes: ${root.errors.join('; ')}`);
    }
    return true;
  }
}
