/**
 * Every mutation commits with its audit record in the same transaction: checked on the commits the
 * kernel hands to the store port (one commit = one transaction).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { kernelWithTenant } from '../support/fakes.js';

test('release: each qubit deletion commits with its ReleaseQubit audit record and op-log entry', async () => {
  const { kernel, principal, session, store } = await kernelWithTenant('pro');
  const qs = await kernel.sessions.allocate(principal, session, 3, '');
  await kernel.interactive.apply(principal, [
    { kind: 'CNOT', qubits: [qs[0]!.handle, qs[1]!.handle], theta: 0 },
  ]);
  store.commits.length = 0;
  await kernel.sessions.release(
    principal,
    qs.map((q) => q.handle),
  );
  assert.is(store.commits.length, 3);
  for (const c of store.commits) {
    const dels = c.records.filter((r) => r.op === 'del' && r.db === 'qubits');
    assert.is(dels.length, 1);
    assert.equal(
      c.audit.map((a) => [a.action, a.target]),
      [['ReleaseQubit', dels[0]!.key]],
    );
    assert.ok(
      c.oplog.some((e) => e.kind === 'drop'),
      'the cluster drop is in the same commit',
    );
  }
});

test('close session: session deletion and its audit record in one commit; sweep audits as the kernel', async () => {
  const { kernel, principal, store, clock } = await kernelWithTenant('pro');
  const { handle } = await kernel.sessions.open(principal, [], 60);
  await kernel.sessions.allocate(principal, handle, 2, '');
  store.commits.length = 0;
  clock.now += 61_000;
  assert.is(await kernel.sessions.sweepExpired(), 1);
  const sessionCommit = store.commits.find((c) => c.records.some((r) => r.db === 'sessions'));
  assert.ok(sessionCommit);
  assert.equal(
    sessionCommit!.audit.map((a) => [a.actor, a.action]),
    [['kernel', 'SessionExpired']],
  );
  const releases = store.commits.filter((c) => c.audit.some((a) => a.action === 'ReleaseQubit'));
  assert.is(releases.length, 2);
  assert.ok(releases.every((c) => c.audit[0]!.actor === 'kernel'));
});

test('gates: each plan commits its op-log entry with its audit record', async () => {
  const { kernel, principal, session, store } = await kernelWithTenant('pro');
  const qs = await kernel.sessions.allocate(principal, session, 4, '');
  store.commits.length = 0;
  await kernel.interactive.apply(principal, [
    { kind: 'H', qubits: [qs[0]!.handle], theta: 0 },
    { kind: 'H', qubits: [qs[1]!.handle], theta: 0 },
  ]);
  assert.is(store.commits.length, 2, 'two independent plans');
  for (const c of store.commits) {
    assert.is(c.oplog.length, 1);
    assert.is(c.audit.length, 1);
    assert.is(c.audit[0]!.action, 'ApplyGates');
  }
});

test.run();
