/**
 * Weighted fair queuing across tenants (the admission queue's order, `admission.ts`). Layer:
 * kernel (pure data structure, no I/O).
 *
 * Self-clocked fair queuing (Golestani): a job's virtual finish time is
 * `max(V, previous finish of its tenant) + cost / weight`, where V is the finish time of the job
 * dispatched last. Dispatch takes, among the tenants whose head job may run now, the head with the
 * smallest finish time. So a tenant that floods the queue only pushes its own finish times out: a
 * tenant arriving later starts at V and is interleaved at once, and backlogged tenants are served
 * in proportion to their weights. Each tenant's jobs stay in submission order.
 *
 * Invariants: every queued job is in exactly one tenant FIFO and in `entries`; finish times of one
 * tenant's jobs increase along its FIFO; V never decreases.
 */
import assert from 'node:assert';

export interface QueueEntry {
  jobId: string;
  tenantId: string;
  /** Virtual finish time; ties break by `seq` (submission order). */
  finish: number;
  seq: number;
}

/** A FIFO with O(1) pop from the front and O(n) removal from the middle (cancel). */
class Fifo {
  private items: QueueEntry[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(e: QueueEntry): void {
    this.items.push(e);
  }

  peek(): QueueEntry | undefined {
    return this.items[this.head];
  }

  shift(): QueueEntry | undefined {
    const e = this.items[this.head];
    if (e === undefined) return undefined;
    this.items[this.head++] = undefined as unknown as QueueEntry;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return e;
  }

  remove(e: QueueEntry): boolean {
    const i = this.items.indexOf(e, this.head);
    if (i < 0) return false;
    this.items.splice(i, 1);
    return true;
  }

  *[Symbol.iterator](): Generator<QueueEntry> {
    for (let i = this.head; i < this.items.length; i++) yield this.items[i]!;
  }
}

const before = (a: QueueEntry, b: QueueEntry): boolean =>
  a.finish < b.finish || (a.finish === b.finish && a.seq < b.seq);

export class FairQueue {
  /** Virtual time: the finish time of the job dispatched last. */
  private virtualTime = 0;
  private readonly lastFinish = new Map<string, number>();
  private readonly fifos = new Map<string, Fifo>();
  private readonly entries = new Map<string, QueueEntry>();

  get size(): number {
    return this.entries.size;
  }

  sizeOf(tenantId: string): number {
    return this.fifos.get(tenantId)?.size ?? 0;
  }

  has(jobId: string): boolean {
    return this.entries.has(jobId);
  }

  /** Queues a job of `cost` (> 0) for a tenant of `weight` (> 0). */
  enqueue(jobId: string, tenantId: string, seq: number, cost: number, weight: number): QueueEntry {
    assert(cost > 0 && weight > 0 && !this.entries.has(jobId));
    const start = Math.max(this.virtualTime, this.lastFinish.get(tenantId) ?? 0);
    const e: QueueEntry = { jobId, tenantId, finish: start + cost / weight, seq };
    this.lastFinish.set(tenantId, e.finish);
    let fifo = this.fifos.get(tenantId);
    if (!fifo) {
      fifo = new Fifo();
      this.fifos.set(tenantId, fifo);
    }
    fifo.push(e);
    this.entries.set(jobId, e);
    return e;
  }

  /** Removes a queued job (cancel); false when it is not queued. */
  remove(jobId: string): boolean {
    const e = this.entries.get(jobId);
    if (!e) return false;
    this.entries.delete(jobId);
    const fifo = this.fifos.get(e.tenantId)!;
    assert(fifo.remove(e));
    if (fifo.size === 0) this.fifos.delete(e.tenantId);
    return true;
  }

  /**
   * Takes the head job with the smallest finish time among tenants for which `eligible(head)`
   * holds (per-tenant running limits, pool capacity), or null when none may run now.
   */
  next(eligible: (e: QueueEntry) => boolean): QueueEntry | null {
    let best: QueueEntry | null = null;
    for (const fifo of this.fifos.values()) {
      const head = fifo.peek()!;
      if ((best === null || before(head, best)) && eligible(head)) best = head;
    }
    if (best === null) return null;
    const fifo = this.fifos.get(best.tenantId)!;
    assert(fifo.shift() === best);
    if (fifo.size === 0) this.fifos.delete(best.tenantId);
    this.entries.delete(best.jobId);
    this.virtualTime = Math.max(this.virtualTime, best.finish);
    return best;
  }

  /**
   * 1-based place of a queued job in the dispatch order if nothing else arrived and every tenant
   * were eligible, among the entries `counted` keeps; 0 when it is not queued. O(queued jobs).
   */
  position(jobId: string, counted: (jobId: string) => boolean = () => true): number {
    const e = this.entries.get(jobId);
    if (!e) return 0;
    let ahead = 0;
    for (const other of this.entries.values()) {
      if (before(other, e) && counted(other.jobId)) ahead++;
    }
    return ahead + 1;
  }
}
