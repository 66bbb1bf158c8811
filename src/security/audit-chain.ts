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
 * A record's fields in canonical (sorted) order, as the two runs on either side of `hash`: the
 * body hashed into the chain is both runs, the Merkle leaf puts the hash between them. Written
 * out by hand because every audit record is encoded on the commit path: the generic encoder's key
 * sort cost about 4 µs a time.
 */
type Halves = [before: string, after: string];

function fieldsJson(pairs: readonly [string, unknown][]): string {
  let out = '';
  for (const [k, x] of pairs) {
    if (x === undefined) continue;
    out += `${out === '' ? '' : ','}"${k}":${canonicalJson(x)}`;
  }
  return out;
}

function recordHalves(r: Omit<AuditRecord, 'hash'>): Halves {
  return [
    fieldsJson([
      ['action', r.action],
      ['actor', r.actor],
      ['detail', r.detail],
    ]),
    fieldsJson([
      ['outcome', r.outcome],
      ['prev', r.prev],
      ['request', r.request],
      ['seq', r.seq],
      ['target', r.target],
      ['tenants', r.tenants],
      ['tsMs', r.tsMs],
    ]),
  ];
}

/** canonicalJson of the fields in `halves`, with `"hash": hash` between them when given. */
function joined(halves: Halves, hash?: string): string {
  const parts =
    hash === undefined ? halves : [halves[0], `"hash":${JSON.stringify(hash)}`, halves[1]];
  return `{${parts.filter((x) => x !== '').join(',')}}`;
}

const bodyHash = (prev: string, halves: Halves): string =>
  createHash('sha256').update(prev).update('\n').update(joined(halves)).digest('hex');

export function hashAuditRecord(r: Omit<AuditRecord, 'hash'>): string {
  return bodyHash(r.prev, recordHalves(r));
}

/**
 * The leaf encoding of records just linked, kept until the commit path asks for it once (the
 * record object is not changed in between), so a record is encoded once, not twice.
 */
const linkedLeaves = new WeakMap<AuditRecord, string>();

/**
 * The record's leaf in the audit log's Merkle tree: its canonical JSON (every field, its chain
 * hash included) as UTF-8. A verifier hashes these bytes as given; it need not re-encode.
 */
export function auditLeafInput(r: AuditRecord): Buffer {
  const kept = linkedLeaves.get(r);
  if (kept !== undefined) linkedLeaves.delete(r);
  return Buffer.from(kept ?? joined(recordHalves(r), r.hash), 'utf8');
}

export function linkAuditRecord(
  event: AuditEvent,
  seq: number,
  tsMs: number,
  prev: string,
): AuditRecord {
  const r = { ...event, seq, tsMs, prev };
  const halves = recordHalves(r);
  const record = { ...r, hash: bodyHash(prev, halves) };
  linkedLeaves.set(record, joined(halves, record.hash));
  return record;
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
