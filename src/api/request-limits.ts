/**
 * Bounded requests: a request's wire bytes are walked against the caller's limits before anything
 * is decoded. Layer: api.
 *
 * Why: grpc-js decodes a message on the main thread before any handler can look at it, and
 * decoding builds an object per element: an ApplyGates of a million empty gates (2 MB, under the
 * message limit) took seconds of the main thread to decode before `gates_per_call_max` refused
 * it. The walk reads tags and lengths only, builds nothing, and stops at the first field past its
 * limit, so a refused request costs work in proportion to the limit, not to what was sent. A
 * request within its limits is then decoded as before.
 *
 * Limits per field: the repeated fields with a kernel limit use it (ApplyGates' `gates` the
 * tenant's `gates_per_call_max`), a program's source its 1 MiB; every other repeated field holds at
 * most `REPEATED_FIELD_MAX` entries and every other string or bytes field `STRING_FIELD_BYTES_MAX`
 * bytes. Nesting deeper than `MESSAGE_DEPTH_MAX` is refused.
 */
import assert from 'node:assert/strict';
import type * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { KernelError } from '../kernel/errors.js';
import {
  HANDLES_PER_RELEASE_MAX,
  MEASUREMENTS_PER_CALL_MAX,
  PROGRAM_SOURCE_BYTES_MAX,
} from '../kernel/limits.js';
import type { Quota } from '../kernel/quota-fields.js';

/** Entries of a repeated field without a limit of its own. */
export const REPEATED_FIELD_MAX = 4096;
/** Bytes of a string or bytes field without a limit of its own (names, handles, ids, keys). */
export const STRING_FIELD_BYTES_MAX = 4096;
/** Message nesting (our messages nest at most 4 deep). */
export const MESSAGE_DEPTH_MAX = 16;
/** Operands of one gate (the widest gate, Toffoli, has 3). */
const GATE_QUBITS_MAX = 3;

/** One field's bound: at most `max` entries (repeated) or bytes (string, bytes). */
interface Bound {
  max: number;
  refuse(field: string, max: number): KernelError;
}

const limitExceeded = (what: string) => (field: string, max: number) =>
  new KernelError('LIMIT_EXCEEDED', `${field}: more than ${max} ${what}`, field);

const GATES_FIELD = 'qmk.v1.ApplyGatesRequest.gates';

/** Bounds that differ from the defaults and from caller to caller not at all, by `<type>.<field>`. */
const FIXED_BOUNDS: ReadonlyMap<string, Bound> = new Map<string, Bound>([
  ['qmk.v1.Gate.qubits', { max: GATE_QUBITS_MAX, refuse: limitExceeded('operands') }],
  [
    'qmk.v1.MeasureQubitsRequest.measurements',
    { max: MEASUREMENTS_PER_CALL_MAX, refuse: limitExceeded('measurements') },
  ],
  [
    'qmk.v1.ReleaseQubitsRequest.qubit_handles',
    { max: HANDLES_PER_RELEASE_MAX, refuse: limitExceeded('handles') },
  ],
  ['qmk.v1.Program.source', { max: PROGRAM_SOURCE_BYTES_MAX, refuse: limitExceeded('bytes') }],
]);

/** ApplyGates' gates: the tenant's `gates_per_call_max`, or for the operator the default bound. */
function gatesBound(quota: Quota | null): Bound {
  if (quota === null) return { max: REPEATED_FIELD_MAX, refuse: limitExceeded('gates') };
  return {
    max: quota.gatesPerCallMax,
    refuse: (field, max) =>
      new KernelError(
        'QUOTA_EXCEEDED',
        `${field}: more than ${max} gates > gates_per_call_max ${max}`,
        'gates_per_call_max',
      ),
  };
}

const DEFAULT_REPEATED: Bound = { max: REPEATED_FIELD_MAX, refuse: limitExceeded('entries') };
const DEFAULT_STRING: Bound = { max: STRING_FIELD_BYTES_MAX, refuse: limitExceeded('bytes') };

/** The limits one caller's requests are walked against. */
export class RequestLimits {
  private readonly gates: Bound;

  /** `quota`: the tenant's (null for the operator: compiled-in ceilings only). */
  constructor(quota: Quota | null) {
    this.gates = gatesBound(quota);
  }

  /**
   * Walks `bytes` as a `type` and throws the first limit it passes; returns normally for a request
   * within its limits, and also for a malformed one (the decoder then says what is wrong).
   * @throws LIMIT_EXCEEDED, QUOTA_EXCEEDED (ApplyGates' gates)
   */
  check(type: protobuf.Type, bytes: Uint8Array): void {
    try {
      this.walk(type, protobuf.Reader.create(bytes), bytes.length, '', 0);
    } catch (err) {
      if (err instanceof KernelError) throw err;
      // Truncated or otherwise malformed: not ours to describe; the decoder will.
    }
  }

  private bound(type: protobuf.Type, field: protobuf.Field): Bound {
    const key = `${type.fullName.slice(1)}.${field.name}`;
    const special = key === GATES_FIELD ? this.gates : FIXED_BOUNDS.get(key);
    if (special) return special;
    return field.repeated ? DEFAULT_REPEATED : DEFAULT_STRING;
  }

  private walk(type: protobuf.Type, r: protobuf.Reader, end: number, at: string, depth: number) {
    if (depth >= MESSAGE_DEPTH_MAX) {
      const field = at || 'request';
      throw new KernelError(
        'LIMIT_EXCEEDED',
        `${field}: nested more than ${MESSAGE_DEPTH_MAX} deep`,
        field,
      );
    }
    const counts = new Map<number, number>();
    while (r.pos < end) {
      const tag = r.uint32();
      const id = tag >>> 3;
      const wire = tag & 7;
      const field = type.fieldsById[id];
      if (!field || wire !== 2) {
        if (field?.repeated) this.count(type, field, counts, at, 1);
        r.skipType(wire);
        continue;
      }
      const length = r.uint32();
      const start = r.pos;
      if (start + length > end) return; // truncated: the decoder reports it
      const name = at === '' ? field.name : `${at}.${field.name}`;
      const index = field.repeated ? this.count(type, field, counts, at, 1) - 1 : -1;
      const path = index >= 0 ? `${name}[${index}]` : name;
      if (field.resolvedType instanceof protobuf.Type) {
        this.walk(field.resolvedType, r, start + length, path, depth + 1);
      } else if (field.type === 'string' || field.type === 'bytes') {
        // An element of a repeated string field has the default string bound (its own bound, if
        // any, counts entries).
        const b = field.repeated ? DEFAULT_STRING : this.bound(type, field);
        if (length > b.max) throw b.refuse(path, b.max);
      } else if (field.repeated) {
        // A packed repeated scalar: count its elements without decoding them.
        this.count(type, field, counts, at, packedCount(field.type, r.buf, start, length) - 1);
      }
      r.pos = start + length;
    }
  }

  /** Adds `n` entries of a repeated field; returns the new count. @throws past its bound */
  private count(
    type: protobuf.Type,
    field: protobuf.Field,
    counts: Map<number, number>,
    at: string,
    n: number,
  ): number {
    const c = (counts.get(field.id) ?? 0) + n;
    counts.set(field.id, c);
    const b = this.bound(type, field);
    if (c > b.max) throw b.refuse(at === '' ? field.name : `${at}.${field.name}`, b.max);
    return c;
  }
}

/** Elements in a packed run of `type` scalars: varints end at a byte below 0x80. */
function packedCount(type: string, buf: Uint8Array, start: number, length: number): number {
  const fixed: Record<string, number> = {
    double: 8,
    fixed64: 8,
    sfixed64: 8,
    float: 4,
    fixed32: 4,
    sfixed32: 4,
  };
  const size = fixed[type];
  if (size !== undefined) return Math.floor(length / size);
  let n = 0;
  for (let i = start; i < start + length; i++) if (buf[i]! < 0x80) n++;
  return n;
}

/** A request that did not decode, as a value: its handler answers it with INVALID_ARGUMENT. */
export type DecodeFailure = { __decodeError: string };

const DEFERRED = Symbol('deferred request');

/** A request as it arrives: its bytes, its type, and the decoder to run once they are in bounds. */
export interface DeferredRequest {
  [DEFERRED]: true;
  bytes: Buffer;
  type: protobuf.Type;
  decode(bytes: Buffer): unknown;
}

export function isDeferred(message: unknown): message is DeferredRequest {
  return typeof message === 'object' && message !== null && DEFERRED in message;
}

/**
 * The service with each method's decoding deferred: grpc-js hands on the bytes untouched, and the
 * interceptor decodes them once the caller is known and the bytes are within its limits.
 */
export function deferDecoding(
  service: protobuf.Service,
  def: grpc.ServiceDefinition,
): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<object, object>> = {};
  for (const [name, m] of Object.entries(def)) {
    const method = service.methods[name];
    assert(method?.resolvedRequestType, `${service.fullName}.${name}: no request type`);
    const type = method.resolvedRequestType;
    out[name] = {
      ...m,
      requestDeserialize: (bytes: Buffer): DeferredRequest => ({
        [DEFERRED]: true,
        bytes,
        type,
        decode: m.requestDeserialize,
      }),
    };
  }
  return out;
}
