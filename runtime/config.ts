// The one configuration loader of every kubevm main (controller, node handler, launcher, ...):
// settings from flags and the environment, each checked by a zod schema.
//
// One naming style: a setting is an environment variable KUBEVM_<NAME> and the flag --<name>
// (KUBEVM_LAUNCHER_IMAGE ⇔ --launcher-image); a flag wins over the variable. The exceptions keep
// the names Kubernetes conventions give them: the downward API's POD_NAME, POD_NAMESPACE and
// NODE_NAME (flags --pod-name, --pod-namespace, --node-name) and LOG_LEVEL (read by the logger).
// An empty variable counts as unset. A bad value stops the process with one line naming the
// setting, the value, and what is accepted.
import { z } from 'zod';
import { parseQuantity } from './quantity.js';

export interface Setting<S extends z.ZodType = z.ZodType> {
  /** The environment variable; the flag is derived from it (KUBEVM_RUN_DIR ⇔ --run-dir). */
  env: string;
  /** Parses the text of the flag or variable; `.optional()` or `.default()` when not required. */
  schema: S;
  /** What the setting is, for the "is required" message and the usage text. */
  description: string;
}

export type SettingsSpec = Record<string, Setting>;
export type SettingsOf<Spec extends SettingsSpec> = { [K in keyof Spec]: z.output<Spec[K]['schema']> };

/** A setting with a value the schema does not accept, or a required one that is missing. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** The flag of a variable: KUBEVM_LAUNCHER_IMAGE → --launcher-image, POD_NAME → --pod-name. */
export function flagOf(env: string): string {
  return `--${env.replace(/^KUBEVM_/, '').toLowerCase().replace(/_/g, '-')}`;
}

/** `true` or `false`, as a flag or variable spells a boolean. */
export const booleanSetting = z.enum(['true', 'false'], { error: 'accepted: true, false' }).transform((value) => value === 'true');

/** A whole number within [min, max]. */
export function integerSetting(min: number, max = Number.MAX_SAFE_INTEGER) {
  return z
    .string()
    .regex(/^-?\d+$/, `accepted: a whole number from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.int().min(min, `accepted: a whole number from ${min} to ${max}`).max(max, `accepted: a whole number from ${min} to ${max}`));
}

/** A TCP port number. */
export const portSetting = integerSetting(0, 65535);

/** A Kubernetes quantity (80Mi, 1Gi, 500m), kept as text. */
export const quantitySetting = z.string().refine(
  (value) => {
    try {
      parseQuantity(value);
      return true;
    } catch {
      return false;
    }
  },
  { error: 'accepted: a Kubernetes quantity such as 80Mi, 1Gi or 500m' },
);

/** A JSON document held in a string (a setting, a ConfigMap value), then checked by `schema`. */
export function jsonText<S extends z.ZodType>(schema: S, error = 'is not JSON') {
  return z
    .string()
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: error });
        return z.NEVER;
      }
    })
    .pipe(schema);
}

/** One of fixed words. */
export function enumSetting<const V extends readonly [string, ...string[]]>(values: V) {
  return z.enum(values, { error: `accepted: ${values.join(', ')}` });
}

function parseFlags(argv: readonly string[], known: ReadonlyMap<string, string>): Map<string, string> {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument ${JSON.stringify(arg)}: settings are flags --name=value`);
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    if (!known.has(flag)) throw new ConfigError(`unknown flag ${flag}; accepted: ${[...known.keys()].sort().join(', ')}`);
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined) throw new ConfigError(`${flag} needs a value: ${flag}=value`);
    values.set(flag, value);
  }
  return values;
}

/** Reads every setting of `spec` from `argv` (flags) and `env`; throws ConfigError on the first bad one. */
export function loadConfig<Spec extends SettingsSpec>(spec: Spec, argv: readonly string[], env: NodeJS.ProcessEnv): SettingsOf<Spec> {
  const flagKeys = new Map(Object.entries(spec).map(([key, setting]) => [flagOf(setting.env), key]));
  const flags = parseFlags(argv, flagKeys);
  const out: Record<string, unknown> = {};
  for (const [key, setting] of Object.entries(spec)) {
    const flag = flagOf(setting.env);
    const fromFlag = flags.get(flag);
    const fromEnv = env[setting.env] === '' ? undefined : env[setting.env];
    const raw = fromFlag ?? fromEnv;
    const source = fromFlag !== undefined ? flag : setting.env;
    const result = setting.schema.safeParse(raw);
    if (!result.success) {
      if (raw === undefined) throw new ConfigError(`${flag} (or ${setting.env}) is required: ${setting.description}`);
      const message = result.error.issues[0]?.message ?? 'not accepted';
      throw new ConfigError(`${source}=${JSON.stringify(raw)} is not accepted${message.startsWith('accepted: ') ? '; ' : ': '}${message}`);
    }
    out[key] = result.data;
  }
  return out as SettingsOf<Spec>;
}

/**
 * loadConfig for a main: on a bad setting, one line on stderr (`controller: KUBEVM_WORKERS="x" is
 * not accepted: ...`) and exit code 2, before anything starts.
 */
export function loadConfigOrExit<Spec extends SettingsSpec>(component: string, spec: Spec, argv: readonly string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): SettingsOf<Spec> {
  try {
    return loadConfig(spec, argv, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${component}: ${err.message}\n`);
    process.exit(2);
  }
}

/** The settings as usage text: one line per flag, its variable and description. */
export function usage(spec: SettingsSpec): string {
  return Object.values(spec)
    .map((setting) => `  ${flagOf(setting.env).padEnd(28)} ${setting.env.padEnd(34)} ${setting.description}`)
    .join('\n');
}
