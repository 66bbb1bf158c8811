/**
 * The durable store: one LMDB environment with named databases (docs/operations.md). Layer: store;
 * implements `StorePort`. Invariants:
 * - a mutation, its op-log entries and its audit records commit in one transaction, and `commit`
 *   resolves only once that transaction is flushed to disk (`noSync` is never used);
 * - enqueue order is commit order, so audit sequence numbers and the op log follow call order;
 * - group commit: every commit enqueued in the same turn shares one LMDB transaction and one sync
 *   (lmdb-js batches asynchronous transactions), which is what makes durability cheap under load.
 * - every record is authenticated or sealed (security/record-codec.ts): values are stored as bytes
 *   bound to their database and key, and a record that does not open is refused by name;
 * - tenant data (jobs with their programs, results, op-log entries, snapshots) is sealed with its
 *   owner's data key (security/data-keys.ts), whose destruction shreds it.
 * The schema version is recorded; a newer one is refused with a clear error, schema 1 (plain
 * msgpack, before records were protected) is rewritten in the protected form once, at open.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { type Database, type RootDatabase, open } from 'lmdb';
import { KernelError } from '../kernel/errors.js';
import type {
  AuditEvent,
  ClusterRef,
  DbName,
  OplogEntry,
  StorePort,
  StoreRecord,
} from '../kernel/ports.js';
import { AUDIT_GENESIS_HASH, type AuditRecord, linkAuditRecord } from '../security/audit-chain.js';
import type { DataKeys } from '../security/data-keys.js';
import { RecordCodec, RecordError, type RecordKey } from '../security/record-codec.js';
import { crashNow, fires } from '../util/failpoints.js';
import { actsFor, currentRequest } from '../util/request-context.js';
import { AuditTree, type TreeStore } from './audit-tree.js';
import {
  type ChainVerification,
  openedOrNull,
  verifyChainInSlices,
  walkChain,
} from './audit-walk.js';
import { StoreError, batchFaults, storageFailure, transactDurably } from './failures.js';
import {
  DB_NAMES,
  LOADED_DBS,
  SCHEMA_VERSION,
  SEALED_DBS,
  type StoreLoad,
  loadState,
  migrateFromV1,
} from './schema.js';

import { type AuditPoint, HeadFile, checkAgainstHead } from './head.js';

export { DB_NAMES, LOADED_DBS, SCHEMA_VERSION, StoreError, type StoreLoad, type AuditPoint };

/** The data file's name inside the store directory. */
export const DATA_FILE = 'qmk.lmdb';

/** Audit records re-hashed per slice of an on-demand verification, between yields to other work. */
const AUDIT_VERIFY_SLICE_RECORDS = 5_000;
/** 64 GiB of address space: LMDB maps it lazily; only written pages use disk. */
const MAP_SIZE_BYTES = 64 * 1024 ** 3;

export interface StoreOptions {
  clock: () => number;
  /** Below this many free bytes on the store's disk, `lowSpace` reports (0: never). */
  freeMinBytes: number;
  /** The directory's data keys: the MAC key and every owner's sealing key. */
  keys: DataKeys;
  /** Where the audit head is kept for rollback detection (none: not kept, e.g. a backup). */
  headFile?: string;
  /** false: records written without MAC or sealing, to measure their cost (benchmarks only). */
  protect?: boolean;
  /** false: the audit log's Merkle tree is not kept, to measure its cost (benchmarks only). */
  auditTree?: boolean;
  /** Told of each batch written: seconds to write and sync it, and how many commits it held. */
  onBatch?: (seconds: number, commits: number) => void;
}

const GENESIS_POINT: AuditPoint = { seq: 0, hash: AUDIT_GENESIS_HASH };

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
  /** The audit log's Merkle tree: its durable size is the head's (set at open). */
  auditLog!: AuditTree;
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

  private readonly codec: RecordCodec;

  private constructor(
    private readonly root: RootDatabase,
    private readonly dir: string,
    private readonly options: StoreOptions,
  ) {
    const dbs = {} as Record<DbName, Database>;
    for (const name of DB_NAMES) {
      dbs[name] = root.openDB({ name, keyEncoding: 'ordered-binary', encoding: 'binary' });
    }
    this.dbs = dbs;
    this.codec = new RecordCodec(
      options.keys.macKey,
      (owner) => options.keys.keyFor(owner),
      options.protect ?? true,
    );
  }

  private head: HeadFile | null = null;

  /** Refuses a data file older than the head recorded beside it, or with another history. */
  private checkHead(path: string): void {
    const head = new HeadFile(path, this.options.keys.headKey, this.storeId, this.options.clock);
    checkAgainstHead(head, path, join(this.dir, DATA_FILE), {
      storeId: this.storeId,
      auditSeq: this.auditSeq,
      hashAt: (seq) => (this.get('audit', seq) as AuditRecord | undefined)?.hash,
    });
    this.head = head;
    head.schedule({ seq: this.auditSeq, hash: this.auditHash });
  }

  /** A record, opened; undefined when absent. @throws StoreError naming a record that does not open */
  private get(db: DbName, key: RecordKey): unknown {
    const bytes = this.dbs[db].get(key) as Uint8Array | undefined;
    return bytes === undefined ? undefined : this.open(db, key, bytes);
  }

  private open(db: DbName, key: RecordKey, bytes: Uint8Array): unknown {
    try {
      return this.codec.decode(db, key, bytes);
    } catch (err) {
      if (err instanceof RecordError) throw this.recordError(err);
      throw err;
    }
  }

  private recordError(err: RecordError): StoreError {
    return new StoreError(
      `state file damaged: ${join(this.dir, DATA_FILE)}: record ${err.message}`,
    );
  }

  /** Every record of `db` in key order (from `start`), opened; shredded ones are skipped. */
  private *entries(db: DbName, start?: RecordKey): Generator<{ key: RecordKey; value: unknown }> {
    for (const { key, value } of this.dbs[db].getRange(start === undefined ? {} : { start })) {
      try {
        yield {
          key: key as RecordKey,
          value: this.codec.decode(db, key as RecordKey, value as Uint8Array),
        };
      } catch (err) {
        if (err instanceof RecordError && err.reason === 'shredded') continue;
        if (err instanceof RecordError) throw this.recordError(err);
        throw err;
      }
    }
  }

  /** Encodes a record for writing: sealed for `owner` in the tenant-data databases. */
  private encode(db: DbName, key: RecordKey, value: unknown, owner: string | undefined): Buffer {
    if (SEALED_DBS.has(db)) return this.codec.encode(db, key, value, owner ?? '');
    return this.codec.encode(db, key, value);
  }

  /**
   * Opens every record of every database (but those in `skip`): an edit anywhere is found at
   * start, not on use. At start `skip` is LOADED_DBS, which `load` has just opened whole, so no
   * snapshot is decrypted twice.
   */
  verifyRecords(skip: readonly DbName[] = []): number {
    let n = 0;
    for (const db of DB_NAMES) {
      if (skip.includes(db)) continue;
      for (const _ of this.entries(db)) n++;
    }
    return n;
  }

  /**
   * Opens (creating if needed) the environment in `dir`, checks the schema version and verifies
   * the tail of the audit chain.
   * @throws StoreError on a newer schema or a broken audit chain.
   */
  static open(dir: string, options: Partial<StoreOptions> & { keys: DataKeys }): LmdbStore {
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
    try {
      store.init();
    } catch (err) {
      root.close();
      throw err;
    }
    return store;
  }

  private init(): void {
    const raw = this.dbs.meta.get('schema_version') as Uint8Array | undefined;
    if (raw === undefined) {
      this.putSync('meta', 'schema_version', SCHEMA_VERSION);
    } else if (raw.length === 1) {
      // Schema 1 stored the bare msgpack integer 1 (one byte); every protected record is longer.
      // Schema 1 stored plain msgpack: every record is rewritten protected (`schema.ts`).
      migrateFromV1(
        this.root,
        this.dbs,
        (o) => this.options.keys.ensure(o),
        this.encode.bind(this),
      );
    } else {
      const version = this.get('meta', 'schema_version') as number;
      if (version > SCHEMA_VERSION) {
        throw new StoreError(
          `state store schema version ${version} is newer than this qmkd understands ` +
            `(${SCHEMA_VERSION}); upgrade qmkd or restore a backup`,
        );
      }
    }
    // The store's identity: the directory's marker names it, so a data file from elsewhere is
    // refused at start (integrity.ts).
    if (this.get('meta', 'store_id') === undefined) {
      this.putSync('meta', 'store_id', randomBytes(16).toString('hex'));
    }
    this.checkpointSeq = (this.get('meta', 'checkpoint_seq') as number | undefined) ?? 0;
    for (const { key, value } of this.dbs.audit.getRange({ reverse: true, limit: 1 })) {
      this.auditSeq = key as number;
      this.auditHash = (this.open('audit', key as number, value as Uint8Array) as AuditRecord).hash;
    }
    for (const { key } of this.dbs.oplog.getRange({ reverse: true, limit: 1 })) {
      this.oplogSeq = key as number;
    }
    this.oplogSinceCheckpoint = this.dbs.oplog.getKeysCount();
    // The chain is re-hashed from the last verified point (an authenticated record: it cannot be
    // moved without the key); records before it are still checked by their MACs on every read.
    const verified =
      (this.get('meta', 'audit_verified') as AuditPoint | undefined) ?? GENESIS_POINT;
    if (verified.seq > this.auditSeq) {
      throw new StoreError(
        `audit chain broken: the log ends at seq ${this.auditSeq}, before the verified point ${verified.seq}`,
      );
    }
    const broken = this.verifyAuditRange(verified);
    if (broken) throw new StoreError(`audit chain broken at seq ${broken.seq}: ${broken.reason}`);
    if (this.auditSeq > verified.seq) {
      this.putSync('meta', 'audit_verified', { seq: this.auditSeq, hash: this.auditHash });
    }
    this.auditLog = new AuditTree(this.treeStore(), this.auditSeq, this.options.auditTree ?? true);
    if (this.options.headFile !== undefined) this.checkHead(this.options.headFile);
  }

  /** Re-hashes the chain after `from` (whose hash the next record must link to) to the head. */
  private verifyAuditRange(from: AuditPoint): { seq: number; reason: string } | null {
    const walked = walkChain(this.entries('audit', from.seq + 1), from, this.auditSeq);
    if (walked.broken) return walked.broken;
    if (walked.last.seq !== this.auditSeq)
      return { seq: walked.last.seq + 1, reason: 'record missing' };
    return null;
  }

  /** What the audit tree reads and writes of this store. */
  private treeStore(): TreeStore {
    return {
      root: this.root,
      tree: this.dbs.audit_tree,
      index: this.dbs.audit_index,
      get: (db, key) => this.get(db, key),
      encode: (db, key, value) => this.encode(db, key, value, undefined),
      records: (from) => this.auditRecords(from),
      damaged: (detail) =>
        new StoreError(`state file damaged: ${join(this.dir, DATA_FILE)}: ${detail}`),
    };
  }

  /** Re-hashes the whole chain from genesis (operators' `qmkctl audit verify`, tests). */
  verifyAudit(): { seq: number; reason: string } | null {
    return this.verifyAuditRange(GENESIS_POINT);
  }

  /**
   * The whole chain re-hashed, then the Merkle tree rebuilt from the records and compared node by
   * node with the stored one, in slices that yield between them, so a long log does not stall
   * the daemon. A record that does not open (edited outside the daemon) breaks the chain there.
   * Resolves with the head verified, or the first broken record.
   */
  async verifyAuditAsync(): Promise<ChainVerification> {
    const head = { seq: this.auditSeq, hash: this.auditHash };
    const chain = await verifyChainInSlices(
      (from) =>
        openedOrNull(this.dbs.audit.getRange({ start: from }), (key, bytes) =>
          this.codec.decode('audit', key as number, bytes),
        ),
      GENESIS_POINT,
      head,
      AUDIT_VERIFY_SLICE_RECORDS,
    );
    if (chain.broken) return chain;
    const broken = await this.auditLog.verify(head.seq, AUDIT_VERIFY_SLICE_RECORDS);
    return broken ? { ...chain, broken } : chain;
  }

  /** Bytes free to unprivileged writers on the filesystem that holds the store. */
  freeBytes(): number {
    const s = statfsSync(this.dir);
    return s.bavail * s.bsize;
  }

  /** LMDB's copy of one read snapshot into `file` (compacted: free pages left out). */
  async backup(file: string, compact: boolean): Promise<void> {
    await this.root.backup(file, compact);
  }

  shred(owner: string): boolean {
    return this.options.keys.shred(owner);
  }

  lowSpace(): { freeBytes: number; minBytes: number } | null {
    const minBytes = this.options.freeMinBytes;
    if (minBytes === 0) return null;
    const freeBytes = this.freeBytes();
    return freeBytes < minBytes ? { freeBytes, minBytes } : null;
  }

  read(db: DbName, key: string | number): unknown {
    return this.get(db, key);
  }

  /** Writes one record outside a batch (open-time bookkeeping); durable with the next sync. */
  private putSync(db: DbName, key: RecordKey, value: unknown): void {
    this.dbs[db].putSync(key, this.encode(db, key, value, undefined));
  }

  get storeId(): string {
    return String(this.get('meta', 'store_id'));
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
  commit(records: StoreRecord[], events: AuditEvent[], oplog: OplogEntry[] = []): Promise<void> {
    // The caller's own acts carry its request id (the kernel's acts it merely woke do not).
    const scope = currentRequest();
    const audit =
      scope === undefined
        ? events
        : events.map((e) =>
            e.request === undefined && actsFor(scope, e.actor)
              ? { ...e, request: scope.requestId }
              : e,
          );
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
    const tree = this.auditLog.draft();
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
      // New owners get their data key on disk before anything sealed with it can commit; data
      // of a shredded owner (a deleted tenant's job finishing late) is not written at all.
      const keys = this.options.keys;
      const writable = (owner: string | undefined) => {
        if (owner === undefined) return true;
        if (keys.isShredded(owner)) return false;
        keys.ensure(owner);
        return true;
      };
      const encoded = linked.map(({ records, audit, ops }) => ({
        records: records
          .filter((r) => r.op === 'del' || writable(r.owner))
          .map((r) =>
            r.op === 'put'
              ? { ...r, bytes: this.encode(r.db, r.key, r.value, r.owner) }
              : { ...r, bytes: null },
          ),
        audit: audit.map((r) => ({
          seq: r.seq,
          bytes: this.encode('audit', r.seq, r, undefined),
        })),
        ops: ops
          .filter((o) => writable(o.e.owner))
          .map((o) => ({ seq: o.seq, bytes: this.encode('oplog', o.seq, o.e, o.e.owner) })),
      }));
      const auditRecords = linked.flatMap((c) => c.audit);
      const treeWrites = this.auditLog.writes(auditRecords, tree);
      const fault = batchFaults(linked);
      if (fault.beforeCommit) crashNow('store.before-commit');
      const t0 = performance.now();
      await this.transact((w) => {
        for (const { records, audit, ops } of encoded) {
          for (const r of records) {
            w(r.bytes !== null ? this.dbs[r.db].put(r.key, r.bytes) : this.dbs[r.db].remove(r.key));
          }
          for (const r of audit) w(this.dbs.audit.put(r.seq, r.bytes));
          if (fault.auditAppend) crashNow('store.audit-append');
          for (const o of ops) w(this.dbs.oplog.put(o.seq, o.bytes));
          if (fault.oplogAppend) crashNow('store.oplog-append');
        }
        for (const t of treeWrites) w(this.dbs[t.db].put(t.key, t.bytes));
      }, fault.commitError);
      this.options.onBatch?.((performance.now() - t0) / 1000, batch.length);
      if (fault.afterCommit) crashNow('store.after-commit');
    } catch (err) {
      if (oplogSeq !== this.oplogSeq) this.oplogLost = true;
      throw this.storageError(err);
    }
    this.oplogSinceCheckpoint += oplogSeq - this.oplogSeq;
    this.auditSeq = auditSeq;
    this.auditHash = auditHash;
    this.auditLog.advance(tree);
    this.oplogSeq = oplogSeq;
    this.head?.schedule({ seq: auditSeq, hash: auditHash });
  }

  /** One write transaction, synced before it resolves (`failures.ts`). */
  private transact(
    fn: (write: (result: unknown) => void) => void,
    injected: Error | null = null,
  ): Promise<void> {
    return transactDurably(this.root, fn, injected);
  }

  /** A failed write as the kernel's error (`failures.ts`). */
  private storageError(err: unknown): KernelError {
    return storageFailure(err, this.dir, join(this.dir, DATA_FILE), () => this.freeBytes());
  }

  /**
   * Replaces the checkpoint with `clusters` (the state after every op-log entry so far) and drops
   * the entries it covers, in one transaction. The caller guarantees no plan is in flight; the
   * checkpoint is queued behind every commit already enqueued, whose entries it covers.
   */
  checkpoint(
    clusters: { cluster: ClusterRef; state: Float64Array; owner?: string }[],
    nextClusterId: number,
  ): Promise<void> {
    this.openBatch = null; // later commits form a batch behind the checkpoint
    const done = this.tail.then(() => this.writeCheckpoint(clusters, nextClusterId));
    this.tail = done.catch(() => {});
    return done;
  }

  private async writeCheckpoint(
    clusters: { cluster: ClusterRef; state: Float64Array; owner?: string }[],
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
      {
        actor: 'kernel',
        action: 'Checkpoint',
        target: String(seq),
        outcome: 'ok',
        detail: { clusters: clusters.length },
      },
      this.auditSeq + 1,
      this.options.clock(),
      this.auditHash,
    );
    const tree = this.auditLog.draft();
    try {
      const treeWrites = this.auditLog.writes([audit], tree);
      for (const c of clusters) if (c.owner !== undefined) this.options.keys.ensure(c.owner);
      const snapshots = clusters.map(({ cluster, state, owner }) => {
        const bytes = Buffer.from(state.buffer, state.byteOffset, state.byteLength);
        return {
          id: cluster.id,
          bytes: this.encode(
            'clusters',
            cluster.id,
            { qubits: cluster.qubits, state: bytes },
            owner,
          ),
        };
      });
      await this.transact((w) => {
        for (const key of this.dbs.clusters.getKeys()) w(this.dbs.clusters.remove(key));
        for (const { id, bytes } of snapshots) w(this.dbs.clusters.put(id, bytes));
        if (fires('store.checkpoint')) crashNow('store.checkpoint');
        for (const key of this.dbs.oplog.getKeys({ end: seq + 1 })) w(this.dbs.oplog.remove(key));
        w(
          this.dbs.meta.put(
            'checkpoint_seq',
            this.encode('meta', 'checkpoint_seq', seq, undefined),
          ),
        );
        w(
          this.dbs.meta.put(
            'next_cluster_id',
            this.encode('meta', 'next_cluster_id', nextClusterId, undefined),
          ),
        );
        w(this.dbs.audit.put(audit.seq, this.encode('audit', audit.seq, audit, undefined)));
        for (const t of treeWrites) w(this.dbs[t.db].put(t.key, t.bytes));
      });
    } catch (err) {
      throw this.storageError(err);
    }
    this.auditSeq = audit.seq;
    this.auditHash = audit.hash;
    this.auditLog.advance(tree);
    this.oplogSinceCheckpoint = 0;
    this.checkpointSeq = seq;
    this.head?.schedule({ seq: audit.seq, hash: audit.hash });
  }

  load(): StoreLoad {
    const nextClusterId = (this.get('meta', 'next_cluster_id') as number | undefined) ?? 1;
    return loadState((db, start) => this.entries(db, start), this.checkpointSeq, nextClusterId);
  }

  /** All audit records in order (operators' verification and tests). */
  *auditRecords(start = 1): Generator<AuditRecord> {
    for (const { value } of this.entries('audit', start)) yield value as AuditRecord;
  }

  async close(): Promise<void> {
    await this.tail;
    await this.root.flushed;
    await this.head?.flush();
    await this.root.close();
  }
}
