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
 * - Bounded: a simulated group has at most `QUBITS_PER_CLUSTER_MAX` qubits (the verifier's cluster
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
 * single-qubit measurements leave theirs in the measured basis' eigenstate, as interactive measurements do
 * (`ops.ts` defines both).
 */
import assert from 'node:assert';
import type { ProgramFormat } from '../kernel/job-model.js';
import { QUBITS_PER_CLUSTER_MAX, SHOTS_PER_JOB_MAX } from '../kernel/limits.js';
import type { JobRunRequest, JobRunResult } from '../kernel/ports.js';
import { type PreparedRun, type RunEstimate, parseProgram } from '../kernel/program-check.js';
import type { Program } from '../kernel/program/ir.js';
import { zeroState } from './engine.js';
import { type Kernels, type PassCosts, activeKernels, fusionWidth, jsKernels } from './kernels.js';
import {
  K_COND,
  K_DENSE,
  K_DIAGONAL_K,
  K_GUARD,
  OP_WORK_AMPLITUDES,
  type Op,
  type OpContext,
  SHOT_WORK_AMPLITUDES,
  applyOp,
  guardHolds,
  measureZ,
} from './ops.js';
import { type Plan, analyse, compile } from './plan.js';
import { Rng, parseSeed } from './rng.js';
import { Tally } from './tally.js';

/** Amplitude updates between polls of the stop flag: ~2^16 take 0.1–0.3 ms in V8. */
export const POLL_WORK_AMPLITUDES = 1 << 16;

/**
 * A run's input and output are the kernel's job-runner port types: the program is verified,
 * shots are 1..SHOTS_PER_JOB_MAX, the seed a decimal uint64; control[0] is the stop flag (checked
 * at gate boundaries, at least every ~1 ms of work) and control[1] the shots completed.
 */
export type ProgramRunInput = Omit<JobRunRequest, 'program'> & { program: Program };
export type ProgramRunOutput = JobRunResult;

/** The engine a run uses and its fusion width (0: no fusion). */
export interface EngineChoice {
  kernels: Kernels;
  fusion: number;
}

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

interface Machine extends OpContext {
  states: Float64Array[];
  sizes: Int32Array;
  rng: Rng;
  stop: Stopper;
  /** States this run allocated, handed back to the engine when the run ends. */
  owned: { s: Float64Array; n: number }[];
}

/** A machine for one run of `plan`: its group sizes checked against the cluster bound. */
function machineFor(
  plan: Plan,
  kernels: Kernels,
  rng: Rng,
  control: Int32Array | undefined,
): Machine {
  const sizes = Int32Array.from(plan.groups, (g) => g.qubits.length);
  for (const n of sizes)
    assert(n <= QUBITS_PER_CLUSTER_MAX, `a group of ${n} qubits (unverified?)`);
  return {
    states: plan.groups.map(() => EMPTY),
    sizes,
    rng,
    values: new Int32Array(plan.events),
    stop: new Stopper(control),
    kernels,
    owned: [],
  };
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
      if (!guardHolds(op.guard!, values)) i += op.skip;
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
  shotsDone: number,
): { cdf: Float64Array; last: number } | number {
  const size = 1 << n;
  const m = 1 << k;
  for (let i = 0; i < size; i++) s[i] = s[2 * i]! * s[2 * i]! + s[2 * i + 1]! * s[2 * i + 1]!;
  let flag = stop.add(2 * size, shotsDone);
  for (let h = m; h < size && flag === 0; h += m) {
    for (let j = 0; j < m; j++) s[j] = s[j]! + s[h + j]!;
    flag = stop.add(m, shotsDone);
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

/** A run's end: the stop flag (0: all shots ran), shots done, the generator state after them. */
type RunEnd = [stopped: number, shotsDone: number, rng: number[]];

function runSampled(plan: Plan, m: Machine, tally: Tally, start: number, shots: number): RunEnd {
  const dists: { cdf: Float64Array; last: number; marks: Int32Array }[] = [];
  for (let g = 0; g < plan.groups.length; g++) {
    const n = m.sizes[g]!;
    m.states[g] = freshState(m, n);
    // The prefix and the distributions draw nothing: a stop here has the generator untouched.
    const flag = execute(plan.prefix[g]!, m, start);
    if (flag !== 0) return [flag, start, m.rng.state()];
    const d = cumulative(m.states[g]!, n, plan.groups[g]!.measured, m.stop, start);
    m.states[g] = EMPTY; // the distribution holds what is still needed
    if (typeof d === 'number') return [d, start, m.rng.state()];
    dists.push({ ...d, marks: plan.marks[g]! });
  }
  const shotWork = SHOT_WORK_AMPLITUDES + OP_WORK_AMPLITUDES * dists.length;
  for (let shot = start; shot < shots; shot++) {
    tally.clear();
    for (const { cdf, last, marks } of dists) {
      let j = search(cdf, last, m.rng.next() * cdf[last]!);
      for (let b = 0; j !== 0; b++, j >>>= 1) if ((j & 1) === 1) tally.set(marks[b]!);
    }
    tally.commit();
    const flag = m.stop.add(shotWork, shot + 1);
    if (flag !== 0) return [flag, shot + 1, m.rng.state()];
  }
  return [0, shots, m.rng.state()];
}

const EMPTY = new Float64Array(0);

function runPerShot(
  plan: Plan,
  m: Machine,
  tally: Tally,
  start: number,
  shots: number,
  initial: (g: number, n: number) => Float64Array = (_g, n) => freshState(m, n),
): RunEnd {
  // Each group's prefix once (it draws nothing); a snapshot only when there is a prefix and more
  // than one shot to run.
  const snaps: (Float64Array | null)[] = [];
  for (let g = 0; g < plan.groups.length; g++) {
    m.states[g] = initial(g, m.sizes[g]!);
    const flag = execute(plan.prefix[g]!, m, start);
    if (flag !== 0) return [flag, start, m.rng.state()];
    snaps.push(plan.prefix[g]!.length > 0 && shots - start > 1 ? m.states[g]!.slice() : null);
  }
  const events = plan.eventOffset.length;
  const restoreWork = SHOT_WORK_AMPLITUDES + m.sizes.reduce((w, n) => w + 2 ** n, 0);
  // The generator as each shot begins: a stop inside a shot resumes by running that shot again.
  const atShot = new Int32Array(4);
  for (let shot = start; shot < shots; shot++) {
    m.rng.saveTo(atShot);
    // The first shot runs on the prefix state itself; later ones restore it.
    for (let g = 0; g < plan.groups.length && shot > start; g++) {
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
    if (flag !== 0) return [flag, shot, Array.from(atShot)];
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
    if (after !== 0) return [after, shot + 1, m.rng.state()];
  }
  return [0, shots, m.rng.state()];
}

/**
 * Runs a verified program for `shots` shots. Never throws for a verified program; assertions
 * guard the input contract (shot range, seed form) and internal invariants.
 */
export function runProgram(
  input: ProgramRunInput,
  engine: EngineChoice = { kernels: activeKernels(), fusion: fusionWidth() },
): ProgramRunOutput {
  const { program, ...run } = input;
  return runPlan({ plan: compileProgram(program, engine), ...run }, engine.kernels);
}

/** A job run of a compiled program: what crosses to a pool thread (plain data). */
export interface PlanRun extends Omit<JobRunRequest, 'program'> {
  plan: Plan;
}

/** A job run of a verified program's source, parsed and planned where it runs. */
export interface SourceRun extends Omit<JobRunRequest, 'program'> {
  format: ProgramFormat;
  source: string;
}

/**
 * Parses, plans and runs a verified program's source (it verified at submission, so it parses
 * again without errors; an assertion otherwise).
 */
export function runSource(input: SourceRun): ProgramRunOutput {
  const { format, source, ...run } = input;
  const parsed = parseProgram(format, source);
  assert(parsed.program !== null, 'a verified source parses again');
  return runPlan({ plan: compileProgram(parsed.program), ...run });
}

/** Compiles a verified program for an engine (its fusion width and pass costs). */
export function compileProgram(
  program: Program,
  engine: EngineChoice = { kernels: activeKernels(), fusion: fusionWidth() },
): Plan {
  return compile(program, null, engine.fusion, engine.kernels.costs);
}

/**
 * Runs a compiled program for `shots` shots on `kernels` (the engine it was compiled for).
 * Never throws for a verified program; assertions guard the input contract (shot range, seed
 * form) and internal invariants.
 */
export function runPlan(input: PlanRun, kernels: Kernels = activeKernels()): ProgramRunOutput {
  const { plan, shots, seed, shotOutcomesMax, control, resume } = input;
  assert(Number.isInteger(shots) && shots >= 1 && shots <= SHOTS_PER_JOB_MAX, `shots ${shots}`);
  assert(Number.isInteger(shotOutcomesMax) && shotOutcomesMax >= 0, 'shotOutcomesMax ≥ 0');
  assert(control === undefined || control.length >= 2, 'control has two words');
  const start = resume?.shotsDone ?? 0;
  assert(Number.isInteger(start) && start >= 0 && start <= shots, `resume at shot ${start}`);
  const rng = resume === undefined ? new Rng(parseSeed(seed)) : new Rng(resume.rng);
  const m = machineFor(plan, kernels, rng, control);
  const sizes = m.sizes;
  const tally = new Tally(plan.keyChars, Math.min(shotOutcomesMax, shots));
  if (resume !== undefined) tally.resume(resume.counts, resume.shotOutcomes);
  const early = m.stop.poll(start);
  const [stopped, shotsDone, after]: RunEnd =
    early !== 0 || start === shots
      ? [early, start, rng.state()]
      : plan.mode === 'sampled'
        ? runSampled(plan, m, tally, start, shots)
        : runPerShot(plan, m, tally, start, shots);
  if (control !== undefined) Atomics.store(control, 1, shotsDone);
  releaseAll(m);
  return {
    stopped,
    counts: tally.counts(),
    shotOutcomes: tally.outcomes,
    mode: plan.mode,
    shotsDone,
    largestState: sizes.reduce((x, n) => Math.max(x, n), 0),
    rng: after,
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
  // The reference engine, unfused: crash replay must reproduce these bits whatever engine the
  // restarted daemon picks.
  const m = machineFor(plan, jsKernels, new Rng(parseSeed(seed)), undefined);
  const sizes = m.sizes;
  const tally = new Tally(plan.keyChars, Math.min(shotOutcomesMax, 1));
  const initial = (g: number, n: number): Float64Array => {
    if (g !== 0) return zeroState(n);
    if (n === width) return state;
    const s = new Float64Array(2 << n);
    s.set(state);
    return s;
  };
  const [stopped, shotsDone] = runPerShot(plan, m, tally, 0, 1, initial);
  assert(stopped === 0 && shotsDone === 1, 'a bound run has no stop flag');
  // Measure out what the program added to group 0, then keep the slice of the outcome.
  const s = m.states[0]!;
  const n = sizes[0]!;
  let offset = 0;
  for (let b = width; b < n; b++) offset |= measureZ(m.kernels, s, n, b, m.rng.next()) << b;
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
  const m = machineFor(plan, engine.kernels, new Rng(0n), undefined);
  const sizes = m.sizes;
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
  return estimateRun(program, shots).work;
}

/** Sampling mode and work estimate together, from one unfused plan (no fusion pass). */
export function estimateRun(program: Program, shots: number): RunEstimate {
  const plan = compile(program);
  return { sampling: plan.mode, work: planWork(plan, shots) };
}

/** A valid program's run prepared: its sampling mode, its work for `shots`, and its plan. */
export function preparedRun(program: Program, shots: number): PreparedRun {
  const plan = compileProgram(program);
  return { sampling: plan.mode, work: planWork(plan, shots), plan };
}

/** `workEstimate` of a compiled plan (the estimate is of its unfused ops, so any plan will do). */
export function planWork(plan: Plan, shots: number): number {
  return Math.min(plan.work.once + shots * plan.work.perShot, Number.MAX_SAFE_INTEGER);
}
