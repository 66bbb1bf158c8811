/**
 * Every quota field, described once: its name in the kernel's model, its name on the wire
 * (`qmk.v1.Quota`, snake_case; `qmkctl tenant update` spells it in kebab-case as a flag), and the
 * largest value the wire carries. Layer: kernel (pure data). The model's `Quota` type, the wire
 * conversions and qmkctl's flags and display are all driven from this table, so a new limit is
 * one line here (and its value in the tier table).
 */

const UINT32_MAX = 2 ** 32 - 1;

export const QUOTA_FIELDS = [
  { key: 'qubitsLiveMax', wire: 'qubits_live_max', wireMax: UINT32_MAX },
  { key: 'qubitsPerClusterMax', wire: 'qubits_per_cluster_max', wireMax: UINT32_MAX },
  { key: 'stateBytesMax', wire: 'state_bytes_max', wireMax: Number.MAX_SAFE_INTEGER },
  { key: 'sessionsMax', wire: 'sessions_max', wireMax: UINT32_MAX },
  { key: 'sessionTtlSecondsMax', wire: 'session_ttl_seconds_max', wireMax: UINT32_MAX },
  { key: 'gatesPerCallMax', wire: 'gates_per_call_max', wireMax: UINT32_MAX },
  { key: 'jobsQueuedMax', wire: 'jobs_queued_max', wireMax: UINT32_MAX },
  { key: 'jobsRunningMax', wire: 'jobs_running_max', wireMax: UINT32_MAX },
  { key: 'jobRuntimeSecondsMax', wire: 'job_runtime_seconds_max', wireMax: UINT32_MAX },
  { key: 'programNodesMax', wire: 'program_nodes_max', wireMax: UINT32_MAX },
  { key: 'shotsPerJobMax', wire: 'shots_per_job_max', wireMax: UINT32_MAX },
  { key: 'apiCallsPerMinute', wire: 'api_calls_per_minute', wireMax: UINT32_MAX },
  { key: 'jobsPerMinute', wire: 'jobs_per_minute', wireMax: UINT32_MAX },
  { key: 'allocationsPerMinute', wire: 'allocations_per_minute', wireMax: UINT32_MAX },
  { key: 'measurementsPerSecond', wire: 'measurements_per_second', wireMax: UINT32_MAX },
  { key: 'callsInFlightMax', wire: 'calls_in_flight_max', wireMax: UINT32_MAX },
  { key: 'anomalyWindowSeconds', wire: 'anomaly_window_seconds', wireMax: UINT32_MAX },
  {
    key: 'anomalyFirewallRefusalsMax',
    wire: 'anomaly_firewall_refusals_max',
    wireMax: UINT32_MAX,
  },
  { key: 'anomalyDenialsMax', wire: 'anomaly_denials_max', wireMax: UINT32_MAX },
  { key: 'anomalyQuotaRefusalsMax', wire: 'anomaly_quota_refusals_max', wireMax: UINT32_MAX },
  { key: 'anomalyRateRefusalsMax', wire: 'anomaly_rate_refusals_max', wireMax: UINT32_MAX },
] as const;

export type QuotaField = (typeof QUOTA_FIELDS)[number];
/** A quota field's name in the model (camelCase). */
export type QuotaKey = QuotaField['key'];
/** A quota field's name on the wire (snake_case). */
export type QuotaWireName = QuotaField['wire'];

/** A tenant's effective limits, one number per quota field. */
export type Quota = { [K in QuotaKey]: number };
/** The same limits as the wire names them. */
export type WireQuota = { [K in QuotaWireName]: number };
