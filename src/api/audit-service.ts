/**
 * AuditService adapter, the same handlers on the tenant port and the admin socket: the caller's
 * principal decides the scope (kernel/audit-log.ts). Layer: api; no policy here.
 */
import type { AuditLog, SignedTreeHead } from '../kernel/audit-log.js';
import type { AuditLeaf } from '../kernel/ports.js';
import { num, str } from './convert.js';
import type { AuditRecord as WireRecord } from './generated/qmk/v1/AuditRecord.js';
import type { AuditServiceHandlers } from './generated/qmk/v1/AuditService.js';
import type { GetConsistencyProofRequest__Output } from './generated/qmk/v1/GetConsistencyProofRequest.js';
import type { GetInclusionProofRequest__Output } from './generated/qmk/v1/GetInclusionProofRequest.js';
import type { GetTreeHeadRequest__Output } from './generated/qmk/v1/GetTreeHeadRequest.js';
import type { ListAuditRecordsRequest__Output } from './generated/qmk/v1/ListAuditRecordsRequest.js';
import type { SignedTreeHead as WireHead } from './generated/qmk/v1/SignedTreeHead.js';
import { type CallTracker, unary } from './handler.js';

export function headToWire(h: SignedTreeHead): WireHead {
  return {
    tree_size: h.treeSize,
    root_hash: h.rootHash,
    timestamp_unix_ms: h.timestampMs,
    key_id: h.keyId,
    signature: h.signature,
    signed_payload: h.signedPayload,
  };
}

export function recordToWire(leaf: AuditLeaf): WireRecord {
  const r = leaf.record;
  return {
    seq: r.seq,
    leaf_index: r.seq - 1,
    time_unix_ms: r.tsMs,
    actor: r.actor,
    action: r.action,
    target: r.target,
    outcome: r.outcome,
    detail_json: r.detail === undefined ? '' : JSON.stringify(r.detail),
    tenant_ids: r.tenants ?? [],
    prev_hash: r.prev,
    hash: r.hash,
    leaf_input: leaf.leafInput,
    leaf_hash: leaf.leafHash,
    request_id: r.request ?? '',
  };
}

export function auditServiceHandlers(audit: AuditLog, tracker: CallTracker): AuditServiceHandlers {
  return {
    GetTreeHead: unary(tracker, (_p, r: GetTreeHeadRequest__Output) => ({
      head: headToWire(audit.head(num(r.tree_size))),
    })),
    ListAuditRecords: unary(tracker, (p, r: ListAuditRecordsRequest__Output) => {
      const page = audit.list(
        p,
        {
          sinceMs: num(r.since_unix_ms),
          untilMs: num(r.until_unix_ms),
          actor: str(r.actor),
          action: str(r.action),
          target: str(r.target),
          tenant: str(r.tenant_id),
          newestFirst: r.newest_first === true,
        },
        num(r.page_size),
        str(r.page_token),
      );
      return {
        records: page.records.map(recordToWire),
        next_page_token: page.next,
        tree_size: page.treeSize,
      };
    }),
    GetInclusionProof: unary(tracker, (p, r: GetInclusionProofRequest__Output) => {
      const out = audit.inclusion(p, num(r.leaf_index), num(r.tree_size));
      return { record: recordToWire(out.leaf), audit_path: out.proof, head: headToWire(out.head) };
    }),
    GetConsistencyProof: unary(tracker, (_p, r: GetConsistencyProofRequest__Output) => {
      const out = audit.consistency(num(r.first_tree_size), num(r.second_tree_size));
      return { proof: out.proof, first: headToWire(out.first), second: headToWire(out.second) };
    }),
  };
}
