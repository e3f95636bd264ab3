// A controller that wrote an object must not reconcile it again from a cache that does not show
// that write yet: it would compute a status from the old object, see a difference, and issue a
// write bound to fail with 409 Conflict (KubeVirt's VMI controller guards this with expectations
// set before each update). This remembers the resourceVersion of each write until the informer
// has caught up with it; the informer's update event then enqueues the key again.

/** Waiting is bounded: a lost watch event must not wedge a key (the periodic re-list catches up). */
const OWN_WRITE_TTL_MS = 30_000;

function newerOrEqual(cached: string | undefined, written: string): boolean {
  if (cached === undefined) return false;
  // resourceVersions are opaque, but etcd's are integers that only grow; anything else counts as caught up.
  if (!/^\d+$/.test(cached) || !/^\d+$/.test(written)) return cached === written;
  return BigInt(cached) >= BigInt(written);
}

export class OwnWrites {
  private readonly written = new Map<string, { resourceVersion: string; at: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Record a successful write of `key` that produced `resourceVersion`. */
  record(key: string, resourceVersion: string | undefined): void {
    if (resourceVersion) this.written.set(key, { resourceVersion, at: this.now() });
  }

  /** True while the cached object predates our last write of it. */
  cacheIsBehind(key: string, cachedResourceVersion: string | undefined): boolean {
    const write = this.written.get(key);
    if (!write) return false;
    if (newerOrEqual(cachedResourceVersion, write.resourceVersion) || this.now() - write.at > OWN_WRITE_TTL_MS) {
      this.written.delete(key);
      return false;
    }
    return true;
  }

  forget(key: string): void {
    this.written.delete(key);
  }
}
