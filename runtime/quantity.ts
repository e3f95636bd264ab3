// The one Kubernetes quantity parser (resource.Quantity's grammar), used by the controller to
// size the launcher pod and by the launcher to size QEMU, so both read `1.5Gi` the same way.
// Values are exact bigints (bytes, millicores): 1Gi + 80Mi stays exact, and 0.1 + 0.2 never
// turns into a byte too many.
import type { Quantity } from './api/meta.js';

const binarySuffixes: Record<string, bigint> = {
  Ki: 1n << 10n,
  Mi: 1n << 20n,
  Gi: 1n << 30n,
  Ti: 1n << 40n,
  Pi: 1n << 50n,
  Ei: 1n << 60n,
};
const decimalExponents: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };

// sign, whole digits, fraction digits, then one of: binary suffix, exponent, decimal suffix.
const quantityGrammar = /^([+-]?)(\d*)(?:\.(\d*))?(?:([KMGTPE]i)|([eE][+-]?\d+)|([numkMGTPE]))?$/;

/** A value that is not a Kubernetes quantity; the message names the field when one was given. */
export class QuantityError extends Error {
  override readonly name = 'QuantityError';
}

/** A quantity beyond what Kubernetes holds (or than is worth computing). */
export class QuantityRangeError extends QuantityError {}

/** False for a quantity out of range; anything else (even not a quantity) is for the grammar to judge. */
export function quantityInRange(value: string): boolean {
  try {
    parseQuantity(value);
    return true;
  } catch (err) {
    return !(err instanceof QuantityRangeError);
  }
}

/**
 * The quantity scaled by 10^scale and rounded up (away from zero), e.g. scale 3 gives
 * milli-units: parseQuantity('100m', 3) = 100n, parseQuantity('1.5Gi') = 1610612736n.
 * `field` (a path such as spec.domain.memory.guest) goes into the error message.
 */
export function parseQuantity(value: Quantity, scale = 0, field?: string): bigint {
  // A JSON number: String() gives "1e+21" for large values, which the exponent form accepts;
  // NaN and Infinity fail the grammar.
  const text = typeof value === 'number' ? String(value) : value;
  const match = quantityGrammar.exec(text);
  if (!match || (match[2] === '' && (match[3] ?? '') === '')) {
    throw new QuantityError(
      `${field ? `${field}: ` : ''}${JSON.stringify(value)} is not a Kubernetes quantity (e.g. 128Mi, 1Gi, 1G, 500m, 2, 1e3)`,
    );
  }
  const sign = match[1] === '-' ? -1n : 1n;
  // The significant digits only: zeros before them or after them change no value, and a body may
  // carry a million of them.
  const whole = (match[2] ?? '').replace(/^0+/, '');
  const fraction = (match[3] ?? '').replace(/0+$/, '');
  const digits = (whole + fraction).replace(/^0+/, '');
  if (digits === '') return 0n;
  if (digits.length > MAX_SIGNIFICANT_DIGITS) throw outOfRange(value, field, `more than ${MAX_SIGNIFICANT_DIGITS} significant digits`);
  // The value is mantissa × 10^exponent (× the binary suffix), with the decimal point moved right by fraction.length.
  let mantissa = BigInt(digits);
  let exponent = -fraction.length;
  if (match[4]) mantissa *= binarySuffixes[match[4]] ?? 1n;
  else if (match[5]) exponent += Number(match[5].slice(1));
  else exponent += decimalExponents[match[6] ?? ''] ?? 0;
  // Bound the exponent before any power of ten is computed: "1e300000000" passes the grammar and
  // 10n ** 300000000n takes half a minute and most of a GiB. Kubernetes keeps a quantity in an
  // int64 (|value| < 2^63, about 9.2e18) and rounds a finer fraction up; so does this.
  const mantissaDigits = mantissa.toString().length;
  const magnitude = mantissaDigits + exponent;
  if (magnitude > 19) throw outOfRange(value, field, 'larger than Kubernetes quantities go (2^63 - 1)');
  exponent += scale;
  if (exponent >= 0) return sign * mantissa * 10n ** BigInt(exponent);
  if (-exponent > mantissaDigits) return sign; // less than one unit of the scale: rounded up to one
  const divisor = 10n ** BigInt(-exponent);
  return sign * ((mantissa + divisor - 1n) / divisor);
}

/** More significant digits than an int64 of nano-units holds, with room to spare. */
const MAX_SIGNIFICANT_DIGITS = 40;

function outOfRange(value: Quantity, field: string | undefined, why: string): QuantityRangeError {
  const shown = typeof value === 'string' && value.length > 64 ? `${value.slice(0, 64)}…` : JSON.stringify(value);
  return new QuantityRangeError(`${field ? `${field}: ` : ''}${shown} is out of range: ${why}`);
}

/** The quantity in bytes (rounded up), as a JS number for APIs that take one (QEMU's sizes). */
export function quantityBytes(value: Quantity, field?: string): number {
  return Number(parseQuantity(value, 0, field));
}

/** The quantity in thousandths (rounded up): CPU millicores. */
export function quantityMillis(value: Quantity, field?: string): number {
  return Number(parseQuantity(value, 3, field));
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
