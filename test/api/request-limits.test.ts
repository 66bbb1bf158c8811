import type protobuf from 'protobufjs';
/**
 * The wire walk that bounds a request before it is decoded: it names the field at fault by its
 * path (element indexes included), uses the caller's gates bound for ApplyGates, counts packed
 * scalars without decoding them, and lets a request within its limits (or a malformed one, which
 * the decoder then describes) through.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadProtobufRoot } from '../../src/api/proto.js';
import {
  REPEATED_FIELD_MAX,
  RequestLimits,
  STRING_FIELD_BYTES_MAX,
} from '../../src/api/request-limits.js';
import { KernelError } from '../../src/kernel/errors.js';
import type { Quota } from '../../src/kernel/quota-fields.js';

const root = loadProtobufRoot();
const APPLY = root.lookupType('qmk.v1.ApplyGatesRequest');
const OPEN = root.lookupType('qmk.v1.OpenSessionRequest');
const tenant = new RequestLimits({ gatesPerCallMax: 8 } as Quota);
const operator = new RequestLimits(null);

function refusal(limits: RequestLimits, type: protobuf.Type, msg: object): KernelError {
  const bytes = type.encode(type.fromObject(msg)).finish();
  try {
    limits.check(type, bytes);
  } catch (err) {
    assert.instance(err, KernelError);
    return err as KernelError;
  }
  assert.unreachable(`${type.name}: not refused`);
  throw new Error('unreachable');
}

const gate = (...qubits: string[]) => ({ kind: 1, qubits });

test('within limits: nothing thrown', () => {
  const msg = APPLY.fromObject({ gates: Array.from({ length: 8 }, () => gate('a', 'b')) });
  tenant.check(APPLY, APPLY.encode(msg).finish());
});

test("ApplyGates' gates: the tenant's gates_per_call_max, as QUOTA_EXCEEDED", () => {
  const err = refusal(tenant, APPLY, { gates: Array.from({ length: 9 }, () => gate('a')) });
  assert.is(err.code, 'QUOTA_EXCEEDED');
  assert.is(err.field, 'gates_per_call_max');
  assert.match(err.message, /^gates: more than 8 gates/);
});

test('the operator has the default bound of a repeated field', () => {
  const n = REPEATED_FIELD_MAX + 1;
  const err = refusal(operator, APPLY, { gates: Array.from({ length: n }, () => ({})) });
  assert.is(err.code, 'LIMIT_EXCEEDED');
});

test("a nested field's path names the element: gates[2].qubits", () => {
  const err = refusal(tenant, APPLY, { gates: [gate('a'), gate('b'), gate('a', 'b', 'c', 'd')] });
  assert.is(err.code, 'LIMIT_EXCEEDED');
  assert.is(err.field, 'gates[2].qubits');
  assert.match(err.message, /^gates\[2\]\.qubits: more than 3 operands/);
});

test('an over-long string element names its index', () => {
  const long = 'h'.repeat(STRING_FIELD_BYTES_MAX + 1);
  const err = refusal(tenant, APPLY, { gates: [gate('a'), gate('b', long)] });
  assert.is(err.code, 'LIMIT_EXCEEDED');
  assert.is(err.field, 'gates[1].qubits[1]');
  assert.ok(err.message.length < 200, `${err.message.length} characters`);
});

test('a packed repeated enum is counted without decoding it', () => {
  const caps = Array.from({ length: REPEATED_FIELD_MAX + 1 }, () => 1);
  const err = refusal(tenant, OPEN, { requested_caps: caps });
  assert.is(err.code, 'LIMIT_EXCEEDED');
  assert.match(err.message, /^requested_caps: more than 4096 entries/);
  tenant.check(OPEN, OPEN.encode(OPEN.fromObject({ requested_caps: [1, 2] })).finish());
});

test('a truncated message passes the walk (the decoder describes it)', () => {
  const bytes = APPLY.encode(APPLY.fromObject({ gates: [gate('a', 'b')] })).finish();
  tenant.check(APPLY, bytes.subarray(0, bytes.length - 2));
});

test.run();
