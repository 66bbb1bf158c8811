import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { STATUS_DETAILS_KEY, decodeStatusDetails } from '../../src/api/details.js';
import { openStateOffline } from '../../src/store/offline.js';
import {
  type Daemon,
  type Wire,
  adminClient,
  call,
  callError,
  removeStateDir,
  runJob,
  sleep,
  startDaemon,
} from '../support/daemon.js';
import {
  type Party,
  alloc,
  channel,
  closeParty,
  measure,
  party,
  share,
  used,
} from '../support/parties.js';
import { perShotQasm } from '../support/programs.js';

const QVM = 'PROGRAM_FORMAT_QVM_JSON';
const QASM = 'PROGRAM_FORMAT_OPENQASM2';

let d: Daemon;
let A: Party;
let B: Party;
let C: Party;
/** Firewall refusals made, by code: each must have its audit record. */
const refused = new Map<string, number>();

test.before(async () => {
  d = await startDaemon();
  A = await party(d, 'fw-a');
  B = await party(d, 'fw-b');
  C = await party(d, 'fw-c');
});

test.after(async () => {
  for (const p of [A, B, C]) closeParty(p);
  if (d.child.exitCode === null) await d.stop();
  removeStateDir(d.stateDir);
});

/** A channel from `from` to `to`, approved by `to`: its id. */
async function open(from: Party, to: Party, max: number): Promise<string> {
  return (await channel(from, to, max)).channel_id as string;
}

/** A QVM program over bound qubit names only. */
function program(bound: string[], body: object[]): string {
  return JSON.stringify({
    version: '0.1',
    program: { nodes: body.map((n, i) => ({ id: `n${i}`, ...n })) },
    resources: { vqs: bound, events: [] },
  });
}

const cnot = (c: string, t: string) => ({ op: 'APPLY_CNOT', vqs: [c, t] });

/** A submission refused by rule 9: INVALID_ARGUMENT, BadRequest violations, nothing queued. */
async function refusedSubmit(
  p: Party,
  req: object,
  code: string,
  field: RegExp,
  reason: RegExp,
): Promise<Wire[]> {
  const before = (await call<{ jobs: unknown[] }>(p.jobs, 'ListJobs', {})).jobs.length;
  const err = await callError(p.jobs, 'SubmitJob', req);
  assert.is(err.code, 3, err.details);
  assert.is(err.metadata.get('qmk-error-code')[0], 'PROGRAM_INVALID');
  const details = decodeStatusDetails(err.metadata.get(STATUS_DETAILS_KEY)[0] as Buffer);
  const v = details.badRequest.find((x) => x.description.includes(`${code}: `));
  assert.ok(v, `a ${code} violation in ${JSON.stringify(details.badRequest)}`);
  assert.match(v!.field, field);
  assert.match(v!.description, reason);
  assert.is(v!.reason, 'QVM_RULE_9');
  assert.is(
    (await call<{ jobs: unknown[] }>(p.jobs, 'ListJobs', {})).jobs.length,
    before,
    'nothing was queued',
  );
  if (code !== 'RIGHTS_INSUFFICIENT') refused.set(code, (refused.get(code) ?? 0) + 1);
  // ValidateProgram reports the same violation without throwing.
  const dry = await call<{ valid: boolean; violations: Wire[] }>(p.jobs, 'ValidateProgram', req);
  assert.is(dry.valid, false);
  assert.ok(
    dry.violations.some((x) => x.rule === 9 && x.code === code),
    JSON.stringify(dry.violations),
  );
  return details.badRequest;
}

test('allowed: A’s job entangles its qubit with B’s shared qubit; the use is counted and the effect is B’s', async () => {
  const ch = await open(A, B, 2);
  const [a] = await alloc(A);
  const [b] = await alloc(B);
  await call(A.kernel, 'ApplyGates', { gates: [{ kind: 'GATE_KIND_X', qubits: [a!.handle] }] });
  const shared = await share(B, ch, b!);
  const { job } = await runJob(A.jobs, {
    program: { format: QVM, source: program(['a', 'b'], [cnot('a', 'b')]) },
    shots: 1,
    bindings: [
      { name: 'a', qubit_handle: a!.handle },
      { name: 'b', qubit_handle: shared },
    ],
  });
  assert.is(job.state, 'JOB_STATE_DONE', job.reason);
  assert.is(await used(A, ch), 1, 'one join across tenants, one use');
  assert.is(await measure(B, b!), 1, 'the CNOT copied |1> into B’s qubit');
  assert.is(await measure(A, a!), 1);
});

test('a shared qubit in a non-entangling op is refused at submission, naming the node and operand', async () => {
  const ch = await open(A, B, 2);
  const [b] = await alloc(B);
  const shared = await share(B, ch, b!);
  const [a] = await alloc(A);
  const req = {
    program: {
      format: QVM,
      source: program(
        ['a', 'b'],
        [{ op: 'APPLY_H', vqs: ['b'] }, cnot('a', 'b'), { op: 'APPLY_X', vqs: ['b'] }],
      ),
    },
    shots: 1,
    bindings: [
      { name: 'a', qubit_handle: a!.handle },
      { name: 'b', qubit_handle: shared },
    ],
  };
  const all = await refusedSubmit(
    A,
    req,
    'RIGHTS_INSUFFICIENT',
    /^n0: program\.nodes\[0\]\.vqs\[0\]$/,
    /only entangling gates .* not APPLY_H/,
  );
  assert.ok(
    all.some((v) => v.field.startsWith('n2: ') && /not APPLY_X/.test(v.description)),
    'every misuse is listed',
  );
  assert.is(await used(A, ch), 0);
  assert.is(await measure(B, b!), 0, 'B’s qubit is untouched');
});

test('the (N+1)th join across tenants in one program is refused with N = 2', async () => {
  const ch = await open(A, B, 2);
  const [b] = await alloc(B);
  const shared = await share(B, ch, b!);
  const as = await alloc(A, 3);
  const req = {
    program: {
      format: QVM,
      source: program(['a0', 'a1', 'a2', 'b'], [cnot('a0', 'b'), cnot('a1', 'b'), cnot('a2', 'b')]),
    },
    shots: 1,
    bindings: [
      ...as.map((q, i) => ({ name: `a${i}`, qubit_handle: q.handle })),
      { name: 'b', qubit_handle: shared },
    ],
  };
  // The first two joins fit; the third (n2) is the one over: the violation names it.
  await refusedSubmit(
    A,
    req,
    'CHANNEL_EXHAUSTED',
    /^n2: program\.nodes\[2\]\.vqs$/,
    /has 2 entanglement\(s\) left; this is the program's join number 3/,
  );
  assert.is(await used(A, ch), 0);
  // Two joins are allowed and take both uses.
  const two = {
    ...req,
    program: {
      format: QVM,
      source: program(['a0', 'a1', 'b'], [cnot('a0', 'b'), cnot('a1', 'b')]),
    },
    bindings: [req.bindings[0]!, req.bindings[1]!, req.bindings[3]!],
  };
  const { job } = await runJob(A.jobs, two);
  assert.is(job.state, 'JOB_STATE_DONE', job.reason);
  assert.is(await used(A, ch), 2);
});

test('through a third tenant: B’s and C’s shared qubits join in A’s job only with a B–C channel', async () => {
  const ab = await open(A, B, 5);
  const ac = await open(A, C, 5);
  const [b] = await alloc(B);
  const [c] = await alloc(C);
  const [a] = await alloc(A);
  const bindings = [
    { name: 'a', qubit_handle: a!.handle },
    { name: 'b', qubit_handle: await share(B, ab, b!) },
    { name: 'c', qubit_handle: await share(C, ac, c!) },
  ];
  // a–b is allowed (A–B), then joining that cluster with c needs A–C and B–C: B–C is missing.
  const req = {
    program: { format: QVM, source: program(['a', 'b', 'c'], [cnot('a', 'b'), cnot('a', 'c')]) },
    shots: 1,
    bindings,
  };
  await refusedSubmit(
    A,
    req,
    'FIREWALL_NO_CHANNEL',
    /^n1: program\.nodes\[1\]\.vqs$/,
    /no channel between tenants ("fw-b" and "fw-c"|"fw-c" and "fw-b")/,
  );
  assert.equal([await used(A, ab), await used(A, ac)], [0, 0]);
  // With a B–C channel the same job runs and takes one use of each of the three channels.
  const bc = await open(B, C, 5);
  const { job } = await runJob(A.jobs, req);
  assert.is(job.state, 'JOB_STATE_DONE', job.reason);
  assert.equal([await used(A, ab), await used(A, ac), await used(B, bc)], [1, 1, 1]);
});

test('a channel revoked after submission: the job fails when it starts, with the reason, and changes nothing', async () => {
  const admin = adminClient(d);
  await call(admin, 'UpdateTenant', { tenant: 'fw-a', quota: { jobs_running_max: 1 } });
  admin.close();
  const ch = await open(A, B, 2);
  const [b] = await alloc(B);
  const [a] = await alloc(A);
  await call(A.kernel, 'ApplyGates', { gates: [{ kind: 'GATE_KIND_X', qubits: [a!.handle] }] });
  // A long job holds A's only running slot, so the bound job waits in the queue.
  const slow = await call<{ job: Wire }>(A.jobs, 'SubmitJob', {
    program: { format: QASM, source: perShotQasm(14, 6, 3) },
    shots: 100_000,
  });
  const { job } = await call<{ job: Wire }>(A.jobs, 'SubmitJob', {
    program: { format: QVM, source: program(['a', 'b'], [cnot('a', 'b')]) },
    shots: 1,
    bindings: [
      { name: 'a', qubit_handle: a!.handle },
      { name: 'b', qubit_handle: await share(B, ch, b!) },
    ],
  });
  assert.is(job.state, 'JOB_STATE_QUEUED');
  await call(B.channels, 'RevokeChannel', { channel_id: ch, reason: 'changed my mind' });
  await call(A.jobs, 'CancelJob', { job_id: slow.job.job_id });
  let state = job;
  for (let i = 0; i < 200 && !/DONE|FAILED|CANCELLED/.test(state.state); i++) {
    await sleep(20);
    state = (await call<{ job: Wire }>(A.jobs, 'GetJob', { job_id: job.job_id })).job;
  }
  assert.is(state.state, 'JOB_STATE_FAILED');
  assert.match(
    state.reason,
    /^could not run on the bound qubits: firewall: channel \S+ between ("fw-a" and "fw-b"|"fw-b" and "fw-a") was revoked \(changed my mind\)/,
  );
  refused.set('CHANNEL_REVOKED', (refused.get('CHANNEL_REVOKED') ?? 0) + 1);
  assert.is(await used(A, ch), 0);
  assert.is(await measure(B, b!), 0, 'B’s qubit is untouched');
});

test('a shared handle bound by a third tenant is not found; one for a non-VQ kind is refused', async () => {
  const ch = await open(A, B, 2);
  const [b] = await alloc(B);
  const shared = await share(B, ch, b!);
  const [c] = await alloc(C);
  const err = await callError(C.jobs, 'SubmitJob', {
    program: { format: QVM, source: program(['c', 'b'], [cnot('c', 'b')]) },
    shots: 1,
    bindings: [
      { name: 'c', qubit_handle: c!.handle },
      { name: 'b', qubit_handle: shared },
    ],
  });
  assert.is(err.code, 5, err.details);
  assert.match(err.details, /^bindings\[1\]\.qubit_handle: no such resource/);
  const wrong = await callError(A.jobs, 'SubmitJob', {
    program: { format: QVM, source: program(['b'], [{ op: 'APPLY_X', vqs: ['b'] }]) },
    shots: 1,
    bindings: [{ name: 'b', qubit_handle: A.session }],
  });
  assert.is(wrong.metadata.get('qmk-error-code')[0], 'HANDLE_WRONG_KIND');
  assert.is(await used(A, ch), 0);
});

test('every firewall refusal of a job left an audit record', async () => {
  assert.is(await d.stop(), 0);
  const state = openStateOffline(d.stateDir);
  const store = state.store;
  const seen = new Map<string, number>();
  for (const r of store.auditRecords()) {
    if (r.outcome.startsWith('denied:'))
      seen.set(r.outcome.slice(7), (seen.get(r.outcome.slice(7)) ?? 0) + 1);
  }
  await state.close();
  assert.equal([...refused.keys()].sort(), [
    'CHANNEL_EXHAUSTED',
    'CHANNEL_REVOKED',
    'FIREWALL_NO_CHANNEL',
  ]);
  for (const [code, n] of refused) assert.is(seen.get(code), n, `audit records of ${code}`);
});

test.run();
