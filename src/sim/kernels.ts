/**
 * The two state-vector engines behind one interface: the JavaScript reference (`engine.ts`) and
 * the native addon (`native-sim/`). Layer: sim; no policy. The engine is chosen once per thread,
 * on first use: `QMK_SIM_ENGINE=js|native` forces one, unset (or `auto`) takes the
 * native addon when it loads and the JavaScript engine otherwise; `engineInfo()` says which ran
 * and why, for the start-up log and for benchmarks.
 *
 * Both engines take the same arguments (interleaved complex doubles, qubit q = bit q) and give
 * amplitudes equal to rounding (the conformance suite compares them to 1e-10). Native threads:
 * `QMK_SIM_THREADS` (default: the machine's cores) threads work on one large state; states under
 * ~2^17 amplitudes always run on the calling thread, so small jobs spread over the pool instead.
 */
import assert from 'node:assert';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  applyCnot,
  applyCz,
  applyDense,
  applyDiagonal1,
  applyDiagonalK,
  applyMatrix1,
  applySwap,
  applyToffoli,
  applyX,
  branchWeightsInto,
  collapseScaled,
  zeroState,
} from './engine.js';

export type EngineName = 'js' | 'native';

/**
 * What each kind of pass costs an engine, relative to one 1-qubit dense pass over the same state
 * (measured at 20 and 24 qubits, `densecost` in the issue note). The fusion step runs a block
 * fused only when that costs less than its gates one by one.
 */
export interface PassCosts {
  matrix1: number;
  /** A 1-qubit diagonal. */
  diagonal: number;
  /** X, CNOT, SWAP, Toffoli: index moves on part of the state. */
  permutation: number;
  /** CZ: a sign on a quarter of the state. */
  phase: number;
  /** A fused dense gate on k qubits, by k (index 0 unused). */
  dense: readonly number[];
  /** A fused diagonal on k qubits, by k (index 0 unused). */
  diagonalK: readonly number[];
}

/** The gate and measurement routines one engine provides. */
export interface Kernels {
  readonly name: EngineName;
  readonly costs: PassCosts;
  /** A dense 2^k × 2^k matrix (k ≤ 5; row-major interleaved, local bit j = qubits[j]). */
  dense(s: Float64Array, n: number, qubits: Int32Array, m: Float64Array): void;
  /** A diagonal over k ≤ 5 qubits: `d` holds its 2^k entries (interleaved; local bit j = qubits[j]). */
  diagonal(s: Float64Array, n: number, qubits: Int32Array, d: Float64Array): void;
  matrix1(s: Float64Array, n: number, q: number, m: Float64Array): void;
  diagonal1(s: Float64Array, n: number, q: number, d: Float64Array): void;
  x(s: Float64Array, n: number, q: number): void;
  cnot(s: Float64Array, n: number, c: number, t: number): void;
  cz(s: Float64Array, n: number, a: number, b: number): void;
  swap(s: Float64Array, n: number, a: number, b: number): void;
  toffoli(s: Float64Array, n: number, c1: number, c2: number, t: number): void;
  /** Unnormalised [P(q=0), P(q=1)] into `out`. */
  branchWeights(s: Float64Array, n: number, q: number, out: Float64Array): void;
  /** Keeps the half with q = outcome scaled by `scale`, zeroes the other. */
  collapse(s: Float64Array, n: number, q: number, outcome: 0 | 1, scale: number): void;
  /**
   * A fresh |0…0> state of n qubits for this engine: the native one starts it on a 64-byte
   * boundary (vector loads never straddle cache lines) and readies large ones (huge pages, pages
   * faulted in on all threads).
   */
  alloc(n: number): Float64Array;
  /**
   * Hands back a state from `alloc` that nothing refers to any more; the native engine keeps the
   * most recent large one per thread for the next `alloc` of the same size.
   */
  release(s: Float64Array, n: number): void;
}

/** The JavaScript reference engine. */
export const jsKernels: Kernels = {
  name: 'js',
  // Compute-bound: the generic dense kernel for k ≥ 3 is an order of magnitude slower than k = 2.
  costs: {
    matrix1: 1,
    diagonal: 0.86,
    permutation: 0.6,
    phase: 0.4,
    dense: [0, 1, 1.9, 18, 30, 55],
    diagonalK: [0, 0.86, 2.0, 2.4, 2.2, 2.3],
  },
  dense: applyDense,
  diagonal: applyDiagonalK,
  matrix1: applyMatrix1,
  diagonal1: applyDiagonal1,
  x: applyX,
  cnot: applyCnot,
  cz: applyCz,
  swap: applySwap,
  toffoli: applyToffoli,
  branchWeights: branchWeightsInto,
  collapse: collapseScaled,
  alloc: zeroState,
  release: () => {},
};

/** The addon's exports (native-sim/src/addon.cc); each returns 0 or a negative error code. */
export interface NativeAddon {
  applyDense(s: Float64Array, n: number, qubits: Int32Array, m: Float64Array): number;
  applyMatrix1(s: Float64Array, n: number, q: number, m: Float64Array): number;
  applyDiagonalK(s: Float64Array, n: number, qubits: Int32Array, d: Float64Array): number;
  applyDiagonal1(
    s: Float64Array,
    n: number,
    q: number,
    d0re: number,
    d0im: number,
    d1re: number,
    d1im: number,
  ): number;
  applyX(s: Float64Array, n: number, cmask: number, t: number): number;
  applySwap(s: Float64Array, n: number, a: number, b: number): number;
  applyPhase(s: Float64Array, n: number, mask: number, re: number, im: number): number;
  branchWeights(s: Float64Array, n: number, q: number, out: Float64Array): number;
  collapse(s: Float64Array, n: number, q: number, outcome: number, scale: number): number;
  prepare(s: Float64Array, n: number): number;
  misalignment(a: Float64Array): number;
  zero(s: Float64Array, n: number): number;
  bandwidthPass(buf: Float64Array, a: number, b: number): number;
  setThreads(t: number): number;
  threads(): number;
  isa(): string;
  /** glibc's malloc_trim: the C heap's free memory back to the system; false elsewhere. */
  trimHeap(): boolean;
  /** One sd_notify datagram from this process: 0, or an errno (-1: no unix sockets here). */
  notifySocket(socketPath: string, message: string): number;
}

const NATIVE_ERRORS: Readonly<Record<number, string>> = {
  [-1]: 'bad state (length or qubit count)',
  [-2]: 'bad qubit (out of range or repeated)',
  [-3]: 'bad matrix (length or width)',
  [-4]: 'bad argument type',
};

function ok(code: number, what: string): void {
  assert(code === 0, `native ${what}: ${NATIVE_ERRORS[code] ?? `code ${code}`}`);
}

/** Memory-bound up to k = 4; k = 5 on qubit 0 or 1 spills registers. */
export const NATIVE_COSTS: PassCosts = {
  matrix1: 1,
  diagonal: 0.9,
  permutation: 0.65,
  phase: 0.5,
  dense: [0, 1, 2.3, 2.6, 3.9, 16],
  diagonalK: [0, 0.9, 2.0, 1.9, 1.5, 1.4],
};

/** Wraps the addon as `Kernels`: return codes become assertions (inputs were validated). */
export function nativeKernels(a: NativeAddon): Kernels {
  return {
    name: 'native',
    costs: NATIVE_COSTS,
    dense: (s, n, qs, m) => ok(a.applyDense(s, n, qs, m), 'dense'),
    diagonal: (s, n, qs, d) => ok(a.applyDiagonalK(s, n, qs, d), 'diagonal'),
    matrix1: (s, n, q, m) => ok(a.applyMatrix1(s, n, q, m), 'matrix1'),
    diagonal1: (s, n, q, d) =>
      ok(a.applyDiagonal1(s, n, q, d[0]!, d[1]!, d[2]!, d[3]!), 'diagonal1'),
    x: (s, n, q) => ok(a.applyX(s, n, 0, q), 'x'),
    cnot: (s, n, c, t) => ok(a.applyX(s, n, 2 ** c, t), 'cnot'),
    cz: (s, n, x, y) => ok(a.applyPhase(s, n, 2 ** x + 2 ** y, -1, 0), 'cz'),
    swap: (s, n, x, y) => ok(a.applySwap(s, n, x, y), 'swap'),
    toffoli: (s, n, c1, c2, t) => {
      assert(c1 !== c2, 'Toffoli controls must differ');
      ok(a.applyX(s, n, 2 ** c1 + 2 ** c2, t), 'toffoli');
    },
    branchWeights: (s, n, q, out) => ok(a.branchWeights(s, n, q, out), 'branchWeights'),
    collapse: (s, n, q, outcome, scale) => ok(a.collapse(s, n, q, outcome, scale), 'collapse'),
    alloc: (n) => alignedState(a, n),
    release: (s, n) => {
      if (n >= PREPARE_QUBITS_MIN && n <= CACHED_QUBITS_MAX) cached = { s, n };
    },
  };
}

/**
 * The largest state a thread keeps for reuse (2^24 amplitudes, 256 MiB). Why keep one: a fresh
 * large state's page faults cost far more than a pass over it (~300 ms against ~5 ms for 256 MiB
 * on the reference VM, even with huge pages), and jobs of one size tend to repeat. The cost is
 * up to 256 MiB resident per pool thread between jobs.
 */
export const CACHED_QUBITS_MAX = 24;
let cached: { s: Float64Array; n: number } | null = null;

/** Drops this thread's cached state (benchmarks: to time a cold start). */
export function clearStateCache(): void {
  cached = null;
}

/** States from this many qubits up are readied by the addon (huge pages, parallel first touch). */
export const PREPARE_QUBITS_MIN = 18;

/** A zero state starting on a 64-byte boundary (a view into a slightly larger buffer). */
export function alignedDoubles(a: NativeAddon, doubles: number): Float64Array {
  const raw = new Float64Array(doubles + 8);
  const skip = (8 - a.misalignment(raw)) % 8;
  return raw.subarray(skip, skip + doubles);
}

function alignedState(a: NativeAddon, n: number): Float64Array {
  assert(Number.isInteger(n) && n >= 0 && n <= 30, `qubit count ${n} out of range`);
  if (cached !== null && cached.n === n) {
    const s = cached.s;
    cached = null;
    ok(a.zero(s, n), 'zero');
    s[0] = 1;
    return s;
  }
  const s = alignedDoubles(a, 2 << n);
  if (n >= PREPARE_QUBITS_MIN) ok(a.prepare(s, n), 'prepare');
  s[0] = 1;
  return s;
}

/** The built addon's path: native-sim/build/Release, found from src/sim or dist/src/sim. */
function addonPath(): string | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 5; up++) {
    const p = join(dir, 'native-sim', 'build', 'Release', 'qmk_native.node');
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  return null;
}

export interface EngineInfo {
  name: EngineName;
  /** Why this engine: forced by QMK_SIM_ENGINE, or the addon's absence or load error. */
  reason: string;
  /** Native only: the instruction set picked for this CPU, and the threads per large state. */
  isa?: string;
  threads?: number;
}

/** Loads the addon, or says why it cannot be used. Never throws. */
export function loadNative(): { addon: NativeAddon } | { error: string } {
  const path = addonPath();
  if (path === null) return { error: 'native-sim/build/Release/qmk_native.node is not built' };
  try {
    const addon = createRequire(import.meta.url)(path) as NativeAddon;
    if (typeof addon.applyDense !== 'function') return { error: `${path} has no applyDense` };
    return { addon };
  } catch (e) {
    return { error: `${path} failed to load: ${(e as Error).message}` };
  }
}

function threadsSetting(): number {
  const raw = process.env.QMK_SIM_THREADS;
  const t = raw === undefined || raw === '' ? availableParallelism() : Number(raw);
  assert(Number.isInteger(t) && t >= 1 && t <= 256, `QMK_SIM_THREADS=${raw} is not 1..256`);
  return t;
}

function select(): { kernels: Kernels; info: EngineInfo; addon: NativeAddon | null } {
  const wanted = process.env.QMK_SIM_ENGINE ?? 'auto';
  assert(
    wanted === 'js' || wanted === 'native' || wanted === 'auto' || wanted === '',
    `QMK_SIM_ENGINE=${wanted} is not js, native or auto`,
  );
  if (wanted === 'js') {
    return { kernels: jsKernels, info: { name: 'js', reason: 'QMK_SIM_ENGINE=js' }, addon: null };
  }
  const loaded = loadNative();
  if ('error' in loaded) {
    // Forcing the native engine when it cannot load is a configuration error, not a fallback.
    assert(wanted !== 'native', `QMK_SIM_ENGINE=native but ${loaded.error}`);
    return { kernels: jsKernels, info: { name: 'js', reason: loaded.error }, addon: null };
  }
  const threads = threadsSetting();
  loaded.addon.setThreads(threads);
  const reason = wanted === 'native' ? 'QMK_SIM_ENGINE=native' : 'native addon loaded';
  return {
    kernels: nativeKernels(loaded.addon),
    info: { name: 'native', reason, isa: loaded.addon.isa(), threads },
    addon: loaded.addon,
  };
}

/**
 * Selected on first use, not at import: a bad setting then fails where the daemon reports start-up
 * errors (`failed to start` with the message), and a thread that never simulates loads nothing.
 */
let selected: ReturnType<typeof select> | null = null;

function current(): ReturnType<typeof select> {
  selected ??= select();
  return selected;
}

/** The engine this thread uses for jobs. */
export function activeKernels(): Kernels {
  return current().kernels;
}

/** Which engine runs and why (for the start-up log and benchmarks). */
export function engineInfo(): EngineInfo {
  return current().info;
}

/**
 * Gives the C heap's free memory back to the system (glibc's malloc_trim): what ended threads
 * freed stays in their arenas otherwise (44 MB after a large-program attack, measured). False
 * when the addon is not built or the C library cannot; works whichever engine runs jobs.
 */
export function trimNativeHeap(): boolean {
  const loaded = loadNative();
  return (
    'addon' in loaded && typeof loaded.addon.trimHeap === 'function' && loaded.addon.trimHeap()
  );
}

/**
 * The addon's sd_notify sender (datagrams from this process, so systemd can attribute them to the
 * main PID), or null when the addon is not built (an older build without it counts as not built).
 */
export function notifySender(): ((socketPath: string, message: string) => number) | null {
  const loaded = loadNative();
  if (!('addon' in loaded) || typeof loaded.addon.notifySocket !== 'function') return null;
  const addon = loaded.addon;
  return (socketPath, message) => addon.notifySocket(socketPath, message);
}

/** The loaded addon itself (benchmarks: bandwidth pass, thread count), or null. */
export function nativeAddon(): NativeAddon | null {
  return current().addon;
}

/** One line for logs: `native (avx512f, 2 threads)` or `js (reason)`. */
export function describeEngine(info: EngineInfo = current().info): string {
  return info.name === 'native'
    ? `native (${info.isa}, ${info.threads} threads; ${info.reason})`
    : `js (${info.reason})`;
}

/**
 * Default fusion width per engine, measured by `npm run bench:sim` on the 2-core reference machine
 * (see the issue note): wider blocks save passes over the state but cost 2^k multiply-adds per
 * amplitude, which only vectorised native code hides behind memory traffic.
 */
export const FUSION_WIDTH_DEFAULT: Readonly<Record<EngineName, number>> = { js: 2, native: 3 };

/** The fusion width jobs use: `QMK_SIM_FUSION` (0 = off, 1..5), else the engine's default. */
export function fusionWidth(engine: EngineName = current().info.name): number {
  const raw = process.env.QMK_SIM_FUSION;
  if (raw === undefined || raw === '') return FUSION_WIDTH_DEFAULT[engine];
  const k = Number(raw);
  assert(Number.isInteger(k) && k >= 0 && k <= 5, `QMK_SIM_FUSION=${raw} is not 0..5`);
  return k;
}
