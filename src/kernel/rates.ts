/**
 * Per-tenant rate limits as token buckets. Layer: kernel (pure; the clock is passed in).
 * A bucket holds up to `limit` tokens and refills at `limit` per window, so a tenant may spend its
 * whole allowance at once and then proceeds at the steady rate. Each tenant has its own buckets:
 * one tenant's exhaustion never touches another's. Buckets live in memory; a restart refills
 * them (a rate limit protects the machine now, it is not a bill).
 */
import { KernelError } from './errors.js';
import type { Quota } from './model.js';

export type RateKind = 'apiCalls' | 'jobs' | 'allocations' | 'measurements';

export const RATE_WINDOW_MS: Readonly<Record<RateKind, number>> = {
  apiCalls: 60_000,
  jobs: 60_000,
  allocations: 60_000,
  measurements: 1_000,
};

const QUOTA_FIELD: Readonly<Record<RateKind, keyof Quota>> = {
  apiCalls: 'apiCallsPerMinute',
  jobs: 'jobsPerMinute',
  allocations: 'allocationsPerMinute',
  measurements: 'measurementsPerSecond',
};

/** The quota field as the wire and `qmkctl` name it (the refusal's field and QuotaFailure subject). */
export const RATE_WIRE_FIELD: Readonly<Record<RateKind, string>> = {
  apiCalls: 'api_calls_per_minute',
  jobs: 'jobs_per_minute',
  allocations: 'allocations_per_minute',
  measurements: 'measurements_per_second',
};

const WHAT: Readonly<Record<RateKind, string>> = {
  apiCalls: 'API calls',
  jobs: 'job submissions',
  allocations: 'qubit allocations',
  measurements: 'measurements',
};

export interface Bucket {
  tokens: number;
  atMs: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  /**
   * Takes `n` tokens of the tenant's `kind` bucket, or refuses without taking any.
   * @throws QUOTA_EXCEEDED with the delay after which the same call would pass (none when `n` is
   *   more than the whole allowance)
   */
  take(tenantId: string, kind: RateKind, n: number, quota: Quota, nowMs: number): void {
    this.check(tenantId, kind, n, quota, nowMs).tokens -= n;
  }

  /**
   * Refuses as `take` would, but takes nothing: a call checks its rate before costly work and
   * takes the tokens only once it is decided, so a refused request costs none.
   * @throws QUOTA_EXCEEDED as `take`
   */
  check(tenantId: string, kind: RateKind, n: number, quota: Quota, nowMs: number): Bucket {
    const limit = quota[QUOTA_FIELD[kind]];
    const perMs = limit / RATE_WINDOW_MS[kind];
    const key = `${kind}\u0000${tenantId}`;
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: limit, atMs: nowMs };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(limit, b.tokens + Math.max(0, nowMs - b.atMs) * perMs);
    b.atMs = nowMs;
    if (b.tokens >= n) return b;
    const field = RATE_WIRE_FIELD[kind];
    const per = kind === 'measurements' ? 'second' : 'minute';
    if (n > limit) {
      throw new KernelError(
        'QUOTA_EXCEEDED',
        `${field}: ${n} ${WHAT[kind]} in one call is more than the ${limit} allowed per ${per}`,
        field,
      );
    }
    const retryMs = Math.ceil((n - b.tokens) / perMs);
    throw new KernelError(
      'QUOTA_EXCEEDED',
      `${field}: more than ${limit} ${WHAT[kind]} per ${per}; retry in ${retryMs} ms`,
      field,
      [],
      retryMs,
    );
  }

  /** Forgets a tenant's buckets (tenant deleted). */
  forget(tenantId: string): void {
    for (const kind of Object.keys(RATE_WINDOW_MS)) this.buckets.delete(`${kind}\u0000${tenantId}`);
  }
}
