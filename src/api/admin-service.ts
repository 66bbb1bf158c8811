/**
 * AdminService adapter (admin socket only). Layer: api; no policy here.
 */
import type { Admin } from '../kernel/admin.js';
import type { Credential } from '../kernel/model.js';
import type { SigningKeyInfo, StateOperationsPort } from '../kernel/ports.js';
import {
  num,
  quotaFromWire,
  roleFromWire,
  roleToWire,
  tenantToWire,
  tierFromWire,
} from './convert.js';
import type { AdminServiceHandlers } from './generated/qmk/v1/AdminService.js';
import type { GetStatusResponse } from './generated/qmk/v1/GetStatusResponse.js';
import { type CallTracker, unary } from './handler.js';

import type { BackupStateRequest__Output } from './generated/qmk/v1/BackupStateRequest.js';
import type { CreateApiKeyRequest__Output } from './generated/qmk/v1/CreateApiKeyRequest.js';
import type { CreateTenantRequest__Output } from './generated/qmk/v1/CreateTenantRequest.js';
import type { DeleteTenantRequest__Output } from './generated/qmk/v1/DeleteTenantRequest.js';
import type { GetTenantRequest__Output } from './generated/qmk/v1/GetTenantRequest.js';
import type { ListApiKeysRequest__Output } from './generated/qmk/v1/ListApiKeysRequest.js';
import type { ListTenantsRequest__Output } from './generated/qmk/v1/ListTenantsRequest.js';
import type { ResumeTenantRequest__Output } from './generated/qmk/v1/ResumeTenantRequest.js';
import type { RevokeApiKeyRequest__Output } from './generated/qmk/v1/RevokeApiKeyRequest.js';
import type { RotateMasterKeyRequest__Output } from './generated/qmk/v1/RotateMasterKeyRequest.js';
import type { RotateSigningKeyRequest__Output } from './generated/qmk/v1/RotateSigningKeyRequest.js';
import type { SignEvidenceRequest__Output } from './generated/qmk/v1/SignEvidenceRequest.js';
import type { SuspendTenantRequest__Output } from './generated/qmk/v1/SuspendTenantRequest.js';
import type { UpdateTenantRequest__Output } from './generated/qmk/v1/UpdateTenantRequest.js';

const strs = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);

function keyToWire(c: Credential) {
  return {
    key_id: c.keyId,
    tenant_id: c.tenantId,
    roles: c.roles.map(roleToWire),
    label: c.label,
    revoked: c.revoked,
    created_at_unix_ms: c.createdAtMs,
  };
}

function signingKeyToWire(k: SigningKeyInfo, nowMs: number) {
  return {
    key_id: k.keyId,
    public_key: k.publicKey,
    active: k.active,
    created_at_unix_ms: k.createdAtMs,
    retire_at_unix_ms: k.retireAtMs,
    retired: k.retireAtMs !== 0 && nowMs >= k.retireAtMs,
  };
}

export function adminServiceHandlers(
  a: Admin,
  tracker: CallTracker,
  status: () => GetStatusResponse,
  ops: StateOperationsPort,
): AdminServiceHandlers {
  const wire = (t: Parameters<Admin['quotaOf']>[0]) => tenantToWire(t, a.quotaOf(t));
  return {
    CreateTenant: unary(tracker, async (_p, r: CreateTenantRequest__Output) => {
      const out = await a.createTenant(
        String(r.name ?? ''),
        tierFromWire(r.tier),
        num(r.weight),
        strs(r.roles).map(roleFromWire),
      );
      return { tenant: wire(out.tenant), key: keyToWire(out.credential), api_key: out.apiKey };
    }),
    GetTenant: unary(tracker, (_p, r: GetTenantRequest__Output) => ({
      tenant: wire(a.find(String(r.tenant ?? ''))),
    })),
    ListTenants: unary(tracker, (_p, r: ListTenantsRequest__Output) => {
      const out = a.list(num(r.page_size), String(r.page_token ?? ''));
      return { tenants: out.tenants.map(wire), next_page_token: out.next };
    }),
    UpdateTenant: unary(tracker, async (_p, r: UpdateTenantRequest__Output) => ({
      tenant: wire(
        await a.update(
          String(r.tenant ?? ''),
          tierFromWire(r.tier),
          num(r.weight),
          quotaFromWire(r.quota),
        ),
      ),
    })),
    SuspendTenant: unary(tracker, async (_p, r: SuspendTenantRequest__Output) => ({
      tenant: wire(await a.suspend(String(r.tenant ?? ''), String(r.reason ?? ''))),
    })),
    ResumeTenant: unary(tracker, async (_p, r: ResumeTenantRequest__Output) => ({
      tenant: wire(await a.resume(String(r.tenant ?? ''))),
    })),
    DeleteTenant: unary(tracker, async (_p, r: DeleteTenantRequest__Output) => {
      const out = await a.delete(String(r.tenant ?? ''));
      return {
        sessions_closed: out.sessions,
        keys_revoked: out.keys,
        data_key_destroyed: out.dataKeyDestroyed,
      };
    }),
    CreateApiKey: unary(tracker, async (_p, r: CreateApiKeyRequest__Output) => {
      const out = await a.createKey(
        String(r.tenant ?? ''),
        strs(r.roles).map(roleFromWire),
        String(r.label ?? ''),
      );
      return { key: keyToWire(out.credential), api_key: out.apiKey };
    }),
    ListApiKeys: unary(tracker, (_p, r: ListApiKeysRequest__Output) => ({
      keys: a.listKeys(String(r.tenant ?? '')).map(keyToWire),
    })),
    RevokeApiKey: unary(tracker, async (_p, r: RevokeApiKeyRequest__Output) => ({
      key: keyToWire(await a.revokeKey(String(r.key_id ?? ''))),
    })),
    RotateSigningKey: unary(tracker, async (_p, r: RotateSigningKeyRequest__Output) => {
      const out = await a.rotateSigningKey(num(r.grace_seconds), Boolean(r.retire_previous_now));
      const now = Date.now();
      return {
        active: signingKeyToWire(out.active, now),
        keys: out.keys.map((k) => signingKeyToWire(k, now)),
      };
    }),
    ListSigningKeys: unary(tracker, () => {
      const now = Date.now();
      return { keys: a.signingKeys().map((k) => signingKeyToWire(k, now)) };
    }),
    GetStatus: unary(tracker, () => status()),
    SignEvidence: unary(tracker, async (_p, r: SignEvidenceRequest__Output) => {
      const out = await a.signEvidence(r.report_sha256 ?? Buffer.alloc(0));
      return {
        key_id: out.keyId,
        signed_payload: out.payload,
        signature: Buffer.from(out.signature),
        signed_at_unix_ms: out.atMs,
      };
    }),
    VerifyAudit: unary(tracker, async () => {
      const r = await ops.verifyAudit();
      return {
        records: r.records,
        head_seq: r.headSeq,
        head_hash: r.headHash,
        ok: r.ok,
        broken_seq: r.brokenSeq,
        reason: r.reason,
      };
    }),
    BackupState: unary(tracker, async (_p, r: BackupStateRequest__Output) => {
      const out = await ops.backup(String(r.path ?? ''), !r.no_compact);
      return { path: out.path, bytes: out.bytes, audit_seq: out.auditSeq };
    }),
    RotateMasterKey: unary(tracker, (_p, r: RotateMasterKeyRequest__Output) => {
      const out = ops.rotateMasterKey(String(r.new_key_file ?? ''));
      return { data_keys: out.dataKeys, key_file_replaced: out.keyFileReplaced };
    }),
  };
}
