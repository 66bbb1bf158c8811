/**
 * The store's schema: its named databases, which of them are tenant data (sealed) and which are
 * loaded whole at start, the schema version, and the migration from the version before.
 * Layer: store.
 */
import assert from 'node:assert';
import type { Database, RootDatabase } from 'lmdb';
import type { ChannelRecord } from '../kernel/channels.js';
import type { JobRecord } from '../kernel/job-model.js';
import type { Credential, Qubit, Session, Tenant } from '../kernel/model.js';
import type { ClusterRef, DbName, LoadedState, OplogEntry } from '../kernel/ports.js';
import type { SealedSigningKey } from '../security/keyring.js';
import type { RecordKey } from '../security/record-codec.js';

/** 2: every record authenticated or sealed. 1: plain msgpack (migrated at open). */
export const SCHEMA_VERSION = 2;
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
  // The audit log's Merkle tree (its complete subtrees) and its index by tenant.
  'audit_tree',
  'audit_index',
  'jobs',
  'job_results',
  'channels',
];
assert(DB_NAMES.length <= 16);

/**
 * The databases `load` reads whole (the op log too: a checkpoint deletes the entries it covers),
 * opening and so authenticating every record.
 */
export const LOADED_DBS: readonly DbName[] = [
  'tenants',
  'credentials',
  'sessions',
  'qubits',
  'signing_keys',
  'clusters',
  'oplog',
  'jobs',
  'channels',
];

/** Databases whose records are tenant data, sealed with their owner's key. */
export const SEALED_DBS: ReadonlySet<DbName> = new Set([
  'jobs',
  'job_results',
  'oplog',
  'clusters',
]);

/**
 * Schema 1 stored plain msgpack. Every record is read through msgpack handles and rewritten
 * protected, in one transaction: tenant data sealed for its tenant where the record names it
 * (jobs and their results), else for the kernel.
 */
export function migrateFromV1(
  root: RootDatabase,
  dbs: Record<DbName, Database>,
  ensure: (owner: string) => void,
  encode: (db: DbName, key: RecordKey, value: unknown, owner: string | undefined) => Buffer,
): void {
  const old = Object.fromEntries(
    DB_NAMES.map((name) => [
      name,
      root.openDB({ name, keyEncoding: 'ordered-binary', encoding: 'msgpack' }),
    ]),
  ) as Record<DbName, Database>;
  const rows: { db: DbName; key: RecordKey; value: unknown }[] = [];
  for (const db of DB_NAMES) {
    for (const { key, value } of old[db].getRange()) {
      if (typeof key === 'string' || typeof key === 'number') rows.push({ db, key, value });
    }
  }
  const jobTenant = new Map(
    rows.filter((r) => r.db === 'jobs').map((r) => [r.key, (r.value as JobRecord).tenantId]),
  );
  for (const owner of new Set(jobTenant.values())) ensure(owner);
  root.transactionSync(() => {
    for (const db of DB_NAMES) for (const key of old[db].getKeys()) old[db].remove(key);
    for (const { db, key, value } of rows) {
      const owner = db === 'jobs' || db === 'job_results' ? jobTenant.get(key) : undefined;
      if (db === 'meta' && key === 'schema_version') continue;
      dbs[db].put(key, encode(db, key, value, owner));
    }
    dbs.meta.put('schema_version', encode('meta', 'schema_version', SCHEMA_VERSION, undefined));
  });
}

export interface StoreLoad extends LoadedState {
  signingKeys: SealedSigningKey[];
}

/**
 * The state a daemon starts from: every record of the loaded databases, cluster snapshots as
 * state vectors, and the op log after the checkpoint. `entries` opens (and so authenticates) each.
 */
export function loadState(
  entries: (db: DbName, start?: RecordKey) => Iterable<{ key: RecordKey; value: unknown }>,
  checkpointSeq: number,
  nextClusterId: number,
): StoreLoad {
  const all = <T>(db: DbName): T[] => [...entries(db)].map((e) => e.value as T);
  const clusters: { cluster: ClusterRef; state: Float64Array }[] = [];
  for (const { key, value } of entries('clusters')) {
    const v = value as { qubits: string[]; state: Uint8Array };
    const copy = new Float64Array(v.state.byteLength / 8);
    new Uint8Array(copy.buffer).set(v.state);
    clusters.push({ cluster: { id: key as number, qubits: v.qubits }, state: copy });
  }
  const oplog: { seq: number; entry: OplogEntry }[] = [];
  for (const { key, value } of entries('oplog', checkpointSeq + 1)) {
    oplog.push({ seq: key as number, entry: value as OplogEntry });
  }
  return {
    tenants: all<Tenant>('tenants'),
    credentials: all<Credential>('credentials'),
    sessions: all<Session>('sessions'),
    qubits: all<Qubit>('qubits'),
    signingKeys: all<SealedSigningKey>('signing_keys'),
    checkpoint: { seq: checkpointSeq, clusters },
    oplog,
    nextClusterId,
    jobs: all<JobRecord>('jobs'),
    channels: all<ChannelRecord>('channels'),
  };
}
