/**
 * The admission queue in front of the simulation pool (`kernel/admission.ts`): capacity, entries
 * that take no thread, weighted fair order across tenants for plans and jobs together, tenant
 * policy holding an entry back, idempotent release, and positions counting only what is asked.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Admission, type AdmissionEntry } from '../../src/kernel/admission.js';

function entry(
  id: string,
  tenant: string,
  started: string[],
  over: Partial<AdmissionEntry> = {},
): AdmissionEntry & { release: () => void } {
  const e = {
    id,
    tenant,
    seq: 0,
    cost: 1,
    weight: 1,
    usesThread: true,
    eligible: () => true,
    release: () => {},
    start: (release: () => void) => {
      started.push(id);
      e.release = release;
    },
    ...over,
  };
  return e;
}

test('admission: capacity 2, three thread entries → two start; a release starts the third', () => {
  const q = new Admission(2);
  const started: string[] = [];
  const es = ['a', 'b', 'c'].map((id, i) => entry(id, 't', started, { seq: i }));
  for (const e of es) q.enqueue(e);
  assert.equal(started, ['a', 'b']);
  assert.is(q.threadsBusy, 2);
  es[0]!.release();
  assert.equal(started, ['a', 'b', 'c']);
  es[0]!.release(); // idempotent
  assert.is(q.threadsBusy, 2);
});

test('admission: an entry that takes no thread starts with the pool full', () => {
  const q = new Admission(1);
  const started: string[] = [];
  q.enqueue(entry('pool', 't', started));
  q.enqueue(entry('inline', 't', started, { usesThread: false, seq: 1 }));
  assert.equal(started, ['pool', 'inline']);
  assert.is(q.threadsBusy, 1);
});

test('admission: A queues 4 then B 2 (weights 1:1) → B interleaves at once, not after A', () => {
  const q = new Admission(1);
  const started: string[] = [];
  const hold = entry('hold', 'x', started);
  q.enqueue(hold); // takes the one thread: everything below queues
  const all = [
    ...[0, 1, 2, 3].map((i) => entry(`a${i}`, 'A', started, { seq: 1 + i })),
    ...[0, 1].map((i) => entry(`b${i}`, 'B', started, { seq: 10 + i })),
  ];
  for (const e of all) q.enqueue(e);
  let last = hold;
  for (let i = 0; i < all.length; i++) {
    last.release();
    last = all.find((e) => e.id === started[started.length - 1])!;
  }
  assert.equal(started, ['hold', 'a0', 'b0', 'a1', 'b1', 'a2', 'a3']);
});

test('admission: plans (acquire) and jobs of one tenant share its virtual clock', async () => {
  const q = new Admission(1);
  const started: string[] = [];
  const hold = entry('hold', 'x', started);
  q.enqueue(hold);
  const jobA = entry('jobA', 'A', started, { seq: 1, cost: 4 }); // A finishes at 4
  q.enqueue(jobA);
  const plan = q.acquire({ tenant: 'A', weight: 1 }, 4).then((release) => {
    started.push('planA'); // A's next finish: 8
    return release;
  });
  const jobB = entry('jobB', 'B', started, { seq: 2, cost: 4 }); // B finishes at 4
  q.enqueue(jobB);
  hold.release();
  jobA.release();
  assert.equal(started, ['hold', 'jobA', 'jobB'], "B's job goes before A's later plan");
  jobB.release();
  (await plan)();
  assert.equal(started, ['hold', 'jobA', 'jobB', 'planA']);
  assert.is(q.threadsBusy, 0);
});

test('admission: policy holds an entry back; dispatch after the policy changes starts it', () => {
  const q = new Admission(4);
  const started: string[] = [];
  let open = false;
  q.enqueue(entry('held', 'A', started, { eligible: () => open }));
  q.enqueue(entry('free', 'B', started, { seq: 1 }));
  assert.equal(started, ['free']);
  open = true;
  q.dispatch();
  assert.equal(started, ['free', 'held']);
});

test('admission: remove takes a queued entry out; position counts only what is asked', () => {
  const q = new Admission(1);
  const started: string[] = [];
  q.enqueue(entry('hold', 'x', started));
  q.enqueue(entry('j1', 'A', started, { seq: 1 }));
  q.enqueue(entry('p1', 'A', started, { seq: 2 }));
  q.enqueue(entry('j2', 'A', started, { seq: 3 }));
  assert.is(q.position('j2'), 3);
  assert.is(
    q.position('j2', (id) => id.startsWith('j')),
    2,
  );
  assert.is(q.sizeOf('A'), 3);
  assert.ok(q.remove('j1'));
  assert.not.ok(q.remove('j1'));
  assert.is(q.position('j2'), 2);
  assert.is(q.position('hold'), 0, 'started: not queued');
});

test.run();
