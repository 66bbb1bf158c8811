/**
 * The durable store: one LMDB environment with named databases (DESIGN.md §5). Layer: store;
 * implements `StorePort`. Invariants:
 * - a mutation, its op-log entries and its audit records commit in one transaction, and `commit`
 *   resolves only once that transaction is flushed to disk (`noSync` is never used);
 * - enqueue order is commit order, so audit sequence numbers and the op log follow call order;
 * - group commit: every commit enqueued in the same turn shares one LMDB transaction and one sync
 *   (lmdb-js batches asynchronous transactions), which is what makes durability cheap under load.
 * The schema version is recorded; a newer one is refused with a clear error.
 */
import assert from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdirSync, statfsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { type Database, open, type RootDatabase } from 'lmdb';
import type { ChannelRecord } from '../kernel/channels.js';
import { KernelError } from '../kernel/errors.js';
import type { JobRecord } from '../kernel/jobs.js';
import type { Credential, Qubit, Session, Tenant } from '../kernel/model.js';
import type {
  AuditEvent,
  ClusterRef,
  DbName,
  LoadedState,
  OplogEntry,
  StorePort,
  StoreRecord,
} from '../kernel/ports.js';
import {
  AUDIT_GENESIS_HASH,
  type AuditRecord,
  linkAuditRecord,
  verifyAuditRun,
} from '../security/audit-chain.js';
import type { SealedSigningKey } from '../security/keyring.js';

export const SCHEMA_VERSION = 1;
export const DB_NAMES: readonly DbName[] = [
  'meta',
  'tenants',
  'credentials',
  'sessions',
  'qubits',
  'signing_keys',
  'oplog',
  'clusters',
  'audit',
  'jobs',
  'job_results',
  'channels',
];
/** How many of the newest audit records are re-hashed at start. */
export const AUDIT_VERIFY_TAIL_RECORDS = 10_000;
/** 64 GiB of address space: LMDB maps it lazily; only written pages use disk. */
const MAP_SIZE_BYTES = 64 * 1024 ** 3;
/** The data file's name inside the store directory. */
export const DATA_FILE = 'qmk.lmdb';
/** ENOSPC as lmdb-js reports it (a number): the disk is full. */
const ENOSPC = osConstants.errno.ENOSPC;
/** LMDB's MDB_MAP_FULL: the environment reached its map size. */
const MDB_MAP_FULL = -30792;
/**
 * A failed write counts as "disk full" when less than this is free afterwards: LMDB grows its
 * file by whole pages and batches, and on Linux a full disk reaches lmdb-js as EIO, not ENOSPC.
 */
export const STORAGE_FULL_SLACK_BYTES = 4 * 1024 ** 2;

export class StoreError extends Error {}

export interface StoreOptions {
  clock: () => number;
  /** Below this many free bytes on the store's disk, `lowSpace` reports (0: never). */
  freeMinBytes: number;
}

export interface StoreLoad extends LoadedState {
  signingKeys: SealedSigningKey[];
}

/** One caller's commit, waiting for its batch. Sequence numbers are assigned when the batch is written. */
interface PendingCommit {
  records: StoreRecord[];
  audit: AuditEvent[];
  oplog: OplogEntry[];
}

export class LmdbStore implements StorePort {
  private readonly dbs: Record<DbName, Database>;
  /** The durable head: these advance only after a transaction is on disk. */
  private auditSeq = 0;
  private auditHash = AUDIT_GENESIS_HASH;
  private oplogSeq = 0;
  private checkpointSeq = 0;
  private oplogSinceCheckpoint = 0;
  /** The last write queued (never rejects): batches and checkpoints are written one at a time. */
  private tail: Promise<void> = Promise.resolve();
  /** The batch still accepting commits, if any; it closes when its write starts. */
  private openBatch: { commits: PendingCommit[]; done: Promise<void> } | null = null;
  /**
   * Set when a batch carrying op-log entries failed: the simulator's memory is then ahead of the
   * log, so no checkpoint may persist it (the kernel restarts from the durable state instead).
   */
  private oplogLost = false;

  private constructor(
    private readonly root: RootDatabase,
    private readonly dir: string,
    private readonly options: StoreOptions,
  ) {
    const dbs = {} as Record<DbName, Database>;
    for (const name of DB_NAMES) {
      dbs[name] = root.openDB({ name, keyEncoding: 'ordered-binary', encoding: 'msgpack' });
    }
    this.dbs = dbs;
  }

  /**
   * Opens (creating if needed) the environment in `dir`, checks the schema version and verifies
   * the tail of the audit chain.
   * @throws StoreError on a newer schema or a broken audit chain.
   */
  static open(dir: string, options: Partial<StoreOptions> = {}): LmdbStore {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // overlappingSync off: a commit is synced (data pages, then the meta page) before its promise
    // and `flushed` resolve, LMDB's classic durability, with nothing left to a later sync.
    const root = open({
      path: join(dir, DATA_FILE),
      maxDbs: 16,
      mapSize: MAP_SIZE_BYTES,
      overlappingSync: false,
      // The store batches commits itself (one transaction per batch). lmdb-js's own per-turn
      // batch would add a commit promise nobody observes, an unhandled rejection on failure.
      eventTurnBatching: false,
    });
    const store = new LmdbStore(root, dir, { clock: Date.now, freeMinBytes: 0, ...options });
    store.init();
    return store;
  }

  private init(): void {
    const meta = this.dbs.meta;
    const version = meta.get('schema_version') as number | undefined;
    if (version === undefined) {
      meta.putSync('schema_version', SCHEMA_VERSION);
    } else if (version > SCHEMA_VERSION) {
      throw new StoreError(
        `state store schema version ${version} is newer than this qmkd understands ` +
          `(${SCHEMA_VERSION}); upgrade qmkd or restore a backup`,
      );
    }
    // The store's identity: the directory's marker names it, so a data file from elsewhere is
    // refused at start (integrity.ts).
    if (meta.get('store_id') === undefined) meta.putSync('store_id', randomBytes(16).toString('hex'));
    this.checkpointSeq = (meta.get('checkpoint_seq') as number | undefined) ?? 0;
    for (const { key, value } of this.dbs.audit.getRange({ reverse: true, limit: 1 })) {
      this.auditSeq = key as number;
      this.auditHash = (value as AuditRecord).hash;
    }
    for (const { key } of this.dbs.oplog.getRange({ reverse: true, limit: 1 })) {
      this.oplogSeq = key as number;
    }
    this.oplogSinceCheckpoint = this.dbs.oplog.getKeysCount();
    const broken = this.verifyAudit(AUDIT_VERIFY_TAIL_RECORDS);
    if (broken) {
      throw new StoreError(`audit chain broken at seq ${broken.seq}: ${broken.reason}`);
    }
  }

  /** Re-hashes the newest `tail` audit records (all when tail is Infinity). */
  verifyAudit(tail: number): { seq: number; reason: string } | null {
    const from = Math.max(1, this.auditSeq - tail + 1);
    const records: AuditRecord[] = [];
    for (const { value } of this.dbs.audit.getRange({ start: from })) {
      records.push(value as AuditRecord);
    }
    if (records.length === 0) return null;
    const first = records[0]!;
    if (first.seq !== from) return { seq: from, reason: 'record missing' };
    return verifyAuditRun(records, from === 1 ? AUDIT_GENESIS_HASH : null);
  }

  /** Bytes free to unprivileged writers on the filesystem that holds the store. */
  freeBytes(): number {
    const s = statfsSync(this.dir);
    return s.bavail * s.bsize;
  }

  lowSpace(): { freeBytes: number; minBytes: number } | null {
    const minBytes = this.options.freeMinBytes;
    if (minBytes === 0) return null;
    const freeBytes = this.freeBytes();
    return freeBytes < minBytes ? { freeBytes, minBytes } : null;
  }

  read(db: DbName, key: string | number): unknown {
    return this.dbs[db].get(key);
  }

  get storeId(): string {
    return String(this.dbs.meta.get('store_id'));
  }

  auditHead(): { seq: number; hash: string } {
    return { seq: this.auditSeq, hash: this.auditHash };
  }

  get oplogEntriesSinceCheckpoint(): number {
    return this.oplogSinceCheckpoint;
  }

  /**
   * Queues a commit into the open batch (group commit) and resolves once its batch is durable.
   * Rejects with STORAGE_FULL or STORAGE_FAILED when the batch could not be written; then nothing
   * of it is on disk and the durable head (audit sequence and hash, op-log sequence) is unchanged.
   */
  commit(records: StoreRecord[], audit: AuditEvent[], oplog: OplogEntry[] = []): Promise<void> {
    if (!this.openBatch) {
      const commits: PendingCommit[] = [];
      const done = this.tail.then(() => {
        if (this.openBatch?.commits === commits) this.openBatch = null;
        return this.writeBatch(commits);
      });
      this.openBatch = { commits, done };
      this.tail = done.catch(() => {});
    }
    this.openBatch.commits.push({ records, audit, oplog });
    return this.openBatch.done;
  }

  /**
   * Group commit: one batch is written and synced at a time; every commit enqueued meanwhile joins
   * the next batch, which becomes one LMDB transaction with one sync. Under load a sync serves as
   * many calls as arrived during the previous one. Order inside a batch is enqueue order. Audit
   * and op-log sequence numbers are assigned here, from the durable head, and the head moves only
   * once the transaction is on disk: a failed batch leaves no gap in either sequence.
   */
  private async writeBatch(batch: PendingCommit[]): Promise<void> {
    const now = this.options.clock();
    let auditSeq = this.auditSeq;
    let auditHash = this.auditHash;
    let oplogSeq = this.oplogSeq;
    const linked = batch.map(({ records, audit, oplog }) => ({
      records,
      audit: audit.map((e) => {
        const r = linkAuditRecord(e, ++auditSeq, now, auditHash);
        auditHash = r.hash;
        return r;
      }),
      ops: oplog.map((e) => ({ seq: ++oplogSeq, e })),
    }));
    try {
      await this.transact((w) => {
        for (const { records, audit, ops } of linked) {
          for (const r of records) {
            w(r.op === 'put' ? this.dbs[r.db].put(r.key, r.value) : this.dbs[r.db].remove(r.key));
          }
          for (const r of audit) w(this.dbs.audit.put(r.seq, r));
          for (const o of ops) w(this.dbs.oplog.put(o.seq, o.e));
        }
      });
    } catch (err) {
      if (oplogSeq !== this.oplogSeq) this.oplogLost = true;
      throw this.storageError(err);
    }
    this.oplogSinceCheckpoint += oplogSeq - this.oplogSeq;
    this.auditSeq = auditSeq;
    this.auditHash = auditHash;
    this.oplogSeq = oplogSeq;
  }

  /**
   * One write transaction, synced before it resolves. lmdb-js reports a failed commit as an error
   * whose `commitError` promise holds the cause (ENOSPC and EIO both arrive as LMDB's EIO); the
   * cause is awaited here so that it is neither lost nor left as an unhandled rejection.
   */
  private async transact(fn: (write: (result: unknown) => void) => void): Promise<void> {
    // Inside a transaction lmdb-js's put and remove return the transaction's commit promise; on a
    // failed commit it rejects, and unobserved that would be an unhandled rejection. The failure
    // is reported once, below, through the transaction's own promise.
    const seen = new Set<Promise<unknown>>();
    const write = (result: unknown) => {
      if (result instanceof Promise && !seen.has(result)) {
        seen.add(result);
        result.catch(() => {});
      }
    };
    try {
      await this.root.transaction(() => fn(write));
    } catch (err) {
      const pending = (err as { commitError?: Promise<unknown> }).commitError;
      if (pending) {
        await pending.then(
          () => {},
          (cause: unknown) => {
            throw cause;
          },
        );
      }
      throw err;
    }
    await this.root.flushed;
  }

  /** A failed write as the kernel's error: FULL when the disk (or LMDB's map) has no room, else FAILED. */
  private storageError(err: unknown): KernelError {
    const cause = err instanceof Error ? err : new Error(String(err));
    const code = (cause as { code?: unknown }).code;
    if (code === MDB_MAP_FULL) {
      return new KernelError(
        'STORAGE_FULL',
        `storage: the state store ${join(this.dir, DATA_FILE)} reached its map size; nothing was written`,
        'storage',
      );
    }
    let free: number | null = null;
    try {
      free = this.freeBytes();
    } catch {
      // the filesystem itself is failing: reported as a failed write below
    }
    if (code === 'ENOSPC' || code === ENOSPC || (free !== null && free < STORAGE_FULL_SLACK_BYTES)) {
      return new KernelError(
        'STORAGE_FULL',
        `storage: the disk holding ${this.dir} is full (${free ?? 0} bytes free); nothing was ` +
          'written; retry once space is freed',
        'storage',
      );
    }
    return new KernelError(
      'STORAGE_FAILED',
      `storage: writing ${join(this.dir, DATA_FILE)} failed (${cause.message}); nothing was written`,
      'storage',
    );
  }

  /**
   * Replaces the checkpoint with `clusters` (the state after every op-log entry so far) and drops
   * the entries it covers, in one transaction. The caller guarantees no plan is in flight; the
   * checkpoint is queued behind every commit already enqueued, whose entries it covers.
   */
  checkpoint(
    clusters: { cluster: ClusterRef; state: Float64Array }[],
    nextClusterId: number,
  ): Promise<void> {
    this.openBatch = null; // later commits form a batch behind the checkpoint
    const done = this.tail.then(() => this.writeCheckpoint(clusters, nextClusterId));
    this.tail = done.catch(() => {});
    return done;
  }

  private async writeCheckpoint(
    clusters: { cluster: ClusterRef; state: Float64Array }[],
    nextClusterId: number,
  ): Promise<void> {
    if (this.oplogLost) {
      throw new KernelError(
        'STORAGE_FAILED',
        'storage: an op-log write failed earlier; the state in memory is not the acknowledged ' +
          'state and is not checkpointed (restart to reload it)',
        'storage',
      );
    }
    const seq = this.oplogSeq;
    const audit = linkAuditRecord(
      { actor: 'kernel', action: 'Checkpoint', target: String(seq), outcome: 'ok', detail: { clusters: clusters.length } },
      this.auditSeq + 1,
      this.options.clock(),
      this.auditHash,
    );
    try {
      await this.transact((w) => {
        for (const key of this.dbs.clusters.getKeys()) w(this.dbs.clusters.remove(key));
        for (const { cluster, state } of clusters) {
          const bytes = Buffer.from(state.buffer, state.byteOffset, state.byteLength);
          w(this.dbs.clusters.put(cluster.id, { qubits: cluster.qubits, state: Buffer.from(bytes) }));
        }
        for (const key of this.dbs.oplog.getKeys({ end: seq + 1 })) w(this.dbs.oplog.remove(key));
        w(this.dbs.meta.put('checkpoint_seq', seq));
        w(this.dbs.meta.put('next_cluster_id', nextClusterId));
        w(this.dbs.audit.put(audit.seq, audit));
      });
    } catch (err) {
      throw this.storageError(err);
    }
    this.auditSeq = audit.seq;
    this.auditHash = audit.hash;
    this.oplogSinceCheckpoint = 0;
    this.checkpointSeq = seq;
  }

  load(): StoreLoad {
    const all = <T>(db: DbName): T[] => [...this.dbs[db].getRange()].map((e) => e.value as T);
    const clusters: { cluster: ClusterRef; state: Float64Array }[] = [];
    for (const { key, value } of this.dbs.clusters.getRange()) {
      const v = value as { qubits: string[]; state: Uint8Array };
      const copy = new Float64Array(v.state.byteLength / 8);
      new Uint8Array(copy.buffer).set(v.state);
      clusters.push({ cluster: { id: key as number, qubits: v.qubits }, state: copy });
    }
    const oplog: { seq: number; entry: OplogEntry }[] = [];
    for (const { key, value } of this.dbs.oplog.getRange({ start: this.checkpointSeq + 1 })) {
      oplog.push({ seq: key as number, entry: value as OplogEntry });
    }
    return {
      tenants: all<Tenant>('tenants'),
      credentials: all<Credential>('credentials'),
      sessions: all<Session>('sessions'),
      qubits: all<Qubit>('qubits'),
      signingKeys: all<SealedSigningKey>('signing_keys'),
      checkpoint: { seq: this.checkpointSeq, clusters },
      oplog,
      nextClusterId: (this.dbs.meta.get('next_cluster_id') as number | undefined) ?? 1,
      jobs: all<JobRecord>('jobs'),
      channels: all<ChannelRecord>('channels'),
    };
  }

  /** All audit records in order (operators' verification and tests). */
  *auditRecords(start = 1): Generator<AuditRecord> {
    for (const { value } of this.dbs.audit.getRange({ start })) yield value as AuditRecord;
  }

  /** Writes records outside the kernel's flow (first-start bootstrap); durable on return. */
  async putDurable(records: StoreRecord[], audit: AuditEvent[]): Promise<void> {
    await this.commit(records, audit);
  }

  async close(): Promise<void> {
    await this.tail;
    await this.root.flushed;
    await this.root.close();
  }
}

assert(DB_NAMES.length <= 16);
