// The process's root pino logger. Components take child loggers from it; the controller takes one
// child per reconcile. Secrets must never reach a log line: credentials, bearer tokens and the
// cloud-init payloads a VMI carries (userData/networkData often hold passwords and keys).
import { pino } from 'pino';
import type { DestinationStream, Level, Logger, LoggerOptions } from 'pino';

export type { Logger } from 'pino';

const sensitiveKeys = [
  'password',
  'token',
  'bearerToken',
  'authorization',
  'Authorization',
  'cookie',
  'userData',
  'userDataBase64',
  'networkData',
  'networkDataBase64',
  'privateKey',
  'client-key-data',
  'clientKey',
] as const;

/** Redaction paths: the keys above at the top level and up to five levels deep. */
export function redactionPaths(maxDepth = 5): string[] {
  const paths: string[] = [];
  for (const key of sensitiveKeys) {
    const segment = /^[A-Za-z_$][\w$]*$/.test(key) ? key : `["${key}"]`;
    let prefix = '';
    for (let depth = 0; depth <= maxDepth; depth++) {
      paths.push(prefix === '' ? segment : segment.startsWith('[') ? `${prefix}${segment}` : `${prefix}.${segment}`);
      prefix = prefix === '' ? '*' : `${prefix}.*`;
    }
  }
  // A Secret's data: never log its values, whatever the keys are.
  paths.push('secret.data', 'secret.stringData');
  return paths;
}

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
    redact: { paths: redactionPaths(), censor: '[REDACTED]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  return options.destination ? pino(config, options.destination) : pino(config);
}

/** A logger that discards everything: the default for library code when none is given. */
export const silentLogger: Logger = pino({ level: 'silent' });
