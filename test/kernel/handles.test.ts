import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KernelError } from '../../src/kernel/errors.js';
import {
  HANDLE_BYTES,
  type HandleClaims,
  RIGHTS,
  decodeHandle,
  encodeClaims,
  encodeHandle,
  rightsToNames,
} from '../../src/kernel/handles.js';

const claims: HandleClaims = {
  kind: 'VQ',
  resourceId: '0123456789abcdef0123456789abcdef',
  tenantId: 'fedcba9876543210fedcba9876543210',
  sessionId: '00112233445566778899aabbccddeeff',
  rights: RIGHTS.RIGHT_COMPUTE | RIGHTS.RIGHT_MEASURE,
  issuedAtMs: 1_700_000_000_123,
  expiresAtMs: 1_700_000_360_456,
  keyId: 7,
};

test('handles: encode then decode → the same claims, 134 bytes', () => {
  const text = encodeHandle(encodeClaims(claims), new Uint8Array(64).fill(9));
  assert.is(Buffer.from(text, 'base64url').length, HANDLE_BYTES);
  const d = decodeHandle(text, 'h');
  assert.equal(d.claims, claims);
  assert.equal([...d.signature], new Array(64).fill(9));
});

test('handles: wrong length, wrong version, unknown kind, bad alphabet → HANDLE_INVALID naming the field', () => {
  const good = Buffer.concat([encodeClaims(claims), Buffer.alloc(64)]);
  const variants = [
    good.subarray(0, 133).toString('base64url'),
    Buffer.concat([good, Buffer.alloc(1)]).toString('base64url'),
    Buffer.from([2, ...good.subarray(1)]).toString('base64url'),
    Buffer.from([1, 99, ...good.subarray(2)]).toString('base64url'),
    'not a handle!',
    'x'.repeat(600),
  ];
  for (const v of variants) {
    try {
      decodeHandle(v, 'gates[0].qubits[1]');
      assert.unreachable('decoded');
    } catch (e) {
      assert.instance(e, KernelError);
      assert.is((e as KernelError).code, 'HANDLE_INVALID');
      assert.is((e as KernelError).field, 'gates[0].qubits[1]');
    }
  }
});

test('handles: empty → INVALID_ARGUMENT', () => {
  try {
    decodeHandle('', 'session_handle');
    assert.unreachable();
  } catch (e) {
    assert.is((e as KernelError).code, 'INVALID_ARGUMENT');
  }
});

test('handles: rightsToNames → the names of the set bits in enum order', () => {
  assert.equal(rightsToNames(RIGHTS.RIGHT_MEASURE | RIGHTS.RIGHT_ALLOC), [
    'RIGHT_ALLOC',
    'RIGHT_MEASURE',
  ]);
});

test.run();
