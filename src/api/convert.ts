/**
 * Enum and record conversions between the wire (proto-loader objects, enums as names) and the
 * kernel's words. Layer: api. No policy: unknown names pass through unchanged so the kernel's
 * validation names the field.
 */
import type { Principal, Quota, Role, Tenant, Tier } from '../kernel/model.js';
import type { TenantPrincipal } from '../kernel/principals.js';

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
export const tierToWire = (t: Tier): string => `TIER_${t.toUpperCase()}`;
export const roleFromWire = (v: unknown): string => strip('ROLE_')(v).toLowerCase();
export const roleToWire = (r: Role): string => `ROLE_${r.toUpperCase()}`;

export interface WireQuota {
  qubits_live_max: number;
  qubits_per_cluster_max: number;
  state_bytes_max: number;
  sessions_max: number;
  session_ttl_seconds_max: number;
  gates_per_call_max: number;
  jobs_queued_max: number;
  jobs_running_max: number;
  job_runtime_seconds_max: number;
  program_nodes_max: number;
  shots_per_job_max: number;
  api_calls_per_minute: number;
  jobs_per_minute: number;
  allocations_per_minute: number;
  measurements_per_second: number;
  calls_in_flight_max: number;
}

export function quotaToWire(q: Quota): WireQuota {
  return {
    qubits_live_max: q.qubitsLiveMax,
    qubits_per_cluster_max: q.qubitsPerClusterMax,
    state_bytes_max: q.stateBytesMax,
    sessions_max: q.sessionsMax,
    session_ttl_seconds_max: q.sessionTtlSecondsMax,
    gates_per_call_max: q.gatesPerCallMax,
    jobs_queued_max: q.jobsQueuedMax,
    jobs_running_max: q.jobsRunningMax,
    job_runtime_seconds_max: q.jobRuntimeSecondsMax,
    program_nodes_max: q.programNodesMax,
    shots_per_job_max: q.shotsPerJobMax,
    api_calls_per_minute: q.apiCallsPerMinute,
    jobs_per_minute: q.jobsPerMinute,
    allocations_per_minute: q.allocationsPerMinute,
    measurements_per_second: q.measurementsPerSecond,
    calls_in_flight_max: q.callsInFlightMax,
  };
}

export function quotaFromWire(w: Partial<WireQuota> | null | undefined): Partial<Quota> {
  if (!w) return {};
  return {
    qubitsLiveMax: Number(w.qubits_live_max ?? 0),
    qubitsPerClusterMax: Number(w.qubits_per_cluster_max ?? 0),
    stateBytesMax: Number(w.state_bytes_max ?? 0),
    sessionsMax: Number(w.sessions_max ?? 0),
    sessionTtlSecondsMax: Number(w.session_ttl_seconds_max ?? 0),
    gatesPerCallMax: Number(w.gates_per_call_max ?? 0),
    jobsQueuedMax: Number(w.jobs_queued_max ?? 0),
    jobsRunningMax: Number(w.jobs_running_max ?? 0),
    jobRuntimeSecondsMax: Number(w.job_runtime_seconds_max ?? 0),
    programNodesMax: Number(w.program_nodes_max ?? 0),
    shotsPerJobMax: Number(w.shots_per_job_max ?? 0),
    apiCallsPerMinute: Number(w.api_calls_per_minute ?? 0),
    jobsPerMinute: Number(w.jobs_per_minute ?? 0),
    allocationsPerMinute: Number(w.allocations_per_minute ?? 0),
    measurementsPerSecond: Number(w.measurements_per_second ?? 0),
    callsInFlightMax: Number(w.calls_in_flight_max ?? 0),
  };
}

export function tenantToWire(t: Tenant, quota: Quota) {
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
