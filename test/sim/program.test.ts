/**
 * The job runner (`sim/program.ts`) on real programs: every shipped QVM example against
 * EXPECTED.md, textbook algorithms (GHZ-20, teleportation with COND_PAULI, Grover, Bernstein–
 * Vazirani, QFT), every measurement basis, MEASURE_BELL in both forms, guards, RESET, seeded
 * reproducibility, cancellation and the sampling-mode decision. Every program is QVM JSON parsed
 * with `parseQvm` and checked with `verifyProgram` (no errors), so each is one the kernel accepts.
 *
 * Statistical checks use the bound of EXPECTED.md: an outcome of probability p observed with
 * frequency f over N shots passes when |f − p| ≤ 5·sqrt(p(1−p)/N), and an outcome of probability
 * 0 must be absent. Seeds are fixed, so every run is reproducible. Timings are printed, never
 * asserted (benchmarks live in bench/).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { QUBITS_PER_CLUSTER_MAX, SHOTS_PER_JOB_MAX } from '../../src/kernel/limits.js';
import type { Program } from '../../src/kernel/program/ir.js';
import { parseQvm } from '../../src/kernel/program/qvm.js';
import { type VerifyContext, verifyProgram } from '../../src/kernel/program/verify.js';
import {
  type ProgramRunOutput,
  runProgram,
  samplingMode,
  workEstimate,
} from '../../src/sim/program.js';
import { KEY_NUMERIC_CHARS_MAX } from '../../src/sim/tally.js';

const EXAMPLES_DIR = new URL('../../examples/qvm/', import.meta.url).pathname;
const CTX: VerifyContext = {
  caps: ['CAP_ALLOC', 'CAP_COMPUTE', 'CAP_MEASURE', 'CAP_LINK', 'CAP_TELEPORT', 'CAP_MAGIC'],
  strict: false,
  limits: {
    nodesMax: 10_000,
    qubitsLiveMax: 1_000,
    qubitsPerClusterMax: 26,
    physicalQubitsMax: 1e9,
    stateBytesMax: 2 ** 40,
  },
};
const N = 10_000;
const SEED = '20240611';

type Json = Record<string, unknown>;

/** Parses and verifies QVM JSON; any error violation fails the test. */
function verified(json: unknown): Program {
  const parsed = parseQvm(json);
  assert.equal(parsed.violations, [], 'parse violations');
  assert.ok(parsed.program);
  const errors = verifyProgram(parsed.program, CTX).violations.filter(
    (v) => v.severity === 'error',
  );
  assert.equal(errors, [], 'verify errors');
  return parsed.program;
}

/** A program over `vqs`: ALLOC_LQ, the body (ids n0, n1, ...), FREE_LQ. */
function program(vqs: string[], body: Json[], events: string[], chs: string[] = []): Program {
  const nodes = [
    { id: 'alloc', op: 'ALLOC_LQ', vqs, args: { n: vqs.length } },
    ...body.map((b, i) => ({ id: `n${i}`, ...b })),
    { id: 'free', op: 'FREE_LQ', vqs },
  ];
  return verified({ version: '0.1', program: { nodes }, resources: { vqs, chs, events } });
}

const gate = (op: string, ...vqs: string[]): Json => ({ op: `APPLY_${op}`, vqs });
const rot = (op: 'RX' | 'RY' | 'RZ', q: string, theta: number): Json => ({
  op: `APPLY_${op}`,
  vqs: [q],
  args: { theta },
});
const measure = (basis: string, q: string, event: string, extra: Json = {}): Json => ({
  op: `MEASURE_${basis}`,
  vqs: [q],
  produces: [event],
  ...extra,
});
const mz = (q: string, event: string): Json => measure('Z', q, event);
const cond = (mask: string, q: string, inputs: string[]): Json => ({
  op: 'COND_PAULI',
  vqs: [q],
  inputs,
  args: { mask },
});
const when = (event: string, equals: 0 | 1): Json => ({ event, equals });

function run(p: Program, shots = N, seed = SEED, extra: Json = {}): ProgramRunOutput {
  return runProgram({ program: p, shots, seed, shotOutcomesMax: 0, ...extra });
}

/** Every expected outcome within 5σ of its probability; nothing else observed. */
function expectDistribution(out: ProgramRunOutput, expected: Record<string, number>): void {
  const shots = out.shotsDone;
  const total = Object.values(out.counts).reduce((a, b) => a + b, 0);
  assert.is(total, shots, 'counts sum to the shots done');
  for (const key of Object.keys(out.counts)) {
    assert.ok((expected[key] ?? 0) > 0, `impossible outcome ${key} seen ${out.counts[key]} times`);
  }
  for (const [key, p] of Object.entries(expected)) {
    const f = (out.counts[key] ?? 0) / shots;
    const bound = 5 * Math.sqrt((p * (1 - p)) / shots);
    assert.ok(Math.abs(f - p) <= bound, `${key}: frequency ${f}, expected ${p} ± ${bound}`);
  }
}

/** All 2^n keys of n bits, each with probability 2^-n. */
function uniform(n: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < 2 ** n; i++) out[i.toString(2).padStart(n, '0')] = 2 ** -n;
  return out;
}

function timed<T>(label: string, f: () => T): T {
  const t0 = process.hrtime.bigint();
  const r = f();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(`    time: ${label}: ${ms.toFixed(3)} ms`);
  return r;
}

// The shipped examples against EXPECTED.md.

const EXAMPLES: [string, 'sampled' | 'per-shot', Record<string, number>][] = [
  ['bell_teleport_cnot', 'sampled', { '00': 0.5, '11': 0.5 }],
  ['ghz_state', 'sampled', { '0000': 0.5, '1111': 0.5 }],
  ['conditional_correction', 'per-shot', { '00': 0.5, '10': 0.5 }],
  ['measurement_bases', 'sampled', { '000': 0.25, '001': 0.25, '100': 0.25, '101': 0.25 }],
  ['teleportation_demo', 'per-shot', uniform(3)],
];

for (const [name, mode, expected] of EXAMPLES) {
  test(`examples: ${name} at ${N} shots → EXPECTED.md within 5σ, ${mode}`, () => {
    const json = JSON.parse(readFileSync(join(EXAMPLES_DIR, `${name}.qvm.json`), 'utf8'));
    const p = verified(json);
    assert.is(samplingMode(p), mode);
    const out = timed(`${name} ${N} shots`, () => run(p));
    assert.is(out.mode, mode);
    assert.is(out.stopped, 0);
    assert.is(out.shotsDone, N);
    expectDistribution(out, expected);
  });
}

// Algorithms.

function ghz(n: number): Program {
  const qs = Array.from({ length: n }, (_, i) => `q${i}`);
  const body = [gate('H', 'q0')];
  for (let i = 1; i < n; i++) body.push(gate('CNOT', 'q0', qs[i]!));
  qs.forEach((q, i) => body.push(mz(q, `m${i}`)));
  return program(
    qs,
    body,
    qs.map((_, i) => `m${i}`),
  );
}

test('ghz-20: 1000 shots sampled → only all-0 and all-1, each 1/2; one 20-qubit state', () => {
  const p = ghz(20);
  assert.is(samplingMode(p), 'sampled');
  const out = timed('GHZ-20 1000 shots', () => run(p, 1000));
  assert.is(out.largestState, 20);
  expectDistribution(out, { ['0'.repeat(20)]: 0.5, ['1'.repeat(20)]: 0.5 });
  assert.ok(workEstimate(p, 1000) >= 2 ** 20, 'estimate covers a pass over 2^20 amplitudes');
});

test('teleportation: |+> teleported, Bob read in X after COND_PAULI → always 0, per-shot', () => {
  const p = program(
    ['msg', 'alice', 'bob'],
    [
      gate('H', 'msg'),
      gate('H', 'alice'),
      gate('CNOT', 'alice', 'bob'),
      gate('CNOT', 'msg', 'alice'),
      gate('H', 'msg'),
      mz('msg', 'm_msg'),
      mz('alice', 'm_alice'),
      cond('X', 'bob', ['m_alice']),
      cond('Z', 'bob', ['m_msg']),
      measure('X', 'bob', 'm_bob'),
    ],
    ['m_msg', 'm_alice', 'm_bob'],
  );
  assert.is(samplingMode(p), 'per-shot');
  const out = timed(`teleport per-shot ${N} shots`, () => run(p));
  assert.is(out.mode, 'per-shot');
  expectDistribution(out, { '000': 0.25, '010': 0.25, '100': 0.25, '110': 0.25 });
});

test('teleportation: without the corrections → Bob in X repeats m_msg (they matter)', () => {
  const p = program(
    ['msg', 'alice', 'bob'],
    [
      gate('H', 'msg'),
      gate('H', 'alice'),
      gate('CNOT', 'alice', 'bob'),
      gate('CNOT', 'msg', 'alice'),
      gate('H', 'msg'),
      mz('msg', 'm_msg'),
      mz('alice', 'm_alice'),
      measure('X', 'bob', 'm_bob'),
    ],
    ['m_msg', 'm_alice', 'm_bob'],
  );
  // Bob holds X^m_alice Z^m_msg |+>: X leaves |+> alone, Z turns it into |->.
  expectDistribution(run(p), { '000': 0.25, '010': 0.25, '101': 0.25, '111': 0.25 });
});

/** CCZ on a, b, c as H·CCX·H on c. */
const ccz = (a: string, b: string, c: string): Json[] => [
  gate('H', c),
  gate('TOFFOLI', a, b, c),
  gate('H', c),
];

test('grover: 3 qubits, marked |101>, 2 iterations → P(101) = 121/128 > 0.9', () => {
  const qs = ['q0', 'q1', 'q2'];
  const all = (op: string) => qs.map((q) => gate(op, q));
  const iteration = [
    gate('X', 'q1'),
    ...ccz('q0', 'q1', 'q2'),
    gate('X', 'q1'), // oracle: phase −1 on q0=1, q1=0, q2=1
    ...all('H'),
    ...all('X'),
    ...ccz('q0', 'q1', 'q2'),
    ...all('X'),
    ...all('H'), // diffusion
  ];
  const p = program(
    qs,
    [...all('H'), ...iteration, ...iteration, mz('q2', 'm2'), mz('q1', 'm1'), mz('q0', 'm0')],
    ['m2', 'm1', 'm0'],
  );
  const out = run(p);
  const expected: Record<string, number> = {};
  for (const [k, v] of Object.entries(uniform(3))) expected[k] = v === 0 ? 0 : 1 / 128;
  expected['101'] = 121 / 128;
  expectDistribution(out, expected);
  assert.ok((out.counts['101'] ?? 0) / N > 0.9);
});

test('bernstein-vazirani: secret 1101 → the secret on every shot', () => {
  const secret = [1, 1, 0, 1];
  const xs = secret.map((_, i) => `x${i}`);
  const body = [gate('X', 'anc'), gate('H', 'anc'), ...xs.map((x) => gate('H', x))];
  secret.forEach((bit, i) => {
    if (bit === 1) body.push(gate('CNOT', xs[i]!, 'anc'));
  });
  body.push(...xs.map((x) => gate('H', x)), ...xs.map((x, i) => mz(x, `s${i}`)));
  const p = program(
    [...xs, 'anc'],
    body,
    xs.map((_, i) => `s${i}`),
  );
  const out = run(p, 1000);
  assert.equal(out.counts, { '1101': 1000 });
  assert.is(out.largestState, 4, 'x2 never meets the ancilla: its own group');
});

/** Controlled phase diag(1, 1, 1, e^{iλ}) from RZ and CNOT (exact up to a global phase). */
const cphase = (c: string, t: string, lambda: number): Json[] => [
  rot('RZ', c, lambda / 2),
  gate('CNOT', c, t),
  rot('RZ', t, -lambda / 2),
  gate('CNOT', c, t),
  rot('RZ', t, lambda / 2),
];

/** QFT on q0..q(n-1), q(n-1) the most significant bit: |x> ↦ Σ_y e^{2πixy/2^n}|y>/√2^n. */
function qft(n: number): Json[] {
  const q = (i: number) => `q${i}`;
  const body: Json[] = [];
  for (let j = n - 1; j >= 0; j--) {
    body.push(gate('H', q(j)));
    for (let k = j - 1; k >= 0; k--) body.push(...cphase(q(k), q(j), Math.PI / 2 ** (j - k)));
  }
  for (let i = 0; i < n / 2 - (n % 2) / 2; i++) body.push(gate('SWAP', q(i), q(n - 1 - i)));
  return body;
}

/** The inverse QFT: the QFT's gates reversed, each angle negated. */
function inverseQft(n: number): Json[] {
  const q = (i: number) => `q${i}`;
  const body: Json[] = [];
  for (let i = 0; i < n / 2 - (n % 2) / 2; i++) body.push(gate('SWAP', q(i), q(n - 1 - i)));
  for (let j = 0; j < n; j++) {
    for (let k = 0; k < j; k++) body.push(...cphase(q(k), q(j), -Math.PI / 2 ** (j - k)));
    body.push(gate('H', q(j)));
  }
  return body;
}

const QS4 = ['q0', 'q1', 'q2', 'q3'];
/** Events m3 m2 m1 m0: the key is the binary number on q3..q0. */
const READ4 = [mz('q3', 'm3'), mz('q2', 'm2'), mz('q1', 'm1'), mz('q0', 'm0')];
const EVENTS4 = ['m3', 'm2', 'm1', 'm0'];

test('qft: n=4 of the basis state |0110> → uniform over all 16 outcomes within 5σ', () => {
  const p = program(QS4, [gate('X', 'q1'), gate('X', 'q2'), ...qft(4), ...READ4], EVENTS4);
  expectDistribution(run(p), uniform(4));
});

test('qft: inverse QFT of the Fourier state of x = 11 → 1011 on every shot', () => {
  const x = 11;
  const prep = QS4.flatMap((q, l) => [gate('H', q), rot('RZ', q, (2 * Math.PI * x * 2 ** l) / 16)]);
  const p = program(QS4, [...prep, ...inverseQft(4), ...READ4], EVENTS4);
  assert.equal(run(p, 2000).counts, { '1011': 2000 });
});

// Measurement bases.

test('measure_angle: |+> at ±π/6 → P(0) = (1 + sin a)/2: 3/4 and 1/4', () => {
  const a = Math.PI / 6;
  const p = program(
    ['qa', 'qb'],
    [
      gate('H', 'qa'),
      gate('H', 'qb'),
      measure('ANGLE', 'qa', 'ma', { args: { angle: a } }),
      measure('ANGLE', 'qb', 'mb', { args: { angle: -a } }),
    ],
    ['ma', 'mb'],
  );
  assert.is(samplingMode(p), 'sampled');
  const expected = { '00': 0.75 * 0.25, '01': 0.75 * 0.75, '10': 0.25 * 0.25, '11': 0.25 * 0.75 };
  expectDistribution(run(p), expected);
});

test('measure_angle: per-shot (a guard downstream) → the same P(0) = 3/4 and 1/4', () => {
  const a = Math.PI / 6;
  const p = program(
    ['qa', 'qb', 'qc'],
    [
      gate('H', 'qa'),
      gate('H', 'qb'),
      measure('ANGLE', 'qa', 'ma', { args: { angle: a } }),
      measure('ANGLE', 'qb', 'mb', { args: { angle: -a } }),
      { ...gate('X', 'qc'), guard: when('ma', 0) },
      mz('qc', 'mc'),
    ],
    ['ma', 'mb', 'mc'],
  );
  assert.is(samplingMode(p), 'per-shot');
  const expected = {
    '001': 0.75 * 0.25,
    '011': 0.75 * 0.75,
    '100': 0.25 * 0.25,
    '110': 0.25 * 0.75,
  };
  expectDistribution(run(p), expected);
});

test('measure_angle: |+> at π/2 → always 0; at -π/2 → always 1', () => {
  const p = program(
    ['qa', 'qb'],
    [
      gate('H', 'qa'),
      gate('H', 'qb'),
      measure('ANGLE', 'qa', 'ma', { args: { angle: Math.PI / 2 } }),
      measure('ANGLE', 'qb', 'mb', { args: { angle: -Math.PI / 2 } }),
    ],
    ['ma', 'mb'],
  );
  assert.equal(run(p, 1000).counts, { '01': 1000 });
});

test('measure: |+i> (S·H|0>) read in Y → always 0; re-read in Y after the measurement → 0', () => {
  const p = program(
    ['q'],
    [gate('H', 'q'), gate('S', 'q'), measure('Y', 'q', 'a'), measure('Y', 'q', 'b')],
    ['a', 'b'],
  );
  assert.is(samplingMode(p), 'per-shot');
  assert.equal(run(p, 1000).counts, { '00': 1000 });
});

test('measure: X after X leaves |±> → the second X read repeats the first', () => {
  const p = program(
    ['q'],
    [gate('H', 'q'), gate('S', 'q'), measure('X', 'q', 'a'), measure('X', 'q', 'b')],
    ['a', 'b'],
  );
  expectDistribution(run(p), { '00': 0.5, '11': 0.5 });
});

test('inject_t_state: T·H|0> read in X → P(0) = (1 + cos π/4)/2', () => {
  const p = program(['q'], [{ op: 'INJECT_T_STATE', vqs: ['q'] }, measure('X', 'q', 'm')], ['m']);
  const p0 = (1 + Math.SQRT1_2) / 2;
  expectDistribution(run(p), { '0': p0, '1': 1 - p0 });
});

test('rotations: RX(θ)|0> and RY(θ)|0> → P(1) = sin²(θ/2), sampled and per-shot agree', () => {
  const theta = 1.1;
  const p1 = Math.sin(theta / 2) ** 2;
  const body = [rot('RX', 'a', theta), rot('RY', 'b', theta), mz('a', 'ma'), mz('b', 'mb')];
  const expected = { '00': (1 - p1) ** 2, '01': (1 - p1) * p1, '10': p1 * (1 - p1), '11': p1 ** 2 };
  const sampled = run(program(['a', 'b'], body, ['ma', 'mb']));
  assert.is(sampled.mode, 'sampled');
  expectDistribution(sampled, expected);
  // A qubit measured twice in its own group makes the whole run per-shot.
  const extra = [mz('c', 'mc1'), mz('c', 'mc2')];
  const perShot = run(program(['a', 'b', 'c'], [...body, ...extra], ['ma', 'mb', 'mc1', 'mc2']));
  assert.is(perShot.mode, 'per-shot');
  expectDistribution(
    perShot,
    Object.fromEntries(Object.entries(expected).map(([k, v]) => [`${k}00`, v])),
  );
});

// MEASURE_BELL.

/** Bell states from |00>: Φ+ (none), Φ− (Z), Ψ+ (X), Ψ− (X then Z) applied to q0 of Φ+. */
const BELL: [string, Json[], string][] = [
  ['Φ+', [], '00'],
  ['Φ−', [gate('Z', 'q0')], '10'],
  ['Ψ+', [gate('X', 'q0')], '01'],
  ['Ψ−', [gate('X', 'q0'), gate('Z', 'q0')], '11'],
];

for (const [name, prep, bits] of BELL) {
  test(`measure_bell: ${name} with two events → m0 m1 = ${bits}`, () => {
    const p = program(
      ['q0', 'q1'],
      [
        gate('H', 'q0'),
        gate('CNOT', 'q0', 'q1'),
        ...prep,
        { op: 'MEASURE_BELL', vqs: ['q0', 'q1'], produces: ['m0', 'm1'] },
      ],
      ['m0', 'm1'],
    );
    assert.equal(run(p, 500).counts, { [bits]: 500 });
  });

  test(`measure_bell: ${name} with one event, then a Z read → two key characters ${bits}`, () => {
    const p = program(
      ['q0', 'q1', 'r'],
      [
        gate('H', 'q0'),
        gate('CNOT', 'q0', 'q1'),
        ...prep,
        gate('X', 'r'),
        { op: 'MEASURE_BELL', vqs: ['q0', 'q1'], produces: ['mb'] },
        mz('r', 'mr'),
      ],
      ['mb', 'mr'],
    );
    const out = runProgram({ program: p, shots: 500, seed: SEED, shotOutcomesMax: 3 });
    assert.equal(out.counts, { [`${bits}1`]: 500 });
    assert.equal(out.shotOutcomes, [`${bits}1`, `${bits}1`, `${bits}1`]);
  });
}

test('measure_bell: |00> → m0 uniform, m1 = 0, sampled and per-shot', () => {
  const bell = { op: 'MEASURE_BELL', vqs: ['q0', 'q1'], produces: ['mb'] };
  const sampled = run(program(['q0', 'q1'], [bell], ['mb']));
  assert.is(sampled.mode, 'sampled');
  expectDistribution(sampled, { '00': 0.5, '10': 0.5 });
  const again = run(program(['q0', 'q1'], [bell, mz('q1', 'z')], ['mb', 'z']));
  assert.is(again.mode, 'per-shot');
  expectDistribution(again, { '000': 0.5, '100': 0.5 });
});

test('measure_bell: one-event value 2·m0+m1 in a guard → equals 1 means m0=0, m1=1', () => {
  const p = program(
    ['q0', 'q1', 'r'],
    [
      gate('H', 'q0'),
      gate('H', 'q1'),
      { op: 'MEASURE_BELL', vqs: ['q0', 'q1'], produces: ['mb'] },
      { ...gate('X', 'r'), guard: when('mb', 1) },
      mz('r', 'mr'),
    ],
    ['mb', 'mr'],
  );
  // |++> = (Φ+ + Ψ+)/√2 up to normalisation: m0 = 0, m1 uniform.
  expectDistribution(run(p), { '000': 0.5, '011': 0.5 });
});

// Guards, COND_PAULI, events.

test('guards: and/or over two coin flips, a skipped measurement reads 0', () => {
  const p = program(
    ['a', 'b', 'c', 'd', 'e'],
    [
      gate('H', 'a'),
      gate('H', 'b'),
      mz('a', 'ma'),
      mz('b', 'mb'),
      { ...gate('X', 'c'), guard: { type: 'and', conditions: [when('ma', 1), when('mb', 1)] } },
      { ...gate('X', 'd'), guard: { type: 'or', conditions: [when('ma', 1), when('mb', 1)] } },
      mz('c', 'mand'),
      mz('d', 'mor'),
      gate('X', 'e'),
      { ...mz('e', 'mskip'), guard: when('ma', 0) }, // skipped when ma = 1: reads 0
    ],
    ['ma', 'mb', 'mand', 'mor', 'mskip'],
  );
  assert.is(samplingMode(p), 'per-shot');
  const out = run(p);
  assert.is(out.largestState, 1);
  expectDistribution(out, { '00001': 0.25, '01011': 0.25, '10010': 0.25, '11110': 0.25 });
});

test('guards: a nested and-of-or → runs exactly when the formula holds', () => {
  const g = {
    type: 'and',
    conditions: [{ type: 'or', conditions: [when('ma', 1), when('mb', 1)] }, when('mc', 0)],
  };
  const p = program(
    ['a', 'b', 'c', 't'],
    [
      gate('H', 'a'),
      gate('H', 'b'),
      gate('H', 'c'),
      mz('a', 'ma'),
      mz('b', 'mb'),
      mz('c', 'mc'),
      { ...gate('X', 't'), guard: g },
      mz('t', 'mt'),
    ],
    ['ma', 'mb', 'mc', 'mt'],
  );
  const expected: Record<string, number> = {};
  for (let i = 0; i < 8; i++) {
    const [a, b, c] = [(i >> 2) & 1, (i >> 1) & 1, i & 1];
    expected[`${a}${b}${c}${(a | b) & (c ^ 1)}`] = 1 / 8;
  }
  expectDistribution(run(p), expected);
});

test('cond_pauli: XOR of two inputs flips the target; no inputs → unconditional, sampled', () => {
  const q = program(
    ['a', 'b', 't'],
    [
      gate('H', 'a'),
      gate('H', 'b'),
      mz('a', 'ma'),
      mz('b', 'mb'),
      cond('X', 't', ['ma', 'mb']),
      mz('t', 'mt'),
    ],
    ['ma', 'mb', 'mt'],
  );
  assert.is(samplingMode(q), 'per-shot');
  expectDistribution(run(q), { '000': 0.25, '011': 0.25, '101': 0.25, '110': 0.25 });
  const u = program(['t'], [cond('Y', 't', []), mz('t', 'mt')], ['mt']);
  assert.is(samplingMode(u), 'sampled');
  assert.equal(run(u, 100).counts, { '1': 100 });
});

test('events: keys follow resources.events order, not program order', () => {
  const p = program(['qa', 'qb'], [gate('X', 'qa'), mz('qa', 'mA'), mz('qb', 'mB')], ['mB', 'mA']);
  assert.equal(run(p, 10).counts, { '01': 10 });
});

test('events: 60 single-qubit groups (a 60-character key) → strings, each bit fair', () => {
  const qs = Array.from({ length: 60 }, (_, i) => `q${i}`);
  const body = [
    ...qs.slice(0, 59).map((q) => gate('H', q)),
    gate('X', 'q59'),
    ...qs.map((q, i) => mz(q, `m${i}`)),
  ];
  const p = program(
    qs,
    body,
    qs.map((_, i) => `m${i}`),
  );
  const out = runProgram({ program: p, shots: 2000, seed: SEED, shotOutcomesMax: 2 });
  assert.is(out.largestState, 1);
  assert.is(out.shotOutcomes.length, 2);
  let ones = 0;
  for (const [key, count] of Object.entries(out.counts)) {
    assert.is(key.length, 60);
    assert.is(key[59], '1', 'q59 is X|0>');
    if (key[0] === '1') ones += count;
  }
  const bound = 5 * Math.sqrt(0.25 / 2000);
  assert.ok(Math.abs(ones / 2000 - 0.5) <= bound, `first bit frequency ${ones / 2000}`);
});

for (const [chars, what] of [
  [KEY_NUMERIC_CHARS_MAX, 'the numeric maximum'],
  [KEY_NUMERIC_CHARS_MAX + 1, 'one past it: strings'],
] as const) {
  test(`events: a ${chars}-character key (${what}) → exact keys and outcomes`, () => {
    const qs = Array.from({ length: chars }, (_, i) => `q${i}`);
    const body = [gate('X', 'q0'), gate('X', qs[chars - 1]!), ...qs.map((q, i) => mz(q, `m${i}`))];
    const p = program(
      qs,
      body,
      qs.map((_, i) => `m${i}`),
    );
    const key = `1${'0'.repeat(chars - 2)}1`;
    const out = runProgram({ program: p, shots: 20, seed: SEED, shotOutcomesMax: 50 });
    assert.equal(out.counts, { [key]: 20 });
    assert.is(out.shotOutcomes.length, 20, 'outcomes kept: min(shotOutcomesMax, shots)');
    assert.is(out.shotOutcomes[19], key);
  });
}

test('groups: 27 qubits joined (past the verifier cluster limit, unverified) → assertion', () => {
  // At the limit itself (26 qubits) the state is 1 GiB: too large for a unit test.
  const qs = Array.from({ length: QUBITS_PER_CLUSTER_MAX + 1 }, (_, i) => `q${i}`);
  const nodes = [
    { id: 'alloc', op: 'ALLOC_LQ', vqs: qs },
    ...qs.slice(1).map((q, i) => ({ id: `c${i}`, op: 'APPLY_CNOT', vqs: ['q0', q] })),
    { id: 'm', op: 'MEASURE_Z', vqs: ['q0'], produces: ['m'] },
  ];
  const parsed = parseQvm({
    version: '0.1',
    program: { nodes },
    resources: { vqs: qs, events: ['m'] },
  });
  assert.ok(parsed.program);
  const p = parsed.program;
  assert.throws(() => run(p, 1), /group of 27 qubits/);
});

test('groups: 30 unentangled measured qubits → 30 one-qubit states, sampled', () => {
  const qs = Array.from({ length: 30 }, (_, i) => `q${i}`);
  const p = program(
    qs,
    [...qs.map((q) => gate('H', q)), ...qs.map((q, i) => mz(q, `m${i}`))],
    qs.map((_, i) => `m${i}`),
  );
  const out = timed('30 independent qubits, 1000 shots', () => run(p, 1000));
  assert.is(out.largestState, 1);
  assert.is(out.mode, 'sampled');
  assert.ok(Object.keys(out.counts).length > 990, 'distinct keys: 2^30 outcomes, 1000 shots');
});

test('groups: an unmeasured 20-qubit group is never simulated', () => {
  const qs = Array.from({ length: 20 }, (_, i) => `q${i}`);
  const body = [gate('H', 'q0'), ...qs.slice(1).map((q) => gate('CNOT', 'q0', q))];
  const p = program([...qs, 'r'], [...body, gate('X', 'r'), mz('r', 'm')], ['m']);
  const out = run(p, 100);
  assert.is(out.largestState, 1);
  assert.equal(out.counts, { '1': 100 });
});

test('no events: a program that measures nothing → every shot has the empty key', () => {
  const p = program(['q'], [gate('H', 'q')], []);
  const out = runProgram({ program: p, shots: 5, seed: SEED, shotOutcomesMax: 2 });
  assert.equal(out.counts, { '': 5 });
  assert.equal(out.shotOutcomes, ['', '']);
  assert.is(out.largestState, 0);
});

// RESET and channels.

test('reset: X then RESET → always 0, per-shot', () => {
  const p = program(['q'], [gate('X', 'q'), { op: 'RESET', vqs: ['q'] }, mz('q', 'm')], ['m']);
  assert.is(samplingMode(p), 'per-shot');
  assert.equal(run(p, 1000).counts, { '0': 1000 });
});

test('reset: one half of a Bell pair → it reads 0, the partner stays uniform', () => {
  const p = program(
    ['a', 'b'],
    [
      gate('H', 'a'),
      gate('CNOT', 'a', 'b'),
      { op: 'RESET', vqs: ['a'] },
      mz('a', 'ma'),
      mz('b', 'mb'),
    ],
    ['ma', 'mb'],
  );
  expectDistribution(run(p), { '00': 0.5, '01': 0.5 });
});

test('reset: on fresh qubits → a no-op, the program stays sampled', () => {
  const p = program(
    ['a', 'b'],
    [{ op: 'RESET', vqs: ['a', 'b'] }, gate('H', 'a'), mz('a', 'ma'), mz('b', 'mb')],
    ['ma', 'mb'],
  );
  assert.is(samplingMode(p), 'sampled');
  expectDistribution(run(p), { '00': 0.5, '10': 0.5 });
});

test('reset: after a measurement, then reuse → measured 1 then 0 after RESET and re-read', () => {
  const p = program(
    ['q'],
    [gate('X', 'q'), mz('q', 'a'), { op: 'RESET', vqs: ['q'] }, gate('H', 'q'), mz('q', 'b')],
    ['a', 'b'],
  );
  expectDistribution(run(p), { '10': 0.5, '11': 0.5 });
});

test('open_chan: fresh qubits → |Φ+> sampled; after a gate → reset first, per-shot', () => {
  const open = (ch: string) => ({ op: 'OPEN_CHAN', vqs: ['a', 'b'], chs: [ch] });
  const fresh = program(
    ['a', 'b'],
    [open('c1'), mz('a', 'ma'), mz('b', 'mb')],
    ['ma', 'mb'],
    ['c1'],
  );
  assert.is(samplingMode(fresh), 'sampled');
  expectDistribution(run(fresh), { '00': 0.5, '11': 0.5 });
  const used = program(
    ['a', 'b'],
    [gate('X', 'a'), open('c1'), mz('a', 'ma'), mz('b', 'mb')],
    ['ma', 'mb'],
    ['c1'],
  );
  assert.is(samplingMode(used), 'per-shot');
  expectDistribution(run(used), { '00': 0.5, '11': 0.5 });
});

test('teleport_cnot: acts as CNOT → a Bell pair', () => {
  const p = program(
    ['a', 'b'],
    [gate('H', 'a'), { op: 'TELEPORT_CNOT', vqs: ['a', 'b'] }, mz('a', 'ma'), mz('b', 'mb')],
    ['ma', 'mb'],
  );
  expectDistribution(run(p), { '00': 0.5, '11': 0.5 });
});

// Reproducibility and seeds.

const TELEPORT = () =>
  verified(JSON.parse(readFileSync(join(EXAMPLES_DIR, 'teleportation_demo.qvm.json'), 'utf8')));

test('seed: same program, shots and seed → identical counts and shot outcomes', () => {
  for (const p of [TELEPORT(), ghz(5)]) {
    const a = runProgram({ program: p, shots: 3000, seed: '42', shotOutcomesMax: 100 });
    const b = runProgram({ program: p, shots: 3000, seed: '42', shotOutcomesMax: 100 });
    assert.equal(a, b);
    assert.is(a.shotOutcomes.length, 100);
  }
});

test('seed: different seeds → different per-shot sequences (both modes)', () => {
  for (const p of [TELEPORT(), ghz(5)]) {
    const seq = (seed: string) =>
      runProgram({ program: p, shots: 64, seed, shotOutcomesMax: 64 }).shotOutcomes;
    assert.not.equal(seq('1'), seq('2'));
    assert.not.equal(seq('0'), seq('18446744073709551615'));
  }
});

test('seed: the extremes 0 and 2^64-1 → valid runs', () => {
  for (const seed of ['0', '18446744073709551615']) {
    expectDistribution(run(ghz(3), N, seed), { '000': 0.5, '111': 0.5 });
  }
});

test('shots: 1 (the minimum) per-shot and sampled → one shot', () => {
  assert.is(run(TELEPORT(), 1).shotsDone, 1);
  assert.is(run(ghz(3), 1).shotsDone, 1);
});

test('shots: 1,000,000 (the maximum) sampled Bell → counts within 5σ', () => {
  const p = ghz(2);
  const out = timed('Bell 1e6 shots sampled', () => run(p, SHOTS_PER_JOB_MAX));
  expectDistribution(out, { '00': 0.5, '11': 0.5 });
});

// Cancellation.

function control(stop = 0): Int32Array {
  const c = new Int32Array(new SharedArrayBuffer(8));
  Atomics.store(c, 0, stop);
  return c;
}

test('cancel: stop flag set before a per-shot run → stopped = 1, no shots', () => {
  const c = control(1);
  const out = run(TELEPORT(), N, SEED, { control: c });
  assert.is(out.stopped, 1);
  assert.ok(out.shotsDone < N);
  assert.is(out.shotsDone, 0);
  assert.equal(out.counts, {});
  assert.is(Atomics.load(c, 1), 0);
});

test('cancel: stop flag 2 before a sampled run → stopped = 2', () => {
  const out = run(ghz(4), N, SEED, { control: control(2) });
  assert.is(out.stopped, 2);
  assert.is(out.shotsDone, 0);
});

test('cancel: flag clear → runs to completion and publishes shots done', () => {
  const c = control();
  const out = run(TELEPORT(), N, SEED, { control: c });
  assert.is(out.stopped, 0);
  assert.is(Atomics.load(c, 1), N);
});

test('cancel: flag set mid-run by another thread → stops early, partial counts', async () => {
  const c = control();
  // A worker sets the flag after ~20 ms; the run below would take far longer.
  const { Worker } = await import('node:worker_threads');
  const w = new Worker(
    'const { workerData } = require("node:worker_threads");' +
      'Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);' +
      'Atomics.store(workerData, 0, 3);',
    { eval: true, workerData: c },
  );
  await new Promise((r) => w.once('online', r));
  const p = program(
    ['a', 'b', 'c'],
    [gate('H', 'a'), mz('a', 'ma'), { ...gate('X', 'b'), guard: when('ma', 1) }, mz('b', 'mb')],
    ['ma', 'mb'],
  );
  const out = timed('cancelled per-shot run', () =>
    run(p, SHOTS_PER_JOB_MAX, SEED, { control: c }),
  );
  await w.terminate();
  if (out.stopped === 0) return; // the machine finished 10^6 shots in 20 ms: nothing to check
  assert.is(out.stopped, 3);
  assert.ok(out.shotsDone < SHOTS_PER_JOB_MAX);
  const total = Object.values(out.counts).reduce((x, y) => x + y, 0);
  assert.is(total, out.shotsDone);
});

// Resuming a stopped run (a drained daemon's jobs go on from their recorded shots).

/** What a stopped (or shorter) run hands on: its shots, counts, outcomes and generator state. */
function progressOf(out: ProgramRunOutput) {
  assert.ok(out.rng, 'a run reports its generator state');
  return {
    shotsDone: out.shotsDone,
    counts: out.counts,
    shotOutcomes: out.shotOutcomes,
    rng: out.rng,
  };
}

for (const [mode, make] of [
  ['sampled', () => ghz(4)],
  ['per-shot', TELEPORT],
] as const) {
  test(`resume (${mode}): k shots, then resumed to N → the counts and outcomes of one N-shot run`, () => {
    const p = make();
    const whole = run(p, N, SEED, { shotOutcomesMax: 50 });
    assert.is(whole.mode, mode);
    for (const k of [1, 17, 49, 50, 51, 4_321, N - 1, N]) {
      const head = run(p, k, SEED, { shotOutcomesMax: 50 });
      const rest = run(p, N, SEED, { shotOutcomesMax: 50, resume: progressOf(head) });
      assert.is(rest.shotsDone, N, `k=${k}`);
      assert.equal(rest.counts, whole.counts, `counts, k=${k}`);
      assert.equal(rest.shotOutcomes, whole.shotOutcomes, `outcomes, k=${k}`);
    }
  });
}

test('resume: stopped again and again mid-run by another thread → the uninterrupted counts', async () => {
  // Per-shot on 12 qubits: a shot is several polls of work, so stops fall inside shots too.
  const qs = Array.from({ length: 12 }, (_, i) => `q${i}`);
  const body: Json[] = [
    ...qs.map((q) => gate('H', q)),
    // One 12-qubit group: a shot's gates each update 2^12 amplitudes.
    ...qs.slice(1).map((q, i) => gate('CNOT', qs[i]!, q)),
    mz('q0', 'm0'),
    ...qs.slice(1).map((q) => ({ ...gate('X', q), guard: when('m0', 1) })),
    ...qs.slice(1).map((q) => rot('RY', q, 0.3)),
    ...qs.slice(1).map((q, i) => mz(q, `m${i + 1}`)),
  ];
  const p = program(
    qs,
    body,
    qs.map((_, i) => `m${i}`),
  );
  const shots = 400;
  const whole = run(p, shots, SEED, { shotOutcomesMax: 100 });
  assert.is(whole.mode, 'per-shot');
  const { Worker } = await import('node:worker_threads');
  let resume: ReturnType<typeof progressOf> | undefined;
  let stops = 0;
  for (;;) {
    const c = control();
    const target = (resume?.shotsDone ?? 0) + 40;
    // Sets the stop flag once the run has published `target` shots done.
    const w = new Worker(
      'const { workerData: [c, target] } = require("node:worker_threads");' +
        'const nap = new Int32Array(new SharedArrayBuffer(4));' +
        'while (Atomics.load(c, 1) < target) Atomics.wait(nap, 0, 0, 1);' +
        'Atomics.store(c, 0, 3);',
      { eval: true, workerData: [c, target] },
    );
    await new Promise((r) => w.once('online', r));
    const out = run(p, shots, SEED, {
      shotOutcomesMax: 100,
      control: c,
      ...(resume ? { resume } : {}),
    });
    await w.terminate();
    if (out.stopped === 0) {
      assert.is(out.shotsDone, shots);
      assert.equal(out.counts, whole.counts);
      assert.equal(out.shotOutcomes, whole.shotOutcomes);
      break;
    }
    assert.is(out.stopped, 3);
    assert.ok(out.shotsDone >= (resume?.shotsDone ?? 0), 'shots done never go back');
    const total = Object.values(out.counts).reduce((x, y) => x + y, 0);
    assert.is(total, out.shotsDone, 'counts hold exactly the shots done');
    resume = progressOf(out);
    stops++;
  }
  assert.ok(stops >= 2, `the run was stopped ${stops} times`);
});

// The sampling decision and the work estimate.

test('samplingMode: each rule → its decision', () => {
  const cases: [string, Program, 'sampled' | 'per-shot'][] = [
    ['terminal Z reads', ghz(3), 'sampled'],
    [
      'a gate after a measurement',
      program(['q'], [mz('q', 'm'), gate('X', 'q')], ['m']),
      'per-shot',
    ],
    [
      'a guarded gate',
      program(['q', 'r'], [mz('q', 'm'), { ...gate('X', 'r'), guard: when('m', 1) }], ['m']),
      'per-shot',
    ],
    [
      'a guarded annotation only',
      program(['q'], [mz('q', 'm'), { id: 'f', op: 'FENCE_EPOCH', guard: when('m', 1) }], ['m']),
      'sampled',
    ],
    [
      'COND_PAULI with inputs',
      program(['q', 'r'], [mz('q', 'm'), cond('Z', 'r', ['m'])], ['m']),
      'per-shot',
    ],
    [
      'COND_PAULI without inputs',
      program(['q'], [cond('X', 'q', []), mz('q', 'm')], ['m']),
      'sampled',
    ],
    [
      'RESET on a fresh qubit',
      program(['q'], [{ op: 'RESET', vqs: ['q'] }, mz('q', 'm')], ['m']),
      'sampled',
    ],
    [
      'RESET after a gate',
      program(['q'], [gate('H', 'q'), { op: 'RESET', vqs: ['q'] }, mz('q', 'm')], ['m']),
      'per-shot',
    ],
    [
      'two measurements of one qubit',
      program(['q'], [mz('q', 'a'), mz('q', 'b')], ['a', 'b']),
      'per-shot',
    ],
    ['measure then FREE_LQ', program(['q'], [gate('H', 'q'), mz('q', 'm')], ['m']), 'sampled'],
  ];
  for (const [what, p, mode] of cases) assert.is(samplingMode(p), mode, what);
});

test('workEstimate: grows with shots and state size; Bell at 1000 shots is small', () => {
  const bell = ghz(2);
  const small = workEstimate(bell, 1000);
  assert.ok(small > 0 && small < 1 << 17, `Bell at 1000 shots: ${small}`);
  assert.ok(workEstimate(bell, 2000) > small);
  assert.ok(workEstimate(TELEPORT(), 2000) > workEstimate(TELEPORT(), 1000));
  assert.ok(workEstimate(ghz(12), 1000) > workEstimate(ghz(6), 1000));
});

test('workEstimate: a guard costs per term, so many deep guards are not taken for tiny work', () => {
  let deep: Json = when('m', 1);
  for (let i = 1; i < 16; i++) deep = { type: i % 2 ? 'and' : 'or', conditions: [deep] };
  const guarded = (guard: Json, n: number) =>
    program(
      ['q'],
      [mz('q', 'm'), ...Array.from({ length: n }, () => ({ ...gate('X', 'q'), guard }))],
      ['m'],
    );
  const flat = workEstimate(guarded(when('m', 1), 1000), 1);
  const nested = workEstimate(guarded(deep, 1000), 1);
  // 16 terms per guard instead of 1: the guards' share grows sixteenfold.
  assert.ok(nested - flat >= 1000 * 15 * 16, `flat ${flat}, nested ${nested}`);
  // 6,000 such nodes took ~6 ms to run: past the inline limit (2^17), so they run on the pool.
  assert.ok(workEstimate(guarded(deep, 6000), 1) > 1 << 17);
});

test('timing: Bell at 1000 shots after warm-up (printed, not asserted)', () => {
  const p = ghz(2);
  for (let i = 0; i < 50; i++) run(p, 1000, String(i));
  const out = timed('Bell 1000 shots sampled (warm)', () => run(p, 1000));
  timed('teleportation 1000 shots per-shot (warm)', () => run(TELEPORT(), 1000));
  expectDistribution(out, { '00': 0.5, '11': 0.5 });
});

test.run();
