/**
 * Jobs through the real daemon as a tenant uses them: every example program at 10,000 shots
 * against EXPECTED.md, textbook circuits in both formats, seeds, violations with BadRequest
 * details, idempotency, cancel, runtime limit, watch, list and the queue limit.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { STATUS_DETAILS_KEY, decodeStatusDetails } from '../../src/api/details.js';
import {
  type AnyClient,
  type Daemon,
  type Wire,
  adminClient,
  call,
  callError,
  jobClient,
  newTenant,
  removeStateDir,
  runJob,
  sleep,
  startDaemon,
  watchJob,
} from '../support/daemon.js';
import {
  bvQasm,
  bvQvm,
  checkDistribution,
  ghzQasm,
  ghzQvm,
  groverQasm,
  groverQvm,
  perShotQasm,
  qftQasm,
  qftQvm,
  qvm,
  randomCircuitQasm,
  teleportPlusQasm,
  teleportPlusQvm,
  uniform,
} from '../support/programs.js';

const EXAMPLES = new URL('../../examples/qvm', import.meta.url).pathname;
const QVM = 'PROGRAM_FORMAT_QVM_JSON';
const QASM = 'PROGRAM_FORMAT_OPENQASM2';

let d: Daemon;
let jobs: AnyClient;
let apiKey: string;

test.before(async () => {
  d = await startDaemon();
  const t = await newTenant(d, 'jobs-a');
  apiKey = t.apiKey;
  t.client.close();
  jobs = jobClient(d, apiKey);
});

test.after(async () => {
  // Any INTERNAL answer above is a bug; its stack is only in the daemon's log.
  for (const line of d.output().split('\n'))
    if (line.includes('"handler failed"')) console.error(line);
  jobs.close();
  await d.stop();
  removeStateDir(d.stateDir);
});

const submit = (format: string, source: string, shots: number, extra: object = {}) =>
  runJob(jobs, { program: { format, source }, shots, ...extra });

async function expectDistribution(
  format: string,
  source: string,
  shots: number,
  expected: Record<string, number>,
) {
  const { job, result } = await submit(format, source, shots);
  assert.is(job.state, 'JOB_STATE_DONE', `${job.state}: ${job.reason}`);
  assert.ok(result);
  const counts = result!.counts as Record<string, number>;
  const total = Object.values(counts).reduce((a, b) => a + Number(b), 0);
  assert.is(total, shots);
  const bad = checkDistribution(counts, expected);
  assert.is(bad, null, `${bad} in ${JSON.stringify(counts)}`);
  return result!;
}

// ------------------------------------------------------------------ the example programs

const EXPECTED: Record<string, Record<string, number>> = {
  bell_teleport_cnot: { '00': 0.5, '11': 0.5 },
  ghz_state: { '0000': 0.5, '1111': 0.5 },
  conditional_correction: { '00': 0.5, '10': 0.5 },
  measurement_bases: { '000': 0.25, '001': 0.25, '100': 0.25, '101': 0.25 },
  teleportation_demo: uniform(3),
};

for (const [name, expected] of Object.entries(EXPECTED)) {
  test(`example ${name} at 10,000 shots matches EXPECTED.md`, async () => {
    const source = readFileSync(join(EXAMPLES, `${name}.qvm.json`), 'utf8');
    const result = await expectDistribution(QVM, source, 10_000, expected);
    assert.match(result.bit_order, /resources\.events order, first event leftmost/);
  });
}

// ------------------------------------------------------------------ textbook circuits, both formats

test('GHZ on 20 qubits: only all-zeros and all-ones, half each (QVM and OpenQASM)', async () => {
  const expected = { [`${'0'.repeat(20)}`]: 0.5, [`${'1'.repeat(20)}`]: 0.5 };
  const r = await expectDistribution(QVM, ghzQvm(20), 1000, expected);
  assert.is(r.largest_state_qubits, 20);
  await expectDistribution(QASM, ghzQasm(20), 1000, expected);
});

test('teleportation of |+> read in X on the receiver is always 0 (per-shot, corrections applied)', async () => {
  const r = await expectDistribution(QVM, teleportPlusQvm(), 2000, {
    '000': 0.25,
    '010': 0.25,
    '100': 0.25,
    '110': 0.25,
  });
  assert.is(r.sampling, 'per-shot');
  // OpenQASM keys are "b a m": the receiver's register leftmost.
  await expectDistribution(QASM, teleportPlusQasm(), 2000, {
    '0 0 0': 0.25,
    '0 0 1': 0.25,
    '0 1 0': 0.25,
    '0 1 1': 0.25,
  });
});

test('3-qubit Grover finds its marked item with P > 0.9, in both formats', async () => {
  for (const [format, source] of [
    [QVM, groverQvm(0b101)],
    [QASM, groverQasm(0b101)],
  ] as const) {
    const { job, result } = await submit(format, source, 4000);
    assert.is(job.state, 'JOB_STATE_DONE');
    const p = Number(result!.counts['101'] ?? 0) / 4000;
    assert.ok(p > 0.9, `${format}: P(101) = ${p}`);
    // Two Grover iterations on 3 qubits: P = sin²(5·asin(1/√8)) = 0.9453.
    assert.ok(
      Math.abs(p - 0.9453) < 5 * Math.sqrt((0.9453 * 0.0547) / 4000),
      `${format}: P = ${p}`,
    );
  }
});

test('Bernstein–Vazirani reads its secret deterministically, in both formats', async () => {
  for (const secret of ['1011', '010011']) {
    await expectDistribution(QVM, bvQvm(secret), 500, { [secret]: 1 });
    await expectDistribution(QASM, bvQasm(secret), 500, { [secret]: 1 });
  }
});

test('QFT of a basis state gives a uniform distribution, in both formats', async () => {
  await expectDistribution(QVM, qftQvm(4, 0b0110), 10_000, uniform(4));
  await expectDistribution(QASM, qftQasm(4, 0b1011), 10_000, uniform(4));
});

// ------------------------------------------------------------------ seeds

test('the same seed gives the same counts and outcomes; the seed is always returned', async () => {
  const src = randomCircuitQasm(6, 4, 7);
  const a = await submit(QASM, src, 300, { seed: '12345678901234567890', shot_outcomes_max: 50 });
  const b = await submit(QASM, src, 300, { seed: '12345678901234567890', shot_outcomes_max: 50 });
  assert.is(a.job.seed, '12345678901234567890');
  assert.equal(a.result!.counts, b.result!.counts);
  const ra = await call<{ shot_outcomes: string[] }>(jobs, 'GetJobResult', {
    job_id: a.job.job_id,
    include_shot_outcomes: true,
  });
  const rb = await call<{ shot_outcomes: string[] }>(jobs, 'GetJobResult', {
    job_id: b.job.job_id,
    include_shot_outcomes: true,
  });
  assert.is(ra.shot_outcomes.length, 50);
  assert.equal(ra.shot_outcomes, rb.shot_outcomes);
  const c = await submit(QASM, src, 300);
  assert.match(c.job.seed, /^[0-9]{1,20}$/);
  assert.is.not(c.job.seed, '12345678901234567890');
});

// ------------------------------------------------------------------ refusals

test('a program with several faults is refused with every violation in google.rpc.BadRequest', async () => {
  const source = JSON.stringify({
    version: '0.1',
    program: {
      nodes: [
        { id: 'a', op: 'ALLOC_LQ', vqs: ['q0', 'q1'], args: { n: 2 } },
        { id: 'b', op: 'APPLY_RX', vqs: ['q0'], args: { theta: 'x' } },
        { id: 'c', op: 'APPLY_CNOT', vqs: ['q0', 'q0'] },
        { id: 'd', op: 'MEASURE_Z', vqs: ['q9'], produces: ['m0'] },
        { id: 'e', op: 'BOGUS', vqs: [] },
      ],
    },
    resources: { vqs: ['q0', 'q1'], events: ['m0'] },
  });
  const err = await callError(jobs, 'SubmitJob', { program: { format: QVM, source }, shots: 10 });
  assert.is(err.code, 3); // INVALID_ARGUMENT
  assert.is(err.metadata.get('qmk-error-code')[0], 'PROGRAM_INVALID');
  const raw = err.metadata.get(STATUS_DETAILS_KEY)[0] as Buffer;
  assert.ok(raw, 'grpc-status-details-bin is present');
  const details = decodeStatusDetails(raw);
  assert.is(details.code, 3);
  const fields = details.badRequest.map((v) => v.field).join('\n');
  assert.ok(details.badRequest.length >= 4, fields);
  assert.match(fields, /^b: program\.nodes\[1\]\.args\.theta/m);
  assert.match(fields, /^c: program\.nodes\[2\]\.vqs/m);
  assert.match(fields, /^d: program\.nodes\[3\]\.vqs\[0\]/m);
  assert.match(fields, /program\.nodes\[4\]\.op/);
  for (const v of details.badRequest) assert.match(v.reason, /^QVM_RULE_\d+$/);
  // Nothing was queued.
  const list = await call<{ jobs: unknown[] }>(jobs, 'ListJobs', { states: ['JOB_STATE_QUEUED'] });
  assert.is(list.jobs.length, 0);
});

test('OpenQASM syntax errors carry line and column', async () => {
  const err = await callError(jobs, 'SubmitJob', {
    program: {
      format: QASM,
      source: 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nfoo q[0];\n',
    },
    shots: 1,
  });
  assert.is(err.code, 3);
  const details = decodeStatusDetails(err.metadata.get(STATUS_DETAILS_KEY)[0] as Buffer);
  assert.ok(
    details.badRequest.some((v) => v.field.startsWith('4:') && v.reason === 'QASM_SYNTAX'),
    JSON.stringify(details),
  );
});

test('ValidateProgram returns violations and an estimate without queueing', async () => {
  const ok = await call<Wire>(jobs, 'ValidateProgram', {
    program: { format: QVM, source: ghzQvm(5) },
    shots: 100,
  });
  assert.is(ok.valid, true);
  assert.is(ok.estimate.logical_qubits, 5);
  assert.is(ok.estimate.largest_cluster, 5);
  assert.is(ok.estimate.state_bytes, 16 * 32);
  assert.is(ok.estimate.gate_counts.APPLY_CNOT, 4);
  assert.is(ok.estimate.sampling, 'sampled');
  const bad = await call<Wire>(jobs, 'ValidateProgram', {
    // 1e400 in the JSON text parses to Infinity: not a finite angle.
    program: {
      format: QVM,
      source: qvm(['q'], [{ op: 'APPLY_RZ', vqs: ['q'], args: { theta: 'HUGE' } }], []).replace(
        '"HUGE"',
        '1e400',
      ),
    },
    shots: 1,
  });
  assert.is(bad.valid, false);
  assert.ok(
    bad.violations.some((v: Wire) => v.field.includes('theta')),
    JSON.stringify(bad.violations),
  );
});

test('bad request fields are named', async () => {
  const cases: [object, RegExp][] = [
    [{ program: { format: QVM, source: ghzQvm(2) }, shots: 0 }, /^shots:/],
    [
      { program: { format: 'PROGRAM_FORMAT_UNSPECIFIED', source: ghzQvm(2) }, shots: 1 },
      /^program\.format:/,
    ],
    [
      { program: { format: QVM, source: ghzQvm(2) }, shots: 1, seed: '18446744073709551616' },
      /^seed:/,
    ],
    [{ program: { format: QVM, source: ghzQvm(2) }, shots: 1, seed: '-1' }, /^seed:/],
    [
      { program: { format: QVM, source: ghzQvm(2) }, shots: 1, shot_outcomes_max: 10_001 },
      /^shot_outcomes_max:/,
    ],
    [
      { program: { format: QVM, source: ghzQvm(2) }, shots: 1, idempotency_key: 'x'.repeat(129) },
      /^idempotency_key:/,
    ],
    [
      { program: { format: QVM, source: '{not json' }, shots: 1 },
      /program: 1 violation.*not valid JSON/,
    ],
    [
      {
        program: { format: QVM, source: ghzQvm(2) },
        shots: 3,
        bindings: [{ name: 'q0', qubit_handle: 'x' }],
      },
      /^shots: must be 1 .*no-cloning/,
    ],
  ];
  for (const [req, message] of cases) {
    const err = await callError(jobs, 'SubmitJob', req);
    assert.is(err.code, 3, err.details);
    assert.match(err.details, message);
  }
  const tooMany = await callError(jobs, 'SubmitJob', {
    program: { format: QVM, source: ghzQvm(2) },
    shots: 2_000_000,
  });
  assert.is(tooMany.code, 8);
  assert.match(tooMany.details, /^shots_per_job_max/);
});

// ------------------------------------------------------------------ idempotency

test('an idempotency key returns the same job for the same request and ALREADY_EXISTS for another', async () => {
  const req = { program: { format: QVM, source: ghzQvm(3) }, shots: 10, idempotency_key: 'run-1' };
  const a = await call<Wire>(jobs, 'SubmitJob', req);
  const b = await call<Wire>(jobs, 'SubmitJob', req);
  assert.is(a.deduplicated, false);
  assert.is(b.deduplicated, true);
  assert.is(b.job.job_id, a.job.job_id);
  assert.is(b.job.seed, a.job.seed);
  const err = await callError(jobs, 'SubmitJob', { ...req, shots: 11 });
  assert.is(err.code, 6); // ALREADY_EXISTS
  assert.match(err.details, /^idempotency_key: already used for job/);
});

// ------------------------------------------------------------------ watch, cancel, list, limits

/** A per-shot job whose run time scales with its shots: 14 qubits, a mid-circuit measurement. */
const slowQasm = () => perShotQasm(14, 6, 3);

test('WatchJob reports every state in order and ends after the terminal one', async () => {
  // The watch must open while the job is still queued, whatever the machine's speed: a job that
  // holds the tenant's only running slot keeps it queued until that one is cancelled.
  const admin = adminClient(d);
  const t = await newTenant(d, 'jobs-watch');
  t.client.close();
  await call(admin, 'UpdateTenant', { tenant: 'jobs-watch', quota: { jobs_running_max: 1 } });
  admin.close();
  const c = jobClient(d, t.apiKey);
  const blocker = await call<{ job: { job_id: string } }>(c, 'SubmitJob', {
    program: { format: QASM, source: slowQasm() },
    shots: 100_000,
  });
  while (
    (await call<{ job: Wire }>(c, 'GetJob', { job_id: blocker.job.job_id })).job.state !==
    'JOB_STATE_RUNNING'
  )
    await sleep(20);
  const { job } = await call<{ job: { job_id: string } }>(c, 'SubmitJob', {
    program: { format: QASM, source: slowQasm() },
    shots: 40,
  });
  const events: { job: Wire }[] = [];
  const stream = c.WatchJob({ job_id: job.job_id }) as grpc.ClientReadableStream<{ job: Wire }>;
  const ended = new Promise<void>((resolve, reject) => {
    stream.on('error', reject);
    stream.on('end', () => resolve());
  });
  await new Promise<void>((resolve) =>
    stream.on('data', (m: { job: Wire }) => {
      events.push(m);
      resolve(); // the first event: the watch is open, the job still queued
    }),
  );
  await call(c, 'CancelJob', { job_id: blocker.job.job_id });
  await ended;
  const states = events.map((e) => e.job.state).filter((s, i, a) => i === 0 || a[i - 1] !== s);
  assert.equal(states, ['JOB_STATE_QUEUED', 'JOB_STATE_RUNNING', 'JOB_STATE_DONE'], states.join());
  const last = events[events.length - 1]!.job;
  assert.is(last.shots_done, 40);
  assert.ok(last.finished_at_unix_ms >= last.started_at_unix_ms);
  // A finished job's watch sends it once and ends.
  const again = await watchJob(c, job.job_id);
  assert.is(again.length, 1);
  assert.is(again[0]!.job.state, 'JOB_STATE_DONE');
  c.close();
});

test('cancel: queued at once, running at the next gate boundary, finished is FAILED_PRECONDITION', async () => {
  const admin = adminClient(d);
  const t = await newTenant(d, 'jobs-cancel');
  t.client.close();
  await call(admin, 'UpdateTenant', { tenant: 'jobs-cancel', quota: { jobs_running_max: 1 } });
  admin.close();
  const c = jobClient(d, t.apiKey);
  const long = { program: { format: QASM, source: slowQasm() }, shots: 100_000 };
  const running = await call<{ job: { job_id: string } }>(c, 'SubmitJob', long);
  const queued = await call<{ job: { job_id: string; state: string } }>(c, 'SubmitJob', long);
  assert.is(queued.job.state, 'JOB_STATE_QUEUED');
  const cq = await call<{ job: Wire }>(c, 'CancelJob', { job_id: queued.job.job_id });
  assert.is(cq.job.state, 'JOB_STATE_CANCELLED');
  assert.match(cq.job.reason, /while queued/);
  // Wait until the first job runs, then cancel it.
  for (let i = 0; i < 100; i++) {
    const g = await call<{ job: Wire }>(c, 'GetJob', { job_id: running.job.job_id });
    if (g.job.state === 'JOB_STATE_RUNNING') break;
    await sleep(20);
  }
  const watch = watchJob(c, running.job.job_id);
  const cr = await call<{ job: Wire }>(c, 'CancelJob', { job_id: running.job.job_id });
  assert.is(cr.job.state, 'JOB_STATE_CANCELLING', JSON.stringify(cr.job));
  const events = await watch;
  const final = events[events.length - 1]!.job;
  assert.is(final.state, 'JOB_STATE_CANCELLED');
  assert.ok(final.shots_done < 100_000, String(final.shots_done));
  const err = await callError(c, 'CancelJob', { job_id: running.job.job_id });
  assert.is(err.code, 9); // FAILED_PRECONDITION
  assert.match(err.details, /already CANCELLED/);
  const noResult = await callError(c, 'GetJobResult', { job_id: running.job.job_id });
  assert.is(noResult.code, 9);
  c.close();
});

test('a job over its runtime limit fails with the reason', async () => {
  const admin = adminClient(d);
  const t = await newTenant(d, 'jobs-slow');
  t.client.close();
  await call(admin, 'UpdateTenant', { tenant: 'jobs-slow', quota: { job_runtime_seconds_max: 1 } });
  admin.close();
  const c = jobClient(d, t.apiKey);
  const { job } = await runJob(c, {
    program: { format: QASM, source: slowQasm() },
    shots: 1_000_000,
  });
  assert.is(job.state, 'JOB_STATE_FAILED');
  assert.match(job.reason, /^job_runtime_seconds_max: ran longer than 1 s/);
  c.close();
});

test('the queue limit refuses with RESOURCE_EXHAUSTED naming jobs_queued_max', async () => {
  const admin = adminClient(d);
  const t = await newTenant(d, 'jobs-full');
  t.client.close();
  await call(admin, 'UpdateTenant', {
    tenant: 'jobs-full',
    quota: { jobs_queued_max: 2, jobs_running_max: 1 },
  });
  admin.close();
  const c = jobClient(d, t.apiKey);
  const long = { program: { format: QASM, source: slowQasm() }, shots: 100_000 };
  const ids: string[] = [];
  ids.push((await call<{ job: { job_id: string } }>(c, 'SubmitJob', long)).job.job_id);
  // Wait for the event, not for a time: the first one is running before the next are queued.
  while (
    (await call<{ job: Wire }>(c, 'GetJob', { job_id: ids[0] })).job.state !== 'JOB_STATE_RUNNING'
  )
    await sleep(20);
  ids.push((await call<{ job: { job_id: string } }>(c, 'SubmitJob', long)).job.job_id);
  ids.push((await call<{ job: { job_id: string } }>(c, 'SubmitJob', long)).job.job_id);
  const err = await callError(c, 'SubmitJob', long);
  assert.is(err.code, 8);
  assert.match(err.details, /^jobs_queued_max: 2 jobs already queued/);
  for (const id of ids) await call(c, 'CancelJob', { job_id: id }).catch(() => {});
  c.close();
});

test('ListJobs filters by state and pages newest first; another tenant sees none of them', async () => {
  const t = await newTenant(d, 'jobs-list');
  t.client.close();
  const c = jobClient(d, t.apiKey);
  const ids: string[] = [];
  for (let i = 0; i < 5; i++)
    ids.push(
      (await runJob(c, { program: { format: QVM, source: ghzQvm(2) }, shots: 10 })).job.job_id,
    );
  const p1 = await call<{ jobs: { job_id: string }[]; next_page_token: string }>(c, 'ListJobs', {
    page_size: 2,
  });
  assert.equal(
    p1.jobs.map((j) => j.job_id),
    [ids[4], ids[3]],
  );
  const p2 = await call<{ jobs: { job_id: string }[]; next_page_token: string }>(c, 'ListJobs', {
    page_size: 2,
    page_token: p1.next_page_token,
  });
  assert.equal(
    p2.jobs.map((j) => j.job_id),
    [ids[2], ids[1]],
  );
  const p3 = await call<{ jobs: { job_id: string }[]; next_page_token: string }>(c, 'ListJobs', {
    page_size: 2,
    page_token: p2.next_page_token,
  });
  assert.equal(
    p3.jobs.map((j) => j.job_id),
    [ids[0]],
  );
  assert.is(p3.next_page_token, '');
  const done = await call<{ jobs: unknown[] }>(c, 'ListJobs', { states: ['JOB_STATE_DONE'] });
  assert.is(done.jobs.length, 5);
  const none = await call<{ jobs: unknown[] }>(c, 'ListJobs', { states: ['JOB_STATE_FAILED'] });
  assert.is(none.jobs.length, 0);
  // Tenant A cannot see, cancel or read B's jobs: NOT_FOUND, as for an id that does not exist.
  for (const m of ['GetJob', 'CancelJob', 'GetJobResult']) {
    const err = await callError(jobs, m, { job_id: ids[0] });
    assert.is(err.code, 5, m);
  }
  const watchErr = await watchJob(jobs, ids[0]!).then(
    () => null,
    (e) => e,
  );
  assert.is(watchErr?.code, 5);
  const bad = await callError(c, 'ListJobs', { page_token: 'garbage' });
  assert.is(bad.code, 3);
  assert.match(bad.details, /^page_token:/);
  c.close();
});

test.run();
