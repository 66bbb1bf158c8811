/**
 * Running jobs: when a queued job may start (tenant policy over the one admission queue: running
 * limits, pool slots, weighted shares of the pool) and what starting means: inline for tiny work,
 * one plan on the session's clusters for a bound job, a pool thread otherwise; and how a run's
 * end becomes its terminal state. Layer: kernel. The ledger commits and shows each transition.
 */
import assert from 'node:assert';
import { outsideRequest } from '../util/request-context.js';
import { auditEvent } from './actors.js';
import type { Admission } from './admission.js';
import type { ChannelUse } from './bound-jobs.js';
import { KernelError } from './errors.js';
import type { LiveJob } from './job-book.js';
import type { JobLedger } from './job-ledger.js';
import {
  JOB_STOP_CANCEL,
  JOB_STOP_RUNTIME,
  JOB_STOP_SHUTDOWN,
  type JobRecord,
  type JobResultRecord,
  TERMINAL_STATES,
} from './job-model.js';
import { bitOrderOf, spaceKey, spaceKeys } from './job-programs.js';
import type { Kernel } from './kernel.js';
import type {
  AuditEvent,
  ClockPort,
  ExecPlan,
  JobRunResult,
  JobRunnerPort,
  PoolOwner,
  StoreRecord,
} from './ports.js';

/** How long a tenant counts as active after its last pool job ended (see `poolShare`). */
export const JOB_ACTIVE_GRACE_MS = 250;

export class JobRuns {
  /** Queued jobs per tenant (`jobs_queued_max`); the admission queue also holds plans. */
  private readonly queuedByTenant = new Map<string, number>();
  /** Jobs holding a pool thread now, at most `runner.slots`. */
  private poolBusy = 0;
  /** Pool jobs running per tenant. */
  private readonly poolByTenant = new Map<string, number>();
  /** When each recently active tenant last queued, started or ended a pool job. */
  private readonly lastActiveMs = new Map<string, number>();
  private pumpTimer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  /** Pool runs not yet ended (their end committed), for a drain to wait on. */
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly kernel: Kernel,
    private readonly runner: JobRunnerPort,
    private readonly clock: ClockPort,
    private readonly admission: Admission,
    private readonly ledger: JobLedger,
  ) {}

  /** Jobs running on the pool now. */
  get poolJobs(): number {
    return this.poolBusy;
  }

  /** Takes a queued job out of the admission queue (cancelled while queued). */
  withdraw(job: LiveJob): void {
    assert(this.admission.remove(job.rec.id));
    this.countQueued(job.rec.tenantId, -1);
  }

  /** Stops dispatching: queued jobs stay queued (and durable) for the restart. */
  stopAdmitting(): void {
    this.stopped = true;
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    this.pumpTimer = null;
  }

  /** Resolves true once no pool job is running, false if `ms` pass first (a drain's wait). */
  async settled(ms: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<false>((r) => {
      timer = setTimeout(() => r(false), ms);
    });
    try {
      for (;;) {
        if (this.running.size === 0) return true;
        const next = Promise.all(this.running).then(() => true as const);
        if (!(await Promise.race([next, late]))) return false;
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Stops dispatching and stops the running pool jobs at their next poll; resolves once each has
   * recorded its shot progress (committed), so the restarted daemon goes on from there.
   */
  async interrupt(): Promise<void> {
    this.stopAdmitting();
    for (const job of this.ledger.book.all()) {
      if (job.control) Atomics.store(job.control, 0, JOB_STOP_SHUTDOWN);
      if (job.timer) clearTimeout(job.timer);
    }
    while (this.running.size > 0) await Promise.all(this.running);
  }

  /**
   * Queues a job in the admission queue, in fair order with every other pool task; it starts
   * when it is its turn and the tenant's policy (`eligible`) lets it. A bound job runs as a plan
   * and a tiny one inline: neither takes a pool thread here.
   */
  enqueue(job: LiveJob): void {
    const rec = job.rec;
    this.lastActiveMs.set(rec.tenantId, this.clock.nowMs());
    this.countQueued(rec.tenantId, 1);
    this.admission.enqueue({
      id: rec.id,
      tenant: rec.tenantId,
      seq: rec.seq,
      cost: rec.cost,
      weight: this.weightOf(rec.tenantId),
      usesThread: rec.bindings.length === 0 && !this.isInline(job),
      eligible: () => this.eligible(job),
      start: (release) => {
        this.countQueued(rec.tenantId, -1);
        this.start(job, release);
      },
    });
  }

  private countQueued(tenantId: string, delta: number): void {
    const n = (this.queuedByTenant.get(tenantId) ?? 0) + delta;
    if (n === 0) this.queuedByTenant.delete(tenantId);
    else this.queuedByTenant.set(tenantId, n);
  }

  queuedOf(tenantId: string): number {
    return this.queuedByTenant.get(tenantId) ?? 0;
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
      const busy = this.queuedOf(t) > 0 || this.ledger.runningOf(t) > 0;
      if (busy || now - last < JOB_ACTIVE_GRACE_MS) active.push(t);
      else this.lastActiveMs.delete(t);
    }
    if (!active.includes(tenantId)) active.push(tenantId);
    if (active.length < 2) return this.runner.slots;
    const total = active.reduce((w, t) => w + this.weightOf(t), 0);
    return Math.max(1, Math.ceil((this.runner.slots * this.weightOf(tenantId)) / total));
  }

  /**
   * Starts every queued job that may run now (the tenant policy below may have changed). The
   * runs belong to no call: whichever call woke the pump, its request id stays out of the jobs'
   * log lines and audit records.
   */
  pump(): void {
    if (!this.stopped) outsideRequest(() => this.admission.dispatch());
  }

  /** The tenant policy a queued job must pass to start: running limit, pool slots and share. */
  private eligible(job: LiveJob): boolean {
    if (this.stopped) return false;
    const tenantId = job.rec.tenantId;
    const tenant = this.kernel.principals.tenant(tenantId);
    if (!tenant) return false;
    const running = this.ledger.runningOf(tenantId);
    if (running >= this.kernel.principals.quotaOf(tenant).jobsRunningMax) return false;
    // A bound job runs as one plan on its qubits' cluster, not in a job slot of the pool.
    if (job.rec.bindings.length > 0 || this.isInline(job)) return true;
    if (this.poolBusy >= this.runner.slots) return false;
    if ((this.poolByTenant.get(tenantId) ?? 0) < this.poolShare(tenantId, this.clock.nowMs()))
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
    // A program checked off the main thread has no plan here: it runs on the pool.
    const c = job.compiled!;
    return c.plan !== null && c.work <= this.runner.inlineWorkMax;
  }

  /** Starts a job the admission queue picked; `release` frees its pool thread (if it took one). */
  private start(job: LiveJob, release: () => void): void {
    const rec = job.rec;
    const now = this.clock.nowMs();
    rec.state = 'RUNNING';
    rec.reason = '';
    rec.startedAtMs = now;
    rec.attempts++;
    this.ledger.markRunning(rec);
    const compiled = job.compiled!;
    const runReq = {
      program:
        compiled.plan === null
          ? { format: rec.format, source: rec.source }
          : { plan: compiled.plan },
      shots: rec.shots,
      seed: rec.seed,
      shotOutcomesMax: rec.shotOutcomesMax,
      // An interrupted attempt's recorded shots are not run again.
      ...(rec.progress === undefined ? {} : { resume: rec.progress }),
    };
    const startedEvent = auditEvent(
      'kernel',
      'JobStarted',
      rec.id,
      {
        attempt: rec.attempts,
        ...(rec.progress === undefined ? {} : { resumed_at_shot: rec.progress.shotsDone }),
      },
      [rec.tenantId],
    );
    if (rec.bindings.length > 0) {
      this.startBound(job, startedEvent);
      return;
    }
    if (this.isInline(job)) {
      const inline = this.runner.runInline(runReq);
      // Tiny job: RUNNING and its end commit together (both records, both audits) and are
      // shown in order once durable.
      const records: StoreRecord[] = [this.ledger.put(rec)];
      const running = { ...rec };
      const audit = [startedEvent, ...this.complete(job, inline, records)];
      this.kernel.durability.background(this.ledger.commit(job, records, audit, running));
      return;
    }
    this.poolBusy++;
    this.poolByTenant.set(rec.tenantId, (this.poolByTenant.get(rec.tenantId) ?? 0) + 1);
    this.lastActiveMs.set(rec.tenantId, this.clock.nowMs());
    const control = this.runner.newControl();
    job.control = control;
    const quota = this.kernel.principals.quotaOf(this.kernel.principals.tenant(rec.tenantId)!);
    const limitS = quota.jobRuntimeSecondsMax;
    job.timer = setTimeout(() => Atomics.store(control, 0, JOB_STOP_RUNTIME), limitS * 1000);
    job.timer.unref?.();
    const durableRunning = this.ledger.commit(job, [this.ledger.put(rec)], [startedEvent]);
    // Awaited once the run ends; meanwhile its failure (a failed write) is the kernel's divergence.
    this.kernel.durability.background(durableRunning);
    this.ledger.startProgressTimer();
    const ran = this.runner
      .run({ ...runReq, control })
      .then(
        (out) => {
          release();
          return out;
        },
        (err: unknown): JobRunResult | Error => {
          release();
          return err instanceof Error ? err : new Error(String(err));
        },
      )
      .then(async (out) => {
        await durableRunning;
        this.poolBusy--;
        const left = (this.poolByTenant.get(rec.tenantId) ?? 1) - 1;
        if (left === 0) this.poolByTenant.delete(rec.tenantId);
        else this.poolByTenant.set(rec.tenantId, left);
        this.lastActiveMs.set(rec.tenantId, this.clock.nowMs());
        if (job.timer) clearTimeout(job.timer);
        job.timer = null;
        if (!(out instanceof Error) && out.stopped === JOB_STOP_SHUTDOWN) {
          await this.recordProgress(job, out);
          return;
        }
        const records: StoreRecord[] = [];
        const audit =
          out instanceof Error
            ? this.fail(job, `the simulator failed: ${out.message}`, records)
            : this.complete(job, out, records);
        job.control = null;
        await this.ledger.commit(job, records, audit);
        this.pump();
      });
    const ended = ran.then(
      () => {},
      () => {},
    );
    this.running.add(ended);
    void ended.then(() => this.running.delete(ended));
    this.kernel.durability.background(ran);
  }

  /**
   * A run stopped by a drain: its shot progress goes into the job's record (the job stays RUNNING
   * in the store; the restarted daemon queues it again and it resumes from these shots).
   */
  private async recordProgress(job: LiveJob, out: JobRunResult): Promise<void> {
    const rec = job.rec;
    job.control = null;
    if (out.shotsDone <= (rec.progress?.shotsDone ?? 0) || out.rng === undefined) return;
    rec.progress = {
      shotsDone: out.shotsDone,
      counts: out.counts,
      shotOutcomes: out.shotOutcomes,
      rng: out.rng,
    };
    rec.shotsDone = out.shotsDone;
    const event = auditEvent(
      'kernel',
      'JobInterrupted',
      rec.id,
      { shots_done: out.shotsDone, shots: rec.shots },
      [rec.tenantId],
    );
    await this.ledger.commit(job, [this.ledger.put(rec)], [event]);
  }

  /**
   * A job on bound session qubits: RUNNING is committed, then (past any checkpoint in progress)
   * the kernel decides the run on the qubits as they are now and runs it as one plan; its end
   * commits DONE with the plan's op-log entry. Refusals at this point (a qubit released since
   * submission, limits) fail the job with the reason.
   */
  private startBound(job: LiveJob, startedEvent: AuditEvent): void {
    const rec = job.rec;
    const program = job.compiled!.program!; // kept for a job on bound qubits
    this.kernel.durability.background(
      this.ledger.commit(job, [this.ledger.put(rec)], [startedEvent]),
    );
    const failWith = (reason: string) => {
      const records: StoreRecord[] = [];
      const audit = this.fail(job, reason, records);
      this.kernel.durability.background(
        this.ledger.commit(job, records, audit).then(() => this.pump()),
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
            return this.ledger.commit(job, records, audit, undefined, oplog);
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
      this.ledger.finish(
        job,
        'CANCELLED',
        `cancelled by ${job.cancelActor || 'the tenant'} after ${out.shotsDone} of ${rec.shots} shots`,
        records,
      );
      return [
        auditEvent('kernel', 'JobCancelled', rec.id, { shots_done: out.shotsDone }, [rec.tenantId]),
      ];
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
    const now = this.clock.nowMs();
    const result: JobResultRecord = {
      counts: spaceKeys(out.counts, job.compiled!.registers),
      keyEvents: job.compiled!.keyEvents,
      bitOrder: bitOrderOf(rec.format),
      shotOutcomes: out.shotOutcomes.map((s) => spaceKey(s, job.compiled!.registers)),
      sampling: out.mode,
      engine: this.runner.engine,
      queueMs: Math.max(0, rec.startedAtMs - rec.submittedAtMs),
      runMs: Math.max(0, now - rec.startedAtMs),
      largestState: out.largestState,
    };
    records.push({ op: 'put', db: 'job_results', key: rec.id, value: result, owner: rec.tenantId });
    this.ledger.finish(job, 'DONE', '', records);
    return [
      auditEvent('kernel', 'JobDone', rec.id, { shots: rec.shots, mode: out.mode }, [rec.tenantId]),
    ];
  }

  private fail(job: LiveJob, reason: string, records: StoreRecord[]) {
    this.ledger.finish(job, 'FAILED', reason, records);
    return [auditEvent('kernel', 'JobFailed', job.rec.id, { reason }, [job.rec.tenantId])];
  }
}
