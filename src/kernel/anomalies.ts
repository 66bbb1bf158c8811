/**
 * Anomaly detection and response: every refused call is counted per tenant in sliding windows,
 * one count per kind of refusal (firewall, denials, quota, rates); past the tenant's threshold
 * for that kind (its quota's `anomaly_*` fields) the kernel records an anomaly — audited as
 * `Anomaly`, logged, counted in metrics — and answers it as the daemon is configured for that
 * type: record only, throttle (the tenant's rates divided by `THROTTLE_RATE_DIVISOR` for a
 * period), or suspend (as `tenant suspend` does, with the reason shown to the tenant). Failed
 * authentications have no tenant: they are counted per peer address (and only recorded; the
 * failed-authentication throttle already slows the address down). Layer: kernel.
 *
 * Also here: refusals of authorization and quota are audited, bounded — the first of each
 * (tenant, method, code) in a `REFUSAL_AUDIT_WINDOW_MS` window is a record at once, the rest are
 * counted and summed into one record when the window closes, so a flood of refusals costs a few
 * records per window. (Firewall refusals are audited one by one where they are decided, and a
 * tenant probing the firewall is answered here.)
 */
import { auditEvent } from './actors.js';
import { type ErrorCode, FIREWALL_CODES } from './errors.js';
import { effectiveQuota } from './limits.js';
import type { Principal, Quota, Tenant } from './model.js';
import type { AuditEvent, ClockPort } from './ports.js';
import type { TenantPrincipal } from './principals.js';

export const ANOMALY_TYPES = [
  'firewall_probing',
  'denial_probing',
  'quota_pressure',
  'rate_flooding',
  'auth_failures',
] as const;
export type AnomalyType = (typeof ANOMALY_TYPES)[number];

export const ANOMALY_RESPONSES = ['record', 'throttle', 'suspend'] as const;
export type AnomalyResponse = (typeof ANOMALY_RESPONSES)[number];

export type Severity = 'low' | 'medium' | 'high';

export const ANOMALY_SEVERITY: Readonly<Record<AnomalyType, Severity>> = {
  firewall_probing: 'high',
  denial_probing: 'medium',
  auth_failures: 'medium',
  quota_pressure: 'low',
  rate_flooding: 'low',
};

/** What the daemon does about each type unless configured otherwise (`--anomaly-responses`). */
export const DEFAULT_ANOMALY_RESPONSES: Readonly<Record<AnomalyType, AnomalyResponse>> = {
  firewall_probing: 'suspend',
  denial_probing: 'throttle',
  quota_pressure: 'record',
  rate_flooding: 'throttle',
  auth_failures: 'record',
};

/** Failed authentications from one address within `AUTH_ANOMALY_WINDOW_MS` that make an anomaly. */
export const AUTH_FAILURES_ANOMALY_MAX = 100;
export const AUTH_ANOMALY_WINDOW_MS = 60_000;
/** A throttled tenant's rates (calls, jobs, allocations, measurements per period) are divided by this. */
export const THROTTLE_RATE_DIVISOR = 10;
/** How long a throttle lasts unless configured otherwise (`--anomaly-throttle-seconds`). */
export const ANOMALY_THROTTLE_SECONDS = 300;
/** Refusals of one (tenant, method, code) are audited once per window, the rest summed. */
export const REFUSAL_AUDIT_WINDOW_MS = 10_000;

/** Firewall probing: the firewall's refusals, and answering a channel request not one's own. */
const PROBING_CODES: readonly ErrorCode[] = [...FIREWALL_CODES, 'CHANNEL_WRONG_TENANTS'];
const DENIAL_CODES: readonly ErrorCode[] = [
  'HANDLE_INVALID',
  'HANDLE_EXPIRED',
  'HANDLE_KEY_UNKNOWN',
  'HANDLE_KEY_RETIRED',
  'HANDLE_WRONG_KIND',
  'RIGHTS_INSUFFICIENT',
  'RIGHTS_WIDEN',
  'CAP_MISSING',
  'ROLE_FORBIDDEN',
  'NOT_FOUND',
];
const AUTH_CODES = new Set(['CREDENTIAL_MISSING', 'CREDENTIAL_INVALID', 'CREDENTIAL_REVOKED']);
/** Quota refusals that are rates (or calls in flight): their own anomaly type. */
const RATE_FIELDS = new Set([
  'api_calls_per_minute',
  'jobs_per_minute',
  'allocations_per_minute',
  'measurements_per_second',
  'calls_in_flight_max',
]);
const TYPE_OF_CODE: ReadonlyMap<string, AnomalyType> = new Map([
  ...PROBING_CODES.map((c) => [c, 'firewall_probing'] as const),
  ...DENIAL_CODES.map((c) => [c, 'denial_probing'] as const),
  ['LIMIT_EXCEEDED', 'quota_pressure'],
]);

/**
 * The anomaly type a refusal counts toward, or null (not a refusal anomalies look at). `tenant`:
 * whether the caller was authenticated (a failed authentication has no tenant).
 */
export function anomalyTypeOf(code: string, field: string, tenant: boolean): AnomalyType | null {
  if (!tenant) {
    const auth = AUTH_CODES.has(code) || field === 'failed_authentications_per_minute';
    return auth ? 'auth_failures' : null;
  }
  if (code === 'QUOTA_EXCEEDED') return RATE_FIELDS.has(field) ? 'rate_flooding' : 'quota_pressure';
  return TYPE_OF_CODE.get(code) ?? null;
}

/** The quota field holding a tenant's threshold for each type it has one for. */
const THRESHOLD: Readonly<Record<Exclude<AnomalyType, 'auth_failures'>, keyof Quota>> = {
  firewall_probing: 'anomalyFirewallRefusalsMax',
  denial_probing: 'anomalyDenialsMax',
  quota_pressure: 'anomalyQuotaRefusalsMax',
  rate_flooding: 'anomalyRateRefusalsMax',
};

/** Slots of a sliding window: it moves on in tenths of its length. */
const SLOTS = 10;

const slotIndex = (slot: number): number => ((slot % SLOTS) + SLOTS) % SLOTS;

/** A count over the last `windowMs`, kept in `SLOTS` slots (memory does not grow with the count). */
export class WindowCount {
  private readonly slots = new Float64Array(SLOTS);
  /** The absolute slot number of the newest slot. */
  private newest = Number.NEGATIVE_INFINITY;
  private windowMs = 0;

  /** Adds `n` at `nowMs`; returns the count over the window ending now. */
  add(nowMs: number, windowMs: number, n = 1): number {
    if (windowMs !== this.windowMs) {
      this.slots.fill(0);
      this.windowMs = windowMs;
      this.newest = Number.NEGATIVE_INFINITY;
    }
    const slot = Math.floor(nowMs / (windowMs / SLOTS));
    if (slot > this.newest) {
      // The slots between the newest and now start empty (at most a window's worth to clear).
      for (let s = Math.max(this.newest + 1, slot - SLOTS + 1); s <= slot; s++) {
        this.slots[slotIndex(s)] = 0;
      }
      this.newest = slot;
    }
    // A time before the newest (the clock stepped back) still counts if it is in the window.
    if (slot > this.newest - SLOTS) this.slots[slotIndex(slot)]! += n;
    let total = 0;
    for (const v of this.slots) total += v;
    return total;
  }

  /** True when nothing was counted in the window ending at `nowMs`. */
  idle(nowMs: number): boolean {
    return (
      this.windowMs === 0 || Math.floor(nowMs / (this.windowMs / SLOTS)) >= this.newest + SLOTS
    );
  }
}

export interface Anomaly {
  type: AnomalyType;
  severity: Severity;
  /** The tenant whose refusals these are; null for failed authentications (see `peer`). */
  tenantId: string | null;
  /** The address of the call that crossed the threshold. */
  peer: string;
  /** Refusals in the window, and the threshold it crossed. */
  count: number;
  threshold: number;
  windowSeconds: number;
  response: AnomalyResponse;
  /** When a throttle ends (0 for other responses). */
  untilMs: number;
}

/** A refused call, as the API layer saw it end. */
export interface Refusal {
  principal: Principal | null;
  peer: string;
  /** The method's short name (e.g. `ApplyGates`). */
  method: string;
  code: string;
  /** The request field the refusal names ('' if none). */
  field: string;
}

export interface AnomalyDeps {
  clock: ClockPort;
  tenant(id: string): Tenant | undefined;
  /** Commits audit records on their own (in the background; a failure is the kernel's divergence). */
  audit(events: AuditEvent[]): void;
  responses: Readonly<Record<AnomalyType, AnomalyResponse>>;
  throttleMs: number;
}

interface PendingRefusals {
  principal: Principal;
  sinceMs: number;
  /** Refusals after the audited one, not yet in a record. */
  pending: number;
}

export class Anomalies {
  /** Counts per `type \0 subject` (a tenant id, or `peer:<address>`). */
  private readonly counts = new Map<string, WindowCount>();
  /** Throttled tenants: until when. */
  private readonly throttled = new Map<string, number>();
  /** The refusal audit's windows per `tenant \0 method \0 code`. */
  private refusals = new Map<string, PendingRefusals>();
  /** Told of each anomaly after it is recorded (metrics, log). */
  readonly listeners: ((a: Anomaly) => void)[] = [];
  /** Suspends a tenant with a reason (main wires the operator's suspend, acting as the kernel). */
  suspend: (tenantId: string, reason: string) => Promise<unknown> = async () => {};

  constructor(private readonly d: AnomalyDeps) {}

  /** A refused call: audited (bounded), counted, and answered once past a threshold. */
  refused(r: Refusal): void {
    const tenant = r.principal?.kind === 'tenant' ? r.principal : null;
    const type = anomalyTypeOf(r.code, r.field, tenant !== null);
    if (type === null) return;
    const now = this.d.clock.nowMs();
    if (tenant !== null && type !== 'firewall_probing') this.auditRefusal(tenant, r, now);
    if (tenant === null) {
      this.count(
        type,
        `peer:${r.peer}`,
        null,
        r.peer,
        AUTH_FAILURES_ANOMALY_MAX,
        AUTH_ANOMALY_WINDOW_MS,
        now,
      );
      return;
    }
    const t = this.d.tenant(tenant.tenantId);
    if (!t) return;
    const quota = effectiveQuota(t.tier, t.quotaOverrides);
    const windowMs = quota.anomalyWindowSeconds * 1000;
    this.count(
      type,
      t.id,
      t.id,
      r.peer,
      quota[THRESHOLD[type as keyof typeof THRESHOLD]],
      windowMs,
      now,
    );
  }

  /** 1, or `THROTTLE_RATE_DIVISOR` while the tenant is throttled. */
  rateDivisor(tenantId: string): number {
    const until = this.throttled.get(tenantId);
    if (until === undefined) return 1;
    if (this.d.clock.nowMs() < until) return THROTTLE_RATE_DIVISOR;
    this.throttled.delete(tenantId);
    return 1;
  }

  /**
   * Periodic upkeep (the daemon's sweep): refusal windows that closed with refusals not yet
   * recorded get their summing record; idle counters and ended throttles are forgotten.
   */
  sweep(): void {
    const now = this.d.clock.nowMs();
    const events: AuditEvent[] = [];
    for (const [key, w] of this.refusals) {
      if (now - w.sinceMs < REFUSAL_AUDIT_WINDOW_MS) continue;
      if (w.pending > 0) events.push(this.refusalEvent(w.principal, key, { count: w.pending }));
      this.refusals.delete(key);
    }
    if (events.length > 0) this.d.audit(events);
    for (const [key, c] of this.counts) if (c.idle(now)) this.counts.delete(key);
    for (const [id, until] of this.throttled) if (now >= until) this.throttled.delete(id);
  }

  private auditRefusal(p: TenantPrincipal, r: Refusal, now: number): void {
    const key = `${p.tenantId}\u0000${r.method}\u0000${r.code}\u0000${r.field}`;
    const w = this.refusals.get(key);
    if (w !== undefined && now - w.sinceMs < REFUSAL_AUDIT_WINDOW_MS) {
      w.pending++;
      return;
    }
    const events: AuditEvent[] = [];
    // A window that closed with refusals not yet recorded: their sum goes first.
    if (w !== undefined && w.pending > 0)
      events.push(this.refusalEvent(w.principal, key, { count: w.pending }));
    events.push(this.refusalEvent(p, key, { count: 1 }));
    this.refusals.set(key, { principal: p, sinceMs: now, pending: 0 });
    this.d.audit(events);
  }

  /** The record of `count` refusals of one kind (the key's method, code and field). */
  private refusalEvent(p: Principal, key: string, detail: { count: number }): AuditEvent {
    const [, method, code, field] = key.split('\u0000') as [string, string, string, string];
    const event = auditEvent(p, method, field === '' ? 'refused' : field, {
      ...detail,
      window_seconds: REFUSAL_AUDIT_WINDOW_MS / 1000,
    });
    return { ...event, outcome: `denied:${code}` };
  }

  private count(
    type: AnomalyType,
    subject: string,
    tenantId: string | null,
    peer: string,
    threshold: number,
    windowMs: number,
    now: number,
  ): void {
    let c = this.counts.get(`${type}\u0000${subject}`);
    if (!c) {
      c = new WindowCount();
      this.counts.set(`${type}\u0000${subject}`, c);
    }
    const count = c.add(now, windowMs);
    if (count < threshold) return;
    // Counted afresh from here: the next anomaly of this kind needs a threshold's worth again.
    this.counts.delete(`${type}\u0000${subject}`);
    const wanted = this.d.responses[type];
    const response: AnomalyResponse = tenantId === null ? 'record' : wanted;
    const untilMs = response === 'throttle' ? now + this.d.throttleMs : 0;
    const anomaly: Anomaly = {
      type,
      severity: ANOMALY_SEVERITY[type],
      tenantId,
      peer,
      count,
      threshold,
      windowSeconds: windowMs / 1000,
      response,
      untilMs,
    };
    this.respond(anomaly);
  }

  private respond(a: Anomaly): void {
    const detail = {
      type: a.type,
      severity: a.severity,
      count: a.count,
      threshold: a.threshold,
      window_seconds: a.windowSeconds,
      response: a.response,
      peer: a.peer,
      ...(a.untilMs > 0 ? { until_unix_ms: a.untilMs } : {}),
    };
    const target = a.tenantId ?? `peer:${a.peer}`;
    this.d.audit([auditEvent('kernel', 'Anomaly', target, detail, a.tenantId ? [a.tenantId] : [])]);
    if (a.response === 'throttle' && a.tenantId !== null) this.throttled.set(a.tenantId, a.untilMs);
    if (a.response === 'suspend' && a.tenantId !== null) {
      void this.suspend(
        a.tenantId,
        `anomaly ${a.type}: ${a.count} refusals in ${a.windowSeconds} s (threshold ${a.threshold}); an operator may resume the tenant`,
      );
    }
    for (const l of this.listeners) l(a);
  }
}
