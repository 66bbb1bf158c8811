/**
 * Enum and record conversions between the wire (proto-loader objects, enums as names) and the
 * kernel's words. Layer: api. No policy: unknown names pass through unchanged so the kernel's
 * validation names the field.
 */
import type { Principal, Quota, Role, Tenant, Tier } from '../kernel/model.js';
import type { TenantPrincipal } from '../kernel/principals.js';
import { QUOTA_FIELDS, type QuotaWireName, type WireQuota } from '../kernel/quota-fields.js';
import type { Role as WireRole } from './generated/qmk/v1/Role.js';
import type { Tenant as WireTenant } from './generated/qmk/v1/Tenant.js';
import type { Tier as WireTier } from './generated/qmk/v1/Tier.js';

/** proto-loader gives numbers (uint64 as strings with `longs: String`), strings, arrays or nothing. */
export const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v ?? 0));
export const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** The principal of a tenant method (the authorization table admits only tenants to them). */
export function tenant(p: Principal): TenantPrincipal {
  if (p.kind !== 'tenant') throw new Error('tenant method reached without a tenant principal');
  return p;
}

export const strip =
  (prefix: string) =>
  (v: unknown): string =>
    typeof v === 'string' && v.startsWith(prefix) ? v.slice(prefix.length) : String(v);

export const tierFromWire = (v: unknown): string => {
  const s = strip('TIER_')(v).toLowerCase();
  return s === 'unspecified' ? '' : s;
};
const TIER_WIRE: Readonly<Record<Tier, WireTier>> = {
  free: 'TIER_FREE',
  pro: 'TIER_PRO',
  enterprise: 'TIER_ENTERPRISE',
};
export const tierToWire = (t: Tier): WireTier => TIER_WIRE[t];
export const roleFromWire = (v: unknown): string => strip('ROLE_')(v).toLowerCase();
const ROLE_WIRE: Readonly<Record<Role, WireRole>> = {
  tenant_admin: 'ROLE_TENANT_ADMIN',
  researcher: 'ROLE_RESEARCHER',
  domain_scientist: 'ROLE_DOMAIN_SCIENTIST',
};
export const roleToWire = (r: Role): WireRole => ROLE_WIRE[r];

/** The model's quota in wire names (one field per row of `QUOTA_FIELDS`). */
export function quotaToWire(q: Quota): WireQuota {
  const out = {} as WireQuota;
  for (const f of QUOTA_FIELDS) out[f.wire] = q[f.key];
  return out;
}

/** Every quota field of a request in model names (0 where the request leaves it unset). */
export function quotaFromWire(
  w: Partial<Record<QuotaWireName, unknown>> | null | undefined,
): Partial<Quota> {
  if (!w) return {};
  const out: Partial<Quota> = {};
  for (const f of QUOTA_FIELDS) out[f.key] = Number(w[f.wire] ?? 0);
  return out;
}

export function tenantToWire(t: Tenant, quota: Quota): WireTenant {
  return {
    tenant_id: t.id,
    name: t.name,
    tier: tierToWire(t.tier),
    weight: t.weight,
    status: t.status === 'active' ? 'TENANT_STATUS_ACTIVE' : 'TENANT_STATUS_SUSPENDED',
    suspend_reason: t.suspendReason,
    quota: quotaToWire(quota),
    created_at_unix_ms: t.createdAtMs,
  };
}
