/**
 * Piscina worker entry: runs one batch on shared state vectors. Layer: sim. Holds no policy and
 * no store handle; a thrown error ends up as that task's rejection (an assertion here is a
 * programmer error in the plan, never tenant input: the kernel validated everything).
 */
import { type BatchInput, type BatchOutput, runBatch } from './batch.js';
import { type ProgramRunInput, type ProgramRunOutput, runProgram } from './program.js';

/** New state vectors live in SharedArrayBuffers so the main thread and later tasks share them. */
function sharedAlloc(doubles: number): Float64Array {
  return new Float64Array(new SharedArrayBuffer(doubles * 8));
}

export default function run(
  input: BatchInput | { job: ProgramRunInput } | { warm: true },
): BatchOutput | ProgramRunOutput | 'warm' {
  if ('warm' in input) return 'warm';
  if ('job' in input) return runProgram(input.job);
  return runBatch(input, sharedAlloc);
}
