/**
 * Durability of jobs: 50 accepted jobs, `kill -9` while they run, restart. Every accepted job
 * reaches a terminal state exactly once (one JobDone audit record each), and a job interrupted
 * mid-run re-runs with the same seed and gives the same counts as an uninterrupted run.
 */
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openStateOffline } from '../../src/store/offline.js';
import {
  type AnyClient,
  type Wire,
  call,
  jobClient,
  newTenant,
  removeStateDir,
  runJob,
  sleep,
  startDaemon,
  tempStateDir,
} from '../support/daemon.js';
import { perShotQasm } from '../support/programs.js';

const JOBS = 50;
const QASM = 'PROGRAM_FORMAT_OPENQASM2';

async function listAll(c: AnyClient): Promise<Wire[]> {
  const r = await call<{ jobs: Wire[] }>(c, 'ListJobs', { page_size: 1000 });
  return r.jobs;
}

test('kill -9 with jobs running: every accepted job ends once; interrupted ones give the same counts', async () => {
  const dir = tempStateDir();
  let d = await startDaemon(dir);
  const t = await newTenant(d, 'restart');
  t.client.close();
  let c = jobClient(d, t.apiKey);
  const program = (i: number) => ({ format: QASM, source: perShotQasm(12, 4, i) });
  const accepted: string[] = [];
  for (let i = 0; i < JOBS; i++) {
    const r = await call<{ job: { job_id: string } }>(c, 'SubmitJob', { program: program(i), shots: 150, seed: String(1000 + i) });
    accepted.push(r.job.job_id);
  }
  // Kill once some have finished and others are running.
  for (;;) {
    const done = (await listAll(c)).filter((j) => j.state === 'JOB_STATE_DONE').length;
    if (done >= 8) break;
    await sleep(20);
  }
  c.close();
  await d.kill();

  d = await startDaemon(dir);
  c = jobClient(d, t.apiKey);
  let all: Wire[] = [];
  for (let i = 0; i < 600; i++) {
    all = await listAll(c);
    if (all.every((j) => ['JOB_STATE_DONE', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED'].includes(j.state))) break;
    await sleep(100);
  }
  assert.equal(new Set(all.map((j) => j.job_id)), new Set(accepted), 'every accepted job is still there');
  for (const j of all) assert.is(j.state, 'JOB_STATE_DONE', `${j.job_id}: ${j.state} ${j.reason}`);
  const interrupted = all.filter((j) => j.attempts > 1);
  assert.ok(interrupted.length >= 1, 'the kill interrupted at least one running job');
  // An interrupted job's counts equal an uninterrupted run of the same program with the same seed.
  for (const j of interrupted) {
    const i = accepted.indexOf(j.job_id);
    const first = await call<{ counts: Record<string, number> }>(c, 'GetJobResult', { job_id: j.job_id });
    const again = await runJob(c, { program: program(i), shots: 150, seed: j.seed });
    assert.equal(first.counts, again.result!.counts, `job ${i} (seed ${j.seed})`);
  }
  c.close();
  assert.is(await d.stop(), 0);

  // Exactly one JobDone per accepted job, and the whole audit chain verifies.
  const state = openStateOffline(dir);
  const store = state.store;
  assert.is(store.verifyAudit(), null);
  const done = new Map<string, number>();
  for (const r of store.auditRecords()) {
    if (r.action === 'JobDone') done.set(r.target, (done.get(r.target) ?? 0) + 1);
  }
  for (const id of accepted) assert.is(done.get(id), 1, `JobDone records of ${id}`);
  await state.close();
  removeStateDir(dir);
});

test.run();
