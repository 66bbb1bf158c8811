/**
 * Ports: the interfaces through which the kernel talks to the outside. Layer: kernel.
 * `store/`, `security/` and `sim/` implement them; `main.ts` wires them. The kernel never imports
 * an implementation, so its decisions can be tested with in-memory fakes and its imports stay inward.
 */

import type { ChannelRecord } from './channels.js';
import type { Basis, GateName } from './gate-set.js';
import type { JobRecord, ProgramFormat, RunProgress } from './job-model.js';
import type { Credential, Qubit, Session, Tenant } from './model.js';
import type { PreparedRun, ProgramCheckRequest, ProgramCheckResult } from './program-check.js';
import type { Program } from './program/ir.js';

export interface ClockPort {
  nowMs(): number;
}

export interface CryptoPort {
  /** 16 random bytes as 32 hex characters (resource ids). */
  id(): string;
  /** A uniform draw in [0, 1) from a CSPRNG (measurement outcomes). */
  unit(): number;
  /** 32 random bytes (API key secrets). */
  secret(): Buffer;
  /**
   * SHA-256 of UTF-8 text, hex; of several parts, of each part's length (decimal, then ':') and
   * the part in turn, so no two lists of parts hash alike. API keys are 256-bit random, so one
   * hash is enough.
   */
  sha256Hex(...parts: string[]): string;
}

export type KeyState = 'ok' | 'unknown-key' | 'retired';

export interface SigningKeyInfo {
  keyId: number;
  publicKey: string;
  active: boolean;
  createdAtMs: number;
  retireAtMs: number;
}

export interface SignerPort {
  activeKeyId(): number;
  /** Signs with the active key. */
  sign(payload: Uint8Array): Uint8Array;
  /** Cryptographic check only; callers also check `keyState` on every use. */
  verify(keyId: number, payload: Uint8Array, signature: Uint8Array): boolean;
  keyState(keyId: number, nowMs: number): KeyState;
  /** Makes a new key active; returns the records to persist (sealed) in the same transaction. */
  rotate(nowMs: number, graceMs: number): { records: StoreRecord[]; active: SigningKeyInfo };
  keys(nowMs: number): SigningKeyInfo[];
}

/**
 * A gate or measurement as the simulator runs it (qubit ids, not handles). `random` (a uniform
 * draw in [0, 1)) or `forced` (the outcome recorded in the op log, for replay) decides a
 * measurement's outcome, and RESET's.
 */
export type SimOp =
  | {
      kind: 'gate';
      name: GateName;
      qubits: string[];
      theta?: number;
      random?: number;
      forced?: 0 | 1;
    }
  | {
      kind: 'measure';
      qubit: string;
      basis: Basis;
      angle?: number;
      random?: number;
      forced?: 0 | 1;
    };

export interface ClusterRef {
  id: number;
  qubits: string[];
}

/**
 * A job on bound session qubits, run once on its plan's merged cluster. Deterministic in
 * (program, seed, input state), so the op log replays it as is.
 */
/**
 * Whose work a pool task is, for the pool's weighted fair queue across tenants (interactive plans
 * and jobs share it). `cost` is in the job scheduler's units; a plan's is estimated by the pool.
 */
export interface PoolOwner {
  tenant: string;
  weight: number;
  cost?: number;
}

export interface BoundJobRun {
  program: Program;
  seed: string;
  shotOutcomesMax: number;
  /** Program qubit name -> the session qubit id it is bound to. */
  bound: { name: string; qubitId: string }[];
}

/**
 * One unit of simulation work on one (merged) cluster: merge `parts` in order, run `ops` (or
 * `job`), split `split` out. `results` is the planned outcome: the rest cluster first, then one
 * per split qubit.
 */
export interface ExecPlan {
  parts: ClusterRef[];
  ops: SimOp[];
  split: string[];
  results: ClusterRef[];
  job?: BoundJobRun;
}

export interface SimulatorPort {
  /** A new 1-qubit cluster in |0>. */
  create(cluster: ClusterRef): void;
  /**
   * Runs after every earlier plan touching the same clusters. `onDone` is called synchronously
   * with the outcomes as soon as the work finishes and before any later plan on these clusters can
   * finish, so the op-log entry it enqueues lands in per-cluster order (replay depends on it).
   * A plan with a `job` gives no outcomes and the job's result as `run`.
   */
  execute(
    plan: ExecPlan,
    onDone: (outcomes: (0 | 1)[], run?: JobRunResult) => Promise<void>,
    owner?: PoolOwner,
  ): Promise<void>;
  /** Forgets a cluster after its pending work. */
  drop(clusterId: number): void;
  /** Waits for all pending work, then returns a copy of every cluster's state. */
  snapshot(): Promise<{ cluster: ClusterRef; state: Float64Array }[]>;
  restore(cluster: ClusterRef, state: Float64Array): void;
  /** Waits for all pending work. */
  idle(): Promise<void>;
  readonly engine: string;
  readonly threads: number;
}

export type DbName =
  | 'meta'
  | 'tenants'
  | 'credentials'
  | 'sessions'
  | 'qubits'
  | 'signing_keys'
  | 'oplog'
  | 'clusters'
  | 'audit'
  | 'audit_tree'
  | 'audit_index'
  | 'jobs'
  | 'job_results'
  | 'channels';

export type StoreRecord =
  /** `owner`: the tenant whose data key seals the record (tenant-data databases only). */
  | { op: 'put'; db: DbName; key: string | number; value: unknown; owner?: string }
  | { op: 'del'; db: DbName; key: string | number };

export interface AuditEvent {
  actor: string;
  action: string;
  target: string;
  outcome: 'ok' | string;
  detail?: Record<string, unknown>;
  /** The tenants the act concerns: each sees the record in its own view of the log. */
  tenants?: string[];
  /** The request id of the call that did the act (set by the store for the caller's own acts). */
  request?: string;
}

/** An audit record as committed: its place in the log, its time and its chain links. */
export interface AuditRecord extends AuditEvent {
  seq: number;
  tsMs: number;
  prev: string;
  hash: string;
}

/** A committed record with its leaf in the log's Merkle tree (leaf index `seq - 1`). */
export interface AuditLeaf {
  record: AuditRecord;
  /** The exact bytes the leaf hash covers. */
  leafInput: Buffer;
  leafHash: Buffer;
}

/**
 * The audit log read as an RFC 6962 Merkle tree, leaf i being record i + 1 (the store keeps
 * the tree; the kernel decides who may read what).
 */
export interface AuditLogPort {
  /** The tree of the first `size` records (default: all committed): its size and root hash. */
  treeRoot(size?: number): { size: number; root: Buffer };
  /** @throws RangeError unless index < size ≤ the committed size */
  inclusionProof(index: number, size: number): Buffer[];
  /** @throws RangeError unless size1 ≤ size2 ≤ the committed size */
  consistencyProof(size1: number, size2: number): Buffer[];
  /** A committed record with its leaf, or undefined. */
  auditLeaf(seq: number): AuditLeaf | undefined;
  /**
   * Sequence numbers of the records concerning `tenant`, from `fromSeq` on (down from it when
   * `down`), at most `limit`.
   */
  auditSeqsOf(tenant: string, fromSeq: number, limit: number, down: boolean): number[];
}

/**
 * An op-log entry: enough to replay cluster state bit-exactly (measurements carry outcomes).
 * `owner` is the tenant whose data key seals it at rest (absent: the kernel's own key).
 */
export type OplogEntry = (
  | { kind: 'create'; cluster: ClusterRef }
  | { kind: 'exec'; plan: ExecPlan; outcomes: (0 | 1)[] }
  | { kind: 'drop'; clusterId: number }
) & { owner?: string };

export interface StorePort {
  /**
   * Commits records, op-log entries and audit events in one transaction; resolves once durable.
   * Enqueue order is commit order.
   */
  commit(records: StoreRecord[], audit: AuditEvent[], oplog?: OplogEntry[]): Promise<void>;
  auditHead(): { seq: number; hash: string };
  /** A committed record (synchronous: LMDB reads are memory-mapped), or undefined. */
  read(db: DbName, key: string | number): unknown;
  /**
   * The free space on the store's disk when it is below the operator's watermark, else null.
   * Read on every call that grows state (one statfs, about 3 µs), so it is never stale.
   */
  lowSpace(): { freeBytes: number; minBytes: number } | null;
  /**
   * Destroys `owner`'s data key (crypto-shredding): its sealed records never open again, even
   * from an older copy of the data file; later records sealed for it are not written. True when
   * the key is gone (destroyed now, or before).
   */
  shred(owner: string): boolean;
}

/** One job run: a verified program for a number of shots, reproducible from the seed. */
export interface JobRunRequest {
  /**
   * What runs: the plan `prepare` made (`PreparedRun.plan`), or a large program's verified source,
   * planned on the runner's thread (its plan never crosses the main thread).
   */
  program: { plan: unknown } | { format: ProgramFormat; source: string };
  shots: number;
  /** Decimal unsigned 64-bit seed of the run's PRNG. */
  seed: string;
  /** Keep per-shot outcome strings for the first this-many shots. */
  shotOutcomesMax: number;
  /** Shared control words: [0] stop flag (0 run; see JOB_STOP_*), [1] shots done (runner writes). */
  control?: Int32Array;
  /**
   * A stopped run of the same program, shots and seed to go on from: its first `shotsDone` shots
   * are not run again, and the counts are those an uninterrupted run gives.
   */
  resume?: RunProgress;
}

export interface JobRunResult {
  /** 0 when the run completed, else the stop flag it saw. */
  stopped: number;
  /** Bit string over `program.events` (first event leftmost) -> shots. */
  counts: Record<string, number>;
  shotOutcomes: string[];
  mode: 'sampled' | 'per-shot';
  shotsDone: number;
  largestState: number;
  /** The generator's state after the `shotsDone` shots (a stopped run resumes from it). */
  rng?: number[];
}

/** Runs jobs (programs for many shots) on the simulator: inline when tiny, else on the pool. */
export interface JobRunnerPort {
  readonly engine: string;
  /** Pool jobs that may run at once (more would only queue inside the pool). */
  readonly slots: number;
  /** Plans a valid program's run for `shots`, on the calling thread. */
  prepare(program: Program, shots: number): PreparedRun;
  /** Work (`PreparedRun.work`) up to which a job runs inline: a pool round trip would cost more. */
  readonly inlineWorkMax: number;
  /** Runs on the calling thread (the caller checked the work against `inlineWorkMax`). */
  runInline(req: JobRunRequest): JobRunResult;
  /** Runs on a pool thread the caller holds (admitted through the kernel's admission queue). */
  run(req: JobRunRequest): Promise<JobRunResult>;
  /** Fresh shared control words for one run. */
  newControl(): Int32Array;
}

/** Everything the kernel loads at start. */
export interface LoadedState {
  tenants: Tenant[];
  credentials: Credential[];
  sessions: Session[];
  qubits: Qubit[];
  checkpoint: { seq: number; clusters: { cluster: ClusterRef; state: Float64Array }[] };
  oplog: { seq: number; entry: OplogEntry }[];
  nextClusterId: number;
  /** Every retained job (results stay in the store and are read on demand). */
  jobs: JobRecord[];
  channels: ChannelRecord[];
}

/** The result of re-hashing the whole audit chain. */
export interface AuditVerification {
  records: number;
  headSeq: number;
  headHash: string;
  ok: boolean;
  brokenSeq: number;
  reason: string;
}

export interface BackupResult {
  path: string;
  bytes: number;
  auditSeq: number;
}

/**
 * The operator's actions on the state directory as a whole (the store implements them; the admin
 * adapter calls them): verify the audit chain, copy the state, rotate the master key.
 */
export interface StateOperationsPort {
  verifyAudit(): Promise<AuditVerification>;
  backup(path: string, compact: boolean): Promise<BackupResult>;
  rotateMasterKey(newKeyFile: string): { dataKeys: number; keyFileReplaced: string };
}

/**
 * Checks (parses and verifies) a program on a thread of its own, within
 * `PROGRAM_CHECK_SECONDS_MAX` and `PROGRAM_CHECK_HEAP_MB`: a large program never holds up the
 * main thread, which answers every tenant.
 * @throws LIMIT_EXCEEDED when the check runs past either budget
 */
export interface ProgramCheckPort {
  check(req: ProgramCheckRequest): Promise<ProgramCheckResult>;
}
