/**
 * The audit log's Merkle tree and its index by tenant, as the store keeps them. Layer: store.
 *
 * - `audit_tree`: the hash of every complete subtree of `2^STORED_LEVEL_MIN` leaves or more,
 *   keyed `level · 2^40 + index` (so one level's nodes are one key range); written in the
 *   transaction of the record that completes it, so the tree always has exactly the committed
 *   records as leaves. Smaller subtrees (the leaves themselves included) are computed from their
 *   records when a proof or a root needs them: at most `2^STORED_LEVEL_MIN` records each. Why:
 *   storing every node cost each audit record two more authenticated writes in its commit (a
 *   leaf and, on average, one inner node), measured as 12 % of Bell job throughput; now it is
 *   about one write per eight records. (A directory from before keeps its lower nodes, unread.)
 * - `audit_index`: per commit batch, one key `<tenant> NUL <seq, 16 digits>` for each tenant its
 *   records concern, keyed by the tenant's first record of the batch, its value the tenant's
 *   records of the batch (their seqs; `1` for the key's record alone, as before batches were
 *   grouped). A tenant's view of the log is one key range, not a scan of everyone's records. Why
 *   per batch: one entry per record cost about 20 µs of CPU per audit record (its encoding, and
 *   LMDB placing it in the tenant's key range), most of the tree's cost; under load a batch holds
 *   tens of records of a handful of tenants.
 */
import type { Database, RootDatabase } from 'lmdb';
import type { AuditLeaf, AuditLogPort, AuditRecord } from '../kernel/ports.js';
import { auditLeafInput } from '../security/audit-chain.js';
import {
  MerkleFrontier,
  type NodeSource,
  consistencyProof,
  inclusionProof,
  leafHash,
  nodeHash,
  rangeHash,
} from '../security/merkle.js';
import type { RecordKey } from '../security/record-codec.js';

/** Leaves per level of the key space: 2^40 records, about a trillion. */
export const LEVEL_STRIDE = 2 ** 40;

/** The lowest level whose nodes are stored; below it nodes are computed from the records. */
export const STORED_LEVEL_MIN = 4;

export function nodeKey(level: number, index: number): number {
  return level * LEVEL_STRIDE + index;
}

const SEQ_DIGITS = 16;

export function indexKey(tenant: string, seq: number): string {
  return `${tenant}\u0000${String(seq).padStart(SEQ_DIGITS, '0')}`;
}

/** The key range of `tenant`'s index entries from `fromSeq` on (down from it when `down`). */
export function indexRange(
  tenant: string,
  fromSeq: number,
  down: boolean,
): { start: string; end: string; reverse: boolean } {
  return down
    ? { start: indexKey(tenant, fromSeq), end: `${tenant}\u0000`, reverse: true }
    : { start: indexKey(tenant, fromSeq), end: `${tenant}\u0001`, reverse: false };
}

export function seqOfIndexKey(key: string): number {
  return Number(key.slice(key.length - SEQ_DIGITS));
}

/** One write besides the record itself. */
export interface TreeWrite {
  db: 'audit_tree' | 'audit_index';
  key: RecordKey;
  value: unknown;
}

/** An index entry's value: the seqs it lists (`1`: the key's own seq alone). */
export type IndexValue = 1 | number[];

/** The seqs an index entry at `key` lists. */
export function indexSeqs(key: string, value: unknown): number[] {
  if (Array.isArray(value) && value.every((x) => Number.isSafeInteger(x))) return value;
  return [seqOfIndexKey(key)];
}

/**
 * The writes that add consecutive records `rs` (one commit batch) to the tree (`tree` advances)
 * and to their tenants' index: one index entry per tenant.
 */
export function auditTreeWrites(rs: readonly AuditRecord[], tree: MerkleFrontier): TreeWrite[] {
  const writes: TreeWrite[] = [];
  const byTenant = new Map<string, number[]>();
  for (const r of rs) {
    for (const n of tree.append(leafHash(auditLeafInput(r)))) {
      if (n.level >= STORED_LEVEL_MIN)
        writes.push({ db: 'audit_tree', key: nodeKey(n.level, n.index), value: n.hash });
    }
    for (const t of r.tenants ?? []) {
      const seqs = byTenant.get(t);
      if (seqs === undefined) byTenant.set(t, [r.seq]);
      else if (seqs[seqs.length - 1] !== r.seq) seqs.push(r.seq);
    }
  }
  for (const [t, seqs] of byTenant) {
    const value: IndexValue = seqs.length === 1 ? 1 : seqs;
    writes.push({ db: 'audit_index', key: indexKey(t, seqs[0]!), value });
  }
  return writes;
}

/** Index keys in a batch of this many records at most, when a log gets its tree at start. */
const CATCH_UP_BATCH = 1024;

/** What the tree reads and writes of the store it lives in. */
export interface TreeStore {
  root: RootDatabase;
  tree: Database;
  index: Database;
  /** A record, opened (undefined when absent). @throws StoreError when it does not open */
  get(db: 'audit' | 'audit_tree' | 'audit_index', key: RecordKey): unknown;
  /** A value as stored (authenticated, bound to its database and key). */
  encode(db: TreeWrite['db'], key: RecordKey, value: unknown): Buffer;
  /** Audit records in order from `from`. */
  records(from: number): Iterable<AuditRecord>;
  /** The error for a damaged store, naming its file. */
  damaged(detail: string): Error;
}

/**
 * The audit log's Merkle tree, as stored. Its size is the number of durable records: a batch
 * appends to a `draft()` whose nodes commit with the records, then `advance()` makes it current.
 */
export class AuditTree implements AuditLogPort {
  private edge: MerkleFrontier;

  /**
   * The stored tree of a log of `records` records. A log written before the tree existed gets
   * its tree here, once, from its records; a tree with more leaves than the log is refused.
   */
  constructor(
    private readonly s: TreeStore,
    records: number,
    /** false (benchmarks only): records are not added; a later start with it on adds them. */
    private readonly maintained = true,
  ) {
    // The tree's size as stored: the leaves under the last stored node of the lowest stored
    // level; the records after them (fewer than 2^STORED_LEVEL_MIN) are added below, which
    // writes nothing unless they complete a stored node.
    let leaves = 0;
    const lowest = nodeKey(STORED_LEVEL_MIN, 0);
    for (const key of s.tree.getKeys({
      start: lowest + LEVEL_STRIDE - 1,
      reverse: true,
      limit: 1,
    })) {
      if ((key as number) >= lowest)
        leaves = ((key as number) - lowest + 1) * 2 ** STORED_LEVEL_MIN;
    }
    if (leaves > records) {
      throw s.damaged(`the audit tree has ${leaves} leaves, the log ${records} records`);
    }
    this.edge = leaves === 0 ? MerkleFrontier.empty() : MerkleFrontier.of(leaves, this.node);
    if (leaves < records && maintained) {
      const writes: TreeWrite[] = [];
      let batch: AuditRecord[] = [];
      for (const r of s.records(leaves + 1)) {
        batch.push(r);
        if (batch.length === CATCH_UP_BATCH) {
          writes.push(...auditTreeWrites(batch, this.edge));
          batch = [];
        }
      }
      writes.push(...auditTreeWrites(batch, this.edge));
      s.root.transactionSync(() => {
        for (const w of writes)
          s[w.db === 'audit_tree' ? 'tree' : 'index'].put(w.key, s.encode(w.db, w.key, w.value));
      });
    }
  }

  /**
   * A complete subtree's hash: stored from `STORED_LEVEL_MIN` up, else computed from its records.
   * @throws StoreError when a stored node or a record is missing
   */
  private readonly node: NodeSource = (level, index) => {
    if (level < STORED_LEVEL_MIN) {
      if (level > 0)
        return nodeHash(this.node(level - 1, 2 * index), this.node(level - 1, 2 * index + 1));
      const record = this.s.get('audit', index + 1) as AuditRecord | undefined;
      if (record === undefined) throw this.s.damaged(`audit record ${index + 1} missing`);
      return leafHash(auditLeafInput(record));
    }
    const hash = this.s.get('audit_tree', nodeKey(level, index));
    if (!(hash instanceof Uint8Array))
      throw this.s.damaged(`audit tree node ${level}/${index} missing`);
    return Buffer.from(hash);
  };

  /**
   * The writes, ready to put, that add the consecutive records `rs` (one transaction's) to the
   * tree (`draft` advances) and to the index.
   */
  writes(
    rs: readonly AuditRecord[],
    draft: MerkleFrontier,
  ): { db: TreeWrite['db']; key: RecordKey; bytes: Buffer }[] {
    if (!this.maintained || rs.length === 0) return [];
    return auditTreeWrites(rs, draft).map((w) => ({
      db: w.db,
      key: w.key,
      bytes: this.s.encode(w.db, w.key, w.value),
    }));
  }

  draft(): MerkleFrontier {
    return this.edge.copy();
  }

  advance(durable: MerkleFrontier): void {
    this.edge = durable;
  }

  treeRoot(size = this.edge.size): { size: number; root: Buffer } {
    if (!(Number.isInteger(size) && size >= 0 && size <= this.edge.size)) {
      throw new RangeError(`tree size ${size} is not in 0..${this.edge.size}`);
    }
    return {
      size,
      root: size === this.edge.size ? this.edge.root() : rangeHash(this.node, 0, size),
    };
  }

  inclusionProof(index: number, size: number): Buffer[] {
    this.treeRoot(size);
    return inclusionProof(this.node, index, size);
  }

  consistencyProof(size1: number, size2: number): Buffer[] {
    this.treeRoot(size2);
    return consistencyProof(this.node, size1, size2);
  }

  auditLeaf(seq: number): AuditLeaf | undefined {
    if (!(Number.isInteger(seq) && seq >= 1 && seq <= this.edge.size)) return undefined;
    const record = this.s.get('audit', seq) as AuditRecord | undefined;
    if (record === undefined) return undefined;
    const leafInput = auditLeafInput(record);
    return { record, leafInput, leafHash: leafHash(leafInput) };
  }

  auditSeqsOf(tenant: string, fromSeq: number, limit: number, down: boolean): number[] {
    const out: number[] = [];
    const take = (key: string): boolean => {
      const seqs = indexSeqs(key, this.s.get('audit_index', key));
      for (const seq of down ? [...seqs].reverse() : seqs) {
        if (out.length >= limit) return false;
        if (seq > this.edge.size || (down ? seq > fromSeq : seq < fromSeq)) continue;
        out.push(seq);
      }
      return out.length < limit;
    };
    if (!down) {
      // The entry before `fromSeq` may list seqs from it on (a batch that started before it).
      const at = indexKey(tenant, fromSeq);
      const before = [
        ...this.s.index.getKeys({ start: at, end: `${tenant}\u0000`, reverse: true, limit: 2 }),
      ].find((key) => key !== at);
      if (before !== undefined && !take(before as string)) return out;
    }
    for (const key of this.s.index.getKeys(indexRange(tenant, fromSeq, down))) {
      if (!take(key as string)) break;
    }
    return out;
  }

  /**
   * Rebuilds the tree of the first `size` records from the records and compares every node with
   * the stored one, `slice` records between yields. Returns the first record whose leaf or a node
   * it completes differs, or null.
   */
  async verify(size: number, slice: number): Promise<{ seq: number; reason: string } | null> {
    const tree = MerkleFrontier.empty();
    for (let from = 1; from <= size; from += slice) {
      const to = Math.min(size, from + slice - 1);
      for (const r of this.s.records(from)) {
        if (r.seq > to) break;
        for (const n of tree.append(leafHash(auditLeafInput(r)))) {
          // Lower nodes are the records' own hashes: there is nothing stored to compare.
          if (n.level < STORED_LEVEL_MIN) continue;
          const stored = this.s.get('audit_tree', nodeKey(n.level, n.index));
          if (!(stored instanceof Uint8Array) || !n.hash.equals(stored)) {
            return {
              seq: r.seq,
              reason: `Merkle tree node ${n.level}/${n.index} does not match the records`,
            };
          }
        }
      }
      await new Promise((r) => setImmediate(r));
    }
    return null;
  }
}
