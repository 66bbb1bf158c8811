/**
 * Jobs: programs (QVM graphs, OpenQASM 2.0) submitted by a tenant, verified before they are
 * accepted, queued fairly, run for many shots on the simulator, with durable results.
 * Layer: kernel; talks to the outside only through ports (store, job runner, clock, crypto).
 *
 * States: QUEUED -> RUNNING -> DONE | FAILED | CANCELLED, plus CANCELLING while a running job
 * stops at its next gate boundary. Every transition is committed with its audit record before it
 * is announced (to the submitter's reply and to watchers); a reply that says QUEUED means durable.
 *
 * Crash safety: a job's result commits with its DONE transition, so after a crash a job is either
 * terminal with its result or not terminal. At start, RUNNING jobs go back to the queue (with a
 * committed record saying so) and run again with the same seed, which gives the same counts;
 * CANCELLING jobs become CANCELLED. A terminal job is never run again. A drained stop (SIGTERM)
 * does better than a crash: a job it must interrupt records its shot progress (counts so far
 * and the generator's state), and the next attempt goes on from there, to the same counts.
 *
 * Decisions are synchronous on the main thread (as in `Kernel`): checks, the queue limit and the
 * enqueue happen in one turn, so two submissions cannot both take the last queue place.
 *
 * The units: this file (submission, cancellation, recovery), `job-programs.ts` (checking and
 * compiling programs), `job-runs.ts` (starting and ending runs over the admission queue),
 * `job-ledger.ts` (commits, what callers see, reads), `job-book.ts` (the table of jobs).
 */
import { auditEvent } from './actors.js';
import { type Admission, WORK_COST_UNIT_AMPLITUDES } from './admission.js';
import { KernelError, invalid } from './errors.js';
import { liveJob } from './job-book.js';
import { JobLedger } from './job-ledger.js';
import {
  JOB_STOP_CANCEL,
  type JobListener,
  type JobRecord,
  type JobResultRecord,
  type JobState,
  type JobView,
  type SubmitRequest,
  TERMINAL_STATES,
} from './job-model.js';
import {
  type Compiled,
  JobPrograms,
  checkFormat,
  checkShots,
  isUint64,
  roleLimited,
} from './job-programs.js';
import { JobRuns } from './job-runs.js';
import type { Kernel } from './kernel.js';
import { IDEMPOTENCY_KEY_CHARS_MAX, SHOT_OUTCOMES_KEPT_MAX } from './limits.js';
import type {
  ClockPort,
  CryptoPort,
  JobRunnerPort,
  ProgramCheckPort,
  StorePort,
  StoreRecord,
} from './ports.js';
import type { TenantPrincipal } from './principals.js';
import type { Violation } from './program/ir.js';

const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]+$/;

/** What the job manager reads from outside the kernel: time, randomness, stored results. */
export interface JobPorts {
  clock: ClockPort;
  crypto: CryptoPort;
  /** The store's reads (a job's result is read on demand, never held in memory). */
  results: Pick<StorePort, 'read'>;
  /** Checks large programs off the main thread (absent: every check runs inline). */
  checker?: ProgramCheckPort;
  /** Told of each job that reached a final state, once that is durable (metrics). */
  onFinished?: (rec: JobRecord) => void;
}

/** Marks a request hash of the current form (the source hashed apart from the other fields). */
const REQUEST_HASH_PREFIX = 'r2:';

export class JobManager {
  /** Checks, parses, verifies and estimates programs (`programs.validate` is the dry run). */
  readonly programs: JobPrograms;
  /** Every job as committed and shown; commits and reads. */
  private readonly ledger: JobLedger;
  /** When queued jobs start and how runs end. */
  private readonly runs: JobRuns;
  private seq = 0;

  constructor(
    private readonly kernel: Kernel,
    runner: JobRunnerPort,
    private readonly ports: JobPorts,
    admission: Admission,
    loaded: readonly JobRecord[] = [],
  ) {
    this.programs = new JobPrograms(kernel, runner, ports.checker);
    this.ledger = new JobLedger(
      kernel.durability,
      admission,
      ports.clock,
      ports.results,
      () => this.runs.poolJobs === 0,
      ports.onFinished,
    );
    this.runs = new JobRuns(kernel, runner, ports.clock, admission, this.ledger);
    const sorted = [...loaded].sort((a, b) => a.seq - b.seq);
    for (const rec of sorted) {
      this.ledger.book.add(liveJob(rec, null));
      this.seq = Math.max(this.seq, rec.seq);
    }
  }

  /**
   * Brings loaded jobs back: interrupted RUNNING jobs are re-queued and CANCELLING ones become
   * CANCELLED, each with a committed record and audit; then every queued job is enqueued in
   * submission order and dispatch starts. Call once, before serving.
   */
  async recover(): Promise<{ requeued: number; queued: number }> {
    const records: StoreRecord[] = [];
    const audit = [];
    let requeued = 0;
    for (const job of this.ledger.book.all()) {
      const rec = job.rec;
      if (rec.state === 'RUNNING') {
        rec.state = 'QUEUED';
        const done = rec.progress?.shotsDone ?? 0;
        rec.reason =
          done > 0
            ? `interrupted by a daemon stop after ${done} of ${rec.shots} shots; it goes on from shot ${done} with the same seed`
            : `interrupted by a daemon restart during attempt ${rec.attempts}; it runs again with the same seed`;
        rec.shotsDone = done;
        requeued++;
        records.push(this.ledger.put(rec));
        audit.push(
          auditEvent(
            'kernel',
            'JobRequeued',
            rec.id,
            { attempts: rec.attempts, shots_done: done },
            [rec.tenantId],
          ),
        );
      } else if (rec.state === 'CANCELLING') {
        this.ledger.finish(
          job,
          'CANCELLED',
          'cancelled; the daemon restarted before the run stopped',
          records,
        );
        audit.push(auditEvent('kernel', 'JobCancelled', rec.id, undefined, [rec.tenantId]));
      }
    }
    if (records.length > 0) await this.kernel.durability.commitEffects(records, audit);
    for (const job of this.ledger.book.all()) job.shown = { ...job.rec };
    let queued = 0;
    const all = this.ledger.book.all().sort((a, b) => a.rec.seq - b.rec.seq);
    for (const job of all) {
      if (job.rec.state !== 'QUEUED') continue;
      const compiled = this.compileLoaded(job.rec);
      if (compiled === null) continue;
      job.compiled = compiled;
      this.runs.enqueue(job);
      queued++;
    }
    this.runs.pump();
    return { requeued, queued };
  }

  /** A stored QUEUED job whose program no longer verifies (a rule tightened) fails with why. */
  private compileLoaded(rec: JobRecord): Compiled | null {
    const compiled = this.programs.reload(rec);
    if (compiled !== null) return compiled;
    const job = this.ledger.book.get(rec.id)!;
    const records: StoreRecord[] = [];
    this.ledger.finish(job, 'FAILED', 'the stored program no longer parses', records);
    this.kernel.durability.background(
      this.ledger.commit(job, records, [
        auditEvent('kernel', 'JobFailed', rec.id, undefined, [rec.tenantId]),
      ]),
    );
    return null;
  }

  /**
   * The jobs' part of a drained stop: nothing more starts (queued jobs wait, durable, for the
   * restart); running jobs get up to `drainMs` to finish; those still running are then stopped
   * at their next poll with their shot progress recorded, to go on from there after the restart.
   * Resolves with the number of jobs interrupted.
   */
  async drain(drainMs: number): Promise<number> {
    this.runs.stopAdmitting();
    const running = this.runs.poolJobs;
    const finished = running === 0 || (await this.runs.settled(drainMs));
    const interrupted = finished ? 0 : this.runs.poolJobs;
    if (!finished) await this.runs.interrupt();
    this.ledger.stop();
    return interrupted;
  }

  /**
   * Verifies and queues a program; resolves once the QUEUED record is durable.
   * @throws INVALID_ARGUMENT, PROGRAM_INVALID (every violation), QUOTA_EXCEEDED, ALREADY_EXISTS,
   *   handle errors (bindings)
   */
  async submit(
    p: TenantPrincipal,
    req: SubmitRequest,
  ): Promise<{ job: JobView; deduplicated: boolean; warnings: Violation[] }> {
    await this.kernel.durability.waitForCheckpoint();
    this.kernel.durability.requireSpace();
    const tenant = this.kernel.principals.tenantOf(p);
    const quota = this.kernel.principals.quotaOf(tenant);
    // Checked now, taken once the job is decided: a refused submission costs no token.
    this.kernel.principals.checkRate(p, 'jobs', 1);
    const format = checkFormat(req.format);
    checkShots(req.shots, quota);
    if (req.seed !== '' && !isUint64(req.seed)) {
      throw invalid(
        'seed',
        'must be a decimal unsigned 64-bit integer (or empty for a random one)',
      );
    }
    if (req.idempotencyKey.length > IDEMPOTENCY_KEY_CHARS_MAX) {
      throw invalid('idempotency_key', `longer than ${IDEMPOTENCY_KEY_CHARS_MAX} characters`);
    }
    if (req.idempotencyKey !== '' && !IDEMPOTENCY_KEY_PATTERN.test(req.idempotencyKey)) {
      throw invalid('idempotency_key', 'must be printable ASCII without spaces');
    }
    if (
      !Number.isInteger(req.shotOutcomesMax) ||
      req.shotOutcomesMax < 0 ||
      req.shotOutcomesMax > SHOT_OUTCOMES_KEPT_MAX
    ) {
      throw invalid('shot_outcomes_max', `must be 0 ..= ${SHOT_OUTCOMES_KEPT_MAX}`);
    }
    const bindings = this.programs.decodeBindings(p, req.bindings, req.shots);
    // The request's hash, kept only to recognise a retry under the same idempotency key (hashing
    // a megabyte of source costs the main thread ~2 ms, so a job without a key skips it). The
    // source is hashed as it is (escaping a megabyte into JSON first cost ~9 ms).
    const fields = [format, req.shots, req.seed, bindings, req.shotOutcomesMax, req.strict];
    const requestHash =
      req.idempotencyKey === ''
        ? ''
        : `${REQUEST_HASH_PREFIX}${this.ports.crypto.sha256Hex(JSON.stringify(fields), req.source)}`;
    if (req.idempotencyKey !== '') {
      const job = this.ledger.book.byIdempotencyKey(tenant.id, req.idempotencyKey);
      if (job !== undefined) {
        // A job stored before the hash changed holds the earlier form of it.
        const same = job.rec.requestHash.startsWith(REQUEST_HASH_PREFIX)
          ? job.rec.requestHash === requestHash
          : job.rec.requestHash ===
            this.ports.crypto.sha256Hex(JSON.stringify([format, req.source, ...fields.slice(1)]));
        if (!same) {
          throw new KernelError(
            'ALREADY_EXISTS',
            `idempotency_key: already used for job ${job.rec.id} with a different request`,
            'idempotency_key',
          );
        }
        await job.pending;
        return { job: this.ledger.view(job), deduplicated: true, warnings: [] };
      }
    }
    const { compiled, estimate, warnings } = await this.programs.compileChecked(p, {
      format,
      source: req.source,
      shots: req.shots,
      quota: roleLimited(quota, p),
      tier: tenant.tier,
      bindings,
      strict: req.strict,
      tenantId: tenant.id,
    });
    const queued = this.runs.queuedOf(tenant.id);
    if (queued >= quota.jobsQueuedMax) {
      throw new KernelError(
        'QUOTA_EXCEEDED',
        `jobs_queued_max: ${queued} jobs already queued (limit ${quota.jobsQueuedMax}); wait for some to run`,
        'jobs_queued_max',
      );
    }
    this.kernel.principals.takeRate(p, 'jobs', 1);
    // Decided: from here nothing can fail.
    const now = this.ports.clock.nowMs();
    const rec: JobRecord = {
      id: this.ports.crypto.id(),
      seq: ++this.seq,
      tenantId: tenant.id,
      keyId: p.keyId,
      format,
      source: req.source,
      shots: req.shots,
      seed: req.seed !== '' ? BigInt(req.seed).toString() : this.newSeed(),
      idempotencyKey: req.idempotencyKey,
      requestHash,
      bindings,
      ...(compiled.channelUses.size > 0
        ? { channelUses: Object.fromEntries(compiled.channelUses) }
        : {}),
      shotOutcomesMax: Math.min(req.shotOutcomesMax, req.shots),
      strict: req.strict,
      state: 'QUEUED',
      reason: '',
      submittedAtMs: now,
      startedAtMs: 0,
      finishedAtMs: 0,
      attempts: 0,
      shotsDone: 0,
      estimate,
      // The admission queue's unit: a job costs 1 + its amplitude updates / the unit.
      cost: 1 + compiled.work / WORK_COST_UNIT_AMPLITUDES,
    };
    const job = liveJob(rec, compiled);
    this.ledger.book.add(job);
    this.runs.enqueue(job);
    const event = auditEvent(p, 'SubmitJob', rec.id, {
      format,
      shots: rec.shots,
      nodes: estimate.nodes,
      seed: rec.seed,
    });
    // The QUEUED record and whatever the dispatch it triggers decides (a tiny job runs at once)
    // share one transaction: one sync for a submission that also finishes.
    await this.ledger.batched(() => {
      this.kernel.durability.background(this.ledger.commit(job, [this.ledger.put(rec)], [event]));
      this.runs.pump();
    });
    return { job: this.ledger.view(job), deduplicated: false, warnings };
  }

  private newSeed(): string {
    const b = this.ports.crypto.secret();
    return b.readBigUInt64BE(0).toString();
  }

  /** @throws NOT_FOUND, JOB_FINISHED */
  async cancel(p: TenantPrincipal, jobId: string): Promise<JobView> {
    await this.kernel.durability.waitForCheckpoint();
    const job = this.ledger.book.own(p.tenantId, jobId, 'job_id');
    await job.pending;
    const rec = job.rec;
    if (TERMINAL_STATES.has(rec.state)) {
      throw new KernelError(
        'JOB_FINISHED',
        `job_id: job ${jobId} is already ${rec.state}`,
        'job_id',
      );
    }
    if (rec.state === 'CANCELLING') return this.ledger.view(job);
    const actor = auditEvent(p, 'CancelJob', rec.id).actor;
    if (rec.state === 'QUEUED') {
      this.runs.withdraw(job);
      const records: StoreRecord[] = [];
      this.ledger.finish(job, 'CANCELLED', `cancelled by ${actor} while queued`, records);
      await this.ledger.commit(job, records, [
        auditEvent(p, 'CancelJob', rec.id, { was: 'QUEUED' }),
      ]);
      this.runs.pump();
      return this.ledger.view(job);
    }
    if (rec.bindings.length > 0) {
      throw new KernelError(
        'JOB_UNCANCELLABLE',
        `job_id: job ${jobId} runs on bound qubits and is already running; its effect on them is all or nothing, so it runs to the end`,
        'job_id',
      );
    }
    // Running: CANCELLING is durable first, then the flag goes up; the worker sees it at its next
    // gate boundary and the run's end commits CANCELLED (or DONE, had it finished meanwhile).
    rec.state = 'CANCELLING';
    job.cancelActor = actor;
    await this.ledger.commit(
      job,
      [this.ledger.put(rec)],
      [auditEvent(p, 'CancelJob', rec.id, { was: 'RUNNING' })],
    );
    if (job.control !== null && rec.state === 'CANCELLING')
      Atomics.store(job.control, 0, JOB_STOP_CANCEL);
    return this.ledger.view(job);
  }

  /** @throws NOT_FOUND (also for another tenant's job) */
  get(p: TenantPrincipal, jobId: string, field = 'job_id'): Promise<JobView> {
    return this.ledger.get(p, jobId, field);
  }

  /** The caller's jobs, newest first, filtered. @throws INVALID_ARGUMENT */
  list(
    p: TenantPrincipal,
    f: { states: string[]; after: number; before: number; pageSize: number; pageToken: string },
  ): { jobs: JobView[]; nextPageToken: string } {
    return this.ledger.list(p, f);
  }

  /** @throws NOT_FOUND, JOB_NOT_DONE */
  result(p: TenantPrincipal, jobId: string): Promise<{ job: JobView; result: JobResultRecord }> {
    return this.ledger.result(p, jobId);
  }

  /** Subscribes to a job's changes until it is terminal. @throws NOT_FOUND */
  watch(
    p: TenantPrincipal,
    jobId: string,
    listener: JobListener,
  ): Promise<{ current: JobView; unsubscribe: () => void }> {
    return this.ledger.watch(p, jobId, listener);
  }

  /** Counts by state, and the jobs running on the pool (status and tests). */
  stats(): Record<JobState, number> & { poolBusy: number } {
    return { ...this.ledger.stats(), poolBusy: this.runs.poolJobs };
  }
}
