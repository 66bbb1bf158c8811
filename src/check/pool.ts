/**
 * Program checks on threads of their own: a large program's parse and verification (about a
 * second of CPU for 1 MiB of OpenQASM) never holds up the main thread, which answers every tenant.
 * Layer: adapter (implements the kernel's `ProgramCheckPort`).
 *
 * Budgets: each check may run `secondsMax` once it has a thread (a waiting check is not charged),
 * on a thread whose heap is capped at `heapMb`; past either the thread is ended and the check
 * refused with LIMIT_EXCEEDED naming the budget. At most `threads` checks run at once; the others
 * wait, each tenant's in arrival order and the tenants in turn (`fair-turns.ts`).
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { KernelError } from '../kernel/errors.js';
import { PROGRAM_CHECK_HEAP_MB, PROGRAM_CHECK_SECONDS_MAX } from '../kernel/limits.js';
import type { ProgramCheckPort } from '../kernel/ports.js';
import type { ProgramCheckRequest, ProgramCheckResult } from '../kernel/program-check.js';
import { FairTurns } from './fair-turns.js';

/** A check thread ends after this long without work (its heap is given back). */
export const CHECK_THREAD_IDLE_MS = 5_000;

const WORKER_URL = new URL(
  import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js',
  import.meta.url,
);

export interface ProgramCheckPoolOptions {
  threads?: number;
  secondsMax?: number;
  heapMb?: number;
}

export class ProgramCheckPool implements ProgramCheckPort {
  readonly threads: number;
  private readonly secondsMax: number;
  private readonly heapMb: number;
  private readonly pool: Piscina;
  /** At most `threads` checks run at once; waiting ones take turns between tenants. */
  private readonly turns: FairTurns;

  constructor(opts: ProgramCheckPoolOptions = {}) {
    this.threads = opts.threads ?? Math.max(1, Math.floor(availableParallelism() / 2));
    this.secondsMax = opts.secondsMax ?? PROGRAM_CHECK_SECONDS_MAX;
    this.heapMb = opts.heapMb ?? PROGRAM_CHECK_HEAP_MB;
    this.turns = new FairTurns(this.threads);
    this.pool = new Piscina({
      filename: WORKER_URL.href,
      // No thread while no large program is checked: a thread ends 5 s after its last check,
      // and with it the heap a megabyte of program grew (starting one costs ~50 ms, small
      // against the check itself).
      minThreads: 0,
      maxThreads: this.threads,
      idleTimeout: CHECK_THREAD_IDLE_MS,
      resourceLimits: { maxOldGenerationSizeMb: this.heapMb },
    });
  }

  /** @throws LIMIT_EXCEEDED past the time or heap budget */
  async check(req: ProgramCheckRequest): Promise<ProgramCheckResult> {
    await this.turns.take(req.tenant);
    try {
      return await this.runOnThread(req);
    } catch (err) {
      if (err instanceof Error && err.name === 'AbortError') {
        throw new KernelError(
          'LIMIT_EXCEEDED',
          `program: checking it took longer than ${this.secondsMax} s`,
          'program',
        );
      }
      if ((err as { code?: string }).code === 'ERR_WORKER_OUT_OF_MEMORY') {
        throw new KernelError(
          'LIMIT_EXCEEDED',
          `program: checking it needed more than ${this.heapMb} MiB`,
          'program',
        );
      }
      throw err;
    } finally {
      this.turns.release();
    }
  }

  close(): Promise<void> {
    return this.pool.destroy();
  }

  /** Piscina's `run` is untyped; the worker entry answers with a `ProgramCheckResult`. */
  private runOnThread(req: ProgramCheckRequest): Promise<ProgramCheckResult> {
    return this.pool.run(req, { signal: AbortSignal.timeout(this.secondsMax * 1000) });
  }
}
