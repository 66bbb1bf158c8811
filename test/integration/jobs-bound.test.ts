/**
 * Jobs on bound session qubits, through the real daemon as a tenant uses them: the job acts on
 * the qubits it binds and the effect stays (read back with MeasureQubits, also after kill -9 and a
 * restart), programs may add and measure their own qubits, shots other than 1 are refused with the
 * no-cloning reason, and bad bindings are refused naming the field.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type AnyClient,
  type Daemon,
  type Wire,
  adminClient,
  call,
  callError,
  jobClient,
  kernelClient,
  newTenant,
  removeStateDir,
  runJob,
  sleep,
  startDaemon,
  tempStateDir,
} from '../support/daemon.js';
import { perShotQasm } from '../support/programs.js';

const QVM = 'PROGRAM_FORMAT_QVM_JSON';
const QASM = 'PROGRAM_FORMAT_OPENQASM2';

interface Q {
  qubit_id: string;
  handle: string;
}

let d: Daemon;
let kernel: AnyClient;
let jobs: AnyClient;
let session: string;
let apiKey: string;
const dir = tempStateDir();

async function connect(): Promise<void> {
  d = await startDaemon(dir);
  kernel = kernelClient(d, apiKey);
  jobs = jobClient(d, apiKey);
}

test.before(async () => {
  d = await startDaemon(dir);
  const t = await newTenant(d, 'bound');
  apiKey = t.apiKey;
  kernel = t.client;
  jobs = jobClient(d, apiKey);
  session = (await call<{ session_handle: string }>(kernel, 'OpenSession', {})).session_handle;
});

test.after(async () => {
  kernel.close();
  jobs.close();
  for (const line of d.output().split('\n'))
    if (line.includes('"handler failed"')) console.error(line);
  await d.stop();
  removeStateDir(dir);
});

async function alloc(n: number): Promise<Q[]> {
  return (
    await call<{ qubits: Q[] }>(kernel, 'AllocateQubits', { session_handle: session, count: n })
  ).qubits;
}

async function measure(qs: Q[]): Promise<number[]> {
  const r = await call<{ outcomes: number[] }>(kernel, 'MeasureQubits', {
    measurements: qs.map((q) => ({ qubit: q.handle, basis: 'BASIS_Z' })),
  });
  return r.outcomes;
}

/** A QVM program over bound names `bound` plus its own `own` qubits (allocated and freed). */
function program(bound: string[], own: string[], body: object[], events: string[] = []): string {
  const nodes = [
    ...(own.length > 0 ? [{ op: 'ALLOC_LQ', vqs: own, args: { n: own.length } }] : []),
    ...body,
    ...(own.length > 0 ? [{ op: 'FREE_LQ', vqs: own }] : []),
  ].map((n, i) => ({ id: `n${i}`, ...n }));
  return JSON.stringify({
    version: '0.1',
    program: { nodes },
    resources: { vqs: [...bound, ...own], events },
  });
}

const bind = (names: string[], qs: Q[]) =>
  names.map((name, i) => ({ name, qubit_handle: qs[i]!.handle }));

test('a bound job acts on the session qubits and its effect stays, like ApplyGates', async () => {
  const qs = await alloc(2);
  await call(kernel, 'ApplyGates', { gates: [{ kind: 'GATE_KIND_X', qubits: [qs[0]!.handle] }] });
  const { job, result } = await runJob(jobs, {
    program: {
      format: QVM,
      source: program(['a', 'b'], [], [{ op: 'APPLY_CNOT', vqs: ['a', 'b'] }]),
    },
    shots: 1,
    bindings: bind(['a', 'b'], qs),
  });
  assert.is(job.state, 'JOB_STATE_DONE', job.reason);
  assert.equal(
    job.bindings.map((b: Wire) => b.name),
    ['a', 'b'],
  );
  assert.equal(result!.counts, { '': 1 });
  assert.equal(await measure(qs), [1, 1], 'CNOT copied |1> onto b');
});

test('a bound Bell job: the qubits are entangled afterwards (interactive outcomes agree)', async () => {
  const seen = new Set<number>();
  for (let i = 0; i < 16; i++) {
    const qs = await alloc(2);
    const { job } = await runJob(jobs, {
      program: {
        format: QVM,
        source: program(
          ['a', 'b'],
          [],
          [
            { op: 'APPLY_H', vqs: ['a'] },
            { op: 'APPLY_CNOT', vqs: ['a', 'b'] },
          ],
        ),
      },
      shots: 1,
      bindings: bind(['a', 'b'], qs),
    });
    assert.is(job.state, 'JOB_STATE_DONE', job.reason);
    const [x, y] = await measure(qs);
    assert.is(x, y, 'Bell pair outcomes agree');
    seen.add(x!);
    await call(kernel, 'ReleaseQubits', { qubit_handles: qs.map((q) => q.handle) });
  }
  assert.is(seen.size, 2, 'both outcomes over 16 pairs');
});

test('OpenQASM with bindings: the bound qreg qubits are not allocated or freed by the job', async () => {
  const qs = await alloc(2);
  await call(kernel, 'ApplyGates', { gates: [{ kind: 'GATE_KIND_X', qubits: [qs[1]!.handle] }] });
  const src =
    'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nqreg anc[1];\ncreg c[1];\nswap q[0],q[1];\ncx q[0],anc[0];\nmeasure anc[0] -> c[0];\n';
  const { job, result } = await runJob(jobs, {
    program: { format: QASM, source: src },
    shots: 1,
    bindings: bind(['q_0', 'q_1'], qs),
  });
  assert.is(job.state, 'JOB_STATE_DONE', job.reason);
  assert.equal(result!.counts, { '1': 1 }, 'the ancilla read the swapped-in |1>');
  assert.equal(await measure(qs), [1, 0], 'the swap stayed on the session qubits');
});

test('shots other than 1 are refused with the no-cloning reason', async () => {
  const qs = await alloc(1);
  const err = await callError(jobs, 'SubmitJob', {
    program: { format: QVM, source: program(['a'], [], [{ op: 'APPLY_H', vqs: ['a'] }]) },
    shots: 2,
    bindings: bind(['a'], qs),
  });
  assert.is(err.code, 3);
  assert.match(err.details, /^shots: must be 1 for a job with bindings/);
  assert.match(err.details, /no-cloning/);
});

test('bad bindings are refused naming the field, and nothing is queued', async () => {
  const qs = await alloc(1);
  const other = await newTenant(d, 'bound-other');
  const os = (await call<{ session_handle: string }>(other.client, 'OpenSession', {}))
    .session_handle;
  const theirs = (
    await call<{ qubits: Q[] }>(other.client, 'AllocateQubits', { session_handle: os, count: 1 })
  ).qubits;
  other.client.close();
  const src = program(['a'], [], [{ op: 'APPLY_H', vqs: ['a'] }]);
  const cases: [object[], number, RegExp][] = [
    [bind(['a'], theirs), 5, /^bindings\[0\]\.qubit_handle/], // another tenant's handle: NOT_FOUND
    [[{ name: 'a', qubit_handle: 'garbage' }], 16, /^bindings\[0\]\.qubit_handle/], // HANDLE_INVALID
    [bind(['zz'], qs), 3, /^bindings\[0\]\.name: "zz" is not a qubit of the program/],
    [[...bind(['a'], qs), ...bind(['a'], qs)], 3, /^bindings\[1\]\.name: "a" is bound twice/],
  ];
  for (const [bindings, code, message] of cases) {
    const err = await callError(jobs, 'SubmitJob', {
      program: { format: QVM, source: src },
      shots: 1,
      bindings,
    });
    assert.is(err.code, code, `${JSON.stringify(bindings)}: ${err.details}`);
    assert.match(err.details, message);
  }
  const frees = program(['a'], [], [{ op: 'FREE_LQ', vqs: ['a'] }]);
  const err = await callError(jobs, 'SubmitJob', {
    program: { format: QVM, source: frees },
    shots: 1,
    bindings: bind(['a'], qs),
  });
  assert.match(err.details, /^bindings\[0\]\.name: the program frees bound qubit "a"/);
  const list = await call<{ jobs: Wire[] }>(jobs, 'ListJobs', { states: ['JOB_STATE_QUEUED'] });
  assert.is(list.jobs.length, 0);
});

test('a bound qubit released while the job waits: the job fails saying so', async () => {
  const admin = adminClient(d);
  await call(admin, 'UpdateTenant', { tenant: 'bound', quota: { jobs_running_max: 1 } });
  const qs = await alloc(1);
  const slow = await call<{ job: Wire }>(jobs, 'SubmitJob', {
    program: { format: QASM, source: perShotQasm(14, 6, 3) },
    shots: 100_000,
  });
  const bound = await call<{ job: Wire }>(jobs, 'SubmitJob', {
    program: { format: QVM, source: program(['a'], [], [{ op: 'APPLY_H', vqs: ['a'] }]) },
    shots: 1,
    bindings: bind(['a'], qs),
  });
  assert.is(bound.job.state, 'JOB_STATE_QUEUED');
  await call(kernel, 'ReleaseQubits', { qubit_handles: [qs[0]!.handle] });
  await call(jobs, 'CancelJob', { job_id: slow.job.job_id });
  let final: Wire = bound.job;
  for (let i = 0; i < 200 && !['JOB_STATE_FAILED', 'JOB_STATE_DONE'].includes(final.state); i++) {
    await sleep(25);
    final = (await call<{ job: Wire }>(jobs, 'GetJob', { job_id: bound.job.job_id })).job;
  }
  assert.is(final.state, 'JOB_STATE_FAILED');
  assert.match(
    final.reason,
    /bindings\[0\]: the qubit bound as "a" was released before the job ran/,
  );
  await call(admin, 'UpdateTenant', { tenant: 'bound', quota: { jobs_running_max: 4 } });
  admin.close();
});

test('interactive gates on a pool-sized cluster do not wait behind jobs that fill every job slot', async () => {
  const admin = adminClient(d);
  await call(admin, 'UpdateTenant', { tenant: 'bound', quota: { jobs_running_max: 4 } });
  admin.close();
  const slow = { program: { format: QASM, source: perShotQasm(14, 6, 3) }, shots: 100_000 };
  const ids: string[] = [];
  for (let i = 0; i < 2; i++)
    ids.push((await call<{ job: Wire }>(jobs, 'SubmitJob', slow)).job.job_id);
  const state = async (id: string) =>
    (await call<{ job: Wire }>(jobs, 'GetJob', { job_id: id })).job.state;
  while ((await Promise.all(ids.map(state))).some((x) => x !== 'JOB_STATE_RUNNING'))
    await sleep(20);
  assert.equal(
    await Promise.all(ids.map(state)),
    ['JOB_STATE_RUNNING', 'JOB_STATE_RUNNING'],
    'both job slots busy',
  );
  // 12 qubits in one cluster: past the inline limit, so these run on the pool.
  const qs = await alloc(12);
  const t0 = Date.now();
  await call(kernel, 'ApplyGates', {
    gates: [
      { kind: 'GATE_KIND_H', qubits: [qs[0]!.handle] },
      ...qs.slice(1).map((q, i) => ({ kind: 'GATE_KIND_CNOT', qubits: [qs[i]!.handle, q.handle] })),
    ],
  });
  const out = await measure(qs);
  const took = Date.now() - t0;
  assert.ok(
    out.every((x) => x === out[0]),
    'a GHZ state reads all equal',
  );
  assert.equal(
    await Promise.all(ids.map(state)),
    ['JOB_STATE_RUNNING', 'JOB_STATE_RUNNING'],
    `the jobs were still running (${took} ms)`,
  );
  for (const id of ids) await call(jobs, 'CancelJob', { job_id: id });
});

test('kill -9 after a bound job: replay restores its effect on the session qubits', async () => {
  const qs = await alloc(3);
  await call(kernel, 'ApplyGates', { gates: [{ kind: 'GATE_KIND_X', qubits: [qs[0]!.handle] }] });
  const { job } = await runJob(jobs, {
    program: {
      format: QVM,
      source: program(
        ['a', 'b', 'c'],
        ['t'],
        [
          { op: 'APPLY_CNOT', vqs: ['a', 't'] },
          { op: 'MEASURE_Z', vqs: ['t'], produces: ['m'] },
          { op: 'APPLY_X', vqs: ['c'], guard: { event: 'm', equals: 1 } },
          { op: 'APPLY_CNOT', vqs: ['a', 'b'] },
        ],
        ['m'],
      ),
    },
    shots: 1,
    bindings: bind(['a', 'b', 'c'], qs),
  });
  assert.is(job.state, 'JOB_STATE_DONE', job.reason);
  kernel.close();
  jobs.close();
  await d.kill();
  await connect();
  assert.equal(
    await measure(qs),
    [1, 1, 1],
    'a=|1>, b copied it, c flipped by the guard on the ancilla',
  );
  const again = await call<{ job: Wire }>(jobs, 'GetJob', { job_id: job.job_id });
  assert.is(again.job.state, 'JOB_STATE_DONE');
  assert.is(again.job.attempts, 1, 'a finished bound job does not run again after a restart');
});

test.run();
