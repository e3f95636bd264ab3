// Redaction of secrets from everything kubevm writes where others may read it: log lines, Events,
// condition messages. A class, not a list of a few keys:
// - by key: any field whose name says it holds a secret (password, token, secret, credential,
//   private key, authorization, cookie, cloud-init user and network data, a Secret's data), at any
//   depth; references to secrets (secretRef, secretName, ...) stay readable;
// - by shape: text that looks like a secret wherever it appears (PEM private keys, bearer and basic
//   credentials, JWTs, `password: ...` assignments, cloud-init documents);
// - by value: secrets this process has read (the launcher registers the user-data and network data
//   it resolved), replaced wherever they appear, whole or line by line.
export const REDACTED = '[REDACTED]';

const SENSITIVE_KEY = /pass(word|wd|phrase)?$|passw(or)?d|secret|token|credential|private[-_]?key|client[-_]?key|api[-_]?key|ssh[-_]?key|authorization|cookie|user[-_]?data|network[-_]?data|bearer/i;
// Names of, or references to, secrets are not secrets: "Secret foo not found" must stay readable.
const REFERENCE_KEY = /(Ref|Refs|Name|Names|Reference|Count|Seconds|Path|File|PullSecrets?)$/;

/** Whether a field of this name holds secret material (its value is replaced whole). */
export function isSensitiveKey(key: string): boolean {
  return SENSITIVE_KEY.test(key) && !REFERENCE_KEY.test(key);
}

const SHAPES: Array<[RegExp, string | ((match: string, ...groups: string[]) => string)]> = [
  // PEM private keys (RSA, EC, OPENSSH, PKCS#8, ...), also when cut off.
  [/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)/g, REDACTED],
  // HTTP credentials.
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{6,}/gi, `$1 ${REDACTED}`],
  // JWTs (service account tokens among them).
  [/\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g, REDACTED],
  // cloud-init documents: everything after their header is the user's.
  [/#cloud-(config|boothook|config-archive)\b[\s\S]*/g, `#cloud-$1 ${REDACTED}`],
  // key: value / key=value assignments of secrets in free text (YAML, env, URLs).
  [/\b(passw(or)?d|password_hash|passphrase|secret|token|api[-_]?key|ssh_authorized_keys|chpasswd)(["']?\s*[:=]\s*)(?!\[REDACTED\])("[^"\n]*"|'[^'\n]*'|[^\s,;&"'}\]]+)/gi, `$1$3${REDACTED}`],
];

const known = new Set<string>();
/** Lines of registered secrets at least this long are redacted on their own (shorter ones match too much). */
const MIN_LINE = 12;

/**
 * Registers a secret this process holds, so that it is redacted wherever it appears: the whole
 * value, and each of its lines of MIN_LINE characters or more (a guest or a tool may echo one line).
 */
export function registerSecretValue(value: string | undefined): void {
  if (!value) return;
  if (value.trim().length >= 4) known.add(value);
  for (const line of value.split(/\r?\n/)) if (line.trim().length >= MIN_LINE) known.add(line.trim());
}

/** Forgets every registered value (tests). */
export function clearSecretValues(): void {
  known.clear();
}

/** The text with every secret it carries replaced by [REDACTED]. */
export function redactText(text: string): string {
  let out = text;
  // Longest first, so a whole value goes before its lines.
  for (const value of [...known].sort((a, b) => b.length - a.length)) {
    if (out.includes(value)) out = out.split(value).join(REDACTED);
  }
  for (const [pattern, replacement] of SHAPES) out = out.replace(pattern, replacement as string);
  return out;
}

const MAX_DEPTH = 12;

/**
 * A copy of the value with secrets redacted: sensitive keys at any depth, a Secret's data and
 * stringData, and every string by redactText. Errors become plain objects (type, message, stack and
 * their own fields), as pino's serializer would print them. Cycles and depth are bounded.
 */
export function redactValue(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return '[Circular]';
  if (depth >= MAX_DEPTH) return '[Truncated]';
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((item) => redactValue(item, depth + 1, seen));
    if (Buffer.isBuffer(value)) return REDACTED;
    const source = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    if (value instanceof Error) {
      out['type'] = value.name;
      out['message'] = redactText(value.message);
      if (value.stack) out['stack'] = redactText(value.stack);
    }
    const isSecret = source['kind'] === 'Secret';
    for (const [key, item] of Object.entries(source)) {
      if (isSensitiveKey(key) || (isSecret && (key === 'data' || key === 'stringData'))) {
        out[key] = item === undefined || item === null ? item : REDACTED;
      } else {
        out[key] = redactValue(item, depth + 1, seen);
      }
    }
    return out;
  } finally {
    seen.delete(value);
  }
}
