/**
 * JobService adapter: decodes requests, calls the job manager, encodes replies. Layer: api; no
 * policy here (every check is the kernel's). WatchJob is a server stream: the job now, then each
 * change the kernel announces, ending after a terminal state.
 */
import type { JobEstimate, JobView } from '../kernel/job-model.js';
import type { JobManager } from '../kernel/jobs.js';
import type { Violation } from '../kernel/program/ir.js';
import { num, str, strip, tenant } from './convert.js';
import type { CancelJobRequest__Output } from './generated/qmk/v1/CancelJobRequest.js';
import type { GetJobRequest__Output } from './generated/qmk/v1/GetJobRequest.js';
import type { GetJobResultRequest__Output } from './generated/qmk/v1/GetJobResultRequest.js';
import type { Job } from './generated/qmk/v1/Job.js';
import type { JobServiceHandlers } from './generated/qmk/v1/JobService.js';
import type { ListJobsRequest__Output } from './generated/qmk/v1/ListJobsRequest.js';
import type { ResourceEstimate } from './generated/qmk/v1/ResourceEstimate.js';
import type { SubmitJobRequest__Output } from './generated/qmk/v1/SubmitJobRequest.js';
import type { ValidateProgramRequest__Output } from './generated/qmk/v1/ValidateProgramRequest.js';
import type { Violation as WireViolation } from './generated/qmk/v1/Violation.js';
import type { WatchJobRequest__Output } from './generated/qmk/v1/WatchJobRequest.js';
import { type CallTracker, serverStream, unary } from './handler.js';

const FORMAT_TO_WIRE = {
  qvm: 'PROGRAM_FORMAT_QVM_JSON',
  qasm: 'PROGRAM_FORMAT_OPENQASM2',
} as const;

function bindingsFromWire(v: unknown): { name: string; handle: string }[] {
  if (!Array.isArray(v)) return [];
  return v.map((b: { name?: unknown; qubit_handle?: unknown }) => ({
    name: str(b?.name),
    handle: str(b?.qubit_handle),
  }));
}

export function estimateToWire(e: JobEstimate): ResourceEstimate {
  return {
    logical_qubits: e.logicalQubits,
    physical_qubits: e.physicalQubits,
    physical_qubits_by_profile: e.physicalByProfile,
    largest_cluster: e.largestCluster,
    gate_counts: e.gateCounts,
    state_bytes: e.stateBytes,
    nodes: e.nodes,
    sampling: e.sampling,
  };
}

function violationToWire(v: Violation): WireViolation {
  return {
    node: v.node,
    field: v.field,
    rule: v.rule,
    message: v.message,
    warning: v.severity === 'warning',
    code: v.code ?? '',
  };
}

export function jobToWire(j: JobView): Job {
  return {
    job_id: j.id,
    state: `JOB_STATE_${j.state}`,
    format: FORMAT_TO_WIRE[j.format],
    shots: j.shots,
    seed: j.seed,
    idempotency_key: j.idempotencyKey,
    queue_position: j.queuePosition,
    shots_done: j.shotsDone,
    reason: j.reason,
    submitted_at_unix_ms: j.submittedAtMs,
    started_at_unix_ms: j.startedAtMs,
    finished_at_unix_ms: j.finishedAtMs,
    attempts: j.attempts,
    estimate: estimateToWire(j.estimate),
    // Handles are secrets of the caller's session: a job names the bound qubits by id only.
    bindings: j.bindings.map((b) => ({ name: b.name, qubit_handle: '' })),
  };
}

export function jobServiceHandlers(jobs: JobManager, tracker: CallTracker): JobServiceHandlers {
  return {
    SubmitJob: unary(tracker, async (p, r: SubmitJobRequest__Output) => {
      const out = await jobs.submit(tenant(p), {
        format: strip('PROGRAM_FORMAT_')(r.program?.format ?? 'PROGRAM_FORMAT_UNSPECIFIED'),
        source: str(r.program?.source),
        shots: num(r.shots),
        seed: str(r.seed),
        idempotencyKey: str(r.idempotency_key),
        bindings: bindingsFromWire(r.bindings),
        shotOutcomesMax: num(r.shot_outcomes_max),
        strict: r.strict === true,
      });
      return {
        job: jobToWire(out.job),
        deduplicated: out.deduplicated,
        warnings: out.warnings.map(violationToWire),
      };
    }),
    ValidateProgram: unary(tracker, async (p, r: ValidateProgramRequest__Output) => {
      const out = await jobs.programs.validate(
        tenant(p),
        strip('PROGRAM_FORMAT_')(r.program?.format ?? 'PROGRAM_FORMAT_UNSPECIFIED'),
        str(r.program?.source),
        num(r.shots) || 1,
        bindingsFromWire(r.bindings),
        r.strict === true,
      );
      return {
        valid: out.violations.every((v) => v.severity === 'warning' && !r.strict),
        violations: out.violations.map(violationToWire),
        estimate: out.estimate ? estimateToWire(out.estimate) : null,
      };
    }),
    GetJob: unary(tracker, async (p, r: GetJobRequest__Output) => ({
      job: jobToWire(await jobs.get(tenant(p), str(r.job_id))),
    })),
    CancelJob: unary(tracker, async (p, r: CancelJobRequest__Output) => ({
      job: jobToWire(await jobs.cancel(tenant(p), str(r.job_id))),
    })),
    ListJobs: unary(tracker, (p, r: ListJobsRequest__Output) => {
      const out = jobs.list(tenant(p), {
        states: (Array.isArray(r.states) ? r.states : []).map((s) => strip('JOB_STATE_')(s)),
        after: num(r.submitted_after_unix_ms),
        before: num(r.submitted_before_unix_ms),
        pageSize: num(r.page_size),
        pageToken: str(r.page_token),
      });
      return { jobs: out.jobs.map(jobToWire), next_page_token: out.nextPageToken };
    }),
    GetJobResult: unary(tracker, async (p, r: GetJobResultRequest__Output) => {
      const { job, result } = await jobs.result(tenant(p), str(r.job_id));
      return {
        job_id: job.id,
        counts: result.counts,
        bit_order: result.bitOrder,
        key_events: result.keyEvents,
        shot_outcomes: r.include_shot_outcomes ? result.shotOutcomes : [],
        shots: job.shots,
        seed: job.seed,
        sampling: result.sampling,
        engine: result.engine,
        queue_ms: result.queueMs,
        run_ms: result.runMs,
        largest_state_qubits: result.largestState,
      };
    }),
    WatchJob: serverStream(tracker, async (p, r: WatchJobRequest__Output, send, end) => {
      const { current, unsubscribe } = await jobs.watch(tenant(p), str(r.job_id), (job) => {
        send({ job: jobToWire(job) });
        if (job.state === 'DONE' || job.state === 'FAILED' || job.state === 'CANCELLED') end();
      });
      send({ job: jobToWire(current) });
      if (current.state === 'DONE' || current.state === 'FAILED' || current.state === 'CANCELLED')
        end();
      return unsubscribe;
    }),
  };
}
