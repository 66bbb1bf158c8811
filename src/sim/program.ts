/**
 * The job runner: executes a verified program (`kernel/program/ir.ts`) for N shots and returns
 * counts keyed by the program's events. Layer: sim; it imports the IR as types only (never a
 * runtime value from kernel/), and runs on a pool worker, or inline for tiny work.
 *
 * What it decides:
 * - Groups. Qubits that a multi-qubit op anywhere in the program joins (union-find over CNOT, CZ,
 *   SWAP, TOFFOLI, TELEPORT_CNOT, OPEN_CHAN, MEASURE_BELL; guards ignored, as the verifier does)
 *   share one state vector; every other group is simulated on its own, so 30 unentangled measured
 *   qubits are 30 two-amplitude states, not one of 2^30. Classical feed-forward between groups
 *   (guards, COND_PAULI inputs) travels as event values within a shot and never joins states.
 *   Groups with no measurement cannot change a count and are not simulated at all.
 * - Mode (`samplingMode`). 'sampled' when every measurement is terminal, no op with a state
 *   effect is guarded, no COND_PAULI reads events and no RESET (also none implied by OPEN_CHAN)
 *   acts on a used qubit: then each group is simulated once, measurements become basis
 *   rotations, and shots are drawn from each group's marginal distribution over its measured
 *   qubits (cumulative distribution and binary search). Otherwise 'per-shot': each group's
 *   prefix up to its first measurement, RESET, guarded node or event-reading COND_PAULI is
 *   simulated once, and every shot copies that state and runs the rest with collapse.
 *
 * Invariants it owns:
 * - Reproducible: the only randomness is xoshiro128** seeded by splitmix64 from the decimal
 *   uint64 seed, consumed in a fixed order (per-shot: one draw per measurement and RESET in
 *   program order; sampled: one draw per measured group per shot, in group order), so the same
 *   program, shots and seed give identical counts and shot outcomes.
 * - A zero-probability branch is never chosen: per-shot decisions use both exact branch weights,
 *   and sampling searches only up to the last outcome of non-zero weight.
 * - Bounded: a simulated group has at most `GROUP_QUBITS_MAX` qubits (the verifier's cluster
 *   limit); the per-shot mode keeps one copy of a group's prefix state beside its working state,
 *   the sampled mode overwrites each state with its own cumulative distribution. The shot loops
 *   reuse their buffers: a shot allocates only key strings (keys over 52 characters, and the
 *   outcomes kept).
 * - Cancellable: `control[0]` is polled with Atomics.load at op and shot boundaries whenever about
 *   `POLL_WORK_AMPLITUDES` amplitude updates have passed (well under 1 ms), and `control[1]`
 *   holds the shots finished at each poll and at the end.
 *
 * Semantics it fixes where QVM.md leaves room: an event not produced on a shot (its measurement
 * was skipped by a guard) reads 0 and shows 0. A MEASURE_BELL with one event gives it the value
 * 2·m0 + m1 and two key characters (m0 then m1); guards compare that value with `equals`, and a
 * COND_PAULI applies its Pauli when the XOR of its inputs' values is exactly 1. MEASURE_BELL
 * leaves its qubits in the Z-basis state it read (the op is literally CNOT, H, MZ, MZ); the
 * single-qubit measurements leave theirs in the measured basis' eigenstate, as `batch.ts` does.
 */
import assert from 'node:assert';
import type { JobRunRequest, JobRunResult } from '../kernel/ports.js';
import type { Guard, Program, ProgramNode } from '../kernel/program/ir.js';
import { zeroState } from './engine.js';
import { blockMatrix, permutationMatrix, planFusion } from './fusion.js';
import { type GateName, matrix1 } from './gates.js';
import { type Kernels, type PassCosts, activeKernels, fusionWidth, jsKernels } from './kernels.js';

/** The kernel's `SHOTS_PER_JOB_MAX` (sim may not import kernel values; a test pins them equal). */
export const PROGRAM_SHOTS_MAX = 1_000_000;
/**
 * The kernel's `QUBITS_PER_CLUSTER_MAX`: a group of n qubits holds 16·2^n bytes, 1 GiB at 26. The
 * verifier refuses larger clusters, so a larger group here is a programmer error.
 */
export const GROUP_QUBITS_MAX = 26;
/** The largest seed: a decimal uint64. */
export const SEED_MAX = 2n ** 64n - 1n;
/**
 * Keys of up to 52 characters are counted as numbers (Σ 2^(52-pos) is exact in a double), so a
 * shot costs no string; longer keys are built as strings.
 */
export const KEY_NUMERIC_CHARS_MAX = 52;
/** Amplitude updates between polls of the stop flag: ~2^16 take 0.1–0.3 ms in V8. */
export const POLL_WORK_AMPLITUDES = 1 << 16;
/**
 * A shot's fixed work (the key, one Map update) in amplitude-update units, for polling and
 * `workEstimate`: a sampled Bell shot takes ~60 ns where one amplitude update takes ~2 ns.
 */
export const SHOT_WORK_AMPLITUDES = 16;
/** An op's fixed work (dispatch, the engine's argument checks) in amplitude-update units. */
export const OP_WORK_AMPLITUDES = 16;

/**
 * A run's input and output are the kernel's job-runner port types: the program is verified,
 * shots are 1..PROGRAM_SHOTS_MAX, the seed a decimal uint64; control[0] is the stop flag (checked
 * at gate boundaries, at least every ~1 ms of work) and control[1] the shots completed.
 */
export type ProgramRunInput = JobRunRequest;
export type ProgramRunOutput = JobRunResult;

type Mode = ProgramRunOutput['mode'];

/** The engine a run uses and its fusion width (0: no fusion). */
export interface EngineChoice {
  kernels: Kernels;
  fusion: number;
}

// Analysis: groups, mode, freshness.

/** Ops that change no state: allocation and release, channel bookkeeping, annotations. */
const NO_STATE_EFFECT: ReadonlySet<string> = new Set([
  'ALLOC_LQ',
  'FREE_LQ',
  'USE_CHAN',
  'CLOSE_CHAN',
  'FENCE_EPOCH',
  'BAR_REGION',
  'SET_POLICY',
]);
const MEASUREMENTS: ReadonlySet<string> = new Set([
  'MEASURE_Z',
  'MEASURE_X',
  'MEASURE_Y',
  'MEASURE_ANGLE',
  'MEASURE_BELL',
]);
const ENTANGLING: ReadonlySet<string> = new Set([
  'APPLY_CNOT',
  'APPLY_CZ',
  'APPLY_SWAP',
  'APPLY_TOFFOLI',
  'TELEPORT_CNOT',
  'OPEN_CHAN',
  'MEASURE_BELL',
]);

/** Whether the node can change a state (COND_PAULI with mask I never does). */
function hasEffect(node: ProgramNode): boolean {
  if (NO_STATE_EFFECT.has(node.op)) return false;
  return node.op !== 'COND_PAULI' || (node.args.mask ?? 'I') !== 'I';
}

/** Ops whose effect includes a reset: RESET itself, and OPEN_CHAN on a used qubit. */
function resets(node: ProgramNode): boolean {
  return node.op === 'RESET' || node.op === 'OPEN_CHAN';
}

/**
 * Static freshness (still |0> since ALLOC_LQ, or RESET unguarded) after an effectful node: RESET
 * keeps or makes fresh, anything else spoils it. Conservative under guards: a guarded gate may
 * have run, so the qubit is no longer fresh; a guarded RESET may not have, so it changes nothing.
 */
function touch(node: ProgramNode, qs: readonly number[], fresh: Uint8Array): void {
  for (const q of qs) {
    if (node.op !== 'RESET') fresh[q] = 0;
    else if (node.guard === undefined) fresh[q] = 1;
  }
}

interface Analysis {
  mode: Mode;
  /** Per node: its qubits as indices into `program.qubits`. */
  qubits: number[][];
  /** Per qubit: the union-find root of its group. */
  root: Int32Array;
  /** Qubits in the order of their first measurement. */
  measuredOrder: number[];
  /** Per qubit: index of the last node with a state effect on it, or -1. */
  lastUse: Int32Array;
}

function qubitIndices(p: Program): number[][] {
  const index = new Map<string, number>();
  p.qubits.forEach((name, i) => index.set(name, i));
  return p.nodes.map((node) =>
    node.qubits.map((name) => {
      const i = index.get(name);
      assert(
        i !== undefined,
        `node ${node.id}: qubit ${name} is not declared (unverified program)`,
      );
      return i;
    }),
  );
}

function unionFindRoots(
  p: Program,
  qubits: readonly number[][],
  bound: readonly number[],
): Int32Array {
  const parent = Int32Array.from({ length: p.qubits.length }, (_, i) => i);
  const find = (i: number): number => {
    let r = i;
    while (parent[r] !== r) r = parent[r]!;
    for (let j = i; j !== r; ) {
      const up = parent[j]!;
      parent[j] = r;
      j = up;
    }
    return r;
  };
  p.nodes.forEach((node, i) => {
    if (!ENTANGLING.has(node.op)) return;
    const qs = qubits[i]!;
    for (let k = 1; k < qs.length; k++) parent[find(qs[k]!)] = find(qs[0]!);
  });
  // Bound qubits start in one state (their session clusters, merged).
  for (let k = 1; k < bound.length; k++) parent[find(bound[k]!)] = find(bound[0]!);
  return parent.map((_, i) => find(i));
}

/**
 * One walk in program order: the mode, the measurement order and every qubit's last use. With
 * `bound` qubits (a bound run) the mode is per-shot, since the run must leave their state as a
 * real shot would, and their last use is past the end: their state outlives the program.
 */
function analyse(p: Program, bound: readonly number[] = []): Analysis {
  const qubits = qubitIndices(p);
  const n = p.qubits.length;
  const fresh = new Uint8Array(n).fill(1);
  const measured = new Uint8Array(n);
  const lastUse = new Int32Array(n).fill(-1);
  const measuredOrder: number[] = [];
  let sampled = true;
  p.nodes.forEach((node, i) => {
    if (!hasEffect(node)) return;
    const qs = qubits[i]!;
    if (node.guard !== undefined) sampled = false;
    if (node.op === 'COND_PAULI' && node.inputs.length > 0) sampled = false;
    if (resets(node) && qs.some((q) => fresh[q] === 0)) sampled = false;
    for (const q of qs) {
      if (measured[q] === 1) sampled = false; // a measurement that is not terminal
      lastUse[q] = i;
    }
    if (MEASUREMENTS.has(node.op)) {
      for (const q of qs) {
        if (measured[q] === 0) measuredOrder.push(q);
        measured[q] = 1;
      }
    }
    touch(node, qs, fresh);
  });
  const root = unionFindRoots(p, qubits, bound);
  for (const q of bound) lastUse[q] = p.nodes.length;
  const mode = sampled && bound.length === 0 ? 'sampled' : 'per-shot';
  return { mode, qubits, root, measuredOrder, lastUse };
}

// Compiled ops: one flat, monomorphic shape, so the per-shot loop is a switch over small ints.

const K_MATRIX = 0;
const K_DIAGONAL = 1;
const K_X = 2;
const K_CNOT = 3;
const K_CZ = 4;
const K_SWAP = 5;
const K_TOFFOLI = 6;
const K_MEASURE = 7;
const K_RESET = 8;
/** Control flow: skip the next `skip` ops unless the guard holds. */
const K_GUARD = 9;
/** Control flow: skip the next `skip` ops unless the XOR of `inputs` is 1. */
const K_COND = 10;
/** A fused dense matrix on `qs` (row-major interleaved, local bit j = qs[j]). */
const K_DENSE = 11;
/** A fused diagonal on `qs`: `m` holds the 2^k diagonal entries, interleaved complex. */
const K_DIAGONAL_K = 12;

/** Whether an op kind is a unitary on its group's state (what fusion may merge). */
function isUnitary(kind: number): boolean {
  return kind <= K_TOFFOLI || kind === K_DENSE || kind === K_DIAGONAL_K;
}

type GuardFn = (values: Int32Array) => boolean;

interface Op {
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
  /** K_MEASURE: the event index the outcome is ORed into, shifted left by `shift`. */
  event: number;
  shift: number;
  skip: number;
  guard: GuardFn | null;
  inputs: Int32Array | null;
  /** K_DENSE: its qubits (local bits), in the matrix's bit order. */
  qs: Int32Array | null;
  /** Amplitude updates it costs (`opWork`), for polling and the work estimate. */
  work: number;
}

function makeOp(kind: number, group: number, a = 0, b = 0, c = 0): Op {
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
    skip: 0,
    guard: null,
    inputs: null,
    qs: null,
    work: 0,
  };
}

/** A 1-qubit matrix op, as a diagonal when its off-diagonal entries are exactly zero. */
function matrixOp(group: number, q: number, m: Float64Array): Op {
  const diagonal = m[2] === 0 && m[3] === 0 && m[4] === 0 && m[5] === 0;
  const op = makeOp(diagonal ? K_DIAGONAL : K_MATRIX, group, q);
  op.m = diagonal ? Float64Array.of(m[0]!, m[1]!, m[6]!, m[7]!) : m;
  return op;
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

const H_MATRIX = matrix1('H');
const Y_MATRIX = matrix1('Y');
/** Y basis onto Z: SDG, then H (|+i> ↦ |0>); and back: H, then S. As in `batch.ts`. */
const Y_TO_Z = mul2(H_MATRIX, matrix1('SDG'));
const Z_TO_Y = mul2(matrix1('S'), H_MATRIX);

/** The rotation onto Z and back for a 1-qubit measurement, as in `batch.ts`'s `measure`. */
function basisRotations(node: ProgramNode): [Float64Array | null, Float64Array | null] {
  switch (node.op) {
    case 'MEASURE_X':
      return [H_MATRIX, H_MATRIX];
    case 'MEASURE_Y':
      return [Y_TO_Z, Z_TO_Y];
    case 'MEASURE_ANGLE': {
      // RY(-a) maps RY(a)|0>, the outcome-0 state along the axis at a from Z towards X, to |0>.
      const a = node.args.angle ?? 0;
      return [matrix1('RY', -a), matrix1('RY', a)];
    }
    default:
      return [null, null];
  }
}

function compileGuard(g: Guard, events: ReadonlyMap<string, number>): GuardFn {
  if ('event' in g) {
    const e = events.get(g.event);
    assert(e !== undefined, `guard reads undeclared event ${g.event} (unverified program)`);
    const want = g.equals;
    return (v) => v[e] === want;
  }
  const parts = g.conditions.map((c) => compileGuard(c, events));
  if (g.type === 'and') {
    return (v) => {
      for (const part of parts) if (!part(v)) return false;
      return true;
    };
  }
  return (v) => {
    for (const part of parts) if (part(v)) return true;
    return false;
  };
}

// The plan: groups, key layout, and the ops to run once (prefix) and per shot (suffix).

interface GroupPlan {
  /** Program qubit indices in local bit order: measured qubits first (sampled mode needs them in
   * the low bits, so a marginal is a plain sum over the high bits). In a bound run, group 0's
   * first bits are the given state's, -1 where a bit holds no program qubit (a spectator). */
  qubits: number[];
  /** Measured qubits: local bits 0..measured-1. */
  measured: number;
}

interface Plan {
  mode: Mode;
  groups: GroupPlan[];
  /** Per group: ops run once, before any shot. */
  prefix: Op[][];
  /** Per-shot mode: the ops every shot runs, in program order. */
  suffix: Op[];
  /** Sampled mode, per group: the key character position of each measured local bit. */
  marks: Int32Array[];
  /** Key characters: Σ event widths. */
  keyChars: number;
  /** Per event: its first key character, and its width (2 for a one-event MEASURE_BELL). */
  eventOffset: Int32Array;
  eventWidth: Int32Array;
}

/** A bound run's given state: `width` qubits, program qubit `indices[i]` at bit `bits[i]`. */
interface BoundLayout {
  width: number;
  indices: number[];
  bits: number[];
}

function layoutGroups(
  p: Program,
  a: Analysis,
  bound: BoundLayout | null,
): { groups: GroupPlan[]; groupOf: Int32Array } {
  const groups: GroupPlan[] = [];
  const byRoot = new Map<number, number>();
  const placed = new Set<number>();
  if (bound !== null) {
    // Group 0 is simulated even with no measurement: its final state is the run's result.
    const qubits = new Array<number>(bound.width).fill(-1);
    bound.indices.forEach((q, i) => {
      qubits[bound.bits[i]!] = q;
      placed.add(q);
    });
    groups.push({ qubits, measured: 0 });
    if (bound.indices.length > 0) byRoot.set(a.root[bound.indices[0]!]!, 0);
  }
  for (const q of a.measuredOrder) {
    if (placed.has(q)) continue;
    const r = a.root[q]!;
    let g = byRoot.get(r);
    if (g === undefined) {
      g = groups.length;
      byRoot.set(r, g);
      groups.push({ qubits: [], measured: 0 });
    }
    groups[g]!.qubits.push(q);
    groups[g]!.measured += 1;
  }
  const measured = new Set([...a.measuredOrder, ...placed]);
  const groupOf = new Int32Array(p.qubits.length).fill(-1);
  for (let q = 0; q < p.qubits.length; q++) {
    const g = byRoot.get(a.root[q]!);
    if (g === undefined) continue;
    groupOf[q] = g;
    if (!measured.has(q)) groups[g]!.qubits.push(q);
  }
  return { groups, groupOf };
}

function layoutEvents(p: Program): { offset: Int32Array; width: Int32Array; chars: number } {
  const width = new Int32Array(p.events.length).fill(1);
  const index = new Map<string, number>();
  p.events.forEach((e, i) => index.set(e, i));
  for (const node of p.nodes) {
    if (node.op !== 'MEASURE_BELL' || node.produces.length !== 1) continue;
    const e = index.get(node.produces[0]!);
    if (e !== undefined) width[e] = 2;
  }
  const offset = new Int32Array(p.events.length);
  let chars = 0;
  for (let e = 0; e < p.events.length; e++) {
    offset[e] = chars;
    chars += width[e]!;
  }
  return { offset, width, chars };
}

/** Lowers nodes to ops and routes each to a group's prefix or the per-shot suffix. */
class Compiler {
  readonly prefix: Op[][];
  readonly suffix: Op[] = [];
  readonly marks: Int32Array[];
  private readonly broken: Uint8Array;
  private readonly fresh: Uint8Array;
  private readonly local: Int32Array;
  private readonly events = new Map<string, number>();

  constructor(
    private readonly p: Program,
    private readonly a: Analysis,
    readonly groups: readonly GroupPlan[],
    private readonly groupOf: Int32Array,
    private readonly eventOffset: Int32Array,
    bound: readonly number[],
  ) {
    this.prefix = groups.map(() => []);
    this.marks = groups.map((g) => new Int32Array(g.measured).fill(-1));
    this.broken = new Uint8Array(groups.length);
    this.fresh = new Uint8Array(p.qubits.length).fill(1);
    this.local = new Int32Array(p.qubits.length).fill(-1);
    for (const g of groups) {
      g.qubits.forEach((q, i) => {
        if (q >= 0) this.local[q] = i;
      });
    }
    // A bound qubit holds a session state: never assumed |0>.
    for (const q of bound) this.fresh[q] = 0;
    p.events.forEach((e, i) => this.events.set(e, i));
  }

  compile(): void {
    this.p.nodes.forEach((node, i) => {
      if (!hasEffect(node)) return;
      const qs = this.a.qubits[i]!;
      const ops = this.lower(node, i, qs);
      const breaks =
        this.a.mode === 'per-shot' &&
        (node.guard !== undefined ||
          node.inputs.length > 0 ||
          MEASUREMENTS.has(node.op) ||
          ops.some((op) => op.kind === K_RESET));
      this.route(node, ops, breaks);
      touch(node, qs, this.fresh);
    });
  }

  private route(node: ProgramNode, ops: Op[], breaks: boolean): void {
    if (ops.length === 0) return;
    if (!breaks) {
      for (const op of ops) (this.broken[op.group] ? this.suffix : this.prefix[op.group]!).push(op);
      return;
    }
    for (const op of ops) this.broken[op.group] = 1;
    const head: Op[] = [];
    if (node.op === 'COND_PAULI' && node.inputs.length > 0) {
      const cond = makeOp(K_COND, -1);
      cond.inputs = Int32Array.from(node.inputs, (e) => this.event(e));
      cond.skip = ops.length;
      head.push(cond);
    }
    if (node.guard !== undefined) {
      const guard = makeOp(K_GUARD, -1);
      guard.guard = compileGuard(node.guard, this.events);
      guard.skip = head.length + ops.length;
      head.unshift(guard);
    }
    this.suffix.push(...head, ...ops);
  }

  private event(name: string): number {
    const e = this.events.get(name);
    assert(e !== undefined, `event ${name} is not declared (unverified program)`);
    return e;
  }

  /** The node's ops on simulated groups (a group with no measurement is never simulated). */
  private lower(node: ProgramNode, at: number, qs: readonly number[]): Op[] {
    const simulated = qs.filter((q) => this.groupOf[q]! >= 0);
    if (node.op === 'RESET') {
      return simulated
        .filter((q) => this.fresh[q] === 0) // a RESET of a fresh qubit is a no-op
        .map((q) => makeOp(K_RESET, this.groupOf[q]!, this.local[q]!));
    }
    if (node.op === 'COND_PAULI') {
      const mask = node.args.mask ?? 'I';
      return simulated.map((q) => this.pauli(mask, this.groupOf[q]!, this.local[q]!));
    }
    if (simulated.length === 0) return [];
    const g = this.groupOf[qs[0]!]!;
    const [a = 0, b = 0, c = 0] = qs.map((q) => this.local[q]!);
    switch (node.op) {
      case 'APPLY_X':
        return [makeOp(K_X, g, a)];
      case 'APPLY_CNOT':
      case 'TELEPORT_CNOT':
        return [makeOp(K_CNOT, g, a, b)];
      case 'APPLY_CZ':
        return [makeOp(K_CZ, g, a, b)];
      case 'APPLY_SWAP':
        return [makeOp(K_SWAP, g, a, b)];
      case 'APPLY_TOFFOLI':
        return [makeOp(K_TOFFOLI, g, a, b, c)];
      case 'INJECT_T_STATE':
        return [matrixOp(g, a, matrix1('INJECT_T_STATE'))];
      case 'OPEN_CHAN': {
        // |Φ+> from |00>: reset whichever qubit is not fresh, then H and CNOT.
        const stale = qs.filter((q) => this.fresh[q] === 0);
        const ops = stale.map((q) => makeOp(K_RESET, g, this.local[q]!));
        return [...ops, matrixOp(g, a, H_MATRIX), makeOp(K_CNOT, g, a, b)];
      }
      case 'MEASURE_BELL':
        return this.measureBell(node, g, qs);
      default: {
        if (MEASUREMENTS.has(node.op)) return this.measure1(node, at, g, qs[0]!);
        const gate = node.op.slice('APPLY_'.length) as GateName;
        return [matrixOp(g, a, matrix1(gate, node.args.theta))];
      }
    }
  }

  private pauli(mask: string, g: number, q: number): Op {
    if (mask === 'X') return makeOp(K_X, g, q);
    if (mask === 'Y') return matrixOp(g, q, Y_MATRIX);
    assert(mask === 'Z', `COND_PAULI mask ${mask} (I has no op)`);
    const op = makeOp(K_DIAGONAL, g, q);
    op.m = Float64Array.of(1, 0, -1, 0);
    return op;
  }

  /** A 1-qubit measurement: a rotation and a key mark (sampled), or a measure op (per shot). */
  private measure1(node: ProgramNode, at: number, g: number, q: number): Op[] {
    const [pre, post] = basisRotations(node);
    const e = this.event(node.produces[0]!);
    if (this.a.mode === 'sampled') {
      this.mark(g, q, this.eventOffset[e]!);
      return pre === null ? [] : [matrixOp(g, this.local[q]!, pre)];
    }
    const op = makeOp(K_MEASURE, g, this.local[q]!);
    op.m = pre;
    op.post = this.a.lastUse[q]! > at ? post : null;
    op.event = e;
    return [op];
  }

  /** CNOT(q0, q1), H(q0), then Z on both: m0 is the high bit of a one-event value. */
  private measureBell(node: ProgramNode, g: number, qs: readonly number[]): Op[] {
    const [q0, q1] = [qs[0]!, qs[1]!];
    const ops = [makeOp(K_CNOT, g, this.local[q0]!, this.local[q1]!)];
    ops.push(matrixOp(g, this.local[q0]!, H_MATRIX));
    const one = node.produces.length === 1;
    const e0 = this.event(node.produces[0]!);
    const e1 = one ? e0 : this.event(node.produces[1]!);
    const sides: [number, number, number, number][] = [
      [q0, e0, one ? 1 : 0, this.eventOffset[e0]!],
      [q1, e1, 0, one ? this.eventOffset[e0]! + 1 : this.eventOffset[e1]!],
    ];
    for (const [q, e, shift, pos] of sides) {
      if (this.a.mode === 'sampled') {
        this.mark(g, q, pos);
        continue;
      }
      const op = makeOp(K_MEASURE, g, this.local[q]!);
      op.event = e;
      op.shift = shift;
      ops.push(op);
    }
    return ops;
  }

  private mark(g: number, q: number, pos: number): void {
    const bit = this.local[q]!;
    const marks = this.marks[g]!;
    assert(bit < marks.length && marks[bit] === -1, 'a sampled qubit is measured once, low bits');
    marks[bit] = pos;
  }
}

function compile(
  p: Program,
  bound: BoundLayout | null = null,
  fusion = 0,
  costs: PassCosts = jsKernels.costs,
): Plan {
  const indices = bound?.indices ?? [];
  const a = analyse(p, indices);
  const { groups, groupOf } = layoutGroups(p, a, bound);
  const ev = layoutEvents(p);
  const c = new Compiler(p, a, groups, groupOf, ev.offset, indices);
  c.compile();
  // Prefixes are free of control flow (guards and event-reading ops start the suffix).
  const prefix = c.prefix.map((ops) => fuseOps(ops, fusion, costs));
  const sizes = groups.map((g) => g.qubits.length);
  for (const ops of [...prefix, c.suffix]) {
    for (const op of ops) op.work = opWork(op, op.group < 0 ? 0 : sizes[op.group]!);
  }
  if (a.mode === 'sampled') {
    assert(c.suffix.length === 0, 'a sampled program has no per-shot ops');
    for (const ops of prefix) {
      assert(
        ops.every((op) => isUnitary(op.kind)),
        'a sampled program runs unitaries only',
      );
    }
    for (const marks of c.marks) assert(!marks.includes(-1), 'sampled: every measured bit marked');
  }
  return {
    mode: a.mode,
    groups,
    prefix,
    suffix: c.suffix,
    marks: c.marks,
    keyChars: ev.chars,
    eventOffset: ev.offset,
    eventWidth: ev.width,
  };
}

// Randomness.

const MASK64 = (1n << 64n) - 1n;

/**
 * xoshiro128** (Blackman and Vigna), seeded with two outputs of splitmix64 on the uint64 seed.
 * BigInt only in the constructor; the hot path is 32-bit integer arithmetic.
 */
class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: bigint) {
    let x = seed;
    const next64 = (): bigint => {
      x = (x + 0x9e3779b97f4a7c15n) & MASK64;
      let z = x;
      z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
      z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
      return z ^ (z >> 31n);
    };
    const lo = next64();
    const hi = next64();
    this.s0 = Number(lo & 0xffffffffn) | 0;
    this.s1 = Number(lo >> 32n) | 0;
    this.s2 = Number(hi & 0xffffffffn) | 0;
    this.s3 = Number(hi >> 32n) | 0;
    // An all-zero state would stay zero; splitmix64 is a bijection, so two zero outputs in a row
    // cannot happen, but the generator's one forbidden state is still worth a check.
    assert((this.s0 | this.s1 | this.s2 | this.s3) !== 0, 'xoshiro state is all zero');
  }

  nextU32(): number {
    const s1 = this.s1;
    const r = Math.imul(s1, 5);
    const result = Math.imul((r << 7) | (r >>> 25), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= s1;
    this.s1 = s1 ^ this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = (this.s3 << 11) | (this.s3 >>> 21);
    return result;
  }

  /** A uniform double in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.nextU32() >>> 5;
    const lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }
}

function parseSeed(seed: string): bigint {
  assert(/^[0-9]{1,20}$/.test(seed), `seed ${JSON.stringify(seed)} is not a decimal uint64`);
  const v = BigInt(seed);
  assert(v <= SEED_MAX, `seed ${seed} exceeds 2^64 - 1`);
  return v;
}

// Cancellation and results.

/** Polls the stop flag every `POLL_WORK_AMPLITUDES` of work and publishes shots done. */
class Stopper {
  private work = 0;

  constructor(private readonly control: Int32Array | undefined) {}

  /** Adds work; when a poll is due, publishes `shotsDone` and returns the stop flag, else 0. */
  add(amplitudes: number, shotsDone: number): number {
    this.work += amplitudes;
    if (this.work < POLL_WORK_AMPLITUDES) return 0;
    this.work = 0;
    return this.poll(shotsDone);
  }

  poll(shotsDone: number): number {
    if (this.control === undefined) return 0;
    Atomics.store(this.control, 1, shotsDone);
    return Atomics.load(this.control, 0);
  }
}

const CHAR_0 = 0x30;
const CHAR_1 = 0x31;
const LATIN1 = new TextDecoder('latin1');

/** Counts shot keys: as numbers up to `KEY_NUMERIC_CHARS_MAX` characters, else as strings. */
class Tally {
  private key = 0;
  private readonly chars: Uint8Array | null;
  private readonly weights: Float64Array;
  private readonly numeric = new Map<number, number>();
  private readonly text = new Map<string, number>();
  readonly outcomes: string[] = [];

  constructor(
    private readonly length: number,
    private readonly outcomesMax: number,
  ) {
    const numeric = length <= KEY_NUMERIC_CHARS_MAX;
    this.chars = numeric ? null : new Uint8Array(length).fill(CHAR_0);
    this.weights = Float64Array.from(
      { length: numeric ? length : 0 },
      (_, i) => 2 ** (length - 1 - i),
    );
  }

  clear(): void {
    this.key = 0;
    this.chars?.fill(CHAR_0);
  }

  /** Sets key character `pos` (0 = leftmost) to 1; each position at most once per shot. */
  set(pos: number): void {
    if (this.chars === null) this.key += this.weights[pos]!;
    else this.chars[pos] = CHAR_1;
  }

  commit(): void {
    if (this.chars === null) {
      this.numeric.set(this.key, (this.numeric.get(this.key) ?? 0) + 1);
      if (this.outcomes.length < this.outcomesMax) this.outcomes.push(this.numberKey(this.key));
      return;
    }
    const k = LATIN1.decode(this.chars);
    this.text.set(k, (this.text.get(k) ?? 0) + 1);
    if (this.outcomes.length < this.outcomesMax) this.outcomes.push(k);
  }

  private numberKey(key: number): string {
    return this.length === 0 ? '' : key.toString(2).padStart(this.length, '0');
  }

  /** Counts by key string, keys in ascending order. */
  counts(): Record<string, number> {
    const entries: [string, number][] = [...this.text];
    for (const [k, v] of this.numeric) entries.push([this.numberKey(k), v]);
    entries.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    return Object.fromEntries(entries);
  }
}

// Execution.

const BRANCH = new Float64Array(2);

/** Measures qubit q in Z and collapses; a branch of weight exactly 0 is never chosen. */
function measureZ(k: Kernels, s: Float64Array, n: number, q: number, rng: Rng): 0 | 1 {
  k.branchWeights(s, n, q, BRANCH);
  const p0 = BRANCH[0]!;
  const p1 = BRANCH[1]!;
  const u = rng.next();
  const outcome: 0 | 1 = p0 === 0 ? 1 : p1 === 0 ? 0 : u * (p0 + p1) < p1 ? 1 : 0;
  const kept = outcome === 1 ? p1 : p0;
  assert(kept > 0, `collapse of qubit ${q} onto ${outcome}, which has probability 0`);
  k.collapse(s, n, q, outcome, 1 / Math.sqrt(kept));
  return outcome;
}

function applyOp(op: Op, s: Float64Array, n: number, m: Machine): void {
  const k = m.kernels;
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
      const outcome = measureZ(k, s, n, op.a, m.rng);
      if (op.post !== null) k.matrix1(s, n, op.a, op.post);
      m.values[op.event] = m.values[op.event]! | (outcome << op.shift);
      return;
    }
    case K_RESET:
      if (measureZ(k, s, n, op.a, m.rng) === 1) k.x(s, n, op.a);
      return;
    default:
      assert.fail(`op kind ${op.kind} is not a state op`);
  }
}

// Fusion.

/** An op's qubits and full matrix over them (local bit j = qubits[j]), for the fusion planner. */
function opMatrix(op: Op): { qubits: number[]; matrix: Float64Array } {
  switch (op.kind) {
    case K_MATRIX:
      return { qubits: [op.a], matrix: op.m! };
    case K_DIAGONAL: {
      const d = op.m!;
      return { qubits: [op.a], matrix: Float64Array.of(d[0]!, d[1]!, 0, 0, 0, 0, d[2]!, d[3]!) };
    }
    case K_DENSE:
      return { qubits: [...op.qs!], matrix: op.m! };
    case K_DIAGONAL_K: {
      const d = op.m!;
      const dim = d.length / 2;
      const m = new Float64Array(2 * dim * dim);
      for (let i = 0; i < dim; i++) {
        m[2 * (i * dim + i)] = d[2 * i]!;
        m[2 * (i * dim + i) + 1] = d[2 * i + 1]!;
      }
      return { qubits: [...op.qs!], matrix: m };
    }
    case K_X:
      return { qubits: [op.a], matrix: permutationMatrix('X') };
    case K_CNOT:
      return { qubits: [op.a, op.b], matrix: permutationMatrix('CNOT') };
    case K_CZ:
      return { qubits: [op.a, op.b], matrix: permutationMatrix('CZ') };
    case K_SWAP:
      return { qubits: [op.a, op.b], matrix: permutationMatrix('SWAP') };
    case K_TOFFOLI:
      return { qubits: [op.a, op.b, op.c], matrix: permutationMatrix('TOFFOLI') };
    default:
      return assert.fail(`op kind ${op.kind} has no matrix`);
  }
}

function opQubits(op: Op): number[] {
  if (op.kind === K_DENSE || op.kind === K_DIAGONAL_K) return [...op.qs!];
  if (op.kind === K_TOFFOLI) return [op.a, op.b, op.c];
  if (op.kind >= K_CNOT && op.kind <= K_SWAP) return [op.a, op.b];
  return [op.a];
}

/** What an op costs the engine, in the units of its `PassCosts`. */
function passCost(op: Op, costs: PassCosts): number {
  switch (op.kind) {
    case K_MATRIX:
      return costs.matrix1;
    case K_DIAGONAL:
      return costs.diagonal;
    case K_X:
    case K_CNOT:
    case K_SWAP:
    case K_TOFFOLI:
      return costs.permutation;
    case K_CZ:
      return costs.phase;
    case K_DIAGONAL_K:
      return costs.diagonalK[op.qs!.length] ?? Number.POSITIVE_INFINITY;
    case K_DENSE:
      return costs.dense[op.qs!.length] ?? Number.POSITIVE_INFINITY;
    default:
      return costs.matrix1;
  }
}

/**
 * A block as the engine should run it: fused into one op when that costs less than its gates run
 * one by one (e.g. in JavaScript a 2-qubit dense pass costs about two 1-qubit passes, so a block
 * of one rotation and a CZ is cheaper unfused), else its gates in block order (a valid order).
 */
function fusedOps(block: readonly Op[], costs: PassCosts): Op[] {
  const fused = fusedOp(block);
  if (block.length === 1) return [fused];
  const separate = block.reduce((sum, op) => sum + passCost(op, costs), 0);
  return passCost(fused, costs) <= separate ? [fused] : [...block];
}

/** One fused op for a block: the op itself when alone, else a 2×2 or dense matrix. */
function fusedOp(block: readonly Op[]): Op {
  if (block.length === 1) return block[0]!;
  const parts = block.map(opMatrix);
  const qubits = [...new Set(parts.flatMap((p) => p.qubits))].sort((x, y) => x - y);
  const m = blockMatrix(parts, qubits);
  const group = block[0]!.group;
  if (qubits.length === 1) return matrixOp(group, qubits[0]!, m);
  const diagonal = diagonalOf(m, 1 << qubits.length);
  const op = makeOp(diagonal === null ? K_DENSE : K_DIAGONAL_K, group, qubits[0]!);
  op.qs = Int32Array.from(qubits);
  op.m = diagonal ?? m;
  return op;
}

/**
 * The diagonal of a dim × dim matrix whose off-diagonal entries are all exactly zero (a block of
 * phases, CZs and RZs, or a QFT's controlled phases), else null. Exact zeros only: products of
 * permutations and diagonals give exact zeros, and a diagonal pass costs one multiply per
 * amplitude where a dense one costs dim.
 */
function diagonalOf(m: Float64Array, dim: number): Float64Array | null {
  for (let r = 0; r < dim; r++) {
    for (let c = 0; c < dim; c++) {
      if (r !== c && (m[2 * (r * dim + c)] !== 0 || m[2 * (r * dim + c) + 1] !== 0)) return null;
    }
  }
  const d = new Float64Array(2 * dim);
  for (let i = 0; i < dim; i++) {
    d[2 * i] = m[2 * (i * dim + i)]!;
    d[2 * i + 1] = m[2 * (i * dim + i) + 1]!;
  }
  return d;
}

/**
 * Fuses the runs of unitary ops in a control-flow-free op list into blocks of at most `width`
 * qubits (0: no fusion). Non-unitary ops (measurements, RESET) stay where they are.
 */
function fuseOps(ops: readonly Op[], width: number, costs: PassCosts): Op[] {
  if (width === 0) return [...ops];
  const out: Op[] = [];
  let run: { op: Op; qubits: number[]; domain: number }[] = [];
  const flush = (): void => {
    for (const block of planFusion(run, width))
      out.push(
        ...fusedOps(
          block.map((g) => g.op),
          costs,
        ),
      );
    run = [];
  };
  for (const op of ops) {
    assert(op.kind !== K_GUARD && op.kind !== K_COND, 'fusion runs on control-flow-free lists');
    if (isUnitary(op.kind)) run.push({ op, qubits: opQubits(op), domain: op.group });
    else {
      flush();
      out.push(op);
    }
  }
  flush();
  return out;
}

/**
 * Cost of one op in amplitude updates: fixed work plus its passes over the state (a measurement
 * reads once, writes twice, and rotates before and after when not in Z).
 */
function opWork(op: Op, n: number): number {
  if (op.kind === K_GUARD || op.kind === K_COND) return 1;
  const passes = op.kind === K_MEASURE || op.kind === K_RESET ? 3 : 1;
  const rotations =
    op.kind === K_MEASURE ? (op.m === null ? 0 : 1) + (op.post === null ? 0 : 1) : 0;
  // A dense k-qubit op does 2^k multiply-adds per amplitude where a 1-qubit gate does 2.
  const dense = op.kind === K_DENSE ? 2 ** (op.qs!.length - 1) : 1; // a fused diagonal: 1
  return OP_WORK_AMPLITUDES + (passes + rotations) * dense * 2 ** n;
}

interface Machine {
  states: Float64Array[];
  sizes: Int32Array;
  rng: Rng;
  values: Int32Array;
  stop: Stopper;
  kernels: Kernels;
  /** States this run allocated, handed back to the engine when the run ends. */
  owned: { s: Float64Array; n: number }[];
}

function freshState(m: Machine, n: number): Float64Array {
  const s = m.kernels.alloc(n);
  m.owned.push({ s, n });
  return s;
}

function releaseAll(m: Machine): void {
  for (const { s, n } of m.owned) m.kernels.release(s, n);
  m.owned = [];
}

/** Runs ops in order (control flow included); returns the stop flag if one was seen, else 0. */
function execute(ops: readonly Op[], m: Machine, shotsDone: number): number {
  const { states, sizes, values, stop } = m;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    if (op.kind === K_GUARD) {
      if (!op.guard!(values)) i += op.skip;
      continue;
    }
    if (op.kind === K_COND) {
      const inputs = op.inputs!;
      let x = 0;
      for (let k = 0; k < inputs.length; k++) x ^= values[inputs[k]!]!;
      if (x !== 1) i += op.skip;
      continue;
    }
    applyOp(op, states[op.group]!, sizes[op.group]!, m);
    const flag = stop.add(op.work, shotsDone);
    if (flag !== 0) return flag;
  }
  return 0;
}

/**
 * Replaces a group's state by its cumulative marginal distribution over the measured (low) k
 * bits, in place: probabilities over the first 2^n doubles, then the high bits summed away.
 * Returns the distribution (a compact copy when k < n, so the full state can be freed) and the
 * last outcome with non-zero weight, or the stop flag.
 */
function cumulative(
  s: Float64Array,
  n: number,
  k: number,
  stop: Stopper,
): { cdf: Float64Array; last: number } | number {
  const size = 1 << n;
  const m = 1 << k;
  for (let i = 0; i < size; i++) s[i] = s[2 * i]! * s[2 * i]! + s[2 * i + 1]! * s[2 * i + 1]!;
  let flag = stop.add(2 * size, 0);
  for (let h = m; h < size && flag === 0; h += m) {
    for (let j = 0; j < m; j++) s[j] = s[j]! + s[h + j]!;
    flag = stop.add(m, 0);
  }
  if (flag !== 0) return flag;
  let acc = 0;
  let last = -1;
  for (let j = 0; j < m; j++) {
    if (s[j]! > 0) last = j;
    acc += s[j]!;
    s[j] = acc;
  }
  assert(last >= 0, 'a group state has zero norm');
  return { cdf: k < n ? s.slice(0, m) : s.subarray(0, m), last };
}

/** The smallest j ≤ last with cdf[j] > x, else last: never an outcome of zero weight. */
function search(cdf: Float64Array, last: number, x: number): number {
  let lo = 0;
  let hi = last;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cdf[mid]! > x) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function runSampled(plan: Plan, m: Machine, tally: Tally, shots: number): [number, number] {
  const dists: { cdf: Float64Array; last: number; marks: Int32Array }[] = [];
  for (let g = 0; g < plan.groups.length; g++) {
    const n = m.sizes[g]!;
    m.states[g] = freshState(m, n);
    const flag = execute(plan.prefix[g]!, m, 0);
    if (flag !== 0) return [flag, 0];
    const d = cumulative(m.states[g]!, n, plan.groups[g]!.measured, m.stop);
    m.states[g] = EMPTY; // the distribution holds what is still needed
    if (typeof d === 'number') return [d, 0];
    dists.push({ ...d, marks: plan.marks[g]! });
  }
  const shotWork = SHOT_WORK_AMPLITUDES + OP_WORK_AMPLITUDES * dists.length;
  for (let shot = 0; shot < shots; shot++) {
    tally.clear();
    for (const { cdf, last, marks } of dists) {
      let j = search(cdf, last, m.rng.next() * cdf[last]!);
      for (let b = 0; j !== 0; b++, j >>>= 1) if ((j & 1) === 1) tally.set(marks[b]!);
    }
    tally.commit();
    const flag = m.stop.add(shotWork, shot + 1);
    if (flag !== 0) return [flag, shot + 1];
  }
  return [0, shots];
}

const EMPTY = new Float64Array(0);

function runPerShot(
  plan: Plan,
  m: Machine,
  tally: Tally,
  shots: number,
  initial: (g: number, n: number) => Float64Array = (_g, n) => freshState(m, n),
): [number, number] {
  // Each group's prefix once; a snapshot only when there is a prefix and more than one shot.
  const snaps: (Float64Array | null)[] = [];
  for (let g = 0; g < plan.groups.length; g++) {
    m.states[g] = initial(g, m.sizes[g]!);
    const flag = execute(plan.prefix[g]!, m, 0);
    if (flag !== 0) return [flag, 0];
    snaps.push(plan.prefix[g]!.length > 0 && shots > 1 ? m.states[g]!.slice() : null);
  }
  const events = plan.eventOffset.length;
  const restoreWork = SHOT_WORK_AMPLITUDES + m.sizes.reduce((w, n) => w + 2 ** n, 0);
  for (let shot = 0; shot < shots; shot++) {
    // The first shot runs on the prefix state itself; later ones restore it.
    for (let g = 0; g < plan.groups.length && shot > 0; g++) {
      const snap = snaps[g] ?? null;
      const s = m.states[g]!;
      if (snap !== null) s.set(snap);
      else {
        s.fill(0);
        s[0] = 1;
      }
    }
    m.values.fill(0);
    const flag = execute(plan.suffix, m, shot);
    if (flag !== 0) return [flag, shot];
    tally.clear();
    for (let e = 0; e < events; e++) {
      const v = m.values[e]!;
      if (v === 0) continue;
      const off = plan.eventOffset[e]!;
      if (plan.eventWidth[e] === 1) tally.set(off);
      else {
        if ((v & 2) !== 0) tally.set(off);
        if ((v & 1) !== 0) tally.set(off + 1);
      }
    }
    tally.commit();
    const after = m.stop.add(restoreWork, shot + 1);
    if (after !== 0) return [after, shot + 1];
  }
  return [0, shots];
}

/**
 * Runs a verified program for `shots` shots. Never throws for a verified program; assertions
 * guard the input contract (shot range, seed form) and internal invariants.
 */
export function runProgram(
  input: ProgramRunInput,
  engine: EngineChoice = { kernels: activeKernels(), fusion: fusionWidth() },
): ProgramRunOutput {
  const { program, shots, seed, shotOutcomesMax, control } = input;
  assert(Number.isInteger(shots) && shots >= 1 && shots <= PROGRAM_SHOTS_MAX, `shots ${shots}`);
  assert(Number.isInteger(shotOutcomesMax) && shotOutcomesMax >= 0, 'shotOutcomesMax ≥ 0');
  assert(control === undefined || control.length >= 2, 'control has two words');
  const rng = new Rng(parseSeed(seed));
  const plan = compile(program, null, engine.fusion, engine.kernels.costs);
  const sizes = Int32Array.from(plan.groups, (g) => g.qubits.length);
  for (const n of sizes) assert(n <= GROUP_QUBITS_MAX, `a group of ${n} qubits (unverified?)`);
  const m: Machine = {
    states: plan.groups.map(() => EMPTY),
    sizes,
    rng,
    values: new Int32Array(program.events.length),
    stop: new Stopper(control),
    kernels: engine.kernels,
    owned: [],
  };
  const tally = new Tally(plan.keyChars, Math.min(shotOutcomesMax, shots));
  const early = m.stop.poll(0);
  const [stopped, shotsDone] =
    early !== 0
      ? [early, 0]
      : plan.mode === 'sampled'
        ? runSampled(plan, m, tally, shots)
        : runPerShot(plan, m, tally, shots);
  if (control !== undefined) Atomics.store(control, 1, shotsDone);
  releaseAll(m);
  return {
    stopped,
    counts: tally.counts(),
    shotOutcomes: tally.outcomes,
    mode: plan.mode,
    shotsDone,
    largestState: sizes.reduce((x, n) => Math.max(x, n), 0),
  };
}

/** A bound run: one shot of a program on qubits that already hold a state (session qubits). */
export interface BoundRunInput {
  /** Verified with these names bound (they are live from the start, never allocated). */
  program: Program;
  seed: string;
  shotOutcomesMax: number;
  /** The merged state of the bound qubits' clusters: 2·2^width doubles; consumed. */
  state: Float64Array;
  width: number;
  /** Each bound program qubit name and its bit in `state`; other bits are spectators. */
  bound: { name: string; bit: number }[];
  /** Allocates the returned state (a SharedArrayBuffer view on the pool). */
  alloc: (doubles: number) => Float64Array;
}

export interface BoundRunOutput extends ProgramRunOutput {
  /** The `width` qubits' state after the program, bits as in the input. */
  state: Float64Array;
}

/**
 * Runs a program once on bound qubits. The given state is group 0's low bits; program qubits
 * the program joins to it take the bits above. Everything a real shot does happens (collapse,
 * measured-basis eigenstates, guards), and at the end each program-allocated qubit still in group
 * 0 is measured in Z (a draw from the same generator) and split off, as a release would, so the
 * bound qubits keep a state of exactly `width` qubits. Deterministic in (program, seed, state):
 * crash replay re-runs it to the same bits.
 */
export function runBound(input: BoundRunInput): BoundRunOutput {
  const { program, seed, shotOutcomesMax, state, width, bound, alloc } = input;
  assert(state.length === 2 << width, 'bound state length does not match its width');
  const index = new Map<string, number>();
  program.qubits.forEach((name, i) => index.set(name, i));
  const indices = bound.map((b) => {
    const i = index.get(b.name);
    assert(i !== undefined, `bound qubit ${b.name} is not a program qubit`);
    assert(Number.isInteger(b.bit) && b.bit >= 0 && b.bit < width, `bound bit ${b.bit}`);
    return i;
  });
  const plan = compile(program, { width, indices, bits: bound.map((b) => b.bit) });
  assert(plan.mode === 'per-shot', 'a bound run is per shot');
  const sizes = Int32Array.from(plan.groups, (g) => g.qubits.length);
  for (const n of sizes) assert(n <= GROUP_QUBITS_MAX, `a group of ${n} qubits (unverified?)`);
  const m: Machine = {
    states: plan.groups.map(() => EMPTY),
    sizes,
    rng: new Rng(parseSeed(seed)),
    values: new Int32Array(program.events.length),
    stop: new Stopper(undefined),
    // The reference engine, unfused: crash replay must reproduce these bits whatever engine the
    // restarted daemon picks.
    kernels: jsKernels,
    owned: [],
  };
  const tally = new Tally(plan.keyChars, Math.min(shotOutcomesMax, 1));
  const initial = (g: number, n: number): Float64Array => {
    if (g !== 0) return zeroState(n);
    if (n === width) return state;
    const s = new Float64Array(2 << n);
    s.set(state);
    return s;
  };
  const [stopped, shotsDone] = runPerShot(plan, m, tally, 1, initial);
  assert(stopped === 0 && shotsDone === 1, 'a bound run has no stop flag');
  // Measure out what the program added to group 0, then keep the slice of the outcome.
  const s = m.states[0]!;
  const n = sizes[0]!;
  let offset = 0;
  for (let b = width; b < n; b++) offset |= measureZ(m.kernels, s, n, b, m.rng) << b;
  const out = alloc(2 << width);
  out.set(s.subarray(2 * offset, 2 * offset + (2 << width)));
  return {
    stopped: 0,
    counts: tally.counts(),
    shotOutcomes: tally.outcomes,
    mode: 'per-shot',
    shotsDone: 1,
    largestState: sizes.reduce((x, k) => Math.max(x, k), 0),
    state: out,
  };
}

/** Passes over group states a program's ops make at a fusion width (benchmarks, tests). */
export function stateOpCount(
  program: Program,
  fusion: number,
  costs: PassCosts = jsKernels.costs,
): number {
  return fusionStats(program, fusion, costs).ops;
}

/** The state ops of a plan, and how many are fused dense and fused diagonal blocks. */
export function fusionStats(
  program: Program,
  fusion: number,
  costs: PassCosts = jsKernels.costs,
): { ops: number; dense: number; diagonal: number } {
  const plan = compile(program, null, fusion, costs);
  const out = { ops: 0, dense: 0, diagonal: 0 };
  for (const list of [...plan.prefix, plan.suffix]) {
    for (const op of list) {
      if (op.group < 0) continue;
      out.ops++;
      if (op.kind === K_DENSE) out.dense++;
      if (op.kind === K_DIAGONAL_K) out.diagonal++;
    }
  }
  return out;
}

/**
 * The state of each simulated group of a sampled-mode program after its unitary part, before any
 * shot is drawn: what the conformance suite compares across engines and what `bench:sim` times.
 * `qubits[b]` is the program qubit name at local bit b.
 */
export function finalStates(
  program: Program,
  engine: EngineChoice = { kernels: activeKernels(), fusion: fusionWidth() },
): { qubits: string[]; state: Float64Array }[] {
  const plan = compile(program, null, engine.fusion, engine.kernels.costs);
  assert(plan.mode === 'sampled', 'finalStates needs a program whose measurements are terminal');
  const sizes = Int32Array.from(plan.groups, (g) => g.qubits.length);
  const m: Machine = {
    states: plan.groups.map(() => EMPTY),
    sizes,
    rng: new Rng(0n),
    values: new Int32Array(program.events.length),
    stop: new Stopper(undefined),
    kernels: engine.kernels,
    owned: [],
  };
  return plan.groups.map((g, i) => {
    m.states[i] = freshState(m, sizes[i]!);
    execute(plan.prefix[i]!, m, 0);
    return { qubits: g.qubits.map((q) => program.qubits[q]!), state: m.states[i]! };
  });
}

/**
 * 'sampled' when every measurement is terminal (nothing but FREE_LQ and annotations touches a
 * measured qubit later), no node with a state effect is guarded, no COND_PAULI reads events, and
 * no RESET (or OPEN_CHAN, which resets) acts on a qubit that is not fresh; else 'per-shot'.
 * Pure and cheap: one walk over the nodes.
 */
export function samplingMode(program: Program): 'sampled' | 'per-shot' {
  return analyse(program).mode;
}

/**
 * Work estimate in amplitude updates: the ops run once, plus per shot (sampled) a draw per group
 * or (per-shot) the state restores and the per-shot ops. Saturates at Number.MAX_SAFE_INTEGER.
 */
export function workEstimate(program: Program, shots: number): number {
  const plan = compile(program);
  const sizes = plan.groups.map((g) => g.qubits.length);
  let once = 0;
  plan.prefix.forEach((ops, g) => {
    for (const op of ops) once += op.work;
    // Each state is written once at the start; sampling adds probabilities, marginal and cdf.
    once += (plan.mode === 'sampled' ? 4 : 1) * 2 ** sizes[g]!;
  });
  let perShot = SHOT_WORK_AMPLITUDES;
  if (plan.mode === 'sampled') perShot += OP_WORK_AMPLITUDES * plan.groups.length;
  else {
    for (const n of sizes) perShot += 2 ** n;
    for (const op of plan.suffix) perShot += op.work;
  }
  return Math.min(once + shots * perShot, Number.MAX_SAFE_INTEGER);
}
