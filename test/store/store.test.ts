/**
 * The LMDB store on a real environment in a temporary directory: durable commits reload, the
 * schema version is enforced, a tampered audit record stops the store from opening, checkpoints
 * replace the op log they cover.
 */
import { open } from 'lmdb';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { KernelError } from '../../src/kernel/errors.js';
import { LmdbStore, SCHEMA_VERSION, StoreError } from '../../src/store/store.js';
import { removeStateDir, tempStateDir } from '../support/daemon.js';
import { ballast, mountTmpfs } from '../support/tmpfs.js';

const ev = (target: string) => ({ actor: 'op', action: 'Test', target, outcome: 'ok' });

test('store: committed records, audit and op log → present after reopening', async () => {
  const dir = tempStateDir();
  const s = LmdbStore.open(dir);
  await s.commit([{ op: 'put', db: 'tenants', key: 't1', value: { id: 't1', name: 'x' } }], [ev('a')], [
    { kind: 'drop', clusterId: 7 },
  ]);
  await s.commit([], [ev('b')]);
  await s.close();
  const r = LmdbStore.open(dir);
  const load = r.load();
  assert.equal(load.tenants, [{ id: 't1', name: 'x' }]);
  assert.equal(load.oplog, [{ seq: 1, entry: { kind: 'drop', clusterId: 7 } }]);
  assert.is(r.auditHead().seq, 2);
  assert.is(r.verifyAudit(Number.POSITIVE_INFINITY), null);
  await r.close();
  removeStateDir(dir);
});

test('store: a newer schema version → refused with a clear error', async () => {
  const dir = tempStateDir();
  await LmdbStore.open(dir).close();
  const raw = open({ path: `${dir}/qmk.lmdb`, maxDbs: 16 });
  await raw.openDB({ name: 'meta', keyEncoding: 'ordered-binary', encoding: 'msgpack' }).put('schema_version', SCHEMA_VERSION + 1);
  await raw.close();
  assert.throws(() => LmdbStore.open(dir), (e: Error) => e instanceof StoreError && /newer than this qmkd/.test(e.message));
  removeStateDir(dir);
});

test('store: a tampered audit record → the store refuses to open, naming the seq', async () => {
  const dir = tempStateDir();
  const s = LmdbStore.open(dir);
  for (let i = 0; i < 5; i++) await s.commit([], [ev(`t${i}`)]);
  await s.close();
  const raw = open({ path: `${dir}/qmk.lmdb`, maxDbs: 16 });
  const audit = raw.openDB({ name: 'audit', keyEncoding: 'ordered-binary', encoding: 'msgpack' });
  const rec = audit.get(3) as Record<string, unknown>;
  await audit.put(3, { ...rec, target: 'rewritten' });
  await raw.close();
  assert.throws(() => LmdbStore.open(dir), /audit chain broken at seq 3: record hash mismatch/);
  removeStateDir(dir);
});

test('store: checkpoint → clusters saved, covered op-log entries dropped, later ones kept', async () => {
  const dir = tempStateDir();
  const s = LmdbStore.open(dir);
  await s.commit([], [], [{ kind: 'drop', clusterId: 1 }, { kind: 'drop', clusterId: 2 }]);
  const state = new Float64Array([0, 0, 1, 0]);
  await s.checkpoint([{ cluster: { id: 5, qubits: ['q'] }, state }], 6);
  await s.commit([], [], [{ kind: 'drop', clusterId: 3 }]);
  await s.close();
  const r = LmdbStore.open(dir);
  const load = r.load();
  assert.is(load.checkpoint.seq, 2);
  assert.equal(load.checkpoint.clusters.map((c) => [c.cluster, [...c.state]]), [[{ id: 5, qubits: ['q'] }, [0, 0, 1, 0]]]);
  assert.equal(load.oplog.map((o) => o.seq), [3]);
  assert.is(load.nextClusterId, 6);
  assert.is(r.verifyAudit(Number.POSITIVE_INFINITY), null);
  await r.close();
  removeStateDir(dir);
});

test('store: the disk fills → STORAGE_FULL, head unchanged; space freed → writes resume, no gap', async () => {
  const fs = mountTmpfs(16 * 1024 ** 2);
  if ('skip' in fs) {
    console.log(`skipped: ${fs.skip}`);
    return;
  }
  try {
    const s = LmdbStore.open(join(fs.dir, 'db'));
    ballast(join(fs.dir, 'ballast'), 12 * 1024 ** 2);
    const blob = Buffer.alloc(100_000, 7);
    let ok = 0;
    let refused: unknown = null;
    for (let i = 0; i < 1000 && refused === null; i++) {
      try {
        await s.commit([{ op: 'put', db: 'job_results', key: `r${i}`, value: { blob } }], [ev(`r${i}`)], [{ kind: 'drop', clusterId: i }]);
        ok++;
      } catch (err) {
        refused = err;
      }
    }
    assert.instance(refused, KernelError);
    assert.is((refused as KernelError).code, 'STORAGE_FULL');
    assert.match((refused as KernelError).message, /^storage: the disk holding .* is full/);
    assert.ok(ok > 0, 'some commits fitted before the disk filled');
    assert.is(s.auditHead().seq, ok, 'the audit head moved only with durable commits');
    // Still full: refused again, head still unchanged.
    await s.commit([{ op: 'put', db: 'job_results', key: 'again', value: { blob } }], [ev('again')]).then(
      () => assert.unreachable('a commit on a full disk succeeded'),
      (err: KernelError) => assert.is(err.code, 'STORAGE_FULL'),
    );
    assert.is(s.auditHead().seq, ok);
    unlinkSync(join(fs.dir, 'ballast'));
    await s.commit([{ op: 'put', db: 'job_results', key: 'after', value: { blob } }], [ev('after')], [{ kind: 'drop', clusterId: -1 }]);
    assert.is(s.auditHead().seq, ok + 1);
    await s.close();
    const r = LmdbStore.open(join(fs.dir, 'db'));
    assert.is(r.verifyAudit(Number.POSITIVE_INFINITY), null);
    assert.is(r.auditHead().seq, ok + 1);
    assert.is(r.load().oplog.length, ok + 1, 'no op-log entry of a failed batch, no gap');
    assert.equal(r.read('job_results', 'again'), undefined);
    assert.ok(r.read('job_results', 'after'));
    await r.close();
  } finally {
    fs.unmount();
  }
});

test.run();
