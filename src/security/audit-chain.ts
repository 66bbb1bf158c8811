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
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
}

/** The fields a record is hashed over: the event, its place and its link (no extra keys). */
function recordBody(r: Omit<AuditRecord, 'hash'>) {
  const { seq, tsMs, prev, actor, action, target, outcome, detail, tenants, request } = r;
  return { seq, tsMs, prev, actor, action, target, outcome, detail, tenants, request };
}

export function hashAuditRecord(r: Omit<AuditRecord, 'hash'>): string {
  const body = canonicalJson(recordBody(r));
  return createHash('sha256').update(r.prev).update('\n').update(body).digest('hex');
}

/**
 * The record's leaf in the audit log's Merkle tree: its canonical JSON (every field, its chain
 * hash included) as UTF-8. A verifier hashes these bytes as given; it need not re-encode.
 */
export function auditLeafInput(r: AuditRecord): Buffer {
  return Buffer.from(canonicalJson({ ...recordBody(r), hash: r.hash }), 'utf8');
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
