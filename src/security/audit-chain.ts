/**
 * The audit chain's hashing: each record carries the previous record's hash and its own SHA-256
 * over a canonical encoding, so changing, removing or reordering any record breaks every later
 * link. Layer: security (pure functions; the store persists the records).
 */
import { createHash } from 'node:crypto';
import type { AuditEvent, AuditRecord } from '../kernel/ports.js';

export type { AuditRecord };

export const AUDIT_GENESIS_HASH = '0'.repeat(64);

/** JSON with object keys sorted at every level: one byte sequence per record, whatever built it. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) {
    let out = '[';
    for (let i = 0; i < v.length; i++) out += (i === 0 ? '' : ',') + canonicalJson(v[i]);
    return `${out}]`;
  }
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).sort();
  let out = '{';
  for (const k of keys) {
    const x = o[k];
    if (x === undefined) continue;
    out += `${out.length === 1 ? '' : ','}${JSON.stringify(k)}:${canonicalJson(x)}`;
  }
  return `${out}}`;
}

/**
 * A record's fields in sorted key order (the canonical order); `hash` takes its place among them
 * in a leaf. Written out by hand because every audit record is encoded twice on the commit path
 * (chain hash and Merkle leaf): the generic encoder's key sort cost about 4 µs a time.
 */
const RECORD_KEYS = [
  'action',
  'actor',
  'detail',
  'hash',
  'outcome',
  'prev',
  'request',
  'seq',
  'target',
  'tenants',
  'tsMs',
] as const;
const KEY_PREFIX = new Map(RECORD_KEYS.map((k) => [k, `${JSON.stringify(k)}:`]));

/** canonicalJson of the record's body (and of its hash when `hash` is given), byte for byte. */
function recordJson(r: Omit<AuditRecord, 'hash'>, hash?: string): string {
  const fields: Record<(typeof RECORD_KEYS)[number], unknown> = {
    action: r.action,
    actor: r.actor,
    detail: r.detail,
    hash,
    outcome: r.outcome,
    prev: r.prev,
    request: r.request,
    seq: r.seq,
    target: r.target,
    tenants: r.tenants,
    tsMs: r.tsMs,
  };
  let out = '{';
  for (const k of RECORD_KEYS) {
    const x = fields[k];
    if (x === undefined) continue;
    out += `${out.length === 1 ? '' : ','}${KEY_PREFIX.get(k)}${canonicalJson(x)}`;
  }
  return `${out}}`;
}

export function hashAuditRecord(r: Omit<AuditRecord, 'hash'>): string {
  return createHash('sha256').update(r.prev).update('\n').update(recordJson(r)).digest('hex');
}

/**
 * The record's leaf in the audit log's Merkle tree: its canonical JSON (every field, its chain
 * hash included) as UTF-8. A verifier hashes these bytes as given; it need not re-encode.
 */
export function auditLeafInput(r: AuditRecord): Buffer {
  return Buffer.from(recordJson(r, r.hash), 'utf8');
}

export function linkAuditRecord(
  event: AuditEvent,
  seq: number,
  tsMs: number,
  prev: string,
): AuditRecord {
  const r = { ...event, seq, tsMs, prev };
  return { ...r, hash: hashAuditRecord(r) };
}

/**
 * Checks a run of consecutive records. Returns null when intact, else the first broken seq and why.
 * `expectPrev` is the hash the first record must link to (genesis for seq 1).
 */
export function verifyAuditRun(
  records: readonly AuditRecord[],
  expectPrev: string | null,
): { seq: number; reason: string } | null {
  let prev = expectPrev;
  let prevSeq: number | null = null;
  for (const r of records) {
    if (prevSeq !== null && r.seq !== prevSeq + 1) return { seq: r.seq, reason: 'sequence gap' };
    if (prev !== null && r.prev !== prev) return { seq: r.seq, reason: 'previous hash mismatch' };
    if (hashAuditRecord(r) !== r.hash) return { seq: r.seq, reason: 'record hash mismatch' };
    prev = r.hash;
    prevSeq = r.seq;
  }
  return null;
}
