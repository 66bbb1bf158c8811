/**
 * Gate routines of the reference state-vector engine: the hot loops that act on one cluster's
 * amplitudes. Layer: sim (must not import from kernel/, api/ or store/); pure numerics, no policy.
 *
 * Representation (the invariant every routine here relies on): an n-qubit state is a Float64Array
 * of 2·2^n doubles, interleaved complex (re at 2i, im at 2i+1), and qubit q is bit q of the basis
 * index i (qubit 0 is the least significant bit). States may be views on SharedArrayBuffers, so
 * routines work in place and never keep a reference.
 *
 * Why this form: plain for-loops over typed arrays with no allocation per amplitude are what V8
 * compiles best, and they are the reference the native engine is compared against, so each routine
 * is written to be obviously correct first and fast second. Pairs (i0, i1) that differ only in bit
 * q are enumerated by inserting a zero bit at q into a counter over 2^(n-1) values, which touches
 * each amplitude exactly once without a branch. Indices stay below 2^27 for n ≤ 26, so 32-bit
 * integer bit operations are exact.
 */
import assert from 'node:assert';

/**
 * The kernel caps clusters at 26 qubits (2^27 doubles = 1 GiB). The engine's own bound is where
 * its int32 arithmetic ends: the double count 2 << n must stay a positive int32, so n ≤ 29.
 */
export const ENGINE_QUBITS_MAX = 29;

export function checkState(s: Float64Array, n: number): void {
  assert(Number.isInteger(n) && n >= 0 && n <= ENGINE_QUBITS_MAX, `qubit count ${n} out of range`);
  assert(s.length === 2 << n, `state length ${s.length} is not 2·2^${n}`);
}

export function checkQubit(n: number, q: number): void {
  assert(Number.isInteger(q) && q >= 0 && q < n, `qubit ${q} out of range for ${n} qubits`);
}

/** Index i with a zero bit inserted at position q (bits ≥ q move up by one). */
export function insertZero(i: number, q: number): number {
  return ((i >> q) << (q + 1)) | (i & ((1 << q) - 1));
}

/**
 * The n-qubit basis state |0…0>.
 * @param n qubit count, 0 ≤ n ≤ ENGINE_QUBITS_MAX (0 gives the scalar 1).
 */
export function zeroState(n: number): Float64Array {
  assert(Number.isInteger(n) && n >= 0 && n <= ENGINE_QUBITS_MAX, `qubit count ${n} out of range`);
  const s = new Float64Array(2 << n);
  s[0] = 1;
  return s;
}

/**
 * Applies a 2×2 complex matrix to qubit q, in place.
 * @param m row-major [m00re, m00im, m01re, m01im, m10re, m10im, m11re, m11im].
 */
export function applyMatrix1(s: Float64Array, n: number, q: number, m: Float64Array): void {
  checkState(s, n);
  checkQubit(n, q);
  assert(m.length === 8, 'a 1-qubit matrix has 8 doubles');
  const a00r = m[0]!;
  const a00i = m[1]!;
  const a01r = m[2]!;
  const a01i = m[3]!;
  const a10r = m[4]!;
  const a10i = m[5]!;
  const a11r = m[6]!;
  const a11i = m[7]!;
  const bit = 1 << q;
  const half = 1 << (n - 1);
  for (let i = 0; i < half; i++) {
    const i0 = insertZero(i, q);
    const p0 = 2 * i0;
    const p1 = 2 * (i0 | bit);
    const x0r = s[p0]!;
    const x0i = s[p0 + 1]!;
    const x1r = s[p1]!;
    const x1i = s[p1 + 1]!;
    s[p0] = a00r * x0r - a00i * x0i + (a01r * x1r - a01i * x1i);
    s[p0 + 1] = a00r * x0i + a00i * x0r + (a01r * x1i + a01i * x1r);
    s[p1] = a10r * x0r - a10i * x0i + (a11r * x1r - a11i * x1i);
    s[p1 + 1] = a10r * x0i + a10i * x0r + (a11r * x1i + a11i * x1r);
  }
}

/**
 * Multiplies amplitudes with qubit q = 0 by d0 and those with q = 1 by d1, in place, where
 * `d` = [d0re, d0im, d1re, d1im]. A factor of exactly 1 is skipped: S, T, Z and RZ-like phases
 * then touch only half the state.
 */
export function applyDiagonal1(s: Float64Array, n: number, q: number, d: ArrayLike<number>): void {
  checkState(s, n);
  checkQubit(n, q);
  const d0re = d[0]!;
  const d0im = d[1]!;
  const d1re = d[2]!;
  const d1im = d[3]!;
  const bit = 1 << q;
  const half = 1 << (n - 1);
  const scale0 = !(d0re === 1 && d0im === 0);
  const scale1 = !(d1re === 1 && d1im === 0);
  for (let i = 0; i < half; i++) {
    const i0 = insertZero(i, q);
    if (scale0) {
      const p = 2 * i0;
      const xr = s[p]!;
      const xi = s[p + 1]!;
      s[p] = d0re * xr - d0im * xi;
      s[p + 1] = d0re * xi + d0im * xr;
    }
    if (scale1) {
      const p = 2 * (i0 | bit);
      const xr = s[p]!;
      const xi = s[p + 1]!;
      s[p] = d1re * xr - d1im * xi;
      s[p + 1] = d1re * xi + d1im * xr;
    }
  }
}

/** Swaps the complex amplitudes at basis indices a and b. */
function swapAmp(s: Float64Array, a: number, b: number): void {
  const pa = 2 * a;
  const pb = 2 * b;
  const r = s[pa]!;
  const im = s[pa + 1]!;
  s[pa] = s[pb]!;
  s[pa + 1] = s[pb + 1]!;
  s[pb] = r;
  s[pb + 1] = im;
}

/** Pauli X on qubit q as an index permutation (exact: no arithmetic on amplitudes). */
export function applyX(s: Float64Array, n: number, q: number): void {
  checkState(s, n);
  checkQubit(n, q);
  const bit = 1 << q;
  const half = 1 << (n - 1);
  for (let i = 0; i < half; i++) {
    const i0 = insertZero(i, q);
    swapAmp(s, i0, i0 | bit);
  }
}

/**
 * For every basis index with qubits a and b both 0 (`base`), swaps the amplitudes at
 * base | from and base | to: the one loop behind CNOT and SWAP.
 */
function swapPairs(
  s: Float64Array,
  n: number,
  a: number,
  b: number,
  from: number,
  to: number,
  what: string,
): void {
  checkState(s, n);
  checkQubit(n, a);
  checkQubit(n, b);
  assert(a !== b, `${what} must differ`);
  const lo = Math.min(a, b);
  const hi = Math.max(a, b);
  const count = 1 << (n - 2);
  for (let i = 0; i < count; i++) {
    const base = insertZero(insertZero(i, lo), hi);
    swapAmp(s, base | from, base | to);
  }
}

/** CNOT with control c and target t as an index permutation (|10> ↔ |11>, control bit first). */
export function applyCnot(s: Float64Array, n: number, c: number, t: number): void {
  swapPairs(s, n, c, t, 1 << c, (1 << c) | (1 << t), 'CNOT control and target');
}

/** SWAP of qubits a and b as an index permutation (|01> ↔ |10> on those bits). */
export function applySwap(s: Float64Array, n: number, a: number, b: number): void {
  swapPairs(s, n, a, b, 1 << a, 1 << b, 'SWAP operands');
}

/** Toffoli (CCX) with controls c1, c2 and target t as an index permutation. */
export function applyToffoli(s: Float64Array, n: number, c1: number, c2: number, t: number): void {
  checkState(s, n);
  checkQubit(n, c1);
  checkQubit(n, c2);
  checkQubit(n, t);
  assert(c1 !== c2 && c1 !== t && c2 !== t, 'Toffoli operands must be distinct');
  const sorted = [c1, c2, t].sort((x, y) => x - y);
  const p0 = sorted[0]!;
  const p1 = sorted[1]!;
  const p2 = sorted[2]!;
  const cmask = (1 << c1) | (1 << c2);
  const tbit = 1 << t;
  const count = 1 << (n - 3);
  for (let i = 0; i < count; i++) {
    const i0 = insertZero(insertZero(insertZero(i, p0), p1), p2) | cmask;
    swapAmp(s, i0, i0 | tbit);
  }
}

/** CZ on qubits a and b: negates the amplitudes where both are 1 (symmetric in a, b). */
export function applyCz(s: Float64Array, n: number, a: number, b: number): void {
  checkState(s, n);
  checkQubit(n, a);
  checkQubit(n, b);
  assert(a !== b, 'CZ operands must differ');
  const lo = Math.min(a, b);
  const hi = Math.max(a, b);
  const mask = (1 << a) | (1 << b);
  const count = 1 << (n - 2);
  for (let i = 0; i < count; i++) {
    const p = 2 * (insertZero(insertZero(i, lo), hi) | mask);
    s[p] = -s[p]!;
    s[p + 1] = -s[p + 1]!;
  }
}

/** The largest dense (fused) gate: 2^5 × 2^5. */
export const DENSE_QUBITS_MAX = 5;

/** Checks a fused gate's qubits (1..DENSE_QUBITS_MAX, distinct, below n); returns their count. */
function checkGateQubits(n: number, qubits: Int32Array): number {
  const k = qubits.length;
  assert(k >= 1 && k <= DENSE_QUBITS_MAX && k <= n, `fused gate on ${k} qubits`);
  let seen = 0;
  for (const q of qubits) {
    checkQubit(n, q);
    assert((seen & (1 << q)) === 0, 'fused gate qubits must be distinct');
    seen |= 1 << q;
  }
  return k;
}

/** Offsets of a group's 2^k amplitudes: local bit j of c is qubit qubits[j]. */
function groupOffsets(qubits: Int32Array): Int32Array {
  const offs = new Int32Array(1 << qubits.length);
  for (let c = 0; c < offs.length; c++) {
    for (let j = 0; j < qubits.length; j++) if ((c >> j) & 1) offs[c]! |= 1 << qubits[j]!;
  }
  return offs;
}

/**
 * Applies a dense 2^k × 2^k matrix to the given distinct qubits, in place (fused gates).
 * @param qubits k ≤ DENSE_QUBITS_MAX distinct qubits; local bit j of a row or column index is
 *   qubit qubits[j].
 * @param m row-major, interleaved complex: entry (r, c) at 2·(r·2^k + c).
 * Structure (the native kernel's): each group of 2^k amplitudes that differ only in the gate's
 * bits is loaded, multiplied and stored once; the matrix is split into real and imaginary parts,
 * column-major, so the inner loop walks it with unit stride.
 */
export function applyDense(s: Float64Array, n: number, qubits: Int32Array, m: Float64Array): void {
  checkState(s, n);
  const k = checkGateQubits(n, qubits);
  assert(m.length === 2 << (2 * k), `a ${k}-qubit matrix has ${2 << (2 * k)} doubles`);
  if (k === 1) {
    applyMatrix1(s, n, qubits[0]!, m);
    return;
  }
  if (k === 2) {
    applyDense2(s, n, qubits[0]!, qubits[1]!, m);
    return;
  }
  const d = 1 << k;
  const offs = groupOffsets(qubits);
  const mr = new Float64Array(d * d);
  const mi = new Float64Array(d * d);
  for (let r = 0; r < d; r++) {
    for (let c = 0; c < d; c++) {
      mr[c * d + r] = m[2 * (r * d + c)]!;
      mi[c * d + r] = m[2 * (r * d + c) + 1]!;
    }
  }
  const sorted = Int32Array.from(qubits).sort();
  const vr = new Float64Array(d);
  const vi = new Float64Array(d);
  const or = new Float64Array(d);
  const oi = new Float64Array(d);
  const count = 1 << (n - k);
  for (let i = 0; i < count; i++) {
    let base = i;
    for (let j = 0; j < k; j++) base = insertZero(base, sorted[j]!);
    for (let c = 0; c < d; c++) {
      const p = 2 * (base | offs[c]!);
      vr[c] = s[p]!;
      vi[c] = s[p + 1]!;
      or[c] = 0;
      oi[c] = 0;
    }
    for (let c = 0; c < d; c++) {
      const xr = vr[c]!;
      const xi = vi[c]!;
      const col = c * d;
      for (let r = 0; r < d; r++) {
        const ar = mr[col + r]!;
        const ai = mi[col + r]!;
        or[r] = or[r]! + (ar * xr - ai * xi);
        oi[r] = oi[r]! + (ar * xi + ai * xr);
      }
    }
    for (let r = 0; r < d; r++) {
      const p = 2 * (base | offs[r]!);
      s[p] = or[r]!;
      s[p + 1] = oi[r]!;
    }
  }
}

/** Unnormalised branch weights of qubit q into `out`: [Σ|a|² over q = 0, Σ|a|² over q = 1]. */
export function branchWeightsInto(s: Float64Array, n: number, q: number, out: Float64Array): void {
  checkState(s, n);
  checkQubit(n, q);
  const bit = 1 << q;
  const half = 1 << (n - 1);
  let p0 = 0;
  let p1 = 0;
  for (let i = 0; i < half; i++) {
    const a = 2 * insertZero(i, q);
    const b = a + 2 * bit;
    p0 += s[a]! * s[a]! + s[a + 1]! * s[a + 1]!;
    p1 += s[b]! * s[b]! + s[b + 1]! * s[b + 1]!;
  }
  out[0] = p0;
  out[1] = p1;
}

/** Keeps the half with qubit q = outcome, multiplied by `scale`, and zeroes the other half. */
export function collapseScaled(
  s: Float64Array,
  n: number,
  q: number,
  outcome: 0 | 1,
  scale: number,
): void {
  checkState(s, n);
  checkQubit(n, q);
  const bit = 1 << q;
  const half = 1 << (n - 1);
  const keep = outcome === 1 ? bit : 0;
  const drop = keep ^ bit;
  for (let i = 0; i < half; i++) {
    const i0 = insertZero(i, q);
    const pk = 2 * (i0 | keep);
    const pd = 2 * (i0 | drop);
    s[pk] = s[pk]! * scale;
    s[pk + 1] = s[pk + 1]! * scale;
    s[pd] = 0;
    s[pd + 1] = 0;
  }
}

/**
 * The 2-qubit dense gate unrolled (the fusion width that pays off in JavaScript): the 16 matrix
 * entries live in locals, each group of 4 amplitudes is loaded, multiplied and stored once.
 * Local bit 0 of the matrix is qubit a, bit 1 is qubit b.
 */
function applyDense2(s: Float64Array, n: number, a: number, b: number, m: Float64Array): void {
  const lo = Math.min(a, b);
  const hi = Math.max(a, b);
  const oa = 2 << a; // offsets in doubles
  const ob = 2 << b;
  const [m00r, m00i, m01r, m01i, m02r, m02i, m03r, m03i] = m.subarray(0, 8);
  const [m10r, m10i, m11r, m11i, m12r, m12i, m13r, m13i] = m.subarray(8, 16);
  const [m20r, m20i, m21r, m21i, m22r, m22i, m23r, m23i] = m.subarray(16, 24);
  const [m30r, m30i, m31r, m31i, m32r, m32i, m33r, m33i] = m.subarray(24, 32);
  const count = 1 << (n - 2);
  for (let i = 0; i < count; i++) {
    const p0 = 2 * insertZero(insertZero(i, lo), hi);
    const p1 = p0 + oa;
    const p2 = p0 + ob;
    const p3 = p1 + ob;
    const x0r = s[p0]!;
    const x0i = s[p0 + 1]!;
    const x1r = s[p1]!;
    const x1i = s[p1 + 1]!;
    const x2r = s[p2]!;
    const x2i = s[p2 + 1]!;
    const x3r = s[p3]!;
    const x3i = s[p3 + 1]!;
    s[p0] =
      m00r! * x0r -
      m00i! * x0i +
      m01r! * x1r -
      m01i! * x1i +
      m02r! * x2r -
      m02i! * x2i +
      m03r! * x3r -
      m03i! * x3i;
    s[p0 + 1] =
      m00r! * x0i +
      m00i! * x0r +
      m01r! * x1i +
      m01i! * x1r +
      m02r! * x2i +
      m02i! * x2r +
      m03r! * x3i +
      m03i! * x3r;
    s[p1] =
      m10r! * x0r -
      m10i! * x0i +
      m11r! * x1r -
      m11i! * x1i +
      m12r! * x2r -
      m12i! * x2i +
      m13r! * x3r -
      m13i! * x3i;
    s[p1 + 1] =
      m10r! * x0i +
      m10i! * x0r +
      m11r! * x1i +
      m11i! * x1r +
      m12r! * x2i +
      m12i! * x2r +
      m13r! * x3i +
      m13i! * x3r;
    s[p2] =
      m20r! * x0r -
      m20i! * x0i +
      m21r! * x1r -
      m21i! * x1i +
      m22r! * x2r -
      m22i! * x2i +
      m23r! * x3r -
      m23i! * x3i;
    s[p2 + 1] =
      m20r! * x0i +
      m20i! * x0r +
      m21r! * x1i +
      m21i! * x1r +
      m22r! * x2i +
      m22i! * x2r +
      m23r! * x3i +
      m23i! * x3r;
    s[p3] =
      m30r! * x0r -
      m30i! * x0i +
      m31r! * x1r -
      m31i! * x1i +
      m32r! * x2r -
      m32i! * x2i +
      m33r! * x3r -
      m33i! * x3i;
    s[p3 + 1] =
      m30r! * x0i +
      m30i! * x0r +
      m31r! * x1i +
      m31i! * x1r +
      m32r! * x2i +
      m32i! * x2r +
      m33r! * x3i +
      m33i! * x3r;
  }
}

/**
 * Multiplies each amplitude by the diagonal entry its bits on `qubits` select, in place (fused
 * phases). One pass, one complex multiply per amplitude; entries of exactly 1 are skipped.
 * @param d 2^k entries, interleaved complex; local bit j of an entry's index is qubits[j].
 */
export function applyDiagonalK(
  s: Float64Array,
  n: number,
  qubits: Int32Array,
  d: Float64Array,
): void {
  checkState(s, n);
  const k = checkGateQubits(n, qubits);
  assert(d.length === 2 << k, `a ${k}-qubit diagonal has ${2 << k} doubles`);
  // Group by group, as the dense kernel walks (each group: the 2^k amplitudes that differ only in
  // these bits, entry c for the one with local pattern c); an entry of exactly 1 is skipped.
  const dim = 1 << k;
  const offs = groupOffsets(qubits);
  const live: number[] = [];
  for (let c = 0; c < dim; c++) if (!(d[2 * c] === 1 && d[2 * c + 1] === 0)) live.push(c);
  const liveOffs = Int32Array.from(live, (c) => offs[c]!);
  const liveRe = Float64Array.from(live, (c) => d[2 * c]!);
  const liveIm = Float64Array.from(live, (c) => d[2 * c + 1]!);
  const nLive = live.length;
  const sorted = Int32Array.from(qubits).sort();
  const count = 1 << (n - k);
  for (let i = 0; i < count; i++) {
    let base = i;
    for (let j = 0; j < k; j++) base = insertZero(base, sorted[j]!);
    for (let c = 0; c < nLive; c++) {
      const p = 2 * (base | liveOffs[c]!);
      const dr = liveRe[c]!;
      const di = liveIm[c]!;
      const xr = s[p]!;
      const xi = s[p + 1]!;
      s[p] = dr * xr - di * xi;
      s[p + 1] = dr * xi + di * xr;
    }
  }
}
