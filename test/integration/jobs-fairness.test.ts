/**
 * Fair scheduling through the real daemon: a tenant that floods the queue does not delay a later
 * tenant beyond its share, and weights 3:1 give a 3:1 completed-work ratio while both are backlogged.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type AnyClient,
  type Daemon,
  type Wire,
  adminClient,
  call,
  jobClient,
  newTenant,
  removeStateDir,
  sleep,
  startDaemon,
} from '../support/daemon.js';
import { perShotQasm } from '../support/programs.js';

const QASM = 'PROGRAM_FORMAT_OPENQASM2';
// Every job is the same pool-sized per-shot program, so work per job is equal.
const JOB = { program: { format: QASM, source: perShotQasm(12, 4, 1) }, shots: 60 };

let d: Daemon;

test.before(async () => {
  d = await startDaemon();
});

test.after(async () => {
  await d.stop();
  removeStateDir(d.stateDir);
});

async function tenantClient(name: string, weight?: number): Promise<AnyClient> {
  const t = await newTenant(d, name);
  t.client.close();
  if (weight !== undefined) {
    const admin = adminClient(d);
    await call(admin, 'UpdateTenant', { tenant: name, weight });
    admin.close();
  }
  return jobClient(d, t.apiKey);
}

const submitMany = (c: AnyClient, n: number) =>
  Promise.all(
    Array.from({ length: n }, () =>
      call<{ job: { job_id: string } }>(c, 'SubmitJob', JOB).then((r) => r.job.job_id),
    ),
  );

async function finished(c: AnyClient): Promise<{ id: string; at: number }[]> {
  const r = await call<{ jobs: Wire[] }>(c, 'ListJobs', {
    states: ['JOB_STATE_DONE'],
    page_size: 1000,
  });
  return r.jobs
    .map((j) => ({ id: j.job_id, at: Number(j.finished_at_unix_ms) }))
    .sort((x, y) => x.at - y.at);
}

async function cancelAll(c: AnyClient, ids: string[]): Promise<void> {
  await Promise.all(ids.map((id) => call(c, 'CancelJob', { job_id: id }).catch(() => {})));
}

test('A floods 200 jobs, then B submits 5: all of B finish before A’s 40th (equal weights)', async () => {
  const a = await tenantClient('flood-a');
  const b = await tenantClient('late-b');
  const aIds = await submitMany(a, 200);
  const bIds = await submitMany(b, 5);
  for (;;) {
    const [fa, fb] = await Promise.all([finished(a), finished(b)]);
    if (fb.length === 5 && fa.length >= 40) {
      const lastB = fb[4]!.at;
      const a40 = fa[39]!.at;
      console.log(
        `  B's last finished at A's #${fa.filter((x) => x.at <= lastB).length} (needs < 40)`,
      );
      assert.ok(lastB < a40, `B's last finish ${lastB} >= A's 40th ${a40}`);
      break;
    }
    await sleep(50);
  }
  await cancelAll(a, aIds);
  await cancelAll(b, bIds);
  a.close();
  b.close();
});

test('weights 3:1: the completed-work ratio while both are backlogged is within 20% of 3', async () => {
  const c = await tenantClient('heavy-c', 3);
  const e = await tenantClient('light-d', 1);
  const [cIds, dIds] = await Promise.all([submitMany(c, 80), submitMany(e, 80)]);
  for (;;) {
    const [fc, fd] = await Promise.all([finished(c), finished(e)]);
    if (fc.length + fd.length >= 88) {
      // A window of 80 completions after the first 8 (the queue was still filling then).
      const all = [...fc.map((x) => ({ ...x, t: 'c' })), ...fd.map((x) => ({ ...x, t: 'd' }))].sort(
        (x, y) => x.at - y.at,
      );
      const window = all.slice(8, 88);
      const nc = window.filter((x) => x.t === 'c').length;
      const ratio = nc / (window.length - nc);
      console.log(
        `  completed in window: ${nc} (weight 3) vs ${window.length - nc} (weight 1): ratio ${ratio.toFixed(2)}`,
      );
      assert.ok(Math.abs(ratio - 3) <= 0.6, `ratio ${ratio}`);
      break;
    }
    await sleep(50);
  }
  await cancelAll(c, cIds);
  await cancelAll(e, dIds);
  c.close();
  e.close();
});

test.run();
