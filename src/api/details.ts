/**
 * Structured error details: encodes a `google.rpc.Status` carrying `google.rpc.BadRequest` (and
 * other error_details.proto messages) for the `grpc-status-details-bin` trailer, the place every
 * gRPC language's status-details helper reads them. Layer: api. Uses protobufjs on the vendored
 * proto/google/rpc files, so the bytes follow the same .proto any client decodes with.
 */
import { join } from 'node:path';
import protobuf from 'protobufjs';
import type { FieldViolation } from '../kernel/errors.js';
import { PROTO_ROOT } from './proto.js';

export const STATUS_DETAILS_KEY = 'grpc-status-details-bin';
const TYPE_URL_PREFIX = 'type.googleapis.com/';

const root = new protobuf.Root();
root.resolvePath = (_origin, target) =>
  target.startsWith('google/protobuf/') ? target : join(PROTO_ROOT, target);
root.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto'], { keepCase: true });
const Status = root.lookupType('google.rpc.Status');
const BadRequest = root.lookupType('google.rpc.BadRequest');

function any(type: protobuf.Type, value: object): { type_url: string; value: Uint8Array } {
  return {
    type_url: TYPE_URL_PREFIX + type.fullName.replace(/^\./, ''),
    value: type.encode(type.fromObject(value)).finish(),
  };
}

/** A serialised google.rpc.Status with one BadRequest listing `violations`. */
export function badRequestStatus(code: number, message: string, violations: readonly FieldViolation[]): Buffer {
  const detail = any(BadRequest, {
    field_violations: violations.map((v) => ({ field: v.field, description: v.description, reason: v.reason })),
  });
  return Buffer.from(Status.encode(Status.fromObject({ code, message, details: [detail] })).finish());
}

/** Decodes a `grpc-status-details-bin` value (clients and tests). */
export function decodeStatusDetails(bytes: Uint8Array): {
  code: number;
  message: string;
  badRequest: FieldViolation[];
} {
  const s = Status.toObject(Status.decode(bytes), { defaults: true }) as {
    code: number;
    message: string;
    details: { type_url: string; value: Uint8Array }[];
  };
  const badRequest: FieldViolation[] = [];
  for (const d of s.details) {
    if (d.type_url !== `${TYPE_URL_PREFIX}google.rpc.BadRequest`) continue;
    const br = BadRequest.toObject(BadRequest.decode(d.value), { defaults: true }) as {
      field_violations: FieldViolation[];
    };
    badRequest.push(...br.field_violations.map((v) => ({ field: v.field, description: v.description, reason: v.reason })));
  }
  return { code: s.code, message: s.message, badRequest };
}
