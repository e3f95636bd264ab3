// The one polling helper of the tests: wait for a condition itself instead of sleeping for a
// guessed time. Every suite (unit, launcher, integration, e2e) uses this one.

export interface EventuallyOptions {
  /** Time between two checks. Default: a hundredth of the timeout, between 5 ms and 500 ms. */
  intervalMs?: number;
}

/** Not yet: the check returned nothing, false or null. */
type NotYet = undefined | null | false;

/**
 * Calls `check` until it returns a value (anything but undefined, null or false) and resolves
 * with that value. A check that throws counts as "not yet"; after `timeoutMs` the wait fails
 * with a message naming `what` and the check's last error. `what` may be a function, evaluated
 * only on failure, to show the state that was waited on.
 */
export async function eventually<T>(
  what: string | (() => string),
  timeoutMs: number,
  check: () => T | NotYet | Promise<T | NotYet>,
  options: EventuallyOptions = {},
): Promise<T> {
  const intervalMs = options.intervalMs ?? Math.min(500, Math.max(5, Math.floor(timeoutMs / 100)));
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== null && value !== false) return value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const description = typeof what === 'string' ? what : what();
      const cause = lastError === undefined ? '' : `: ${lastError instanceof Error ? lastError.message : JSON.stringify(lastError)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}${cause}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, Math.max(1, deadline - Date.now()))));
  }
}
