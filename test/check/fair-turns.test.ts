/**
 * Check threads are shared fairly between tenants: a tenant with a backlog of large programs
 * delays another tenant's by at most one check per thread, not by its whole backlog.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FairTurns } from '../../src/check/fair-turns.js';

/** Takes a place for `tenant` and records the order in which places are granted. */
function taker(turns: FairTurns, order: string[]) {
  return (tenant: string, label: string) =>
    turns.take(tenant).then(() => {
      order.push(label);
    });
}

test('with one place, a backlog of one tenant and a late other tenant alternate', async () => {
  const turns = new FairTurns(1);
  const order: string[] = [];
  const take = taker(turns, order);
  const granted = [take('noisy', 'n1')];
  await granted[0];
  for (let i = 2; i <= 5; i++) granted.push(take('noisy', `n${i}`));
  granted.push(take('quiet', 'q1'));
  assert.is(turns.queued, 5);
  for (let i = 0; i < 5; i++) {
    turns.release();
    await Promise.resolve();
    await Promise.resolve();
  }
  await Promise.all(granted);
  // The quiet tenant's check is the second to run after the noisy one already running, not the sixth.
  assert.equal(order, ['n1', 'n2', 'q1', 'n3', 'n4', 'n5']);
  assert.is(turns.queued, 0);
});

test('places up to the limit are granted at once; a released place goes to a waiting check', async () => {
  const turns = new FairTurns(2);
  const order: string[] = [];
  const take = taker(turns, order);
  await Promise.all([take('a', 'a1'), take('b', 'b1')]);
  const third = take('a', 'a2');
  await Promise.resolve();
  assert.equal(order, ['a1', 'b1']);
  assert.is(turns.queued, 1);
  turns.release();
  await third;
  assert.equal(order, ['a1', 'b1', 'a2']);
});

test.run();
