/**
 * Turns any thrown value into a gRPC status for one call. Layer: api. A KernelError keeps its
 * message and maps through `GRPC_STATUS`; anything else is a bug: it becomes INTERNAL with a
 * correlation id (the detail goes to the log, not to the client) and never ends the process.
 */
import { randomUUID } from 'node:crypto';
import { Metadata, type StatusObject, status } from '@grpc/grpc-js';
import { KernelError } from '../kernel/errors.js';
import { badRequestStatus, STATUS_DETAILS_KEY } from './details.js';
import { GRPC_STATUS } from './status.js';

export const ERROR_CODE_KEY = 'qmk-error-code';

export type Logger = (level: 'info' | 'warn' | 'error', msg: string, fields?: object) => void;

let log: Logger = (level, msg, fields) => {
  process.stderr.write(`${JSON.stringify({ level, msg, ...fields, ts: new Date().toISOString() })}\n`);
};

export function setErrorLogger(l: Logger): void {
  log = l;
}

export function errorStatus(err: unknown): Partial<StatusObject> {
  const metadata = new Metadata();
  if (err instanceof KernelError) {
    metadata.set(ERROR_CODE_KEY, err.code);
    const code = GRPC_STATUS[err.code];
    if (err.fieldViolations.length > 0) {
      metadata.set(STATUS_DETAILS_KEY, badRequestStatus(code, err.message, err.fieldViolations));
    }
    return { code, details: err.message, metadata };
  }
  const id = randomUUID();
  log('error', 'handler failed', {
    correlation: id,
    error: err instanceof Error ? (err.stack ?? err.message) : String(err),
  });
  metadata.set(ERROR_CODE_KEY, 'INTERNAL');
  return { code: status.INTERNAL, details: `internal error (correlation id ${id})`, metadata };
}
