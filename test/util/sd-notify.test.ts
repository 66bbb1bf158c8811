/**
 * Tests for src/util/sd-notify.ts: the datagrams sent in-process (through an injected sender; the
 * daemon's real one, the native addon, is tested against a real socket in
 * test/integration/sd-notify.test.ts), the exact systemd-notify command lines of the fallback,
 * the no-op dev mode, the watchdog timer, and that a failure is reported, never thrown.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type ExecFn, createNotifier, watchdogIntervalMs } from '../../src/util/sd-notify.js';

interface Call {
  file: string;
  args: readonly string[];
  env: NodeJS.ProcessEnv;
}

function recorder(fail?: Error): { calls: Call[]; exec: ExecFn } {
  const calls: Call[] = [];
  const exec: ExecFn = (file, args, options, callback) => {
    calls.push({ file, args: [...args], env: options.env });
    queueMicrotask(() => callback(fail ?? null));
  };
  return { calls, exec };
}

const SOCKET_ENV = { NOTIFY_SOCKET: '/run/systemd/notify' };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('createNotifier: NOTIFY_SOCKET unset → every call is a no-op and spawns nothing', () => {
  const { calls, exec } = recorder();
  const notifier = createNotifier({ WATCHDOG_USEC: '200000' }, { exec, pid: 42 });
  assert.is(notifier.enabled, false);
  notifier.ready('serving');
  notifier.status('busy');
  notifier.watchdog();
  notifier.stopping();
  const stop = notifier.startWatchdog();
  stop();
  assert.equal(calls, []);
});

test('createNotifier: NOTIFY_SOCKET empty → treated as unset, spawns nothing', () => {
  const { calls, exec } = recorder();
  const notifier = createNotifier({ NOTIFY_SOCKET: '' }, { exec, pid: 42 });
  notifier.ready();
  assert.is(notifier.enabled, false);
  assert.equal(calls, []);
});

test('ready: with status → systemd-notify --pid=<pid> --ready --status=<text>', () => {
  const { calls, exec } = recorder();
  createNotifier(SOCKET_ENV, { exec, pid: 4242 }).ready('serving on 127.0.0.1:50051');
  assert.equal(
    calls.map((c) => [c.file, c.args]),
    [['systemd-notify', ['--pid=4242', '--ready', '--status=serving on 127.0.0.1:50051']]],
  );
});

test('ready: without status → only --pid and --ready', () => {
  const { calls, exec } = recorder();
  createNotifier(SOCKET_ENV, { exec, pid: 7 }).ready();
  assert.equal(calls[0]?.args, ['--pid=7', '--ready']);
});

test('stopping/watchdog/status: → STOPPING=1, WATCHDOG=1, --status=<text>', () => {
  const { calls, exec } = recorder();
  const notifier = createNotifier(SOCKET_ENV, { exec, pid: 7 });
  notifier.stopping();
  notifier.watchdog();
  notifier.status('draining 3 jobs');
  assert.equal(
    calls.map((c) => c.args),
    [
      ['--pid=7', 'STOPPING=1'],
      ['--pid=7', 'WATCHDOG=1'],
      ['--pid=7', '--status=draining 3 jobs'],
    ],
  );
});

test('default pid: no pid option → --pid=<process.pid>', () => {
  const { calls, exec } = recorder();
  createNotifier(SOCKET_ENV, { exec }).watchdog();
  assert.equal(calls[0]?.args, [`--pid=${process.pid}`, 'WATCHDOG=1']);
});

test('status: text with newlines → flattened so it cannot inject a second variable', () => {
  const { calls, exec } = recorder();
  createNotifier(SOCKET_ENV, { exec, pid: 7 }).status('a\nREADY=1\r\nb');
  assert.equal(calls[0]?.args, ['--pid=7', '--status=a READY=1 b']);
});

test('exec env: the env given to createNotifier → passed to the helper (its NOTIFY_SOCKET)', () => {
  const { calls, exec } = recorder();
  const env = { NOTIFY_SOCKET: '@custom-abstract' };
  createNotifier(env, { exec, pid: 1 }).ready();
  assert.is(calls[0]?.env, env);
});

test('helper fails → onError gets an Error naming the command, nothing is thrown', async () => {
  const errors: Error[] = [];
  const { exec } = recorder(new Error('exit 1'));
  const notifier = createNotifier(SOCKET_ENV, {
    exec,
    pid: 7,
    onError: (e) => errors.push(e),
  });
  notifier.stopping();
  await sleep(0);
  assert.is(errors.length, 1);
  assert.match(errors[0]!.message, 'systemd-notify --pid=7 STOPPING=1 failed: exit 1');
});

test('exec throws synchronously → reported to onError, not thrown to the caller', () => {
  const errors: Error[] = [];
  const exec: ExecFn = () => {
    throw new Error('spawn EAGAIN');
  };
  const notifier = createNotifier(SOCKET_ENV, { exec, onError: (e) => errors.push(e) });
  notifier.ready();
  assert.is(errors.length, 1);
  assert.match(errors[0]!.message, 'spawn EAGAIN');
});

test('helper fails, no onError → silently dropped, nothing is thrown', async () => {
  const { exec } = recorder(new Error('boom'));
  createNotifier(SOCKET_ENV, { exec }).watchdog();
  await sleep(0);
});

test('startWatchdog: WATCHDOG_USEC=200000 → WATCHDOG=1 pings, none after stop', async () => {
  const { calls, exec } = recorder();
  const notifier = createNotifier({ ...SOCKET_ENV, WATCHDOG_USEC: '200000' }, { exec, pid: 9 });
  const stop = notifier.startWatchdog();
  // Waits for the event, not a fixed time: a loaded machine may run the 100 ms timer late.
  for (let i = 0; i < 500 && calls.length === 0; i++) await sleep(20);
  assert.ok(calls.length >= 1, `expected a ping, got ${calls.length}`);
  assert.equal(calls[0]?.args, ['--pid=9', 'WATCHDOG=1']);
  stop();
  const after = calls.length;
  await sleep(250);
  assert.is(calls.length, after, 'pings continued after stop()');
});

test('startWatchdog: WATCHDOG_USEC unset → no timer, stop is callable', async () => {
  const { calls, exec } = recorder();
  const stop = createNotifier(SOCKET_ENV, { exec }).startWatchdog();
  await sleep(20);
  stop();
  assert.equal(calls, []);
});

test('watchdogIntervalMs: WATCHDOG_USEC / 2 in ms; invalid, zero or another PID → null', () => {
  assert.is(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }, 5), 15_000);
  assert.is(watchdogIntervalMs({ WATCHDOG_USEC: '200000' }, 5), 100);
  assert.is(watchdogIntervalMs({ WATCHDOG_USEC: '200000', WATCHDOG_PID: '5' }, 5), 100);
  assert.is(watchdogIntervalMs({ WATCHDOG_USEC: '200000', WATCHDOG_PID: '6' }, 5), null);
  assert.is(watchdogIntervalMs({ WATCHDOG_USEC: '0' }, 5), null);
  assert.is(watchdogIntervalMs({ WATCHDOG_USEC: 'abc' }, 5), null);
  assert.is(watchdogIntervalMs({}, 5), null);
});

test('real systemd-notify: NOTIFY_SOCKET to a missing path → onError called, nothing thrown', async () => {
  const errors: Error[] = [];
  const notifier = createNotifier(
    { PATH: process.env.PATH, NOTIFY_SOCKET: '/nonexistent/qmkd-test/notify' },
    { onError: (e) => errors.push(e) },
  );
  assert.is(notifier.enabled, true);
  notifier.ready('test');
  // Either the binary ran and failed to reach the socket, or it is not installed (ENOENT): both
  // must arrive as one onError call.
  for (let i = 0; i < 100 && errors.length === 0; i++) await sleep(50);
  assert.is(errors.length, 1, 'onError was not called within 5 s');
  assert.match(errors[0]!.message, /systemd-notify --pid=\d+ --ready --status=test failed/);
});

test('real spawn: helper binary missing → onError with ENOENT, nothing thrown', async () => {
  const errors: Error[] = [];
  createNotifier(
    { PATH: process.env.PATH, NOTIFY_SOCKET: '/nonexistent/notify' },
    { binary: '/nonexistent/qmkd-test/systemd-notify', onError: (e) => errors.push(e) },
  ).watchdog();
  for (let i = 0; i < 100 && errors.length === 0; i++) await sleep(50);
  assert.is(errors.length, 1);
  assert.match(errors[0]!.message, 'ENOENT');
});

test('datagram: each notification → one datagram of newline-separated assignments, no helper', () => {
  const { calls, exec } = recorder();
  const sent: [string, string][] = [];
  const n = createNotifier(SOCKET_ENV, {
    exec,
    pid: 7,
    datagram: (path, message) => {
      sent.push([path, message]);
      return 0;
    },
  });
  assert.is(n.via, 'socket');
  n.ready('serving\non x');
  n.status('draining');
  n.stopping();
  n.watchdog();
  assert.equal(sent, [
    ['/run/systemd/notify', 'READY=1\nSTATUS=serving on x'],
    ['/run/systemd/notify', 'STATUS=draining'],
    ['/run/systemd/notify', 'STOPPING=1'],
    ['/run/systemd/notify', 'WATCHDOG=1'],
  ]);
  assert.is(calls.length, 0, 'no helper process');
});

test('datagram: the sender fails (errno) or throws → onError names it, nothing is thrown', () => {
  const errors: Error[] = [];
  let throwNext = false;
  const n = createNotifier(SOCKET_ENV, {
    datagram: () => {
      if (throwNext) throw new Error('boom');
      return 111;
    },
    onError: (e) => errors.push(e),
  });
  n.ready();
  throwNext = true;
  n.watchdog();
  assert.is(errors.length, 2);
  assert.match(errors[0]!.message, 'sd_notify READY=1 to /run/systemd/notify failed: errno 111');
  assert.match(errors[1]!.message, 'sd_notify WATCHDOG=1 to /run/systemd/notify failed: boom');
});

test('datagram: NOTIFY_SOCKET unset → the sender is never called', () => {
  let called = 0;
  const n = createNotifier(
    {},
    {
      datagram: () => {
        called++;
        return 0;
      },
    },
  );
  n.ready();
  n.stopping();
  assert.is(called, 0);
  assert.is(n.enabled, false);
});

test.run();
