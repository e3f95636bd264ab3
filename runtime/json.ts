// The one canonical JSON of the project. Kubernetes treats a null or absent member as unset
// and does not keep key order, so values that went through the API server compare equal only
// after normalising: null/undefined members dropped, keys sorted.

/** A JSON object: not null, not an array. */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A JSON value with the noise removed that the API server would remove or that carries no
 * meaning: `undefined` and `null` object members (unset, as far as Kubernetes is concerned).
 * Array order is kept: it is meaningful (conditions are sorted by the conditions helpers).
 */
export function normaliseJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map((item) => (item === undefined ? null : normaliseJson(item)));
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, member] of Object.entries(value)) {
      if (member === undefined || member === null) continue;
      out[key] = normaliseJson(member);
    }
    return out;
  }
  return value;
}

/** Deep equality of JSON-like values (after normalisation, key order does not matter). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, index) => jsonEqual(item, b[index]));
  }
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  const leftKeys = Object.keys(left);
  if (leftKeys.length !== Object.keys(right).length) return false;
  return leftKeys.every((key) => Object.prototype.hasOwnProperty.call(right, key) && jsonEqual(left[key], right[key]));
}

/** Normalised JSON text with sorted keys: equal for equal values, whatever their key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(normaliseJson(value)));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, sortKeys((value as Record<string, unknown>)[key])]),
    );
  }
  return value;
}
