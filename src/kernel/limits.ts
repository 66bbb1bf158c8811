/**
 * Compiled-in limits and tier defaults. Layer: kernel (pure).
 * Limits put the subject first and the unit and qualifier last, so related limits sort together.
 * Configuration and operator overrides may lower a maximum here, never raise it (checked in
 * `effectiveQuota`).
 */
import assert from 'node:assert';
import type { Cap, Quota, Role, Tier } from './model.js';

/** A cluster of n qubits holds 2^n complex doubles = 16·2^n bytes: 26 qubits is 1 GiB. */
export const QUBITS_PER_CLUSTER_MAX = 26;
export const STATE_BYTES_PER_AMPLITUDE = 16;
export const STATE_BYTES_MAX = STATE_BYTES_PER_AMPLITUDE * 2 ** QUBITS_PER_CLUSTER_MAX;
/** Live qubits one tenant may hold (handles and bookkeeping, not state: that is bytes-limited). */
export const QUBITS_LIVE_PER_TENANT_MAX = 4096;
export const QUBITS_PER_ALLOCATION_MAX = 1024;
export const SESSIONS_PER_TENANT_MAX = 1024;
/** One day: a session handle outliving that is a leak, not a feature. */
export const SESSION_TTL_SECONDS_MAX = 24 * 60 * 60;
export const GATES_PER_CALL_MAX = 4096;
/** Queued jobs of one tenant: beyond it SubmitJob is refused, so one tenant cannot fill memory. */
export const JOBS_QUEUED_PER_TENANT_MAX = 10_000;
/** Running jobs of one tenant: never more than the pool could run at once anyway. */
export const JOBS_RUNNING_PER_TENANT_MAX = 64;
export const JOB_RUNTIME_SECONDS_MAX = 24 * 60 * 60;
/** Program nodes (after OpenQASM expansion); the parsers' own ceiling is the same. */
export const PROGRAM_NODES_MAX = 1 << 16;
export const SHOTS_PER_JOB_MAX = 1_000_000;
/** A job's seed is a decimal unsigned 64-bit integer (the generator takes 64 bits). */
export const SEED_MAX = 2n ** 64n - 1n;
/** Rate ceilings; the free tier's defaults are QMK's (1000 calls/min, 60 jobs/min, 100 allocations/min, 1000 measurements/s). */
export const API_CALLS_PER_MINUTE_MAX = 1_000_000;
export const JOBS_PER_MINUTE_MAX = 60_000;
export const ALLOCATIONS_PER_MINUTE_MAX = 1_000_000;
export const MEASUREMENTS_PER_SECOND_MAX = 1_000_000;
export const CALLS_IN_FLIGHT_PER_TENANT_MAX = 4096;
/** Per-shot outcome strings kept with a result (they cost ~events bytes each). */
export const SHOT_OUTCOMES_KEPT_MAX = 10_000;
/** Finished jobs kept per tenant; older finished ones (and their results) are deleted. */
export const JOBS_RETAINED_PER_TENANT_MAX = 10_000;
export const IDEMPOTENCY_KEY_CHARS_MAX = 128;
/** Physical qubits (by error-correction profile) one job may account for at its peak. */
export const PHYSICAL_QUBITS_PER_JOB_MAX = 100_000_000;
/** Program text (QVM JSON or OpenQASM) bytes; the message limit (4 MiB) is the outer bound. */
export const PROGRAM_SOURCE_BYTES_MAX = 1024 * 1024;
/** Programs up to this size are checked on the main thread (a few ms at most); larger ones on a thread of their own. */
export const PROGRAM_CHECK_INLINE_BYTES_MAX = 4 * 1024;
/** A program's check (parse and verify) off the main thread may take this long... */
export const PROGRAM_CHECK_SECONDS_MAX = 10;
/** ...and this much heap (MiB) on its thread; past either it is refused with LIMIT_EXCEEDED. */
export const PROGRAM_CHECK_HEAP_MB = 512;
export const MEASUREMENTS_PER_CALL_MAX = 1024;
export const HANDLES_PER_RELEASE_MAX = 1024;
export const TENANTS_MAX = 100_000;
export const API_KEYS_PER_TENANT_MAX = 64;
export const TENANT_WEIGHT_MAX = 1000;
export const LIST_PAGE_SIZE_MAX = 1000;
export const LIST_PAGE_SIZE_DEFAULT = 100;
/** Handles are ~180 characters; anything far longer is garbage, refused before decoding. */
export const HANDLE_CHARS_MAX = 512;
export const TENANT_NAME_PATTERN = /^[a-z][a-z0-9-]{1,62}$/;
/** Sweep expired sessions this often. */
export const SESSION_SWEEP_INTERVAL_MS = 5_000;

export const TIERS: readonly Tier[] = ['free', 'pro', 'enterprise'];

/** The longest anomaly window a tenant's quota may set (an hour). */
export const ANOMALY_WINDOW_SECONDS_MAX = 3600;

const BASIC_CAPS: readonly Cap[] = ['CAP_ALLOC', 'CAP_COMPUTE', 'CAP_MEASURE'];

/** The compiled-in ceiling for each quota field: overrides are clamped to it. */
export const QUOTA_CEILING: Readonly<Quota> = {
  qubitsLiveMax: QUBITS_LIVE_PER_TENANT_MAX,
  qubitsPerClusterMax: QUBITS_PER_CLUSTER_MAX,
  stateBytesMax: 2 * STATE_BYTES_MAX,
  sessionsMax: SESSIONS_PER_TENANT_MAX,
  sessionTtlSecondsMax: SESSION_TTL_SECONDS_MAX,
  gatesPerCallMax: GATES_PER_CALL_MAX,
  jobsQueuedMax: JOBS_QUEUED_PER_TENANT_MAX,
  jobsRunningMax: JOBS_RUNNING_PER_TENANT_MAX,
  jobRuntimeSecondsMax: JOB_RUNTIME_SECONDS_MAX,
  programNodesMax: PROGRAM_NODES_MAX,
  shotsPerJobMax: SHOTS_PER_JOB_MAX,
  apiCallsPerMinute: API_CALLS_PER_MINUTE_MAX,
  jobsPerMinute: JOBS_PER_MINUTE_MAX,
  allocationsPerMinute: ALLOCATIONS_PER_MINUTE_MAX,
  measurementsPerSecond: MEASUREMENTS_PER_SECOND_MAX,
  callsInFlightMax: CALLS_IN_FLIGHT_PER_TENANT_MAX,
  anomalyWindowSeconds: ANOMALY_WINDOW_SECONDS_MAX,
  anomalyFirewallRefusalsMax: 100,
  anomalyDenialsMax: 1000,
  anomalyQuotaRefusalsMax: 10_000,
  anomalyRateRefusalsMax: 100_000,
};

/**
 * Qubits a program may use (live at once, and in one cluster) by the key's role; a key with
 * several roles gets the largest. The domain scientist runs small simulator programs only.
 */
export const ROLE_QUBITS_MAX: Readonly<Record<Role, number>> = {
  tenant_admin: Number.POSITIVE_INFINITY, // the tenant's quota is the limit
  researcher: Number.POSITIVE_INFINITY,
  domain_scientist: 20,
};

export function roleQubitsMax(roles: readonly Role[]): number {
  return Math.max(0, ...roles.map((r) => ROLE_QUBITS_MAX[r]));
}

/** Tier defaults. A free tenant gets a 16-qubit cluster (1 MiB of state), enough for teaching. */
export const TIER_DEFAULTS: Readonly<
  Record<Tier, { quota: Quota; weight: number; caps: readonly Cap[] }>
> = {
  free: {
    quota: {
      qubitsLiveMax: 64,
      qubitsPerClusterMax: 16,
      stateBytesMax: 4 * STATE_BYTES_PER_AMPLITUDE * 2 ** 16,
      sessionsMax: 4,
      sessionTtlSecondsMax: 60 * 60,
      gatesPerCallMax: 1024,
      jobsQueuedMax: 64,
      jobsRunningMax: 1,
      jobRuntimeSecondsMax: 60,
      programNodesMax: 10_000,
      shotsPerJobMax: 100_000,
      apiCallsPerMinute: 1000,
      jobsPerMinute: 60,
      allocationsPerMinute: 100,
      measurementsPerSecond: 1000,
      callsInFlightMax: 16,
      anomalyWindowSeconds: 60,
      anomalyFirewallRefusalsMax: 10,
      anomalyDenialsMax: 50,
      anomalyQuotaRefusalsMax: 200,
      anomalyRateRefusalsMax: 1000,
    },
    weight: 1,
    caps: BASIC_CAPS,
  },
  pro: {
    quota: {
      qubitsLiveMax: 512,
      qubitsPerClusterMax: 22,
      stateBytesMax: 4 * STATE_BYTES_PER_AMPLITUDE * 2 ** 22,
      sessionsMax: 64,
      sessionTtlSecondsMax: 8 * 60 * 60,
      gatesPerCallMax: GATES_PER_CALL_MAX,
      jobsQueuedMax: 1024,
      jobsRunningMax: 4,
      jobRuntimeSecondsMax: 10 * 60,
      programNodesMax: 20_000,
      shotsPerJobMax: SHOTS_PER_JOB_MAX,
      apiCallsPerMinute: 100_000,
      jobsPerMinute: 6000,
      allocationsPerMinute: 100_000,
      measurementsPerSecond: 100_000,
      callsInFlightMax: 256,
      anomalyWindowSeconds: 60,
      anomalyFirewallRefusalsMax: 20,
      anomalyDenialsMax: 100,
      anomalyQuotaRefusalsMax: 500,
      anomalyRateRefusalsMax: 5000,
    },
    weight: 3,
    caps: [...BASIC_CAPS, 'CAP_LINK', 'CAP_TELEPORT', 'CAP_MAGIC'],
  },
  enterprise: {
    // Enterprise gets the compiled-in ceiling itself, but the one-minute anomaly window (a wider
    // window counts more refusals: it is no more permissive).
    quota: { ...QUOTA_CEILING, anomalyWindowSeconds: 60 },
    weight: 10,
    caps: [...BASIC_CAPS, 'CAP_LINK', 'CAP_TELEPORT', 'CAP_MAGIC', 'CAP_DEBUG'],
  },
};

for (const tier of TIERS) {
  const q = TIER_DEFAULTS[tier].quota;
  for (const k of Object.keys(q) as (keyof Quota)[])
    assert(q[k] <= QUOTA_CEILING[k], `${tier}.${k}`);
}

/** Tier defaults with the tenant's overrides applied; a zero override keeps the default. */
export function effectiveQuota(tier: Tier, overrides: Partial<Quota>): Quota {
  const base = TIER_DEFAULTS[tier].quota;
  const out = { ...base };
  for (const k of Object.keys(base) as (keyof Quota)[]) {
    const v = overrides[k];
    if (v !== undefined && v > 0) out[k] = Math.min(v, QUOTA_CEILING[k]);
  }
  return out;
}

export function stateBytes(qubits: number): number {
  return STATE_BYTES_PER_AMPLITUDE * 2 ** qubits;
}
