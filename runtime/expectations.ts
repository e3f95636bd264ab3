// Controller expectations, as client-go's ControllerExpectations that KubeVirt's controllers use.
// A controller records "I am about to create n children for key" before issuing the creates and
// the informer marks each one observed when it sees it. Until then the cache is known to be
// stale for that key, so the reconcile must not act on it (it would create the launcher pod a
// second time). A TTL bounds the wait: a lost watch event cannot wedge a key forever.

export const expectationsTimeoutMs = 5 * 60 * 1000;

interface Expectation {
  adds: number;
  dels: number;
  /** When the expectation was last set; the TTL runs from here. */
  setAt: number;
}

export interface ExpectationsOptions {
  ttlMs?: number;
  now?: () => number;
}

export class ControllerExpectations {
  private readonly byKey = new Map<string, Expectation>();
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(options: ExpectationsOptions = {}) {
    this.ttlMs = options.ttlMs ?? expectationsTimeoutMs;
    this.now = options.now ?? Date.now;
  }

  /** Record that `count` creations for `key` are about to be issued (replaces any previous). */
  expectCreations(key: string, count: number): void {
    this.set(key, count, 0);
  }

  /** Record that `count` deletions for `key` are about to be issued (replaces any previous). */
  expectDeletions(key: string, count: number): void {
    this.set(key, 0, count);
  }

  /** Add to the outstanding expectations without resetting them. */
  raiseExpectations(key: string, adds: number, dels: number): void {
    const existing = this.byKey.get(key);
    if (!existing) {
      this.set(key, adds, dels);
      return;
    }
    existing.adds += adds;
    existing.dels += dels;
  }

  /** The informer saw a creation for `key`; also call it when a create request failed. */
  creationObserved(key: string): void {
    this.lower(key, 1, 0);
  }

  /** The informer saw a deletion for `key`; also call it when a delete request failed. */
  deletionObserved(key: string): void {
    this.lower(key, 0, 1);
  }

  /**
   * True when the cache can be trusted for `key`: nothing expected, everything observed, or the
   * expectation is older than the TTL (an event was lost; a fresh look is better than waiting).
   */
  satisfied(key: string): boolean {
    const expectation = this.byKey.get(key);
    if (!expectation) return true;
    if (expectation.adds <= 0 && expectation.dels <= 0) return true;
    return this.now() - expectation.setAt > this.ttlMs;
  }

  /** Outstanding creations and deletions for `key`, if any are recorded. */
  pending(key: string): { adds: number; dels: number } | undefined {
    const expectation = this.byKey.get(key);
    return expectation ? { adds: expectation.adds, dels: expectation.dels } : undefined;
  }

  /** Forget `key`, e.g. when the owning object is deleted. */
  delete(key: string): void {
    this.byKey.delete(key);
  }

  private set(key: string, adds: number, dels: number): void {
    this.byKey.set(key, { adds, dels, setAt: this.now() });
  }

  private lower(key: string, adds: number, dels: number): void {
    const expectation = this.byKey.get(key);
    if (!expectation) return;
    expectation.adds -= adds;
    expectation.dels -= dels;
  }
}
