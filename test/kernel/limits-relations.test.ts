/**
 * Every relation between limits that the code relies on, pinned: when one limit changes, the
 * test names the other that must change with it. Each limit itself is defined once (the ones
 * below that equal another are derived from it in the source; these tests keep it that way).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HANDLE_BYTES } from '../../src/kernel/handles.js';
import {
  HANDLE_CHARS_MAX,
  JOBS_QUEUED_PER_TENANT_MAX,
  JOBS_RETAINED_PER_TENANT_MAX,
  PROGRAM_NODES_MAX,
  PROGRAM_SOURCE_BYTES_MAX,
  QUBITS_PER_ALLOCATION_MAX,
  QUBITS_PER_CLUSTER_MAX,
  QUOTA_CEILING,
  SHOTS_PER_JOB_MAX,
  SHOT_OUTCOMES_KEPT_MAX,
  STATE_BYTES_MAX,
  TIERS,
  TIER_DEFAULTS,
  stateBytes,
} from '../../src/kernel/limits.js';
import {
  QASM_BITS_PER_CONDITION_MAX,
  QASM_QUBITS_PER_REGISTER_MAX,
  QASM_SOURCE_CHARS_MAX,
} from '../../src/kernel/program/qasm.js';
import {
  GUARD_TERMS_MAX,
  PROGRAM_NODES_MAX as QVM_NODES_MAX,
} from '../../src/kernel/program/qvm.js';
import { QUOTA_FIELDS } from '../../src/kernel/quota-fields.js';
import { DENSE_QUBITS_MAX, ENGINE_QUBITS_MAX } from '../../src/sim/engine.js';
import { CACHED_QUBITS_MAX, FUSION_WIDTH_DEFAULT } from '../../src/sim/kernels.js';
import { KEY_NUMERIC_CHARS_MAX } from '../../src/sim/tally.js';

test('limits: the engine takes every cluster the kernel allows (ENGINE ≥ QUBITS_PER_CLUSTER)', () => {
  assert.ok(ENGINE_QUBITS_MAX >= QUBITS_PER_CLUSTER_MAX);
  assert.ok(CACHED_QUBITS_MAX <= QUBITS_PER_CLUSTER_MAX, 'a cached state is one the kernel allows');
});

test('limits: STATE_BYTES_MAX is the state of the largest cluster (16·2^26 = 1 GiB)', () => {
  assert.is(STATE_BYTES_MAX, stateBytes(QUBITS_PER_CLUSTER_MAX));
  assert.is(STATE_BYTES_MAX, 2 ** 30);
});

test('limits: fusion widths (defaults and QMK_SIM_FUSION 0..5) fit the dense gate routine', () => {
  assert.is(DENSE_QUBITS_MAX, 5, 'QMK_SIM_FUSION accepts 0..5');
  for (const k of Object.values(FUSION_WIDTH_DEFAULT)) assert.ok(k >= 0 && k <= DENSE_QUBITS_MAX);
});

test('limits: the parsers share the kernel program limits', () => {
  assert.is(QVM_NODES_MAX, PROGRAM_NODES_MAX, 'qvm.ts re-exports the one PROGRAM_NODES_MAX');
  assert.is(QASM_SOURCE_CHARS_MAX, PROGRAM_SOURCE_BYTES_MAX);
  assert.is(QASM_QUBITS_PER_REGISTER_MAX, QUBITS_PER_ALLOCATION_MAX);
  assert.is(QASM_BITS_PER_CONDITION_MAX, GUARD_TERMS_MAX - 1, "an if's guard is an and of bits");
});

test('limits: a key of KEY_NUMERIC_CHARS_MAX bits is exact in a double (≤ 53 bits)', () => {
  assert.ok(KEY_NUMERIC_CHARS_MAX <= 53);
});

test('limits: a handle fits HANDLE_CHARS_MAX in base64url', () => {
  assert.ok(Math.ceil((HANDLE_BYTES * 4) / 3) <= HANDLE_CHARS_MAX);
});

test('limits: every tier default is within the ceiling; the quota table covers the ceiling', () => {
  for (const tier of TIERS) {
    const q = TIER_DEFAULTS[tier].quota;
    for (const f of QUOTA_FIELDS) assert.ok(q[f.key] <= QUOTA_CEILING[f.key], `${tier}.${f.key}`);
  }
  assert.equal(Object.keys(QUOTA_CEILING).sort(), QUOTA_FIELDS.map((f) => f.key).sort());
  for (const f of QUOTA_FIELDS)
    assert.ok(QUOTA_CEILING[f.key] <= f.wireMax, `${f.wire} on the wire`);
});

test('limits: retention keeps at least as many jobs as may be queued', () => {
  assert.ok(JOBS_RETAINED_PER_TENANT_MAX >= JOBS_QUEUED_PER_TENANT_MAX);
  assert.ok(SHOT_OUTCOMES_KEPT_MAX <= SHOTS_PER_JOB_MAX);
});

test.run();
