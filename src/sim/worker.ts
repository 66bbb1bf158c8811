/**
 * Piscina worker entry: runs one batch on shared state vectors. Layer: sim. Holds no policy and
 * no store handle; a thrown error ends up as that task's rejection (an assertion here is a
 * programmer error in the plan, never tenant input: the kernel validated everything).
 */
import { type BatchInput, type BatchOutput, runBatch } from './batch.js';

/** New state vectors live in SharedArrayBuffers so the main thread and later tasks share them. */
function sharedAlloc(doubles: number): Float64Array {
  return new Float64Array(new SharedArrayBuffer(doubles * 8));
}

export default function run(input: BatchInput | { warm: true }): BatchOutput | 'warm' {
  if ('warm' in input) return 'warm';
  return runBatch(input, sharedAlloc);
}
