/**
 * The failed-authentication throttle with an injected clock: the burst, the refill, the one
 * report per episode, other addresses untouched, bounded memory.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  FAILED_AUTH_BURST,
  FAILED_AUTH_FIELD,
  FAILED_AUTH_PEERS_MAX,
  FAILED_AUTH_PER_MINUTE,
  FailedAuthThrottle,
} from '../../src/kernel/auth-throttle.js';

const REFILL_MS = 60_000 / FAILED_AUTH_PER_MINUTE;

test(`${FAILED_AUTH_BURST} failures keep their own answer; the next is refused with the retry delay; reported once`, () => {
  const t = new FailedAuthThrottle();
  const now = 1_000_000;
  const reports: number[] = [];
  for (let i = 0; i < FAILED_AUTH_BURST; i++) {
    const r = t.failed('10.0.0.1', now);
    assert.is(r.refusal, null, `failure ${i + 1} is answered with its own error`);
    if (r.report) reports.push(i);
  }
  assert.equal(reports, [FAILED_AUTH_BURST - 1], 'reported when the last failure emptied it');
  const over = t.failed('10.0.0.1', now);
  assert.is(over.report, false, 'not reported again');
  assert.is(over.refusal?.code, 'QUOTA_EXCEEDED');
  assert.is(over.refusal?.field, FAILED_AUTH_FIELD);
  assert.is(over.refusal?.retryDelayMs, REFILL_MS);
  // Another address is untouched.
  assert.is(t.failed('10.0.0.2', now).refusal, null);
});

test('after the retry delay one more failure is answered with its own error', () => {
  const t = new FailedAuthThrottle();
  const now = 5_000_000;
  for (let i = 0; i < FAILED_AUTH_BURST; i++) t.failed('a', now);
  assert.ok(t.failed('a', now + REFILL_MS - 1).refusal, 'still refused just before');
  const r = t.failed('a', now + REFILL_MS + 1);
  assert.is(r.refusal, null);
  assert.is(r.report, false, 'emptied again in the same episode: not reported again');
});

test('a new episode, after the bucket has refilled completely, is reported again', () => {
  const t = new FailedAuthThrottle();
  let now = 7_000_000;
  const drain = () => {
    let reports = 0;
    for (let i = 0; i < FAILED_AUTH_BURST; i++) if (t.failed('a', now).report) reports++;
    return reports;
  };
  assert.is(drain(), 1);
  // A slow flood: one failure per refill, each emptying the bucket again; no further reports.
  for (let i = 0; i < 10; i++) {
    now += REFILL_MS;
    assert.is(t.failed('a', now).report, false);
  }
  now += FAILED_AUTH_BURST * REFILL_MS;
  assert.is(drain(), 1);
});

test(`at most ${FAILED_AUTH_PEERS_MAX} addresses are tracked`, () => {
  const t = new FailedAuthThrottle();
  for (let i = 0; i < FAILED_AUTH_PEERS_MAX + 100; i++) t.failed(`peer-${i}`, 0);
  assert.ok(t.size <= FAILED_AUTH_PEERS_MAX, `${t.size} tracked`);
});

test.run();
