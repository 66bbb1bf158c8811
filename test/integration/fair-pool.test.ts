/**
 * Interactive work shares the simulation pool by weighted fair queuing across tenants, through
 * the real daemon: while tenant A has a dozen heavy ApplyGates calls waiting for the pool, tenant
 * B's one call is served next, not after A's backlog. Asserted on completion order (no timings):
 * with a first-come queue B would finish after nearly all of A's calls. B is sent once the daemon
 * reports A's backlog waiting for the pool (status `pool_plans_queued`), not after a fixed sleep:
 * on a fast machine a sleep let A's whole backlog drain before B arrived.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type AnyClient,
  type Daemon,
  adminClient,
  call,
  newTenant,
  removeStateDir,
  sleep,
  startDaemon,
} from '../support/daemon.js';

interface Q {
  qubit_id: string;
  handle: string;
}

let d: Daemon;
let A: AnyClient;
let B: AnyClient;
let admin: AnyClient;

test.before(async () => {
  d = await startDaemon();
  A = (await newTenant(d, 'pool-a')).client;
  B = (await newTenant(d, 'pool-b')).client;
  admin = adminClient(d);
});

test.after(async () => {
  A.close();
  B.close();
  admin.close();
  await d.stop();
  removeStateDir(d.stateDir);
});

/** One cluster of `n` qubits (a GHZ chain), as qubit handles. */
async function cluster(client: AnyClient, n: number): Promise<string[]> {
  const session = (await call<{ session_handle: string }>(client, 'OpenSession', {}))
    .session_handle;
  const qs = (
    await call<{ qubits: Q[] }>(client, 'AllocateQubits', { session_handle: session, count: n })
  ).qubits.map((q) => q.handle);
  await call(client, 'ApplyGates', {
    gates: [
      { kind: 'GATE_KIND_H', qubits: [qs[0]] },
      ...qs.slice(1).map((q, i) => ({ kind: 'GATE_KIND_CNOT', qubits: [qs[i], q] })),
    ],
  });
  return qs;
}

/**
 * A call of `k` layers on a cluster, each rotations on every qubit then a CNOT ladder from the
 * first qubit to every other: one pool task whose gates fusion cannot fold into a few passes.
 */
const layers = (qs: string[], k: number) => ({
  gates: Array.from({ length: k }, (_, r) => [
    ...qs.map((q) => ({ kind: 'GATE_KIND_RX', qubits: [q], theta: 0.1 + r })),
    ...qs.slice(1).map((q) => ({ kind: 'GATE_KIND_CNOT', qubits: [qs[0], q] })),
  ]).flat(),
});

/**
 * Waits until at least `n` interactive plans wait for a pool thread (all tenants); fails if the
 * calls that would make them all end first.
 */
async function plansQueued(n: number, ended: () => boolean): Promise<void> {
  for (;;) {
    const s = await call<{ pool_plans_queued: number }>(admin, 'GetStatus', {});
    if (s.pool_plans_queued >= n) return;
    assert.not.ok(ended(), `the backlog ended before ${n} plans were seen queued`);
    await sleep(2);
  }
}

test('a quiet tenant’s interactive call is served before a noisy tenant’s pool backlog', async () => {
  const heavy = await Promise.all(Array.from({ length: 12 }, () => cluster(A, 18)));
  const quiet = await cluster(B, 14);
  const order: string[] = [];
  const backlog = heavy.map((qs, i) =>
    call(A, 'ApplyGates', layers(qs, 8)).then(() => order.push(`a${i}`)),
  );
  // A's calls hold the 3 threads and at least 6 more wait behind them.
  await plansQueued(6, () => order.length === heavy.length);
  const bDone = call(B, 'ApplyGates', layers(quiet, 1)).then(() => order.push('b'));
  await Promise.all([...backlog, bDone]);
  const aBefore = order.indexOf('b');
  // The pool has 3 threads here (2 job slots + 1); fair queuing puts B right behind the tasks
  // already running. A first-come queue would put it behind the whole backlog (about 9 more).
  assert.ok(aBefore <= 6, `B finished after ${aBefore} of A's 12 calls: ${order.join(' ')}`);
});

test.run();
