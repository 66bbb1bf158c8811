/**
 * Fault injection through the real daemon, one test per failpoint (`QMK_FAILPOINTS`): a crash
 * before, inside or after a commit, a commit failing with ENOSPC or EIO, a crash during a
 * checkpoint, an op-log or an audit append, a worker thread dying in a job or in an interactive
 * plan. Each checks that nothing acknowledged is lost, nothing unacknowledged appears (a crash
 * after a durable commit is the one case where the unanswered operation legitimately exists), the
 * daemon either carries on or comes back cleanly, and the audit chain verifies.
 */
import type * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openStateOffline } from '../../src/store/offline.js';
import {
  type AnyClient,
  type Daemon,
  adminClient,
  call,
  callError,
  jobClient,
  kernelClient,
  newTenant,
  removeStateDir,
  runJob,
  startDaemon,
  tempStateDir,
} from '../support/daemon.js';
import { ghzQasm } from '../support/programs.js';

const code = (e: grpc.ServiceError) => e.metadata.get('qmk-error-code')[0];

/** The chain re-hashed offline from its first record, with every record's MAC checked. */
async function chainVerifies(stateDir: string): Promise<void> {
  const state = openStateOffline(stateDir);
  try {
    assert.is(state.store.verifyAudit(), null, 'the audit chain verifies');
    assert.ok(state.store.verifyRecords() > 0);
  } finally {
    await state.close();
  }
}

interface World {
  dir: string;
  d: Daemon;
  apiKey: string;
  kernel: AnyClient;
  session: string;
  qubits: string[];
}

/** A daemon with failpoints armed, a tenant, a session and `n` qubits (all acknowledged). */
async function world(failpoints: string, n = 2, extra: NodeJS.ProcessEnv = {}): Promise<World> {
  const dir = tempStateDir();
  const d = await startDaemon(dir, { QMK_FAILPOINTS: failpoints, ...extra });
  const t = await newTenant(d, 'acme');
  const { session_handle: session } = await call<{ session_handle: string }>(
    t.client,
    'OpenSession',
    {},
  );
  const q = await call<{ qubits: { handle: string }[] }>(t.client, 'AllocateQubits', {
    session_handle: session,
    count: n,
  });
  return {
    dir,
    d,
    apiKey: t.apiKey,
    kernel: t.client,
    session,
    qubits: q.qubits.map((x) => x.handle),
  };
}

/** Starts the daemon again without failpoints (stopping it first if it carried on). */
async function restart(w: World): Promise<void> {
  w.kernel.close();
  if (w.d.child.exitCode === null && w.d.child.signalCode === null) assert.is(await w.d.stop(), 0);
  w.d = await startDaemon(w.dir);
  w.kernel = kernelClient(w.d, w.apiKey);
}

async function finish(w: World | undefined): Promise<void> {
  if (!w) return;
  w.kernel.close();
  if (w.d.child.exitCode === null && w.d.child.signalCode === null) assert.is(await w.d.stop(), 0);
  await chainVerifies(w.dir);
  removeStateDir(w.dir);
}

const x = (q: string) => ({ gates: [{ kind: 'GATE_KIND_X', qubits: [q] }] });
const measure = async (c: AnyClient, q: string) =>
  (
    await call<{ outcomes: number[] }>(c, 'MeasureQubits', {
      measurements: [{ qubit: q, basis: 'BASIS_Z' }],
    })
  ).outcomes[0];
const sessions = async (c: AnyClient) =>
  (await call<{ usage: { sessions_open: number } }>(c, 'GetUsage', {})).usage.sessions_open;

test('store.before-commit: crash before an OpenSession commit → after restart, no such session', async () => {
  let w: World | undefined;
  try {
    w = await world('store.before-commit:OpenSession@2');
    const err = await callError(w.kernel, 'OpenSession', {});
    assert.is(err.code, 14, err.message); // UNAVAILABLE: the connection died with the daemon
    assert.is((await w.d.ended).signal, 'SIGKILL');
    await restart(w);
    assert.is(await sessions(w.kernel), 1, 'only the acknowledged session');
  } finally {
    await finish(w);
  }
});

test('store.commit-enospc: OpenSession commits fail → STORAGE_FULL, no session counted; the daemon carries on', async () => {
  let w: World | undefined;
  try {
    w = await world('store.commit-enospc:OpenSession@2');
    for (let i = 0; i < 3; i++) {
      const err = await callError(w.kernel, 'OpenSession', {});
      assert.is(code(err), 'STORAGE_FULL', err.message);
    }
    assert.is(await sessions(w.kernel), 1);
    await call(w.kernel, 'ApplyGates', x(w.qubits[0]!)); // other writes still go through
    assert.is(await measure(w.kernel, w.qubits[0]!), 1);
    await restart(w);
    assert.is(await sessions(w.kernel), 1);
  } finally {
    await finish(w);
  }
});

test('store.commit-eio: an ApplyGates commit fails → STORAGE_FAILED, the daemon restarts itself; the gate never happened', async () => {
  let w: World | undefined;
  try {
    w = await world('store.commit-eio:ApplyGates');
    const err = await callError(w.kernel, 'ApplyGates', x(w.qubits[0]!));
    assert.is(code(err), 'STORAGE_FAILED', err.message);
    assert.is((await w.d.ended).code, 75, w.d.output());
    assert.match(w.d.output(), /restarting to reload the acknowledged state/);
    await restart(w);
    assert.is(await measure(w.kernel, w.qubits[0]!), 0, 'the unacknowledged X is not in the state');
  } finally {
    await finish(w);
  }
});

test('store.after-commit: crash after a durable OpenSession, before the reply → the session exists after restart', async () => {
  let w: World | undefined;
  try {
    w = await world('store.after-commit:OpenSession@2');
    const err = await callError(w.kernel, 'OpenSession', {});
    assert.is(err.code, 14);
    assert.is((await w.d.ended).signal, 'SIGKILL');
    await restart(w);
    assert.is(await sessions(w.kernel), 2, 'durable before the crash, though never answered');
  } finally {
    await finish(w);
  }
});

test('store.checkpoint: crash while the shutdown checkpoint is written → restart replays the op log; state intact', async () => {
  let w: World | undefined;
  try {
    w = await world('store.checkpoint');
    await call(w.kernel, 'ApplyGates', x(w.qubits[1]!));
    w.d.child.kill('SIGTERM'); // the clean stop checkpoints, and dies inside the transaction
    assert.is((await w.d.ended).signal, 'SIGKILL');
    await restart(w);
    assert.equal(
      [await measure(w.kernel, w.qubits[0]!), await measure(w.kernel, w.qubits[1]!)],
      [0, 1],
    );
  } finally {
    await finish(w);
  }
});

test('store.oplog-append: crash while an ApplyGates op-log entry is appended → the gate never happened', async () => {
  let w: World | undefined;
  try {
    w = await world('store.oplog-append:ApplyGates');
    const err = await callError(w.kernel, 'ApplyGates', x(w.qubits[0]!));
    assert.is(err.code, 14);
    assert.is((await w.d.ended).signal, 'SIGKILL');
    await restart(w);
    assert.is(await measure(w.kernel, w.qubits[0]!), 0);
    assert.is(await sessions(w.kernel), 1);
  } finally {
    await finish(w);
  }
});

test('store.audit-append: crash while SuspendTenant’s audit record is appended → the tenant is still active', async () => {
  let w: World | undefined;
  try {
    w = await world('store.audit-append:SuspendTenant');
    const admin = adminClient(w.d);
    const err = await callError(admin, 'SuspendTenant', { tenant: 'acme', reason: 'x' });
    admin.close();
    assert.is(err.code, 14);
    assert.is((await w.d.ended).signal, 'SIGKILL');
    await restart(w);
    assert.is(await sessions(w.kernel), 1, 'calls are served: not suspended');
  } finally {
    await finish(w);
  }
});

/** GHZ on 14 qubits: one 2^14-amplitude state, far past what runs inline on the main thread. */
const GHZ = ghzQasm(14);

test('worker.job: the worker running one job dies → that job FAILED with the reason; others and the daemon go on', async () => {
  let w: World | undefined;
  try {
    w = await world('worker.job:666');
    const jobs = jobClient(w.d, w.apiKey);
    const doomed = await runJob(jobs, {
      program: { format: 'PROGRAM_FORMAT_OPENQASM2', source: GHZ },
      shots: 50_000,
      seed: '666',
    });
    assert.is(doomed.job.state, 'JOB_STATE_FAILED');
    assert.match(doomed.job.reason, /the simulator failed/);
    for (let i = 0; i < 4; i++) {
      const ok = await runJob(jobs, {
        program: { format: 'PROGRAM_FORMAT_OPENQASM2', source: GHZ },
        shots: 50_000,
        seed: String(i + 1),
      });
      assert.is(ok.job.state, 'JOB_STATE_DONE', ok.job.reason);
    }
    assert.is(w.d.child.exitCode, null, 'the daemon kept running');
    jobs.close();
  } finally {
    await finish(w);
  }
});

test('worker.plan: the worker running an ApplyGates plan dies → the daemon restarts itself; acknowledged state intact', async () => {
  let w: World | undefined;
  try {
    // 12 qubits entangled in one cluster: plans on it go to the pool, not inline.
    w = await world('worker.plan:X', 12);
    await call(w.kernel, 'ApplyGates', x(w.qubits[0]!));
    const chain = {
      gates: w.qubits
        .slice(1)
        .map((q, i) => ({ kind: 'GATE_KIND_CNOT', qubits: [w!.qubits[i]!, q] })),
    };
    await call(w.kernel, 'ApplyGates', chain); // the first pool plan: all 12 now read 1
    const err = await callError(w.kernel, 'ApplyGates', x(w.qubits[0]!)); // the second dies
    assert.ok([13, 14].includes(err.code), err.message);
    assert.is((await w.d.ended).code, 75, w.d.output());
    await restart(w);
    const outcomes = (
      await call<{ outcomes: number[] }>(w.kernel, 'MeasureQubits', {
        measurements: w.qubits.map((q) => ({ qubit: q, basis: 'BASIS_Z' })),
      })
    ).outcomes;
    assert.equal(
      outcomes,
      new Array(12).fill(1),
      'the acknowledged gates, not the one whose worker died',
    );
  } finally {
    await finish(w);
  }
});

test.run();
