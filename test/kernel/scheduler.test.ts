/** The fair queue's decisions: order within a tenant, late arrivals, weights, eligibility, cancel. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FairQueue } from '../../src/kernel/scheduler.js';

const drain = (q: FairQueue, n = Number.POSITIVE_INFINITY, eligible = () => true) => {
  const out: string[] = [];
  while (out.length < n) {
    const e = q.next(eligible);
    if (!e) break;
    out.push(e.jobId);
  }
  return out;
};

test('one tenant: submission order', () => {
  const q = new FairQueue();
  for (let i = 0; i < 5; i++) q.enqueue(`a${i}`, 'A', i, 1, 1);
  assert.equal(drain(q), ['a0', 'a1', 'a2', 'a3', 'a4']);
  assert.is(q.size, 0);
});

test('a tenant arriving after a flood is interleaved at once, not queued behind it', () => {
  const q = new FairQueue();
  let seq = 0;
  for (let i = 0; i < 200; i++) q.enqueue(`a${i}`, 'A', seq++, 1, 1);
  assert.equal(drain(q, 3), ['a0', 'a1', 'a2']);
  for (let i = 0; i < 5; i++) q.enqueue(`b${i}`, 'B', seq++, 1, 1);
  const next = drain(q, 12);
  // B's five are served within the next ten dispatches, alternating with A.
  assert.equal(next.slice(0, 10).filter((j) => j.startsWith('b')).length, 5);
  assert.is(q.position('a199'), q.size);
});

test('weights 3:1 serve backlogged tenants 3:1', () => {
  const q = new FairQueue();
  let seq = 0;
  for (let i = 0; i < 300; i++) {
    q.enqueue(`c${i}`, 'C', seq++, 1, 3);
    q.enqueue(`d${i}`, 'D', seq++, 1, 1);
  }
  const first = drain(q, 200);
  const c = first.filter((j) => j.startsWith('c')).length;
  assert.is(c, 150);
  assert.is(first.length - c, 50);
});

test('cost counts: a tenant of expensive jobs gets fewer dispatches for the same share', () => {
  const q = new FairQueue();
  let seq = 0;
  for (let i = 0; i < 100; i++) {
    q.enqueue(`big${i}`, 'A', seq++, 4, 1);
    q.enqueue(`small${i}`, 'B', seq++, 1, 1);
  }
  const first = drain(q, 50);
  assert.is(first.filter((j) => j.startsWith('small')).length, 40);
});

test('an ineligible tenant is skipped without losing its place; cancel removes', () => {
  const q = new FairQueue();
  q.enqueue('a0', 'A', 0, 1, 1);
  q.enqueue('b0', 'B', 1, 1, 1);
  q.enqueue('a1', 'A', 2, 1, 1);
  assert.is(q.next((e) => e.tenantId !== 'A')?.jobId, 'b0');
  assert.is(q.position('a0'), 1);
  assert.is(q.position('a1'), 2);
  assert.ok(q.remove('a0'));
  assert.not.ok(q.remove('a0'));
  assert.is(q.position('a0'), 0);
  assert.is(q.sizeOf('A'), 1);
  assert.equal(drain(q), ['a1']);
  assert.is(
    q.next(() => true),
    null,
  );
});

test.run();
