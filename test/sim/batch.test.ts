/**
 * runBatch, the one path from ops to amplitudes (worker and replay): merge order, every gate by
 * qubit id, measurement in all four bases (probabilities analytic, post-measurement eigenstates),
 * RESET, splitting and cluster order, in-place work on a single part, and bit-exact replay from
 * forced outcomes.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GATE_SET, type GateName } from '../../src/kernel/gate-set.js';
import type { SimOp } from '../../src/kernel/ports.js';
import {
  type BatchInput,
  type BatchOutput,
  type ClusterState,
  runBatch,
} from '../../src/sim/batch.js';
import { seededRandom } from '../../src/sim/circuits.js';
import { norm2 } from '../../src/sim/cluster-state.js';

/** The one gate table's columns, as the assertions below read them. */
const GATE_ARITY = Object.fromEntries(
  Object.entries(GATE_SET).map(([g, spec]) => [g, spec.arity]),
) as Record<GateName, number>;
const GATE_HAS_THETA = Object.fromEntries(
  Object.entries(GATE_SET).map(([g, spec]) => [g, spec.theta]),
) as Record<GateName, boolean>;

const TOL = 1e-12;
const R = Math.SQRT1_2;
const EPS = 1e-9;

const plainAlloc = (doubles: number): Float64Array => new Float64Array(doubles);

/** mulberry32, seeded: the same generator the benchmark circuits use, so failures reproduce. */
const prng = seededRandom;

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, msg = ''): void {
  assert.is(actual.length, expected.length, `${msg} length`);
  for (let i = 0; i < actual.length; i++) {
    if (!(Math.abs(actual[i]! - expected[i]!) <= TOL)) {
      assert.unreachable(`${msg} double ${i}: ${actual[i]} vs ${expected[i]}`);
    }
  }
}

/** Equal up to a global phase: |<expected|actual>| = 1 for unit vectors. */
function sameRay(actual: ArrayLike<number>, expected: ArrayLike<number>, msg = ''): void {
  assert.is(actual.length, expected.length, `${msg} length`);
  let re = 0;
  let im = 0;
  for (let i = 0; i < actual.length; i += 2) {
    re += expected[i]! * actual[i]! + expected[i + 1]! * actual[i + 1]!;
    im += expected[i]! * actual[i + 1]! - expected[i + 1]! * actual[i]!;
  }
  assert.ok(Math.abs(Math.hypot(re, im) - 1) < TOL, `${msg} overlap ${Math.hypot(re, im)}`);
}

const ZERO = [1, 0, 0, 0];
const ONE = [0, 0, 1, 0];
const PLUS = [R, 0, R, 0];

function part(id: string, amps: number[] = ZERO): ClusterState {
  return { qubits: [id], state: Float64Array.from(amps) };
}

function gate(name: GateName, qubits: string[], theta?: number): SimOp {
  const op: SimOp = { kind: 'gate', name, qubits };
  if (theta !== undefined) op.theta = theta;
  return op;
}

function measure(
  qubit: string,
  basis: 'Z' | 'X' | 'Y' | 'ANGLE',
  random: number,
  angle?: number,
): SimOp {
  const op: SimOp = { kind: 'measure', qubit, basis, random };
  if (angle !== undefined) op.angle = angle;
  return op;
}

function run(parts: ClusterState[], ops: SimOp[], split: string[] = []): BatchOutput {
  return runBatch({ parts, ops, split }, plainAlloc);
}

/** One qubit prepared by `ops`, then measured with `random`: outcome and post-measurement state. */
function measureOne(prep: SimOp[], m: SimOp): { outcome: 0 | 1; state: Float64Array } {
  const out = run([part('q')], [...prep, m]);
  assert.is(out.outcomes.length, 1);
  return { outcome: out.outcomes[0]!, state: out.clusters[0]!.state };
}

/** Checks outcome = (random < p1): just below p1 gives 1, just above gives 0. */
function assertP1(prep: SimOp[], mk: (random: number) => SimOp, p1: number, msg: string): void {
  if (p1 - EPS >= 0) assert.is(measureOne(prep, mk(p1 - EPS)).outcome, 1, `${msg} below p1`);
  if (p1 + EPS < 1) assert.is(measureOne(prep, mk(p1 + EPS)).outcome, 0, `${msg} above p1`);
}

function bytesOf(s: Float64Array): Buffer {
  return Buffer.from(s.buffer, s.byteOffset, s.byteLength);
}

test('runBatch: H(a), CNOT(a, b) over two parts → Bell state, qubits [a, b]', () => {
  const out = run([part('a'), part('b')], [gate('H', ['a']), gate('CNOT', ['a', 'b'])]);
  assert.is(out.clusters.length, 1);
  assert.equal(out.clusters[0]!.qubits, ['a', 'b']);
  close(out.clusters[0]!.state, [R, 0, 0, 0, 0, 0, R, 0]);
  assert.equal(out.outcomes, []);
});

test('runBatch: GHZ over three parts → (|000> + |111>)/√2', () => {
  const out = run(
    [part('x'), part('y'), part('z')],
    [gate('H', ['x']), gate('CNOT', ['x', 'y']), gate('CNOT', ['y', 'z'])],
  );
  const e = new Array(16).fill(0);
  e[0] = R;
  e[14] = R;
  assert.equal(out.clusters[0]!.qubits, ['x', 'y', 'z']);
  close(out.clusters[0]!.state, e);
});

test('runBatch: parts merged → parts[0] in the lowest bits', () => {
  // a = |1> (bit 0), b = |0> (bit 1): basis index 1.
  const out = run([part('a', ONE), part('b', ZERO)], []);
  assert.equal(out.clusters[0]!.qubits, ['a', 'b']);
  close(out.clusters[0]!.state, [0, 0, 1, 0, 0, 0, 0, 0]);
});

test('runBatch: CNOT operands → (control, target) by id, whatever the bit order', () => {
  // b (bit 1) is |1> and controls a (bit 0): result |11> = index 3.
  const out = run([part('a'), part('b', ONE)], [gate('CNOT', ['b', 'a'])]);
  close(out.clusters[0]!.state, [0, 0, 0, 0, 0, 0, 1, 0]);
  // a is |0> and controls b: nothing happens, index 2.
  const out2 = run([part('a'), part('b', ONE)], [gate('CNOT', ['a', 'b'])]);
  close(out2.clusters[0]!.state, [0, 0, 0, 0, 1, 0, 0, 0]);
});

test('runBatch: CZ, SWAP on basis and |+> inputs → hand-computed amplitudes', () => {
  const cz = run([part('a', PLUS), part('b', ONE)], [gate('CZ', ['b', 'a'])]);
  // |+>_a |1>_b → (|0>|1> − |1>|1>)/√2: index 2 gets R, index 3 gets −R.
  close(cz.clusters[0]!.state, [0, 0, 0, 0, R, 0, -R, 0]);
  const sw = run([part('a', ONE), part('b', ZERO)], [gate('SWAP', ['a', 'b'])]);
  close(sw.clusters[0]!.state, [0, 0, 0, 0, 1, 0, 0, 0]);
});

test('runBatch: TOFFOLI, all 8 inputs by id → target flips only when both controls are 1', () => {
  for (let i = 0; i < 8; i++) {
    const bits = [i & 1, (i >> 1) & 1, (i >> 2) & 1];
    const parts = ['c1', 'c2', 't'].map((id, k) => part(id, bits[k] ? ONE : ZERO));
    const out = run(parts, [gate('TOFFOLI', ['c1', 'c2', 't'])]);
    const t = bits[2]! ^ (bits[0]! & bits[1]!);
    const want = new Array(16).fill(0);
    want[2 * (bits[0]! | (bits[1]! << 1) | (t << 2))] = 1;
    close(out.clusters[0]!.state, want, `input ${bits.join('')}`);
  }
});

test('runBatch: INJECT_T_STATE on |0> → (|0> + e^{iπ/4}|1>)/√2', () => {
  const out = run([part('q')], [gate('INJECT_T_STATE', ['q'])]);
  close(out.clusters[0]!.state, [R, 0, 0.5, 0.5]);
});

test('runBatch: rotations by id → RX, RY, RZ amplitudes at θ = π/3', () => {
  const c = Math.sqrt(3) / 2;
  close(run([part('q')], [gate('RX', ['q'], Math.PI / 3)]).clusters[0]!.state, [c, 0, 0, -0.5]);
  close(run([part('q')], [gate('RY', ['q'], Math.PI / 3)]).clusters[0]!.state, [c, 0, 0.5, 0]);
  close(run([part('q')], [gate('RZ', ['q'], Math.PI / 3)]).clusters[0]!.state, [c, -0.5, 0, 0]);
});

test('measure Z: RX(θ)|0> and RY(θ)|0> → P(1) = sin²(θ/2)', () => {
  for (const theta of [0.2, Math.PI / 3, 1.3, Math.PI / 2, 2.9]) {
    const p1 = Math.sin(theta / 2) ** 2;
    for (const g of ['RX', 'RY'] as const) {
      assertP1([gate(g, ['q'], theta)], (r) => measure('q', 'Z', r), p1, `${g}(${theta})`);
    }
  }
});

test('measure Z: outcome 1 → state collapsed to |1>', () => {
  const { outcome, state } = measureOne([gate('RY', ['q'], 1)], measure('q', 'Z', 0));
  assert.is(outcome, 1);
  close(state, ONE);
});

test('measure X: H|0> → outcome 0 with probability 1, state stays |+>', () => {
  for (const r of [0, 0.5, 0.999999]) {
    const { outcome, state } = measureOne([gate('H', ['q'])], measure('q', 'X', r));
    assert.is(outcome, 0);
    close(state, PLUS);
  }
});

test('measure X: |0> → P(1) = 1/2; outcome 1 leaves |->', () => {
  assertP1([], (r) => measure('q', 'X', r), 0.5, 'X on |0>');
  const { outcome, state } = measureOne([], measure('q', 'X', 0.1));
  assert.is(outcome, 1);
  close(state, [R, 0, -R, 0]);
});

test('measure Y: H|0> → P(1) = 1/2; outcomes leave |+i> and |−i>', () => {
  assertP1([gate('H', ['q'])], (r) => measure('q', 'Y', r), 0.5, 'Y on |+>');
  const zero = measureOne([gate('H', ['q'])], measure('q', 'Y', 0.9));
  assert.is(zero.outcome, 0);
  // The collapse keeps the amplitude's phase, so the eigenstate comes with a global phase.
  sameRay(zero.state, [R, 0, 0, R]);
  const one = measureOne([gate('H', ['q'])], measure('q', 'Y', 0.1));
  assert.is(one.outcome, 1);
  sameRay(one.state, [R, 0, 0, -R]);
});

test('measure Y: S·H|0> = |+i> → outcome 0 with probability 1', () => {
  const { outcome, state } = measureOne(
    [gate('H', ['q']), gate('S', ['q'])],
    measure('q', 'Y', 0.999999),
  );
  assert.is(outcome, 0);
  close(state, [R, 0, 0, R]);
});

test('measure ANGLE a: |+> → P(0) = (1 + sin a)/2', () => {
  for (const a of [0, 0.4, Math.PI / 6, 1, -0.8, 2.2, -2.7]) {
    const p1 = 1 - (1 + Math.sin(a)) / 2;
    assertP1([gate('H', ['q'])], (r) => measure('q', 'ANGLE', r, a), p1, `a=${a}`);
  }
});

test('measure ANGLE a: outcomes → RY(a)|0> and RY(a)|1>', () => {
  const a = 0.9;
  const c = Math.cos(a / 2);
  const s = Math.sin(a / 2);
  const zero = measureOne([gate('H', ['q'])], measure('q', 'ANGLE', 0.999, a));
  assert.is(zero.outcome, 0);
  close(zero.state, [c, 0, s, 0]);
  const one = measureOne([gate('H', ['q'])], measure('q', 'ANGLE', 0, a));
  assert.is(one.outcome, 1);
  close(one.state, [-s, 0, c, 0]);
});

test('measure ANGLE: a = 0 → same as Z; a = π/2 → same as X', () => {
  const prep = [gate('RY', ['q'], 1.1)];
  const p1z = Math.sin(0.55) ** 2;
  assertP1(prep, (r) => measure('q', 'ANGLE', r, 0), p1z, 'ANGLE 0');
  // RY(1.1)|0> along X: P(1) = (1 − sin 1.1)/2.
  assertP1(prep, (r) => measure('q', 'ANGLE', r, Math.PI / 2), (1 - Math.sin(1.1)) / 2, 'π/2');
  assertP1(prep, (r) => measure('q', 'X', r), (1 - Math.sin(1.1)) / 2, 'X');
});

test('RESET: |1>, |+> and half of a Bell pair → |0>, outcome recorded', () => {
  const fromOne = run([part('q', ONE)], [{ ...gate('RESET', ['q']), random: 0.5 }]);
  close(fromOne.clusters[0]!.state, ZERO);
  assert.equal(fromOne.outcomes, [1]);
  for (const [random, outcome] of [
    [0.9, 0],
    [0.1, 1],
  ] as const) {
    const op: SimOp = { kind: 'gate', name: 'RESET', qubits: ['q'], random };
    const out = run([part('q', PLUS)], [op]);
    close(out.clusters[0]!.state, ZERO);
    assert.equal(out.outcomes, [outcome]);
  }
  const bell = run(
    [part('a'), part('b')],
    [gate('H', ['a']), gate('CNOT', ['a', 'b']), { ...gate('RESET', ['a']), random: 0.2 }],
    ['a'],
  );
  assert.equal(bell.outcomes, [1]);
  assert.equal(
    bell.clusters.map((c) => c.qubits),
    [['b'], ['a']],
  );
  close(bell.clusters[0]!.state, ONE, 'partner collapsed to |1>');
  close(bell.clusters[1]!.state, ZERO, 'reset qubit is |0>');
});

test('RESET in a batch with measurements → outcomes in op order', () => {
  const out = run(
    [part('a', ONE), part('b', ZERO)],
    [measure('b', 'Z', 0.5), { ...gate('RESET', ['a']), random: 0.5 }, measure('a', 'Z', 0.5)],
  );
  assert.equal(out.outcomes, [0, 1, 0]);
});

test('runBatch: merge two parts + CNOT + measure + split → rest first, then split qubit', () => {
  const out = run(
    [part('a', PLUS), part('b')],
    [gate('CNOT', ['a', 'b']), measure('a', 'Z', 0.3)],
    ['a'],
  );
  assert.equal(out.outcomes, [1]);
  assert.is(out.clusters.length, 2);
  assert.equal(out.clusters[0]!.qubits, ['b']);
  assert.equal(out.clusters[1]!.qubits, ['a']);
  close(out.clusters[0]!.state, ONE);
  close(out.clusters[1]!.state, ONE);
});

test('runBatch: every qubit split → no rest cluster, clusters in split order', () => {
  const out = run(
    [part('a', PLUS), part('b')],
    [gate('CNOT', ['a', 'b']), measure('a', 'Z', 0.7), measure('b', 'X', 0.2)],
    ['b', 'a'],
  );
  assert.equal(out.outcomes, [0, 1]);
  assert.equal(
    out.clusters.map((c) => c.qubits),
    [['b'], ['a']],
  );
  close(out.clusters[0]!.state, [R, 0, -R, 0], 'b is |->');
  close(out.clusters[1]!.state, ZERO, 'a is |0>');
});

test('runBatch: split of a middle qubit from three parts → rest keeps relative order', () => {
  const out = run(
    [part('x', PLUS), part('y', ONE), part('z')],
    [gate('CNOT', ['x', 'z']), gate('H', ['y']), measure('y', 'X', 0.4)],
    ['y'],
  );
  assert.equal(out.outcomes, [1]);
  assert.equal(
    out.clusters.map((c) => c.qubits),
    [['x', 'z'], ['y']],
  );
  close(out.clusters[0]!.state, [R, 0, 0, 0, 0, 0, R, 0], 'x, z Bell pair');
  // H|1> = |->, measured in X → 1, stays |->.
  close(out.clusters[1]!.state, [R, 0, -R, 0], 'y is |->');
});

test('runBatch: single part, no split → works in place on the given array', () => {
  const input = Float64Array.of(1, 0, 0, 0, 0, 0, 0, 0);
  const p: ClusterState = { qubits: ['a', 'b'], state: input };
  let allocated = 0;
  const out = runBatch(
    { parts: [p], ops: [gate('H', ['a']), gate('CNOT', ['a', 'b'])], split: [] },
    (d) => {
      allocated += d;
      return new Float64Array(d);
    },
  );
  assert.is(out.clusters[0]!.state, input);
  assert.is(allocated, 0);
  close(input, [R, 0, 0, 0, 0, 0, R, 0]);
});

test('runBatch: single part with split → rest and qubit in fresh alloc’d arrays', () => {
  const sizes: number[] = [];
  const made: Float64Array[] = [];
  // a = 1, b = 1, c = 0: basis index 3.
  const input = Float64Array.of(0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  const out = runBatch(
    { parts: [{ qubits: ['a', 'b', 'c'], state: input }], ops: [], split: ['b'] },
    (d) => {
      sizes.push(d);
      const a = new Float64Array(d);
      made.push(a);
      return a;
    },
  );
  assert.equal(sizes, [4, 8]);
  assert.equal(
    out.clusters.map((c) => c.qubits),
    [['a', 'c'], ['b']],
  );
  assert.ok(out.clusters.every((c) => made.includes(c.state)));
  close(out.clusters[0]!.state, [0, 0, 1, 0, 0, 0, 0, 0], 'a = 1, c = 0');
  close(out.clusters[1]!.state, ONE);
});

test('runBatch: SharedArrayBuffer allocator → results live in shared memory', () => {
  const shared = (d: number): Float64Array => new Float64Array(new SharedArrayBuffer(d * 8));
  const out = runBatch(
    {
      parts: [part('a'), part('b')],
      ops: [gate('H', ['a']), measure('a', 'Z', 0.9)],
      split: ['a'],
    },
    shared,
  );
  for (const c of out.clusters) assert.ok(c.state.buffer instanceof SharedArrayBuffer);
});

/** A random circuit over `ids` using every gate kind, measurements in every basis and RESET. */
function randomOps(ids: string[], count: number, rnd: () => number, withMeasure: boolean): SimOp[] {
  const names = (Object.keys(GATE_ARITY) as GateName[]).filter(
    (g) => g !== 'INJECT_T_STATE' && (withMeasure || g !== 'RESET'),
  );
  const ops: SimOp[] = [];
  for (let i = 0; i < count; i++) {
    if (withMeasure && i % 7 === 6) {
      const bases = ['Z', 'X', 'Y', 'ANGLE'] as const;
      const basis = bases[Math.floor(rnd() * 4)]!;
      const qubit = ids[Math.floor(rnd() * ids.length)]!;
      const angle = basis === 'ANGLE' ? rnd() * 6 - 3 : undefined;
      ops.push(measure(qubit, basis, rnd(), angle));
      continue;
    }
    const name = names[Math.floor(rnd() * names.length)]!;
    const qs: string[] = [];
    while (qs.length < GATE_ARITY[name]) {
      const q = ids[Math.floor(rnd() * ids.length)]!;
      if (!qs.includes(q)) qs.push(q);
    }
    const op: SimOp = { kind: 'gate', name, qubits: qs };
    if (GATE_HAS_THETA[name]) op.theta = rnd() * 4 * Math.PI - 2 * Math.PI;
    if (name === 'RESET') op.random = rnd();
    ops.push(op);
  }
  return ops;
}

test('unitarity: random 10-qubit circuit of every gate over 10 parts → norm stays 1', () => {
  const rnd = prng(21);
  const ids = Array.from({ length: 10 }, (_, i) => `q${i}`);
  const parts = ids.map((id) => part(id, [rnd() < 0.5 ? 1 : R, 0, 0, rnd() < 0.5 ? 0 : R]));
  parts.forEach((p) => {
    const k = 1 / Math.sqrt(norm2(p.state));
    for (let i = 0; i < 4; i++) p.state[i] = p.state[i]! * k;
  });
  const out = run(parts, randomOps(ids, 500, rnd, false));
  assert.is(out.clusters[0]!.state.length, 2 << 10);
  assert.ok(
    Math.abs(norm2(out.clusters[0]!.state) - 1) < TOL,
    `norm² ${norm2(out.clusters[0]!.state)}`,
  );
});

test('replay: forced outcomes from a random run → bit-identical clusters', () => {
  const rnd = prng(22);
  const ids = ['a', 'b', 'c', 'd', 'e', 'f'];
  for (let round = 0; round < 5; round++) {
    // Measuring c and a last puts them in product states, as the kernel guarantees before a split.
    const ops = [
      ...randomOps(ids, 120, rnd, true),
      measure('c', 'Y', rnd()),
      measure('a', 'ANGLE', rnd(), 0.3),
    ];
    const fresh = (): BatchInput => ({
      parts: [part('a'), part('b'), part('c'), part('d'), part('e'), part('f')],
      ops,
      split: ['c', 'a'],
    });
    const live = runBatch(fresh(), plainAlloc);
    let k = 0;
    const forcedOps: SimOp[] = ops.map((op) => {
      const isMeasure = op.kind === 'measure' || op.name === 'RESET';
      if (!isMeasure) return op;
      const { random: _dropped, ...rest } = op;
      return { ...rest, forced: live.outcomes[k++]! } as SimOp;
    });
    assert.is(k, live.outcomes.length, 'one outcome per measurement and RESET');
    const replay = runBatch({ ...fresh(), ops: forcedOps }, plainAlloc);
    const again = runBatch(fresh(), plainAlloc);
    assert.equal(replay.outcomes, live.outcomes);
    for (const other of [replay, again]) {
      assert.equal(
        other.clusters.map((c) => c.qubits),
        live.clusters.map((c) => c.qubits),
      );
      other.clusters.forEach((c, i) => {
        assert.ok(bytesOf(c.state).equals(bytesOf(live.clusters[i]!.state)), `cluster ${i}`);
      });
    }
    assert.equal(
      live.clusters.map((c) => c.qubits),
      [['b', 'd', 'e', 'f'], ['c'], ['a']],
    );
  }
});

test('measure: forced outcome overrides random', () => {
  const op: SimOp = { kind: 'measure', qubit: 'q', basis: 'X', random: 0.99, forced: 1 };
  const out = run([part('q')], [op]);
  assert.equal(out.outcomes, [1]);
  close(out.clusters[0]!.state, [R, 0, -R, 0]);
});

test('measure: forced outcome of probability 0 → assertion (replay mismatch)', () => {
  const op: SimOp = { kind: 'measure', qubit: 'q', basis: 'Z', forced: 1 };
  assert.throws(() => run([part('q')], [op]));
});

test('measure: neither random nor forced, or random outside [0, 1) → assertion', () => {
  assert.throws(() => run([part('q')], [{ kind: 'measure', qubit: 'q', basis: 'Z' }]));
  assert.throws(() => run([part('q')], [measure('q', 'Z', 1)]));
  assert.throws(() => run([part('q')], [measure('q', 'Z', -0.1)]));
  assert.throws(() => run([part('q')], [{ kind: 'gate', name: 'RESET', qubits: ['q'] }]));
});

test('runBatch: programmer errors → assertion', () => {
  // ANGLE without an angle; rotation without theta; unknown qubit; bad split; wrong arity.
  assert.throws(() =>
    run([part('q')], [{ kind: 'measure', qubit: 'q', basis: 'ANGLE', random: 0 }]),
  );
  assert.throws(() => run([part('q')], [gate('RX', ['q'])]));
  assert.throws(() => run([part('q')], [gate('H', ['z'])]));
  assert.throws(() => run([part('a'), part('b')], [], ['z']));
  assert.throws(() => run([part('a'), part('b')], [], ['a', 'a']));
  assert.throws(() => run([part('a'), part('b')], [gate('CNOT', ['a'])]));
  assert.throws(() => run([part('a'), part('b')], [gate('CNOT', ['a', 'a'])]));
  assert.throws(() => run([part('a'), part('a')], []));
  assert.throws(() => run([], []));
});

test.run();
