/**
 * Interactive work shares the simulation pool by weighted fair queuing across tenants, through
 * the real daemon: while tenant A has a dozen heavy ApplyGates calls waiting for the pool, tenant
 * B's one call is served next, not after A's backlog. Asserted on completion order (no timings):
 * with a first-come queue B would finish after nearly all of A's calls.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type AnyClient,
  type Daemon,
  call,
  newTenant,
  removeStateDir,
  startDaemon,
} from '../support/daemon.js';

interface Q {
  qubit_id: string;
  handle: string;
}

let d: Daemon;
let A: AnyClient;
let B: AnyClient;

test.before(async () => {
  d = await startDaemon();
  A = (await newTenant(d, 'pool-a')).client;
  B = (await newTenant(d, 'pool-b')).client;
});

test.after(async () => {
  A.close();
  B.close();
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

/** A call of `k` rotations on every qubit of a cluster: one pool task of 2^n · k·n amplitude updates. */
const rotations = (qs: string[], k: number) => ({
  gates: Array.from({ length: k }, (_, r) =>
    qs.map((q) => ({ kind: 'GATE_KIND_RX', qubits: [q], theta: 0.1 + r })),
  ).flat(),
});

test('a quiet tenant’s interactive call is served before a noisy tenant’s pool backlog', async () => {
  const heavy = await Promise.all(Array.from({ length: 12 }, () => cluster(A, 18)));
  const quiet = await cluster(B, 14);
  const order: string[] = [];
  const backlog = heavy.map((qs, i) =>
    call(A, 'ApplyGates', rotations(qs, 2)).then(() => order.push(`a${i}`)),
  );
  // Let A's calls reach the pool queue first.
  await new Promise((r) => setTimeout(r, 30));
  const bDone = call(B, 'ApplyGates', rotations(quiet, 1)).then(() => order.push('b'));
  await Promise.all([...backlog, bDone]);
  const aBefore = order.indexOf('b');
  // The pool has 3 threads here (2 job slots + 1); fair queuing puts B right behind the tasks
  // already running. A first-come queue would put it behind the whole backlog (about 9 more).
  assert.ok(aBefore <= 6, `B finished after ${aBefore} of A's 12 calls: ${order.join(' ')}`);
});

test.run();
