/**
 * The job manager's book of jobs: every retained job by id, each tenant's in submission order
 * (newest-first listing, retention) and idempotency keys. Layer: kernel (data, no I/O). The
 * manager changes jobs; this keeps the indexes that find them consistent with the table.
 */
import { KernelError, invalid, quote } from './errors.js';
import { type JobListener, type JobRecord, TERMINAL_STATES } from './job-model.js';
import type { Compiled } from './job-programs.js';
import { JOBS_RETAINED_PER_TENANT_MAX } from './limits.js';

/** A job as the manager holds it in memory. */
export interface LiveJob {
  /** The scheduler's record: changes first, then is committed. */
  rec: JobRecord;
  /**
   * The last committed copy of `rec`: all a caller ever sees (GetJob, ListJobs, WatchJob, the
   * result), so no one reads a state the store might not have yet.
   */
  shown: JobRecord;
  /** The last commit holding this job's record; readers wait for it. */
  pending: Promise<void>;
  compiled: Compiled | null;
  control: Int32Array | null;
  timer: ReturnType<typeof setTimeout> | null;
  cancelActor: string;
  watchers: Set<JobListener>;
  lastSent: string;
  /** The state the log last reported ('' before the job's first commit). */
  logged: string;
}

export function liveJob(rec: JobRecord, compiled: Compiled | null): LiveJob {
  return {
    rec,
    shown: { ...rec },
    pending: Promise.resolve(),
    compiled,
    control: null,
    timer: null,
    cancelActor: '',
    watchers: new Set(),
    lastSent: '',
    logged: '',
  };
}

export class JobBook {
  private readonly jobs = new Map<string, LiveJob>();
  /** Each tenant's job ids in submission (seq) order. */
  private readonly byTenant = new Map<string, string[]>();
  /** Each tenant's terminal job ids in the order they ended (retention drops the oldest). */
  private readonly finishedByTenant = new Map<string, string[]>();
  private readonly idempotency = new Map<string, string>();

  get(id: string): LiveJob | undefined {
    return this.jobs.get(id);
  }

  all(): LiveJob[] {
    return [...this.jobs.values()];
  }

  /** A tenant's jobs in submission order. */
  of(tenantId: string): LiveJob[] {
    return (this.byTenant.get(tenantId) ?? []).map((id) => this.jobs.get(id)!);
  }

  /** The job a tenant submitted under an idempotency key, if any. */
  byIdempotencyKey(tenantId: string, key: string): LiveJob | undefined {
    const id = this.idempotency.get(`${tenantId}\u0000${key}`);
    return id === undefined ? undefined : this.jobs.get(id);
  }

  /** The caller's job. @throws INVALID_ARGUMENT, NOT_FOUND (also for another tenant's job) */
  own(tenantId: string, jobId: string, field: string): LiveJob {
    if (jobId === '') throw invalid(field, 'is required');
    const job = this.jobs.get(jobId);
    if (!job || job.rec.tenantId !== tenantId) {
      throw new KernelError('NOT_FOUND', `${field}: no job ${quote(jobId)}`, field);
    }
    return job;
  }

  add(job: LiveJob): void {
    const rec = job.rec;
    this.jobs.set(rec.id, job);
    listOf(this.byTenant, rec.tenantId).push(rec.id);
    if (rec.idempotencyKey !== '')
      this.idempotency.set(`${rec.tenantId}\u0000${rec.idempotencyKey}`, rec.id);
    if (TERMINAL_STATES.has(rec.state)) listOf(this.finishedByTenant, rec.tenantId).push(rec.id);
  }

  /**
   * Records that a job ended; returns the ids of the tenant's oldest terminal jobs now past
   * `JOBS_RETAINED_PER_TENANT_MAX`, already dropped from the book (their records are to delete).
   */
  ended(rec: JobRecord): string[] {
    const finished = listOf(this.finishedByTenant, rec.tenantId);
    finished.push(rec.id);
    const dropped: string[] = [];
    while (finished.length > JOBS_RETAINED_PER_TENANT_MAX) {
      const old = finished.shift()!;
      this.forget(old);
      dropped.push(old);
    }
    return dropped;
  }

  private forget(jobId: string): void {
    const job = this.jobs.get(jobId);
    if (!job) return;
    const rec = job.rec;
    this.jobs.delete(jobId);
    const ids = this.byTenant.get(rec.tenantId)!;
    ids.splice(ids.indexOf(jobId), 1);
    if (rec.idempotencyKey !== '')
      this.idempotency.delete(`${rec.tenantId}\u0000${rec.idempotencyKey}`);
  }
}

function listOf<K, V>(m: Map<K, V[]>, k: K): V[] {
  let s = m.get(k);
  if (!s) {
    s = [];
    m.set(k, s);
  }
  return s;
}
