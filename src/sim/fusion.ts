/**
 * Gate fusion (qsim-style): greedily merges runs of gates that together act on at most k qubits
 * into one dense 2^k × 2^k matrix, so a circuit costs fewer passes over the state. Used by both
 * engines. Layer: sim; pure.
 *
 * The planner, in program order: the first gate not yet placed opens a block; later gates join it
 * while the block's qubits stay ≤ k. A gate that cannot join is skipped and its qubits become
 * blocked; a later gate touching a blocked qubit cannot join either (it would have to move past a
 * skipped gate it does not commute with — disjoint gates always commute, so a gate that touches no
 * blocked qubit may move ahead of every skipped one). The block ends when all its qubits are
 * blocked or the lookahead is spent. Skipped gates keep their order and open later blocks, so the
 * fused sequence is the same unitary as the original.
 *
 * Gates in different `domain`s (different state vectors) never join a block.
 */
import assert from 'node:assert';
import type { PassCosts } from './kernels.js';
import {
  K_CNOT,
  K_COND,
  K_CZ,
  K_DENSE,
  K_DIAGONAL,
  K_DIAGONAL_K,
  K_GUARD,
  K_MATRIX,
  K_SWAP,
  K_TOFFOLI,
  K_X,
  type Op,
  isUnitary,
  makeOp,
  matrixOp,
} from './ops.js';

/** A gate the planner can place: its qubits (local bits of its domain's state). */
export interface Placeable {
  readonly qubits: readonly number[];
  /** The state vector it acts on; gates of different domains never fuse. */
  readonly domain: number;
}

/** How far past a block's first gate the planner looks for gates to join. */
export const FUSION_LOOKAHEAD = 128;

/**
 * Groups gates into blocks of at most k qubits each (k ≥ 1). Concatenating the blocks gives a
 * reordering of the gates equal to the original circuit as a unitary.
 */
export function planFusion<G extends Placeable>(
  gates: readonly G[],
  k: number,
  lookahead = FUSION_LOOKAHEAD,
): G[][] {
  assert(Number.isInteger(k) && k >= 1, `fusion width ${k}`);
  const placed = new Uint8Array(gates.length);
  const blocks: G[][] = [];
  for (let i = 0; i < gates.length; i++) {
    if (placed[i] === 1) continue;
    const first = gates[i]!;
    placed[i] = 1;
    const block = [first];
    const qs = new Set(first.qubits);
    if (qs.size > k) {
      blocks.push(block);
      continue;
    }
    const blocked = new Set<number>();
    const end = Math.min(gates.length, i + 1 + lookahead);
    for (let j = i + 1; j < end; j++) {
      if (placed[j] === 1) continue;
      const g = gates[j]!;
      const joins =
        g.domain === first.domain &&
        !g.qubits.some((q) => blocked.has(q)) &&
        unionSize(qs, g.qubits) <= k;
      if (joins) {
        placed[j] = 1;
        block.push(g);
        for (const q of g.qubits) qs.add(q);
      } else if (g.domain === first.domain) {
        for (const q of g.qubits) blocked.add(q);
        if ([...qs].every((q) => blocked.has(q))) break;
      }
    }
    blocks.push(block);
  }
  return blocks;
}

function unionSize(a: ReadonlySet<number>, b: readonly number[]): number {
  let extra = 0;
  for (const q of b) if (!a.has(q)) extra++;
  return a.size + extra;
}

/**
 * Applies a k-qubit matrix (row-major interleaved, local bit j = positions[j]) to every column of
 * `u`, a 2^w × 2^w matrix over w qubits: u ← G·u. Small (w ≤ 5), so clarity over speed.
 */
function leftMultiply(u: Float64Array, w: number, positions: readonly number[], g: Float64Array) {
  const k = positions.length;
  const d = 1 << k;
  const dim = 1 << w;
  const mask = positions.reduce((acc, p) => acc | (1 << p), 0);
  const idx = new Int32Array(d);
  const xr = new Float64Array(d);
  const xi = new Float64Array(d);
  for (let col = 0; col < dim; col++) {
    for (let rest = 0; rest < dim; rest++) {
      if ((rest & mask) !== 0) continue;
      for (let c = 0; c < d; c++) {
        let r = rest;
        for (let j = 0; j < k; j++) if ((c >> j) & 1) r |= 1 << positions[j]!;
        idx[c] = r;
        xr[c] = u[2 * (r * dim + col)]!;
        xi[c] = u[2 * (r * dim + col) + 1]!;
      }
      for (let r = 0; r < d; r++) {
        let sr = 0;
        let si = 0;
        for (let c = 0; c < d; c++) {
          const ar = g[2 * (r * d + c)]!;
          const ai = g[2 * (r * d + c) + 1]!;
          sr += ar * xr[c]! - ai * xi[c]!;
          si += ar * xi[c]! + ai * xr[c]!;
        }
        u[2 * (idx[r]! * dim + col)] = sr;
        u[2 * (idx[r]! * dim + col) + 1] = si;
      }
    }
  }
}

/**
 * The product of a block's gates (in order) as one dense matrix over `qubits` (local bit j =
 * qubits[j]). Each gate gives its own matrix over its own qubits (local bit j = its qubits[j]).
 */
export function blockMatrix(
  gates: readonly { qubits: readonly number[]; matrix: Float64Array }[],
  qubits: readonly number[],
): Float64Array {
  const w = qubits.length;
  const dim = 1 << w;
  const u = new Float64Array(2 * dim * dim);
  for (let r = 0; r < dim; r++) u[2 * (r * dim + r)] = 1;
  const local = new Map(qubits.map((q, j) => [q, j]));
  for (const g of gates) {
    const positions = g.qubits.map((q) => {
      const p = local.get(q);
      assert(p !== undefined, `gate qubit ${q} is not in the block`);
      return p;
    });
    assert(g.matrix.length === 2 << (2 * positions.length), 'gate matrix size');
    leftMultiply(u, w, positions, g.matrix);
  }
  return u;
}

/** Matrices of the fixed multi-qubit gates, local bit 0 = first operand (row-major). */
export function permutationMatrix(kind: 'X' | 'CNOT' | 'CZ' | 'SWAP' | 'TOFFOLI'): Float64Array {
  const k = kind === 'X' ? 1 : kind === 'TOFFOLI' ? 3 : 2;
  const d = 1 << k;
  const m = new Float64Array(2 * d * d);
  for (let c = 0; c < d; c++) {
    let r = c;
    let sign = 1;
    if (kind === 'X') r = c ^ 1;
    if (kind === 'CNOT' && (c & 1) === 1) r = c ^ 2; // control bit 0, target bit 1
    if (kind === 'CZ' && c === 3) sign = -1;
    if (kind === 'SWAP') r = ((c & 1) << 1) | ((c >> 1) & 1);
    if (kind === 'TOFFOLI' && (c & 3) === 3) r = c ^ 4; // controls bits 0, 1; target bit 2
    m[2 * (r * d + c)] = sign;
  }
  return m;
}

// Fusion of op lists: what the planner above does to the op stream of `ops.ts`.

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
export function fuseOps(ops: readonly Op[], width: number, costs: PassCosts): Op[] {
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
