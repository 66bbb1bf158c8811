/**
 * The daemon's log as an operator reads it, at debug level through a whole tenant session: no
 * line holds an API key or a handle; one request id (the client's `x-request-id`) is in the
 * reply's header, the call's log line and the call's audit record; job transitions, admin actions
 * and refusals each have their info line (tenant, method, code, peer).
 */
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type AnyClient,
  type Wire,
  call,
  callError,
  jobClient,
  logLines,
  newTenant,
  removeStateDir,
  serviceClient,
  startDaemon,
  tempStateDir,
  watchJob,
} from '../support/daemon.js';
import { ghzQasm } from '../support/programs.js';

/** A unary call with `x-request-id`; resolves with the reply and the response's request id. */
function callWithId(
  client: AnyClient,
  method: string,
  req: object,
  id: string,
): Promise<{ res: Wire; header: string }> {
  const md = new grpc.Metadata();
  md.set('x-request-id', id);
  return new Promise((resolve, reject) => {
    let header = '';
    const c = client[method](req, md, (err: grpc.ServiceError | null, res: Wire) =>
      err ? reject(err) : resolve({ res, header }),
    ) as grpc.ClientUnaryCall;
    c.on('metadata', (m: grpc.Metadata) => {
      header = String(m.get('x-request-id')[0] ?? '');
    });
  });
}

test('debug log of a whole session: no secrets; one request id in header, log line and audit record', async () => {
  const d = await startDaemon(tempStateDir(), { QMK_LOG_LEVEL: 'debug' });
  const t = await newTenant(d, 'logged');
  const jobs = jobClient(d, t.apiKey);
  const audit = serviceClient(d, 'AuditService', t.apiKey);
  try {
    const { res: opened, header } = await callWithId(t.client, 'OpenSession', {}, 'req-test-42');
    assert.is(header, 'req-test-42', 'the reply names the request id');
    const session = opened.session_handle as string;
    const { qubits } = await call<Wire>(t.client, 'AllocateQubits', {
      session_handle: session,
      count: 2,
    });
    const handles = (qubits as Wire[]).map((q) => q.handle as string);
    await call(t.client, 'ApplyGates', {
      gates: [
        { kind: 'GATE_KIND_H', qubits: [handles[0]] },
        { kind: 'GATE_KIND_CNOT', qubits: handles },
      ],
    });
    await call(t.client, 'MeasureQubits', {
      measurements: handles.map((h) => ({ qubit: h, basis: 'BASIS_Z' })),
    });
    await call(t.client, 'ReleaseQubits', { qubit_handles: handles });
    const sub = await call<Wire>(jobs, 'SubmitJob', {
      program: { format: 'PROGRAM_FORMAT_OPENQASM2', source: ghzQasm(2) },
      shots: 100,
    });
    const jobId = sub.job.job_id as string;
    await watchJob(jobs, jobId);
    const missing = await callError(jobs, 'GetJob', { job_id: 'no-such-job' });
    assert.is(missing.code, grpc.status.NOT_FOUND);
    await call(t.client, 'CloseSession', { session_handle: session });
    const records = (await call<Wire>(audit, 'ListAuditRecords', {})).records as Wire[];

    const out = d.output();
    const lines = logLines(out);
    for (const secret of [t.apiKey, session, ...handles]) {
      assert.not.ok(out.includes(secret), `a secret in the log: ${secret.slice(0, 12)}…`);
    }
    // One request id: the call's log line and its audit record.
    const callLine = lines.find((l) => l.msg === 'call' && l.request_id === 'req-test-42');
    assert.ok(callLine, 'the debug line of the call');
    assert.is(callLine!.method, '/qmk.v1.KernelService/OpenSession');
    assert.is(callLine!.tenant, t.tenantId);
    assert.is(callLine!.code, 'OK');
    const record = records.find((r) => r.action === 'OpenSession');
    assert.is(record?.request_id, 'req-test-42', 'the audit record carries the request id');
    assert.ok(
      records.filter((r) => r.actor.startsWith(`${t.tenantId}/`)).every((r) => r.request_id !== ''),
      "every record of the tenant's own calls has a request id",
    );
    assert.ok(
      records.filter((r) => r.actor === 'kernel').every((r) => r.request_id === ''),
      "the kernel's own acts (the job's run) carry none",
    );
    // Job transitions, an admin action, a refusal.
    // A small job may be queued and started in one commit: then its first line is RUNNING.
    const jobLines = lines.filter((l) => l.msg === 'job' && l.job === jobId);
    const states = jobLines.map((l) => `${l.from}>${l.state}`).join(' ');
    assert.match(states, /^(>QUEUED QUEUED>RUNNING|>RUNNING) RUNNING>DONE$/);
    assert.ok(jobLines.every((l) => l.tenant === t.tenantId));
    assert.is(jobLines[jobLines.length - 1]!.shots_done, 100);
    assert.ok(
      lines.some(
        (l) => l.msg === 'admin action' && l.method === '/qmk.v1.AdminService/CreateTenant',
      ),
    );
    const refused = lines.find(
      (l) => l.msg === 'refused' && l.method === '/qmk.v1.JobService/GetJob',
    );
    assert.ok(refused, 'the refusal has a line');
    assert.is(refused!.tenant, t.tenantId);
    assert.is(refused!.code, 'NOT_FOUND');
    assert.is(refused!.peer, '127.0.0.1');
    assert.ok(lines.every((l) => typeof l.ts === 'string' && typeof l.level === 'string'));
  } finally {
    for (const c of [t.client, jobs, audit]) c.close();
    await d.stop();
    removeStateDir(d.stateDir);
  }
});

test('a request id is made when the client sends none or an unusable one', async () => {
  const d = await startDaemon(tempStateDir(), { QMK_LOG_LEVEL: 'info' });
  const t = await newTenant(d, 'ids');
  try {
    const { header } = await callWithId(t.client, 'GetUsage', {}, 'has spaces');
    assert.match(header, /^[0-9a-f-]{36}$/, 'a generated UUID');
    assert.not.ok(
      logLines(d.output()).some((l) => l.msg === 'call'),
      'no per-call lines at info',
    );
  } finally {
    t.client.close();
    await d.stop();
    removeStateDir(d.stateDir);
  }
});

test.run();
