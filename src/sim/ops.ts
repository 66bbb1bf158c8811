/**
 * The one op stream every simulation runs: jobs, bound jobs and interactive batches are all
 * lowered to `Op`s and applied by `applyOp` through one `Kernels` interface. Layer: sim; imports
 * from kernel/ only the gate table (pure data) and types.
 *
 * What exists here once, for every path:
 * - gate lowering (`gateOp`: a QVM gate name to its op),
 * - measurement basis changes (`basisChange`, `measureOp`),
 * - gate dispatch and measurement (`applyOp`, `measureZ`).
 *
 * Why one flat, monomorphic op shape: the per-shot loop is then a switch over small ints, and
 * fusion (`fusion.ts`) can merge any run of unitary ops whatever path produced them.
 *
 * Decisions: a measurement's (or RESET's) outcome comes from `forced` when it is set (crash
 * replay of a recorded outcome), else from the uniform draw `draw` when it is set (an
 * interactive measurement's draw, taken by the kernel), else from the run's generator (jobs).
 * A branch of weight exactly 0 is never chosen by a draw.
 */
import assert from 'node:assert';
import type { Basis, GateName } from '../kernel/gate-set.js';
import { matrix1 } from './gates.js';
import type { Kernels } from './kernels.js';

export const K_MATRIX = 0;
export const K_DIAGONAL = 1;
export const K_X = 2;
export const K_CNOT = 3;
export const K_CZ = 4;
export const K_SWAP = 5;
export const K_TOFFOLI = 6;
export const K_MEASURE = 7;
export const K_RESET = 8;
/** Control flow: skip the next `skip` ops unless the guard holds. */
export const K_GUARD = 9;
/** Control flow: skip the next `skip` ops unless the XOR of `inputs` is 1. */
export const K_COND = 10;
/** A fused dense matrix on `qs` (row-major interleaved, local bit j = qs[j]). */
export const K_DENSE = 11;
/** A fused diagonal on `qs`: `m` holds the 2^k diagonal entries, interleaved complex. */
export const K_DIAGONAL_K = 12;

/** An op's fixed work (dispatch, the engine's argument checks) in amplitude-update units. */
export const OP_WORK_AMPLITUDES = 16;
/**
 * A shot's fixed work (the key, one Map update) in amplitude-update units, for polling and the
 * work estimate: a sampled Bell shot takes ~60 ns where one amplitude update takes ~2 ns.
 */
export const SHOT_WORK_AMPLITUDES = 16;

/** Whether an op kind is a unitary on its group's state (what fusion may merge). */
export function isUnitary(kind: number): boolean {
  return kind <= K_TOFFOLI || kind === K_DENSE || kind === K_DIAGONAL_K;
}

/**
 * A guard with its event names resolved to indices: plain data, so a plan crosses to a pool
 * thread by structured clone (a closure would not).
 */
export type CompiledGuard =
  | { event: number; equals: number }
  | { all: boolean; parts: CompiledGuard[] };

/** The terms (events and and/or nodes) of a compiled guard. */
export function guardTerms(g: CompiledGuard): number {
  if ('event' in g) return 1;
  let n = 1;
  for (const part of g.parts) n += guardTerms(part);
  return n;
}

/** Whether a compiled guard holds for the shot's event values. */
export function guardHolds(g: CompiledGuard, values: Int32Array): boolean {
  if ('event' in g) return values[g.event] === g.equals;
  if (g.all) {
    for (const part of g.parts) if (!guardHolds(part, values)) return false;
    return true;
  }
  for (const part of g.parts) if (guardHolds(part, values)) return true;
  return false;
}

export interface Op {
  kind: number;
  /** Index of the simulated group whose state it acts on; -1 for control flow. */
  group: number;
  /** Local qubit positions (bit numbers in the group's state). */
  a: number;
  b: number;
  c: number;
  /**
   * K_MATRIX: the 2×2 matrix; K_DIAGONAL: [d0re, d0im, d1re, d1im]; K_MEASURE: the rotation
   * onto Z before measuring, or null for a Z measurement.
   */
  m: Float64Array | null;
  /** K_MEASURE: the rotation back to the measured basis; null when the qubit is not used again. */
  post: Float64Array | null;
  /**
   * K_MEASURE, K_RESET: the event index the outcome is ORed into, shifted left by `shift`
   * (-1: a RESET whose outcome is not recorded).
   */
  event: number;
  shift: number;
  /** K_MEASURE, K_RESET: the recorded outcome (0 or 1) to replay, or -1 to decide. */
  forced: number;
  /** K_MEASURE, K_RESET: the uniform draw in [0, 1) that decides, or -1 for the run's generator. */
  draw: number;
  skip: number;
  /** K_GUARD: the condition. */
  guard: CompiledGuard | null;
  inputs: Int32Array | null;
  /** K_DENSE, K_DIAGONAL_K: its qubits (local bits), in the matrix's bit order. */
  qs: Int32Array | null;
  /** Amplitude updates it costs (`opWork`), for polling and the work estimate. */
  work: number;
}

export function makeOp(kind: number, group: number, a = 0, b = 0, c = 0): Op {
  return {
    kind,
    group,
    a,
    b,
    c,
    m: null,
    post: null,
    event: -1,
    shift: 0,
    forced: -1,
    draw: -1,
    skip: 0,
    guard: null,
    inputs: null,
    qs: null,
    work: 0,
  };
}

/** A 1-qubit matrix op, as a diagonal when its off-diagonal entries are exactly zero. */
export function matrixOp(group: number, q: number, m: Float64Array): Op {
  const diagonal = m[2] === 0 && m[3] === 0 && m[4] === 0 && m[5] === 0;
  const op = makeOp(diagonal ? K_DIAGONAL : K_MATRIX, group, q);
  op.m = diagonal ? Float64Array.of(m[0]!, m[1]!, m[6]!, m[7]!) : m;
  return op;
}

/**
 * The op of one gate of the QVM gate set on local bits `at` of group `group`'s state: the one
 * gate lowering, used by programs (APPLY_*, COND_PAULI, OPEN_CHAN, MEASURE_BELL) and interactive
 * batches alike. RESET gives a K_RESET whose outcome is not recorded (set `event` to record it).
 */
export function gateOp(group: number, name: GateName, at: readonly number[], theta = 0): Op {
  const [a = 0, b = 0, c = 0] = at;
  switch (name) {
    case 'X':
      return makeOp(K_X, group, a);
    case 'CNOT':
      return makeOp(K_CNOT, group, a, b);
    case 'CZ':
      return makeOp(K_CZ, group, a, b);
    case 'SWAP':
      return makeOp(K_SWAP, group, a, b);
    case 'TOFFOLI':
      return makeOp(K_TOFFOLI, group, a, b, c);
    case 'RESET':
      return makeOp(K_RESET, group, a);
    default:
      // INJECT_T_STATE's matrix is T·H: on the fresh |0> the kernel guarantees, the T state.
      return matrixOp(group, a, matrix1(name, theta));
  }
}

/** The product x·y of two 2×2 complex matrices (apply y first). */
function mul2(x: Float64Array, y: Float64Array): Float64Array {
  const out = new Float64Array(8);
  for (let r = 0; r < 2; r++) {
    for (let c = 0; c < 2; c++) {
      let re = 0;
      let im = 0;
      for (let k = 0; k < 2; k++) {
        const ar = x[4 * r + 2 * k]!;
        const ai = x[4 * r + 2 * k + 1]!;
        const br = y[4 * k + 2 * c]!;
        const bi = y[4 * k + 2 * c + 1]!;
        re += ar * br - ai * bi;
        im += ar * bi + ai * br;
      }
      out[4 * r + 2 * c] = re;
      out[4 * r + 2 * c + 1] = im;
    }
  }
  return out;
}

// Module-private and never mutated: every measurement in X or Y reuses them.
const H_MATRIX = matrix1('H');
/** Y basis onto Z: SDG, then H (|+i> ↦ |0>); and back: H, then S. */
const Y_TO_Z = mul2(H_MATRIX, matrix1('SDG'));
const Z_TO_Y = mul2(matrix1('S'), H_MATRIX);

/**
 * The rotation onto Z before measuring in `basis`, and the one back after (null: none, for Z).
 * The one definition of basis changes: X uses H both ways; Y uses H·SDG and S·H; ANGLE a uses
 * RY(−a), which maps RY(a)|0>, the outcome-0 state along the axis at a from Z towards X, to |0>,
 * and RY(a) back. Rotating back leaves the qubit in the measured basis' eigenstate.
 */
export function basisChange(
  basis: Basis,
  angle = 0,
): [pre: Float64Array | null, post: Float64Array | null] {
  switch (basis) {
    case 'Z':
      return [null, null];
    case 'X':
      return [H_MATRIX, H_MATRIX];
    case 'Y':
      return [Y_TO_Z, Z_TO_Y];
    case 'ANGLE':
      assert(Number.isFinite(angle), 'an ANGLE measurement needs a finite angle');
      return [matrix1('RY', -angle), matrix1('RY', angle)];
    default:
      return assert.fail(`unknown basis ${String(basis)}`);
  }
}

/**
 * A 1-qubit measurement op: rotate onto Z, measure, and (when `keepBasis`: the qubit is used
 * again) rotate back; the outcome is ORed into event `event`.
 */
export function measureOp(
  group: number,
  q: number,
  basis: Basis,
  angle: number,
  keepBasis: boolean,
  event: number,
): Op {
  const [pre, post] = basisChange(basis, angle);
  const op = makeOp(K_MEASURE, group, q);
  op.m = pre;
  op.post = keepBasis ? post : null;
  op.event = event;
  return op;
}

/** What `applyOp` reads besides the op and the state. */
export interface OpContext {
  kernels: Kernels;
  /** The run's generator (jobs); null where every decision carries its draw or outcome. */
  rng: { next(): number } | null;
  /** Event values, written by measurements (and by RESETs with an event). */
  values: Int32Array;
}

const BRANCH = new Float64Array(2);

/**
 * Measures qubit q in Z and collapses: onto `forced` when it is 0 or 1, else onto the outcome
 * the uniform draw `u` picks (1 when u·(p0 + p1) < p1). A branch of weight exactly 0 is never
 * chosen by a draw; a forced outcome of weight 0 is a programmer error (replay diverged).
 */
export function measureZ(
  k: Kernels,
  s: Float64Array,
  n: number,
  q: number,
  u: number,
  forced = -1,
): 0 | 1 {
  k.branchWeights(s, n, q, BRANCH);
  const p0 = BRANCH[0]!;
  const p1 = BRANCH[1]!;
  let outcome: 0 | 1;
  if (forced >= 0) {
    assert(forced === 0 || forced === 1, `forced outcome ${forced} is not 0 or 1`);
    outcome = forced;
  } else {
    outcome = p0 === 0 ? 1 : p1 === 0 ? 0 : u * (p0 + p1) < p1 ? 1 : 0;
  }
  const kept = outcome === 1 ? p1 : p0;
  assert(kept > 0, `collapse of qubit ${q} onto ${outcome}, which has probability 0`);
  k.collapse(s, n, q, outcome, 1 / Math.sqrt(kept));
  return outcome;
}

/** The draw that decides a measurement or RESET op (unused when its outcome is forced). */
function drawFor(op: Op, ctx: OpContext): number {
  if (op.forced >= 0) return 0;
  return op.draw >= 0 ? op.draw : ctx.rng!.next();
}

/** Applies one state op to the state `s` of n qubits: the one gate dispatch. */
export function applyOp(op: Op, s: Float64Array, n: number, ctx: OpContext): void {
  const k = ctx.kernels;
  switch (op.kind) {
    case K_MATRIX:
      k.matrix1(s, n, op.a, op.m!);
      return;
    case K_DIAGONAL:
      k.diagonal1(s, n, op.a, op.m!);
      return;
    case K_DENSE:
      k.dense(s, n, op.qs!, op.m!);
      return;
    case K_DIAGONAL_K:
      k.diagonal(s, n, op.qs!, op.m!);
      return;
    case K_X:
      k.x(s, n, op.a);
      return;
    case K_CNOT:
      k.cnot(s, n, op.a, op.b);
      return;
    case K_CZ:
      k.cz(s, n, op.a, op.b);
      return;
    case K_SWAP:
      k.swap(s, n, op.a, op.b);
      return;
    case K_TOFFOLI:
      k.toffoli(s, n, op.a, op.b, op.c);
      return;
    case K_MEASURE: {
      if (op.m !== null) k.matrix1(s, n, op.a, op.m);
      const outcome = measureZ(k, s, n, op.a, drawFor(op, ctx), op.forced);
      if (op.post !== null) k.matrix1(s, n, op.a, op.post);
      ctx.values[op.event] = ctx.values[op.event]! | (outcome << op.shift);
      return;
    }
    case K_RESET: {
      const outcome = measureZ(k, s, n, op.a, drawFor(op, ctx), op.forced);
      if (outcome === 1) k.x(s, n, op.a);
      if (op.event >= 0) ctx.values[op.event] = outcome;
      return;
    }
    default:
      assert.fail(`op kind ${op.kind} is not a state op`);
  }
}

/**
 * Cost of one op in amplitude updates: fixed work plus its passes over the state (a measurement
 * reads once, writes twice, and rotates before and after when not in Z).
 */
export function opWork(op: Op, n: number): number {
  // A guard is evaluated term by term (~1 µs for 16 nested terms, measured): each term costs as
  // an op does, so a program of many deep guards is not taken for tiny work and run inline.
  if (op.kind === K_GUARD) return OP_WORK_AMPLITUDES * guardTerms(op.guard!);
  if (op.kind === K_COND) return OP_WORK_AMPLITUDES;
  const passes = op.kind === K_MEASURE || op.kind === K_RESET ? 3 : 1;
  const rotations =
    op.kind === K_MEASURE ? (op.m === null ? 0 : 1) + (op.post === null ? 0 : 1) : 0;
  // A dense k-qubit op does 2^k multiply-adds per amplitude where a 1-qubit gate does 2.
  const dense = op.kind === K_DENSE ? 2 ** (op.qs!.length - 1) : 1; // a fused diagonal: 1
  return OP_WORK_AMPLITUDES + (passes + rotations) * dense * 2 ** n;
}
