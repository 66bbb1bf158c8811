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
 * CANCELLING jobs become CANCELLED. A terminal job is never run again.
 *
 * Decisions are synchronous on the main thread (as in `Kernel`): checks, the queue limit and the
 * enqueue happen in one turn, so two submissions cannot both take the last queue place.
 */
import assert from 'node:assert';
import { type Actor, auditEvent } from './actors.js';
import type { ChannelUse } from './bound-jobs.js';
import { KernelError, invalid } from './errors.js';
import { JobBook, type LiveJob, liveJob } from './job-book.js';
import {
  JOB_STATES,
  JOB_STOP_CANCEL,
  JOB_STOP_RUNTIME,
  JOB_STOP_SHUTDOWN,
  type JobEstimate,
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
  bitOrderOf,
  checkFormat,
  checkShots,
  isUint64,
  keyEvents,
  roleLimited,
  spaceKey,
  spaceKeys,
} from './job-programs.js';
import type { Kernel } from './kernel.js';
import {
  IDEMPOTENCY_KEY_CHARS_MAX,
  LIST_PAGE_SIZE_DEFAULT,
  LIST_PAGE_SIZE_MAX,
  SHOT_OUTCOMES_KEPT_MAX,
} from './limits.js';
import type {
  AuditEvent,
  ClockPort,
  CryptoPort,
  ExecPlan,
  JobRunResult,
  JobRunnerPort,
  OplogEntry,
  PoolOwner,
  StorePort,
  StoreRecord,
} from './ports.js';
import type { TenantPrincipal } from './principals.js';
import type { Violation } from './program/ir.js';
import { FairQueue } from './scheduler.js';

const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]+$/;
/** Watchers of running or queued jobs get progress and queue position this often (if changed). */
export const JOB_PROGRESS_INTERVAL_MS = 200;
/** Scheduling cost unit: one job costs 1 + its amplitude updates / this. */
export const JOB_COST_UNIT_AMPLITUDES = 1 << 20;
/** How long a tenant counts as active after its last pool job ended (see `poolShare`). */
export const JOB_ACTIVE_GRACE_MS = 250;

interface CommitBatch {
  records: StoreRecord[];
  /** Index in `records` of each (db, key) written. */
  slots: Map<string, number>;
  audit: AuditEvent[];
  oplog: OplogEntry[];
  after: (() => void)[];
  done: Promise<void>;
}

/** What the job manager reads from outside the kernel: time, randomness, stored results. */
export interface JobPorts {
  clock: ClockPort;
  crypto: CryptoPort;
  /** The store's reads (a job's result is read on demand, never held in memory). */
  results: Pick<StorePort, 'read'>;
}

export class JobManager {
  private readonly book = new JobBook();
  /** Checks, parses, verifies and estimates programs. */
  private readonly programs: JobPrograms;
  private readonly queue = new FairQueue();
  private readonly runningByTenant = new Map<string, number>();
  private poolBusy = 0;
  /** Pool jobs running per tenant. */
  private readonly poolByTenant = new Map<string, number>();
  /** When each recently active tenant last queued, started or ended a pool job. */
  private readonly lastActiveMs = new Map<string, number>();
  private pumpTimer: ReturnType<typeof setTimeout> | null = null;
  private seq = 0;
  private stopped = false;
  private pumping = false;
  private progressTimer: ReturnType<typeof setInterval> | null = null;
  /** Open while `batched` runs: `commitJob` adds to it instead of committing. */
  private batch: CommitBatch | null = null;

  constructor(
    private readonly kernel: Kernel,
    private readonly runner: JobRunnerPort,
    private readonly ports: JobPorts,
    loaded: readonly JobRecord[] = [],
  ) {
    this.programs = new JobPrograms(kernel, runner);
    const sorted = [...loaded].sort((a, b) => a.seq - b.seq);
    for (const rec of sorted) {
      this.book.add(liveJob(rec, null));
      this.seq = Math.max(this.seq, rec.seq);
    }
  }

  // ---------------------------------------------------------------- start and stop

  /**
   * Brings loaded jobs back: interrupted RUNNING jobs are re-queued and CANCELLING ones become
   * CANCELLED, each with a committed record and audit; then every queued job is enqueued in
   * submission order and dispatch starts. Call once, before serving.
   */
  async recover(): Promise<{ requeued: number; queued: number }> {
    const records: StoreRecord[] = [];
    const audit = [];
    let requeued = 0;
    for (const job of this.book.all()) {
      const rec = job.rec;
      if (rec.state === 'RUNNING') {
        rec.state = 'QUEUED';
        rec.reason = `interrupted by a daemon restart during attempt ${rec.attempts}; it runs again with the same seed`;
        rec.shotsDone = 0;
        requeued++;
        records.push(this.put(rec));
        audit.push(auditEvent('kernel', 'JobRequeued', rec.id, { attempts: rec.attempts }));
      } else if (rec.state === 'CANCELLING') {
        this.finish(
          job,
          'CANCELLED',
          'cancelled; the daemon restarted before the run stopped',
          records,
        );
        audit.push(auditEvent('kernel', 'JobCancelled', rec.id));
      }
    }
    if (records.length > 0) await this.kernel.durability.commitEffects(records, audit);
    for (const job of this.book.all()) job.shown = { ...job.rec };
    let queued = 0;
    const all = this.book.all().sort((a, b) => a.rec.seq - b.rec.seq);
    for (const job of all) {
      if (job.rec.state !== 'QUEUED') continue;
      const compiled = this.compileLoaded(job.rec);
      if (compiled === null) continue;
      job.compiled = compiled;
      this.enqueue(job);
      queued++;
    }
    this.pump();
    return { requeued, queued };
  }

  /** A stored QUEUED job whose program no longer verifies (a rule tightened) fails with why. */
  private compileLoaded(rec: JobRecord): Compiled | null {
    const compiled = this.programs.reload(rec);
    if (compiled !== null) return compiled;
    const job = this.book.get(rec.id)!;
    const records: StoreRecord[] = [];
    this.finish(job, 'FAILED', 'the stored program no longer parses', records);
    this.kernel.durability.background(
      this.commitJob(job, records, [auditEvent('kernel', 'JobFailed', rec.id)]),
    );
    return null;
  }

  /** Stops dispatching and asks running jobs to stop; they re-run after the restart. */
  stop(): void {
    this.stopped = true;
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    if (this.progressTimer) clearInterval(this.progressTimer);
    this.progressTimer = null;
    for (const job of this.book.all()) {
      if (job.control) Atomics.store(job.control, 0, JOB_STOP_SHUTDOWN);
      if (job.timer) clearTimeout(job.timer);
    }
  }

  // ---------------------------------------------------------------- submission

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
    const requestHash = this.ports.crypto.sha256Hex(
      JSON.stringify([
        format,
        req.source,
        req.shots,
        req.seed,
        bindings,
        req.shotOutcomesMax,
        req.strict,
      ]),
    );
    if (req.idempotencyKey !== '') {
      const job = this.book.byIdempotencyKey(tenant.id, req.idempotencyKey);
      if (job !== undefined) {
        if (job.rec.requestHash !== requestHash) {
          throw new KernelError(
            'ALREADY_EXISTS',
            `idempotency_key: already used for job ${job.rec.id} with a different request`,
            'idempotency_key',
          );
        }
        await job.pending;
        return { job: this.view(job), deduplicated: true, warnings: [] };
      }
    }
    const { compiled, estimate, warnings } = await this.programs.compileChecked(
      p,
      format,
      req.source,
      req.shots,
      roleLimited(quota, p),
      tenant.tier,
      bindings,
      req.strict,
      tenant.id,
    );
    const queued = this.queuedOf(tenant.id);
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
      cost: 1 + compiled.work / JOB_COST_UNIT_AMPLITUDES,
    };
    const job = liveJob(rec, compiled);
    this.book.add(job);
    this.enqueue(job);
    const event = auditEvent(p, 'SubmitJob', rec.id, {
      format,
      shots: rec.shots,
      nodes: estimate.nodes,
      seed: rec.seed,
    });
    // The QUEUED record and whatever the dispatch it triggers decides (a tiny job runs at once)
    // share one transaction: one sync for a submission that also finishes.
    await this.batched(() => {
      this.kernel.durability.background(this.commitJob(job, [this.put(rec)], [event]));
      this.pump();
    });
    return { job: this.view(job), deduplicated: false, warnings };
  }

  /**
   * Dry run: parses and verifies, never queues. Violations are returned, not thrown.
   * @throws INVALID_ARGUMENT (format, shots, bindings), handle errors
   */
  validate(
    p: TenantPrincipal,
    format: string,
    source: string,
    shots: number,
    bindings: { name: string; handle: string }[],
    strict: boolean,
  ): { violations: Violation[]; estimate: JobEstimate | null } {
    return this.programs.validate(p, format, source, shots, bindings, strict);
  }

  private newSeed(): string {
    const b = this.ports.crypto.secret();
    return b.readBigUInt64BE(0).toString();
  }

  // ---------------------------------------------------------------- reading

  /** @throws NOT_FOUND (also for another tenant's job) */
  async get(p: TenantPrincipal, jobId: string, field = 'job_id'): Promise<JobView> {
    const job = this.book.own(p.tenantId, jobId, field);
    await job.pending;
    return this.view(job);
  }

  /**
   * The caller's jobs, newest first, filtered; `pageToken` is the seq to continue below.
   * @throws INVALID_ARGUMENT
   */
  list(
    p: TenantPrincipal,
    f: { states: string[]; after: number; before: number; pageSize: number; pageToken: string },
  ): { jobs: JobView[]; nextPageToken: string } {
    const states = new Set<string>();
    f.states.forEach((s, i) => {
      if (!(JOB_STATES as readonly string[]).includes(s))
        throw invalid(`states[${i}]`, `unknown state ${JSON.stringify(s)}`);
      states.add(s);
    });
    if (!Number.isInteger(f.pageSize) || f.pageSize < 0 || f.pageSize > LIST_PAGE_SIZE_MAX) {
      throw invalid('page_size', `must be 0 ..= ${LIST_PAGE_SIZE_MAX}`);
    }
    let below = Number.POSITIVE_INFINITY;
    if (f.pageToken !== '') {
      if (!/^[1-9][0-9]{0,15}$/.test(f.pageToken))
        throw invalid('page_token', 'is not a token from ListJobs');
      below = Number(f.pageToken);
    }
    const size = f.pageSize === 0 ? LIST_PAGE_SIZE_DEFAULT : f.pageSize;
    const jobs = this.book.of(p.tenantId);
    const out: JobView[] = [];
    let next = '';
    for (let i = jobs.length - 1; i >= 0; i--) {
      const rec = jobs[i]!.shown;
      if (rec.seq >= below) continue;
      if (states.size > 0 && !states.has(rec.state)) continue;
      if (f.after > 0 && rec.submittedAtMs < f.after) continue;
      if (f.before > 0 && rec.submittedAtMs >= f.before) continue;
      if (out.length === size) {
        next = String(out[out.length - 1]!.seq);
        break;
      }
      out.push(this.view(jobs[i]!));
    }
    return { jobs: out, nextPageToken: next };
  }

  /** @throws NOT_FOUND, JOB_NOT_DONE */
  async result(
    p: TenantPrincipal,
    jobId: string,
  ): Promise<{ job: JobView; result: JobResultRecord }> {
    const job = this.book.own(p.tenantId, jobId, 'job_id');
    await job.pending;
    const shown = job.shown;
    if (shown.state !== 'DONE') {
      throw new KernelError(
        'JOB_NOT_DONE',
        `job_id: job ${jobId} is ${shown.state}${shown.reason ? ` (${shown.reason})` : ''}; only a DONE job has a result`,
        'job_id',
      );
    }
    const result = this.ports.results.read('job_results', jobId) as JobResultRecord | undefined;
    assert(result, `job ${jobId} is DONE without a stored result`);
    return { job: this.view(job), result };
  }

  /**
   * Subscribes to a job's changes: `listener` gets every state change and progress update after
   * the current view (returned) until the job is terminal.
   * @throws NOT_FOUND
   */
  async watch(
    p: TenantPrincipal,
    jobId: string,
    listener: JobListener,
  ): Promise<{ current: JobView; unsubscribe: () => void }> {
    const job = this.book.own(p.tenantId, jobId, 'job_id');
    await job.pending;
    const current = this.view(job);
    if (TERMINAL_STATES.has(job.shown.state)) return { current, unsubscribe: () => {} };
    job.watchers.add(listener);
    job.lastSent = progressKey(current);
    this.startProgressTimer();
    return { current, unsubscribe: () => job.watchers.delete(listener) };
  }

  // ---------------------------------------------------------------- cancel

  /** @throws NOT_FOUND, JOB_FINISHED */
  async cancel(p: TenantPrincipal, jobId: string): Promise<JobView> {
    await this.kernel.durability.waitForCheckpoint();
    const job = this.book.own(p.tenantId, jobId, 'job_id');
    await job.pending;
    const rec = job.rec;
    if (TERMINAL_STATES.has(rec.state)) {
      throw new KernelError(
        'JOB_FINISHED',
        `job_id: job ${jobId} is already ${rec.state}`,
        'job_id',
      );
    }
    if (rec.state === 'CANCELLING') return this.view(job);
    const actor = auditEvent(p, 'CancelJob', rec.id).actor;
    if (rec.state === 'QUEUED') {
      assert(this.queue.remove(rec.id));
      const records: StoreRecord[] = [];
      this.finish(job, 'CANCELLED', `cancelled by ${actor} while queued`, records);
      await this.commitJob(job, records, [auditEvent(p, 'CancelJob', rec.id, { was: 'QUEUED' })]);
      this.pump();
      return this.view(job);
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
    await this.commitJob(
      job,
      [this.put(rec)],
      [auditEvent(p, 'CancelJob', rec.id, { was: 'RUNNING' })],
    );
    if (job.control !== null && rec.state === 'CANCELLING')
      Atomics.store(job.control, 0, JOB_STOP_CANCEL);
    return this.view(job);
  }

  // ---------------------------------------------------------------- dispatch

  private enqueue(job: LiveJob): void {
    this.lastActiveMs.set(job.rec.tenantId, this.ports.clock.nowMs());
    this.queue.enqueue(
      job.rec.id,
      job.rec.tenantId,
      job.rec.seq,
      job.rec.cost,
      this.weightOf(job.rec.tenantId),
    );
  }

  private weightOf(tenantId: string): number {
    return this.kernel.principals.weightOf(tenantId);
  }

  private ownerOf(rec: JobRecord): PoolOwner {
    return { tenant: rec.tenantId, weight: this.weightOf(rec.tenantId), cost: rec.cost };
  }

  /**
   * Pool slots a tenant may hold now. While only it is active, all of them (work-conserving).
   * While others are active too, its weighted share of the slots, rounded up, at least one: a
   * tenant with many jobs in flight cannot keep another's next job waiting for its long ones.
   * A tenant counts as active while it has jobs queued or running and for `JOB_ACTIVE_GRACE_MS`
   * after its last one ended: a client that submits its next job as soon as one is done is not
   * idle in between.
   */
  private poolShare(tenantId: string, now: number): number {
    const active: string[] = [];
    for (const [t, last] of this.lastActiveMs) {
      const busy = this.queue.sizeOf(t) > 0 || (this.runningByTenant.get(t) ?? 0) > 0;
      if (busy || now - last < JOB_ACTIVE_GRACE_MS) active.push(t);
      else this.lastActiveMs.delete(t);
    }
    if (!active.includes(tenantId)) active.push(tenantId);
    if (active.length < 2) return this.runner.slots;
    const total = active.reduce((w, t) => w + this.weightOf(t), 0);
    return Math.max(1, Math.ceil((this.runner.slots * this.weightOf(tenantId)) / total));
  }

  /** Starts every queued job that may run now, in fair order. Re-entrant calls are no-ops. */
  private pump(): void {
    if (this.pumping || this.stopped) return;
    this.pumping = true;
    try {
      for (;;) {
        const next = this.queue.next((e) => this.eligible(e.jobId, e.tenantId));
        if (next === null) break;
        this.start(this.book.get(next.jobId)!);
      }
    } finally {
      this.pumping = false;
    }
  }

  private eligible(jobId: string, tenantId: string): boolean {
    const tenant = this.kernel.principals.tenant(tenantId);
    if (!tenant) return false;
    const running = this.runningByTenant.get(tenantId) ?? 0;
    if (running >= this.kernel.principals.quotaOf(tenant).jobsRunningMax) return false;
    const job = this.book.get(jobId)!;
    // A bound job runs as one plan on its qubits' cluster, not in a job slot of the pool.
    if (job.rec.bindings.length > 0 || this.isInline(job)) return true;
    if (this.poolBusy >= this.runner.slots) return false;
    if ((this.poolByTenant.get(tenantId) ?? 0) < this.poolShare(tenantId, this.ports.clock.nowMs()))
      return true;
    // Held back for another active tenant: look again once that tenant's grace may have passed,
    // so a slot is not left idle for a tenant that went away.
    this.pumpLater();
    return false;
  }

  private pumpLater(): void {
    if (this.pumpTimer !== null || this.stopped) return;
    this.pumpTimer = setTimeout(() => {
      this.pumpTimer = null;
      this.pump();
    }, JOB_ACTIVE_GRACE_MS);
    this.pumpTimer.unref?.();
  }

  private isInline(job: LiveJob): boolean {
    return job.compiled!.work <= this.runner.inlineWorkMax;
  }

  private start(job: LiveJob): void {
    const rec = job.rec;
    const now = this.ports.clock.nowMs();
    rec.state = 'RUNNING';
    rec.reason = '';
    rec.startedAtMs = now;
    rec.attempts++;
    this.runningByTenant.set(rec.tenantId, (this.runningByTenant.get(rec.tenantId) ?? 0) + 1);
    const runReq = {
      program: job.compiled!.program,
      shots: rec.shots,
      seed: rec.seed,
      shotOutcomesMax: rec.shotOutcomesMax,
    };
    const startedEvent = auditEvent('kernel', 'JobStarted', rec.id, {
      attempt: rec.attempts,
    });
    if (rec.bindings.length > 0) {
      this.startBound(job, startedEvent);
      return;
    }
    if (this.isInline(job)) {
      const inline = this.runner.runInline(runReq);
      // Tiny job: RUNNING and its end commit together (both records, both audits) and are
      // shown in order once durable.
      const records: StoreRecord[] = [this.put(rec)];
      const running = { ...rec };
      const audit = [startedEvent, ...this.complete(job, inline, records)];
      this.kernel.durability.background(this.commitJob(job, records, audit, running));
      return;
    }
    this.poolBusy++;
    this.poolByTenant.set(rec.tenantId, (this.poolByTenant.get(rec.tenantId) ?? 0) + 1);
    this.lastActiveMs.set(rec.tenantId, this.ports.clock.nowMs());
    const control = this.runner.newControl();
    job.control = control;
    const quota = this.kernel.principals.quotaOf(this.kernel.principals.tenant(rec.tenantId)!);
    const limitS = quota.jobRuntimeSecondsMax;
    job.timer = setTimeout(() => Atomics.store(control, 0, JOB_STOP_RUNTIME), limitS * 1000);
    job.timer.unref?.();
    const durableRunning = this.commitJob(job, [this.put(rec)], [startedEvent]);
    // Awaited once the run ends; meanwhile its failure (a failed write) is the kernel's divergence.
    this.kernel.durability.background(durableRunning);
    this.startProgressTimer();
    const ran = this.runner
      .run({ ...runReq, control }, this.ownerOf(rec))
      .then(
        (out) => out,
        (err: unknown): JobRunResult | Error =>
          err instanceof Error ? err : new Error(String(err)),
      )
      .then(async (out) => {
        await durableRunning;
        this.poolBusy--;
        const left = (this.poolByTenant.get(rec.tenantId) ?? 1) - 1;
        if (left === 0) this.poolByTenant.delete(rec.tenantId);
        else this.poolByTenant.set(rec.tenantId, left);
        this.lastActiveMs.set(rec.tenantId, this.ports.clock.nowMs());
        if (job.timer) clearTimeout(job.timer);
        job.timer = null;
        if (!(out instanceof Error) && out.stopped === JOB_STOP_SHUTDOWN) return; // re-runs after restart
        const records: StoreRecord[] = [];
        const audit =
          out instanceof Error
            ? this.fail(job, `the simulator failed: ${out.message}`, records)
            : this.complete(job, out, records);
        job.control = null;
        await this.commitJob(job, records, audit);
        this.pump();
      });
    this.kernel.durability.background(ran);
  }

  /**
   * A job on bound session qubits: RUNNING is committed, then (past any checkpoint in progress)
   * the kernel decides the run on the qubits as they are now and runs it as one plan; its end
   * commits DONE with the plan's op-log entry. Refusals at this point (a qubit released since
   * submission, limits) fail the job with the reason.
   */
  private startBound(job: LiveJob, startedEvent: AuditEvent): void {
    const rec = job.rec;
    const program = job.compiled!.program;
    this.kernel.durability.background(this.commitJob(job, [this.put(rec)], [startedEvent]));
    const failWith = (reason: string) => {
      const records: StoreRecord[] = [];
      const audit = this.fail(job, reason, records);
      this.kernel.durability.background(
        this.commitJob(job, records, audit).then(() => this.pump()),
      );
    };
    const decideAndRun = () => {
      let decided: { plan: ExecPlan; channels: ChannelUse[] };
      try {
        const foreign = new Map(
          rec.bindings.flatMap((b) =>
            b.channel === undefined ? [] : [[b.qubitId, b.channel] as const],
          ),
        );
        decided = this.kernel.boundJobs.decide(
          rec.tenantId,
          {
            program,
            seed: rec.seed,
            shotOutcomesMax: rec.shotOutcomesMax,
            bound: rec.bindings.map((b) => ({ name: b.name, qubitId: b.qubitId })),
          },
          { foreign, uses: job.compiled!.channelUses },
        );
      } catch (err) {
        if (!(err instanceof KernelError)) throw err; // a bug: `background` reports it
        this.kernel.durability.background(
          this.kernel.firewall.auditRefusal('kernel', 'RunBoundJob', err),
        );
        failWith(`could not run on the bound qubits: ${err.message}`);
        return;
      }
      return this.kernel.boundJobs
        .invoke(
          rec.id,
          decided.plan,
          decided.channels,
          (run, records, oplog, used) => {
            const audit = [...used, ...this.complete(job, run, records)];
            return this.commitJob(job, records, audit, undefined, oplog);
          },
          this.ownerOf(rec),
        )
        .then(
          () => this.pump(),
          (err: unknown) => {
            if (!TERMINAL_STATES.has(rec.state)) failWith(`the simulator failed: ${String(err)}`);
          },
        );
    };
    this.kernel.durability.background(
      this.kernel.durability.waitForCheckpoint().then(decideAndRun),
    );
  }

  /** Decides a finished run's terminal state; returns the audit records to commit with `records`. */
  private complete(job: LiveJob, out: JobRunResult, records: StoreRecord[]) {
    const rec = job.rec;
    rec.shotsDone = out.shotsDone;
    if (out.stopped === JOB_STOP_CANCEL) {
      this.finish(
        job,
        'CANCELLED',
        `cancelled by ${job.cancelActor || 'the tenant'} after ${out.shotsDone} of ${rec.shots} shots`,
        records,
      );
      return [auditEvent('kernel', 'JobCancelled', rec.id, { shots_done: out.shotsDone })];
    }
    if (out.stopped === JOB_STOP_RUNTIME) {
      const limit = this.kernel.principals.quotaOf(
        this.kernel.principals.tenant(rec.tenantId)!,
      ).jobRuntimeSecondsMax;
      return this.fail(
        job,
        `job_runtime_seconds_max: ran longer than ${limit} s (${out.shotsDone} of ${rec.shots} shots done)`,
        records,
      );
    }
    assert(out.stopped === 0, `unknown stop flag ${out.stopped}`);
    const now = this.ports.clock.nowMs();
    const result: JobResultRecord = {
      counts: spaceKeys(out.counts, job.compiled!.registers),
      keyEvents: keyEvents(job.compiled!),
      bitOrder: bitOrderOf(rec.format),
      shotOutcomes: out.shotOutcomes.map((s) => spaceKey(s, job.compiled!.registers)),
      sampling: out.mode,
      engine: this.runner.engine,
      queueMs: Math.max(0, rec.startedAtMs - rec.submittedAtMs),
      runMs: Math.max(0, now - rec.startedAtMs),
      largestState: out.largestState,
    };
    records.push({ op: 'put', db: 'job_results', key: rec.id, value: result, owner: rec.tenantId });
    this.finish(job, 'DONE', '', records);
    return [auditEvent('kernel', 'JobDone', rec.id, { shots: rec.shots, mode: out.mode })];
  }

  private fail(job: LiveJob, reason: string, records: StoreRecord[]) {
    this.finish(job, 'FAILED', reason, records);
    return [auditEvent('kernel', 'JobFailed', job.rec.id, { reason })];
  }

  /** Moves a job to a terminal state (records appended; the caller commits then announces). */
  private finish(job: LiveJob, state: JobState, reason: string, records: StoreRecord[]): void {
    const rec = job.rec;
    assert(TERMINAL_STATES.has(state) && !TERMINAL_STATES.has(rec.state));
    if (rec.state === 'RUNNING' || rec.state === 'CANCELLING') {
      const n = (this.runningByTenant.get(rec.tenantId) ?? 1) - 1;
      if (n === 0) this.runningByTenant.delete(rec.tenantId);
      else this.runningByTenant.set(rec.tenantId, n);
    }
    rec.state = state;
    rec.reason = reason;
    rec.finishedAtMs = this.ports.clock.nowMs();
    if (state === 'DONE') rec.shotsDone = rec.shots;
    rec.source = '';
    job.compiled = null;
    records.push(this.put(rec));
    for (const old of this.book.ended(rec)) {
      records.push({ op: 'del', db: 'jobs', key: old }, { op: 'del', db: 'job_results', key: old });
    }
  }

  // ---------------------------------------------------------------- announcing

  /**
   * Commits `records` (holding this job's record) with `audit`; once durable the job is shown as
   * committed (first as `before` when one commit holds two transitions) and watchers are told.
   * Commits complete in call order, so what is shown only moves forward.
   */
  private commitJob(
    job: LiveJob,
    records: StoreRecord[],
    audit: AuditEvent[],
    before?: JobRecord,
    oplog: OplogEntry[] = [],
  ): Promise<void> {
    const snapshot = { ...job.rec };
    const show = () => {
      if (before) this.show(job, before);
      this.show(job, snapshot);
    };
    const b = this.batch;
    let done: Promise<void>;
    if (b !== null) {
      // One transaction: a later write of the same key replaces the earlier one (a job that is
      // queued, started and finished in one batch is encoded once, as finished).
      for (const r of records) {
        const key = `${r.db}\u0000${r.key}`;
        const at = b.slots.get(key);
        if (at === undefined) {
          b.slots.set(key, b.records.length);
          b.records.push(r);
        } else b.records[at] = r;
      }
      b.audit.push(...audit);
      b.oplog.push(...oplog);
      b.after.push(show);
      done = b.done;
    } else {
      done = this.kernel.durability.commitEffects(records, audit, oplog).then(show);
    }
    job.pending = done;
    return done;
  }

  /**
   * Runs `fn` (synchronous) with every `commitJob` it makes collected into one transaction,
   * committed when `fn` returns; each job is shown, in call order, once that is durable.
   */
  private batched(fn: () => void): Promise<void> {
    let settle!: { resolve: () => void; reject: (e: unknown) => void };
    const done = new Promise<void>((resolve, reject) => {
      settle = { resolve, reject };
    });
    const b: CommitBatch = { records: [], slots: new Map(), audit: [], oplog: [], after: [], done };
    this.batch = b;
    try {
      fn();
    } finally {
      this.batch = null;
    }
    this.kernel.durability.commitEffects(b.records, b.audit, b.oplog).then(() => {
      for (const show of b.after) show();
      settle.resolve();
    }, settle.reject);
    return done;
  }

  private show(job: LiveJob, rec: JobRecord): void {
    job.shown = rec;
    this.emit(job, this.view(job));
    if (TERMINAL_STATES.has(rec.state)) job.watchers.clear();
  }

  private emit(job: LiveJob, view: JobView): void {
    job.lastSent = progressKey(view);
    for (const w of job.watchers) w(view);
  }

  /** While anyone watches a queued or running job, sends position and progress when they change. */
  private startProgressTimer(): void {
    if (this.progressTimer !== null || this.stopped) return;
    this.progressTimer = setInterval(() => {
      let watched = 0;
      for (const job of this.book.all()) {
        if (job.watchers.size === 0) continue;
        watched++;
        if (job.shown.state !== 'QUEUED' && job.shown.state !== 'RUNNING') continue;
        const view = this.view(job);
        if (progressKey(view) !== job.lastSent) this.emit(job, view);
      }
      if (watched === 0 && this.poolBusy === 0 && this.progressTimer) {
        clearInterval(this.progressTimer);
        this.progressTimer = null;
      }
    }, JOB_PROGRESS_INTERVAL_MS);
    this.progressTimer.unref?.();
  }

  // ---------------------------------------------------------------- bookkeeping

  private queuedOf(tenantId: string): number {
    return this.queue.sizeOf(tenantId);
  }

  private put(rec: JobRecord): StoreRecord {
    return { op: 'put', db: 'jobs', key: rec.id, value: { ...rec }, owner: rec.tenantId };
  }

  private view(job: LiveJob): JobView {
    const { source: _s, requestHash: _h, cost: _c, ...rest } = job.shown;
    const shotsDone =
      job.control !== null && (rest.state === 'RUNNING' || rest.state === 'CANCELLING')
        ? Atomics.load(job.control, 1)
        : rest.shotsDone;
    return { ...rest, shotsDone, queuePosition: this.queue.position(rest.id) };
  }

  /** Counts by state (status and tests). */
  stats(): Record<JobState, number> & { poolBusy: number } {
    const out = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    for (const j of this.book.all()) out[j.rec.state]++;
    return { ...out, poolBusy: this.poolBusy };
  }
}

// ---------------------------------------------------------------- helpers

/**
 * Parses either format into the IR; JSON syntax errors become a rule-1 violation. OpenQASM
 * allocates every qubit at the start and frees it at the end implicitly; a `bound` qubit is
 * already live and stays the session's, so its implicit allocation and release are left out.
 */
function progressKey(v: JobView): string {
  return `${v.state}/${v.queuePosition}/${v.shotsDone}`;
}

export type { Actor };
