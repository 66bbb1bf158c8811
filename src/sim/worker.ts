/**
 * Piscina worker entry: runs one task of the worker protocol (`protocol.ts`) on shared state
 * vectors. Layer: sim. Holds no policy and no store handle; an error inside a task comes back as
 * a `failed` reply (an assertion here is a programmer error in the plan, never tenant input: the
 * kernel validated everything).
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { fires } from '../util/failpoints.js';
import { type WorkerReply, type WorkerTask, handle } from './protocol.js';

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
