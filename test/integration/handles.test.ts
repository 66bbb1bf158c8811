/**
 * Handle and credential security through the real daemon: forged and tampered handles, wrong key,
 * expiry, another tenant's handle, a released qubit's handle, rights, attenuation, key rotation,
 * revoked keys and suspended tenants. Each refusal asserts the exact gRPC code and that nothing
 * changed (the qubit still measures as it should).
 */
import { status } from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type AnyClient,
  type Daemon,
  adminClient,
  call,
  callError,
  kernelClient,
  newTenant,
  removeStateDir,
  sleep,
  startDaemon,
} from '../support/daemon.js';

let d: Daemon;
let a: AnyClient;
let b: AnyClient;
let sessionA: string;

interface Q {
  qubit_id: string;
  handle: string;
}

async function allocA(n = 1): Promise<Q[]> {
  const r = await call<{ qubits: Q[] }>(a, 'AllocateQubits', {
    session_handle: sessionA,
    count: n,
  });
  return r.qubits;
}

const x = (h: string) => ({ gates: [{ kind: 'GATE_KIND_X', qubits: [h], theta: 0 }] });
const mz = (h: string) => ({ measurements: [{ qubit: h, basis: 'BASIS_Z', angle: 0 }] });

async function outcome(client: AnyClient, h: string): Promise<number> {
  return (await call<{ outcomes: number[] }>(client, 'MeasureQubits', mz(h))).outcomes[0]!;
}

test.before(async () => {
  d = await startDaemon();
  a = (await newTenant(d, 'alice')).client;
  b = (await newTenant(d, 'bob')).client;
  sessionA = (await call<{ session_handle: string }>(a, 'OpenSession', {})).session_handle;
});

test.after(async () => {
  a?.close();
  b?.close();
  if (d) {
    await d.stop();
    removeStateDir(d.stateDir);
  }
});

test('handle: forged signature → UNAUTHENTICATED, qubit unchanged', async () => {
  const [q] = await allocA();
  const bytes = Buffer.from(q!.handle, 'base64url');
  bytes.fill(7, 70);
  const err = await callError(a, 'ApplyGates', x(bytes.toString('base64url')));
  assert.is(err.code, status.UNAUTHENTICATED);
  assert.match(err.details, /bad signature/);
  assert.is(await outcome(a, q!.handle), 0);
});

test('handle: every single byte flipped → each refused UNAUTHENTICATED, qubit unchanged', async () => {
  const [q] = await allocA();
  const bytes = Buffer.from(q!.handle, 'base64url');
  assert.is(bytes.length, 134);
  for (let i = 0; i < bytes.length; i++) {
    const t = Buffer.from(bytes);
    t[i] = t[i]! ^ 0x01;
    const err = await callError(a, 'ApplyGates', x(t.toString('base64url')));
    assert.is(err.code, status.UNAUTHENTICATED, `byte ${i}: ${err.details}`);
  }
  assert.is(await outcome(a, q!.handle), 0, 'no X was applied');
});

test('handle: unknown key id → UNAUTHENTICATED naming the key', async () => {
  const [q] = await allocA();
  const t = Buffer.from(q!.handle, 'base64url');
  t.writeUInt32BE(999, 66);
  const err = await callError(a, 'ApplyGates', x(t.toString('base64url')));
  assert.is(err.code, status.UNAUTHENTICATED);
  assert.match(err.details, /unknown key/);
});

test('handle: expired → UNAUTHENTICATED', async () => {
  const [q] = await allocA();
  const child = await call<{ handle: string }>(a, 'AttenuateHandle', {
    handle: q!.handle,
    rights: ['RIGHT_COMPUTE', 'RIGHT_MEASURE'],
    expires_at_unix_ms: Date.now() + 2000, // room for the call below on a loaded machine
  });
  await call(a, 'ApplyGates', x(child.handle)); // valid before expiry
  await sleep(2100); // at least 2.1 s after the expiry was set: past it
  const err = await callError(a, 'ApplyGates', x(child.handle));
  assert.is(err.code, status.UNAUTHENTICATED);
  assert.match(err.details, /expired/);
  assert.is(await outcome(a, q!.handle), 1, 'only the one X before expiry applied');
});

test("handle: another tenant's handle → NOT_FOUND, no existence leak, qubit unchanged", async () => {
  const [q] = await allocA();
  const err = await callError(b, 'ApplyGates', x(q!.handle));
  assert.is(err.code, status.NOT_FOUND);
  const err2 = await callError(b, 'MeasureQubits', mz(q!.handle));
  assert.is(err2.code, status.NOT_FOUND);
  assert.is(await outcome(a, q!.handle), 0);
});

test("uniform denial: another tenant's expired or weakened handle reads exactly as a missing resource", async () => {
  const [q, gone] = await allocA(2);
  const soon = Date.now() + 1000;
  const expiring = await call<{ handle: string }>(a, 'AttenuateHandle', {
    handle: q!.handle,
    rights: ['RIGHT_COMPUTE'],
    expires_at_unix_ms: soon,
  });
  const weak = await call<{ handle: string }>(a, 'AttenuateHandle', {
    handle: q!.handle,
    rights: ['RIGHT_MEASURE'],
  });
  await call(a, 'ReleaseQubits', { qubit_handles: [gone!.handle] });
  await sleep(Math.max(0, soon - Date.now()) + 100);
  const missing = await callError(b, 'ApplyGates', x(gone!.handle));
  const foreignExpired = await callError(b, 'ApplyGates', x(expiring.handle));
  const foreignWeak = await callError(b, 'ApplyGates', x(weak.handle));
  const ownMissing = await callError(a, 'ApplyGates', x(gone!.handle));
  for (const err of [missing, foreignExpired, foreignWeak, ownMissing]) {
    assert.is(err.code, status.NOT_FOUND);
    assert.is(err.metadata.get('qmk-error-code')[0], 'NOT_FOUND');
    assert.is(err.details, ownMissing.details, 'the same message on every path');
  }
  assert.is(await outcome(a, q!.handle), 0, 'nothing was applied');
});

test("handle: a released qubit's handle → NOT_FOUND", async () => {
  const [q] = await allocA();
  await call(a, 'ReleaseQubits', { qubit_handles: [q!.handle] });
  const err = await callError(a, 'ApplyGates', x(q!.handle));
  assert.is(err.code, status.NOT_FOUND);
  const again = await callError(a, 'ReleaseQubits', { qubit_handles: [q!.handle] });
  assert.is(again.code, status.NOT_FOUND);
});

test('attenuation: measure-only handle used for a gate → PERMISSION_DENIED; measuring works', async () => {
  const [q] = await allocA();
  const ro = await call<{ handle: string; rights: string[] }>(a, 'AttenuateHandle', {
    handle: q!.handle,
    rights: ['RIGHT_MEASURE'],
  });
  assert.equal(ro.rights, ['RIGHT_MEASURE']);
  const err = await callError(a, 'ApplyGates', x(ro.handle));
  assert.is(err.code, status.PERMISSION_DENIED);
  const rel = await callError(a, 'ReleaseQubits', { qubit_handles: [ro.handle] });
  assert.is(rel.code, status.PERMISSION_DENIED);
  assert.is(await outcome(a, ro.handle), 0);
});

test('attenuation: widening rights or extending expiry → PERMISSION_DENIED', async () => {
  const [q] = await allocA();
  const ro = await call<{ handle: string; expires_at_unix_ms: number }>(a, 'AttenuateHandle', {
    handle: q!.handle,
    rights: ['RIGHT_MEASURE'],
    expires_at_unix_ms: Date.now() + 60_000,
  });
  const widen = await callError(a, 'AttenuateHandle', {
    handle: ro.handle,
    rights: ['RIGHT_MEASURE', 'RIGHT_COMPUTE'],
  });
  assert.is(widen.code, status.PERMISSION_DENIED);
  assert.match(widen.details, /^rights:/);
  const extend = await callError(a, 'AttenuateHandle', {
    handle: ro.handle,
    rights: ['RIGHT_MEASURE'],
    expires_at_unix_ms: ro.expires_at_unix_ms + 1,
  });
  assert.is(extend.code, status.PERMISSION_DENIED);
  assert.match(extend.details, /^expires_at_unix_ms:/);
});

test('handle: session handle where a qubit handle is needed → INVALID_ARGUMENT', async () => {
  const err = await callError(a, 'ApplyGates', x(sessionA));
  assert.is(err.code, status.INVALID_ARGUMENT);
  assert.match(err.details, /gates\[0\]\.qubits\[0\]/);
});

test('rotation: old handles work after rotation; after retiring the old key they fail', async () => {
  const [q] = await allocA();
  const admin = adminClient(d);
  const r1 = await call<{ active: { key_id: number } }>(admin, 'RotateSigningKey', {});
  assert.ok(r1.active.key_id >= 2);
  await call(a, 'ApplyGates', x(q!.handle)); // signed by the previous key, still in grace
  const [fresh] = await allocA(); // signed by the new key
  await call(admin, 'RotateSigningKey', { retire_previous_now: true });
  // q's handle was signed two keys ago (retired with grace, still valid); fresh's key is now retired.
  const err = await callError(a, 'ApplyGates', x(fresh!.handle));
  assert.is(err.code, status.UNAUTHENTICATED);
  assert.match(err.details, /retired/);
  admin.close();
});

test('credentials: none, garbage, revoked key → UNAUTHENTICATED; suspended → PERMISSION_DENIED with reason', async () => {
  const anon = kernelClient(d);
  assert.is((await callError(anon, 'GetUsage', {})).code, status.UNAUTHENTICATED);
  anon.close();
  const junk = kernelClient(d, 'qmk_not-a-real-key');
  assert.is((await callError(junk, 'GetUsage', {})).code, status.UNAUTHENTICATED);
  junk.close();
  const t = await newTenant(d, 'carol');
  await call(t.client, 'GetUsage', {});
  const admin = adminClient(d);
  await call(admin, 'SuspendTenant', { tenant: 'carol', reason: 'unpaid invoice' });
  const sus = await callError(t.client, 'GetUsage', {});
  assert.is(sus.code, status.PERMISSION_DENIED);
  assert.match(sus.details, /unpaid invoice/);
  await call(admin, 'ResumeTenant', { tenant: 'carol' });
  await call(t.client, 'GetUsage', {});
  await call(admin, 'RevokeApiKey', { key_id: t.keyId });
  const rev = await callError(t.client, 'GetUsage', {});
  assert.is(rev.code, status.UNAUTHENTICATED);
  assert.match(rev.details, /revoked/);
  t.client.close();
  admin.close();
});

test('admin: admin methods are not served on the tenant port', async () => {
  const { loadGrpcObject } = await import('../../src/api/proto.js');
  const grpc = await import('@grpc/grpc-js');
  const { AdminService } = loadGrpcObject();
  const c = new AdminService(d.address, grpc.credentials.createInsecure()) as AnyClient;
  const err = await callError(c, 'ListTenants', {});
  assert.ok(
    err.code === status.UNIMPLEMENTED || err.code === status.PERMISSION_DENIED,
    `code ${err.code}`,
  );
  c.close();
});

test.run();
