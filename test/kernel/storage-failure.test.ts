/**
 * A failed write acknowledges nothing and leaves nothing behind: record-only changes are undone
 * in memory (no phantom session, channel, tenant or key; quotas count only what committed), a
 * failed write of simulator effects stops the kernel (it restarts from the durable state), and
 * the free-space watermark refuses state-growing work while releases, closes and reads pass.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KernelError } from '../../src/kernel/errors.js';
import { kernelWithTenant } from '../support/fakes.js';

const full = () => new KernelError('STORAGE_FULL', 'storage: the disk is full', 'storage');

async function refusedWith(p: Promise<unknown>, code: string): Promise<KernelError> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, KernelError);
    assert.is((err as KernelError).code, code);
    return err as KernelError;
  }
  throw new Error(`expected ${code}, the call succeeded`);
}

test('open session: the write fails → STORAGE_FULL, no session left, the quota slot is free', async () => {
  const { kernel, principal, store, tenant } = await kernelWithTenant('pro');
  const max = kernel.principals.quotaOf(tenant).sessionsMax;
  const before = kernel.table.sessionCount; // the fixture's session
  store.failWith = full();
  for (let i = 0; i < max + 2; i++)
    await refusedWith(kernel.sessions.open(principal, [], 0), 'STORAGE_FULL');
  assert.is(kernel.table.sessionCount, before);
  assert.is(kernel.sessions.usageOf(principal.tenantId).sessionsOpen, before);
  store.failWith = null;
  // Every slot the failures would have taken is still there.
  for (let i = before; i < max; i++) await kernel.sessions.open(principal, [], 0);
  await refusedWith(kernel.sessions.open(principal, [], 0), 'QUOTA_EXCEEDED');
  assert.not.ok(kernel.durability.diverged);
});

test('channel request and revoke: the write fails → the channel is gone / keeps its state', async () => {
  const { kernel, admin, principal, store, clock } = await kernelWithTenant('pro');
  const peer = await admin.createTenant('peer', 'pro', 0, []);
  const peerP = kernel.principals.authenticate(peer.apiKey);
  const farFuture = clock.now + 3_600_000;
  store.failWith = full();
  await refusedWith(kernel.firewall.request(principal, 'peer', 3, farFuture, 'x'), 'STORAGE_FULL');
  assert.is(kernel.channels.countOf(principal.tenantId), 0);
  assert.is(kernel.channels.countOf(peerP.tenantId), 0);
  store.failWith = null;
  const c = await kernel.firewall.request(principal, 'peer', 3, farFuture, 'x');
  store.failWith = full();
  await refusedWith(kernel.firewall.respond(peerP, c.id, true, ''), 'STORAGE_FULL');
  assert.is(kernel.channels.get(c.id)!.status, 'pending');
  assert.is(kernel.channels.get(c.id)!.approvals.length, 1);
  await refusedWith(kernel.firewall.revoke(principal, c.id, 'no'), 'STORAGE_FULL');
  assert.is(kernel.channels.get(c.id)!.status, 'pending');
  assert.is(kernel.channels.get(c.id)!.endReason, '');
  store.failWith = null;
  await kernel.firewall.respond(peerP, c.id, true, '');
  assert.is(kernel.channels.get(c.id)!.status, 'approved');
});

test('operator: create tenant, update, create and revoke key fail → memory as before', async () => {
  const { kernel, admin, store, tenant } = await kernelWithTenant('pro');
  store.failWith = full();
  await refusedWith(admin.createTenant('ghost', 'pro', 0, []), 'STORAGE_FULL');
  assert.not.ok(kernel.principals.tenantByName('ghost') !== undefined);
  await refusedWith(admin.suspend(tenant.id, 'x'), 'STORAGE_FULL');
  assert.is(kernel.principals.tenant(tenant.id)!.status, 'active');
  const keys = admin.listKeys(tenant.id).length;
  await refusedWith(admin.createKey(tenant.id, [], 'ci'), 'STORAGE_FULL');
  assert.is(admin.listKeys(tenant.id).length, keys);
  const [key] = admin.listKeys(tenant.id);
  await refusedWith(admin.revokeKey(key!.keyId), 'STORAGE_FULL');
  assert.not.ok(kernel.principals.credential(key!.keyId)!.revoked);
  store.failWith = null;
  assert.not.ok(
    store.commits.some((c) =>
      c.audit.some((a) => a.action === 'CreateTenant' && a.target !== tenant.id),
    ),
  );
  const ghost = await admin.createTenant('ghost', 'pro', 0, []);
  // A tenant without sessions: its deletion is record-only and is undone whole.
  store.failWith = full();
  await refusedWith(admin.delete('ghost'), 'STORAGE_FULL');
  assert.ok(kernel.principals.tenantByName('ghost') !== undefined);
  assert.not.ok(kernel.principals.credential(ghost.credential.keyId)!.revoked);
  assert.is(kernel.principals.authenticate(ghost.apiKey).tenantId, ghost.tenant.id);
  assert.not.ok(kernel.durability.diverged);
});

test('gates: the write of simulator effects fails → diverged: told once, every decision refused', async () => {
  const { kernel, principal, session, store } = await kernelWithTenant('pro');
  const qs = await kernel.sessions.allocate(principal, session, 2, '');
  const told: Error[] = [];
  kernel.durability.onDiverged = (e) => told.push(e);
  store.failWith = full();
  await refusedWith(
    kernel.interactive.apply(principal, [{ kind: 'H', qubits: [qs[0]!.handle], theta: 0 }]),
    'STORAGE_FULL',
  );
  assert.ok(kernel.durability.diverged);
  assert.is(told.length, 1);
  store.failWith = null;
  const err = await refusedWith(kernel.sessions.open(principal, [], 0), 'STORAGE_FAILED');
  assert.match(err.message, /restarting to reload the acknowledged state/);
  await refusedWith(
    kernel.interactive.apply(principal, [{ kind: 'X', qubits: [qs[1]!.handle], theta: 0 }]),
    'STORAGE_FAILED',
  );
  assert.is(told.length, 1);
});

test('watermark: below it → STORAGE_FULL for growth; release, close and usage still pass', async () => {
  const { kernel, principal, session, store } = await kernelWithTenant('pro');
  const qs = await kernel.sessions.allocate(principal, session, 2, '');
  store.low = { freeBytes: 1000, minBytes: 4096 };
  const commits = store.commits.length;
  const err = await refusedWith(kernel.sessions.open(principal, [], 0), 'STORAGE_FULL');
  assert.match(
    err.message,
    /^storage_free_min_bytes: 1000 bytes free .* below the watermark of 4096/,
  );
  assert.is(err.field, 'storage_free_min_bytes');
  await refusedWith(kernel.sessions.allocate(principal, session, 1, ''), 'STORAGE_FULL');
  await refusedWith(
    kernel.interactive.apply(principal, [{ kind: 'H', qubits: [qs[0]!.handle], theta: 0 }]),
    'STORAGE_FULL',
  );
  await refusedWith(
    kernel.interactive.measure(principal, [{ qubit: qs[0]!.handle, basis: 'Z', angle: 0 }]),
    'STORAGE_FULL',
  );
  assert.is(store.commits.length, commits, 'nothing refused was written');
  assert.is(kernel.sessions.usageOf(principal.tenantId).qubitsLive, 2);
  assert.is(await kernel.sessions.release(principal, [qs[0]!.handle]), 1);
  assert.is(await kernel.sessions.close(principal, session), 1);
  store.low = null;
  await kernel.sessions.open(principal, [], 0);
  assert.not.ok(kernel.durability.diverged);
});

test.run();
