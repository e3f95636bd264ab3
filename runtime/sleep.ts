/**
 * The longest delay setTimeout keeps: 2^31 - 1 ms, about 24.8 days. A longer one (a grace period or
 * a timeout taken from a manifest) fires after 1 ms, with only a TimeoutOverflowWarning.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** `ms` as setTimeout keeps it: not a number or negative as 0, longer than it can wait as MAX_TIMER_MS. */
export function timerDelay(ms: number): number {
  if (!(ms > 0)) return 0;
  return Math.min(ms, MAX_TIMER_MS);
}

/** Resolves after `ms`, however long: a wait beyond MAX_TIMER_MS is made of several timers. */
export async function sleep(ms: number): Promise<void> {
  const until = Date.now() + (ms > 0 ? ms : 0);
  do {
    await new Promise((resolve) => setTimeout(resolve, timerDelay(until - Date.now())));
  } while (Date.now() < until);
}

/** Resolves after `ms` (at most MAX_TIMER_MS), or as soon as `signal` aborts (never rejects): for loops that stop on shutdown. */
export function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, timerDelay(ms));
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
