/**
 * The kernel's domain records. Layer: kernel (pure). These are what the store persists and what
 * the kernel reasons about; wire shapes live in the proto files and are converted in `api/`.
 */
import type { Quota } from './quota-fields.js';

/** A tenant's effective limits: one number per field of `quota-fields.ts`'s table. */
export type { Quota };

export type Tier = 'free' | 'pro' | 'enterprise';
export type Role = 'tenant_admin' | 'researcher' | 'domain_scientist';
export const ROLES: readonly Role[] = ['tenant_admin', 'researcher', 'domain_scientist'];
export type TenantStatus = 'active' | 'suspended';

export const CAPS = [
  'CAP_ALLOC',
  'CAP_COMPUTE',
  'CAP_MEASURE',
  'CAP_LINK',
  'CAP_TELEPORT',
  'CAP_MAGIC',
  'CAP_DEBUG',
] as const;
export type Cap = (typeof CAPS)[number];

export interface Tenant {
  id: string;
  name: string;
  tier: Tier;
  weight: number;
  status: TenantStatus;
  suspendReason: string;
  quotaOverrides: Partial<Quota>;
  createdAtMs: number;
}

export interface Credential {
  keyId: string;
  tenantId: string;
  /** SHA-256 of the secret, hex. The secret itself is never stored. */
  secretHash: string;
  roles: Role[];
  label: string;
  revoked: boolean;
  createdAtMs: number;
}

export interface Session {
  id: string;
  tenantId: string;
  caps: Cap[];
  createdAtMs: number;
  expiresAtMs: number;
}

export interface Qubit {
  id: string;
  tenantId: string;
  sessionId: string;
  profile: string;
  /** No operation has touched it since allocation (INJECT_T_STATE needs a fresh |0>). */
  fresh: boolean;
  createdAtMs: number;
}

export type Principal =
  | { kind: 'tenant'; tenantId: string; keyId: string; roles: readonly Role[] }
  | { kind: 'operator' };
