import { getHeapSpaceStatistics } from 'node:v8';
/**
 * The idle collection after a burst: due once after a busy sample followed by enough idle ones,
 * never on a daemon that was idle all along, not again until the next burst; and the collection
 * it runs gives back the young generation a burst grew.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { trimNativeHeap } from '../../src/sim/kernels.js';
import {
  BUSY_UTILISATION,
  COLLECTIONS_PER_BURST,
  IDLE_SAMPLES_BEFORE_COLLECT,
  IDLE_SAMPLES_BETWEEN_COLLECTIONS,
  IDLE_SAMPLE_MS,
  IdleCollector,
  idleCollection,
} from '../../src/util/idle-collect.js';

const idle = (c: IdleCollector, n: number) => Array.from({ length: n }, () => c.sample(0));

test('idle all along: never due', () => {
  const c = new IdleCollector();
  assert.equal(idle(c, 20).filter(Boolean).length, 0);
});

test('a burst, then idle: due after each idle run, COLLECTIONS_PER_BURST times', () => {
  const c = new IdleCollector();
  assert.is(c.sample(0.9), false);
  const due = idle(c, IDLE_SAMPLES_BEFORE_COLLECT * (COLLECTIONS_PER_BURST + 3));
  const at = due.flatMap((d, i) => (d ? [i + 1] : []));
  assert.equal(
    at,
    Array.from(
      { length: COLLECTIONS_PER_BURST },
      (_, k) => IDLE_SAMPLES_BEFORE_COLLECT + k * IDLE_SAMPLES_BETWEEN_COLLECTIONS,
    ),
  );
});

test('moderate load between idle samples restarts the idle run', () => {
  const c = new IdleCollector();
  c.sample(BUSY_UTILISATION);
  idle(c, IDLE_SAMPLES_BEFORE_COLLECT - 1);
  assert.is(c.sample(0.1), false); // neither busy nor idle: not idle
  assert.equal(idle(c, IDLE_SAMPLES_BEFORE_COLLECT - 1).filter(Boolean).length, 0);
  assert.is(c.sample(0), true);
});

test('the next burst makes it due again', () => {
  const c = new IdleCollector();
  c.sample(1);
  idle(c, IDLE_SAMPLES_BEFORE_COLLECT * (COLLECTIONS_PER_BURST + 1));
  assert.not.ok(idle(c, IDLE_SAMPLES_BEFORE_COLLECT * 2).includes(true));
  c.sample(1);
  assert.ok(idle(c, IDLE_SAMPLES_BEFORE_COLLECT).includes(true));
});

test('grown memory without a busy sample: due after the idle run, even while it stays grown', () => {
  const c = new IdleCollector();
  const due = Array.from({ length: IDLE_SAMPLES_BEFORE_COLLECT }, () => c.sample(0.1, true));
  assert.equal(due.indexOf(true), -1, 'not idle enough yet (0.1 is not idle)');
  const idleGrown = Array.from({ length: IDLE_SAMPLES_BEFORE_COLLECT }, () => c.sample(0, true));
  assert.equal(idleGrown.indexOf(true), IDLE_SAMPLES_BEFORE_COLLECT - 1);
});

test('trimming the C heap: available on this (glibc) host with the addon built', () => {
  assert.is(trimNativeHeap(), true);
});

test('the collections are available, and after a burst and 7 s idle the young generation shrinks', async () => {
  const gc = idleCollection();
  assert.type(gc, 'function');
  const young = () =>
    getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_size;
  const initial = young();
  let keep: object[] = [];
  for (let i = 0; young() <= initial && i < 5e7; i++) {
    keep.push({ i, s: `x${i}` });
    if (keep.length > 50_000) keep = [];
  }
  keep = [];
  const grown = young();
  assert.ok(grown > initial, `grew: ${initial} → ${grown}`);
  await new Promise((r) => setTimeout(r, IDLE_SAMPLES_BEFORE_COLLECT * IDLE_SAMPLE_MS));
  gc!();
  assert.ok(young() < grown, `shrank: ${grown} → ${young()}`);
});

test('the collection gives back the pages of the old generation that survivors were spread over', () => {
  const gc = idleCollection()!;
  const old = () => getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!;
  const keep: ({ i: number; s: string } | null)[] = Array.from({ length: 400_000 }, (_, i) => ({
    i,
    s: `x${i}`,
  }));
  gc();
  // Three of every four die: a plain full collection frees them but keeps their pages.
  for (let i = 0; i < keep.length; i++) if (i % 4 !== 0) keep[i] = null;
  const before = old().space_size;
  gc();
  const after = old().space_size;
  assert.ok(keep[0] !== null);
  assert.ok(after < before - 8_000_000, `committed old space ${before} → ${after}`);
});

test('the collection frees garbage of the old generation', () => {
  const gc = idleCollection()!;
  const old = () => getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!;
  // Objects that live through two young collections are promoted; dropped, they are old garbage.
  let keep: object[] | null = Array.from({ length: 200_000 }, (_, i) => ({ i, s: `x${i}` }));
  gc();
  gc();
  const held = old().space_used_size;
  keep = null;
  gc();
  const freed = held - old().space_used_size;
  assert.is(keep, null);
  // 200,000 small objects and strings are several MB; a young collection alone frees none of it.
  assert.ok(freed > 4_000_000, `old generation freed ${freed} bytes`);
});

test.run();
