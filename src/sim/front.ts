/**
 * The simulator front on the main thread: owns every cluster's state vector (SharedArrayBuffer)
 * and runs plans on the Piscina pool. Layer: sim; implements `SimulatorPort`.
 * Ordering: each cluster has a tail promise; a plan starts when the tails of all its parts have
 * settled, so batches on one cluster run one at a time in decision order while different clusters
 * run in parallel on different workers. A plan's `onDone` runs before any later plan on the same
 * clusters can start, which keeps op-log commits in per-cluster order.
 * Fairness: every pool task (an interactive plan or a job) passes the kernel's one admission
 * queue (`kernel/admission.ts`) and is handed to Piscina only once it holds a thread, so
 * Piscina's own FIFO never holds work: a tenant whose plans and jobs have used much of the pool
 * waits behind one that has not. Plans ask the queue here (`acquire`); jobs are admitted by the
 * job manager, which calls `run` with the thread already held.
 */
import assert from 'node:assert';
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { Admission, WORK_COST_UNIT_AMPLITUDES } from '../kernel/admission.js';
import type {
  ClusterRef,
  ExecPlan,
  JobRunRequest,
  JobRunResult,
  JobRunnerPort,
  PoolOwner,
  SimulatorPort,
} from '../kernel/ports.js';
import type { PreparedRun } from '../kernel/program-check.js';
import type { Program } from '../kernel/program/ir.js';
import type { BatchInput, BatchOutput, ClusterState } from './batch.js';
import { engineInfo, fusionWidth } from './kernels.js';
import type { Plan } from './plan.js';
import { preparedRun } from './program.js';
import { type WorkerReply, type WorkerTask, handle, jobOutput, planOutput } from './protocol.js';

/**
 * Plans on clusters of at most this many qubits (16 KiB of state) run synchronously on the main
 * thread when nothing is pending on their clusters: a gate there costs microseconds, while a pool
 * round trip costs ~170 µs (measured) and a thread hop. Running inline also makes the outcomes
 * known at decision time, so the op-log commit is enqueued at once. Larger clusters go to the pool.
 */
export const INLINE_QUBITS_MAX = 10;
/**
 * Jobs needing at most this many amplitude updates run on the main thread (a Bell pair at 1,000
 * shots is a few thousand): well under a millisecond, less than the pool round trip they save.
 */
export const JOB_INLINE_WORK_MAX = 1 << 17;
/** A simulation thread ends after this long without work (its heap is given back). */
export const SIM_THREAD_IDLE_MS = 10_000;

/** Pool threads beyond the job slots, so interactive work never queues behind jobs alone. */
export const INTERACTIVE_THREADS = 1;

/** Fair-queue key of work with no tenant (replay, the kernel's own releases). */
const KERNEL_OWNER: PoolOwner = { tenant: '', weight: 1 };

export interface PoolSimulatorOptions {
  threads?: number;
}

interface Held {
  qubits: string[];
  state: Float64Array;
}

function jobEngineName(): string {
  const k = fusionWidth();
  return `${engineInfo().name}${k === 0 ? '' : ` fused k=${k}`}`;
}

const WORKER_URL = new URL(
  import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js',
  import.meta.url,
);

export class PoolSimulator implements SimulatorPort, JobRunnerPort {
  /** The engine jobs run on, as GetJobResult reports it: `native`/`js`, and the fusion width. */
  readonly engine = jobEngineName();
  readonly threads: number;
  readonly slots: number;
  private readonly pool: Piscina;
  private readonly states = new Map<number, Held>();
  private readonly tails = new Map<number, Promise<void>>();
  /** The one admission queue for pool threads (plans here, jobs through the job manager). */
  readonly admission: Admission;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(opts: PoolSimulatorOptions = {}) {
    this.threads = opts.threads ?? Math.max(1, availableParallelism());
    this.slots = this.threads;
    this.admission = new Admission(this.threads + INTERACTIVE_THREADS);
    // Jobs take at most `slots` threads (the job manager counts them); one thread more keeps
    // interactive plans (gates and measurements on large clusters) from waiting behind long jobs.
    this.pool = new Piscina({
      filename: WORKER_URL.href,
      // A thread ends after `SIM_THREAD_IDLE_MS` without work, and with it the heap that large
      // programs grew there (V8 keeps a grown heap while the thread lives, even after collecting
      // it); the next pool work after that pays for starting one (measured: about 0.1 s compiled,
      // 0.8 s under tsx).
      minThreads: 0,
      maxThreads: this.threads + INTERACTIVE_THREADS,
      // Bounded: beyond this the kernel's per-tenant limits already refused the work.
      maxQueue: 100_000,
      idleTimeout: SIM_THREAD_IDLE_MS,
    });
  }

  /**
   * Runs a trivial task on every thread at start, so the engine is known to load before the daemon
   * listens and the first calls do not pay for thread start (idle threads end later).
   */
  async warm(): Promise<void> {
    await Promise.all(
      Array.from({ length: this.threads + INTERACTIVE_THREADS }, () =>
        this.runOnThread({ kind: 'warm' }),
      ),
    );
  }

  create(cluster: ClusterRef): void {
    assert(cluster.qubits.length === 1 && !this.states.has(cluster.id));
    const state = new Float64Array(new SharedArrayBuffer(4 * 8));
    state[0] = 1;
    this.states.set(cluster.id, { qubits: [...cluster.qubits], state });
  }

  restore(cluster: ClusterRef, state: Float64Array): void {
    assert(state.length === 2 * 2 ** cluster.qubits.length && !this.states.has(cluster.id));
    const shared = new Float64Array(new SharedArrayBuffer(state.byteLength));
    shared.set(state);
    this.states.set(cluster.id, { qubits: [...cluster.qubits], state: shared });
  }

  execute(
    plan: ExecPlan,
    onDone: (outcomes: (0 | 1)[], run?: JobRunResult) => Promise<void>,
    owner: PoolOwner = KERNEL_OWNER,
  ): Promise<void> {
    const qubits = plan.parts.reduce((n, p) => n + p.qubits.length, 0);
    if (
      qubits <= INLINE_QUBITS_MAX &&
      !plan.job &&
      plan.parts.every((p) => !this.tails.has(p.id))
    ) {
      const out = this.apply(plan, planOutput(handle({ kind: 'plan', batch: this.input(plan) })));
      return this.track(onDone(out.outcomes, out.run));
    }
    const deps = plan.parts.map((p) => this.tails.get(p.id) ?? Promise.resolve());
    let durable: Promise<void> = Promise.resolve();
    const ran = Promise.all(deps)
      .then(() => this.runPlan(plan, owner))
      .then((out) => {
        durable = onDone(out.outcomes, out.run);
      });
    const tail = ran.catch(() => {}); // a failed plan still releases its successors
    for (const r of plan.results) this.forgetTail(r.id, tail);
    for (const p of plan.parts) this.forgetTail(p.id, tail);
    return this.track(ran.then(() => durable));
  }

  private input(plan: ExecPlan): BatchInput {
    const parts: ClusterState[] = plan.parts.map((p) => {
      const held = this.states.get(p.id);
      assert(held, `cluster ${p.id} has no state`);
      assert(held.qubits.join() === p.qubits.join(), `cluster ${p.id} layout differs from plan`);
      return { qubits: held.qubits, state: held.state };
    });
    const input: BatchInput = { parts, ops: plan.ops, split: plan.split };
    if (plan.job) input.boundJob = plan.job;
    return input;
  }

  private async runPlan(plan: ExecPlan, owner: PoolOwner): Promise<BatchOutput> {
    const width = plan.parts.reduce((n, p) => n + p.qubits.length, 0);
    const cost = (2 ** width * Math.max(1, plan.ops.length)) / WORK_COST_UNIT_AMPLITUDES;
    const task: WorkerTask = { kind: 'plan', batch: this.input(plan) };
    const release = await this.admission.acquire(owner, cost);
    try {
      return this.apply(plan, planOutput(await this.runOnThread(task)));
    } finally {
      release();
    }
  }

  /** Piscina's `run` is untyped; the worker entry answers every task with a `WorkerReply`. */
  private runOnThread(task: WorkerTask): Promise<WorkerReply> {
    return this.pool.run(task);
  }

  /** Installs a batch's output clusters under the plan's result ids. */
  private apply(plan: ExecPlan, out: BatchOutput): BatchOutput {
    for (const p of plan.parts) this.states.delete(p.id);
    assert(out.clusters.length === plan.results.length, 'worker returned another cluster layout');
    plan.results.forEach((r, i) => {
      const c = out.clusters[i]!;
      assert(c.qubits.join() === r.qubits.join(), 'worker returned another qubit order');
      this.states.set(r.id, { qubits: c.qubits, state: c.state });
    });
    return out;
  }

  drop(clusterId: number): void {
    const tail = this.tails.get(clusterId) ?? Promise.resolve();
    const done = tail.then(() => {
      this.states.delete(clusterId);
    });
    this.forgetTail(clusterId, done);
    this.track(done);
  }

  /** Removes a tail entry once it settles, unless a later plan replaced it. */
  private forgetTail(id: number, tail: Promise<void>): void {
    this.tails.set(id, tail);
    void tail.then(() => {
      if (this.tails.get(id) === tail) this.tails.delete(id);
    });
  }

  private track(p: Promise<void>): Promise<void> {
    const settled = p.catch(() => {});
    this.inFlight.add(settled);
    void settled.then(() => this.inFlight.delete(settled));
    return p;
  }

  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  async snapshot(): Promise<{ cluster: ClusterRef; state: Float64Array }[]> {
    await this.idle();
    return [...this.states].map(([id, h]) => ({
      cluster: { id, qubits: [...h.qubits] },
      state: Float64Array.from(h.state),
    }));
  }

  /** Copy of one cluster's state after its pending work (tests and debugging). */
  async stateOf(clusterId: number): Promise<Float64Array | undefined> {
    await (this.tails.get(clusterId) ?? Promise.resolve());
    const h = this.states.get(clusterId);
    return h ? Float64Array.from(h.state) : undefined;
  }

  // ---------------------------------------------------------------- jobs (JobRunnerPort)

  /** The plan, compiled once: the estimate, the inline run and the pool run all use it. */
  prepare(program: Program, shots: number): PreparedRun {
    return preparedRun(program, shots);
  }

  readonly inlineWorkMax = JOB_INLINE_WORK_MAX;

  runInline(req: JobRunRequest): JobRunResult {
    const { program, ...run } = req;
    assert('plan' in program, 'a job run inline has its plan');
    return jobOutput(handle({ kind: 'job', run: { ...run, plan: program.plan as Plan } }));
  }

  /** Runs a job on a pool thread; the caller holds the thread (it was admitted). */
  async run(req: JobRunRequest): Promise<JobRunResult> {
    const { program, ...run } = req;
    const task: WorkerTask =
      'plan' in program
        ? { kind: 'job', run: { ...run, plan: program.plan as Plan } }
        : { kind: 'job-source', run: { ...run, ...program } };
    return jobOutput(await this.runOnThread(task));
  }

  newControl(): Int32Array {
    return new Int32Array(new SharedArrayBuffer(2 * 4));
  }

  async close(): Promise<void> {
    await this.idle();
    await this.pool.destroy();
  }
}
