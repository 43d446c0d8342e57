/**
 * The one logger. Messages are static strings, data goes in the object (`log.warn({ path }, 'Skipped')`);
 * child loggers accumulate context (runId, provider, snapshotId). Secrets are redacted here, once,
 * not by each caller.
 */
import { type Logger, type LoggerOptions, pino } from 'pino';

export type { Logger };
export type LogFormat = 'pretty' | 'json';

/** Keys whose values never reach a log line, wherever they appear in the logged object. */
export const redactedKeys = [
  'apiKey',
  'password',
  'secret',
  'token',
  'accessToken',
  'secretAccessKey',
  'sessionToken',
  'authorization',
  'connectionString',
];

const redactPaths = redactedKeys.flatMap((key) => [key, `*.${key}`, `*.*.${key}`]);

export interface CreateLoggerOptions {
  level?: string;
  format?: LogFormat;
  /** File descriptor or path; defaults to stderr so stdout stays free for `--json` results. */
  destination?: number | string;
}

export function createLogger(options: CreateLoggerOptions = {}): Logger {
  const format = options.format ?? (process.stderr.isTTY ? 'pretty' : 'json');
  const base: LoggerOptions = {
    level: options.level ?? process.env.DSSNAP_LOG_LEVEL ?? 'info',
    redact: { paths: redactPaths, censor: '[redacted]' },
    base: undefined,
  };
  const destination = options.destination ?? 2;
  if (format === 'pretty') {
    return pino(
      base,
      pino.transport({
        target: 'pino-pretty',
        options: { destination, colorize: process.stderr.isTTY, ignore: 'pid,hostname', sync: true },
      }),
    );
  }
  return pino(base, pino.destination({ dest: destination, sync: true }));
}

/** A logger that drops everything: for library callers and unit tests that do not care. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
