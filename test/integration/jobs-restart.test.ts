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
  let d = await startDaemon(dir, { QMK_FAILPOINTS: 'store.after-commit:JobStarted@9' });
  const t = await newTenant(d, 'restart');
  t.client.close();
  let c = jobClient(d, t.apiKey);
  const program = (i: number) => ({ format: QASM, source: perShotQasm(12, 4, i) });
  const accepted: string[] = [];
  let inDoubt = 0; // a submission cut by the crash may or may not have been durable
  for (let i = 0; i < JOBS; i++) {
    try {
      const r = await call<{ job: { job_id: string } }>(c, 'SubmitJob', {
        program: program(i),
        shots: 150,
        seed: String(1000 + i),
      });
      accepted.push(r.job.job_id);
    } catch {
      inDoubt = 1;
      break;
    }
  }
  assert.is((await d.ended).signal, 'SIGKILL', 'the failpoint ended the daemon');
  c.close();

  d = await startDaemon(dir);
  c = jobClient(d, t.apiKey);
  let all: Wire[] = [];
  // Polls until every job ended; the test runner's per-file limit bounds a hang.
  for (;;) {
    all = await listAll(c);
    if (
      all.every((j) =>
        ['JOB_STATE_DONE', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED'].includes(j.state),
      )
    )
      break;
    await sleep(100);
  }
  const ids = new Set(all.map((j) => j.job_id));
  for (const id of accepted) assert.ok(ids.has(id), `accepted job ${id} is still there`);
  assert.ok(ids.size <= accepted.length + inDoubt, 'no job appeared that nobody submitted');
  for (const j of all) assert.is(j.state, 'JOB_STATE_DONE', `${j.job_id}: ${j.state} ${j.reason}`);
  const interrupted = all.filter((j) => j.attempts > 1);
  assert.ok(interrupted.length >= 1, 'the kill interrupted at least one running job');
  // An interrupted job's counts equal an uninterrupted run of the same program with the same seed.
  for (const j of interrupted) {
    const i = Number(j.seed) - 1000;
    const first = await call<{ counts: Record<string, number> }>(c, 'GetJobResult', {
      job_id: j.job_id,
    });
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
