/**
 * What a job is, as stored and as shown: its record, states, result and view. Layer: kernel
 * (types and constants only). Why apart from `jobs.ts`: the ports (the store loads job records)
 * and the API adapters need these shapes without the job manager, and importing them from it
 * closed an import circle (kernel -> clusters -> ports -> jobs -> kernel).
 */
import type { ResourceEstimate } from './program/verify.js';

export const JOB_STATES = [
  'QUEUED',
  'RUNNING',
  'CANCELLING',
  'DONE',
  'FAILED',
  'CANCELLED',
] as const;
export type JobState = (typeof JOB_STATES)[number];
export const TERMINAL_STATES: ReadonlySet<JobState> = new Set(['DONE', 'FAILED', 'CANCELLED']);

/** Stop flag values in a run's control word 0. */
export const JOB_STOP_CANCEL = 1;
export const JOB_STOP_RUNTIME = 2;
/**
 * The daemon is stopping and the drain time is over: the run stops at its next poll, its shot
 * progress is recorded (`RunProgress`), and it goes on from there after the restart.
 */
export const JOB_STOP_SHUTDOWN = 3;

/**
 * Where a stopped run's shots end: the shots done, their counts and first outcomes, and the
 * generator's state after them (the draws of the shots still to run follow from it), so the run
 * goes on and ends with the counts an uninterrupted run gives.
 */
export interface RunProgress {
  shotsDone: number;
  /** Keys as the runner counts them (before OpenQASM register spacing). */
  counts: Record<string, number>;
  shotOutcomes: string[];
  /** The run's generator state: four 32-bit words. */
  rng: number[];
}

export type ProgramFormat = 'qvm' | 'qasm';

export interface JobEstimate extends ResourceEstimate {
  /** Empty when the program has errors: the simulator's analysis needs a verified program. */
  sampling: 'sampled' | 'per-shot' | '';
}

export interface JobRecord {
  id: string;
  /** Submission order, unique per state directory (list pagination and queue tie-breaks). */
  seq: number;
  tenantId: string;
  keyId: string;
  format: ProgramFormat;
  /** The program text; emptied once the job is terminal (the result is what is kept). */
  source: string;
  shots: number;
  seed: string;
  idempotencyKey: string;
  /**
   * SHA-256 of everything that defines the request (idempotency compares it); empty for a job
   * submitted without an idempotency key.
   */
  requestHash: string;
  bindings: Binding[];
  /**
   * Rule 9: uses per channel the program's joins across tenants need (shared qubits bound), as
   * the verifier counted them; reserved when the job starts. Absent in records older than it.
   */
  channelUses?: Record<string, number>;
  shotOutcomesMax: number;
  strict: boolean;
  state: JobState;
  reason: string;
  submittedAtMs: number;
  startedAtMs: number;
  finishedAtMs: number;
  attempts: number;
  shotsDone: number;
  /** Set while an interrupted run's shots are recorded for the next attempt (drained stop). */
  progress?: RunProgress | undefined;
  estimate: JobEstimate;
  cost: number;
}

/** A program qubit bound to a session qubit: the caller's own, or (`channel`) one shared with it. */
export interface Binding {
  name: string;
  qubitId: string;
  /** Set when the qubit is another tenant's, shared with the caller through this channel. */
  channel?: string;
  /** The shared qubit's owner (with `channel`). */
  owner?: string;
}

export interface JobResultRecord {
  counts: Record<string, number>;
  /** Event (QVM) or classical bit (OpenQASM `c[0]`) of each key character, left to right. */
  keyEvents: string[];
  bitOrder: string;
  shotOutcomes: string[];
  sampling: 'sampled' | 'per-shot';
  engine: string;
  queueMs: number;
  runMs: number;
  largestState: number;
}

export interface SubmitRequest {
  format: string;
  source: string;
  shots: number;
  seed: string;
  idempotencyKey: string;
  bindings: { name: string; handle: string }[];
  shotOutcomesMax: number;
  strict: boolean;
}

/** A job as callers see it: the record plus live queue position and progress. */
export interface JobView extends Omit<JobRecord, 'source' | 'requestHash' | 'cost'> {
  queuePosition: number;
}

export type JobListener = (job: JobView) => void;
