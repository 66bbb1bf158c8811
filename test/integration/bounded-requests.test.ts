/**
 * Every request costs at most what its limits allow: oversized requests are refused with the
 * limit's code and a short message before they are decoded, and the client's channel goes on
 * working. Against a real daemon, as a client would send them.
 */
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ECHO_CHARS_MAX } from '../../src/kernel/errors.js';
import { PROGRAM_SOURCE_BYTES_MAX } from '../../src/kernel/limits.js';
import {
  type AnyClient,
  type Daemon,
  call,
  callError,
  jobClient,
  newTenant,
  removeStateDir,
  runJob,
  startDaemon,
} from '../support/daemon.js';

let d: Daemon;
let kernel: AnyClient;
let jobs: AnyClient;
let apiKey: string;
let session: string;

/** A refusal's message stays short whatever was sent (the gRPC message, in UTF-8 bytes). */
const SHORT_MESSAGE_BYTES = 600;

test.before(async () => {
  d = await startDaemon();
  const t = await newTenant(d, 'bounded');
  kernel = t.client;
  apiKey = t.apiKey;
  jobs = jobClient(d, apiKey);
  session = (await call<{ session_handle: string }>(kernel, 'OpenSession', {})).session_handle;
});

test.after(async () => {
  kernel?.close();
  jobs?.close();
  if (d) {
    await d.stop();
    removeStateDir(d.stateDir);
  }
});

function short(err: grpc.ServiceError): void {
  assert.ok(
    Buffer.byteLength(err.details, 'utf8') <= SHORT_MESSAGE_BYTES,
    `message of ${Buffer.byteLength(err.details, 'utf8')} bytes`,
  );
}

/** The channel still serves: an ordinary call on the same client succeeds. */
async function stillServes(client: AnyClient): Promise<void> {
  const u = await call<{ usage: { qubits_live: number } }>(client, 'GetUsage', {});
  assert.type(u.usage.qubits_live, 'number');
}

test('1,000,000 empty gates (2 MB) are refused by gates_per_call_max before decoding; the channel serves on', async () => {
  // Field 1 (gates), length 0: one empty Gate, a million times over.
  const body = Buffer.alloc(2_000_000);
  for (let i = 0; i < body.length; i += 2) body[i] = 0x0a;
  const raw = new grpc.Client(d.address, grpc.credentials.createInsecure(), {
    channelOverride: kernel.getChannel(),
  });
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${apiKey}`);
  const err = await new Promise<grpc.ServiceError>((resolve, reject) =>
    raw.makeUnaryRequest(
      '/qmk.v1.KernelService/ApplyGates',
      (b: Buffer) => b,
      (b: Buffer) => b,
      body,
      metadata,
      (e) => (e ? resolve(e) : reject(new Error('ApplyGates of a million gates succeeded'))),
    ),
  );
  assert.is(err.code, grpc.status.RESOURCE_EXHAUSTED);
  assert.is(err.metadata.get('qmk-error-code')[0], 'QUOTA_EXCEEDED');
  assert.match(err.details, /^gates: more than \d+ gates > gates_per_call_max \d+$/);
  short(err);
  await stillServes(kernel);
});

test('a 3.5 MB profile is refused as over its field limit, not echoed; the channel serves on', async () => {
  const err = await callError(kernel, 'AllocateQubits', {
    session_handle: session,
    count: 1,
    profile: 'x'.repeat(3_500_000),
  });
  assert.is(err.code, grpc.status.RESOURCE_EXHAUSTED);
  assert.is(err.metadata.get('qmk-error-code')[0], 'LIMIT_EXCEEDED');
  assert.match(err.details, /^profile: more than 4096 bytes$/);
  short(err);
  await stillServes(kernel);
});

test('a profile within the field limit but invalid is quoted cut, not whole', async () => {
  const profile = `logical:${'y'.repeat(4000)}`;
  const err = await callError(kernel, 'AllocateQubits', {
    session_handle: session,
    count: 1,
    profile,
  });
  assert.is(err.code, grpc.status.INVALID_ARGUMENT);
  assert.ok(err.details.startsWith('profile: '), err.details);
  assert.ok(err.details.includes(`"logical:${'y'.repeat(ECHO_CHARS_MAX - 8)}…"`), err.details);
  assert.ok(!err.details.includes('y'.repeat(ECHO_CHARS_MAX + 1)), 'the value is cut');
  short(err);
  await stillServes(kernel);
});

/** An OpenQASM program of exactly `bytes` bytes: a Bell pair padded with a comment. */
function qasmOfSize(bytes: number): string {
  const body =
    'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\nmeasure q -> c;\n';
  const pad = bytes - Buffer.byteLength(body) - 3; // "//" and "\n"
  return `${body}//${'p'.repeat(pad)}\n`;
}

test('a program just over the source limit is refused by its limit; one just under is accepted', async () => {
  const over = qasmOfSize(PROGRAM_SOURCE_BYTES_MAX + 1);
  assert.is(Buffer.byteLength(over), PROGRAM_SOURCE_BYTES_MAX + 1);
  const err = await callError(jobs, 'ValidateProgram', {
    program: { format: 'PROGRAM_FORMAT_OPENQASM2', source: over },
    shots: 10,
  });
  assert.is(err.code, grpc.status.RESOURCE_EXHAUSTED);
  assert.is(err.metadata.get('qmk-error-code')[0], 'LIMIT_EXCEEDED');
  assert.match(err.details, /^program\.source: more than 1048576 bytes$/);
  short(err);

  const under = qasmOfSize(PROGRAM_SOURCE_BYTES_MAX);
  const ok = await call<{ valid: boolean }>(jobs, 'ValidateProgram', {
    program: { format: 'PROGRAM_FORMAT_OPENQASM2', source: under },
    shots: 10,
  });
  assert.is(ok.valid, true);
  await stillServes(kernel);
});

test('a program just under the source limit (checked off the main thread, run from its source) runs to DONE with true statistics', async () => {
  const under = qasmOfSize(PROGRAM_SOURCE_BYTES_MAX);
  const { job, result } = await runJob(jobs, {
    program: { format: 'PROGRAM_FORMAT_OPENQASM2', source: under },
    shots: 2000,
    seed: '7',
  });
  assert.is(job.state, 'JOB_STATE_DONE', job.reason);
  assert.is(job.estimate.sampling, 'sampled');
  const counts = result!.counts as Record<string, number>;
  assert.equal(Object.keys(counts).sort(), ['00', '11']);
  assert.is(counts['00']! + counts['11']!, 2000);
  // A fair coin: 2,000 shots land within 5 standard deviations (±112) of 1,000.
  assert.ok(Math.abs(counts['00']! - 1000) < 112, JSON.stringify(counts));
  await stillServes(kernel);
});

test('ReleaseQubits handles are bounded by their per-call limit before decoding', async () => {
  const handles = Array.from({ length: 5000 }, () => 'h');
  const err = await callError(kernel, 'ReleaseQubits', { qubit_handles: handles });
  assert.is(err.metadata.get('qmk-error-code')[0], 'LIMIT_EXCEEDED');
  assert.match(err.details, /^qubit_handles: more than 1024 handles$/);
  short(err);
});

test.run();
