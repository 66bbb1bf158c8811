/**
 * How the kernel's decisions become durable, and what happens when they cannot. Layer: kernel.
 * Owns three things every mutating operation goes through:
 * - the commit discipline: a change that can be taken back is undone when its write fails
 *   (`commitOrUndo`); one that cannot (simulator state, job transitions) leaves memory ahead of
 *   the store, and the kernel *diverges* (`commitEffects`): it refuses every further decision and
 *   tells `onDiverged`, whose owner restarts the daemon so replay rebuilds the acknowledged state;
 * - the checkpoint barrier: while a checkpoint is taken (`quiesce`), mutating operations wait in
 *   `waitForCheckpoint` before they decide, so the snapshot is consistent;
 * - the free-space watermark (`requireSpace`), so tenant work never fills the disk;
 * - running a plan whose failure in the simulator diverges too (`executeOrDiverge`).
 * Why one unit: these are the rules that make "an acknowledged operation is never lost" true,
 * and every other unit follows them the same way.
 */
import { reportBug } from '../util/bugs.js';
import { KernelError } from './errors.js';
import type {
  AuditEvent,
  ExecPlan,
  JobRunResult,
  OplogEntry,
  PoolOwner,
  SimulatorPort,
  StorePort,
  StoreRecord,
} from './ports.js';

export class Durability {
  /** While set, mutating operations wait before deciding (a checkpoint is being taken). */
  private checkpointBarrier: Promise<void> | null = null;
  /** The failed write that left memory ahead of the store, if any (see `commitEffects`). */
  private divergedBy: Error | null = null;
  /** Told once when memory diverges from the store; main restarts the daemon. */
  onDiverged: (err: Error) => void = () => {};

  constructor(
    private readonly store: StorePort,
    private readonly sim: SimulatorPort,
  ) {}

  /**
   * Runs `fn` with no plan in flight and no new decision taken: mutating calls wait at the
   * checkpoint barrier. Used to take a consistent checkpoint of all cluster states.
   */
  async quiesce<T>(fn: () => Promise<T>): Promise<T> {
    while (this.checkpointBarrier) await this.checkpointBarrier;
    let open!: () => void;
    this.checkpointBarrier = new Promise((r) => {
      open = r;
    });
    try {
      await this.sim.idle();
      return await fn();
    } finally {
      this.checkpointBarrier = null;
      open();
    }
  }

  /**
   * Waits past a checkpoint in progress; every mutating operation calls it before deciding.
   * @throws STORAGE_FAILED once the kernel has diverged (the daemon is restarting)
   */
  async waitForCheckpoint(): Promise<void> {
    while (this.checkpointBarrier) await this.checkpointBarrier;
    if (this.divergedBy) {
      throw new KernelError(
        'STORAGE_FAILED',
        `storage: memory is ahead of the acknowledged state after a failure (${this.divergedBy.message}); ` +
          'the daemon is restarting to reload the acknowledged state',
        'storage',
      );
    }
  }

  /**
   * Commits a change already made in memory that can be taken back: when the write fails, `undo`
   * restores memory, so a refused call leaves nothing behind (no phantom session, channel or
   * key, no quota counted). The error (STORAGE_FULL or STORAGE_FAILED) goes to the caller.
   */
  async commitOrUndo(undo: () => void, records: StoreRecord[], audit: AuditEvent[]): Promise<void> {
    try {
      await this.store.commit(records, audit);
    } catch (err) {
      undo();
      throw err;
    }
  }

  /**
   * Commits a change whose memory effect cannot be taken back: simulator state (op-log entries)
   * and job transitions. When the write fails, memory is ahead of the store; the kernel refuses
   * every further decision and tells `onDiverged`, whose owner restarts the daemon so that replay
   * rebuilds exactly the acknowledged state. Nothing unacknowledged survives the restart.
   */
  async commitEffects(
    records: StoreRecord[],
    audit: AuditEvent[],
    oplog: OplogEntry[] = [],
  ): Promise<void> {
    try {
      await this.store.commit(records, audit, oplog);
    } catch (err) {
      this.markDiverged(err);
      throw err;
    }
  }

  /**
   * Owns a promise no caller awaits, so none is left detached: a KernelError there is a failed
   * write already handled (`commitEffects` diverged: the daemon restarts; a refusal's audit
   * record that could not be written is lost with the refusal already answered), and anything
   * else is a programmer error, reported as a bug.
   */
  background(p: Promise<unknown>): void {
    p.catch((err: unknown) => {
      if (!(err instanceof KernelError)) reportBug(err);
    });
  }

  /**
   * Refuses work that grows the state while the store's disk is below the operator's free-space
   * watermark, so the disk never fills through tenant work: releases, closes, cancellations,
   * reads and the operator API (which free or only touch state) still pass.
   * @throws STORAGE_FULL
   */
  requireSpace(): void {
    const low = this.store.lowSpace();
    if (low === null) return;
    throw new KernelError(
      'STORAGE_FULL',
      `storage_free_min_bytes: ${low.freeBytes} bytes free on the state disk, below the ` +
        `watermark of ${low.minBytes}; new work is refused until space is freed`,
      'storage_free_min_bytes',
    );
  }

  /**
   * Runs a plan on the simulator. A plan that fails in the simulator (its worker thread died:
   * a native abort, out of memory) may have left its clusters' shared state half-written, and the
   * graph has already moved on: memory is no longer the acknowledged state, so the kernel diverges
   * (see `commitEffects`) and the caller gets INTERNAL with the reason.
   */
  executeOrDiverge(
    plan: ExecPlan,
    onDone: (outcomes: (0 | 1)[], run?: JobRunResult) => Promise<void>,
    owner?: PoolOwner,
  ): Promise<void> {
    return this.sim.execute(plan, onDone, owner).catch((err: unknown) => {
      if (err instanceof KernelError) throw err; // a failed commit: already handled there
      this.markDiverged(err);
      throw new KernelError(
        'INTERNAL',
        `simulation: the worker running this operation failed (${err instanceof Error ? err.message : String(err)}); ` +
          'the daemon restarts to reload the acknowledged state',
      );
    });
  }

  /** Memory is no longer the acknowledged state (a failed effect write, a dead worker). */
  markDiverged(err: unknown): void {
    if (this.divergedBy) return;
    this.divergedBy = err instanceof Error ? err : new Error(String(err));
    this.onDiverged(this.divergedBy);
  }

  get diverged(): boolean {
    return this.divergedBy !== null;
  }
}
