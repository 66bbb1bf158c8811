/**
 * Memory back after a burst: once the main thread has been busy and then idle for a while, a
 * young-generation collection and a full one, which let V8 give back what the burst made it grow.
 *
 * Why: V8 grows its young generation under a high allocation rate (16 → 32 MB seen after a
 * flood of refused calls) and shrinks it only in a young collection that finds the allocation
 * rate low, measured over about the last 5 s (and none that also finds cause to grow it); an
 * idle daemon allocates nothing, so no
 * collection comes and the grown heap stays resident (measured: still there 30 s after the flood
 * ended; a full collection alone, even V8's "last resort" one, leaves the young generation as
 * it is). Young collections after 7 s of idleness bring it back (32 → 1 MB, measured; after
 * 3 or 5 s they do not), then a full one returns the old generation's garbage — a few
 * milliseconds of a thread that has nothing else to do. Worker threads need none of this: an
 * idle one ends; but what it freed in the C heap stays in glibc's arenas until trimmed (44 MB
 * after a large-program attack, all of it returned by malloc_trim, measured), so each
 * collection ends with a trim of the C heap.
 *
 * The decision is a small state machine over event-loop utilisation samples (`IdleCollector`),
 * so tests drive it with samples instead of a clock.
 */
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** How often the main thread's utilisation is sampled. */
export const IDLE_SAMPLE_MS = 1000;
/** A sample at or above this utilisation counts as busy. */
export const BUSY_UTILISATION = 0.2;
/** A sample at or below this counts as idle. */
export const IDLE_UTILISATION = 0.02;
/** Resident memory above this multiple of its size after the last collection counts as a burst. */
export const GROWTH_FACTOR = 1.1;
/** Consecutive idle samples after a busy one before the first collection. */
export const IDLE_SAMPLES_BEFORE_COLLECT = 7;
/** Consecutive idle samples between the later collections of the same burst. */
export const IDLE_SAMPLES_BETWEEN_COLLECTIONS = 3;
/**
 * Collections per burst: worker threads end 5–10 s after their last work and only then is what
 * they freed in the C heap returnable, and a first collection does not give back all a collection
 * can (measured: after a flood of refused calls the memory was back only after the second or
 * third), so the collections repeat while the daemon stays idle, up to about 20 s after the burst.
 */
export const COLLECTIONS_PER_BURST = 5;

/**
 * Busy (or grown), then idle for `IDLE_SAMPLES_BEFORE_COLLECT` samples: a collection is due;
 * again after each further `IDLE_SAMPLES_BETWEEN_COLLECTIONS` idle samples,
 * `COLLECTIONS_PER_BURST` in all; then nothing until the next busy sample or growth.
 */
export class IdleCollector {
  private left = 0;
  private idleRun = 0;

  /**
   * One utilisation sample (0..1) and whether memory has grown since the last collection (a
   * burst light on the main thread still leaves what it allocated); true when a collection is due.
   */
  sample(utilisation: number, grown = false): boolean {
    if (utilisation >= BUSY_UTILISATION) {
      this.left = COLLECTIONS_PER_BURST;
      this.idleRun = 0;
      return false;
    }
    // Grown memory arms the collections without counting as activity (it stays grown while idle).
    if (grown && this.left === 0) this.left = COLLECTIONS_PER_BURST;
    if (this.left === 0) return false;
    this.idleRun = utilisation <= IDLE_UTILISATION ? this.idleRun + 1 : 0;
    const needed =
      this.left === COLLECTIONS_PER_BURST
        ? IDLE_SAMPLES_BEFORE_COLLECT
        : IDLE_SAMPLES_BETWEEN_COLLECTIONS;
    if (this.idleRun < needed) return false;
    this.left--;
    this.idleRun = 0;
    return true;
  }
}

type Gc = (options?: { type: 'minor' }) => void;

/**
 * A function that runs the collections: young, then full. V8 exposes `gc` only to contexts made
 * after `--expose-gc` is set, so the flag is set and a fresh context hands it over; null if this
 * runtime refuses.
 */
export function idleCollection(): (() => void) | null {
  let gc = (globalThis as { gc?: Gc }).gc;
  if (!gc) {
    try {
      setFlagsFromString('--expose-gc');
      const exposed = runInNewContext('gc') as unknown;
      if (typeof exposed === 'function') gc = exposed as Gc;
    } catch {
      // Refused by this runtime: no idle collection.
    }
  }
  if (!gc) return null;
  const run = gc;
  return () => {
    // V8 shrinks the young generation in a young collection that finds the allocation rate low,
    // unless the same collection also finds cause to grow it (enough survived since it last
    // grew), which a first collection settles by resetting that count; hence two.
    run({ type: 'minor' });
    run({ type: 'minor' });
    // The full collection is asked for without options: this runtime's V8 (Node 20) reads
    // `{ type: 'major' }` as a young collection (seen in --trace-gc: "Scavenge"), which left a
    // failed-auth flood's 33 MB of old-generation garbage in place until V8 happened to collect.
    // It also compacts: a full collection frees the garbage but keeps the pages the survivors
    // are spread over (after a flood of large programs: 16.6 MB live in 22.8 MB of pages);
    // moving the survivors together gives the pages back (measured: 30.4 → 9.9 MB committed).
    setFlagsFromString('--compact-on-every-full-gc');
    try {
      run();
    } finally {
      setFlagsFromString('--no-compact-on-every-full-gc');
    }
  };
}

/**
 * Samples the main thread's utilisation and collects after each burst; `trimNative` then gives
 * the C heap's free memory back (it may be unavailable: false). Returns a stop function.
 */
export function collectWhenIdle(trimNative: () => boolean): () => void {
  const collect = idleCollection();
  const collector = new IdleCollector();
  let last = performance.eventLoopUtilization();
  let collectedRss = process.memoryUsage.rss();
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const delta = performance.eventLoopUtilization(now, last);
    last = now;
    const grown = process.memoryUsage.rss() > collectedRss * GROWTH_FACTOR;
    if (!collector.sample(delta.utilization, grown)) return;
    collect?.();
    trimNative();
    collectedRss = process.memoryUsage.rss();
  }, IDLE_SAMPLE_MS);
  timer.unref();
  return () => clearInterval(timer);
}
