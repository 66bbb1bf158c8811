/**
 * Rate windows with an injected clock: the token buckets' exact arithmetic (allowance at once,
 * even refill, the retry delay to the millisecond), which the integration tests cannot assert
 * without depending on how fast the machine is.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KernelError } from '../../src/kernel/errors.js';
import { TIER_DEFAULTS } from '../../src/kernel/limits.js';
import type { Quota } from '../../src/kernel/model.js';
import { RateLimiter } from '../../src/kernel/rates.js';

const quota = (over: Partial<Quota>): Quota => ({ ...TIER_DEFAULTS.pro.quota, ...over });

function refusal(fn: () => void): KernelError {
  try {
    fn();
  } catch (err) {
    assert.instance(err, KernelError);
    return err as KernelError;
  }
  throw new Error('expected QUOTA_EXCEEDED');
}

test('jobs_per_minute 2: two at once, the third waits exactly 30 s; at 30 s it passes', () => {
  const r = new RateLimiter();
  const q = quota({ jobsPerMinute: 2 });
  r.take('t', 'jobs', 1, q, 0);
  r.take('t', 'jobs', 1, q, 0);
  const e = refusal(() => r.take('t', 'jobs', 1, q, 0));
  assert.is(e.code, 'QUOTA_EXCEEDED');
  assert.is(e.field, 'jobs_per_minute');
  assert.is(e.retryDelayMs, 30_000);
  assert.is(refusal(() => r.take('t', 'jobs', 1, q, 29_999)).retryDelayMs, 1);
  r.take('t', 'jobs', 1, q, 30_000);
});

test('allocations_per_minute 3: 3 at once, then 1 waits 20 s; 4 at once never passes (no retry delay)', () => {
  const r = new RateLimiter();
  const q = quota({ allocationsPerMinute: 3 });
  r.take('t', 'allocations', 3, q, 1_000);
  assert.is(refusal(() => r.take('t', 'allocations', 1, q, 1_000)).retryDelayMs, 20_000);
  assert.is(refusal(() => r.take('t', 'allocations', 4, q, 1_000_000)).retryDelayMs, undefined);
});

test('measurements_per_second 4: 4, then the 5th after 250 ms; another tenant has its own bucket', () => {
  const r = new RateLimiter();
  const q = quota({ measurementsPerSecond: 4 });
  r.take('a', 'measurements', 4, q, 0);
  assert.is(refusal(() => r.take('a', 'measurements', 1, q, 100)).retryDelayMs, 150);
  r.take('b', 'measurements', 4, q, 100);
  r.take('a', 'measurements', 1, q, 250);
});

test('api_calls_per_minute 60: the allowance refills evenly, never past the allowance', () => {
  const r = new RateLimiter();
  const q = quota({ apiCallsPerMinute: 60 });
  for (let i = 0; i < 60; i++) r.take('t', 'apiCalls', 1, q, 0);
  assert.is(refusal(() => r.take('t', 'apiCalls', 1, q, 0)).retryDelayMs, 1_000);
  // An hour idle refills 60, not 3,600.
  for (let i = 0; i < 60; i++) r.take('t', 'apiCalls', 1, q, 3_600_000);
  assert.is(refusal(() => r.take('t', 'apiCalls', 1, q, 3_600_000)).code, 'QUOTA_EXCEEDED');
});

test.run();
