// Go's time.Duration text (metav1.Duration in KubeVirt's API: "5m0s", "1h30m", "1.5s", "300ms"),
// the one parser for it.
import { z } from 'zod';

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PART = /([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)/y;

/** A Go duration string such as `1m30s`, as metav1.Duration serialises it (no sign). */
export const GoDuration = z.string().regex(/^(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$|^0$/, 'must be a duration such as 90s, 5m0s or 1h30m');

/** Milliseconds of a Go duration string; undefined when it is not one (a sign is not accepted). */
export function parseGoDuration(text: string): number | undefined {
  if (text === '0') return 0;
  if (text.length === 0 || text.length > 64) return undefined;
  let ms = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < text.length) {
    const at = PART.lastIndex;
    const match = PART.exec(text);
    if (!match || match.index !== at) return undefined;
    ms += Number(match[1]) * (UNIT_MS[match[2] ?? ''] ?? NaN);
  }
  return Number.isFinite(ms) ? ms : undefined;
}
