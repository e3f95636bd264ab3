// Just enough of resource.Quantity to add the launcher overhead to guest memory and to derive CPU
// requests. Values are handled as exact bigints (bytes, millicores) so 1Gi + 80Mi is exact.
import type { Quantity } from './api.js';

const binarySuffixes: Record<string, bigint> = {
  Ki: 1n << 10n,
  Mi: 1n << 20n,
  Gi: 1n << 30n,
  Ti: 1n << 40n,
  Pi: 1n << 50n,
  Ei: 1n << 60n,
};
const decimalExponents: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };

/** The quantity scaled by 10^scale and rounded up, e.g. scale 3 gives milli-units. */
export function parseQuantity(value: Quantity, scale = 0): bigint {
  const text = String(value).trim();
  const match = /^([+-]?)(\d*)(?:\.(\d*))?(?:([KMGTPE]i)|([eE][+-]?\d+)|([numkMGTPE]))?$/.exec(text);
  if (!match || (match[2] === '' && (match[3] ?? '') === '')) throw new Error(`not a Kubernetes quantity: ${JSON.stringify(value)}`);
  const sign = match[1] === '-' ? -1n : 1n;
  const whole = match[2] === '' ? '0' : (match[2] ?? '0');
  const fraction = match[3] ?? '';
  // digits as an integer, with the decimal point moved right by fraction.length
  let mantissa = BigInt(whole + fraction);
  let exponent = -fraction.length + scale;
  let multiplier = 1n;
  if (match[4]) multiplier = binarySuffixes[match[4]] ?? 1n;
  else if (match[5]) exponent += Number(match[5].slice(1));
  else exponent += decimalExponents[match[6] ?? ''] ?? 0;
  mantissa *= multiplier;
  if (exponent >= 0) return sign * mantissa * 10n ** BigInt(exponent);
  const divisor = 10n ** BigInt(-exponent);
  const rounded = (mantissa + divisor - 1n) / divisor;
  return sign * rounded;
}

/** Bytes as the shortest exact binary-suffixed quantity (1157627904 → "1104Mi"). */
export function formatBytes(bytes: bigint): string {
  for (const suffix of ['Ei', 'Pi', 'Ti', 'Gi', 'Mi', 'Ki'] as const) {
    const unit = binarySuffixes[suffix] ?? 1n;
    if (bytes !== 0n && bytes % unit === 0n) return `${bytes / unit}${suffix}`;
  }
  return bytes.toString();
}

/** Millicores as a CPU quantity ("100m", "2"). */
export function formatMillicores(millis: bigint): string {
  return millis % 1000n === 0n ? `${millis / 1000n}` : `${millis}m`;
}
