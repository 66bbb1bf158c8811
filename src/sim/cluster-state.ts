/**
 * Merging and splitting cluster states: the Kronecker product of two states and the factoring of
 * one qubit out of a product state. Layer: sim; pure numerics on the representation `engine.ts`
 * describes (interleaved complex doubles, qubit q = bit q). Why apart from the gate routines:
 * these change a state's size and are what clusters need, not what gates need; every engine
 * shares them, since they run once per merge or split, not once per gate.
 */
import assert from 'node:assert';
import { ENGINE_QUBITS_MAX, checkQubit, checkState, insertZero } from './engine.js';

function overlaps(a: Float64Array, b: Float64Array): boolean {
  if (a.buffer !== b.buffer) return false;
  return a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

/**
 * Writes low ⊗ high into `dst` in place: on entry the first 2·2^nLow doubles of `dst` hold the
 * low state; on exit `dst` holds the (nLow+nHigh)-qubit state with index iLow | (iHigh << nLow).
 * Why in place: merging k clusters then needs one buffer, not k−1 intermediate ones. Writing
 * high blocks first (descending) never overwrites a low amplitude still to be read, because every
 * block with iHigh > 0 lies above the low state and block 0 is written from the top down.
 */
export function kronInto(dst: Float64Array, nLow: number, high: Float64Array, nHigh: number): void {
  checkState(high, nHigh);
  assert(Number.isInteger(nLow) && nLow >= 0, `qubit count ${nLow} out of range`);
  assert(nLow + nHigh <= ENGINE_QUBITS_MAX, 'merged state too large');
  assert(dst.length >= 2 << (nLow + nHigh), 'destination too short for the product');
  assert(!overlaps(dst, high), 'high must not overlap the destination');
  const lowCount = 1 << nLow;
  for (let h = (1 << nHigh) - 1; h >= 0; h--) {
    const hr = high[2 * h]!;
    const hi = high[2 * h + 1]!;
    const base = h << nLow;
    for (let l = lowCount - 1; l >= 0; l--) {
      const lr = dst[2 * l]!;
      const li = dst[2 * l + 1]!;
      const p = 2 * (base | l);
      dst[p] = lr * hr - li * hi;
      dst[p + 1] = lr * hi + li * hr;
    }
  }
}

/**
 * Tensor product low ⊗ high as a new array: nLow + nHigh qubits, index iLow | (iHigh << nLow),
 * so the low state's qubits keep their numbers and the high state's move up by nLow.
 */
export function kron(
  low: Float64Array,
  nLow: number,
  high: Float64Array,
  nHigh: number,
): Float64Array {
  checkState(low, nLow);
  checkState(high, nHigh);
  assert(nLow + nHigh <= ENGINE_QUBITS_MAX, 'merged state too large');
  const out = new Float64Array(2 << (nLow + nHigh));
  out.set(low);
  kronInto(out, nLow, high, nHigh);
  return out;
}

/**
 * Factors qubit q out of a state in which it is in a product state with the rest, into
 * preallocated outputs: `qubit` (4 doubles) and `rest` (2·2^(n-1) doubles; the remaining qubits
 * keep their relative order). `rest` may be `s` itself: rest amplitude r is written after its
 * sources 2r' ≥ r are read, and later sources lie above r, so the in-place pass is safe.
 *
 * Method: the rest index r* with the largest weight |s(r,0)|² + |s(r,1)|² (first on ties, so the
 * result is a pure function of s) gives the qubit factor c = normalise(s(r*,0), s(r*,1)); then
 * rest(r) = conj(c0)·s(r,0) + conj(c1)·s(r,1). Exact for product states; for anything else it is
 * the projection onto c, which is why callers use it only after a measurement of q.
 */
export function splitOutQubitInto(
  s: Float64Array,
  n: number,
  q: number,
  qubit: Float64Array,
  rest: Float64Array,
): void {
  checkState(s, n);
  checkQubit(n, q);
  assert(qubit.length === 4, 'a 1-qubit state has 4 doubles');
  assert(rest.length >= 1 << n, 'rest too short for n-1 qubits');
  const bit = 1 << q;
  const half = 1 << (n - 1);
  let best = -1;
  let bestW = -1;
  for (let r = 0; r < half; r++) {
    const p0 = 2 * insertZero(r, q);
    const p1 = p0 + 2 * bit;
    const w = s[p0]! * s[p0]! + s[p0 + 1]! * s[p0 + 1]! + s[p1]! * s[p1]! + s[p1 + 1]! * s[p1 + 1]!;
    if (w > bestW) {
      bestW = w;
      best = r;
    }
  }
  assert(bestW > 0, 'cannot split a qubit out of the zero vector');
  const b0 = 2 * insertZero(best, q);
  const b1 = b0 + 2 * bit;
  const inv = 1 / Math.sqrt(bestW);
  const c0r = s[b0]! * inv;
  const c0i = s[b0 + 1]! * inv;
  const c1r = s[b1]! * inv;
  const c1i = s[b1 + 1]! * inv;
  for (let r = 0; r < half; r++) {
    const p0 = 2 * insertZero(r, q);
    const p1 = p0 + 2 * bit;
    const x0r = s[p0]!;
    const x0i = s[p0 + 1]!;
    const x1r = s[p1]!;
    const x1i = s[p1 + 1]!;
    // conj(c0)·x0 + conj(c1)·x1
    rest[2 * r] = c0r * x0r + c0i * x0i + (c1r * x1r + c1i * x1i);
    rest[2 * r + 1] = c0r * x0i - c0i * x0r + (c1r * x1i - c1i * x1r);
  }
  qubit[0] = c0r;
  qubit[1] = c0i;
  qubit[2] = c1r;
  qubit[3] = c1i;
}

/**
 * Factors qubit q out of a state in which it is in a product state with the rest (as after a
 * measurement of q in any basis). See `splitOutQubitInto` for the method.
 * @returns `qubit`: the 1-qubit factor (4 doubles, unit norm); `rest`: the other n−1 qubits in
 *   their relative order.
 */
export function splitOutQubit(
  s: Float64Array,
  n: number,
  q: number,
): { qubit: Float64Array; rest: Float64Array } {
  checkState(s, n);
  checkQubit(n, q);
  const qubit = new Float64Array(4);
  const rest = new Float64Array(2 << (n - 1));
  splitOutQubitInto(s, n, q, qubit, rest);
  return { qubit, rest };
}

/** Squared norm Σ|amplitude|² (1 for a normalised state). */
export function norm2(s: Float64Array): number {
  assert(s.length % 2 === 0, 'a state has an even number of doubles');
  let sum = 0;
  for (let i = 0; i < s.length; i++) {
    const x = s[i]!;
    sum += x * x;
  }
  return sum;
}
