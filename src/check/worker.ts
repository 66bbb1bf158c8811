/**
 * Piscina worker entry for program checks: parses and verifies one program (`checkProgram`).
 * Layer: adapter. The thread has a heap budget of its own; a check that runs past its time budget
 * is ended by ending the thread (`pool.ts`).
 */

import {
  type ProgramCheckRequest,
  type ProgramCheckResult,
  checkProgram,
} from '../kernel/program-check.js';
import { estimateRun } from '../sim/program.js';
import { fires } from '../util/failpoints.js';
import { lowerThisThreadPriority } from '../util/thread-priority.js';

// Check threads run below the main thread: one tenant's large program waits, calls do not.
lowerThisThreadPriority();

/**
 * Tests only: a check that never ends, or one that never stops allocating (match: the source's
 * length in UTF-16 code units, so a test picks the one program that misbehaves).
 */
function misbehaveIfArmed(req: ProgramCheckRequest): void {
  const size = String(req.source.length);
  if (fires('check.spin', size)) for (;;);
  if (fires('check.oom', size)) {
    const hoard: number[][] = [];
    for (;;) hoard.push(new Array(1 << 20).fill(1));
  }
}

/**
 * Checks, and for a valid program on no bound qubits also estimates its run (sampling mode and
 * work), so that no part of a large program's preparation runs on the main thread.
 */
export default function check(req: ProgramCheckRequest): ProgramCheckResult {
  misbehaveIfArmed(req);
  const checked = checkProgram(req);
  const { program } = checked;
  if (program === null || req.bound.length > 0) return checked;
  if (checked.violations.some((v) => v.severity === 'error')) return checked;
  // The program does not go back: receiving a large one would cost the main thread ~40 ms. The
  // run plans it from the source, on a pool thread.
  return { ...checked, program: null, runEstimate: estimateRun(program, req.shots) };
}
