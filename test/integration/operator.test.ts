/**
 * The operator's view through the real daemon: qmkctl over the admin socket (mode 0600), health
 * checks, and a clean SIGTERM exit. State survives a restart.
 */
import { statSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type Daemon,
  call,
  callError,
  kernelClient,
  removeStateDir,
  startDaemon,
} from '../support/daemon.js';
import { runQmkctl } from '../support/qmkctl.js';

let d: Daemon;

const ctl = (...args: string[]) => runQmkctl(d.adminSocket, args);

test.before(async () => {
  d = await startDaemon();
});

test.after(async () => {
  if (d) {
    await d.stop();
    removeStateDir(d.stateDir);
  }
});

test('admin socket: mode 0600', () => {
  assert.is(statSync(d.adminSocket).mode & 0o777, 0o600);
});

test('qmkctl: tenant create → key works on the tenant API; list and show include it', async () => {
  const r = await ctl('--json', 'tenant', 'create', 'acme', '--tier', 'pro');
  assert.is(r.code, 0, r.err);
  const created = JSON.parse(r.out) as {
    api_key: string;
    tenant: { tenant_id: string; tier: string };
  };
  assert.is(created.tenant.tier, 'TIER_PRO');
  const c = kernelClient(d, created.api_key);
  const usage = await call<{ tenant_id: string; quota: { qubits_per_cluster_max: number } }>(
    c,
    'GetUsage',
    {},
  );
  assert.is(usage.tenant_id, created.tenant.tenant_id);
  const list = await ctl('tenant', 'list');
  assert.match(list.out, /acme\s+pro/);
  const show = await ctl('--json', 'tenant', 'show', 'acme');
  assert.is(JSON.parse(show.out).tenant.name, 'acme');
  c.close();
});

test('qmkctl: update quota → the tenant sees it; suspend → refused with reason; resume → served', async () => {
  const created = JSON.parse((await ctl('--json', 'tenant', 'create', 'beta')).out) as {
    api_key: string;
  };
  const c = kernelClient(d, created.api_key);
  assert.is((await ctl('tenant', 'update', 'beta', '--qubits-per-cluster-max', '5')).code, 0);
  const u = await call<{ quota: { qubits_per_cluster_max: number } }>(c, 'GetUsage', {});
  assert.is(u.quota.qubits_per_cluster_max, 5);
  assert.is((await ctl('tenant', 'suspend', 'beta', '--reason', 'abuse report 42')).code, 0);
  const err = await callError(c, 'GetUsage', {});
  assert.is(err.code, grpc.status.PERMISSION_DENIED);
  assert.match(err.details, /abuse report 42/);
  assert.is((await ctl('tenant', 'resume', 'beta')).code, 0);
  await call(c, 'GetUsage', {});
  c.close();
});

test('qmkctl: key create/list/revoke → the revoked key fails on its next call', async () => {
  await ctl('tenant', 'create', 'gamma');
  const k = JSON.parse(
    (await ctl('--json', 'key', 'create', 'gamma', '--role', 'researcher', '--label', 'ci')).out,
  ) as {
    api_key: string;
    key: { key_id: string; roles: string[] };
  };
  assert.equal(k.key.roles, ['ROLE_RESEARCHER']);
  const c = kernelClient(d, k.api_key);
  await call(c, 'GetUsage', {});
  const list = await ctl('key', 'list', 'gamma');
  assert.match(list.out, new RegExp(k.key.key_id));
  assert.is((await ctl('key', 'revoke', k.key.key_id)).code, 0);
  assert.is((await callError(c, 'GetUsage', {})).code, grpc.status.UNAUTHENTICATED);
  c.close();
});

test('qmkctl: tenant delete → its key fails, a second delete is NOT_FOUND (exit 1)', async () => {
  const created = JSON.parse((await ctl('--json', 'tenant', 'create', 'delta')).out) as {
    api_key: string;
  };
  const c = kernelClient(d, created.api_key);
  const s = await call<{ session_handle: string }>(c, 'OpenSession', {});
  await call(c, 'AllocateQubits', { session_handle: s.session_handle, count: 3 });
  const del = await ctl('--json', 'tenant', 'delete', 'delta', '--yes');
  assert.is(del.code, 0, del.err);
  assert.equal(JSON.parse(del.out), {
    sessions_closed: 1,
    keys_revoked: 1,
    data_key_destroyed: true,
  });
  assert.is((await callError(c, 'GetUsage', {})).code, grpc.status.UNAUTHENTICATED);
  const again = await ctl('tenant', 'delete', 'delta', '--yes');
  assert.is(again.code, 1);
  assert.match(again.err, /NOT_FOUND/);
  c.close();
});

test('qmkctl: bad input → INVALID_ARGUMENT / ALREADY_EXISTS naming the field, exit 1', async () => {
  const bad = await ctl('tenant', 'create', 'Bad Name!');
  assert.is(bad.code, 1);
  assert.match(bad.err, /INVALID_ARGUMENT: name:/);
  const dup = await ctl('tenant', 'create', 'acme');
  assert.match(dup.err, /ALREADY_EXISTS: name:/);
});

test('qmkctl: signing-key rotate and status → new key id reported by status', async () => {
  const r = JSON.parse((await ctl('--json', 'signing-key', 'rotate')).out) as {
    active: { key_id: number };
  };
  const st = JSON.parse((await ctl('--json', 'status')).out) as {
    signing_key_id: number;
    tenants: number;
    audit_seq: number;
  };
  assert.is(st.signing_key_id, r.active.key_id);
  assert.ok(st.tenants >= 3);
  assert.ok(st.audit_seq > 5);
});

test('health: SERVING while up (no credentials needed)', async () => {
  const { protoPath } = await import('grpc-health-check');
  const loader = await import('@grpc/proto-loader');
  const def = grpc.loadPackageDefinition(
    loader.loadSync(protoPath, { enums: String }),
  ) as unknown as {
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  const c = new def.grpc.health.v1.Health(
    d.address,
    grpc.credentials.createInsecure(),
  ) as unknown as grpc.Client & {
    check: (r: object, cb: (e: Error | null, res: { status: string }) => void) => void;
  };
  const res = await new Promise<{ status: string }>((ok, no) =>
    c.check({ service: '' }, (e, r) => (e ? no(e) : ok(r))),
  );
  assert.is(res.status, 'SERVING');
  c.close();
});

test('restart: SIGTERM → exit 0; tenants and keys survive the restart', async () => {
  const created = JSON.parse((await ctl('--json', 'tenant', 'create', 'epsilon')).out) as {
    api_key: string;
  };
  assert.is(await d.stop(), 0);
  d = await startDaemon(d.stateDir);
  const c = kernelClient(d, created.api_key);
  await call(c, 'GetUsage', {});
  c.close();
  assert.match((await ctl('tenant', 'list')).out, /epsilon/);
});

test('log pipes closed under it (the reader went away): the daemon serves on and SIGTERM still exits 0', async () => {
  const lone = await startDaemon();
  lone.child.stdout!.destroy();
  lone.child.stderr!.destroy();
  // Calls that log (a failed one logs nothing on purpose; a new tenant logs nothing either), then
  // the shutdown's own lines: every write now fails with EPIPE.
  const c = kernelClient(lone);
  const err = await callError(c, 'GetUsage', {});
  assert.is(err.code, grpc.status.UNAUTHENTICATED);
  c.close();
  const code = await Promise.race([
    lone.stop(),
    new Promise((r) => setTimeout(() => r('no exit in 15 s'), 15_000)),
  ]);
  if (code !== 0) await lone.kill(); // never leave a spinning daemon behind
  removeStateDir(lone.stateDir);
  assert.is(code, 0, 'exit status after SIGTERM');
});

test.run();
