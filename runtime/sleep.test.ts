// Waits taken from manifests may be longer than setTimeout's 24.8 days: they must not fire at once.
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { MAX_TIMER_MS, sleep, sleepUnlessAborted, timerDelay } from './sleep.js';

describe('timers', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_700_000_000_000 });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('timerDelay keeps what setTimeout can wait and bounds the rest', () => {
    expect(timerDelay(1500)).toBe(1500);
    expect(timerDelay(-5)).toBe(0);
    expect(timerDelay(Number.NaN)).toBe(0);
    expect(timerDelay(Number.POSITIVE_INFINITY)).toBe(MAX_TIMER_MS);
    expect(timerDelay(31_536_000_000)).toBe(MAX_TIMER_MS);
  });

  it('sleep waits a whole year (a terminationGracePeriodSeconds of 31536000), in several timers', async () => {
    let done = false;
    void sleep(31_536_000 * 1000).then(() => (done = true));
    await jest.advanceTimersByTimeAsync(60_000);
    expect(done).toBe(false);
    await jest.advanceTimersByTimeAsync(MAX_TIMER_MS);
    expect(done).toBe(false);
    await jest.advanceTimersByTimeAsync(31_536_000 * 1000 - MAX_TIMER_MS - 60_000 - 1);
    expect(done).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(done).toBe(true);
  });

  it('sleepUnlessAborted waits at most MAX_TIMER_MS, never less for a longer wait', async () => {
    let done = false;
    void sleepUnlessAborted(31_536_000 * 1000, new AbortController().signal).then(() => (done = true));
    await jest.advanceTimersByTimeAsync(60_000);
    expect(done).toBe(false);
    await jest.advanceTimersByTimeAsync(MAX_TIMER_MS);
    expect(done).toBe(true);
  });
});
