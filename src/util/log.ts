/**
 * The daemon's one logger: pino, JSON lines on stdout — `ts` (ISO 8601), `level` (a word), the
 * line's fields, `request_id` when the line is written for a call, and `msg`. Layer: util.
 *
 * - The level is set once at start (`--log-level`, default info): `debug` adds a line per call.
 * - Secrets never reach a line: fields that carry API keys, bearer tokens, handles or key
 *   material are replaced by `[redacted]` wherever they appear (`REDACTED_FIELDS`), and the code
 *   never logs a request or reply message whole.
 * - Writes are synchronous (a line is out before the process can die) and a log pipe whose
 *   reader went away (EPIPE) silences the logger instead of failing the daemon.
 */
import pino from 'pino';
import { currentRequest } from './request-context.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Field names whose values are secrets, at the top level and one level down. */
export const REDACTED_FIELDS = [
  'api_key',
  'apiKey',
  'authorization',
  'handle',
  'handles',
  'secret',
  'master_key',
  'private_key',
  'seed_key',
];

function make(level: LogLevel): pino.Logger {
  const dest = pino.destination({ dest: 1, sync: true });
  const logger = pino(
    {
      level,
      base: null,
      messageKey: 'msg',
      timestamp: () => `,"ts":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
      redact: {
        paths: [...REDACTED_FIELDS, ...REDACTED_FIELDS.map((f) => `*.${f}`)],
        censor: '[redacted]',
      },
      mixin: () => {
        const scope = currentRequest();
        return scope ? { request_id: scope.requestId } : {};
      },
    },
    dest,
  );
  // The reader went away (journald restarted, the parent died): logging stops, serving does not.
  dest.on('error', () => {
    logger.level = 'silent';
  });
  return logger;
}

let logger = make('info');

/** Sets the level (at start, from the configuration). */
export function configureLog(level: LogLevel): void {
  logger = make(level);
}

export type LogFields = Record<string, unknown>;

export const log = {
  error: (msg: string, fields: LogFields = {}) => logger.error(fields, msg),
  warn: (msg: string, fields: LogFields = {}) => logger.warn(fields, msg),
  info: (msg: string, fields: LogFields = {}) => logger.info(fields, msg),
  debug: (msg: string, fields: LogFields = {}) => logger.debug(fields, msg),
  /** Whether lines of `level` are written (skip building fields that would be dropped). */
  enabled: (level: 'debug' | 'info') => logger.isLevelEnabled(level),
};
