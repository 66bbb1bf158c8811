/**
 * The one admission queue in front of the simulation pool: every piece of pool work (an
 * interactive plan on a large cluster, a job run) waits here, and is started in weighted fair
 * order across tenants (self-clocked fair queuing, `scheduler.ts`) when a pool thread is free.
 * Layer: kernel. Why one queue: with a queue of jobs in front of a queue of pool tasks, a
 * tenant's plans and jobs were scheduled twice with two clocks and two cost units; here one cost
 * unit (amplitude updates / `WORK_COST_UNIT_AMPLITUDES`) and one virtual clock per tenant order
 * all of it, and the job manager keeps only tenant policy (running limits, pool shares) as each
 * entry's `eligible` predicate.
 *
 * Entries that take no thread (a job run inline on the main thread, a job on bound qubits that
 * runs as a plan) pass through the same order and policy but leave the capacity alone.
 * Invariants: `busy` counts threads handed out and not released, never above `capacity`; each
 * entry starts at most once; a release is idempotent.
 */
import assert from 'node:assert';
import type { PoolOwner } from './ports.js';
import { FairQueue } from './scheduler.js';

/** Amplitude updates per unit of scheduling cost, for plans and jobs alike. */
export const WORK_COST_UNIT_AMPLITUDES = 1 << 20;

export interface AdmissionEntry {
  /** Unique while queued (a job id; plans get their own). */
  id: string;
  tenant: string;
  /** Tie-break among equal finish times: lower first. */
  seq: number;
  /** In `WORK_COST_UNIT_AMPLITUDES`; > 0. */
  cost: number;
  weight: number;
  /** Whether it takes a pool thread while it runs. */
  usesThread: boolean;
  /** Tenant policy: whether it may start now (checked at every dispatch). */
  eligible: () => boolean;
  /** Starts the work; `release` frees its thread when the work ends. */
  start: (release: () => void) => void;
}

export class Admission {
  private readonly queue = new FairQueue();
  private readonly entries = new Map<string, AdmissionEntry>();
  private busy = 0;
  private planSeq = 0;
  private plansWaiting = 0;
  private dispatching = false;

  /** @param capacity pool threads work may hold at once */
  constructor(readonly capacity: number) {
    assert(Number.isInteger(capacity) && capacity >= 1, `admission capacity ${capacity}`);
  }

  /** Threads handed out now. */
  get threadsBusy(): number {
    return this.busy;
  }

  /** Interactive plans waiting for a pool thread now (the interactive backlog). */
  get plansQueued(): number {
    return this.plansWaiting;
  }

  /** Queues work; it starts at once if it may, else when its turn comes. */
  enqueue(e: AdmissionEntry): void {
    assert(!this.entries.has(e.id), `entry ${e.id} is queued already`);
    this.entries.set(e.id, e);
    this.queue.enqueue(e.id, e.tenant, e.seq, Math.max(e.cost, Number.EPSILON), e.weight);
    this.dispatch();
  }

  /**
   * Waits for a pool thread for a plan of `owner` (no tenant: the kernel's own work, such as
   * replay); resolves with the function that frees it.
   */
  acquire(owner: PoolOwner, cost: number): Promise<() => void> {
    const id = `plan:${++this.planSeq}`;
    this.plansWaiting++;
    return new Promise((resolve) =>
      this.enqueue({
        id,
        tenant: owner.tenant,
        // Before every job on a tie (interactive latency first), in arrival order among plans.
        seq: this.planSeq - Number.MAX_SAFE_INTEGER,
        cost: owner.cost ?? cost,
        weight: owner.weight,
        usesThread: true,
        eligible: () => true,
        start: (release) => {
          this.plansWaiting--;
          resolve(release);
        },
      }),
    );
  }

  /** Takes a queued entry out (a cancelled job); false when it is not queued. */
  remove(id: string): boolean {
    if (!this.entries.delete(id)) return false;
    assert(this.queue.remove(id));
    return true;
  }

  /** 1-based place of a queued entry among the queued entries `counted` keeps; 0 when not queued. */
  position(id: string, counted: (id: string) => boolean = () => true): number {
    if (!this.entries.has(id)) return 0;
    return this.queue.position(id, counted);
  }

  /** Entries a tenant has queued. */
  sizeOf(tenant: string): number {
    return this.queue.sizeOf(tenant);
  }

  /**
   * Starts every queued entry that may start now, in fair order. Called on every enqueue and
   * release, and by the owner of a policy whenever its answer may have changed.
   */
  dispatch(): void {
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      for (;;) {
        const next = this.queue.next((q) => {
          const e = this.entries.get(q.jobId)!;
          return (!e.usesThread || this.busy < this.capacity) && e.eligible();
        });
        if (next === null) return;
        const e = this.entries.get(next.jobId)!;
        this.entries.delete(next.jobId);
        let released = !e.usesThread;
        if (e.usesThread) this.busy++;
        e.start(() => {
          if (released) return;
          released = true;
          this.busy--;
          this.dispatch();
        });
      }
    } finally {
      this.dispatching = false;
    }
  }
}
