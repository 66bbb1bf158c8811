/**
 * Who may call: tenants and their API keys, authentication of a bearer key, and admission of a
 * call (calls in flight, rate limits). Layer: kernel. Owns the tenant and credential tables; other
 * units read them through the methods here, never the maps.
 */
import assert from 'node:assert';
import { FailedAuthThrottle } from './auth-throttle.js';
import { KernelError } from './errors.js';
import { TIER_DEFAULTS, effectiveQuota } from './limits.js';
import type { Credential, Principal, Quota, Tenant } from './model.js';
import type { ClockPort, CryptoPort } from './ports.js';
import { type RateKind, RateLimiter } from './rates.js';

export type TenantPrincipal = Extract<Principal, { kind: 'tenant' }>;

const API_KEY_PATTERN = /^qmk_[A-Za-z0-9_-]{43}$/;
/** What counts as a failed authentication (a suspended tenant's valid key does not). */
const FAILED_AUTH_CODES: ReadonlySet<string> = new Set([
  'CREDENTIAL_MISSING',
  'CREDENTIAL_INVALID',
  'CREDENTIAL_REVOKED',
]);

/** The rates a throttle lowers. */
const THROTTLED_RATES = [
  'apiCallsPerMinute',
  'jobsPerMinute',
  'allocationsPerMinute',
  'measurementsPerSecond',
] as const;

export class Principals {
  private readonly tenants = new Map<string, Tenant>();
  private readonly tenantsByName = new Map<string, Tenant>();
  private readonly credentials = new Map<string, Credential>(); // by key id
  private readonly credentialsByHash = new Map<string, Credential>();
  private readonly rates = new RateLimiter();
  private readonly callsInFlight = new Map<string, number>();
  private readonly failedAuth = new FailedAuthThrottle();

  constructor(
    private readonly clock: ClockPort,
    private readonly crypto: CryptoPort,
    tenants: readonly Tenant[] = [],
    credentials: readonly Credential[] = [],
    /** What a tenant's rates are divided by now (a throttled tenant's: see `anomalies.ts`). */
    private readonly rateDivisor: (tenantId: string) => number = () => 1,
    /** Told once when a peer address runs out of failed authentications (to audit it). */
    private readonly onAuthThrottled: (peer: string) => void = () => {},
  ) {
    for (const t of tenants) this.putTenant(t);
    for (const c of credentials) this.putCredential(c);
  }

  tenant(id: string): Tenant | undefined {
    return this.tenants.get(id);
  }

  tenantByName(name: string): Tenant | undefined {
    return this.tenantsByName.get(name);
  }

  get tenantCount(): number {
    return this.tenants.size;
  }

  allTenants(): Tenant[] {
    return [...this.tenants.values()];
  }

  credential(keyId: string): Credential | undefined {
    return this.credentials.get(keyId);
  }

  credentialsOf(tenantId: string): Credential[] {
    return [...this.credentials.values()].filter((c) => c.tenantId === tenantId);
  }

  putTenant(t: Tenant): void {
    const old = this.tenants.get(t.id);
    if (old) this.tenantsByName.delete(old.name);
    this.tenants.set(t.id, t);
    this.tenantsByName.set(t.name, t);
  }

  dropTenant(t: Tenant): void {
    this.tenants.delete(t.id);
    this.tenantsByName.delete(t.name);
  }

  putCredential(c: Credential): void {
    this.credentials.set(c.keyId, c);
    this.credentialsByHash.set(c.secretHash, c);
  }

  dropCredential(c: Credential): void {
    this.credentials.delete(c.keyId);
    this.credentialsByHash.delete(c.secretHash);
  }

  /**
   * Turns a bearer API key into a principal.
   * @throws CREDENTIAL_MISSING, CREDENTIAL_INVALID, CREDENTIAL_REVOKED, TENANT_SUSPENDED
   */
  authenticate(apiKey: string | undefined): TenantPrincipal {
    if (apiKey === undefined || apiKey === '') {
      throw new KernelError('CREDENTIAL_MISSING', 'authorization: missing "Bearer <api key>"');
    }
    if (!API_KEY_PATTERN.test(apiKey)) {
      throw new KernelError('CREDENTIAL_INVALID', 'authorization: not an API key');
    }
    const cred = this.credentialsByHash.get(this.crypto.sha256Hex(apiKey));
    if (!cred) throw new KernelError('CREDENTIAL_INVALID', 'authorization: unknown API key');
    if (cred.revoked) throw new KernelError('CREDENTIAL_REVOKED', 'authorization: key revoked');
    const tenant = this.tenants.get(cred.tenantId);
    if (!tenant) throw new KernelError('CREDENTIAL_INVALID', 'authorization: unknown API key');
    if (tenant.status === 'suspended') {
      throw new KernelError(
        'TENANT_SUSPENDED',
        `tenant suspended: ${tenant.suspendReason || 'no reason given'}`,
      );
    }
    return { kind: 'tenant', tenantId: tenant.id, keyId: cred.keyId, roles: cred.roles };
  }

  /**
   * `authenticate` for a call from the address `peer`, with failed attempts throttled per address
   * (`auth-throttle.ts`): past the burst a failure is answered QUOTA_EXCEEDED, not with its
   * credential error; a valid key always passes.
   * @throws what `authenticate` throws, or QUOTA_EXCEEDED (failed_authentications_per_minute,
   *   with the retry delay) in place of a credential error
   */
  authenticateFrom(peer: string, apiKey: string | undefined): TenantPrincipal {
    try {
      return this.authenticate(apiKey);
    } catch (err) {
      if (!(err instanceof KernelError) || !FAILED_AUTH_CODES.has(err.code)) throw err;
      const { report, refusal } = this.failedAuth.failed(peer, this.clock.nowMs());
      if (report) this.onAuthThrottled(peer);
      throw refusal ?? err;
    }
  }

  /**
   * Counts a tenant call in flight until the returned release (idempotent) is called; one past the
   * tenant's limit is refused at once, so a flooding tenant is turned away, not queued.
   * @throws QUOTA_EXCEEDED
   */
  enterCall(p: Principal): () => void {
    if (p.kind !== 'tenant') return () => {};
    const tenant = this.tenantOf(p);
    const n = this.callsInFlight.get(tenant.id) ?? 0;
    const limit = this.quotaOf(tenant).callsInFlightMax;
    if (n >= limit) {
      throw new KernelError(
        'QUOTA_EXCEEDED',
        `calls_in_flight_max: ${n} calls of this tenant in flight (limit ${limit})`,
        'calls_in_flight_max',
      );
    }
    this.callsInFlight.set(tenant.id, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.callsInFlight.get(tenant.id) ?? 1) - 1;
      if (left === 0) this.callsInFlight.delete(tenant.id);
      else this.callsInFlight.set(tenant.id, left);
    };
  }

  /** Every tenant call takes one token of its tenant's API-call rate. @throws QUOTA_EXCEEDED */
  admitCall(p: Principal): void {
    if (p.kind === 'tenant') this.takeRate(p, 'apiCalls', 1);
  }

  /** Takes `n` of the tenant's `kind` rate, or refuses with the retry delay. @throws QUOTA_EXCEEDED */
  takeRate(p: TenantPrincipal, kind: RateKind, n: number): void {
    const tenant = this.tenantOf(p);
    this.rates.take(tenant.id, kind, n, this.quotaOf(tenant), this.clock.nowMs());
  }

  /** Refuses as `takeRate` would without taking (check first, take once decided). @throws QUOTA_EXCEEDED */
  checkRate(p: TenantPrincipal, kind: RateKind, n: number): void {
    const tenant = this.tenantOf(p);
    this.rates.check(tenant.id, kind, n, this.quotaOf(tenant), this.clock.nowMs());
  }

  tenantOf(p: TenantPrincipal): Tenant {
    const t = this.tenants.get(p.tenantId);
    assert(t, 'authenticated tenant exists');
    return t;
  }

  /** The tenant's limits now: its quota, with its rates lowered while it is throttled. */
  quotaOf(t: Tenant): Quota {
    const q = effectiveQuota(t.tier, t.quotaOverrides);
    const divisor = this.rateDivisor(t.id);
    if (divisor === 1) return q;
    for (const k of THROTTLED_RATES) q[k] = Math.max(1, Math.floor(q[k] / divisor));
    return q;
  }

  /** A tenant's scheduling weight: its own, else its tier's. */
  weightOf(tenantId: string): number {
    const tenant = this.tenants.get(tenantId);
    return tenant ? tenant.weight || TIER_DEFAULTS[tenant.tier].weight : 1;
  }

  /** A tenant's name, quoted, for messages (its id when it is gone). */
  tenantName(id: string): string {
    return JSON.stringify(this.tenants.get(id)?.name ?? id);
  }
}
