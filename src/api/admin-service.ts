/**
 * AdminService adapter (admin socket only). Layer: api; no policy here.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Admin } from '../kernel/admin.js';
import type { Credential } from '../kernel/model.js';
import type { SigningKeyInfo } from '../kernel/ports.js';
import { quotaFromWire, roleFromWire, roleToWire, tenantToWire, tierFromWire } from './convert.js';
import { type CallTracker, unary } from './handler.js';

// biome-ignore lint/suspicious/noExplicitAny: proto-loader request objects are untyped at run time
type Req = any;

const strs = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v ?? 0));

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
  status: () => Record<string, unknown>,
): grpc.UntypedServiceImplementation {
  const wire = (t: Parameters<Admin['quotaOf']>[0]) => tenantToWire(t, a.quotaOf(t));
  return {
    CreateTenant: unary(tracker, async (_p, r: Req) => {
      const out = await a.createTenant(
        String(r.name ?? ''),
        tierFromWire(r.tier),
        num(r.weight),
        strs(r.roles).map(roleFromWire),
      );
      return { tenant: wire(out.tenant), key: keyToWire(out.credential), api_key: out.apiKey };
    }),
    GetTenant: unary(tracker, (_p, r: Req) => ({ tenant: wire(a.find(String(r.tenant ?? ''))) })),
    ListTenants: unary(tracker, (_p, r: Req) => {
      const out = a.list(num(r.page_size), String(r.page_token ?? ''));
      return { tenants: out.tenants.map(wire), next_page_token: out.next };
    }),
    UpdateTenant: unary(tracker, async (_p, r: Req) => ({
      tenant: wire(
        await a.update(String(r.tenant ?? ''), tierFromWire(r.tier), num(r.weight), quotaFromWire(r.quota)),
      ),
    })),
    SuspendTenant: unary(tracker, async (_p, r: Req) => ({
      tenant: wire(await a.suspend(String(r.tenant ?? ''), String(r.reason ?? ''))),
    })),
    ResumeTenant: unary(tracker, async (_p, r: Req) => ({
      tenant: wire(await a.resume(String(r.tenant ?? ''))),
    })),
    DeleteTenant: unary(tracker, async (_p, r: Req) => {
      const out = await a.delete(String(r.tenant ?? ''));
      return { sessions_closed: out.sessions, keys_revoked: out.keys };
    }),
    CreateApiKey: unary(tracker, async (_p, r: Req) => {
      const out = await a.createKey(
        String(r.tenant ?? ''),
        strs(r.roles).map(roleFromWire),
        String(r.label ?? ''),
      );
      return { key: keyToWire(out.credential), api_key: out.apiKey };
    }),
    ListApiKeys: unary(tracker, (_p, r: Req) => ({
      keys: a.listKeys(String(r.tenant ?? '')).map(keyToWire),
    })),
    RevokeApiKey: unary(tracker, async (_p, r: Req) => ({
      key: keyToWire(await a.revokeKey(String(r.key_id ?? ''))),
    })),
    RotateSigningKey: unary(tracker, async (_p, r: Req) => {
      const out = await a.rotateSigningKey(num(r.grace_seconds), Boolean(r.retire_previous_now));
      const now = Date.now();
      return {
        active: signingKeyToWire(out.active, now),
        keys: out.keys.map((k) => signingKeyToWire(k, now)),
      };
    }),
    GetStatus: unary(tracker, () => status()),
  };
}
