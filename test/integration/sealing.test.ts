/**
 * Tenant data at rest, through the real daemon: programs and results are sealed per tenant (no
 * plaintext in the raw data file), a deleted tenant's records cannot be opened even from a copy
 * of the state directory taken before the deletion (its data key is gone), and every record is
 * authenticated (an offline edit of a tenant is refused by name).
 */
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { open } from 'lmdb';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DataKeys } from '../../src/security/data-keys.js';
import { readMasterKey } from '../../src/security/master-key.js';
import { RecordCodec } from '../../src/security/record-codec.js';
import { openStateOffline } from '../../src/store/offline.js';
import {
  type Daemon,
  adminClient,
  call,
  jobClient,
  newTenant,
  removeStateDir,
  runDaemonToExit,
  runJob,
  startDaemon,
  tempStateDir,
} from '../support/daemon.js';

const MARK = 'zqxDistinctiveMarker';
const program = (reg: string) =>
  `OPENQASM 2.0;\n// ${MARK} program text\ninclude "qelib1.inc";\nqreg q[2];\ncreg ${reg}[2];\nh q[0];\ncx q[0],q[1];\nmeasure q -> ${reg};\n`;

function fileHas(dir: string, text: string): boolean {
  return readFileSync(join(dir, 'db', 'qmk.lmdb')).includes(Buffer.from(text));
}

test('sealing: a program and its result → not in the raw data file; still served after restart', async () => {
  const dir = tempStateDir();
  let d: Daemon | undefined;
  try {
    d = await startDaemon(dir);
    const t = await newTenant(d, 'acme');
    const jobs = jobClient(d, t.apiKey);
    const { job, result } = await runJob(jobs, {
      program: { format: 'PROGRAM_FORMAT_OPENQASM2', source: program(`${MARK}reg`) },
      shots: 100,
      seed: '1',
      shot_outcomes_max: 10,
    });
    assert.is(job.state, 'JOB_STATE_DONE');
    assert.ok(JSON.stringify(result).includes(`${MARK}reg`), 'the result names the register');
    // A queued job keeps its program text in its record: submit, then crash before it can finish.
    await call(jobs, 'SubmitJob', {
      program: { format: 'PROGRAM_FORMAT_OPENQASM2', source: program('c') },
      shots: 100_000,
    });
    jobs.close();
    await d.kill();
    d = undefined;
    assert.not.ok(fileHas(dir, MARK), 'no program text or register name in plaintext');
    d = await startDaemon(dir);
    const again = await call<Record<string, unknown>>(jobClient(d, t.apiKey), 'GetJobResult', {
      job_id: job.job_id,
    });
    assert.ok(JSON.stringify(again).includes(`${MARK}reg`), 'served again after the restart');
  } finally {
    if (d) await d.stop();
    removeStateDir(dir);
  }
});

test('crypto-shredding: tenant deleted → its records do not open, even from a copy made before', async () => {
  const dir = tempStateDir();
  const before = tempStateDir();
  let d: Daemon | undefined;
  try {
    d = await startDaemon(dir);
    const gone = await newTenant(d, 'gone');
    const stays = await newTenant(d, 'stays');
    const a = await runJob(jobClient(d, gone.apiKey), {
      program: { format: 'PROGRAM_FORMAT_OPENQASM2', source: program('c') },
      shots: 10,
    });
    const b = await runJob(jobClient(d, stays.apiKey), {
      program: { format: 'PROGRAM_FORMAT_OPENQASM2', source: program('c') },
      shots: 10,
    });
    assert.is(await d.stop(), 0);
    cpSync(dir, before, { recursive: true }); // the copy an attacker kept
    d = await startDaemon(dir);
    const admin = adminClient(d);
    await call(admin, 'DeleteTenant', { tenant: 'gone' });
    admin.close();
    assert.is(await d.stop(), 0);
    d = undefined;
    // The old data file with today's keys (the file a thief would pair with the old data file).
    const master = readMasterKey(join(dir, 'master.key'));
    const keys = DataKeys.open(dir, master, false);
    assert.ok(keys.isShredded(gone.tenantId));
    const codec = new RecordCodec(keys.macKey, (o) => keys.keyFor(o));
    const raw = open({ path: join(before, 'db', 'qmk.lmdb'), maxDbs: 16, readOnly: true });
    const results = raw.openDB({
      name: 'job_results',
      keyEncoding: 'ordered-binary',
      encoding: 'binary',
    });
    assert.throws(
      () => codec.decode('job_results', a.job.job_id, results.get(a.job.job_id) as Buffer),
      /which was destroyed/,
    );
    assert.ok(
      codec.decode('job_results', b.job.job_id, results.get(b.job.job_id) as Buffer),
      'the other tenant still opens',
    );
    await raw.close();
    // The daemon on the current state serves the remaining tenant and nothing of the deleted one.
    const state = openStateOffline(dir);
    try {
      const jobsLeft = state.store.load().jobs.map((j) => j.tenantId);
      assert.ok(jobsLeft.includes(stays.tenantId));
      assert.not.ok(jobsLeft.includes(gone.tenantId));
    } finally {
      await state.close();
    }
  } finally {
    if (d) await d.stop();
    removeStateDir(dir);
    removeStateDir(before);
  }
});

test('authentication: a tenant edited offline (tier pro → free, MAC kept) → refused at start naming it', async () => {
  const dir = tempStateDir();
  let d: Daemon | undefined;
  try {
    d = await startDaemon(dir);
    const t = await newTenant(d, 'acme', 'TIER_PRO');
    assert.is(await d.stop(), 0);
    d = undefined;
    const raw = open({ path: join(dir, 'db', 'qmk.lmdb'), maxDbs: 16 });
    const tenants = raw.openDB({
      name: 'tenants',
      keyEncoding: 'ordered-binary',
      encoding: 'binary',
    });
    const bytes = Buffer.from(tenants.get(t.tenantId) as Buffer);
    const at = bytes.indexOf(Buffer.from('pro'));
    assert.ok(at > 0);
    bytes.write('ent', at); // same length: the msgpack stays valid
    await tenants.put(t.tenantId, bytes);
    await raw.close();
    const r = await runDaemonToExit(dir);
    assert.is(r.signal, null);
    assert.is(r.code, 1, r.output);
    assert.ok(
      r.output.includes(
        `state file damaged: ${join(dir, 'db', 'qmk.lmdb')}: record tenants/${t.tenantId}: authentication failed`,
      ),
      r.output,
    );
  } finally {
    if (d) await d.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('data keys: the keys file deleted from a marked directory → refused, sealed records need it', async () => {
  const dir = tempStateDir();
  let d: Daemon | undefined;
  try {
    d = await startDaemon(dir);
    assert.is(await d.stop(), 0);
    d = undefined;
    rmSync(join(dir, 'data-keys.json'));
    const r = await runDaemonToExit(dir);
    assert.is(r.code, 1, r.output);
    assert.ok(r.output.includes(`${join(dir, 'data-keys.json')}: missing`), r.output);
    writeFileSync(join(dir, 'data-keys.json'), '{}');
    const r2 = await runDaemonToExit(dir);
    assert.is(r2.code, 1, r2.output);
    assert.match(r2.output, /not a qmkd data-keys file/);
  } finally {
    if (d) await d.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
