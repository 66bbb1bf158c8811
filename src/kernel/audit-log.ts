/**
 * The audit log as tenants and auditors read it: signed tree heads, a filtered paged listing,
 * inclusion and consistency proofs. Layer: kernel (the store keeps the Merkle tree behind
 * `AuditLogPort`; this decides who may see what).
 *
 * Scope: the operator sees every record; a tenant sees only the records that concern it (its
 * own calls, and the kernel's and operator's acts on its resources, both sides of a channel).
 * Tree heads and consistency proofs are the same for everyone: they reveal the log's size and
 * hashes, nothing of a record. A tenant's inclusion proof is only for one of its own records; its
 * path holds hashes of others' subtrees, never their contents.
 *
 * A tree head is signed with the kernel's active signing key (the key `GetSigningKeys` lists) over
 * RFC 6962's TreeHeadSignature structure: version 0, signature type 1 (tree_hash), the timestamp
 * and tree size as big-endian 64-bit integers, then the 32-byte root hash.
 */
import { KernelError, invalid } from './errors.js';
import { LIST_PAGE_SIZE_DEFAULT, LIST_PAGE_SIZE_MAX } from './limits.js';
import type { Principal } from './model.js';
import type { AuditLeaf, AuditLogPort, ClockPort, SignerPort } from './ports.js';

export interface SignedTreeHead {
  treeSize: number;
  rootHash: Buffer;
  timestampMs: number;
  keyId: number;
  signature: Buffer;
  /** The exact bytes signed (see the module comment). */
  signedPayload: Buffer;
}

export interface AuditFilter {
  /** Records at or after this time (0: no bound). */
  sinceMs: number;
  /** Records before this time (0: no bound). */
  untilMs: number;
  actor: string;
  action: string;
  target: string;
  /** The operator's listing only: records concerning this tenant id. */
  tenant: string;
  newestFirst: boolean;
}

/** Records looked at per listing call at most: a selective filter returns a short page and a token. */
export const AUDIT_SCAN_MAX = 10_000;

/** RFC 6962 §3.5: `digitally-signed struct { Version; SignatureType; uint64 timestamp; uint64 tree_size; opaque sha256_root_hash[32]; }`. */
export function treeHeadPayload(
  treeSize: number,
  rootHash: Uint8Array,
  timestampMs: number,
): Buffer {
  const b = Buffer.alloc(2 + 8 + 8 + 32);
  b[0] = 0; // v1
  b[1] = 1; // tree_hash
  b.writeBigUInt64BE(BigInt(timestampMs), 2);
  b.writeBigUInt64BE(BigInt(treeSize), 10);
  Buffer.from(rootHash).copy(b, 18);
  return b;
}

function checkSize(field: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0) throw invalid(field, 'must be a whole number');
  if (value > max) throw invalid(field, `${value} is beyond the log's ${max} records`);
}

export class AuditLog {
  constructor(
    private readonly log: AuditLogPort,
    private readonly signer: SignerPort,
    private readonly clock: ClockPort,
  ) {}

  /** The head of the first `treeSize` records (0: the whole log), signed now. @throws INVALID_ARGUMENT */
  head(treeSize = 0, field = 'tree_size'): SignedTreeHead {
    const current = this.log.treeRoot().size;
    checkSize(field, treeSize, current);
    const { size, root } = this.log.treeRoot(treeSize === 0 ? current : treeSize);
    const timestampMs = this.clock.nowMs();
    const signedPayload = treeHeadPayload(size, root, timestampMs);
    return {
      treeSize: size,
      rootHash: root,
      timestampMs,
      keyId: this.signer.activeKeyId(),
      signature: Buffer.from(this.signer.sign(signedPayload)),
      signedPayload,
    };
  }

  /**
   * One page of the records `p` may see that pass `f`, oldest first (or newest first), and the
   * token to continue with ('' at the end). @throws INVALID_ARGUMENT
   */
  list(
    p: Principal,
    f: AuditFilter,
    pageSize: number,
    pageToken: string,
  ): { records: AuditLeaf[]; next: string; treeSize: number } {
    if (!Number.isInteger(pageSize) || pageSize < 0 || pageSize > LIST_PAGE_SIZE_MAX) {
      throw invalid('page_size', `must be 0 ..= ${LIST_PAGE_SIZE_MAX}`);
    }
    if (f.tenant !== '' && p.kind !== 'operator') {
      throw invalid('tenant_id', 'only the operator may list another tenant; leave it empty');
    }
    for (const [field, v] of [
      ['since_unix_ms', f.sinceMs],
      ['until_unix_ms', f.untilMs],
    ] as const) {
      if (!Number.isInteger(v) || v < 0) throw invalid(field, 'must be a time in ms, or 0');
    }
    const treeSize = this.log.treeRoot().size;
    let from = f.newestFirst ? treeSize : 1;
    if (pageToken !== '') {
      if (!/^[1-9][0-9]{0,15}$/.test(pageToken)) {
        throw invalid('page_token', 'is not a token from ListAuditRecords');
      }
      from = Number(pageToken);
    }
    const size = pageSize === 0 ? LIST_PAGE_SIZE_DEFAULT : pageSize;
    const scope = p.kind === 'tenant' ? p.tenantId : f.tenant;
    const records: AuditLeaf[] = [];
    let next = '';
    let scanned = 0;
    for (const seq of this.seqs(scope, from, f.newestFirst, treeSize)) {
      if (records.length === size || scanned === AUDIT_SCAN_MAX) {
        next = String(seq);
        break;
      }
      scanned++;
      const leaf = this.log.auditLeaf(seq);
      if (leaf && this.visible(leaf, scope) && passes(leaf, f)) records.push(leaf);
    }
    return { records, next, treeSize };
  }

  /**
   * The inclusion proof of the record at `leafIndex` (its seq − 1) in the tree of `treeSize`
   * records (0: the whole log), with that tree's signed head. A tenant gets proofs of its own
   * records only; any other index answers NOT_FOUND. @throws INVALID_ARGUMENT, NOT_FOUND
   */
  inclusion(
    p: Principal,
    leafIndex: number,
    treeSize: number,
  ): { leaf: AuditLeaf; proof: Buffer[]; head: SignedTreeHead } {
    const head = this.head(treeSize);
    if (!Number.isInteger(leafIndex) || leafIndex < 0) {
      throw invalid('leaf_index', 'must be a whole number');
    }
    const leaf = leafIndex < head.treeSize ? this.log.auditLeaf(leafIndex + 1) : undefined;
    const scope = p.kind === 'tenant' ? p.tenantId : '';
    if (!leaf || !this.visible(leaf, scope)) {
      throw new KernelError(
        'NOT_FOUND',
        `leaf_index: no audit record ${leafIndex} in the tree of ${head.treeSize} that this caller may see`,
        'leaf_index',
      );
    }
    return { leaf, proof: this.log.inclusionProof(leafIndex, head.treeSize), head };
  }

  /**
   * The consistency proof from the tree of `firstSize` records to that of `secondSize` (0: the
   * whole log), with both signed heads. @throws INVALID_ARGUMENT
   */
  consistency(
    firstSize: number,
    secondSize: number,
  ): { proof: Buffer[]; first: SignedTreeHead; second: SignedTreeHead } {
    const second = this.head(secondSize, 'second_tree_size');
    if (!Number.isInteger(firstSize) || firstSize < 1) {
      throw invalid('first_tree_size', 'must be at least 1');
    }
    if (firstSize > second.treeSize) {
      throw invalid(
        'first_tree_size',
        `${firstSize} is beyond the second tree's ${second.treeSize} records`,
      );
    }
    const first = this.head(firstSize, 'first_tree_size');
    return { proof: this.log.consistencyProof(firstSize, second.treeSize), first, second };
  }

  /** A record is in `scope` (a tenant id; '' for all) when it names that tenant. */
  private visible(leaf: AuditLeaf, scope: string): boolean {
    return scope === '' || (leaf.record.tenants ?? []).includes(scope);
  }

  /** Sequence numbers to look at from `from` on: a tenant's index, or the whole log. */
  private *seqs(scope: string, from: number, down: boolean, treeSize: number): Generator<number> {
    if (scope === '') {
      if (down) for (let s = Math.min(from, treeSize); s >= 1; s--) yield s;
      else for (let s = from; s <= treeSize; s++) yield s;
      return;
    }
    const chunk = 256;
    let at = from;
    for (;;) {
      const seqs = this.log.auditSeqsOf(scope, at, chunk, down);
      for (const s of seqs) yield s;
      if (seqs.length < chunk) return;
      at = down ? seqs[seqs.length - 1]! - 1 : seqs[seqs.length - 1]! + 1;
      if (at < 1) return;
    }
  }
}

function passes(leaf: AuditLeaf, f: AuditFilter): boolean {
  const r = leaf.record;
  if (f.sinceMs > 0 && r.tsMs < f.sinceMs) return false;
  if (f.untilMs > 0 && r.tsMs >= f.untilMs) return false;
  if (f.actor !== '' && r.actor !== f.actor && !r.actor.startsWith(`${f.actor}/`)) return false;
  if (f.action !== '' && r.action !== f.action) return false;
  if (f.target !== '' && r.target !== f.target) return false;
  return true;
}
