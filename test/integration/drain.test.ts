/**
 * A drained stop (SIGTERM): running jobs get the drain time (`--drain-ms`) to finish, a client
 * watching one sees it end; a job still running after the drain time records its shot progress
 * and, after the restart, goes on from there to the counts (and per-shot outcomes) of an
 * uninterrupted run with the same seed. The daemon exits 0 either way.
 */
import type * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type AnyClient,
  type Daemon,
  type Wire,
  adminAuditClient,
  call,
  jobClient,
  logLines,
  newTenant,
  removeStateDir,
  runJob,
  startDaemon,
  tempStateDir,
  watchJob,
} from '../support/daemon.js';
import { perShotQasm } from '../support/programs.js';

const QASM = 'PROGRAM_FORMAT_OPENQASM2';
const OUTCOMES = 25;

/** Resolves once the job is RUNNING with some shots done (from its watch stream), with that view. */
function runningWithShots(client: AnyClient, jobId: string): Promise<Wire> {
  return new Promise((resolve, reject) => {
    const stream = client.WatchJob({ job_id: jobId }) as grpc.ClientReadableStream<{ job: Wire }>;
    stream.on('data', ({ job }) => {
      if (job.state === 'JOB_STATE_RUNNING' && job.shots_done > 0) {
        stream.cancel();
        resolve(job);
      } else if (job.state !== 'JOB_STATE_QUEUED' && job.state !== 'JOB_STATE_RUNNING') {
        reject(new Error(`job ended before it was seen running: ${job.state} ${job.reason}`));
      }
    });
    stream.on('error', (err: grpc.ServiceError) => {
      if (err.code !== 1) reject(err); // 1: CANCELLED, our own cancel above
    });
  });
}

async function stopAll(daemons: (Daemon | null)[], dir: string): Promise<void> {
  for (const d of daemons) if (d && d.child.exitCode === null) await d.kill();
  removeStateDir(dir);
}

test('drain time over: the job records its shots, exits 0, and resumes to the uninterrupted counts', async () => {
  const dir = tempStateDir();
  let first: Daemon | null = null;
  let second: Daemon | null = null;
  try {
    first = await startDaemon(dir, { QMK_DRAIN_MS: '1' });
    const t = await newTenant(first, 'drained');
    t.client.close();
    let c = jobClient(first, t.apiKey);
    // Per-shot on 14 qubits: seconds of pool time, far longer than the drain time.
    const req = {
      program: { format: QASM, source: perShotQasm(14, 6, 3) },
      shots: 8000,
      seed: '424242',
      shot_outcomes_max: OUTCOMES,
    };
    const { job } = await call<{ job: { job_id: string } }>(c, 'SubmitJob', req);
    const seen = await runningWithShots(c, job.job_id);
    c.close();
    assert.is(await first.stop(), 0, 'SIGTERM ends the daemon with 0');
    const drained = logLines(first.output()).find((l) => l.msg === 'drained');
    assert.ok(drained, 'a drained line');

    second = await startDaemon(dir);
    c = jobClient(second, t.apiKey);
    const events = await watchJob(c, job.job_id);
    const last = events[events.length - 1]!.job;
    assert.is(last.state, 'JOB_STATE_DONE', `${last.state} ${last.reason}`);
    const result = await call<Wire>(c, 'GetJobResult', {
      job_id: job.job_id,
      include_shot_outcomes: true,
    });
    const again = await runJob(c, req);
    const reference = await call<Wire>(c, 'GetJobResult', {
      job_id: again.job.job_id,
      include_shot_outcomes: true,
    });
    assert.equal(result.counts, reference.counts, 'counts of an uninterrupted run, same seed');
    assert.equal(result.shot_outcomes, reference.shot_outcomes, 'the same first outcomes');
    assert.is(result.shot_outcomes.length, OUTCOMES);

    if (drained!.jobs_interrupted === 0) {
      // The job finished inside the drain time (a very fast machine): one attempt, nothing to resume.
      assert.is(last.attempts, 1);
    } else {
      assert.is(drained!.jobs_interrupted, 1);
      // Interrupted: its recorded shots were not run again.
      const auditClient = adminAuditClient(second);
      const audit = await call<{ records: Wire[] }>(auditClient, 'ListAuditRecords', {
        target: job.job_id,
        page_size: 100,
      });
      auditClient.close();
      const interrupted = audit.records.find((r) => r.action === 'JobInterrupted');
      assert.ok(interrupted, 'a JobInterrupted record');
      const done = Number(JSON.parse(interrupted!.detail_json).shots_done);
      assert.ok(done >= Number(seen.shots_done) && done < req.shots, `shots recorded: ${done}`);
      const requeued = audit.records.find((r) => r.action === 'JobRequeued');
      assert.is(JSON.parse(requeued!.detail_json).shots_done, done, 'queued again at its shots');
      const started = audit.records.filter((r) => r.action === 'JobStarted');
      assert.ok(
        started.some((r) => JSON.parse(r.detail_json).resumed_at_shot === done),
        'the second attempt started at the recorded shot',
      );
      assert.is(last.attempts, 2);
    }
    c.close();
    assert.is(await second.stop(), 0);
  } finally {
    await stopAll([first, second], dir);
  }
});

test('drain time left: a running job finishes, its watcher sees DONE, and it is not run again', async () => {
  const dir = tempStateDir();
  let first: Daemon | null = null;
  let second: Daemon | null = null;
  try {
    first = await startDaemon(dir, { QMK_DRAIN_MS: '120000' });
    const t = await newTenant(first, 'finishes');
    t.client.close();
    let c = jobClient(first, t.apiKey);
    const { job } = await call<{ job: { job_id: string } }>(c, 'SubmitJob', {
      program: { format: QASM, source: perShotQasm(14, 6, 4) },
      shots: 1500,
      seed: '99',
    });
    await runningWithShots(c, job.job_id);
    // A watcher from before the stop (it has the job's current state): it sees the job end
    // during the drain.
    const stream = c.WatchJob({ job_id: job.job_id }) as grpc.ClientReadableStream<{ job: Wire }>;
    const states: string[] = [];
    const streamEnded = new Promise<void>((resolve, reject) => {
      stream.on('data', ({ job: j }) => states.push(j.state));
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    await new Promise((r) => stream.once('data', r));
    const exit = first.stop();
    await streamEnded;
    assert.is(states[states.length - 1], 'JOB_STATE_DONE');
    assert.is(await exit, 0);
    const drained = logLines(first.output()).find((l) => l.msg === 'drained');
    assert.is(drained?.jobs_interrupted, 0);
    c.close();

    second = await startDaemon(dir);
    c = jobClient(second, t.apiKey);
    const after = await call<{ job: Wire }>(c, 'GetJob', { job_id: job.job_id });
    assert.is(after.job.state, 'JOB_STATE_DONE');
    assert.is(after.job.attempts, 1, 'finished in the drain: never run again');
    c.close();
    assert.is(await second.stop(), 0);
  } finally {
    await stopAll([first, second], dir);
  }
});

test.run();
