/**
 * Places on a fixed number of threads, handed out fairly between tenants: a tenant's waiting
 * checks are served in its own order, and the tenants with checks waiting take turns (round
 * robin), so one tenant submitting many large programs delays another's by at most one check per
 * thread, not by its whole backlog. Layer: adapter (pure bookkeeping, no threads).
 */

export class FairTurns {
  private running = 0;
  /** Per tenant, its waiting checks in arrival order; the map's order is the turn order. */
  private readonly waiting = new Map<string, (() => void)[]>();

  constructor(private readonly places: number) {}

  /** Resolves when `tenant` has a place; the caller must `release` it once done. */
  take(tenant: string): Promise<void> {
    if (this.running < this.places && this.waiting.size === 0) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const own = this.waiting.get(tenant);
      if (own) own.push(resolve);
      else this.waiting.set(tenant, [resolve]);
    });
  }

  /** Frees a place: the next tenant in turn gets it, and goes to the back of the turn order. */
  release(): void {
    this.running--;
    const next = this.waiting.entries().next();
    if (next.done) return;
    const [tenant, queue] = next.value;
    const wake = queue.shift()!;
    this.waiting.delete(tenant);
    if (queue.length > 0) this.waiting.set(tenant, queue);
    this.running++;
    wake();
  }

  /** Checks waiting for a place (tests and status). */
  get queued(): number {
    let n = 0;
    for (const q of this.waiting.values()) n += q.length;
    return n;
  }
}
