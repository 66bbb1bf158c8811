/**
 * Walking the audit chain to verify it: each record must follow the one before (no gap) and
 * link to its hash. Layer: store. One walk serves the verification at start (from the last
 * verified point) and the operator's `audit verify` (from genesis, in slices that yield).
 */
import { type AuditRecord, verifyAuditRun } from '../security/audit-chain.js';
import { RecordError } from '../security/record-codec.js';
import type { AuditPoint } from './head.js';

export interface ChainBreak {
  seq: number;
  reason: string;
}

export interface ChainVerification {
  records: number;
  head: AuditPoint;
  broken: ChainBreak | null;
}

/**
 * Follows `entries` (audit records from `from.seq + 1`, in key order) up to `end`: the last
 * record that linked, or the first that did not.
 */
export function walkChain(
  entries: Iterable<{ key: unknown; value: unknown }>,
  from: AuditPoint,
  end: number,
): { last: AuditPoint; broken: ChainBreak | null } {
  let prev = from;
  for (const { key, value } of entries) {
    if ((key as number) > end) break;
    if (value === null) {
      const reason = 'record does not authenticate (changed outside the daemon)';
      return { last: prev, broken: { seq: key as number, reason } };
    }
    const r = value as AuditRecord;
    if (key !== prev.seq + 1 || r.seq !== key) {
      return { last: prev, broken: { seq: prev.seq + 1, reason: 'record missing' } };
    }
    const broken = verifyAuditRun([r], prev.hash);
    if (broken) return { last: prev, broken };
    prev = { seq: r.seq, hash: r.hash };
  }
  return { last: prev, broken: null };
}

/** The chain from `genesis` up to `head`, re-hashed `slice` records at a time with a yield between. */
export async function verifyChainInSlices(
  read: (seq: number) => Iterable<{ key: unknown; value: unknown }>,
  genesis: AuditPoint,
  head: AuditPoint,
  slice: number,
): Promise<ChainVerification> {
  let prev = genesis;
  while (prev.seq < head.seq) {
    const end = Math.min(head.seq, prev.seq + slice);
    const walked = walkChain(read(prev.seq + 1), prev, end);
    if (walked.broken) return { records: walked.last.seq, head, broken: walked.broken };
    prev = walked.last;
    if (prev.seq < end) {
      return { records: prev.seq, head, broken: { seq: prev.seq + 1, reason: 'record missing' } };
    }
    await new Promise((r) => setImmediate(r));
  }
  if (prev.hash !== head.hash) {
    return { records: prev.seq, head, broken: { seq: head.seq, reason: 'head hash mismatch' } };
  }
  return { records: prev.seq, head, broken: null };
}

/**
 * Raw audit entries opened with `decode`; one that does not open (edited outside the daemon) is
 * yielded as null, so a verification reports it as a broken record instead of failing.
 */
export function* openedOrNull(
  raw: Iterable<{ key: unknown; value: unknown }>,
  decode: (key: unknown, bytes: Uint8Array) => unknown,
): Generator<{ key: unknown; value: unknown }> {
  for (const { key, value } of raw) {
    try {
      yield { key, value: decode(key, value as Uint8Array) };
    } catch (err) {
      if (!(err instanceof RecordError)) throw err;
      yield { key, value: null };
    }
  }
}
