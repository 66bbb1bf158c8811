/**
 * The state directory on its worst day, through the real daemon: a second daemon on the same
 * directory is refused and names the holder; a real small filesystem (tmpfs, root only) filled
 * through the API refuses with STORAGE_FULL (never INTERNAL), counts only committed work, resumes
 * once space is freed, and after kill -9 serves everything it acknowledged with a sound chain.
 */
import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openStateOffline } from '../../src/store/offline.js';
import {
  type Daemon,
  adminClient,
  call,
  callError,
  jobClient,
  kernelClient,
  newTenant,
  removeStateDir,
  runDaemonToExit,
  runJob,
  startDaemon,
  tempStateDir,
} from '../support/daemon.js';
import { ballast, mountTmpfs } from '../support/tmpfs.js';

const MiB = 1024 ** 2;

test('lock: a second daemon on the same state dir → refused naming the dir and PID; the first serves on', async () => {
  const dir = tempStateDir();
  let d: Daemon | undefined;
  try {
    d = await startDaemon(dir);
    const second = await runDaemonToExit(dir);
    assert.is(second.signal, null, second.output);
    assert.is(second.code, 1, second.output);
    assert.match(second.output, /failed to start/);
    assert.ok(
      second.output.includes(`state directory ${dir} is in use by qmkd (pid ${d.child.pid})`),
      second.output,
    );
    // The first daemon still owns its admin socket and serves both APIs.
    const t = await newTenant(d, 'still-serving');
    const s = await call<{ session_handle: string }>(t.client, 'OpenSession', {});
    assert.ok(s.session_handle);
    t.client.close();
  } finally {
    if (d) await d.stop();
    removeStateDir(dir);
  }
});

test('lock: the daemon stopped (even by SIGKILL) → the next start takes the lock', async () => {
  const dir = tempStateDir();
  let d: Daemon | undefined;
  try {
    d = await startDaemon(dir);
    await d.kill();
    d = await startDaemon(dir);
    assert.is(await d.stop(), 0);
    d = undefined;
    unlinkSync(join(dir, 'qmkd.lock'));
    d = await startDaemon(dir); // a deleted lock file is no damage: it is made again
  } finally {
    if (d) await d.stop();
    removeStateDir(dir);
  }
});

const code = (e: grpc.ServiceError) => e.metadata.get('qmk-error-code')[0];

/** 14 qubits in superposition, every shot kept: about 0.3 MB of result per job. */
const WIDE = `OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[14];\ncreg c[14];\n${Array.from({ length: 14 }, (_, i) => `h q[${i}];`).join('\n')}\nmeasure q -> c;\n`;

test('disk full: watermark and real ENOSPC → STORAGE_FULL only; resumes when freed; kill -9 keeps every ack', async () => {
  const fs = mountTmpfs(64 * MiB);
  if ('skip' in fs) {
    console.log(`skipped: ${fs.skip}`);
    return;
  }
  const stateDir = join(fs.dir, 'state');
  const env = { QMK_STORAGE_FREE_MIN_BYTES: String(8 * MiB) };
  let d: Daemon | undefined;
  try {
    d = await startDaemon(stateDir, env);
    const admin = adminClient(d);
    const t = await newTenant(d, 'filler');
    const jobs = jobClient(d, t.apiKey);
    const { session_handle: session } = await call<{ session_handle: string }>(
      t.client,
      'OpenSession',
      {},
    );
    // Leave about 6 MiB above the watermark, then fill it with job results through the API.
    const status = await call<{ storage_free_bytes: number; storage_free_min_bytes: number }>(
      admin,
      'GetStatus',
      {},
    );
    assert.is(Number(status.storage_free_min_bytes), 8 * MiB);
    ballast(join(fs.dir, 'ballast1'), Number(status.storage_free_bytes) - 14 * MiB);
    const done: string[] = [];
    let refusal: grpc.ServiceError | null = null;
    for (let i = 0; i < 200 && refusal === null; i++) {
      try {
        const r = await runJob(jobs, {
          program: { format: 'PROGRAM_FORMAT_OPENQASM2', source: WIDE },
          shots: 10_000,
          shot_outcomes_max: 10_000,
          seed: String(i + 1),
        });
        assert.is(r.job.state, 'JOB_STATE_DONE', `${r.job.state}: ${r.job.reason}`);
        done.push(r.job.job_id);
      } catch (err) {
        refusal = err as grpc.ServiceError;
      }
    }
    assert.ok(refusal, 'the watermark refused a job before the loop ended');
    assert.ok(done.length > 2, `${done.length} jobs fitted before the watermark`);
    assert.is(refusal!.code, 8, refusal!.message); // RESOURCE_EXHAUSTED
    assert.is(code(refusal!), 'STORAGE_FULL');
    assert.match(refusal!.details, /^storage_free_min_bytes: \d+ bytes free/);
    // Below the watermark: growth refused, reads and the operator API served.
    const open = await callError(t.client, 'OpenSession', {});
    assert.is(code(open), 'STORAGE_FULL');
    const res = await call<{ counts: Record<string, number> }>(jobs, 'GetJobResult', {
      job_id: done[0],
    });
    assert.is(
      Object.values(res.counts).reduce((a, b) => a + Number(b), 0),
      10_000,
    );
    assert.is((await call<{ jobs: unknown[] }>(jobs, 'ListJobs', {})).jobs.length, done.length);
    await call(t.client, 'GetUsage', {});
    const low = await call<{ storage_free_bytes: number }>(admin, 'GetStatus', {});
    assert.ok(Number(low.storage_free_bytes) < 8 * MiB);

    // The disk fills completely (another process): operator writes fail with STORAGE_FULL and
    // leave nothing behind; the tenant API answers STORAGE_FULL too, never INTERNAL.
    ballast(join(fs.dir, 'ballast2'), 64 * MiB);
    const created: string[] = [];
    let fullErr: grpc.ServiceError | null = null;
    for (let i = 0; i < 400 && fullErr === null; i++) {
      try {
        await call(admin, 'CreateTenant', { name: `t${i}`, tier: 'TIER_FREE' });
        created.push(`t${i}`);
      } catch (err) {
        fullErr = err as grpc.ServiceError;
      }
    }
    assert.ok(fullErr, 'a write failed on the full disk');
    assert.is(code(fullErr!), 'STORAGE_FULL', fullErr!.message);
    assert.match(fullErr!.details, /^storage: the disk holding .* is full/);
    const phantom = `t${created.length}`;
    const listed = await call<{ tenants: { name: string }[] }>(admin, 'ListTenants', {
      page_size: 1000,
    });
    assert.not.ok(
      listed.tenants.some((x) => x.name === phantom),
      'no phantom tenant',
    );
    for (const e of [
      await callError(t.client, 'OpenSession', {}),
      await callError(jobs, 'SubmitJob', {
        program: { format: 'PROGRAM_FORMAT_OPENQASM2', source: WIDE },
        shots: 1,
      }),
    ]) {
      assert.is(code(e), 'STORAGE_FULL');
    }

    // Space comes back: writes resume without a restart; the refused name is free.
    unlinkSync(join(fs.dir, 'ballast2'));
    unlinkSync(join(fs.dir, 'ballast1'));
    await call(admin, 'CreateTenant', { name: phantom, tier: 'TIER_FREE' });
    created.push(phantom);
    const more = await runJob(jobs, {
      program: { format: 'PROGRAM_FORMAT_OPENQASM2', source: WIDE },
      shots: 100,
      seed: '9',
    });
    assert.is(more.job.state, 'JOB_STATE_DONE');
    done.push(more.job.job_id);
    await call(t.client, 'OpenSession', {});
    await call(t.client, 'CloseSession', { session_handle: session });
    assert.is(d.child.exitCode, null, 'the daemon kept running throughout');
    jobs.close();
    admin.close();
    t.client.close();

    // kill -9 and restart: everything acknowledged is there, and the whole chain verifies.
    await d.kill();
    d = await startDaemon(stateDir, env);
    const admin2 = adminClient(d);
    const names = (
      await call<{ tenants: { name: string }[] }>(admin2, 'ListTenants', { page_size: 1000 })
    ).tenants.map((x) => x.name);
    for (const n of [...created, 'filler']) assert.ok(names.includes(n), `tenant ${n} survived`);
    const jobs2 = jobClient(d, t.apiKey);
    for (const id of done) {
      const r = await call<{ counts: Record<string, number> }>(jobs2, 'GetJobResult', {
        job_id: id,
      });
      assert.ok(Object.keys(r.counts).length > 0);
    }
    const usage = await call<{ usage: { sessions_open: number } }>(
      kernelClient(d, t.apiKey),
      'GetUsage',
      {},
    );
    assert.is(usage.usage.sessions_open, 1, 'one session open: the refused ones never counted');
    jobs2.close();
    admin2.close();
    assert.is(await d.stop(), 0);
    d = undefined;
    const state = openStateOffline(stateDir);
    const store = state.store;
    try {
      assert.is(store.verifyAudit(), null);
    } finally {
      await state.close();
    }
  } finally {
    if (d) await d.kill();
    fs.unmount();
  }
});

test.run();
