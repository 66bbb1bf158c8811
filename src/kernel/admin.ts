/**
 * Operator operations: tenants, API keys and signing-key rotation. Layer: kernel (pure policy over
 * ports). Each operation validates everything first, then mutates memory and commits the change
 * with its audit record in one transaction before returning.
 */
import { type Actor, auditEvent } from './actors.js';
import { KernelError, invalid, quote } from './errors.js';
import { evidencePayload } from './evidence.js';
import type { Kernel } from './kernel.js';
import {
  API_KEYS_PER_TENANT_MAX,
  LIST_PAGE_SIZE_DEFAULT,
  LIST_PAGE_SIZE_MAX,
  QUOTA_CEILING,
  SESSION_TTL_SECONDS_MAX,
  TENANTS_MAX,
  TENANT_NAME_PATTERN,
  TENANT_WEIGHT_MAX,
  TIERS,
  TIER_DEFAULTS,
  effectiveQuota,
} from './limits.js';
import {
  type Credential,
  type Principal,
  type Quota,
  ROLES,
  type Role,
  type Tenant,
  type Tier,
} from './model.js';
import type { ClockPort, CryptoPort, SignerPort, SigningKeyInfo, StorePort } from './ports.js';

const OPERATOR: Principal = { kind: 'operator' };

export interface IssuedKey {
  credential: Credential;
  apiKey: string;
}

/** What the operator's unit uses outside the kernel's units. */
export interface AdminPorts {
  clock: ClockPort;
  crypto: CryptoPort;
  signer: SignerPort;
  /** Crypto-shredding of a deleted tenant's data key. */
  store: Pick<StorePort, 'shred'>;
}

export class Admin {
  constructor(
    private readonly k: Kernel,
    private readonly ports: AdminPorts,
  ) {}

  /** Finds a tenant by id or name. @throws NOT_FOUND, INVALID_ARGUMENT */
  find(ref: string, field = 'tenant'): Tenant {
    if (!ref) throw invalid(field, 'tenant id or name is required');
    const t = this.k.principals.tenant(ref) ?? this.k.principals.tenantByName(ref);
    if (!t) throw new KernelError('NOT_FOUND', `${field}: no tenant ${quote(ref)}`, field);
    return t;
  }

  private parseTier(tier: string, field: string, fallback: Tier): Tier {
    if (tier === '' || tier === 'unspecified') return fallback;
    if (!(TIERS as string[]).includes(tier)) throw invalid(field, `unknown tier ${quote(tier)}`);
    return tier as Tier;
  }

  private parseRoles(roles: readonly string[], field: string): Role[] {
    const out = new Set<Role>();
    roles.forEach((r, i) => {
      if (!(ROLES as readonly string[]).includes(r))
        throw invalid(`${field}[${i}]`, `unknown role ${quote(r)}`);
      out.add(r as Role);
    });
    return out.size === 0 ? ['tenant_admin'] : [...out];
  }

  private parseWeight(weight: number, field: string, tier: Tier): number {
    if (!Number.isInteger(weight) || weight < 0 || weight > TENANT_WEIGHT_MAX) {
      throw invalid(field, `must be an integer in 0..${TENANT_WEIGHT_MAX}`);
    }
    return weight === 0 ? TIER_DEFAULTS[tier].weight : weight;
  }

  private newKey(tenantId: string, roles: Role[], label: string): IssuedKey {
    const apiKey = `qmk_${this.ports.crypto.secret().toString('base64url')}`;
    const credential: Credential = {
      keyId: this.ports.crypto.id().slice(0, 16),
      tenantId,
      secretHash: this.ports.crypto.sha256Hex(apiKey),
      roles,
      label,
      revoked: false,
      createdAtMs: this.ports.clock.nowMs(),
    };
    return { credential, apiKey };
  }

  /** @throws INVALID_ARGUMENT, ALREADY_EXISTS, LIMIT_EXCEEDED */
  async createTenant(
    name: string,
    tierName: string,
    weight: number,
    roles: readonly string[],
  ): Promise<{ tenant: Tenant } & IssuedKey> {
    if (!TENANT_NAME_PATTERN.test(name)) {
      throw invalid('name', `must match ${TENANT_NAME_PATTERN.source}`);
    }
    if (this.k.principals.tenantByName(name) !== undefined) {
      throw new KernelError('ALREADY_EXISTS', `name: tenant ${quote(name)} exists`, 'name');
    }
    if (this.k.principals.tenantCount >= TENANTS_MAX) {
      throw new KernelError('LIMIT_EXCEEDED', `tenants: ${TENANTS_MAX} tenants exist`, 'tenants');
    }
    const tier = this.parseTier(tierName, 'tier', 'free');
    const tenant: Tenant = {
      id: this.ports.crypto.id(),
      name,
      tier,
      weight: this.parseWeight(weight, 'weight', tier),
      status: 'active',
      suspendReason: '',
      quotaOverrides: {},
      createdAtMs: this.ports.clock.nowMs(),
    };
    const key = this.newKey(tenant.id, this.parseRoles(roles, 'roles'), 'initial');
    this.k.principals.putTenant(tenant);
    this.k.principals.putCredential(key.credential);
    await this.k.durability.commitOrUndo(
      () => {
        this.k.principals.dropTenant(tenant);
        this.k.principals.dropCredential(key.credential);
      },
      [
        { op: 'put', db: 'tenants', key: tenant.id, value: tenant },
        { op: 'put', db: 'credentials', key: key.credential.keyId, value: key.credential },
      ],
      [
        auditEvent(OPERATOR, 'CreateTenant', tenant.id, { name, tier, key: key.credential.keyId }, [
          tenant.id,
        ]),
      ],
    );
    return { tenant, ...key };
  }

  list(pageSize: number, pageToken: string): { tenants: Tenant[]; next: string } {
    const size = pageSize === 0 ? LIST_PAGE_SIZE_DEFAULT : pageSize;
    if (!Number.isInteger(size) || size < 1 || size > LIST_PAGE_SIZE_MAX) {
      throw invalid('page_size', `must be in 1..${LIST_PAGE_SIZE_MAX}`);
    }
    const all = this.k.principals.allTenants().sort((a, b) => a.name.localeCompare(b.name));
    const start = pageToken === '' ? 0 : all.findIndex((t) => t.name > pageToken);
    if (pageToken !== '' && start < 0) return { tenants: [], next: '' };
    const page = all.slice(start, start + size);
    const next = start + size < all.length ? page[page.length - 1]!.name : '';
    return { tenants: page, next };
  }

  /** @throws NOT_FOUND, INVALID_ARGUMENT */
  async update(
    ref: string,
    tierName: string,
    weight: number,
    quota: Partial<Quota>,
  ): Promise<Tenant> {
    const t = this.find(ref);
    const tier = this.parseTier(tierName, 'tier', t.tier);
    const overrides: Partial<Quota> = { ...t.quotaOverrides };
    for (const k of Object.keys(QUOTA_CEILING) as (keyof Quota)[]) {
      const v = quota[k];
      if (v === undefined || v === 0) continue;
      if (!Number.isInteger(v) || v < 0)
        throw invalid(`quota.${snake(k)}`, 'must be a positive integer');
      if (v > QUOTA_CEILING[k]) {
        throw invalid(`quota.${snake(k)}`, `exceeds the compiled-in maximum ${QUOTA_CEILING[k]}`);
      }
      overrides[k] = v;
    }
    const next: Tenant = {
      ...t,
      tier,
      weight: weight === 0 ? t.weight : this.parseWeight(weight, 'weight', tier),
      quotaOverrides: overrides,
    };
    return this.save(next, 'UpdateTenant', { tier, weight: next.weight, quota: overrides });
  }

  /** `by`: the operator, or the kernel answering an anomaly (`anomalies.ts`). */
  async suspend(ref: string, reason: string, by: Actor = OPERATOR): Promise<Tenant> {
    const t = this.find(ref);
    return this.save(
      { ...t, status: 'suspended', suspendReason: reason.slice(0, 500) },
      'SuspendTenant',
      { reason },
      by,
    );
  }

  async resume(ref: string): Promise<Tenant> {
    const t = this.find(ref);
    return this.save({ ...t, status: 'active', suspendReason: '' }, 'ResumeTenant');
  }

  private async save(
    t: Tenant,
    action: string,
    detail?: Record<string, unknown>,
    by: Actor = OPERATOR,
  ): Promise<Tenant> {
    const before = this.k.principals.tenant(t.id)!;
    this.k.principals.putTenant(t);
    await this.k.durability.commitOrUndo(
      () => this.k.principals.putTenant(before),
      [{ op: 'put', db: 'tenants', key: t.id, value: t }],
      [auditEvent(by, action, t.id, detail, [t.id])],
    );
    return t;
  }

  /** Closes the tenant's sessions (releasing qubits), revokes its keys, deletes it. */
  async delete(
    ref: string,
  ): Promise<{ sessions: number; keys: number; dataKeyDestroyed: boolean }> {
    await this.k.durability.waitForCheckpoint();
    const t = this.find(ref);
    const keys = this.k.principals.credentialsOf(t.id);
    const sessions = this.k.table.sessionIdsOf(t.id).map((id) => this.k.table.session(id)!);
    this.k.principals.dropTenant(t);
    await Promise.all(
      sessions.map((s) => this.k.sessions.invokeClose(s, OPERATOR, 'CloseSession')),
    );
    for (const c of keys) this.k.principals.putCredential({ ...c, revoked: true });
    await this.k.durability.commitOrUndo(
      () => {
        this.k.principals.putTenant(t);
        for (const c of keys) this.k.principals.putCredential(c);
      },
      [
        { op: 'del', db: 'tenants', key: t.id },
        ...keys.map((c) => ({
          op: 'put' as const,
          db: 'credentials' as const,
          key: c.keyId,
          value: { ...c, revoked: true },
        })),
      ],
      [
        auditEvent(OPERATOR, 'DeleteTenant', t.id, {
          name: t.name,
          sessions: sessions.length,
          keys: keys.length,
        }),
      ],
    );
    // Crypto-shredding: once a checkpoint covers every op-log entry sealed with the tenant's key,
    // the key is destroyed; its jobs, results and snapshots never open again, in any copy.
    await this.k.checkpointNow();
    const dataKeyDestroyed = this.ports.store.shred(t.id);
    return { sessions: sessions.length, keys: keys.length, dataKeyDestroyed };
  }

  async createKey(ref: string, roles: readonly string[], label: string): Promise<IssuedKey> {
    const t = this.find(ref);
    const live = this.k.principals.credentialsOf(t.id).filter((c) => !c.revoked);
    if (live.length >= API_KEYS_PER_TENANT_MAX) {
      throw new KernelError(
        'LIMIT_EXCEEDED',
        `api_keys: ${API_KEYS_PER_TENANT_MAX} live keys`,
        'api_keys',
      );
    }
    const key = this.newKey(t.id, this.parseRoles(roles, 'roles'), label.slice(0, 200));
    this.k.principals.putCredential(key.credential);
    await this.k.durability.commitOrUndo(
      () => this.k.principals.dropCredential(key.credential),
      [{ op: 'put', db: 'credentials', key: key.credential.keyId, value: key.credential }],
      [
        auditEvent(
          OPERATOR,
          'CreateApiKey',
          key.credential.keyId,
          { tenant: t.id, roles: key.credential.roles },
          [t.id],
        ),
      ],
    );
    return key;
  }

  listKeys(ref: string): Credential[] {
    const t = this.find(ref);
    return this.k.principals.credentialsOf(t.id);
  }

  /** Takes effect on the key's next call. @throws NOT_FOUND */
  async revokeKey(keyId: string): Promise<Credential> {
    const c = this.k.principals.credential(keyId);
    if (!c) throw new KernelError('NOT_FOUND', `key_id: no key ${quote(keyId)}`, 'key_id');
    const next = { ...c, revoked: true };
    this.k.principals.putCredential(next);
    await this.k.durability.commitOrUndo(
      () => this.k.principals.putCredential(c),
      [{ op: 'put', db: 'credentials', key: keyId, value: next }],
      [auditEvent(OPERATOR, 'RevokeApiKey', keyId, { tenant: c.tenantId }, [c.tenantId])],
    );
    return next;
  }

  /**
   * New active signing key. Handles signed by the previous key keep verifying for `graceSeconds`
   * (default: the longest session lifetime, so no live handle breaks), or stop now.
   */
  signingKeys(): SigningKeyInfo[] {
    return this.ports.signer.keys(this.ports.clock.nowMs());
  }

  async rotateSigningKey(
    graceSeconds: number,
    retireNow: boolean,
  ): Promise<{ active: SigningKeyInfo; keys: SigningKeyInfo[] }> {
    if (!Number.isInteger(graceSeconds) || graceSeconds < 0) {
      throw invalid('grace_seconds', 'must be a non-negative integer');
    }
    const grace = retireNow
      ? 0
      : (graceSeconds === 0 ? SESSION_TTL_SECONDS_MAX : graceSeconds) * 1000;
    const now = this.ports.clock.nowMs();
    const { records, active } = this.ports.signer.rotate(now, grace);
    // Handles may be signed with the new key before the write is durable: a failed write cannot
    // be taken back, so it restarts the daemon (see Kernel.commitEffects).
    await this.k.durability.commitEffects(records, [
      auditEvent(OPERATOR, 'RotateSigningKey', String(active.keyId), { grace_ms: grace }),
    ]);
    return { active, keys: this.ports.signer.keys(now) };
  }

  quotaOf(t: Tenant): Quota {
    return effectiveQuota(t.tier, t.quotaOverrides);
  }

  /** Signs an evidence report's digest with the active signing key (`evidence.ts`); audited. */
  async signEvidence(
    digest: Uint8Array,
  ): Promise<{ keyId: number; payload: Buffer; signature: Uint8Array; atMs: number }> {
    const payload = evidencePayload(digest);
    const keyId = this.ports.signer.activeKeyId();
    const signature = this.ports.signer.sign(payload);
    await this.k.durability.commitOrUndo(
      () => {},
      [],
      [
        auditEvent(OPERATOR, 'SignEvidence', Buffer.from(digest).toString('hex'), {
          key_id: keyId,
        }),
      ],
    );
    return { keyId, payload, signature, atMs: this.ports.clock.nowMs() };
  }
}

function snake(k: string): string {
  return k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
