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
import { type ErrorCode, KernelError, invalid } from './errors.js';
import { RIGHTS } from './handles.js';
import {
  type Binding,
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
  type ProgramFormat,
  type SubmitRequest,
  TERMINAL_STATES,
} from './job-model.js';
import type { Actor, ChannelUse, Kernel, TenantPrincipal } from './kernel.js';
import {
  IDEMPOTENCY_KEY_CHARS_MAX,
  JOBS_RETAINED_PER_TENANT_MAX,
  LIST_PAGE_SIZE_DEFAULT,
  LIST_PAGE_SIZE_MAX,
  PHYSICAL_QUBITS_PER_JOB_MAX,
  PROGRAM_SOURCE_BYTES_MAX,
  QUBITS_PER_CLUSTER_MAX,
  SEED_MAX,
  SHOT_OUTCOMES_KEPT_MAX,
  TIER_DEFAULTS,
  roleQubitsMax,
} from './limits.js';
import type { Quota } from './model.js';
import type {
  AuditEvent,
  ExecPlan,
  JobRunResult,
  JobRunnerPort,
  OplogEntry,
  PoolOwner,
  StoreRecord,
} from './ports.js';
import type { Program, ProgramNode, Violation } from './program/ir.js';
import { parseQasm } from './program/qasm.js';
import { COUNTS_ORDER, parseQvm } from './program/qvm.js';
import { mergeViolations, verifyProgram } from './program/verify.js';
import { FairQueue } from './scheduler.js';

const SEED_PATTERN = /^[0-9]{1,20}$/;
const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]+$/;
const QASM_BIT_ORDER =
  "Qiskit's: classical registers separated by spaces, the last-declared register leftmost, " +
  'the highest bit index leftmost within a register';

/** Watchers of running or queued jobs get progress and queue position this often (if changed). */
export const JOB_PROGRESS_INTERVAL_MS = 200;
/** Scheduling cost unit: one job costs 1 + its amplitude updates / this. */
export const JOB_COST_UNIT_AMPLITUDES = 1 << 20;
/** How long a tenant counts as active after its last pool job ended (see `poolShare`). */
export const JOB_ACTIVE_GRACE_MS = 250;

interface Compiled {
  program: Program;
  /** The runner's work estimate for the job's shots: cost, and inline routing. */
  work: number;
  /** Classical register sizes in key order (OpenQASM), for the spaces in result keys. */
  registers: { name: string; size: number }[] | null;
  /** Rule 9: channel uses the program's joins across tenants need. */
  channelUses: Map<string, number>;
}

interface CommitBatch {
  records: StoreRecord[];
  /** Index in `records` of each (db, key) written. */
  slots: Map<string, number>;
  audit: AuditEvent[];
  oplog: OplogEntry[];
  after: (() => void)[];
  done: Promise<void>;
}

interface LiveJob {
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
}

export class JobManager {
  private readonly jobs = new Map<string, LiveJob>();
  /** Each tenant's job ids in submission (seq) order. */
  private readonly byTenant = new Map<string, string[]>();
  private readonly finishedByTenant = new Map<string, string[]>();
  private readonly idempotency = new Map<string, string>();
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
    loaded: readonly JobRecord[] = [],
  ) {
    const sorted = [...loaded].sort((a, b) => a.seq - b.seq);
    for (const rec of sorted) {
      this.index(liveJob(rec, null));
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
    for (const ids of this.byTenant.values()) {
      for (const id of ids) {
        const job = this.jobs.get(id)!;
        const rec = job.rec;
        if (rec.state === 'RUNNING') {
          rec.state = 'QUEUED';
          rec.reason = `interrupted by a daemon restart during attempt ${rec.attempts}; it runs again with the same seed`;
          rec.shotsDone = 0;
          requeued++;
          records.push(this.put(rec));
          audit.push(
            this.kernel.audit('kernel', 'JobRequeued', rec.id, { attempts: rec.attempts }),
          );
        } else if (rec.state === 'CANCELLING') {
          this.finish(
            job,
            'CANCELLED',
            'cancelled; the daemon restarted before the run stopped',
            records,
          );
          audit.push(this.kernel.audit('kernel', 'JobCancelled', rec.id));
        }
      }
    }
    if (records.length > 0) await this.kernel.commitEffects(records, audit);
    for (const job of this.jobs.values()) job.shown = { ...job.rec };
    let queued = 0;
    const all = [...this.jobs.values()].sort((a, b) => a.rec.seq - b.rec.seq);
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
    const parsed = parseProgram(rec.format, rec.source, rec.bindings);
    if (parsed.program && parsed.violations.every((v) => v.severity === 'warning')) {
      const work = this.runner.workEstimate(parsed.program, rec.shots);
      const channelUses = new Map(Object.entries(rec.channelUses ?? {}));
      return { program: parsed.program, registers: parsed.registers, work, channelUses };
    }
    const job = this.jobs.get(rec.id)!;
    const records: StoreRecord[] = [];
    this.finish(job, 'FAILED', 'the stored program no longer parses', records);
    this.kernel.background(
      this.commitJob(job, records, [this.kernel.audit('kernel', 'JobFailed', rec.id)]),
    );
    return null;
  }

  /** Stops dispatching and asks running jobs to stop; they re-run after the restart. */
  stop(): void {
    this.stopped = true;
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    if (this.progressTimer) clearInterval(this.progressTimer);
    this.progressTimer = null;
    for (const job of this.jobs.values()) {
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
    await this.kernel.pass();
    this.kernel.requireSpace();
    const tenant = this.kernel.tenantOf(p);
    const quota = this.kernel.quotaOf(tenant);
    // Checked now, taken once the job is decided: a refused submission costs no token.
    this.kernel.checkRate(p, 'jobs', 1);
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
    const bindings = this.decodeBindings(p, req.bindings, req.shots);
    const requestHash = this.kernel.ports.crypto.sha256Hex(
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
    const idemKey = `${tenant.id}\u0000${req.idempotencyKey}`;
    if (req.idempotencyKey !== '') {
      const existing = this.idempotency.get(idemKey);
      if (existing !== undefined) {
        const job = this.jobs.get(existing)!;
        if (job.rec.requestHash !== requestHash) {
          throw new KernelError(
            'ALREADY_EXISTS',
            `idempotency_key: already used for job ${existing} with a different request`,
            'idempotency_key',
          );
        }
        await job.pending;
        return { job: this.view(job), deduplicated: true, warnings: [] };
      }
    }
    const { compiled, estimate, warnings } = await this.compileChecked(
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
    this.kernel.takeRate(p, 'jobs', 1);
    // Decided: from here nothing can fail.
    const now = this.kernel.ports.clock.nowMs();
    const rec: JobRecord = {
      id: this.kernel.ports.crypto.id(),
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
    this.index(job);
    this.enqueue(job);
    const event = this.kernel.audit(p, 'SubmitJob', rec.id, {
      format,
      shots: rec.shots,
      nodes: estimate.nodes,
      seed: rec.seed,
    });
    // The QUEUED record and whatever the dispatch it triggers decides (a tiny job runs at once)
    // share one transaction: one sync for a submission that also finishes.
    await this.batched(() => {
      this.kernel.background(this.commitJob(job, [this.put(rec)], [event]));
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
    const tenant = this.kernel.tenantOf(p);
    const quota = this.kernel.quotaOf(tenant);
    const f = checkFormat(format);
    checkShots(shots, quota);
    const bound = this.decodeBindings(p, bindings, shots);
    const r = this.compile(
      f,
      source,
      shots,
      roleLimited(quota, p),
      tenant.tier,
      bound,
      strict,
      tenant.id,
    );
    return { violations: r.violations, estimate: r.estimate };
  }

  private compile(
    format: ProgramFormat,
    source: string,
    shots: number,
    quota: Quota,
    tier: keyof typeof TIER_DEFAULTS,
    bindings: Binding[],
    strict: boolean,
    tenantId: string,
  ): { compiled: Compiled | null; violations: Violation[]; estimate: JobEstimate | null } {
    if (Buffer.byteLength(source, 'utf8') > PROGRAM_SOURCE_BYTES_MAX) {
      throw invalid('program.source', `longer than ${PROGRAM_SOURCE_BYTES_MAX} bytes`);
    }
    const parsed = parseProgram(format, source, bindings);
    if (parsed.program === null)
      return { compiled: null, violations: parsed.violations, estimate: null };
    const program = parsed.program;
    bindings.forEach((b, i) => {
      if (!program.qubits.includes(b.name)) {
        throw invalid(
          `bindings[${i}].name`,
          `${JSON.stringify(b.name)} is not a qubit of the program`,
        );
      }
      if (program.nodes.some((n) => n.op === 'FREE_LQ' && n.qubits.includes(b.name))) {
        throw invalid(
          `bindings[${i}].name`,
          `the program frees bound qubit ${JSON.stringify(b.name)}; a job cannot release a session qubit (ReleaseQubits does)`,
        );
      }
    });
    const own = bindings.filter((b) => b.channel === undefined);
    const caps = own.length > 0 ? this.boundCaps(own) : TIER_DEFAULTS[tier].caps;
    const foreign = new Map(
      bindings.flatMap((b) =>
        b.channel === undefined
          ? []
          : [[b.name, { tenant: b.owner!, channel: b.channel }] as const],
      ),
    );
    const verified = verifyProgram(program, {
      caps,
      strict,
      limits: {
        nodesMax: quota.programNodesMax,
        qubitsLiveMax: quota.qubitsLiveMax,
        qubitsPerClusterMax: Math.min(quota.qubitsPerClusterMax, QUBITS_PER_CLUSTER_MAX),
        physicalQubitsMax: PHYSICAL_QUBITS_PER_JOB_MAX,
        stateBytesMax: quota.stateBytesMax,
      },
      bound: bindings.map((b) => b.name),
      firewall: {
        tenant: tenantId,
        foreign,
        decide: (tenants, preferred) => this.kernel.firewallDecision(tenants, preferred),
      },
    });
    const violations = mergeViolations(parsed.violations, verified.violations);
    const valid = !violations.some((v) => v.severity === 'error');
    const estimate: JobEstimate = {
      ...verified.estimate,
      sampling: valid ? this.runner.samplingMode(program) : '',
    };
    const work = valid ? this.runner.workEstimate(program, shots) : 0;
    return {
      compiled: { program, registers: parsed.registers, work, channelUses: verified.channelUses },
      violations,
      estimate,
    };
  }

  /** Compiles and throws every violation; a firewall refusal (rule 9) is audited first. */
  private async compileChecked(
    p: TenantPrincipal,
    format: ProgramFormat,
    source: string,
    shots: number,
    quota: Quota,
    tier: keyof typeof TIER_DEFAULTS,
    bindings: Binding[],
    strict: boolean,
    tenantId: string,
  ): Promise<{ compiled: Compiled; estimate: JobEstimate; warnings: Violation[] }> {
    const r = this.compile(format, source, shots, quota, tier, bindings, strict, tenantId);
    const errors = r.violations.filter((v) => v.severity === 'error');
    const firewall = errors.find((v) => v.rule === 9 && v.code !== undefined);
    if (firewall) {
      const err = new KernelError(
        firewall.code as ErrorCode,
        `${firewall.node}: ${firewall.message}`,
        'program',
      );
      await this.kernel.auditFirewallRefusal(p, 'SubmitJob', err);
    }
    if (r.compiled === null || r.estimate === null || errors.length > 0) {
      const shown = errors.length > 0 ? errors : r.violations;
      const first = shown[0];
      throw new KernelError(
        'PROGRAM_INVALID',
        `program: ${shown.length} violation(s)${first ? `; first: ${describe(first)}` : ''}`,
        'program',
        shown.map((v) => ({
          field: v.node === '' ? v.field : `${v.node}: ${v.field}`,
          description: describe(v),
          reason: v.rule === 0 ? 'QASM_SYNTAX' : `QVM_RULE_${v.rule}`,
        })),
      );
    }
    return {
      compiled: r.compiled,
      estimate: r.estimate,
      warnings: r.violations.filter((v) => v.severity === 'warning'),
    };
  }

  /** Bindings name the caller's session qubits by handle; they force a single shot. */
  private decodeBindings(
    p: TenantPrincipal,
    bindings: { name: string; handle: string }[],
    shots: number,
  ): Binding[] {
    if (bindings.length === 0) return [];
    if (shots !== 1) {
      throw invalid(
        'shots',
        'must be 1 for a job with bindings: it acts on your persistent qubits, whose state cannot be copied (no-cloning), so it can run only once',
      );
    }
    const names = new Set<string>();
    const ids = new Set<string>();
    return bindings.map((b, i) => {
      if (names.has(b.name))
        throw invalid(`bindings[${i}].name`, `${JSON.stringify(b.name)} is bound twice`);
      names.add(b.name);
      const field = `bindings[${i}].qubit_handle`;
      const c = this.kernel.verifyHandle(p, b.handle, field, null, 0);
      // Another tenant's qubit shared through a channel: its program uses are rule 9's to check.
      const shared = c.kind === 'SHARED_VQ';
      if (!shared && c.kind !== 'VQ')
        throw new KernelError('HANDLE_WRONG_KIND', `${field}: expected a VQ handle`, field);
      const need = shared ? RIGHTS.RIGHT_LINK : RIGHTS.RIGHT_COMPUTE | RIGHTS.RIGHT_MEASURE;
      if ((c.rights & need) !== need)
        throw new KernelError('RIGHTS_INSUFFICIENT', `${field}: handle lacks the right`, field);
      if (ids.has(c.resourceId)) throw invalid(field, 'the same qubit is bound twice');
      ids.add(c.resourceId);
      return shared
        ? {
            name: b.name,
            qubitId: c.resourceId,
            channel: c.sessionId,
            owner: this.kernel.sharedOwner(c),
          }
        : { name: b.name, qubitId: c.resourceId };
    });
  }

  /** The caps of a bound job: those every bound qubit's session holds. */
  private boundCaps(bindings: { qubitId: string }[]): string[] {
    let caps: string[] | null = null;
    for (const b of bindings) {
      const q = this.kernel.qubits.get(b.qubitId)!;
      const held = this.kernel.sessions.get(q.sessionId)?.caps ?? [];
      caps = caps === null ? [...held] : caps.filter((c) => held.includes(c as never));
    }
    return caps ?? [];
  }

  private newSeed(): string {
    const b = this.kernel.ports.crypto.secret();
    return b.readBigUInt64BE(0).toString();
  }

  // ---------------------------------------------------------------- reading

  /** @throws NOT_FOUND (also for another tenant's job) */
  async get(p: TenantPrincipal, jobId: string, field = 'job_id'): Promise<JobView> {
    const job = this.own(p, jobId, field);
    await job.pending;
    return this.view(job);
  }

  private own(p: TenantPrincipal, jobId: string, field: string): LiveJob {
    if (jobId === '') throw invalid(field, 'is required');
    const job = this.jobs.get(jobId);
    if (!job || job.rec.tenantId !== p.tenantId) {
      throw new KernelError(
        'NOT_FOUND',
        `${field}: no job ${JSON.stringify(jobId.slice(0, 64))}`,
        field,
      );
    }
    return job;
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
    const ids = this.byTenant.get(p.tenantId) ?? [];
    const out: JobView[] = [];
    let next = '';
    for (let i = ids.length - 1; i >= 0; i--) {
      const rec = this.jobs.get(ids[i]!)!.shown;
      if (rec.seq >= below) continue;
      if (states.size > 0 && !states.has(rec.state)) continue;
      if (f.after > 0 && rec.submittedAtMs < f.after) continue;
      if (f.before > 0 && rec.submittedAtMs >= f.before) continue;
      if (out.length === size) {
        next = String(out[out.length - 1]!.seq);
        break;
      }
      out.push(this.view(this.jobs.get(rec.id)!));
    }
    return { jobs: out, nextPageToken: next };
  }

  /** @throws NOT_FOUND, JOB_NOT_DONE */
  async result(
    p: TenantPrincipal,
    jobId: string,
  ): Promise<{ job: JobView; result: JobResultRecord }> {
    const job = this.own(p, jobId, 'job_id');
    await job.pending;
    const shown = job.shown;
    if (shown.state !== 'DONE') {
      throw new KernelError(
        'JOB_NOT_DONE',
        `job_id: job ${jobId} is ${shown.state}${shown.reason ? ` (${shown.reason})` : ''}; only a DONE job has a result`,
        'job_id',
      );
    }
    const result = this.kernel.ports.store.read('job_results', jobId) as
      | JobResultRecord
      | undefined;
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
    const job = this.own(p, jobId, 'job_id');
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
    await this.kernel.pass();
    const job = this.own(p, jobId, 'job_id');
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
    const actor = this.kernel.audit(p, 'CancelJob', rec.id).actor;
    if (rec.state === 'QUEUED') {
      assert(this.queue.remove(rec.id));
      const records: StoreRecord[] = [];
      this.finish(job, 'CANCELLED', `cancelled by ${actor} while queued`, records);
      await this.commitJob(job, records, [
        this.kernel.audit(p, 'CancelJob', rec.id, { was: 'QUEUED' }),
      ]);
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
      [this.kernel.audit(p, 'CancelJob', rec.id, { was: 'RUNNING' })],
    );
    if (job.control !== null && rec.state === 'CANCELLING')
      Atomics.store(job.control, 0, JOB_STOP_CANCEL);
    return this.view(job);
  }

  // ---------------------------------------------------------------- dispatch

  private enqueue(job: LiveJob): void {
    this.lastActiveMs.set(job.rec.tenantId, this.kernel.ports.clock.nowMs());
    this.queue.enqueue(
      job.rec.id,
      job.rec.tenantId,
      job.rec.seq,
      job.rec.cost,
      this.weightOf(job.rec.tenantId),
    );
  }

  private weightOf(tenantId: string): number {
    return this.kernel.weightOf(tenantId);
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
        this.start(this.jobs.get(next.jobId)!);
      }
    } finally {
      this.pumping = false;
    }
  }

  private eligible(jobId: string, tenantId: string): boolean {
    const tenant = this.kernel.tenants.get(tenantId);
    if (!tenant) return false;
    const running = this.runningByTenant.get(tenantId) ?? 0;
    if (running >= this.kernel.quotaOf(tenant).jobsRunningMax) return false;
    const job = this.jobs.get(jobId)!;
    // A bound job runs as one plan on its qubits' cluster, not in a job slot of the pool.
    if (job.rec.bindings.length > 0 || this.isInline(job)) return true;
    if (this.poolBusy >= this.runner.slots) return false;
    if (
      (this.poolByTenant.get(tenantId) ?? 0) <
      this.poolShare(tenantId, this.kernel.ports.clock.nowMs())
    )
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
    const now = this.kernel.ports.clock.nowMs();
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
    const startedEvent = this.kernel.audit('kernel', 'JobStarted', rec.id, {
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
      this.kernel.background(this.commitJob(job, records, audit, running));
      return;
    }
    this.poolBusy++;
    this.poolByTenant.set(rec.tenantId, (this.poolByTenant.get(rec.tenantId) ?? 0) + 1);
    this.lastActiveMs.set(rec.tenantId, this.kernel.ports.clock.nowMs());
    const control = this.runner.newControl();
    job.control = control;
    const quota = this.kernel.quotaOf(this.kernel.tenants.get(rec.tenantId)!);
    const limitS = quota.jobRuntimeSecondsMax;
    job.timer = setTimeout(() => Atomics.store(control, 0, JOB_STOP_RUNTIME), limitS * 1000);
    job.timer.unref?.();
    const durableRunning = this.commitJob(job, [this.put(rec)], [startedEvent]);
    // Awaited once the run ends; meanwhile its failure (a failed write) is the kernel's divergence.
    this.kernel.background(durableRunning);
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
        this.lastActiveMs.set(rec.tenantId, this.kernel.ports.clock.nowMs());
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
    this.kernel.background(ran);
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
    this.kernel.background(this.commitJob(job, [this.put(rec)], [startedEvent]));
    const failWith = (reason: string) => {
      const records: StoreRecord[] = [];
      const audit = this.fail(job, reason, records);
      this.kernel.background(this.commitJob(job, records, audit).then(() => this.pump()));
    };
    const decideAndRun = () => {
      let decided: { plan: ExecPlan; channels: ChannelUse[] };
      try {
        const foreign = new Map(
          rec.bindings.flatMap((b) =>
            b.channel === undefined ? [] : [[b.qubitId, b.channel] as const],
          ),
        );
        decided = this.kernel.decideBoundJob(
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
        this.kernel.background(this.kernel.auditFirewallRefusal('kernel', 'RunBoundJob', err));
        failWith(`could not run on the bound qubits: ${err.message}`);
        return;
      }
      return this.kernel
        .invokeBoundJob(
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
    this.kernel.background(this.kernel.pass().then(decideAndRun));
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
      return [this.kernel.audit('kernel', 'JobCancelled', rec.id, { shots_done: out.shotsDone })];
    }
    if (out.stopped === JOB_STOP_RUNTIME) {
      const limit = this.kernel.quotaOf(
        this.kernel.tenants.get(rec.tenantId)!,
      ).jobRuntimeSecondsMax;
      return this.fail(
        job,
        `job_runtime_seconds_max: ran longer than ${limit} s (${out.shotsDone} of ${rec.shots} shots done)`,
        records,
      );
    }
    assert(out.stopped === 0, `unknown stop flag ${out.stopped}`);
    const now = this.kernel.ports.clock.nowMs();
    const result: JobResultRecord = {
      counts: spaceKeys(out.counts, job.compiled!.registers),
      keyEvents: keyEvents(job.compiled!),
      bitOrder: rec.format === 'qasm' ? QASM_BIT_ORDER : COUNTS_ORDER,
      shotOutcomes: out.shotOutcomes.map((s) => spaceKey(s, job.compiled!.registers)),
      sampling: out.mode,
      engine: this.runner.engine,
      queueMs: Math.max(0, rec.startedAtMs - rec.submittedAtMs),
      runMs: Math.max(0, now - rec.startedAtMs),
      largestState: out.largestState,
    };
    records.push({ op: 'put', db: 'job_results', key: rec.id, value: result, owner: rec.tenantId });
    this.finish(job, 'DONE', '', records);
    return [this.kernel.audit('kernel', 'JobDone', rec.id, { shots: rec.shots, mode: out.mode })];
  }

  private fail(job: LiveJob, reason: string, records: StoreRecord[]) {
    this.finish(job, 'FAILED', reason, records);
    return [this.kernel.audit('kernel', 'JobFailed', job.rec.id, { reason })];
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
    rec.finishedAtMs = this.kernel.ports.clock.nowMs();
    if (state === 'DONE') rec.shotsDone = rec.shots;
    rec.source = '';
    job.compiled = null;
    records.push(this.put(rec));
    const finished = setOf(this.finishedByTenant, rec.tenantId);
    finished.push(rec.id);
    while (finished.length > JOBS_RETAINED_PER_TENANT_MAX) {
      const old = finished.shift()!;
      this.forget(old);
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
      done = this.kernel.commitEffects(records, audit, oplog).then(show);
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
    this.kernel.commitEffects(b.records, b.audit, b.oplog).then(() => {
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
      for (const job of this.jobs.values()) {
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

  private index(job: LiveJob): void {
    const rec = job.rec;
    this.jobs.set(rec.id, job);
    setOf(this.byTenant, rec.tenantId).push(rec.id);
    if (rec.idempotencyKey !== '')
      this.idempotency.set(`${rec.tenantId}\u0000${rec.idempotencyKey}`, rec.id);
    if (TERMINAL_STATES.has(rec.state)) setOf(this.finishedByTenant, rec.tenantId).push(rec.id);
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
    for (const j of this.jobs.values()) out[j.rec.state]++;
    return { ...out, poolBusy: this.poolBusy };
  }
}

// ---------------------------------------------------------------- helpers

/**
 * Parses either format into the IR; JSON syntax errors become a rule-1 violation. OpenQASM
 * allocates every qubit at the start and frees it at the end implicitly; a `bound` qubit is
 * already live and stays the session's, so its implicit allocation and release are left out.
 */
export function parseProgram(
  format: ProgramFormat,
  source: string,
  bound: readonly { name: string }[] = [],
): {
  program: Program | null;
  violations: Violation[];
  registers: { name: string; size: number }[] | null;
} {
  if (format === 'qasm') {
    const r = parseQasm(source);
    const program =
      r.program && bound.length > 0 ? withoutImplicitLifetime(r.program, bound) : r.program;
    return { program, violations: r.violations, registers: r.registers };
  }
  let json: unknown;
  try {
    json = JSON.parse(source);
  } catch (err) {
    return {
      program: null,
      registers: null,
      violations: [
        {
          node: '',
          field: 'program.source',
          rule: 1,
          message: `not valid JSON: ${(err as Error).message}`,
          severity: 'error',
        },
      ],
    };
  }
  const r = parseQvm(json);
  return { program: r.program, violations: r.violations, registers: null };
}

function withoutImplicitLifetime(p: Program, bound: readonly { name: string }[]): Program {
  const names = new Set(bound.map((b) => b.name));
  const nodes: ProgramNode[] = [];
  for (const node of p.nodes) {
    if (node.op !== 'ALLOC_LQ' && node.op !== 'FREE_LQ') {
      nodes.push(node);
      continue;
    }
    const qubits = node.qubits.filter((q) => !names.has(q));
    if (qubits.length === 0) continue;
    const args = node.op === 'ALLOC_LQ' ? { ...node.args, n: qubits.length } : node.args;
    nodes.push({ ...node, qubits, args });
  }
  return { ...p, nodes };
}

/** The quota a program is verified against: the tenant's, narrowed by the key's role. */
function roleLimited(quota: Quota, p: TenantPrincipal): Quota {
  const max = roleQubitsMax(p.roles);
  return {
    ...quota,
    qubitsLiveMax: Math.min(quota.qubitsLiveMax, max),
    qubitsPerClusterMax: Math.min(quota.qubitsPerClusterMax, max),
  };
}

function checkFormat(format: string): ProgramFormat {
  if (format === 'QVM_JSON') return 'qvm';
  if (format === 'OPENQASM2') return 'qasm';
  throw invalid('program.format', 'must be PROGRAM_FORMAT_QVM_JSON or PROGRAM_FORMAT_OPENQASM2');
}

function checkShots(shots: number, quota: Quota): void {
  if (!Number.isInteger(shots) || shots < 1) throw invalid('shots', 'must be at least 1');
  if (shots > quota.shotsPerJobMax) {
    throw new KernelError(
      'QUOTA_EXCEEDED',
      `shots_per_job_max: ${shots} shots > ${quota.shotsPerJobMax}`,
      'shots_per_job_max',
    );
  }
}

function isUint64(s: string): boolean {
  return SEED_PATTERN.test(s) && BigInt(s) <= SEED_MAX;
}

function describe(v: Violation): string {
  const where = [v.node, v.field].filter((x) => x !== '').join(' ');
  const code = v.code === undefined ? '' : `${v.code}: `;
  return `${where ? `${where}: ` : ''}${code}${v.message}${v.rule > 0 ? ` (rule ${v.rule})` : ''}`;
}

function progressKey(v: JobView): string {
  return `${v.state}/${v.queuePosition}/${v.shotsDone}`;
}

/** Inserts the spaces between OpenQASM registers into a key (QVM keys have none). */
function spaceKey(key: string, registers: { size: number }[] | null): string {
  if (registers === null || registers.length < 2) return key;
  const parts: string[] = [];
  let at = 0;
  for (const r of registers) {
    parts.push(key.slice(at, at + r.size));
    at += r.size;
  }
  return parts.join(' ');
}

function spaceKeys(
  counts: Record<string, number>,
  registers: { size: number }[] | null,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(counts)) out[spaceKey(k, registers)] = n;
  return out;
}

/** The name behind each key character: events in key order (a 1-event MEASURE_BELL takes two). */
function keyEvents(c: Compiled): string[] {
  const widths = new Map<string, number>();
  for (const node of c.program.nodes) {
    if (node.op === 'MEASURE_BELL' && node.produces.length === 1) widths.set(node.produces[0]!, 2);
  }
  return c.program.events.flatMap((e) => (widths.get(e) === 2 ? [`${e}.m0`, `${e}.m1`] : [e]));
}

function liveJob(rec: JobRecord, compiled: Compiled | null): LiveJob {
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
  };
}

function setOf<K, V>(m: Map<K, V[]>, k: K): V[] {
  let s = m.get(k);
  if (!s) {
    s = [];
    m.set(k, s);
  }
  return s;
}

export type { Actor };
