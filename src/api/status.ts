/**
 * The only mapping from kernel error codes to gRPC status codes. Layer: api.
 * Typed `Record<ErrorCode, Status>` so adding a code without a mapping does not compile; every
 * code is documented in docs/errors.md and test/api/status.test.ts fails when the two drift.
 */
import { status } from '@grpc/grpc-js';
import type { ErrorCode } from '../kernel/errors.js';

export const GRPC_STATUS: Readonly<Record<ErrorCode, status>> = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  CREDENTIAL_MISSING: status.UNAUTHENTICATED,
  CREDENTIAL_INVALID: status.UNAUTHENTICATED,
  CREDENTIAL_REVOKED: status.UNAUTHENTICATED,
  TENANT_SUSPENDED: status.PERMISSION_DENIED,
  ROLE_FORBIDDEN: status.PERMISSION_DENIED,
  HANDLE_INVALID: status.UNAUTHENTICATED,
  HANDLE_EXPIRED: status.UNAUTHENTICATED,
  HANDLE_KEY_UNKNOWN: status.UNAUTHENTICATED,
  HANDLE_KEY_RETIRED: status.UNAUTHENTICATED,
  HANDLE_WRONG_KIND: status.INVALID_ARGUMENT,
  RIGHTS_INSUFFICIENT: status.PERMISSION_DENIED,
  RIGHTS_WIDEN: status.PERMISSION_DENIED,
  CAP_MISSING: status.PERMISSION_DENIED,
  NOT_FOUND: status.NOT_FOUND,
  ALREADY_EXISTS: status.ALREADY_EXISTS,
  SESSION_EXPIRED: status.FAILED_PRECONDITION,
  QUBIT_NOT_FRESH: status.FAILED_PRECONDITION,
  PROGRAM_INVALID: status.INVALID_ARGUMENT,
  JOB_FINISHED: status.FAILED_PRECONDITION,
  JOB_NOT_DONE: status.FAILED_PRECONDITION,
  JOB_UNCANCELLABLE: status.FAILED_PRECONDITION,
  QUOTA_EXCEEDED: status.RESOURCE_EXHAUSTED,
  LIMIT_EXCEEDED: status.RESOURCE_EXHAUSTED,
  UNAVAILABLE: status.UNAVAILABLE,
  INTERNAL: status.INTERNAL,
};
