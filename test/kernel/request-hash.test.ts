/**
 * Idempotency compares a hash of the request. The source is hashed apart from the other fields
 * (escaping a megabyte of program into JSON first cost ~9 ms of the main thread), and a job stored
 * with the earlier form of the hash still matches its own request after an upgrade.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Admission } from '../../src/kernel/admission.js';
import { KernelError } from '../../src/kernel/errors.js';
import type { JobRecord, SubmitRequest } from '../../src/kernel/job-model.js';
import { JobManager } from '../../src/kernel/jobs.js';
import type { JobRunnerPort } from '../../src/kernel/ports.js';
import { NodeCrypto } from '../../src/security/node-crypto.js';
import { kernelWithTenant } from '../support/fakes.js';

const BELL =
  'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\nmeasure q -> c;\n';

/** A runner that runs every job inline and answers all shots as "00". */
const runner: JobRunnerPort = {
  engine: 'fake',
  slots: 1,
  prepare: () => ({ sampling: 'sampled', work: 1, plan: {} }),
  inlineWorkMax: 1_000,
  runInline: (req) => ({
    stopped: 0,
    counts: { '00': req.shots },
    shotOutcomes: [],
    mode: 'sampled',
    shotsDone: req.shots,
    largestState: 4,
  }),
  run: async () => {
    throw new Error('no pool in this test');
  },
  newControl: () => new Int32Array(2),
};

function request(over: Partial<SubmitRequest> = {}): SubmitRequest {
  return {
    format: 'OPENQASM2',
    source: BELL,
    shots: 100,
    seed: '5',
    idempotencyKey: 'run-1',
    bindings: [],
    shotOutcomesMax: 0,
    strict: false,
    ...over,
  };
}

test('sha256Hex of parts frames each part by its length, so parts cannot run into each other', () => {
  const c = new NodeCrypto();
  assert.is.not(c.sha256Hex('ab', 'c'), c.sha256Hex('a', 'bc'));
  assert.is(c.sha256Hex('ab', 'c'), c.sha256Hex('ab', 'c'));
  assert.is.not(c.sha256Hex('abc'), c.sha256Hex('abc', ''));
});

test('the same key and request give the same job; another request under the key is ALREADY_EXISTS', async () => {
  const { kernel, clock, principal } = await kernelWithTenant();
  const jobs = new JobManager(
    kernel,
    runner,
    { clock, crypto: new NodeCrypto(), results: { read: () => undefined } },
    new Admission(1),
  );
  const first = await jobs.submit(principal, request());
  assert.is(first.deduplicated, false);
  const again = await jobs.submit(principal, request());
  assert.is(again.deduplicated, true);
  assert.is(again.job.id, first.job.id);
  for (const other of [{ shots: 101 }, { source: `${BELL}// another\n` }, { seed: '6' }]) {
    try {
      await jobs.submit(principal, request(other));
      assert.unreachable(`${JSON.stringify(other)} was deduplicated`);
    } catch (err) {
      assert.instance(err, KernelError);
      assert.is((err as KernelError).code, 'ALREADY_EXISTS');
    }
  }
  await jobs.drain(0);
});

test('a job stored with the earlier hash form still matches its own request', async () => {
  const { kernel, clock, principal, tenant } = await kernelWithTenant();
  const crypto = new NodeCrypto();
  const r = request();
  const legacyHash = crypto.sha256Hex(
    JSON.stringify(['qasm', r.source, r.shots, r.seed, [], r.shotOutcomesMax, r.strict]),
  );
  const stored: JobRecord = {
    id: 'job-stored',
    seq: 1,
    tenantId: tenant.id,
    keyId: principal.keyId,
    format: 'qasm',
    source: '',
    shots: r.shots,
    seed: r.seed,
    idempotencyKey: r.idempotencyKey,
    requestHash: legacyHash,
    bindings: [],
    shotOutcomesMax: 0,
    strict: false,
    state: 'DONE',
    reason: '',
    submittedAtMs: clock.nowMs(),
    startedAtMs: clock.nowMs(),
    finishedAtMs: clock.nowMs(),
    attempts: 1,
    shotsDone: r.shots,
    estimate: {
      logicalQubits: 2,
      physicalQubits: 2,
      physicalByProfile: { ideal: 2 },
      largestCluster: 2,
      gateCounts: {},
      stateBytes: 64,
      nodes: 4,
      sampling: 'sampled',
    },
    cost: 1,
  };
  const jobs = new JobManager(
    kernel,
    runner,
    { clock, crypto, results: { read: () => undefined } },
    new Admission(1),
    [stored],
  );
  const same = await jobs.submit(principal, r);
  assert.is(same.deduplicated, true);
  assert.is(same.job.id, 'job-stored');
  try {
    await jobs.submit(principal, request({ shots: 7 }));
    assert.unreachable('another request was deduplicated');
  } catch (err) {
    assert.is((err as KernelError).code, 'ALREADY_EXISTS');
  }
  await jobs.drain(0);
});

test.run();
