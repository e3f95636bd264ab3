import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { MAX_TIMER_MS } from './sleep.js';
import {
  ExponentialBackoffRateLimiter,
  MaxOfRateLimiter,
  TokenBucketRateLimiter,
  WorkQueue,
  defaultControllerRateLimiter,
} from './workqueue.js';
import { registry } from './metrics.js';
import { eventually } from '../test/support/eventually.js';

let queueSeq = 0;
function newQueue(options: Partial<ConstructorParameters<typeof WorkQueue>[0]> = {}): WorkQueue {
  return new WorkQueue({ name: `test-${++queueSeq}`, ...options });
}

/** Let pending promise callbacks run. */
async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

describe('WorkQueue de-duplication and single flight', () => {
  it('holds a key once however often it is added', async () => {
    const queue = newQueue();
    queue.add('ns/a');
    queue.add('ns/b');
    queue.add('ns/a');
    queue.add('ns/a');
    expect(queue.len()).toBe(2);
    expect(await queue.get()).toBe('ns/a');
    expect(await queue.get()).toBe('ns/b');
    expect(queue.len()).toBe(0);
    queue.dispose();
  });

  it('parks a key re-added while in flight and hands it out again only after done', async () => {
    const queue = newQueue();
    queue.add('k');
    const first = await queue.get();
    expect(first).toBe('k');
    queue.add('k');
    queue.add('k');
    // Not handed to a second worker while the first holds it.
    expect(queue.len()).toBe(0);
    let second: string | undefined;
    void queue.get().then((key) => (second = key));
    await flush();
    expect(second).toBeUndefined();
    queue.done('k');
    await flush();
    expect(second).toBe('k');
    queue.done('k');
    expect(queue.len()).toBe(0);
    queue.dispose();
  });

  it('never lets two workers process the same key at once', async () => {
    const queue = newQueue();
    const active = new Set<string>();
    let overlaps = 0;
    let processed = 0;
    const worker = async (): Promise<void> => {
      for (;;) {
        const key = await queue.get();
        if (key === undefined) return;
        if (active.has(key)) overlaps++;
        active.add(key);
        // Re-adding during processing is the case that must not produce a second worker.
        if (processed < 40) queue.add(key);
        await new Promise((resolve) => setTimeout(resolve, 1));
        processed++;
        active.delete(key);
        queue.done(key);
      }
    };
    for (const key of ['a', 'b', 'c']) queue.add(key);
    const workers = [worker(), worker(), worker(), worker()];
    await eventually('40 keys processed', 5000, () => processed >= 40, { intervalMs: 2 });
    await queue.shutDownWithDrain();
    await Promise.all(workers);
    expect(overlaps).toBe(0);
    expect(processed).toBeGreaterThanOrEqual(40);
    queue.dispose();
  });
});

describe('rate limiters', () => {
  it('backs off exponentially per key from 5 ms, capped at 1000 s, and forget resets', () => {
    const limiter = new ExponentialBackoffRateLimiter();
    const delays = Array.from({ length: 20 }, () => limiter.when('k'));
    expect(delays.slice(0, 6)).toEqual([5, 10, 20, 40, 80, 160]);
    expect(delays[17]).toBe(5 * 2 ** 17); // 655.36 s
    expect(delays[18]).toBe(1_000_000); // 1310.72 s capped
    expect(delays[19]).toBe(1_000_000);
    expect(limiter.numRequeues('k')).toBe(20);
    // Keys are independent.
    expect(limiter.when('other')).toBe(5);
    limiter.forget('k');
    expect(limiter.numRequeues('k')).toBe(0);
    expect(limiter.when('k')).toBe(5);
  });

  it('token bucket: burst of 100 free, then 10 per second, refilling with time', () => {
    let now = 1_000_000;
    const bucket = new TokenBucketRateLimiter(10, 100, () => now);
    for (let i = 0; i < 100; i++) expect(bucket.when()).toBe(0);
    expect(bucket.when()).toBeCloseTo(100, 5); // the 101st waits one token: 1/10 s
    expect(bucket.when()).toBeCloseTo(200, 5);
    now += 1000; // 10 tokens back; two were owed
    expect(bucket.when()).toBeCloseTo(0, 5);
    for (let i = 0; i < 7; i++) expect(bucket.when()).toBe(0);
    expect(bucket.when()).toBeCloseTo(100, 5);
  });

  it('the default controller limiter is the max of both', () => {
    let now = 0;
    const limiter = defaultControllerRateLimiter(() => now);
    expect(limiter).toBeInstanceOf(MaxOfRateLimiter);
    expect(limiter.when('a')).toBe(5);
    expect(limiter.when('a')).toBe(10);
    // Exhaust the bucket with other keys: then the bucket's wait dominates a fresh key's 5 ms.
    for (let i = 0; i < 200; i++) limiter.when(`k${i}`);
    expect(limiter.when('fresh')).toBeGreaterThan(5_000);
    now += 60_000;
    expect(limiter.when('fresh2')).toBe(5);
  });
});

describe('WorkQueue timing', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_700_000_000_000 });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('addAfter adds the key after the delay, keeping the earliest deadline', async () => {
    const queue = newQueue();
    queue.addAfter('k', 1000);
    queue.addAfter('k', 5000); // later: ignored
    jest.advanceTimersByTime(999);
    expect(queue.len()).toBe(0);
    jest.advanceTimersByTime(1);
    expect(queue.len()).toBe(1);
    expect(await queue.get()).toBe('k');
    queue.done('k');
    jest.advanceTimersByTime(10_000);
    expect(queue.len()).toBe(0); // the 5 s request was superseded, not queued twice

    queue.addAfter('j', 5000);
    queue.addAfter('j', 100); // earlier: wins
    jest.advanceTimersByTime(100);
    expect(queue.len()).toBe(1);
    queue.dispose();
  });

  it('addAfter longer than a timer can wait comes back after MAX_TIMER_MS, not at once', () => {
    const queue = newQueue();
    queue.addAfter('far', 365 * 24 * 3600 * 1000);
    jest.advanceTimersByTime(1000);
    expect(queue.len()).toBe(0);
    jest.advanceTimersByTime(MAX_TIMER_MS - 1000);
    expect(queue.len()).toBe(1);
    queue.dispose();
  });

  it('addRateLimited waits the exponential backoff; forget resets it', async () => {
    const queue = newQueue();
    const readyAfter = async (): Promise<number> => {
      queue.addRateLimited('k');
      let waited = 0;
      while (queue.len() === 0) {
        jest.advanceTimersByTime(1);
        waited++;
      }
      const key = await queue.get();
      queue.done(key ?? '');
      return waited;
    };
    expect(await readyAfter()).toBe(5);
    expect(await readyAfter()).toBe(10);
    expect(await readyAfter()).toBe(20);
    expect(queue.numRequeues('k')).toBe(3);
    queue.forget('k');
    expect(await readyAfter()).toBe(5);
    queue.dispose();
  });

  it('counts adds and retries in the kubevirt_workqueue_* metrics', async () => {
    const queue = newQueue();
    queue.add('a');
    queue.add('a');
    queue.add('b');
    queue.addRateLimited('c');
    const metrics = await registry.getMetricsAsJSON();
    const value = (name: string): number | undefined =>
      metrics.find((m) => m.name === name)?.values.find((v) => v.labels['name'] === queue.name)?.value;
    expect(value('kubevirt_workqueue_adds_total')).toBe(2);
    expect(value('kubevirt_workqueue_retries_total')).toBe(1);
    expect(value('kubevirt_workqueue_depth')).toBe(2);
    queue.dispose();
  });
});

describe('WorkQueue shutdown', () => {
  it('stops intake, wakes idle workers with undefined, and drains in-flight keys', async () => {
    const queue = newQueue();
    queue.add('busy');
    const key = await queue.get();
    expect(key).toBe('busy');
    const idle = queue.get();
    let drained = false;
    const drain = queue.shutDownWithDrain().then(() => (drained = true));
    expect(await idle).toBeUndefined();
    queue.add('late');
    expect(queue.len()).toBe(0);
    await flush();
    expect(drained).toBe(false); // 'busy' is still in flight
    queue.done('busy');
    await drain;
    expect(drained).toBe(true);
    queue.dispose();
  });

  it('without discardQueued hands out queued keys before reporting the end (client-go)', async () => {
    const queue = newQueue();
    queue.add('a');
    queue.add('b');
    const drain = queue.shutDownWithDrain();
    const seen: string[] = [];
    for (;;) {
      const key = await queue.get();
      if (key === undefined) break;
      seen.push(key);
      queue.done(key);
    }
    await drain;
    expect(seen).toEqual(['a', 'b']);
    queue.dispose();
  });

  it('with discardQueued drops queued keys but still waits for in-flight ones', async () => {
    const queue = newQueue();
    queue.add('a');
    queue.add('b');
    queue.add('c');
    expect(await queue.get()).toBe('a');
    queue.add('a'); // re-added while in flight: dropped too
    let drained = false;
    const drain = queue.shutDownWithDrain({ discardQueued: true }).then(() => (drained = true));
    expect(await queue.get()).toBeUndefined();
    await flush();
    expect(drained).toBe(false);
    queue.done('a');
    await drain;
    expect(queue.len()).toBe(0);
    expect(await queue.get()).toBeUndefined();
    queue.dispose();
  });

  it('cancels pending delayed adds', async () => {
    jest.useFakeTimers();
    try {
      const queue = newQueue();
      queue.addAfter('k', 100);
      queue.shutDown();
      jest.advanceTimersByTime(1000);
      expect(queue.len()).toBe(0);
      expect(await queue.get()).toBeUndefined();
      queue.dispose();
    } finally {
      jest.useRealTimers();
    }
  });
});
