// An informer: a local cache of one resource kept current by list + watch, with event handlers.
//
// Built on client-node's raw Watch rather than its ListWatch, for control ListWatch lacks:
// - 410 Gone (resourceVersion compacted), as an HTTP status or an ERROR event, triggers a fresh
//   list, diffed against the cache so handlers see the adds/updates/deletes that were missed;
// - a periodic re-list with jitter, because watches can miss events silently;
// - a server-side watch timeout (randomised, as client-go's reflector) so connections recycle;
// - backoff on errors, hasSynced/waitForSync, indexers, and a clean stop.
//
// Cached objects are frozen: a controller must copy (structuredClone) before changing one, or the
// cache would silently diverge from the API server.
import { Watch } from '@kubernetes/client-node';
import type { KubeClient, KubeObject, ObjectList, ResourceDescriptor } from './kube.js';
import { isGone, objectKey, recordRestRequest, resourcePath } from './kube.js';
import type { Logger } from './logging.js';
import { silentLogger } from './logging.js';
import { sleepUnlessAborted } from './sleep.js';

export interface InformerEventHandler<T> {
  onAdd?(obj: T): void;
  onUpdate?(oldObj: T, newObj: T): void;
  onDelete?(obj: T): void;
}

export type IndexFunction<T> = (obj: T) => readonly string[];

export interface InformerOptions<T extends KubeObject> {
  client: KubeClient;
  descriptor: ResourceDescriptor;
  /** Watch one namespace; all namespaces (or a cluster-scoped resource) when omitted. */
  namespace?: string;
  /** e.g. "kubevirt.io/nodeName=node01": the node handler watches only its node's VMIs. */
  labelSelector?: string;
  fieldSelector?: string;
  /** Full re-list period; each period is stretched by a random 0..jitter fraction. Default 5 min. */
  resyncPeriodMs?: number;
  resyncJitter?: number;
  /** Server-side watch timeout; randomised in [t, 2t) as client-go does. Default 300 s. */
  watchTimeoutSeconds?: number;
  /** Page size of the list calls. */
  pageSize?: number;
  indexers?: Record<string, IndexFunction<T>>;
  /**
   * Checks an object against its kind's zod schema (ADR 0001); returns what is wrong, each
   * message naming the field path, or nothing when valid. A controller does not reconcile an
   * invalid root object. Invalid objects stay in the cache: a VM's invalid VMI still exists.
   */
  validate?: (obj: T) => readonly string[];
  log?: Logger;
}

/**
 * `namespace/uid`: how the owner indexes file an object under an owner in its own namespace. An
 * owner reference counts only within the object's namespace (Kubernetes' rule: the garbage
 * collector ignores one that reaches elsewhere), so a pod in another namespace that names an
 * owner's uid, which anyone who may read the owner can copy, is never found as its child.
 */
export const namespacedUid = (namespace: string | undefined, uid: string): string => `${namespace ?? ''}/${uid}`;

/** The key of the objects `owner` owns, in ownerUidIndex. */
export const ownedBy = (owner: KubeObject): string => namespacedUid(owner.metadata?.namespace, owner.metadata?.uid ?? '');

/** Index of objects by their owners (launcher pods by VMI, ...), within their namespace: look up with ownedBy(owner). */
export const ownerUidIndex: IndexFunction<KubeObject> = (obj) =>
  (obj.metadata?.ownerReferences ?? []).map((ref) => namespacedUid(obj.metadata?.namespace, ref.uid));

/** Index by namespace. */
export const namespaceIndex: IndexFunction<KubeObject> = (obj) => (obj.metadata?.namespace ? [obj.metadata.namespace] : []);

type WatchEnd = 'closed' | 'expired' | 'error' | 'interrupted';

const initialBackoffMs = 800;
const maxBackoffMs = 30_000;

/**
 * What the cache keeps of an object: all but `metadata.managedFields`, which no kubevm component
 * reads and which repeats much of the object (each writer's field set): controller-runtime strips
 * it from its caches by default too. Then frozen.
 */
function cacheable<T extends KubeObject>(obj: T): T {
  if (obj.metadata?.managedFields !== undefined) delete obj.metadata.managedFields;
  return deepFreeze(obj);
}

function deepFreeze<V>(value: V): V {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}


function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/**
 * An informer as its owner runs it, whatever it caches: an Informer<VirtualMachine> and an
 * Informer<Pod> are both one of these, with no cast (Informer<T> itself is invariant in T).
 */
export interface RunnableInformer {
  start(): void;
  stop(): Promise<void>;
  hasSynced(): boolean;
  waitForSync(): Promise<boolean>;
}

/**
 * Resolves true once every informer has synced, false as soon as `signal` aborts or one was
 * stopped first. One abort listener for the lot, however many informers (a controller watches up
 * to five, and the leader's controllers share one signal).
 */
export function waitForAllSynced(informers: readonly RunnableInformer[], signal?: AbortSignal): Promise<boolean> {
  const synced = Promise.all([...new Set(informers)].map((informer) => informer.waitForSync())).then((all) => all.every(Boolean));
  if (!signal) return synced;
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const aborted = (): void => resolve(false);
    signal.addEventListener('abort', aborted, { once: true });
    void synced.then((ok) => {
      signal.removeEventListener('abort', aborted);
      resolve(ok);
    });
  });
}

export class Informer<T extends KubeObject> implements RunnableInformer {
  readonly descriptor: ResourceDescriptor;
  private readonly client: KubeClient;
  private readonly options: InformerOptions<T>;
  private readonly log: Logger;
  private readonly watcher: Watch;

  private readonly store = new Map<string, T>();
  private readonly indices = new Map<string, Map<string, Set<string>>>();
  private readonly handlers = new Set<InformerEventHandler<T>>();
  /** Validation results per cached object: cached objects are frozen and replaced on change. */
  private readonly validated = new WeakMap<T, readonly string[]>();

  private resourceVersion = '';
  private synced = false;
  private readonly syncWaiters: Array<() => void> = [];
  private running: Promise<void> | undefined;
  private readonly stopController = new AbortController();
  /** Aborts the current watch (stop, or a due re-list). */
  private watchAbort: AbortController | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private relistRequested = false;
  private listCount = 0;
  private expiredCount = 0;
  private watchErrorCount = 0;

  constructor(options: InformerOptions<T>) {
    this.options = options;
    this.client = options.client;
    this.descriptor = options.descriptor;
    this.log = (options.log ?? silentLogger).child({ informer: options.descriptor.resource, namespace: options.namespace, labelSelector: options.labelSelector });
    this.watcher = new Watch(options.client.kubeConfig);
    for (const name of Object.keys(options.indexers ?? {})) this.indices.set(name, new Map());
  }

  /** Register handlers; objects already in the cache are replayed as adds. Returns an unregister function. */
  addEventHandler(handler: InformerEventHandler<T>): () => void {
    this.handlers.add(handler);
    for (const obj of this.store.values()) this.call(() => handler.onAdd?.(obj));
    return () => this.handlers.delete(handler);
  }

  /** Start listing and watching in the background. */
  start(): void {
    if (this.running) return;
    this.running = this.run().catch((err: unknown) => {
      this.log.error({ err }, 'informer stopped on an unexpected error');
    });
  }

  async stop(): Promise<void> {
    this.stopController.abort();
    this.watchAbort?.abort();
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    for (const resolve of this.syncWaiters.splice(0)) resolve();
    await this.running;
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves once the first list is in the cache (true), or when stopped first (false); to give up on a signal, `waitForAllSynced`. */
  waitForSync(): Promise<boolean> {
    if (this.synced) return Promise.resolve(true);
    return new Promise((resolve) => this.syncWaiters.push(() => resolve(this.synced)));
  }

  /** The resourceVersion the cache reflects. */
  lastSyncResourceVersion(): string {
    return this.resourceVersion;
  }

  /** Counters for tests and debugging: full lists (first sync, 410s, periodic re-lists), expired watches, failed watches. */
  stats(): { lists: number; expiredWatches: number; watchErrors: number } {
    return { lists: this.listCount, expiredWatches: this.expiredCount, watchErrors: this.watchErrorCount };
  }

  /** By queue key: "namespace/name" or "name". */
  get(key: string): T | undefined {
    return this.store.get(key);
  }

  list(namespace?: string): T[] {
    const all = [...this.store.values()];
    return namespace === undefined ? all : all.filter((obj) => obj.metadata?.namespace === namespace);
  }

  /**
   * What is wrong with a cached object, as field-path messages; empty when it is valid or the
   * informer has no validator. Computed once per object version.
   */
  validationErrors(obj: T): readonly string[] {
    if (!this.options.validate) return [];
    let errors = this.validated.get(obj);
    if (!errors) {
      errors = this.options.validate(obj);
      this.validated.set(obj, errors);
    }
    return errors;
  }

  keys(): string[] {
    return [...this.store.keys()];
  }

  byIndex(indexName: string, value: string): T[] {
    const index = this.indices.get(indexName);
    if (!index) throw new Error(`informer for ${this.descriptor.resource} has no index ${indexName}`);
    const out: T[] = [];
    for (const key of index.get(value) ?? []) {
      const obj = this.store.get(key);
      if (obj) out.push(obj);
    }
    return out;
  }

  /** Re-list now (as the periodic re-list does), e.g. after a suspected missed event. */
  requestRelist(): void {
    this.relistRequested = true;
    this.watchAbort?.abort();
  }

  private async run(): Promise<void> {
    const stopSignal = this.stopController.signal;
    let backoffMs = initialBackoffMs;
    let needList = true;
    while (!stopSignal.aborted) {
      if (needList || this.relistRequested) {
        this.relistRequested = false;
        try {
          await this.listAndReplace(stopSignal);
          needList = false;
          backoffMs = initialBackoffMs;
          this.scheduleResync();
        } catch (err) {
          if (stopSignal.aborted) break;
          this.log.warn({ err }, 'list failed; retrying');
          await sleepUnlessAborted(this.jittered(backoffMs), stopSignal);
          backoffMs = Math.min(maxBackoffMs, backoffMs * 2);
          continue;
        }
      }
      const end = await this.watchOnce();
      if (stopSignal.aborted) break;
      switch (end) {
        case 'closed':
          backoffMs = initialBackoffMs;
          break;
        case 'interrupted':
          break;
        case 'expired':
          this.expiredCount++;
          this.log.info({ resourceVersion: this.resourceVersion }, 'watch expired (410); re-listing');
          needList = true;
          break;
        case 'error':
          this.watchErrorCount++;
          await sleepUnlessAborted(this.jittered(backoffMs), stopSignal);
          backoffMs = Math.min(maxBackoffMs, backoffMs * 2);
          break;
      }
    }
  }

  private jittered(ms: number): number {
    return ms * (1 + Math.random());
  }

  private scheduleResync(): void {
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    const period = this.options.resyncPeriodMs ?? 5 * 60_000;
    if (period <= 0) return;
    const jitter = this.options.resyncJitter ?? 0.25;
    this.resyncTimer = setTimeout(() => this.requestRelist(), period * (1 + Math.random() * jitter));
    this.resyncTimer.unref?.();
  }

  private async listAndReplace(signal: AbortSignal): Promise<void> {
    const items: T[] = [];
    let continueToken: string | undefined;
    let resourceVersion = '';
    do {
      let page: ObjectList<T>;
      try {
        page = await this.client.resource<T>(this.descriptor).list({
          ...(this.options.namespace ? { namespace: this.options.namespace } : {}),
          ...(this.options.labelSelector ? { labelSelector: this.options.labelSelector } : {}),
          ...(this.options.fieldSelector ? { fieldSelector: this.options.fieldSelector } : {}),
          limit: this.options.pageSize ?? 500,
          ...(continueToken ? { continue: continueToken } : {}),
          signal,
        });
      } catch (err) {
        // An expired continue token: start the list over.
        if (isGone(err) && continueToken) {
          items.length = 0;
          continueToken = undefined;
          continue;
        }
        throw err;
      }
      items.push(...page.items);
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
      continueToken = page.metadata?.continue || undefined;
    } while (continueToken);
    this.replace(items, resourceVersion);
  }

  /** Swap in a full list, telling handlers what changed since the cache last saw the world. */
  private replace(items: T[], resourceVersion: string): void {
    const fresh = new Map<string, T>();
    for (const item of items) fresh.set(objectKey(item), cacheable(item));
    for (const [key, old] of [...this.store]) {
      if (!fresh.has(key)) this.remove(key, old);
    }
    for (const [key, obj] of fresh) this.upsert(key, obj);
    this.resourceVersion = resourceVersion;
    this.listCount++;
    if (!this.synced) {
      this.synced = true;
      this.log.debug({ count: this.store.size, resourceVersion }, 'informer synced');
      for (const resolve of this.syncWaiters.splice(0)) resolve();
    }
  }

  private upsert(key: string, obj: T): void {
    const old = this.store.get(key);
    if (old && old.metadata?.resourceVersion === obj.metadata?.resourceVersion) return;
    this.store.set(key, obj);
    this.reindex(key, old, obj);
    for (const handler of this.handlers) {
      if (old) this.call(() => handler.onUpdate?.(old, obj));
      else this.call(() => handler.onAdd?.(obj));
    }
  }

  private remove(key: string, last: T): void {
    const old = this.store.get(key);
    if (!old) return;
    this.store.delete(key);
    this.reindex(key, old, undefined);
    for (const handler of this.handlers) this.call(() => handler.onDelete?.(last));
  }

  private reindex(key: string, old: T | undefined, next: T | undefined): void {
    for (const [name, fn] of Object.entries(this.options.indexers ?? {})) {
      const index = this.indices.get(name);
      if (!index) continue;
      for (const value of old ? fn(old) : []) {
        const keys = index.get(value);
        keys?.delete(key);
        if (keys?.size === 0) index.delete(value);
      }
      for (const value of next ? fn(next) : []) {
        let keys = index.get(value);
        if (!keys) index.set(value, (keys = new Set()));
        keys.add(key);
      }
    }
  }

  private call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ err }, 'informer event handler threw');
    }
  }

  /** One watch from the current resourceVersion, until it ends; says how it ended. */
  private watchOnce(): Promise<WatchEnd> {
    // A re-list fell due while we were listing: do it before watching again.
    if (this.relistRequested || this.stopController.signal.aborted) return Promise.resolve('interrupted');
    const path = resourcePath(this.descriptor, this.options.namespace);
    const timeoutBase = this.options.watchTimeoutSeconds ?? 300;
    const query: Record<string, string | number | boolean | undefined> = {
      resourceVersion: this.resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds: Math.floor(timeoutBase * (1 + Math.random())),
      labelSelector: this.options.labelSelector,
      fieldSelector: this.options.fieldSelector,
    };
    const started = performance.now();
    const url = `${this.client.kubeConfig.getCurrentCluster()?.server ?? ''}${path}?watch=true`;
    return new Promise<WatchEnd>((resolve) => {
      let end: WatchEnd | undefined;
      let sawResponse = false;
      const abort = new AbortController();
      this.watchAbort = abort;
      const finish = (outcome: WatchEnd, code: number | '<error>'): void => {
        if (end) return;
        end = outcome;
        recordRestRequest('GET', url, code, (performance.now() - started) / 1000);
        resolve(outcome);
      };
      const onEvent = (type: string, apiObj: unknown): void => {
        sawResponse = true;
        if (abort.signal.aborted || end) return;
        if (type === 'ERROR') {
          const code = isObject(apiObj) ? apiObj['code'] : undefined;
          if (code === 410) {
            finish('expired', 200);
          } else {
            this.log.warn({ status: apiObj }, 'watch returned an error event');
            finish('error', 200);
          }
          request.then((controller) => controller?.abort(), () => undefined);
          return;
        }
        if (!isObject(apiObj)) return;
        const obj = apiObj as T;
        const rv = obj.metadata?.resourceVersion;
        if (type === 'BOOKMARK') {
          if (rv) this.resourceVersion = rv;
          return;
        }
        const key = objectKey(obj);
        if (type === 'ADDED' || type === 'MODIFIED') this.upsert(key, cacheable(obj));
        else if (type === 'DELETED') this.remove(key, cacheable(obj));
        if (rv) this.resourceVersion = rv;
      };
      const onDone = (err: unknown): void => {
        if (abort.signal.aborted) return finish('interrupted', 200);
        if (!err) return finish('closed', 200);
        if (isGone(err)) return finish('expired', 410);
        const statusCode = isObject(err) && typeof err['statusCode'] === 'number' ? err['statusCode'] : undefined;
        this.log.warn({ err }, 'watch failed');
        finish('error', statusCode ?? (sawResponse ? 200 : '<error>'));
      };
      // Stopping must not wait for a connection that is still being set up.
      abort.signal.addEventListener('abort', () => finish('interrupted', 200), { once: true });
      const request = this.watcher.watch(path, query, onEvent, onDone).then(
        (controller) => {
          // The watch call resolves once connected; a stop or re-list may already be due.
          if (abort.signal.aborted || end) controller.abort();
          else abort.signal.addEventListener('abort', () => controller.abort(), { once: true });
          return controller;
        },
        (err: unknown) => {
          onDone(err);
          return undefined;
        },
      );
    });
  }
}
