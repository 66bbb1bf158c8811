/**
 * Piscina worker entry: runs one batch on shared state vectors. Layer: sim. Holds no policy and
 * no store handle; a thrown error ends up as that task's rejection (an assertion here is a
 * programmer error in the plan, never tenant input: the kernel validated everything).
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { fires } from '../util/failpoints.js';
import { type BatchInput, type BatchOutput, runBatch } from './batch.js';
import { type ProgramRunInput, type ProgramRunOutput, runProgram } from './program.js';

/**
 * Simulation threads run at a lower CPU priority (nice 10) than the main thread: when the cores
 * are busy, deciding, committing and answering calls (every tenant's latency) comes first, and
 * long simulations take what is left. Linux only (a thread's id is in /proc/thread-self, and
 * setpriority on it affects that thread alone); elsewhere the workers keep the default priority.
 */
export const WORKER_NICE = 10;
try {
  const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  if (Number.isInteger(tid) && tid > 0) setPriority(tid, WORKER_NICE);
} catch {
  // Not Linux, or /proc not mounted: default priority.
}

/** New state vectors live in SharedArrayBuffers so the main thread and later tasks share them. */
function sharedAlloc(doubles: number): Float64Array {
  return new Float64Array(new SharedArrayBuffer(doubles * 8));
}

export default function run(
  input: BatchInput | { job: ProgramRunInput } | { warm: true },
): BatchOutput | ProgramRunOutput | 'warm' {
  if ('warm' in input) return 'warm';
  if ('job' in input) {
    // Tests only: the thread dies as on a native abort (process.exit in a worker ends the thread).
    if (fires('worker.job', input.job.seed)) process.exit(1);
    return runProgram(input.job);
  }
  const first = input.ops[0];
  if (fires('worker.plan', first?.kind === 'gate' ? first.name : first?.kind)) process.exit(1);
  return runBatch(input, sharedAlloc);
}
