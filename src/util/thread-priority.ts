/**
 * Lowers the CPU priority of the calling thread (a worker thread's own, not the process's): the
 * threads that do one tenant's heavy work (simulation, program checks) run below the main thread,
 * so when the cores are busy, deciding, committing and answering calls (every tenant's latency)
 * comes first. Linux only (a thread's id is in /proc/thread-self, and setpriority on it affects
 * that thread alone); elsewhere, or without /proc, the thread keeps the default priority.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

/** The nice value of the worker threads (simulation and program checks). */
export const WORKER_NICE = 10;

export function lowerThisThreadPriority(nice = WORKER_NICE): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, nice);
  } catch {
    // Not Linux, or /proc not mounted: default priority.
  }
}
