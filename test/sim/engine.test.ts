/**
 * Gate routines of the reference engine against independent definitions: hand-computed amplitudes
 * for small cases, and a dense 2^n × 2^n matrix built from each routine's definition for random
 * states. The seeded PRNG keeps every run identical.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { seededRandom } from '../../src/sim/circuits.js';
import {
  kron,
  kronInto,
  norm2,
  splitOutQubit,
  splitOutQubitInto,
} from '../../src/sim/cluster-state.js';
import {
  ENGINE_QUBITS_MAX,
  applyCnot,
  applyCz,
  applyDiagonal1,
  applyMatrix1,
  applySwap,
  applyToffoli,
  applyX,
  branchWeightsInto,
  zeroState,
} from '../../src/sim/engine.js';
import { jsKernels } from '../../src/sim/kernels.js';
import { measureZ } from '../../src/sim/ops.js';

const TOL = 1e-12;
const R = Math.SQRT1_2;
const H = Float64Array.of(R, 0, R, 0, R, 0, -R, 0);

/** mulberry32, seeded: the same generator the benchmark circuits use, so failures reproduce. */
const prng = seededRandom;

function randomState(n: number, rnd: () => number): Float64Array {
  const s = new Float64Array(2 << n);
  for (let i = 0; i < s.length; i++) s[i] = rnd() * 2 - 1;
  const k = 1 / Math.sqrt(norm2(s));
  for (let i = 0; i < s.length; i++) s[i] = s[i]! * k;
  return s;
}

function randomMatrix(rnd: () => number): Float64Array {
  return Float64Array.from({ length: 8 }, () => rnd() * 2 - 1);
}

function basis(n: number, index: number): Float64Array {
  const s = new Float64Array(2 << n);
  s[2 * index] = 1;
  return s;
}

function close(actual: Float64Array, expected: ArrayLike<number>, msg = ''): void {
  assert.is(actual.length, expected.length, `${msg} length`);
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    if (!(d <= TOL)) {
      assert.unreachable(`${msg} double ${i}: ${actual[i]} vs ${expected[i]}`);
    }
  }
}

type Entry = (row: number, col: number) => [number, number];

/** out = M·s with M given entry by entry (O(4^n); n ≤ 6 here). */
function dense(s: Float64Array, n: number, m: Entry): Float64Array {
  const dim = 1 << n;
  const out = new Float64Array(2 << n);
  for (let r = 0; r < dim; r++) {
    let re = 0;
    let im = 0;
    for (let c = 0; c < dim; c++) {
      const [mr, mi] = m(r, c);
      if (mr === 0 && mi === 0) continue;
      re += mr * s[2 * c]! - mi * s[2 * c + 1]!;
      im += mr * s[2 * c + 1]! + mi * s[2 * c]!;
    }
    out[2 * r] = re;
    out[2 * r + 1] = im;
  }
  return out;
}

/** Entry (r, c) of m acting on qubit q, identity elsewhere, applied where `active(c)`. */
function oneQubitEntry(m: Float64Array, q: number, active: (c: number) => boolean): Entry {
  const bit = 1 << q;
  return (r, c) => {
    if (!active(c)) return r === c ? [1, 0] : [0, 0];
    if ((r & ~bit) !== (c & ~bit)) return [0, 0];
    const k = 2 * (2 * ((r >> q) & 1) + ((c >> q) & 1));
    return [m[k]!, m[k + 1]!];
  };
}

function permutationEntry(perm: (c: number) => number): Entry {
  return (r, c) => (r === perm(c) ? [1, 0] : [0, 0]);
}

const flip = (i: number, q: number): number => i ^ (1 << q);
const has = (i: number, q: number): boolean => ((i >> q) & 1) === 1;

test('zeroState: n = 3 → amplitude 1 at index 0, all else 0', () => {
  const s = zeroState(3);
  assert.is(s.length, 16);
  close(s, [1, ...new Array(15).fill(0)]);
});

test('zeroState: n = 0 → the scalar 1', () => {
  close(zeroState(0), [1, 0]);
});

test('zeroState: ENGINE_QUBITS_MAX + 1 or a negative count → assertion', () => {
  assert.throws(() => zeroState(ENGINE_QUBITS_MAX + 1));
  assert.throws(() => zeroState(-1));
});

test('applyMatrix1: H on qubit 1 of |000> → (|000> + |010>)/√2', () => {
  const s = zeroState(3);
  applyMatrix1(s, 3, 1, H);
  const e = new Float64Array(16);
  e[0] = R;
  e[4] = R;
  close(s, e);
});

test('applyMatrix1: random matrix on every qubit of random 5-qubit states → dense result', () => {
  const rnd = prng(1);
  for (let q = 0; q < 5; q++) {
    const s = randomState(5, rnd);
    const m = randomMatrix(rnd);
    const want = dense(
      s,
      5,
      oneQubitEntry(m, q, () => true),
    );
    applyMatrix1(s, 5, q, m);
    close(s, want, `q=${q}`);
  }
});

test('applyDiagonal1: random phases on every qubit of random 4-qubit states → dense result', () => {
  const rnd = prng(3);
  for (let q = 0; q < 4; q++) {
    const s = randomState(4, rnd);
    const d = randomMatrix(rnd);
    const m = Float64Array.of(d[0]!, d[1]!, 0, 0, 0, 0, d[2]!, d[3]!);
    const want = dense(
      s,
      4,
      oneQubitEntry(m, q, () => true),
    );
    applyDiagonal1(s, 4, q, d);
    close(s, want, `q=${q}`);
  }
});

test('applyDiagonal1: d0 = 1 (skipped half) → same as the full product', () => {
  const rnd = prng(4);
  const s = randomState(3, rnd);
  const want = dense(
    s,
    3,
    oneQubitEntry(Float64Array.of(1, 0, 0, 0, 0, 0, R, R), 2, () => true),
  );
  applyDiagonal1(s, 3, 2, [1, 0, R, R]);
  close(s, want);
});

test('applyX: every qubit of random 4-qubit states → dense permutation result', () => {
  const rnd = prng(5);
  for (let q = 0; q < 4; q++) {
    const s = randomState(4, rnd);
    const want = dense(
      s,
      4,
      permutationEntry((c) => flip(c, q)),
    );
    applyX(s, 4, q);
    close(s, want, `q=${q}`);
  }
});

test('applyCnot: every ordered pair on random 4-qubit states → dense permutation result', () => {
  const rnd = prng(6);
  for (let c = 0; c < 4; c++) {
    for (let t = 0; t < 4; t++) {
      if (c === t) continue;
      const s = randomState(4, rnd);
      const want = dense(
        s,
        4,
        permutationEntry((i) => (has(i, c) ? flip(i, t) : i)),
      );
      applyCnot(s, 4, c, t);
      close(s, want, `c=${c} t=${t}`);
    }
  }
});

test('applyCnot: truth table on (control 0, target 1) → |c, t ⊕ c>', () => {
  // index = c | t << 1
  const expected = [0, 3, 2, 1];
  for (let i = 0; i < 4; i++) {
    const s = basis(2, i);
    applyCnot(s, 2, 0, 1);
    close(s, basis(2, expected[i]!), `input ${i}`);
  }
});

test('applySwap: every pair on random 4-qubit states → dense permutation result', () => {
  const rnd = prng(7);
  for (let a = 0; a < 4; a++) {
    for (let b = 0; b < 4; b++) {
      if (a === b) continue;
      const s = randomState(4, rnd);
      const swapBits = (i: number): number => (has(i, a) === has(i, b) ? i : flip(flip(i, a), b));
      const want = dense(s, 4, permutationEntry(swapBits));
      applySwap(s, 4, a, b);
      close(s, want, `a=${a} b=${b}`);
    }
  }
});

test('applyToffoli: every operand triple, random 4-qubit states → dense result', () => {
  const rnd = prng(8);
  for (let c1 = 0; c1 < 4; c1++) {
    for (let c2 = 0; c2 < 4; c2++) {
      for (let t = 0; t < 4; t++) {
        if (c1 === c2 || c1 === t || c2 === t) continue;
        const s = randomState(4, rnd);
        const want = dense(
          s,
          4,
          permutationEntry((i) => (has(i, c1) && has(i, c2) ? flip(i, t) : i)),
        );
        applyToffoli(s, 4, c1, c2, t);
        close(s, want, `c1=${c1} c2=${c2} t=${t}`);
      }
    }
  }
});

test('applyToffoli: truth table, all 8 inputs → target flips only on |11x>', () => {
  // Controls are qubits 0 and 1, target qubit 2: index = c1 | c2 << 1 | t << 2.
  for (let c1 = 0; c1 < 2; c1++) {
    for (let c2 = 0; c2 < 2; c2++) {
      for (let t = 0; t < 2; t++) {
        const s = basis(3, c1 | (c2 << 1) | (t << 2));
        applyToffoli(s, 3, 0, 1, 2);
        const tOut = t ^ (c1 & c2);
        close(s, basis(3, c1 | (c2 << 1) | (tOut << 2)), `input ${c1}${c2}${t}`);
      }
    }
  }
});

test('applyCz: every pair on random 4-qubit states → dense diagonal result', () => {
  const rnd = prng(9);
  for (let a = 0; a < 4; a++) {
    for (let b = 0; b < 4; b++) {
      if (a === b) continue;
      const s = randomState(4, rnd);
      const want = dense(s, 4, (r, c) => {
        if (r !== c) return [0, 0];
        return has(c, a) && has(c, b) ? [-1, 0] : [1, 0];
      });
      applyCz(s, 4, a, b);
      close(s, want, `a=${a} b=${b}`);
    }
  }
});

test('gate routines: equal or out-of-range operands → assertion', () => {
  assert.throws(() => applyCnot(zeroState(2), 2, 1, 1));
  assert.throws(() => applySwap(zeroState(2), 2, 0, 2));
  assert.throws(() => applyToffoli(zeroState(3), 3, 0, 0, 1));
  assert.throws(() => applyCz(zeroState(2), 2, 0, 0));
  assert.throws(() => applyX(zeroState(2), 2, 2));
  assert.throws(() => applyMatrix1(zeroState(2), 2, -1, H));
  assert.throws(() => applyMatrix1(new Float64Array(6), 2, 0, H));
});

test('Bell: H(0) then CNOT(0, 1) on |00> → (|00> + |11>)/√2', () => {
  const s = zeroState(2);
  applyMatrix1(s, 2, 0, H);
  applyCnot(s, 2, 0, 1);
  close(s, [R, 0, 0, 0, 0, 0, R, 0]);
});

test('GHZ: H(0), CNOT(0, 1), CNOT(1, 2) on |000> → (|000> + |111>)/√2', () => {
  const s = zeroState(3);
  applyMatrix1(s, 3, 0, H);
  applyCnot(s, 3, 0, 1);
  applyCnot(s, 3, 1, 2);
  const e = new Float64Array(16);
  e[0] = R;
  e[14] = R;
  close(s, e);
});

/** P(q = 1) from the engine's branch weights (unnormalised [P0, P1]). */
function probabilityOne(s: Float64Array, n: number, q: number): number {
  const w = new Float64Array(2);
  branchWeightsInto(s, n, q, w);
  return w[1]!;
}

/** Collapses onto a forced outcome through the one measurement routine (`ops.ts`). */
function collapse(s: Float64Array, n: number, q: number, outcome: 0 | 1): void {
  measureZ(jsKernels, s, n, q, 0, outcome);
}

test('branchWeightsInto: RX(θ)|0> and RY(θ)|0> → P(1) = sin²(θ/2)', () => {
  for (const theta of [0, 0.3, Math.PI / 3, 1, Math.PI / 2, 2.5, Math.PI, -1.2]) {
    const c = Math.cos(theta / 2);
    const sn = Math.sin(theta / 2);
    const rx = zeroState(2);
    applyMatrix1(rx, 2, 1, Float64Array.of(c, 0, 0, -sn, 0, -sn, c, 0));
    assert.ok(Math.abs(probabilityOne(rx, 2, 1) - sn * sn) < TOL, `RX θ=${theta}`);
    assert.ok(Math.abs(probabilityOne(rx, 2, 0)) < TOL, 'untouched qubit stays 0');
    const ry = zeroState(1);
    applyMatrix1(ry, 1, 0, Float64Array.of(c, 0, -sn, 0, sn, 0, c, 0));
    assert.ok(Math.abs(probabilityOne(ry, 1, 0) - sn * sn) < TOL, `RY θ=${theta}`);
  }
});

test('measureZ forced: Bell pair, qubit 0 onto 1 → |11>; onto 0 → |00>', () => {
  const bell = (): Float64Array => Float64Array.of(R, 0, 0, 0, 0, 0, R, 0);
  const one = bell();
  collapse(one, 2, 0, 1);
  close(one, basis(2, 3));
  const zero = bell();
  collapse(zero, 2, 0, 0);
  close(zero, basis(2, 0));
});

test('measureZ forced: unnormalised kept half → renormalised to 1 by its own weight', () => {
  const s = Float64Array.of(0.6, 0, 0, 0.8);
  collapse(s, 1, 0, 1);
  close(s, [0, 0, 0, 1]);
});

test('measureZ forced: outcome with probability 0 → assertion', () => {
  assert.throws(() => collapse(zeroState(2), 2, 1, 1));
});

test('kron: low ⊗ high → index iLow | iHigh << nLow', () => {
  const low = Float64Array.of(0.6, 0, 0, 0.8); // 0.6|0> + 0.8i|1>
  const high = Float64Array.of(0, 0, 1, 0, 0, 0, 0, 0); // two qubits, basis index 1
  const s = kron(low, 1, high, 2);
  const e = new Float64Array(16);
  e[2 * (0 | (1 << 1))] = 0.6;
  e[2 * (1 | (1 << 1)) + 1] = 0.8;
  close(s, e);
});

test('kron: random states → entry (l, h) = low[l]·high[h]', () => {
  const rnd = prng(10);
  const low = randomState(2, rnd);
  const high = randomState(3, rnd);
  const s = kron(low, 2, high, 3);
  for (let l = 0; l < 4; l++) {
    for (let h = 0; h < 8; h++) {
      const i = l | (h << 2);
      const re = low[2 * l]! * high[2 * h]! - low[2 * l + 1]! * high[2 * h + 1]!;
      const im = low[2 * l]! * high[2 * h + 1]! + low[2 * l + 1]! * high[2 * h]!;
      assert.ok(Math.abs(s[2 * i]! - re) < TOL && Math.abs(s[2 * i + 1]! - im) < TOL);
    }
  }
});

test('kronInto: in-place product → bit-identical to kron', () => {
  const rnd = prng(11);
  const low = randomState(3, rnd);
  const high = randomState(2, rnd);
  const buf = new Float64Array(2 << 5);
  buf.set(low);
  kronInto(buf, 3, high, 2);
  assert.equal(Array.from(buf), Array.from(kron(low, 3, high, 2)));
});

test('splitOutQubit: A ⊗ c ⊗ B split at c → c·rest reproduces the state, rest ∝ A ⊗ B', () => {
  const rnd = prng(12);
  for (let q = 0; q <= 4; q++) {
    const a = randomState(q, rnd);
    const b = randomState(4 - q, rnd);
    const c = randomState(1, rnd);
    const s = kron(kron(a, q, c, 1), q + 1, b, 4 - q);
    const { qubit, rest } = splitOutQubit(s, 5, q);
    assert.ok(Math.abs(norm2(qubit) - 1) < TOL, 'qubit factor has unit norm');
    assert.ok(Math.abs(norm2(rest) - 1) < TOL, 'rest has unit norm');
    // Reinserting the factor at position q gives back the original state.
    const back = new Float64Array(2 << 5);
    for (let r = 0; r < 16; r++) {
      for (let bit = 0; bit < 2; bit++) {
        const i = (r & ((1 << q) - 1)) | (bit << q) | ((r >> q) << (q + 1));
        const xr = rest[2 * r]!;
        const xi = rest[2 * r + 1]!;
        const cr = qubit[2 * bit]!;
        const ci = qubit[2 * bit + 1]!;
        back[2 * i] = cr * xr - ci * xi;
        back[2 * i + 1] = cr * xi + ci * xr;
      }
    }
    close(back, s, `q=${q}`);
    // |<A ⊗ B | rest>| = 1: the rest is A ⊗ B up to a global phase.
    const ab = kron(a, q, b, 4 - q);
    let ovr = 0;
    let ovi = 0;
    for (let i = 0; i < 16; i++) {
      ovr += ab[2 * i]! * rest[2 * i]! + ab[2 * i + 1]! * rest[2 * i + 1]!;
      ovi += ab[2 * i]! * rest[2 * i + 1]! - ab[2 * i + 1]! * rest[2 * i]!;
    }
    assert.ok(Math.abs(Math.hypot(ovr, ovi) - 1) < TOL, `overlap q=${q}`);
  }
});

test('splitOutQubit: basis-state qubit → qubit factor exactly that basis state', () => {
  const s = kron(Float64Array.of(R, 0, R, 0), 1, Float64Array.of(0, 0, 1, 0), 1);
  const { qubit, rest } = splitOutQubit(s, 2, 1);
  close(qubit, [0, 0, 1, 0]);
  close(rest, [R, 0, R, 0]);
});

test('splitOutQubitInto: rest written over the input → equal to splitOutQubit', () => {
  const rnd = prng(13);
  const s = kron(kron(randomState(2, rnd), 2, randomState(1, rnd), 1), 3, randomState(2, rnd), 2);
  const want = splitOutQubit(s, 5, 2);
  const qubit = new Float64Array(4);
  splitOutQubitInto(s, 5, 2, qubit, s);
  assert.equal(Array.from(qubit), Array.from(want.qubit));
  assert.equal(Array.from(s.subarray(0, 32)), Array.from(want.rest));
});

test('norm2: 0.6|0> + 0.8i|1> → 1; zero vector → 0', () => {
  assert.ok(Math.abs(norm2(Float64Array.of(0.6, 0, 0, 0.8)) - 1) < TOL);
  assert.is(norm2(new Float64Array(8)), 0);
});

test('unitarity: 400 random gates of every routine on 10 qubits → norm stays 1', () => {
  const rnd = prng(14);
  const n = 10;
  const s = randomState(n, rnd);
  const pick = (): number => Math.floor(rnd() * n);
  const distinct = (k: number): number[] => {
    const out: number[] = [];
    while (out.length < k) {
      const q = pick();
      if (!out.includes(q)) out.push(q);
    }
    return out;
  };
  for (let g = 0; g < 400; g++) {
    const [a, b, c] = distinct(3) as [number, number, number];
    const t = rnd() * 2 * Math.PI;
    const cos = Math.cos(t / 2);
    const sin = Math.sin(t / 2);
    switch (g % 8) {
      case 0:
        applyMatrix1(s, n, a, H);
        break;
      case 1:
        applyMatrix1(s, n, a, Float64Array.of(cos, 0, 0, -sin, 0, -sin, cos, 0));
        break;
      case 2:
        applyDiagonal1(s, n, a, [cos, -sin, cos, sin]);
        break;
      case 3:
        applyMatrix1(s, n, c, Float64Array.of(cos, 0, -sin, 0, sin, 0, cos, 0));
        break;
      case 4:
        applyCnot(s, n, a, b);
        break;
      case 5:
        applySwap(s, n, a, b);
        break;
      case 6:
        applyToffoli(s, n, a, b, c);
        break;
      default:
        applyCz(s, n, a, b);
        applyX(s, n, c);
    }
  }
  assert.ok(Math.abs(norm2(s) - 1) < TOL, `norm² ${norm2(s)}`);
});

test.run();
