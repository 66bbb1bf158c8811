/**
 * The worker protocol: what the main thread asks a pool thread to do and what it answers, as one
 * tagged union each way. Layer: sim. Why data both ways: a reply is checked by its `kind` where
 * it arrives (no cast), and an error inside a task comes back as `{ kind: 'failed' }` with its
 * message, rebuilt into an `Error` on the main thread, rather than as an untyped rejection.
 *
 * `handle` is the one place a task is run: by the worker entry on a pool thread, and by the
 * front on the main thread for work too small to be worth a thread hop.
 */
import type { JobRunResult } from '../kernel/ports.js';
import { type BatchInput, type BatchOutput, runBatch } from './batch.js';
import { type PlanRun, type SourceRun, runPlan, runSource } from './program.js';

export type WorkerTask =
  /** Starts the thread (loads the engine) so the first real task does not pay for it. */
  | { kind: 'warm' }
  /** One plan on session clusters: ops or a bound job (replayable: the reference kernels). */
  | { kind: 'plan'; batch: BatchInput }
  /** One job run: a compiled program for many shots on fresh qubits. */
  | { kind: 'job'; run: PlanRun }
  /** One job run from a verified program's source, planned here (a large program). */
  | { kind: 'job-source'; run: SourceRun };

export type WorkerReply =
  | { kind: 'warm' }
  | { kind: 'plan'; out: BatchOutput }
  | { kind: 'job'; out: JobRunResult }
  /** The task threw (an assertion: a programmer error); `message` says what. */
  | { kind: 'failed'; message: string };

/** New state vectors live in SharedArrayBuffers so the main thread and later tasks share them. */
export function sharedAlloc(doubles: number): Float64Array {
  return new Float64Array(new SharedArrayBuffer(doubles * 8));
}

/** Runs one task; never throws (a thrown error becomes a `failed` reply). */
export function handle(task: WorkerTask): WorkerReply {
  try {
    switch (task.kind) {
      case 'warm':
        return { kind: 'warm' };
      case 'plan':
        return { kind: 'plan', out: runBatch(task.batch, sharedAlloc) };
      case 'job':
        return { kind: 'job', out: runPlan(task.run) };
      case 'job-source':
        return { kind: 'job', out: runSource(task.run) };
    }
  } catch (err) {
    return { kind: 'failed', message: err instanceof Error ? err.message : String(err) };
  }
}

/** The error a reply of the wrong kind stands for, rebuilt on the main thread. */
function failure(reply: WorkerReply, wanted: string): Error {
  if (reply.kind === 'failed') return new Error(reply.message);
  return new Error(`the worker answered a ${wanted} task with a ${reply.kind} reply`);
}

/** A plan task's output, or its failure thrown as an `Error`. */
export function planOutput(reply: WorkerReply): BatchOutput {
  if (reply.kind === 'plan') return reply.out;
  throw failure(reply, 'plan');
}

/** A job task's result, or its failure thrown as an `Error`. */
export function jobOutput(reply: WorkerReply): JobRunResult {
  if (reply.kind === 'job') return reply.out;
  throw failure(reply, 'job');
}
