/**
 * Turns any thrown value into a gRPC status for one call. Layer: api. A KernelError keeps its
 * message and maps through `GRPC_STATUS`; anything else is a bug: it becomes INTERNAL with a
 * correlation id (the detail goes to the log, not to the client) and never ends the process.
 */
import { randomUUID } from 'node:crypto';
import { Metadata, type StatusObject, status } from '@grpc/grpc-js';
import { KernelError } from '../kernel/errors.js';
import { log } from '../util/log.js';
import { STATUS_DETAILS_KEY, statusDetails } from './details.js';
import { GRPC_STATUS } from './status.js';

export const ERROR_CODE_KEY = 'qmk-error-code';
/** The request field or quota a refusal names, when it names one. */
export const ERROR_FIELD_KEY = 'qmk-error-field';

export function errorStatus(err: unknown): Partial<StatusObject> {
  const metadata = new Metadata();
  if (err instanceof KernelError) {
    metadata.set(ERROR_CODE_KEY, err.code);
    if (err.field) metadata.set(ERROR_FIELD_KEY, err.field);
    const code = GRPC_STATUS[err.code];
    // Every RESOURCE_EXHAUSTED names its quota (google.rpc.QuotaFailure); a rate limit adds when
    // the call would pass (RetryInfo); a refused program lists its violations (BadRequest).
    const exhausted = code === status.RESOURCE_EXHAUSTED;
    if (err.fieldViolations.length > 0 || exhausted) {
      metadata.set(
        STATUS_DETAILS_KEY,
        statusDetails(code, err.message, {
          badRequest: err.fieldViolations,
          quotaFailure: exhausted
            ? [{ subject: err.field ?? 'quota', description: err.message }]
            : [],
          ...(err.retryDelayMs !== undefined ? { retryDelayMs: err.retryDelayMs } : {}),
        }),
      );
    }
    return { code, details: err.message, metadata };
  }
  const id = randomUUID();
  log.error('handler failed', {
    correlation: id,
    error: err instanceof Error ? (err.stack ?? err.message) : String(err),
  });
  metadata.set(ERROR_CODE_KEY, 'INTERNAL');
  return { code: status.INTERNAL, details: `internal error (correlation id ${id})`, metadata };
}
