// The process's root pino logger. Components take child loggers from it; the controller takes one
// child per reconcile. Secrets must never reach a log line: credentials, bearer tokens and the
// cloud-init payloads a VMI carries (userData/networkData often hold passwords and keys). Every
// logged object, binding and message goes through runtime/redact.ts (by key, shape and value).
import { pino } from 'pino';
import type { DestinationStream, Level, Logger, LoggerOptions } from 'pino';
import { redactText, redactValue } from './redact.js';

export type { Logger } from 'pino';

const levels: readonly Level[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

function levelFromEnv(value: string | undefined): Level | 'silent' {
  const wanted = (value ?? '').trim().toLowerCase();
  if (wanted === 'silent') return 'silent';
  return (levels as readonly string[]).includes(wanted) ? (wanted as Level) : 'info';
}

export interface RootLoggerOptions {
  /** The component's name, e.g. "controller"; stamped on every line. */
  component: string;
  /** Overrides LOG_LEVEL. */
  level?: Level | 'silent';
  /** Where lines go; stdout when omitted. Tests pass a stream to inspect output. */
  destination?: DestinationStream;
}

export function createRootLogger(options: RootLoggerOptions): Logger {
  const config: LoggerOptions = {
    level: options.level ?? levelFromEnv(process.env['LOG_LEVEL']),
    base: { component: options.component },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: {
      level: (label) => ({ level: label }),
      log: (object) => redactValue(object) as Record<string, unknown>,
    },
    hooks: {
      // The message and its format arguments: objects are handled by formatters.log.
      logMethod(args, method) {
        const redacted = args.map((arg) => (typeof arg === 'string' ? redactText(arg) : arg)) as Parameters<typeof method>;
        method.apply(this, redacted);
      },
    },
  };
  const root = options.destination ? pino(config, options.destination) : pino(config);
  // pino applies formatters.bindings to the root's bindings only; a child's go through here (every
  // child inherits this method from the root).
  type Child = (this: Logger, bindings: Record<string, unknown>, childOptions?: unknown) => Logger;
  const unbound = (Object.getPrototypeOf(root) as { child: Child }).child;
  const redactedChild: Child = function (this: Logger, bindings, childOptions) {
    return unbound.call(this, redactValue(bindings) as Record<string, unknown>, childOptions);
  };
  Object.defineProperty(root, 'child', { value: redactedChild, writable: true, configurable: true });
  return root;
}

/** A logger that discards everything: the default for library code when none is given. */
export const silentLogger: Logger = pino({ level: 'silent' });
