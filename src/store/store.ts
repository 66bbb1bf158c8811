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
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Database, open, type RootDatabase } from 'lmdb';
import type { ChannelRecord } from '../kernel/channels.js';
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
const DB_NAMES: readonly DbName[] = [
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

export class StoreError extends Error {}

export interface StoreLoad extends LoadedState {
  signingKeys: SealedSigningKey[];
}

export class LmdbStore implements StorePort {
  private readonly dbs: Record<DbName, Database>;
  private auditSeq = 0;
  private auditHash = AUDIT_GENESIS_HASH;
  private oplogSeq = 0;
  private checkpointSeq = 0;
  private oplogSinceCheckpoint = 0;
  private pending: { records: StoreRecord[]; auditRecords: AuditRecord[]; ops: { seq: number; e: OplogEntry }[] }[] = [];
  /** The batch being written and synced; at most one at a time. */
  private writing: Promise<void> = Promise.resolve();
  /** The batch collecting commits while `writing` is in flight. */
  private nextBatch: Promise<void> | null = null;

  private constructor(
    private readonly root: RootDatabase,
    private readonly clock: () => number,
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
  static open(dir: string, clock: () => number = Date.now): LmdbStore {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const root = open({ path: join(dir, 'qmk.lmdb'), maxDbs: 16, mapSize: MAP_SIZE_BYTES });
    const store = new LmdbStore(root, clock);
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

  read(db: DbName, key: string | number): unknown {
    return this.dbs[db].get(key);
  }

  auditHead(): { seq: number; hash: string } {
    return { seq: this.auditSeq, hash: this.auditHash };
  }

  get oplogEntriesSinceCheckpoint(): number {
    return this.oplogSinceCheckpoint;
  }

  commit(records: StoreRecord[], audit: AuditEvent[], oplog: OplogEntry[] = []): Promise<void> {
    // Sequence numbers and hashes are assigned now, in call order, and batches are written in the
    // same order, so the chain on disk is the chain computed here.
    const now = this.clock();
    const auditRecords = audit.map((e) => {
      const r = linkAuditRecord(e, ++this.auditSeq, now, this.auditHash);
      this.auditHash = r.hash;
      return r;
    });
    const ops = oplog.map((e) => ({ seq: ++this.oplogSeq, e }));
    this.oplogSinceCheckpoint += ops.length;
    this.pending.push({ records, auditRecords, ops });
    if (!this.nextBatch) {
      this.nextBatch = this.writing.then(() => {
        this.nextBatch = null;
        const written = this.writeBatch();
        this.writing = written.catch(() => {});
        return written;
      });
    }
    return this.nextBatch;
  }

  /**
   * Group commit: one batch is written and synced at a time; every commit enqueued meanwhile joins
   * the next batch, which becomes one LMDB transaction with one sync. Under load a sync serves as
   * many calls as arrived during the previous one. Order inside a batch is enqueue order.
   */
  private async writeBatch(): Promise<void> {
    const batch = this.pending.splice(0);
    await this.root.transaction(() => {
      for (const { records, auditRecords, ops } of batch) {
        for (const r of records) {
          if (r.op === 'put') this.dbs[r.db].put(r.key, r.value);
          else this.dbs[r.db].remove(r.key);
        }
        for (const r of auditRecords) this.dbs.audit.put(r.seq, r);
        for (const o of ops) this.dbs.oplog.put(o.seq, o.e);
      }
    });
    await this.root.flushed;
  }

  /**
   * Replaces the checkpoint with `clusters` (the state after every op-log entry so far) and drops
   * the entries it covers, in one transaction. The caller guarantees no plan is in flight.
   */
  async checkpoint(clusters: { cluster: ClusterRef; state: Float64Array }[], nextClusterId: number) {
    const seq = this.oplogSeq;
    const audit = linkAuditRecord(
      { actor: 'kernel', action: 'Checkpoint', target: String(seq), outcome: 'ok', detail: { clusters: clusters.length } },
      ++this.auditSeq,
      this.clock(),
      this.auditHash,
    );
    this.auditHash = audit.hash;
    this.oplogSinceCheckpoint = 0;
    await this.root.transaction(() => {
      for (const key of this.dbs.clusters.getKeys()) this.dbs.clusters.remove(key);
      for (const { cluster, state } of clusters) {
        const bytes = Buffer.from(state.buffer, state.byteOffset, state.byteLength);
        this.dbs.clusters.put(cluster.id, { qubits: cluster.qubits, state: Buffer.from(bytes) });
      }
      for (const key of this.dbs.oplog.getKeys({ end: seq + 1 })) this.dbs.oplog.remove(key);
      this.dbs.meta.put('checkpoint_seq', seq);
      this.dbs.meta.put('next_cluster_id', nextClusterId);
      this.dbs.audit.put(audit.seq, audit);
    });
    await this.root.flushed;
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
    await this.root.flushed;
    await this.root.close();
  }
}

assert(DB_NAMES.length <= 16);
