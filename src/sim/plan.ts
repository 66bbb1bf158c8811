/**
 * Compiling a verified program into a plan of ops (`ops.ts`): which qubits share a state (groups),
 * the sampling mode, the key layout, and the ops each group runs once (prefix) or every shot
 * runs (suffix). Layer: sim; imports from kernel/ only the gate table and types. The rules it
 * implements are described in `program.ts`'s header; this file is their mechanics.
 */
import assert from 'node:assert';
import { type Basis, isGateName } from '../kernel/gate-set.js';
import type { Guard, Program, ProgramNode } from '../kernel/program/ir.js';
import { fuseOps } from './fusion.js';
import { type PassCosts, jsKernels } from './kernels.js';
import {
  type CompiledGuard,
  K_COND,
  K_GUARD,
  K_RESET,
  OP_WORK_AMPLITUDES,
  type Op,
  SHOT_WORK_AMPLITUDES,
  basisChange,
  gateOp,
  isUnitary,
  makeOp,
  matrixOp,
  measureOp,
  opWork,
} from './ops.js';

export type Mode = 'sampled' | 'per-shot';

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
/** The basis of each 1-qubit measurement opcode. */
const MEASURE_BASIS: Readonly<Record<string, Basis>> = {
  MEASURE_Z: 'Z',
  MEASURE_X: 'X',
  MEASURE_Y: 'Y',
  MEASURE_ANGLE: 'ANGLE',
};
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
export function analyse(p: Program, bound: readonly number[] = []): Analysis {
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

function compileGuard(g: Guard, events: ReadonlyMap<string, number>): CompiledGuard {
  if ('event' in g) {
    const e = events.get(g.event);
    assert(e !== undefined, `guard reads undeclared event ${g.event} (unverified program)`);
    return { event: e, equals: g.equals };
  }
  return { all: g.type === 'and', parts: g.conditions.map((c) => compileGuard(c, events)) };
}

// The plan: groups, key layout, and the ops to run once (prefix) and per shot (suffix).

export interface GroupPlan {
  /** Program qubit indices in local bit order: measured qubits first (sampled mode needs them in
   * the low bits, so a marginal is a plain sum over the high bits). In a bound run, group 0's
   * first bits are the given state's, -1 where a bit holds no program qubit (a spectator). */
  qubits: number[];
  /** Measured qubits: local bits 0..measured-1. */
  measured: number;
}

export interface Plan {
  mode: Mode;
  /** Number of the program's events (the length of a shot's event values). */
  events: number;
  /**
   * Amplitude updates (`opWork` units) of the unfused ops: run once, and per shot. The estimate
   * is taken before fusion so it does not depend on the engine.
   */
  work: { once: number; perShot: number };
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
export interface BoundLayout {
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
        .map((q) => gateOp(this.groupOf[q]!, 'RESET', [this.local[q]!]));
    }
    if (node.op === 'COND_PAULI') {
      const mask = node.args.mask ?? 'I';
      assert(mask === 'X' || mask === 'Y' || mask === 'Z', `COND_PAULI mask ${mask} (I has no op)`);
      return simulated.map((q) => gateOp(this.groupOf[q]!, mask, [this.local[q]!]));
    }
    if (simulated.length === 0) return [];
    const g = this.groupOf[qs[0]!]!;
    const local = qs.map((q) => this.local[q]!);
    switch (node.op) {
      case 'TELEPORT_CNOT':
        return [gateOp(g, 'CNOT', local)];
      case 'INJECT_T_STATE':
        return [gateOp(g, 'INJECT_T_STATE', local)];
      case 'OPEN_CHAN': {
        // |Φ+> from |00>: reset whichever qubit is not fresh, then H and CNOT.
        const stale = qs.filter((q) => this.fresh[q] === 0);
        const ops = stale.map((q) => gateOp(g, 'RESET', [this.local[q]!]));
        return [...ops, gateOp(g, 'H', local), gateOp(g, 'CNOT', local)];
      }
      case 'MEASURE_BELL':
        return this.measureBell(node, g, qs);
      default: {
        const basis = MEASURE_BASIS[node.op];
        if (basis !== undefined) return this.measure1(node, at, g, qs[0]!, basis);
        const gate = node.op.slice('APPLY_'.length);
        assert(isGateName(gate), `node ${node.id}: ${node.op} is not a gate (unverified program)`);
        return [gateOp(g, gate, local, node.args.theta)];
      }
    }
  }

  /** A 1-qubit measurement: a rotation and a key mark (sampled), or a measure op (per shot). */
  private measure1(node: ProgramNode, at: number, g: number, q: number, basis: Basis): Op[] {
    const angle = node.args.angle ?? 0;
    const e = this.event(node.produces[0]!);
    if (this.a.mode === 'sampled') {
      this.mark(g, q, this.eventOffset[e]!);
      const [pre] = basisChange(basis, angle);
      return pre === null ? [] : [matrixOp(g, this.local[q]!, pre)];
    }
    return [measureOp(g, this.local[q]!, basis, angle, this.a.lastUse[q]! > at, e)];
  }

  /** CNOT(q0, q1), H(q0), then Z on both: m0 is the high bit of a one-event value. */
  private measureBell(node: ProgramNode, g: number, qs: readonly number[]): Op[] {
    const [q0, q1] = [qs[0]!, qs[1]!];
    const local = [this.local[q0]!, this.local[q1]!];
    const ops = [gateOp(g, 'CNOT', local), gateOp(g, 'H', local)];
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
      const op = measureOp(g, this.local[q]!, 'Z', 0, false, e);
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

export function compile(
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
  const sizes = groups.map((g) => g.qubits.length);
  const setWork = (ops: readonly Op[]) => {
    for (const op of ops) op.work = opWork(op, op.group < 0 ? 0 : sizes[op.group]!);
  };
  for (const ops of [...c.prefix, c.suffix]) setWork(ops);
  const work = unfusedWork(a.mode, c.prefix, c.suffix, sizes);
  // Prefixes are free of control flow (guards and event-reading ops start the suffix).
  const prefix = c.prefix.map((ops) => fuseOps(ops, fusion, costs));
  for (const ops of prefix) setWork(ops);
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
    events: p.events.length,
    work,
    groups,
    prefix,
    suffix: c.suffix,
    marks: c.marks,
    keyChars: ev.chars,
    eventOffset: ev.offset,
    eventWidth: ev.width,
  };
}

/**
 * The work of a plan's unfused ops: the ops run once plus each state's initial write (sampling
 * adds probabilities, marginal and cdf); per shot, a draw per group (sampled) or the state
 * restores and the per-shot ops (per-shot).
 */
function unfusedWork(
  mode: Mode,
  prefix: readonly Op[][],
  suffix: readonly Op[],
  sizes: readonly number[],
): { once: number; perShot: number } {
  let once = 0;
  prefix.forEach((ops, g) => {
    for (const op of ops) once += op.work;
    once += (mode === 'sampled' ? 4 : 1) * 2 ** sizes[g]!;
  });
  let perShot = SHOT_WORK_AMPLITUDES;
  if (mode === 'sampled') perShot += OP_WORK_AMPLITUDES * prefix.length;
  else {
    for (const n of sizes) perShot += 2 ** n;
    for (const op of suffix) perShot += op.work;
  }
  return { once, perShot };
}
