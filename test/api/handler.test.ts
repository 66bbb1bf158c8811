/**
 * The handler wrapper's one exit: a synchronous throw, a rejection and a throw from a timer the
 * handler started all end as that call's status; anything but a KernelError is also reported as
 * a programmer error (main stops the daemon on it).
 */
import { Metadata, status } from '@grpc/grpc-js';
import type * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CallTracker, routeUncaught, unary } from '../../src/api/handler.js';
import { attachPrincipal } from '../../src/api/interceptor.js';
import { KernelError } from '../../src/kernel/errors.js';
import { onBug, reportBug } from '../../src/util/bugs.js';
import { configureLog } from '../../src/util/log.js';

configureLog('silent');
const bugs: unknown[] = [];
onBug((err) => bugs.push(err));
process.on('uncaughtException', (err) => {
  if (routeUncaught(err) !== 'call') throw err;
  reportBug(err);
});

function invoke(
  fn: () => unknown,
  request: object = {},
): Promise<Partial<grpc.StatusObject> | { ok: unknown }> {
  const tracker = new CallTracker();
  const metadata = new Metadata();
  attachPrincipal(metadata, { kind: 'operator' });
  const h = unary(tracker, fn as () => Promise<unknown>);
  return new Promise((resolve) => {
    h({ request, metadata } as unknown as grpc.ServerUnaryCall<object, unknown>, (err, res) => {
      assert.is(tracker.inFlight, 0, 'the call left the tracker');
      resolve(err ? (err as Partial<grpc.StatusObject>) : { ok: res });
    });
  });
}

test('handler: a value → OK with that value', async () => {
  assert.equal(await invoke(() => ({ a: 1 })), { ok: { a: 1 } });
});

test('handler: a KernelError rejection → its mapped status and message, no bug', async () => {
  bugs.length = 0;
  const r = (await invoke(async () => {
    throw new KernelError('QUOTA_EXCEEDED', 'sessions_max: 4 of 4', 'sessions_max');
  })) as grpc.StatusObject;
  assert.is(r.code, status.RESOURCE_EXHAUSTED);
  assert.is(r.details, 'sessions_max: 4 of 4');
  assert.equal(r.metadata.get('qmk-error-code'), ['QUOTA_EXCEEDED']);
  assert.is(bugs.length, 0, 'a refusal is not a bug');
});

test('handler: a synchronous TypeError → INTERNAL with a correlation id, no detail leaked; reported as a bug', async () => {
  bugs.length = 0;
  const r = (await invoke(() => {
    throw new TypeError('secret internals');
  })) as grpc.StatusObject;
  assert.is(r.code, status.INTERNAL);
  assert.match(r.details, /correlation id/);
  assert.not.match(r.details, /secret/);
  assert.is(bugs.length, 1);
  assert.instance(bugs[0], TypeError);
});

test('handler: a throw inside a timer the handler started → that call gets INTERNAL; reported as a bug', async () => {
  bugs.length = 0;
  const r = (await invoke(
    () =>
      new Promise(() => {
        setTimeout(() => {
          throw new Error('from a timer');
        }, 5);
      }),
  )) as grpc.StatusObject;
  assert.is(r.code, status.INTERNAL);
  assert.is(bugs.length, 1);
  assert.match(String((bugs[0] as Error).message), /from a timer/);
});

test('handler: malformed request bytes → INVALID_ARGUMENT naming the request', async () => {
  const r = (await invoke(() => 1, {
    __decodeError: 'malformed message (x)',
  })) as grpc.StatusObject;
  assert.is(r.code, status.INVALID_ARGUMENT);
  assert.match(r.details, /^request:/);
});

test('a timer a call started and that outlives it no longer reaches the call (nor holds it)', async () => {
  let routed: Promise<'call' | 'none'> = Promise.resolve('call');
  const r = await invoke(() => {
    // A timer started in the call's context that fires after the call was answered.
    routed = new Promise((resolve) =>
      setTimeout(() => resolve(routeUncaught(new Error('after the answer'))), 5),
    );
    return { a: 1 };
  });
  assert.equal(r, { ok: { a: 1 } });
  assert.is(await routed, 'none');
});

test('routeUncaught: outside any call → none (no call to answer; the caller stops the daemon)', () => {
  assert.is(routeUncaught(new Error('stray')), 'none');
});

test.run();
