/**
 * The engine conformance suite, shared by `conformance.test.ts` (every engine this machine can
 * load) and `conformance-js.test.ts` (the JavaScript engine alone, as when the addon is absent).
 * The oracle is the reference engine without fusion; each subject (an engine and a fusion width)
 * must give the same amplitudes to 1e-10 on seeded random circuits up to 16 qubits, and
 * measurement statistics within 5σ of their analytic values.
 */
import type { Test } from 'uvu';
import * as assert from 'uvu/assert';
import { GATE_SET, type GateName } from '../../src/kernel/gate-set.js';
import type { SimOp } from '../../src/kernel/ports.js';
import type { Program } from '../../src/kernel/program/ir.js';
import { parseQasm } from '../../src/kernel/program/qasm.js';
import { parseQvm } from '../../src/kernel/program/qvm.js';
import { type ClusterState, runBatch } from '../../src/sim/batch.js';
import { ghzQasm, mixedQasm, qftQasm, randomQasm, seededRandom } from '../../src/sim/circuits.js';
import { type Kernels, jsKernels } from '../../src/sim/kernels.js';
import { type EngineChoice, finalStates, runProgram } from '../../src/sim/program.js';

export const AMPLITUDE_TOL = 1e-10;
const ORACLE: EngineChoice = { kernels: jsKernels, fusion: 0 };

export function program(qasm: string): Program {
  const parsed = parseQasm(qasm);
  assert.equal(parsed.violations, []);
  return parsed.program!;
}

/** Largest |a − b| over all amplitudes of all groups (the groups must line up). */
export function maxDiff(p: Program, a: EngineChoice, b: EngineChoice): number {
  const x = finalStates(p, a);
  const y = finalStates(p, b);
  assert.is(x.length, y.length, 'same groups');
  let worst = 0;
  x.forEach((g, i) => {
    const h = y[i]!;
    assert.equal(g.qubits, h.qubits, 'same qubit order');
    assert.is(g.state.length, h.state.length);
    for (let j = 0; j < g.state.length; j++) {
      worst = Math.max(worst, Math.abs(g.state[j]! - h.state[j]!));
    }
  });
  return worst;
}

export function subjectName(s: EngineChoice): string {
  return `${s.kernels.name}${s.fusion === 0 ? ' unfused' : ` fused k=${s.fusion}`}`;
}

/** The subjects for an engine: unfused and every fusion width 1..5. */
export function subjectsFor(kernels: Kernels): EngineChoice[] {
  return [0, 1, 2, 3, 4, 5].map((fusion) => ({ kernels, fusion }));
}

/** Counts of a program at `shots` with a fixed seed. */
function counts(p: Program, shots: number, engine: EngineChoice): Record<string, number> {
  const out = runProgram({ program: p, shots, seed: '20261201', shotOutcomesMax: 0 }, engine);
  return out.counts;
}

/** Asserts each outcome's count is within 5σ of shots·p and no impossible outcome appears. */
function assertDistribution(
  got: Record<string, number>,
  want: Record<string, number>,
  shots: number,
) {
  for (const [key, c] of Object.entries(got)) {
    assert.ok((want[key] ?? 0) > 0, `outcome ${key} has probability 0 but was seen ${c} times`);
  }
  for (const [key, p] of Object.entries(want)) {
    const c = got[key] ?? 0;
    const sigma = Math.sqrt(shots * p * (1 - p));
    assert.ok(
      Math.abs(c - shots * p) <= 5 * sigma + 1e-9,
      `outcome ${key}: ${c} of ${shots}, expected ${(shots * p).toFixed(1)} ± ${(5 * sigma).toFixed(1)}`,
    );
  }
}

export function registerConformance(suite: Test, subjects: readonly EngineChoice[]): void {
  for (const s of subjects) {
    const name = subjectName(s);

    const isOracle = s.kernels === ORACLE.kernels && s.fusion === ORACLE.fusion;
    if (!isOracle) registerAmplitudes(suite, s, name);

    suite(
      `${name}: RY product state → counts match the analytic distribution (10,000 shots)`,
      () => {
        const thetas = [0.3, 1.1, 2.0];
        const qasm = [
          'OPENQASM 2.0;',
          'include "qelib1.inc";',
          'qreg q[3];',
          'creg c[3];',
          ...thetas.map((t, i) => `ry(${t}) q[${i}];`),
          'measure q -> c;',
        ].join('\n');
        const want: Record<string, number> = {};
        for (let v = 0; v < 8; v++) {
          // Key: c[2] leftmost, as OpenQASM prints a register.
          let p = 1;
          for (let i = 0; i < 3; i++) {
            const p1 = Math.sin(thetas[i]! / 2) ** 2;
            p *= (v >> i) & 1 ? p1 : 1 - p1;
          }
          want[v.toString(2).padStart(3, '0')] = p;
        }
        assertDistribution(counts(program(qasm), 10_000, s), want, 10_000);
      },
    );

    suite(
      `${name}: mid-circuit measurement (per-shot collapse) → 00 and 11 at 1/2, nothing else`,
      () => {
        const qasm = [
          'OPENQASM 2.0;',
          'include "qelib1.inc";',
          'qreg q[2];',
          'creg c[2];',
          'h q[0];',
          'measure q[0] -> c[0];',
          'cx q[0],q[1];',
          'measure q[1] -> c[1];',
        ].join('\n');
        assertDistribution(counts(program(qasm), 4_000, s), { '00': 0.5, '11': 0.5 }, 4_000);
      },
    );

    suite(`${name}: GHZ-12 sampled → only all-0 and all-1, each at 1/2`, () => {
      const want = { [`${'0'.repeat(12)}`]: 0.5, [`${'1'.repeat(12)}`]: 0.5 };
      assertDistribution(counts(program(ghzQasm(12)), 4_000, s), want, 4_000);
    });
  }
}

/** The amplitude comparisons against the reference (not registered for the reference itself). */
function registerAmplitudes(suite: Test, s: EngineChoice, name: string): void {
  suite(
    `${name}: seeded mixed-gate circuits on 1..16 qubits → amplitudes equal the reference`,
    () => {
      for (let n = 1; n <= 16; n++) {
        const gates = n <= 10 ? 120 : 60;
        for (const seed of n <= 10 ? [n, 100 + n] : [n]) {
          const p = program(mixedQasm(n, gates, seed));
          const d = maxDiff(p, s, ORACLE);
          assert.ok(d <= AMPLITUDE_TOL, `n=${n} seed=${seed}: max |Δ| = ${d}`);
        }
      }
    },
  );

  suite(`${name}: random layers, QFT and GHZ → amplitudes equal the reference`, () => {
    for (const [label, qasm] of [
      ['random 14q d10', randomQasm(14, 10, 7)],
      ['random 16q d4', randomQasm(16, 4, 8)],
      ['qft 12q on |5>', qftQasm(12, true, 5)],
      ['ghz 16q', ghzQasm(16)],
    ] as const) {
      const d = maxDiff(program(qasm), s, ORACLE);
      assert.ok(d <= AMPLITUDE_TOL, `${label}: max |Δ| = ${d}`);
    }
  });
}

/** The unitary gates of the interactive set (RESET measures; INJECT_T_STATE needs fresh qubits). */
const UNITARY_GATES = (Object.keys(GATE_SET) as GateName[]).filter(
  (g) => g !== 'RESET' && g !== 'INJECT_T_STATE',
);

/** A seeded random gate sequence on q0..q{n-1}, opened by a CNOT chain so all share one state. */
function randomGates(n: number, count: number, seed: number): SimOp[] {
  const rnd = seededRandom(seed);
  const ops: SimOp[] = [];
  for (let q = 1; q < n; q++)
    ops.push({ kind: 'gate', name: 'CNOT', qubits: [`q${q - 1}`, `q${q}`] });
  while (ops.length < count) {
    const name = UNITARY_GATES[Math.floor(rnd() * UNITARY_GATES.length)]!;
    const arity = GATE_SET[name].arity;
    if (arity > n) continue;
    const qubits: string[] = [];
    while (qubits.length < arity) {
      const q = `q${Math.floor(rnd() * n)}`;
      if (!qubits.includes(q)) qubits.push(q);
    }
    const op: SimOp = { kind: 'gate', name, qubits };
    if (GATE_SET[name].theta) op.theta = rnd() * 4 * Math.PI - 2 * Math.PI;
    ops.push(op);
  }
  return ops;
}

/** The same gates as a QVM program measured at the end, for the job path's `finalStates`. */
function asProgram(n: number, ops: readonly SimOp[]): Program {
  const vqs = Array.from({ length: n }, (_, q) => `q${q}`);
  const nodes: object[] = [{ op: 'ALLOC_LQ', args: { n }, vqs }];
  for (const op of ops) {
    if (op.kind !== 'gate') continue;
    nodes.push({ op: `APPLY_${op.name}`, vqs: op.qubits, args: { theta: op.theta ?? 0 } });
  }
  vqs.forEach((q, i) => nodes.push({ op: 'MEASURE_Z', vqs: [q], produces: [`m${i}`] }));
  const parsed = parseQvm({
    version: '0.1',
    program: { nodes: nodes.map((node, i) => ({ id: `n${i}`, ...node })) },
    resources: { vqs, events: vqs.map((_, i) => `m${i}`) },
  });
  assert.equal(parsed.violations, []);
  return parsed.program!;
}

function freshParts(n: number): ClusterState[] {
  return Array.from({ length: n }, (_, q) => ({
    qubits: [`q${q}`],
    state: Float64Array.of(1, 0, 0, 0),
  }));
}

const plainAlloc = (doubles: number): Float64Array => new Float64Array(doubles);

/**
 * The interactive path (`runBatch`) through an engine's kernels: the same amplitudes as the job
 * path (a program of the same gates, unfused reference), and the same outcomes and amplitudes as
 * the reference kernels for measurements in every basis with the same draws.
 */
export function registerInteractive(suite: Test, kernels: Kernels): void {
  suite(`${kernels.name}: interactive batches of random gates → the job path's amplitudes`, () => {
    for (let n = 1; n <= 12; n++) {
      const ops = randomGates(n, 10 * n, 500 + n);
      const got = runBatch({ parts: freshParts(n), ops, split: [] }, plainAlloc, kernels);
      const want = finalStates(asProgram(n, ops), ORACLE);
      assert.is(want.length, 1, 'one group');
      assert.equal(got.clusters[0]!.qubits, want[0]!.qubits);
      const a = got.clusters[0]!.state;
      const b = want[0]!.state;
      const d = a.reduce((w, x, i) => Math.max(w, Math.abs(x - b[i]!)), 0);
      assert.ok(d <= AMPLITUDE_TOL, `n=${n}: max |Δ| = ${d}`);
    }
  });

  if (kernels === jsKernels) return; // the reference against itself would prove nothing
  suite(
    `${kernels.name}: interactive measurements in every basis → the reference's outcomes`,
    () => {
      const rnd = seededRandom(31);
      for (let n = 2; n <= 8; n++) {
        const ops = randomGates(n, 6 * n, 900 + n);
        const bases = ['Z', 'X', 'Y', 'ANGLE'] as const;
        for (let q = 0; q < n; q++) {
          const basis = bases[q % 4]!;
          const m: SimOp = { kind: 'measure', qubit: `q${q}`, basis, random: rnd() };
          if (basis === 'ANGLE') m.angle = rnd() * Math.PI;
          ops.push(m);
        }
        ops.push({ kind: 'gate', name: 'RESET', qubits: ['q0'], random: rnd() });
        const split = Array.from({ length: n }, (_, q) => `q${q}`);
        const got = runBatch({ parts: freshParts(n), ops, split }, plainAlloc, kernels);
        const want = runBatch({ parts: freshParts(n), ops, split }, plainAlloc, jsKernels);
        assert.equal(got.outcomes, want.outcomes, `n=${n}: outcomes`);
        got.clusters.forEach((c, i) => {
          const w = want.clusters[i]!.state;
          const d = c.state.reduce((x, v, j) => Math.max(x, Math.abs(v - w[j]!)), 0);
          assert.ok(d <= AMPLITUDE_TOL, `n=${n} qubit ${c.qubits[0]}: max |Δ| = ${d}`);
        });
      }
    },
  );
}
