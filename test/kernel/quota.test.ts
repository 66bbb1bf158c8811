/**
 * Kernel limits at max and max + 1, decided in-process with in-memory ports.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KernelError } from '../../src/kernel/errors.js';
import {
  GATES_PER_CALL_MAX,
  QUBITS_PER_ALLOCATION_MAX,
  TIER_DEFAULTS,
} from '../../src/kernel/limits.js';
import { kernelWithTenant } from '../support/fakes.js';

async function code(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    if (e instanceof KernelError) return `${e.code}:${e.field}`;
    throw e;
  }
  return 'ok';
}

test('quota: qubits per cluster at max → allowed; max + 1 → QUOTA_EXCEEDED naming the limit', async () => {
  const { kernel, principal, session, sim, admin, tenant } = await kernelWithTenant('pro');
  await admin.update(tenant.id, '', 0, { qubitsPerClusterMax: 4 });
  const qs = await kernel.sessions.allocate(principal, session, 5, '');
  const chain = (n: number) =>
    qs.slice(1, n).map((q) => ({ kind: 'CNOT', qubits: [qs[0]!.handle, q.handle], theta: 0 }));
  assert.is(await code(kernel.interactive.apply(principal, chain(4))), 'ok');
  const before = sim.plans.length;
  assert.is(
    await code(kernel.interactive.apply(principal, chain(5))),
    'QUOTA_EXCEEDED:qubits_per_cluster_max',
  );
  assert.is(sim.plans.length, before, 'nothing ran');
  assert.is(kernel.graph.clusterOf(qs[4]!.id).qubits.length, 1, 'graph unchanged');
});

test('quota: live qubits at max → allowed; max + 1 → QUOTA_EXCEEDED', async () => {
  const { kernel, principal, session, admin, tenant } = await kernelWithTenant('pro');
  await admin.update(tenant.id, '', 0, { qubitsLiveMax: 10 });
  assert.is(await code(kernel.sessions.allocate(principal, session, 10, '')), 'ok');
  assert.is(
    await code(kernel.sessions.allocate(principal, session, 1, '')),
    'QUOTA_EXCEEDED:qubits_live_max',
  );
});

test('quota: state bytes — an allocation or merge past the limit → QUOTA_EXCEEDED', async () => {
  const { kernel, principal, session, admin, tenant } = await kernelWithTenant('pro');
  // 3 one-qubit clusters = 96 bytes; merging two of them makes 64 + 32 = 96 bytes.
  await admin.update(tenant.id, '', 0, { stateBytesMax: 96 });
  const qs = await kernel.sessions.allocate(principal, session, 3, '');
  assert.is(
    await code(kernel.sessions.allocate(principal, session, 1, '')),
    'QUOTA_EXCEEDED:state_bytes_max',
  );
  assert.is(
    await code(
      kernel.interactive.apply(principal, [
        { kind: 'CNOT', qubits: [qs[0]!.handle, qs[1]!.handle], theta: 0 },
      ]),
    ),
    'ok',
  );
  // Merging all three: 8 amplitudes = 128 bytes > 96.
  assert.is(
    await code(
      kernel.interactive.apply(principal, [
        { kind: 'CNOT', qubits: [qs[0]!.handle, qs[2]!.handle], theta: 0 },
      ]),
    ),
    'QUOTA_EXCEEDED:state_bytes_max',
  );
});

test('quota: sessions at max → allowed; max + 1 → QUOTA_EXCEEDED', async () => {
  const { kernel, principal, admin, tenant } = await kernelWithTenant('pro');
  await admin.update(tenant.id, '', 0, { sessionsMax: 3 });
  assert.is(await code(kernel.sessions.open(principal, [], 0)), 'ok');
  assert.is(await code(kernel.sessions.open(principal, [], 0)), 'ok');
  assert.is(await code(kernel.sessions.open(principal, [], 0)), 'QUOTA_EXCEEDED:sessions_max');
});

test('quota: gates per call at max → allowed; max + 1 → QUOTA_EXCEEDED', async () => {
  const { kernel, principal, session } = await kernelWithTenant('pro');
  const [q] = await kernel.sessions.allocate(principal, session, 1, '');
  const gates = (n: number) =>
    Array.from({ length: n }, () => ({ kind: 'X', qubits: [q!.handle], theta: 0 }));
  assert.is(await code(kernel.interactive.apply(principal, gates(GATES_PER_CALL_MAX))), 'ok');
  assert.is(
    await code(kernel.interactive.apply(principal, gates(GATES_PER_CALL_MAX + 1))),
    'QUOTA_EXCEEDED:gates_per_call_max',
  );
});

test('limits: allocation count at max → allowed; max + 1 → LIMIT_EXCEEDED', async () => {
  const { kernel, principal, session, admin, tenant } = await kernelWithTenant('enterprise');
  void admin;
  void tenant;
  assert.is(
    await code(kernel.sessions.allocate(principal, session, QUBITS_PER_ALLOCATION_MAX, '')),
    'ok',
  );
  assert.is(
    await code(kernel.sessions.allocate(principal, session, QUBITS_PER_ALLOCATION_MAX + 1, '')),
    'LIMIT_EXCEEDED:count',
  );
});

test('caps: free tier has no CAP_MAGIC → INJECT_T_STATE refused CAP_MISSING; pro → allowed on a fresh qubit only', async () => {
  const free = await kernelWithTenant('free');
  const [f] = await free.kernel.sessions.allocate(free.principal, free.session, 1, '');
  assert.is(
    await code(
      free.kernel.interactive.apply(free.principal, [
        { kind: 'INJECT_T_STATE', qubits: [f!.handle], theta: 0 },
      ]),
    ),
    'CAP_MISSING:gates[0].qubits[0]',
  );
  const pro = await kernelWithTenant('pro');
  const [q] = await pro.kernel.sessions.allocate(pro.principal, pro.session, 1, '');
  const inject = () =>
    pro.kernel.interactive.apply(pro.principal, [
      { kind: 'INJECT_T_STATE', qubits: [q!.handle], theta: 0 },
    ]);
  assert.is(await code(inject()), 'ok');
  assert.is(await code(inject()), 'QUBIT_NOT_FRESH:gates[0].qubits[0]');
});

test('sessions: requested caps → intersection with the tier; ttl above the maximum → clamped', async () => {
  const { kernel, principal } = await kernelWithTenant('free');
  const { session } = await kernel.sessions.open(principal, ['CAP_COMPUTE', 'CAP_MAGIC'], 10 ** 7);
  assert.equal(session.caps, ['CAP_COMPUTE']);
  assert.is(
    session.expiresAtMs - session.createdAtMs,
    TIER_DEFAULTS.free.quota.sessionTtlSecondsMax * 1000,
  );
});

test('sessions: expired session → SESSION_EXPIRED on use; the sweep releases its qubits', async () => {
  const { kernel, principal, clock } = await kernelWithTenant('pro');
  const { handle } = await kernel.sessions.open(principal, [], 60);
  const qs = await kernel.sessions.allocate(principal, handle, 2, '');
  clock.now += 59_000;
  assert.is(
    await code(
      kernel.interactive.apply(principal, [{ kind: 'X', qubits: [qs[0]!.handle], theta: 0 }]),
    ),
    'ok',
  );
  clock.now += 1_000;
  // The handle's expiry equals the session's: at expiry the handle itself is refused first.
  assert.is(
    await code(
      kernel.interactive.apply(principal, [{ kind: 'X', qubits: [qs[0]!.handle], theta: 0 }]),
    ),
    'HANDLE_EXPIRED:gates[0].qubits[0]',
  );
  assert.is(await kernel.sessions.sweepExpired(), 1);
  assert.is(kernel.table.qubit(qs[0]!.id) !== undefined, false);
  assert.is(kernel.sessions.usageOf(principal.tenantId).qubitsLive, 0);
});

test.run();
