/**
 * The operator's actions on the whole state, through qmkctl and the real daemon: `audit verify`
 * re-hashes the chain, `backup` makes a hot copy that a daemon serves as it was, and
 * `master-key rotate` rewraps the keys so that a restart with the new key serves everything
 * (and the old key opens nothing).
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type Daemon,
  adminClient,
  call,
  jobClient,
  kernelClient,
  newTenant,
  removeStateDir,
  runDaemonToExit,
  runJob,
  startDaemon,
  tempStateDir,
} from '../support/daemon.js';
import { ghzQasm } from '../support/programs.js';
import { runQmkctl } from '../support/qmkctl.js';

const ctl = (d: Daemon, ...args: string[]) => runQmkctl(d.adminSocket, args);

const BELL = ghzQasm(2);

test('audit verify: after activity → ok, every record re-hashed up to the head', async () => {
  const dir = tempStateDir();
  let d: Daemon | undefined;
  try {
    d = await startDaemon(dir);
    const t = await newTenant(d, 'acme');
    for (let i = 0; i < 5; i++) await call(t.client, 'OpenSession', {});
    const r = await ctl(d, '--json', 'audit', 'verify');
    assert.is(r.code, 0, r.err);
    const v = JSON.parse(r.out) as { ok: boolean; records: number; head_seq: number };
    assert.ok(v.ok);
    assert.ok(v.head_seq >= 7);
    assert.is(v.records, v.head_seq);
    const human = await ctl(d, 'audit', 'verify');
    assert.match(human.out, /^result\s+ok$/m);
    t.client.close();
  } finally {
    if (d) await d.stop();
    removeStateDir(dir);
  }
});

test('backup: a hot copy → a daemon on it serves everything acknowledged before it, nothing after', async () => {
  const dir = tempStateDir();
  const parent = tempStateDir();
  const copy = join(parent, 'backup-1');
  let d: Daemon | undefined;
  try {
    d = await startDaemon(dir);
    const before = await newTenant(d, 'before');
    const job = await runJob(jobClient(d, before.apiKey), {
      program: { format: 'PROGRAM_FORMAT_OPENQASM2', source: BELL },
      shots: 200,
      seed: '5',
    });
    assert.is(job.job.state, 'JOB_STATE_DONE');
    const r = await ctl(d, '--json', 'backup', copy);
    assert.is(r.code, 0, r.err);
    const b = JSON.parse(r.out) as { path: string; bytes: number; audit_seq: number };
    assert.is(b.path, copy);
    assert.ok(b.bytes > 0);
    const again = await ctl(d, 'backup', copy);
    assert.is(again.code, 1);
    assert.match(again.err, /exists; a backup goes to a new directory/);
    await newTenant(d, 'after');
    assert.is(await d.stop(), 0);
    d = undefined;
    // Restore: the copy plus the master key the operator kept.
    d = await startDaemon(copy, { QMK_MASTER_KEY_FILE: join(dir, 'master.key') });
    const admin = adminClient(d);
    const names = (
      await call<{ tenants: { name: string }[] }>(admin, 'ListTenants', {})
    ).tenants.map((t) => t.name);
    assert.equal(names, ['before']);
    const result = await call<{ counts: Record<string, number> }>(
      jobClient(d, before.apiKey),
      'GetJobResult',
      { job_id: job.job.job_id },
    );
    assert.equal(result.counts, job.result!.counts);
    await call(kernelClient(d, before.apiKey), 'OpenSession', {});
    const v = await ctl(d, '--json', 'audit', 'verify');
    assert.ok((JSON.parse(v.out) as { ok: boolean }).ok);
    admin.close();
  } finally {
    if (d) await d.stop();
    removeStateDir(dir);
    removeStateDir(parent);
  }
});

test('master-key rotate: rewrapped → restart serves everything; the old key opens nothing', async () => {
  const dir = tempStateDir();
  const spare = tempStateDir();
  let d: Daemon | undefined;
  try {
    d = await startDaemon(dir);
    const t = await newTenant(d, 'acme');
    const job = await runJob(jobClient(d, t.apiKey), {
      program: { format: 'PROGRAM_FORMAT_OPENQASM2', source: BELL },
      shots: 100,
      seed: '3',
    });
    const { session_handle: session } = await call<{ session_handle: string }>(
      t.client,
      'OpenSession',
      {},
    );
    const oldKey = join(spare, 'old.key');
    copyFileSync(join(dir, 'master.key'), oldKey);
    const newKey = join(spare, 'new.key');
    writeFileSync(newKey, randomBytes(32).toString('base64'));
    const bad = await ctl(d, 'master-key', 'rotate', '--new-key-file', join(spare, 'missing.key'));
    assert.is(bad.code, 1);
    assert.match(bad.err, /new_key_file: master key file .* does not exist/);
    const r = await ctl(d, '--json', 'master-key', 'rotate', '--new-key-file', newKey);
    assert.is(r.code, 0, r.err);
    assert.is(
      (JSON.parse(r.out) as { key_file_replaced: string }).key_file_replaced,
      join(dir, 'master.key'),
    );
    t.client.close();
    assert.is(await d.stop(), 0);
    d = undefined;
    // With the old key: refused, nothing served.
    const stale = join(spare, 'stale');
    cpSync(dir, stale, { recursive: true });
    copyFileSync(oldKey, join(stale, 'master.key'));
    const refused = await runDaemonToExit(stale);
    assert.is(refused.code, 1, refused.output);
    assert.match(refused.output, /does not open with this master key/);
    // With the new key (now the directory's key file): everything, handles included.
    d = await startDaemon(dir);
    const result = await call<{ counts: Record<string, number> }>(
      jobClient(d, t.apiKey),
      'GetJobResult',
      { job_id: job.job.job_id },
    );
    assert.equal(result.counts, job.result!.counts);
    const q = await call<{ qubits: unknown[] }>(kernelClient(d, t.apiKey), 'AllocateQubits', {
      session_handle: session,
      count: 1,
    });
    assert.is(q.qubits.length, 1);
  } finally {
    if (d) await d.stop();
    removeStateDir(dir);
    removeStateDir(spare);
  }
});

test.run();
