/**
 * Structured error details: encodes a `google.rpc.Status` carrying `google.rpc.BadRequest` (and
 * other error_details.proto messages) for the `grpc-status-details-bin` trailer, the place every
 * gRPC language's status-details helper reads them. Layer: api. Uses protobufjs on the vendored
 * proto/google/rpc files, so the bytes follow the same .proto any client decodes with.
 */
import type protobuf from 'protobufjs';
import type { FieldViolation } from '../kernel/errors.js';
import { loadProtobufRoot } from './proto.js';

export const STATUS_DETAILS_KEY = 'grpc-status-details-bin';
const TYPE_URL_PREFIX = 'type.googleapis.com/';

const root = loadProtobufRoot();
const Status = root.lookupType('google.rpc.Status');
const BadRequest = root.lookupType('google.rpc.BadRequest');
const QuotaFailure = root.lookupType('google.rpc.QuotaFailure');
const RetryInfo = root.lookupType('google.rpc.RetryInfo');

export interface QuotaViolation {
  subject: string;
  description: string;
}

export interface StatusDetails {
  badRequest?: readonly FieldViolation[];
  quotaFailure?: readonly QuotaViolation[];
  retryDelayMs?: number;
}

function any(type: protobuf.Type, value: object): { type_url: string; value: Uint8Array } {
  return {
    type_url: TYPE_URL_PREFIX + type.fullName.replace(/^\./, ''),
    value: type.encode(type.fromObject(value)).finish(),
  };
}

/**
 * The trailer's size bound. gRPC's C core (Python, C++, Ruby, PHP, C# clients) refuses trailers
 * past 16 KiB by default, so a long list of field violations would reach those clients as a
 * transport error instead of the refusal; a list that does not fit is cut, and its last entry says
 * how many were left out (ValidateProgram returns them all in its reply).
 */
export const STATUS_DETAILS_BYTES_MAX = 8 * 1024;

/** A serialised google.rpc.Status carrying the given details (BadRequest, QuotaFailure, RetryInfo). */
export function statusDetails(code: number, message: string, d: StatusDetails): Buffer {
  const all = d.badRequest ?? [];
  let listed = all.length;
  for (;;) {
    const bytes = encodeStatus(code, message, { ...d, badRequest: shown(all, listed) });
    if (bytes.length <= STATUS_DETAILS_BYTES_MAX || listed === 0) return bytes;
    listed = Math.min(listed - 1, Math.floor((listed * STATUS_DETAILS_BYTES_MAX) / bytes.length));
  }
}

/** The first `n` violations, and a last one saying how many more there are. */
function shown(all: readonly FieldViolation[], n: number): readonly FieldViolation[] {
  if (n >= all.length) return all;
  return [
    ...all.slice(0, n),
    {
      field: 'program',
      description: `${all.length - n} more violation(s) not listed here; ValidateProgram lists them all`,
      reason: 'MORE_VIOLATIONS',
    },
  ];
}

function encodeStatus(code: number, message: string, d: StatusDetails): Buffer {
  const details: { type_url: string; value: Uint8Array }[] = [];
  if (d.badRequest && d.badRequest.length > 0) {
    details.push(
      any(BadRequest, {
        field_violations: d.badRequest.map((v) => ({
          field: v.field,
          description: v.description,
          reason: v.reason,
        })),
      }),
    );
  }
  if (d.quotaFailure && d.quotaFailure.length > 0) {
    details.push(
      any(QuotaFailure, {
        violations: d.quotaFailure.map((v) => ({ subject: v.subject, description: v.description })),
      }),
    );
  }
  if (d.retryDelayMs !== undefined) {
    const ms = Math.max(0, Math.ceil(d.retryDelayMs));
    details.push(
      any(RetryInfo, {
        retry_delay: { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 },
      }),
    );
  }
  return Buffer.from(Status.encode(Status.fromObject({ code, message, details })).finish());
}

/** Decodes a `grpc-status-details-bin` value (clients and tests). */
export function decodeStatusDetails(bytes: Uint8Array): {
  code: number;
  message: string;
  badRequest: FieldViolation[];
  quotaFailure: QuotaViolation[];
  retryDelayMs: number | null;
} {
  const s = Status.toObject(Status.decode(bytes), { defaults: true }) as {
    code: number;
    message: string;
    details: { type_url: string; value: Uint8Array }[];
  };
  const badRequest: FieldViolation[] = [];
  const quotaFailure: QuotaViolation[] = [];
  let retryDelayMs: number | null = null;
  for (const d of s.details) {
    const type = d.type_url.slice(TYPE_URL_PREFIX.length);
    if (type === 'google.rpc.BadRequest') {
      const br = BadRequest.toObject(BadRequest.decode(d.value), { defaults: true }) as {
        field_violations: FieldViolation[];
      };
      badRequest.push(
        ...br.field_violations.map((v) => ({
          field: v.field,
          description: v.description,
          reason: v.reason,
        })),
      );
    } else if (type === 'google.rpc.QuotaFailure') {
      const qf = QuotaFailure.toObject(QuotaFailure.decode(d.value), { defaults: true }) as {
        violations: QuotaViolation[];
      };
      quotaFailure.push(
        ...qf.violations.map((v) => ({ subject: v.subject, description: v.description })),
      );
    } else if (type === 'google.rpc.RetryInfo') {
      const ri = RetryInfo.toObject(RetryInfo.decode(d.value), {
        defaults: true,
        longs: Number,
      }) as {
        retry_delay: { seconds: number; nanos: number };
      };
      retryDelayMs = ri.retry_delay.seconds * 1000 + Math.round(ri.retry_delay.nanos / 1_000_000);
    }
  }
  return { code: s.code, message: s.message, badRequest, quotaFailure, retryDelayMs };
}
