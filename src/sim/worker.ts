/**
 * Piscina worker entry: runs one task of the worker protocol (`protocol.ts`) on shared state
 * vectors. Layer: sim. Holds no policy and no store handle; an error inside a task comes back as
 * a `failed` reply (an assertion here is a programmer error in the plan, never tenant input: the
 * kernel validated everything).
 */
import { fires } from '../util/failpoints.js';
import { lowerThisThreadPriority } from '../util/thread-priority.js';
import { type WorkerReply, type WorkerTask, handle } from './protocol.js';

// Simulation threads run below the main thread: long simulations take what calls leave.
lowerThisThreadPriority();

/** Tests only: the thread dies as on a native abort (process.exit in a worker ends the thread). */
function dieIfArmed(task: WorkerTask): void {
  if (task.kind === 'job' && fires('worker.job', task.run.seed)) process.exit(1);
  if (task.kind === 'plan') {
    const first = task.batch.ops[0];
    if (fires('worker.plan', first?.kind === 'gate' ? first.name : first?.kind)) process.exit(1);
  }
}

export default function run(task: WorkerTask): WorkerReply {
  dieIfArmed(task);
  return handle(task);
}
