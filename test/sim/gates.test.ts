/**
 * The gate set's tables and 1-qubit matrices: each gate's action on |0> and |1> against amplitudes
 * computed by hand from QVM.md's conventions, unitarity, and the identities that tie them together.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GATE_SET, type GateName, isGateName } from '../../src/kernel/gate-set.js';
import { applyMatrix1 } from '../../src/sim/engine.js';
import { matrix1 } from '../../src/sim/gates.js';

/** The one gate table's columns, as the assertions below read them. */
const GATE_ARITY = Object.fromEntries(
  Object.entries(GATE_SET).map(([g, spec]) => [g, spec.arity]),
) as Record<GateName, number>;
const GATE_HAS_THETA = Object.fromEntries(
  Object.entries(GATE_SET).map(([g, spec]) => [g, spec.theta]),
) as Record<GateName, boolean>;

const TOL = 1e-12;
const R = Math.SQRT1_2;

const ALL: GateName[] = [
  'H',
  'X',
  'Y',
  'Z',
  'S',
  'SDG',
  'T',
  'TDG',
  'RX',
  'RY',
  'RZ',
  'CNOT',
  'CZ',
  'SWAP',
  'TOFFOLI',
  'RESET',
  'INJECT_T_STATE',
];
const ONE_QUBIT: GateName[] = ALL.filter((g) => GATE_ARITY[g] === 1 && g !== 'RESET');

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, msg = ''): void {
  assert.is(actual.length, expected.length, `${msg} length`);
  for (let i = 0; i < actual.length; i++) {
    if (!(Math.abs(actual[i]! - expected[i]!) <= TOL)) {
      assert.unreachable(`${msg} double ${i}: ${actual[i]} vs ${expected[i]}`);
    }
  }
}

/** The gate applied to |b> on one qubit, via the engine's routine. */
function act(name: GateName, theta: number, b: 0 | 1): Float64Array {
  const s = b === 0 ? Float64Array.of(1, 0, 0, 0) : Float64Array.of(0, 0, 1, 0);
  applyMatrix1(s, 1, 0, matrix1(name, theta));
  return s;
}

// θ = π/3: cos(θ/2) = √3/2, sin(θ/2) = 1/2.
const THETA = Math.PI / 3;
const C = Math.sqrt(3) / 2;
const SN = 0.5;

/** Hand-computed images of |0> and |1>, as [re0, im0, re1, im1]. */
const EXPECTED: Record<string, [number[], number[]]> = {
  H: [
    [R, 0, R, 0],
    [R, 0, -R, 0],
  ],
  X: [
    [0, 0, 1, 0],
    [1, 0, 0, 0],
  ],
  Y: [
    [0, 0, 0, 1], // Y|0> = i|1>
    [0, -1, 0, 0], // Y|1> = -i|0>
  ],
  Z: [
    [1, 0, 0, 0],
    [0, 0, -1, 0],
  ],
  S: [
    [1, 0, 0, 0],
    [0, 0, 0, 1],
  ],
  SDG: [
    [1, 0, 0, 0],
    [0, 0, 0, -1],
  ],
  T: [
    [1, 0, 0, 0],
    [0, 0, R, R],
  ],
  TDG: [
    [1, 0, 0, 0],
    [0, 0, R, -R],
  ],
  RX: [
    [C, 0, 0, -SN], // cos|0> − i sin|1>
    [0, -SN, C, 0],
  ],
  RY: [
    [C, 0, SN, 0], // cos|0> + sin|1>
    [-SN, 0, C, 0],
  ],
  RZ: [
    [C, -SN, 0, 0], // e^{-iθ/2}|0>
    [0, 0, C, SN], // e^{iθ/2}|1>
  ],
  INJECT_T_STATE: [
    [R, 0, 0.5, 0.5], // T·H|0> = (|0> + e^{iπ/4}|1>)/√2
    [R, 0, -0.5, -0.5],
  ],
};

for (const name of ONE_QUBIT) {
  test(`matrix1: ${name} on |0> and |1> → hand-computed amplitudes`, () => {
    const want = EXPECTED[name];
    assert.ok(want, `no expectation for ${name}`);
    close(act(name, THETA, 0), want[0], `${name}|0>`);
    close(act(name, THETA, 1), want[1], `${name}|1>`);
  });
}

test('matrix1: every 1-qubit gate at several angles → unitary (M†M = I)', () => {
  for (const name of ONE_QUBIT) {
    for (const theta of [0, 0.7, -2.1, Math.PI, 5]) {
      const m = matrix1(name, theta);
      // Columns c0 = (m00, m10), c1 = (m01, m11): orthonormal.
      const col = (j: number): [number, number, number, number] => [
        m[2 * j]!,
        m[2 * j + 1]!,
        m[4 + 2 * j]!,
        m[5 + 2 * j]!,
      ];
      const [a, b, c, d] = col(0);
      const [e, f, g, h] = col(1);
      const n0 = a * a + b * b + c * c + d * d;
      const n1 = e * e + f * f + g * g + h * h;
      const ipRe = a * e + b * f + (c * g + d * h);
      const ipIm = a * f - b * e + (c * h - d * g);
      assert.ok(Math.abs(n0 - 1) < TOL && Math.abs(n1 - 1) < TOL, `${name} column norms`);
      assert.ok(Math.abs(ipRe) < TOL && Math.abs(ipIm) < TOL, `${name} columns orthogonal`);
    }
  }
});

function mul(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(8);
  for (let r = 0; r < 2; r++) {
    for (let c = 0; c < 2; c++) {
      let re = 0;
      let im = 0;
      for (let k = 0; k < 2; k++) {
        const ar = a[2 * (2 * r + k)]!;
        const ai = a[2 * (2 * r + k) + 1]!;
        const br = b[2 * (2 * k + c)]!;
        const bi = b[2 * (2 * k + c) + 1]!;
        re += ar * br - ai * bi;
        im += ar * bi + ai * br;
      }
      out[2 * (2 * r + c)] = re;
      out[2 * (2 * r + c) + 1] = im;
    }
  }
  return out;
}

test('matrix1: T·T = S, S·S = Z, S·SDG = T·TDG = I, H·X·H = Z → identities hold', () => {
  const I = [1, 0, 0, 0, 0, 0, 1, 0];
  close(mul(matrix1('T'), matrix1('T')), matrix1('S'), 'T²');
  close(mul(matrix1('S'), matrix1('S')), matrix1('Z'), 'S²');
  close(mul(matrix1('S'), matrix1('SDG')), I, 'S·SDG');
  close(mul(matrix1('T'), matrix1('TDG')), I, 'T·TDG');
  close(mul(mul(matrix1('H'), matrix1('X')), matrix1('H')), matrix1('Z'), 'HXH');
  close(matrix1('INJECT_T_STATE'), mul(matrix1('T'), matrix1('H')), 'INJECT = T·H');
});

test('matrix1: rotations at θ = π → RX = −iX, RY = −iY, RZ = −iZ', () => {
  close(matrix1('RX', Math.PI), [0, 0, 0, -1, 0, -1, 0, 0], 'RX(π)');
  close(matrix1('RY', Math.PI), [0, 0, -1, 0, 1, 0, 0, 0], 'RY(π)');
  close(matrix1('RZ', Math.PI), [0, -1, 0, 0, 0, 0, 0, 1], 'RZ(π)');
});

test('matrix1: RX(a)·RX(b) = RX(a + b) → rotations compose', () => {
  for (const name of ['RX', 'RY', 'RZ'] as const) {
    close(mul(matrix1(name, 0.4), matrix1(name, 1.1)), matrix1(name, 1.5), name);
  }
});

test('matrix1: RESET or a multi-qubit gate → assertion', () => {
  for (const name of ['RESET', 'CNOT', 'CZ', 'SWAP', 'TOFFOLI'] as const) {
    assert.throws(() => matrix1(name), undefined, name);
  }
});

test('matrix1: non-finite theta → assertion', () => {
  assert.throws(() => matrix1('RX', Number.NaN));
  assert.throws(() => matrix1('RZ', Number.POSITIVE_INFINITY));
});

test('matrix1: returned arrays → fresh on every call', () => {
  const a = matrix1('H');
  a[0] = 42;
  assert.is(matrix1('H')[0], R);
});

test('GATE_ARITY: table → 1 for 1-qubit gates, 2 for CNOT/CZ/SWAP, 3 for TOFFOLI', () => {
  assert.equal(Object.keys(GATE_ARITY).sort(), [...ALL].sort());
  for (const g of ONE_QUBIT) assert.is(GATE_ARITY[g], 1, g);
  assert.is(GATE_ARITY.RESET, 1);
  assert.is(GATE_ARITY.INJECT_T_STATE, 1);
  assert.is(GATE_ARITY.CNOT, 2);
  assert.is(GATE_ARITY.CZ, 2);
  assert.is(GATE_ARITY.SWAP, 2);
  assert.is(GATE_ARITY.TOFFOLI, 3);
});

test('GATE_HAS_THETA: table → true exactly for RX, RY, RZ', () => {
  assert.equal(Object.keys(GATE_HAS_THETA).sort(), [...ALL].sort());
  const withTheta = ALL.filter((g) => GATE_HAS_THETA[g]);
  assert.equal(withTheta, ['RX', 'RY', 'RZ']);
});

test('isGateName: set members → true; unknown names and prototype keys → false', () => {
  for (const g of ALL) assert.ok(isGateName(g), g);
  for (const x of ['CX', 'h', '', 'toString', '__proto__', 'MEASURE_Z']) {
    assert.not.ok(isGateName(x), x);
  }
});

test.run();
