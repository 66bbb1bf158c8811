/**
 * The 2×2 matrices of the 1-qubit gates of the QVM gate set. Layer: sim. The names, arities and
 * angles are the kernel's one table (`kernel/gate-set.ts`); this file adds only the numbers.
 *
 * Conventions (the invariants the tests pin): rotations are exp(-iθP/2); S = diag(1, i),
 * T = diag(1, e^{iπ/4}); SDG and TDG are their conjugates. RESET is measure-then-flip and needs a
 * random draw, so it has no matrix: `ops.ts` runs it.
 */
import assert from 'node:assert';
import { GATE_SET, type GateName } from '../kernel/gate-set.js';

const R = Math.SQRT1_2;

/** Fixed matrices, row-major [m00re, m00im, m01re, m01im, m10re, m10im, m11re, m11im]. */
const FIXED_MATRICES: Readonly<Partial<Record<GateName, readonly number[]>>> = {
  H: [R, 0, R, 0, R, 0, -R, 0],
  X: [0, 0, 1, 0, 1, 0, 0, 0],
  Y: [0, 0, 0, -1, 0, 1, 0, 0],
  Z: [1, 0, 0, 0, 0, 0, -1, 0],
  S: [1, 0, 0, 0, 0, 0, 0, 1],
  SDG: [1, 0, 0, 0, 0, 0, 0, -1],
  T: [1, 0, 0, 0, 0, 0, R, R],
  TDG: [1, 0, 0, 0, 0, 0, R, -R],
  // T·H: on the fresh |0> the kernel guarantees, this prepares (|0> + e^{iπ/4}|1>)/√2.
  INJECT_T_STATE: [R, 0, R, 0, 0.5, 0.5, -0.5, -0.5],
};

/**
 * The 2×2 matrix of a 1-qubit gate as 8 doubles, row-major
 * [m00re, m00im, m01re, m01im, m10re, m10im, m11re, m11im]. A fresh array on every call, so
 * callers may keep or modify it.
 * @param theta the angle in radians for RX, RY, RZ; ignored by the others.
 * INJECT_T_STATE gives the product T·H (its action on |0> is the T state); RESET and multi-qubit
 * gates have no 1-qubit matrix and are programmer errors here.
 */
export function matrix1(name: GateName, theta = 0): Float64Array {
  assert(GATE_SET[name].arity === 1 && name !== 'RESET', `${name} has no 1-qubit matrix`);
  assert(Number.isFinite(theta), `${name}: theta must be finite`);
  const c = Math.cos(theta / 2);
  const s = Math.sin(theta / 2);
  switch (name) {
    case 'RX':
      return Float64Array.of(c, 0, 0, -s, 0, -s, c, 0);
    case 'RY':
      return Float64Array.of(c, 0, -s, 0, s, 0, c, 0);
    case 'RZ':
      return Float64Array.of(c, -s, 0, 0, 0, 0, c, s);
    default: {
      const m = FIXED_MATRICES[name];
      assert(m, `${name} has no 1-qubit matrix`);
      return Float64Array.from(m);
    }
  }
}
