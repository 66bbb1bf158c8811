/**
 * One batch of simulation work: merge clusters, run gates and measurements, split measured qubits
 * out. Layer: sim (must not import from kernel/, api/ or store/). Both the Piscina worker and
 * crash replay call `runBatch`, and nothing else touches amplitudes, which is what makes replay
 * bit-exact: the same inputs (with the same `random` draws or `forced` outcomes) run the same
 * floating-point operations in the same order and give bit-identical outputs.
 *
 * Invariants it owns:
 * - Qubit order is a pure function of the inputs: the merged cluster's bit i is the i-th qubit of
 *   the parts' qubit lists concatenated in part order (parts[0] in the lowest bits); splitting
 *   keeps the rest's relative order. The kernel plans `results` with the same rule.
 * - Output clusters: the rest first (omitted when every qubit was split out), then one 1-qubit
 *   cluster per split qubit in `split` order.
 * - A single part is worked on in place (no copy of a possibly 1 GiB state). Input arrays are
 *   consumed: afterwards only the returned arrays hold meaningful amplitudes.
 * - Measurements leave the measured qubit in the measured basis' eigenstate, so it is in a product
 *   state with the rest and `splitOutQubit` is exact for it.
 */
import assert from 'node:assert';
import type { Program } from '../kernel/program/ir.js';
import {
  ENGINE_QUBITS_MAX,
  applyCnot,
  applyCz,
  applyDiagonal1,
  applyMatrix1,
  applySwap,
  applyToffoli,
  applyX,
  collapse,
  kronInto,
  probabilityOne,
  splitOutQubitInto,
} from './engine.js';
import { GATE_ARITY, GATE_HAS_THETA, type GateName, isGateName, matrix1 } from './gates.js';
import { type ProgramRunOutput, runBound } from './program.js';

export type Basis = 'Z' | 'X' | 'Y' | 'ANGLE';

/**
 * A gate or measurement on qubit ids. `random` (a uniform draw in [0, 1)) or `forced` (the
 * outcome recorded in the op log, for replay) decides a measurement's outcome, and RESET's.
 */
export type SimOp =
  | {
      kind: 'gate';
      name: GateName;
      qubits: string[];
      theta?: number;
      random?: number;
      forced?: 0 | 1;
    }
  | {
      kind: 'measure';
      qubit: string;
      basis: Basis;
      angle?: number;
      random?: number;
      forced?: 0 | 1;
    };

/**
 * One cluster: `qubits[i]` is the id of bit i; `state` has 2·2^qubits.length doubles and may be a
 * view on a SharedArrayBuffer.
 */
export interface ClusterState {
  qubits: string[];
  state: Float64Array;
}

/** A job on bound session qubits: its program runs once on the merged parts (then no ops). */
export interface BoundJob {
  program: Program;
  seed: string;
  shotOutcomesMax: number;
  /** Program qubit name -> the qubit id it is bound to. */
  bound: { name: string; qubitId: string }[];
}

export interface BatchInput {
  parts: ClusterState[];
  ops: SimOp[];
  split: string[];
  boundJob?: BoundJob;
}

export interface BatchOutput {
  clusters: ClusterState[];
  outcomes: (0 | 1)[];
  /** The bound job's result, when the batch ran one. */
  run?: ProgramRunOutput;
}

// Module-private and never mutated: measurement basis changes reuse them on every call.
const H_MATRIX = matrix1('H');
const S_MATRIX = matrix1('S');
const SDG_MATRIX = matrix1('SDG');
const T_MATRIX = matrix1('T');

/** Applies a 1-qubit matrix, as a diagonal when its off-diagonal entries are exactly zero. */
function apply1(s: Float64Array, n: number, q: number, m: Float64Array): void {
  if (m[2] === 0 && m[3] === 0 && m[4] === 0 && m[5] === 0) {
    applyDiagonal1(s, n, q, m[0]!, m[1]!, m[6]!, m[7]!);
  } else {
    applyMatrix1(s, n, q, m);
  }
}

/** The outcome of a measurement whose probability of 1 is p1: forced on replay, else drawn. */
function decide(p1: number, random: number | undefined, forced: 0 | 1 | undefined): 0 | 1 {
  if (forced !== undefined) {
    assert(forced === 0 || forced === 1, `forced outcome ${String(forced)} is not 0 or 1`);
    return forced;
  }
  assert(
    typeof random === 'number' && random >= 0 && random < 1,
    'a measurement needs a random draw in [0, 1) or a forced outcome',
  );
  return random < p1 ? 1 : 0;
}

/** Measures qubit q in the Z basis and collapses the state onto the outcome. */
function measureZ(
  s: Float64Array,
  n: number,
  q: number,
  random: number | undefined,
  forced: 0 | 1 | undefined,
): 0 | 1 {
  const outcome = decide(probabilityOne(s, n, q), random, forced);
  collapse(s, n, q, outcome);
  return outcome;
}

/**
 * Measures qubit q in `basis` by rotating that basis onto Z, measuring Z and rotating back, so the
 * qubit ends in the eigenstate for the outcome: X uses H; Y uses H·SDG (|+i> ↦ |0>); ANGLE a uses
 * RY(−a), which maps RY(a)|0>, the outcome-0 state along the axis at a from Z towards X, to |0>.
 */
function measure(
  s: Float64Array,
  n: number,
  q: number,
  op: Extract<SimOp, { kind: 'measure' }>,
): 0 | 1 {
  switch (op.basis) {
    case 'Z':
      return measureZ(s, n, q, op.random, op.forced);
    case 'X': {
      apply1(s, n, q, H_MATRIX);
      const outcome = measureZ(s, n, q, op.random, op.forced);
      apply1(s, n, q, H_MATRIX);
      return outcome;
    }
    case 'Y': {
      apply1(s, n, q, SDG_MATRIX);
      apply1(s, n, q, H_MATRIX);
      const outcome = measureZ(s, n, q, op.random, op.forced);
      apply1(s, n, q, H_MATRIX);
      apply1(s, n, q, S_MATRIX);
      return outcome;
    }
    case 'ANGLE': {
      const a = op.angle;
      assert(typeof a === 'number' && Number.isFinite(a), 'ANGLE measurement needs a finite angle');
      apply1(s, n, q, matrix1('RY', -a));
      const outcome = measureZ(s, n, q, op.random, op.forced);
      apply1(s, n, q, matrix1('RY', a));
      return outcome;
    }
    default:
      assert.fail(`unknown basis ${String((op as { basis: unknown }).basis)}`);
  }
}

/** Applies one gate; RESET appends its outcome to `outcomes`. */
function applyGate(
  s: Float64Array,
  n: number,
  op: Extract<SimOp, { kind: 'gate' }>,
  at: (id: string) => number,
  outcomes: (0 | 1)[],
): void {
  const name = op.name;
  assert(isGateName(name), `unknown gate ${String(name)}`);
  assert(op.qubits.length === GATE_ARITY[name], `${name} takes ${GATE_ARITY[name]} qubits`);
  const qs = op.qubits.map(at);
  assert(new Set(qs).size === qs.length, `${name} operands must be distinct`);
  const a = qs[0]!;
  switch (name) {
    case 'X':
      applyX(s, n, a);
      return;
    case 'CNOT':
      applyCnot(s, n, a, qs[1]!);
      return;
    case 'CZ':
      applyCz(s, n, a, qs[1]!);
      return;
    case 'SWAP':
      applySwap(s, n, a, qs[1]!);
      return;
    case 'TOFFOLI':
      applyToffoli(s, n, a, qs[1]!, qs[2]!);
      return;
    case 'RESET': {
      const outcome = measureZ(s, n, a, op.random, op.forced);
      if (outcome === 1) applyX(s, n, a);
      outcomes.push(outcome);
      return;
    }
    case 'INJECT_T_STATE':
      apply1(s, n, a, H_MATRIX);
      apply1(s, n, a, T_MATRIX);
      return;
    default: {
      if (GATE_HAS_THETA[name]) {
        assert(
          typeof op.theta === 'number' && Number.isFinite(op.theta),
          `${name} needs a finite theta`,
        );
      }
      apply1(s, n, a, matrix1(name, op.theta ?? 0));
    }
  }
}

/**
 * Merges the parts into one state (parts[0] in the lowest bits). One part is returned as is, so
 * the batch runs in place on it; several are written into one new `alloc`'d buffer.
 */
function merge(
  parts: readonly ClusterState[],
  n: number,
  alloc: (doubles: number) => Float64Array,
): Float64Array {
  const first = parts[0]!;
  if (parts.length === 1) return first.state;
  const out = alloc(2 << n);
  assert(out.length === 2 << n, 'alloc returned an array of the wrong length');
  out.set(first.state);
  let low = first.qubits.length;
  for (let k = 1; k < parts.length; k++) {
    const part = parts[k]!;
    kronInto(out, low, part.state, part.qubits.length);
    low += part.qubits.length;
  }
  return out;
}

/**
 * Runs one batch: merge `parts` (parts[0] in the lowest bits; one part is used in place), apply
 * `ops` in order, then split each qubit of `split` (in order) into a 1-qubit cluster.
 * @param alloc makes every new state array (the worker's allocator uses SharedArrayBuffers).
 * @returns the rest cluster first (omitted when empty), then one cluster per split qubit; and
 *   one outcome per measurement or RESET, in op order.
 */
export function runBatch(input: BatchInput, alloc: (doubles: number) => Float64Array): BatchOutput {
  const { parts, ops, split } = input;
  assert(parts.length >= 1, 'a batch needs at least one cluster');
  const qubits: string[] = [];
  for (const p of parts) {
    assert(p.state.length === 2 << p.qubits.length, 'part state length does not match its qubits');
    qubits.push(...p.qubits);
  }
  const n = qubits.length;
  assert(new Set(qubits).size === n, 'a qubit appears in two parts');
  assert(n <= ENGINE_QUBITS_MAX, `a merged cluster of ${n} qubits exceeds the engine's bound`);
  const index = new Map<string, number>();
  qubits.forEach((id, i) => index.set(id, i));
  const at = (id: string): number => {
    const i = index.get(id);
    assert(i !== undefined, `qubit ${id} is not in this batch`);
    return i;
  };

  const s = merge(parts, n, alloc);
  if (input.boundJob !== undefined) {
    assert(ops.length === 0 && split.length === 0, 'a bound job batch has no ops and no split');
    const { program, seed, shotOutcomesMax, bound } = input.boundJob;
    const { state, ...run } = runBound({
      program,
      seed,
      shotOutcomesMax,
      state: s,
      width: n,
      bound: bound.map((b) => ({ name: b.name, bit: at(b.qubitId) })),
      alloc,
    });
    return { clusters: [{ qubits, state }], outcomes: [], run };
  }
  const outcomes: (0 | 1)[] = [];
  for (const op of ops) {
    if (op.kind === 'gate') applyGate(s, n, op, at, outcomes);
    else outcomes.push(measure(s, n, at(op.qubit), op));
  }
  return { clusters: splitAll(s, qubits, split, alloc), outcomes };
}

/**
 * Splits `split` out of the state `s` of `qubits`, in place on `s` (each rest overwrites the
 * front of the buffer), and copies the final rest into an `alloc`'d array unless nothing was
 * split, in which case `s` itself is the rest.
 */
function splitAll(
  s: Float64Array,
  qubits: readonly string[],
  split: readonly string[],
  alloc: (doubles: number) => Float64Array,
): ClusterState[] {
  const order = [...qubits];
  const singles: ClusterState[] = [];
  for (const id of split) {
    const q = order.indexOf(id);
    assert(q >= 0, `split qubit ${id} is not in this cluster (or split twice)`);
    const qubit = alloc(4);
    assert(qubit.length === 4, 'alloc returned an array of the wrong length');
    if (order.length === 1) {
      // The last qubit is the whole state: copy it as is rather than factor out a global phase.
      qubit.set(s.subarray(0, 4));
    } else {
      const cur = s.subarray(0, 2 << order.length);
      splitOutQubitInto(cur, order.length, q, qubit, cur);
    }
    order.splice(q, 1);
    singles.push({ qubits: [id], state: qubit });
  }
  if (order.length === 0) return singles;
  if (split.length === 0) return [{ qubits: order, state: s }, ...singles];
  const rest = alloc(2 << order.length);
  assert(rest.length === 2 << order.length, 'alloc returned an array of the wrong length');
  rest.set(s.subarray(0, 2 << order.length));
  return [{ qubits: order, state: rest }, ...singles];
}
