/**
 * One plan of interactive work on session qubits: merge clusters, run gates and measurements (or
 * a bound job), split measured qubits out. Layer: sim. The gates and measurements are lowered to
 * the op stream of `ops.ts` and applied by its `applyOp` through a `Kernels` interface, the same
 * code jobs run; this file adds only what clusters need: merging, qubit ids, splitting.
 *
 * Replay: the pool worker and crash replay both call `runBatch` with the reference kernels
 * (`jsKernels`, unfused), so the same inputs (with the same draws or forced outcomes) run the
 * same floating-point operations in the same order and give bit-identical outputs.
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
import { GATE_SET, isGateName } from '../kernel/gate-set.js';
import type { BoundJobRun, JobRunResult, SimOp } from '../kernel/ports.js';
import { kronInto, splitOutQubitInto } from './cluster-state.js';
import { ENGINE_QUBITS_MAX } from './engine.js';
import { type Kernels, jsKernels } from './kernels.js';
import { K_RESET, type Op, type OpContext, applyOp, gateOp, measureOp } from './ops.js';
import { runBound } from './program.js';

/**
 * One cluster: `qubits[i]` is the id of bit i; `state` has 2·2^qubits.length doubles and may be a
 * view on a SharedArrayBuffer.
 */
export interface ClusterState {
  qubits: string[];
  state: Float64Array;
}

/** A plan's work: `ops` on the merged `parts`, then `split`; or a bound job (then no ops). */
export interface BatchInput {
  parts: ClusterState[];
  ops: SimOp[];
  split: string[];
  boundJob?: BoundJobRun;
}

export interface BatchOutput {
  clusters: ClusterState[];
  /** One outcome per measurement or RESET, in op order. */
  outcomes: (0 | 1)[];
  /** The bound job's result, when the batch ran one. */
  run?: JobRunResult;
}

/**
 * Lowers interactive ops to the op stream on the merged state (group 0): each measurement and
 * RESET records its outcome as the next event and carries its draw or forced outcome.
 */
function lower(ops: readonly SimOp[], at: (id: string) => number): Op[] {
  let events = 0;
  return ops.map((sim) => {
    let op: Op;
    if (sim.kind === 'gate') {
      const name = sim.name;
      assert(isGateName(name), `unknown gate ${String(name)}`);
      const spec = GATE_SET[name];
      assert(sim.qubits.length === spec.arity, `${name} takes ${spec.arity} qubits`);
      const qs = sim.qubits.map(at);
      assert(new Set(qs).size === qs.length, `${name} operands must be distinct`);
      if (spec.theta) {
        assert(
          typeof sim.theta === 'number' && Number.isFinite(sim.theta),
          `${name} needs a finite theta`,
        );
      }
      op = gateOp(0, name, qs, sim.theta ?? 0);
      if (op.kind !== K_RESET) return op;
      op.event = events++;
    } else {
      assert(sim.basis !== 'ANGLE' || sim.angle !== undefined, 'ANGLE measurement needs an angle');
      op = measureOp(0, at(sim.qubit), sim.basis, sim.angle ?? 0, true, events++);
    }
    decision(op, sim.random, sim.forced);
    return op;
  });
}

/** Sets who decides a measurement: the recorded outcome (replay), else the kernel's draw. */
function decision(op: Op, random: number | undefined, forced: 0 | 1 | undefined): void {
  if (forced !== undefined) {
    assert(forced === 0 || forced === 1, `forced outcome ${String(forced)} is not 0 or 1`);
    op.forced = forced;
    return;
  }
  assert(
    typeof random === 'number' && random >= 0 && random < 1,
    'a measurement needs a random draw in [0, 1) or a forced outcome',
  );
  op.draw = random;
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
 * @param kernels the engine; replayed work must use the reference (the default).
 * @returns the rest cluster first (omitted when empty), then one cluster per split qubit; and
 *   one outcome per measurement or RESET, in op order.
 */
export function runBatch(
  input: BatchInput,
  alloc: (doubles: number) => Float64Array,
  kernels: Kernels = jsKernels,
): BatchOutput {
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
  const lowered = lower(ops, at);
  const ctx: OpContext = { kernels, rng: null, values: new Int32Array(lowered.length) };
  for (const op of lowered) applyOp(op, s, n, ctx);
  const outcomes: (0 | 1)[] = [];
  for (const op of lowered) if (op.event >= 0) outcomes.push(ctx.values[op.event] === 1 ? 1 : 0);
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
