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
import { fires } from '../util/failpoints.js';

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

export default function check(req: ProgramCheckRequest): ProgramCheckResult {
  misbehaveIfArmed(req);
  return checkProgram(req);
}
