/**
 * The LMDB store on a real environment in a temporary directory: durable commits reload, the
 * schema version is enforced, a tampered audit record stops the store from opening, checkpoints
 * replace the op log they cover.
 */
import { mkdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { open } from 'lmdb';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KernelError } from '../../src/kernel/errors.js';
import { DataKeys } from '../../src/security/data-keys.js';
import { RecordCodec } from '../../src/security/record-codec.js';
import { LmdbStore, SCHEMA_VERSION, StoreError } from '../../src/store/store.js';
import { removeStateDir, tempStateDir } from '../support/daemon.js';
import { ballast, mountTmpfs } from '../support/tmpfs.js';

const ev = (target: string) => ({ actor: 'op', action: 'Test', target, outcome: 'ok' });
const MASTER = Buffer.alloc(32, 9);
/** The store of `dir` with its data keys (made on first use, as on a first start). */
const openStore = (dir: string) => {
  mkdirSync(dir, { recursive: true });
  return LmdbStore.open(dir, { keys: DataKeys.open(dir, MASTER, true) });
};

/** Rewrites one record in the raw data file, MAC'd with the directory's real key (an insider). */
async function rewriteAuthenticated(
  dir: string,
  db: string,
  key: string | number,
  edit: (v: Record<string, unknown>) => unknown,
) {
  const keys = DataKeys.open(dir, MASTER, false);
  const codec = new RecordCodec(keys.macKey, (o) => keys.keyFor(o));
  const raw = open({ path: `${dir}/qmk.lmdb`, maxDbs: 16 });
  const h = raw.openDB({ name: db, keyEncoding: 'ordered-binary', encoding: 'binary' });
  const v = codec.decode(db, key, h.get(key) as Buffer) as Record<string, unknown>;
  await h.put(key, codec.encode(db, key, edit(v)));
  await raw.close();
}

test('store: committed records, audit and op log → present after reopening', async () => {
  const dir = tempStateDir();
  const s = openStore(dir);
  await s.commit(
    [{ op: 'put', db: 'tenants', key: 't1', value: { id: 't1', name: 'x' } }],
    [ev('a')],
    [{ kind: 'drop', clusterId: 7 }],
  );
  await s.commit([], [ev('b')]);
  await s.close();
  const r = openStore(dir);
  const load = r.load();
  assert.equal(load.tenants, [{ id: 't1', name: 'x' }]);
  assert.equal(load.oplog, [{ seq: 1, entry: { kind: 'drop', clusterId: 7 } }]);
  assert.is(r.auditHead().seq, 2);
  assert.is(r.verifyAudit(), null);
  await r.close();
  removeStateDir(dir);
});

test('store: a newer schema version → refused with a clear error', async () => {
  const dir = tempStateDir();
  await openStore(dir).close();
  const keys = DataKeys.open(dir, MASTER, false);
  const codec = new RecordCodec(keys.macKey, (o) => keys.keyFor(o));
  const raw = open({ path: `${dir}/qmk.lmdb`, maxDbs: 16 });
  await raw
    .openDB({ name: 'meta', keyEncoding: 'ordered-binary', encoding: 'binary' })
    .put('schema_version', codec.encode('meta', 'schema_version', SCHEMA_VERSION + 1));
  await raw.close();
  assert.throws(
    () => openStore(dir),
    (e: Error) => e instanceof StoreError && /newer than this qmkd/.test(e.message),
  );
  removeStateDir(dir);
});

test('store: an audit record rewritten with its MAC recomputed → the chain refuses it, naming the seq', async () => {
  const dir = tempStateDir();
  const s = openStore(dir);
  for (let i = 0; i < 5; i++) await s.commit([], [ev(`t${i}`)]);
  await s.close();
  await rewriteAuthenticated(dir, 'audit', 3, (r) => ({ ...r, target: 'rewritten' }));
  assert.throws(() => openStore(dir), /audit chain broken at seq 3: record hash mismatch/);
  removeStateDir(dir);
});

test('store: a record edited offline or moved to another key → refused naming the file and record', async () => {
  const dir = tempStateDir();
  const s = openStore(dir);
  await s.commit(
    [
      { op: 'put', db: 'tenants', key: 'a', value: { id: 'a', tier: 'pro' } },
      { op: 'put', db: 'tenants', key: 'b', value: { id: 'b', tier: 'free' } },
    ],
    [ev('x')],
  );
  await s.close();
  const raw = open({ path: `${dir}/qmk.lmdb`, maxDbs: 16 });
  const h = raw.openDB({ name: 'tenants', keyEncoding: 'ordered-binary', encoding: 'binary' });
  const a = Buffer.from(h.get('a') as Buffer);
  // 'pro' -> 'ent' in place: the msgpack stays valid, only the MAC can tell.
  const at = a.indexOf(Buffer.from('pro'));
  a.write('ent', at);
  await h.put('a', a);
  await raw.close();
  const edited = openStore(dir);
  assert.throws(
    () => edited.verifyRecords(),
    (e: Error) =>
      e instanceof StoreError &&
      e.message ===
        `state file damaged: ${dir}/qmk.lmdb: record tenants/a: authentication failed (edited offline, or moved from another key)`,
  );
  await edited.close();
  const raw2 = open({ path: `${dir}/qmk.lmdb`, maxDbs: 16 });
  const h2 = raw2.openDB({ name: 'tenants', keyEncoding: 'ordered-binary', encoding: 'binary' });
  await h2.put('a', h2.get('b') as Buffer); // b's intact record under a's key
  await raw2.close();
  const moved = openStore(dir);
  assert.throws(() => moved.read('tenants', 'a'), /record tenants\/a: authentication failed/);
  await moved.close();
  removeStateDir(dir);
});

test('store: tenant data sealed → no plaintext in the file; shredded owner → its records skipped', async () => {
  const dir = tempStateDir();
  const s = openStore(dir);
  const secret = 'DISTINCTIVE-PROGRAM-TEXT-4242';
  await s.commit(
    [
      {
        op: 'put',
        db: 'jobs',
        key: 'j1',
        value: { id: 'j1', tenantId: 't1', source: secret },
        owner: 't1',
      },
      {
        op: 'put',
        db: 'jobs',
        key: 'j2',
        value: { id: 'j2', tenantId: 't2', source: 'other' },
        owner: 't2',
      },
    ],
    [ev('jobs')],
  );
  await s.close();
  const { readFileSync } = await import('node:fs');
  assert.is(
    readFileSync(`${dir}/qmk.lmdb`).indexOf(secret),
    -1,
    'the program text is not in the file',
  );
  const keys = DataKeys.open(dir, MASTER, false);
  keys.shred('t1');
  const r = LmdbStore.open(dir, { keys });
  assert.equal(
    r.load().jobs.map((j) => j.id),
    ['j2'],
  );
  assert.is(r.verifyRecords() > 0, true);
  await r.close();
  removeStateDir(dir);
});

test('store: checkpoint → clusters saved, covered op-log entries dropped, later ones kept', async () => {
  const dir = tempStateDir();
  const s = openStore(dir);
  await s.commit(
    [],
    [],
    [
      { kind: 'drop', clusterId: 1 },
      { kind: 'drop', clusterId: 2 },
    ],
  );
  const state = new Float64Array([0, 0, 1, 0]);
  await s.checkpoint([{ cluster: { id: 5, qubits: ['q'] }, state }], 6);
  await s.commit([], [], [{ kind: 'drop', clusterId: 3 }]);
  await s.close();
  const r = openStore(dir);
  const load = r.load();
  assert.is(load.checkpoint.seq, 2);
  assert.equal(
    load.checkpoint.clusters.map((c) => [c.cluster, [...c.state]]),
    [[{ id: 5, qubits: ['q'] }, [0, 0, 1, 0]]],
  );
  assert.equal(
    load.oplog.map((o) => o.seq),
    [3],
  );
  assert.is(load.nextClusterId, 6);
  assert.is(r.verifyAudit(), null);
  await r.close();
  removeStateDir(dir);
});

test('store: a schema 1 store (plain msgpack) → migrated: every record opens, tenant data now sealed', async () => {
  const dir = tempStateDir();
  const { linkAuditRecord, AUDIT_GENESIS_HASH } = await import('../../src/security/audit-chain.js');
  const raw = open({ path: `${dir}/qmk.lmdb`, maxDbs: 16 });
  const db = (name: string) =>
    raw.openDB({ name, keyEncoding: 'ordered-binary', encoding: 'msgpack' });
  await db('meta').put('schema_version', 1);
  await db('tenants').put('t1', { id: 't1', name: 'old', tier: 'pro' });
  await db('jobs').put('j1', { id: 'j1', tenantId: 't1', source: 'LEGACY-PROGRAM-TEXT' });
  const a1 = linkAuditRecord(ev('a'), 1, 1, AUDIT_GENESIS_HASH);
  await db('audit').put(1, a1);
  await db('audit').put(2, linkAuditRecord(ev('b'), 2, 2, a1.hash));
  await raw.close();
  const s = openStore(dir);
  assert.equal(s.read('tenants', 't1'), { id: 't1', name: 'old', tier: 'pro' });
  assert.equal(
    s.load().jobs.map((j) => j.id),
    ['j1'],
  );
  assert.is(s.auditHead().seq, 2);
  assert.is(s.verifyAudit(), null);
  await s.commit([], [ev('c')]);
  await s.close();
  const again = openStore(dir);
  assert.is(again.verifyRecords() > 0, true);
  assert.is(again.auditHead().seq, 3);
  await again.close();
  // LMDB keeps freed pages until reused; the live record is sealed, so the file may hold the old
  // text only in free pages. The live value is what a reader gets: check it is sealed.
  const raw2 = open({ path: `${dir}/qmk.lmdb`, maxDbs: 16, readOnly: true });
  const live = raw2
    .openDB({ name: 'jobs', keyEncoding: 'ordered-binary', encoding: 'binary' })
    .get('j1') as Buffer;
  assert.is(live[0], 0x02, 'the job record is sealed');
  assert.is(Buffer.from(live).indexOf('LEGACY-PROGRAM-TEXT'), -1);
  await raw2.close();
  removeStateDir(dir);
});

test('store: the disk fills → STORAGE_FULL, head unchanged; space freed → writes resume, no gap', async () => {
  const fs = mountTmpfs(16 * 1024 ** 2);
  if ('skip' in fs) {
    console.log(`skipped: ${fs.skip}`);
    return;
  }
  try {
    const s = openStore(join(fs.dir, 'db'));
    ballast(join(fs.dir, 'ballast'), 12 * 1024 ** 2);
    const blob = Buffer.alloc(100_000, 7);
    let ok = 0;
    let refused: unknown = null;
    for (let i = 0; i < 1000 && refused === null; i++) {
      try {
        await s.commit(
          [{ op: 'put', db: 'job_results', key: `r${i}`, value: { blob } }],
          [ev(`r${i}`)],
          [{ kind: 'drop', clusterId: i }],
        );
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
    await s
      .commit([{ op: 'put', db: 'job_results', key: 'again', value: { blob } }], [ev('again')])
      .then(
        () => assert.unreachable('a commit on a full disk succeeded'),
        (err: KernelError) => assert.is(err.code, 'STORAGE_FULL'),
      );
    assert.is(s.auditHead().seq, ok);
    unlinkSync(join(fs.dir, 'ballast'));
    await s.commit(
      [{ op: 'put', db: 'job_results', key: 'after', value: { blob } }],
      [ev('after')],
      [{ kind: 'drop', clusterId: -1 }],
    );
    assert.is(s.auditHead().seq, ok + 1);
    await s.close();
    const r = openStore(join(fs.dir, 'db'));
    assert.is(r.verifyAudit(), null);
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
