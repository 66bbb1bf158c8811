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

/** What the walk needs of one field, worked out once per field (not per element). */
interface FieldPlan {
  name: string;
  repeated: boolean;
  /** Its bound; null for ApplyGates' gates, whose bound is the caller's. */
  bound: Bound | null;
  /** Bound of each element's bytes (strings, bytes). */
  elementBytes: Bound;
  message: protobuf.Type | null;
  stringLike: boolean;
  packedType: string | null;
}

const PLANS = new WeakMap<protobuf.Type, ReadonlyMap<number, FieldPlan>>();

/** The fields of `type` by id, with their bounds (cached per type). */
function plansOf(type: protobuf.Type): ReadonlyMap<number, FieldPlan> {
  let plans = PLANS.get(type);
  if (plans) return plans;
  const m = new Map<number, FieldPlan>();
  const typeName = type.fullName.slice(1);
  for (const field of type.fieldsArray) {
    field.resolve();
    const key = `${typeName}.${field.name}`;
    const stringLike = field.type === 'string' || field.type === 'bytes';
    const message = field.resolvedType instanceof protobuf.Type ? field.resolvedType : null;
    const bound =
      key === GATES_FIELD
        ? null
        : (FIXED_BOUNDS.get(key) ?? (field.repeated ? DEFAULT_REPEATED : DEFAULT_STRING));
    m.set(field.id, {
      name: field.name,
      repeated: field.repeated,
      bound,
      // An element of a repeated string field has the default string bound (its own bound, if
      // any, counts entries).
      elementBytes: field.repeated || bound === null ? DEFAULT_STRING : bound,
      message,
      stringLike,
      packedType: field.repeated && !message && !stringLike ? field.type : null,
    });
  }
  plans = m;
  PLANS.set(type, plans);
  return plans;
}

/** Where the walk is, for messages: built into a string only when something is refused. */
interface At {
  parent: At | null;
  field: string;
  index: number;
}

function pathOf(at: At | null): string {
  if (at === null) return '';
  const up = pathOf(at.parent);
  const here = at.index >= 0 ? `${at.field}[${at.index}]` : at.field;
  return up === '' ? here : `${up}.${here}`;
}

function fieldPath(at: At | null, field: string): string {
  const up = pathOf(at);
  return up === '' ? field : `${up}.${field}`;
}

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
      this.walk(type, protobuf.Reader.create(bytes), bytes.length, null, 0);
    } catch (err) {
      if (err instanceof KernelError) throw err;
      // Truncated or otherwise malformed: not ours to describe; the decoder will.
    }
  }

  private walk(type: protobuf.Type, r: protobuf.Reader, end: number, at: At | null, depth: number) {
    if (depth >= MESSAGE_DEPTH_MAX) {
      const field = pathOf(at) || 'request';
      throw new KernelError(
        'LIMIT_EXCEEDED',
        `${field}: nested more than ${MESSAGE_DEPTH_MAX} deep`,
        field,
      );
    }
    const plans = plansOf(type);
    // Entries so far of each repeated field met, by field id (made at the first one).
    const counts: number[] = [];
    while (r.pos < end) {
      const tag = r.uint32();
      const id = tag >>> 3;
      const wire = tag & 7;
      const plan = plans.get(id);
      if (plan === undefined || wire !== 2) {
        if (plan?.repeated) this.count(counts, at, id, plan, 1);
        r.skipType(wire);
        continue;
      }
      const length = r.uint32();
      const start = r.pos;
      if (start + length > end) return; // truncated: the decoder reports it
      const index = plan.repeated ? this.count(counts, at, id, plan, 1) - 1 : -1;
      if (plan.message !== null) {
        this.walk(
          plan.message,
          r,
          start + length,
          { parent: at, field: plan.name, index },
          depth + 1,
        );
      } else if (plan.stringLike) {
        const b = plan.elementBytes;
        if (length > b.max) {
          const name = fieldPath(at, plan.name);
          throw b.refuse(index >= 0 ? `${name}[${index}]` : name, b.max);
        }
      } else if (plan.packedType !== null) {
        // A packed repeated scalar: count its elements without decoding them.
        this.count(counts, at, id, plan, packedCount(plan.packedType, r.buf, start, length) - 1);
      }
      r.pos = start + length;
    }
  }

  /** Adds `n` entries of a repeated field; returns the new count. @throws past its bound */
  private count(counts: number[], at: At | null, id: number, plan: FieldPlan, n: number): number {
    const c = (counts[id] ?? 0) + n;
    counts[id] = c;
    const b = plan.bound ?? this.gates;
    if (c > b.max) throw b.refuse(fieldPath(at, plan.name), b.max);
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
