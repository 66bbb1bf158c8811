/**
 * The job ledger: every retained job as committed and as shown. Layer: kernel. It owns the book
 * of jobs, the commit of each transition with its audit record (alone, or batched into one
 * transaction), what callers see (a job is shown only once its record is durable, so no one
 * reads a state the store might not have), the reads (GetJob, ListJobs, WatchJob, the result)
 * and the progress updates watchers get. It decides no transition: the manager and the runs do.
 */
import assert from 'node:assert';
import { log } from '../util/log.js';
import type { Admission } from './admission.js';
import type { Durability } from './durability.js';
import { KernelError, invalid, quote } from './errors.js';
import { JobBook, type LiveJob } from './job-book.js';
import {
  JOB_STATES,
  type JobListener,
  type JobRecord,
  type JobResultRecord,
  type JobState,
  type JobView,
  TERMINAL_STATES,
} from './job-model.js';
import { LIST_PAGE_SIZE_DEFAULT, LIST_PAGE_SIZE_MAX } from './limits.js';
import type { AuditEvent, ClockPort, OplogEntry, StorePort, StoreRecord } from './ports.js';
import type { TenantPrincipal } from './principals.js';

/** Watchers of running or queued jobs get progress and queue position this often (if changed). */
export const JOB_PROGRESS_INTERVAL_MS = 200;

interface CommitBatch {
  records: StoreRecord[];
  /** Index in `records` of each (db, key) written. */
  slots: Map<string, number>;
  audit: AuditEvent[];
  oplog: OplogEntry[];
  after: (() => void)[];
  done: Promise<void>;
}

export class JobLedger {
  readonly book = new JobBook();
  /** Jobs RUNNING or CANCELLING per tenant (the running limit reads it). */
  private readonly runningByTenant = new Map<string, number>();
  private progressTimer: ReturnType<typeof setInterval> | null = null;
  /** Open while `batched` runs: `commit` adds to it instead of committing. */
  private batch: CommitBatch | null = null;
  private stopped = false;

  constructor(
    private readonly durability: Durability,
    private readonly admission: Admission,
    private readonly clock: ClockPort,
    private readonly results: Pick<StorePort, 'read'>,
    /** Whether no job is running on the pool (the progress timer may stop). */
    private readonly idle: () => boolean,
    private readonly onFinished: (rec: JobRecord) => void = () => {},
  ) {}

  /** Counts a job as running (RUNNING or CANCELLING) until `finish`. */
  markRunning(rec: JobRecord): void {
    this.runningByTenant.set(rec.tenantId, (this.runningByTenant.get(rec.tenantId) ?? 0) + 1);
  }

  runningOf(tenantId: string): number {
    return this.runningByTenant.get(tenantId) ?? 0;
  }

  /** Stops the progress timer for good (shutdown). */
  stop(): void {
    this.stopped = true;
    if (this.progressTimer) clearInterval(this.progressTimer);
    this.progressTimer = null;
  }

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
        throw invalid(`states[${i}]`, `unknown state ${quote(s)}`);
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
    const result = this.results.read('job_results', jobId) as JobResultRecord | undefined;
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

  /** Moves a job to a terminal state (records appended; the caller commits then announces). */
  finish(job: LiveJob, state: JobState, reason: string, records: StoreRecord[]): void {
    const rec = job.rec;
    assert(TERMINAL_STATES.has(state) && !TERMINAL_STATES.has(rec.state));
    if (rec.state === 'RUNNING' || rec.state === 'CANCELLING') {
      const n = (this.runningByTenant.get(rec.tenantId) ?? 1) - 1;
      if (n === 0) this.runningByTenant.delete(rec.tenantId);
      else this.runningByTenant.set(rec.tenantId, n);
    }
    rec.state = state;
    rec.reason = reason;
    rec.finishedAtMs = this.clock.nowMs();
    if (state === 'DONE') rec.shotsDone = rec.shots;
    rec.source = '';
    rec.progress = undefined;
    job.compiled = null;
    records.push(this.put(rec));
    for (const old of this.book.ended(rec)) {
      records.push({ op: 'del', db: 'jobs', key: old }, { op: 'del', db: 'job_results', key: old });
    }
  }

  /**
   * Commits `records` (holding this job's record) with `audit`; once durable the job is shown as
   * committed (first as `before` when one commit holds two transitions) and watchers are told.
   * Commits complete in call order, so what is shown only moves forward.
   */
  commit(
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
      done = this.durability.commitEffects(records, audit, oplog).then(show);
    }
    job.pending = done;
    return done;
  }

  /**
   * Runs `fn` (synchronous) with every `commitJob` it makes collected into one transaction,
   * committed when `fn` returns; each job is shown, in call order, once that is durable.
   */
  batched(fn: () => void): Promise<void> {
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
    this.durability.commitEffects(b.records, b.audit, b.oplog).then(() => {
      for (const show of b.after) show();
      settle.resolve();
    }, settle.reject);
    return done;
  }

  private show(job: LiveJob, rec: JobRecord): void {
    if (job.logged !== rec.state) {
      log.info('job', {
        job: rec.id,
        tenant: rec.tenantId,
        from: job.logged,
        state: rec.state,
        ...(rec.reason === '' ? {} : { reason: rec.reason }),
        ...(TERMINAL_STATES.has(rec.state) ? { shots_done: rec.shotsDone } : {}),
      });
    }
    if (job.logged !== rec.state && TERMINAL_STATES.has(rec.state)) this.onFinished(rec);
    job.logged = rec.state;
    job.shown = rec;
    this.emit(job, this.view(job));
    if (TERMINAL_STATES.has(rec.state)) job.watchers.clear();
  }

  private emit(job: LiveJob, view: JobView): void {
    job.lastSent = progressKey(view);
    for (const w of job.watchers) w(view);
  }

  /** While anyone watches a queued or running job, sends position and progress when they change. */
  startProgressTimer(): void {
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
      if (watched === 0 && this.idle() && this.progressTimer) {
        clearInterval(this.progressTimer);
        this.progressTimer = null;
      }
    }, JOB_PROGRESS_INTERVAL_MS);
    this.progressTimer.unref?.();
  }

  put(rec: JobRecord): StoreRecord {
    return { op: 'put', db: 'jobs', key: rec.id, value: { ...rec }, owner: rec.tenantId };
  }

  view(job: LiveJob): JobView {
    const { source: _s, requestHash: _h, cost: _c, progress: _p, ...rest } = job.shown;
    const shotsDone =
      job.control !== null && (rest.state === 'RUNNING' || rest.state === 'CANCELLING')
        ? Atomics.load(job.control, 1)
        : rest.shotsDone;
    const position = this.admission.position(rest.id, (id) => this.book.get(id) !== undefined);
    return { ...rest, shotsDone, queuePosition: position };
  }

  /** Counts by state (status and tests). */
  stats(): Record<JobState, number> {
    const out = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    for (const j of this.book.all()) out[j.rec.state]++;
    return out;
  }
}

function progressKey(v: JobView): string {
  return `${v.state}/${v.queuePosition}/${v.shotsDone}`;
}
