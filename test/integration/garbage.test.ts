/**
 * Bad input through the real daemon: malformed protobuf, a 5 MiB message, unknown gates, NaN
 * angles, missing fields, wrong arity. Each gets INVALID_ARGUMENT or RESOURCE_EXHAUSTED with a
 * message naming the field, and the daemon keeps serving another tenant meanwhile.
 */
import * as grpc from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type AnyClient,
  type Daemon,
  call,
  callError,
  newTenant,
  removeStateDir,
  startDaemon,
} from '../support/daemon.js';

let d: Daemon;
let a: AnyClient;
let apiKey: string;
let other: AnyClient;
let session: string;
let qubit: string;

test.before(async () => {
  d = await startDaemon();
  const t = await newTenant(d, 'garbage');
  a = t.client;
  apiKey = t.apiKey;
  other = (await newTenant(d, 'bystander')).client;
  session = (await call<{ session_handle: string }>(a, 'OpenSession', {})).session_handle;
  const r = await call<{ qubits: { handle: string }[] }>(a, 'AllocateQubits', {
    session_handle: session,
    count: 2,
  });
  qubit = r.qubits[0]!.handle;
});

test.after(async () => {
  a?.close();
  other?.close();
  if (d) {
    await d.stop();
    removeStateDir(d.stateDir);
  }
});

/** A raw client that sends bytes as they are (wrong wire types, truncated messages). */
function rawCall(path: string, payload: Buffer): Promise<grpc.ServiceError | null> {
  const client = new grpc.Client(d.address, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': 16 * 1024 * 1024,
  });
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${apiKey}`);
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      payload,
      md,
      (err) => {
        client.close();
        resolve(err);
      },
    );
  });
}

test('garbage: malformed protobuf bytes → INVALID_ARGUMENT naming the request', async () => {
  const err = await rawCall(
    '/qmk.v1.KernelService/ApplyGates',
    Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]),
  );
  assert.ok(err);
  assert.is(err!.code, status.INVALID_ARGUMENT, err!.details);
  assert.match(err!.details, /^request:/);
});

test('garbage: wrong wire type for a field → INVALID_ARGUMENT', async () => {
  // field 1 (gates, a message) sent as a fixed64 — wire type 1.
  const err = await rawCall(
    '/qmk.v1.KernelService/ApplyGates',
    Buffer.from([0x09, 1, 2, 3, 4, 5, 6, 7, 8]),
  );
  assert.ok(err);
  assert.ok(err!.code === status.INVALID_ARGUMENT, `${err!.code} ${err!.details}`);
});

test('garbage: a 5 MiB message → RESOURCE_EXHAUSTED', async () => {
  const big = Buffer.alloc(5 * 1024 * 1024, 0x41);
  // field 1 of OpenSessionRequest is repeated enum; length-delimited garbage of 5 MiB.
  const err = await rawCall('/qmk.v1.KernelService/GetUsage', big);
  assert.ok(err);
  assert.is(err!.code, status.RESOURCE_EXHAUSTED, err!.details);
});

test('garbage: unknown gate kind → INVALID_ARGUMENT naming gates[0].kind', async () => {
  const err = await callError(a, 'ApplyGates', { gates: [{ kind: 99, qubits: [qubit] }] });
  assert.is(err.code, status.INVALID_ARGUMENT);
  assert.match(err.details, /^gates\[0\]\.kind:/);
  const unspecified = await callError(a, 'ApplyGates', { gates: [{ qubits: [qubit] }] });
  assert.is(unspecified.code, status.INVALID_ARGUMENT);
  assert.match(unspecified.details, /^gates\[0\]\.kind:/);
});

test('garbage: NaN and infinite angles → INVALID_ARGUMENT naming the field', async () => {
  for (const theta of [Number.NaN, Number.POSITIVE_INFINITY]) {
    const err = await callError(a, 'ApplyGates', {
      gates: [
        { kind: 'GATE_KIND_H', qubits: [qubit] },
        { kind: 'GATE_KIND_RX', qubits: [qubit], theta },
      ],
    });
    assert.is(err.code, status.INVALID_ARGUMENT);
    assert.match(err.details, /^gates\[1\]\.theta:/);
  }
  const m = await callError(a, 'MeasureQubits', {
    measurements: [{ qubit, basis: 'BASIS_ANGLE', angle: Number.NaN }],
  });
  assert.is(m.code, status.INVALID_ARGUMENT);
  assert.match(m.details, /^measurements\[0\]\.angle:/);
  // Nothing was applied: the batch was refused before the H.
  const out = await call<{ outcomes: number[] }>(a, 'MeasureQubits', {
    measurements: [{ qubit, basis: 'BASIS_Z' }],
  });
  assert.equal(out.outcomes, [0]);
});

test('garbage: missing fields → INVALID_ARGUMENT naming each', async () => {
  const cases: [string, object, RegExp][] = [
    ['AllocateQubits', {}, /^session_handle:/],
    ['AllocateQubits', { session_handle: session }, /^count:/],
    ['ApplyGates', {}, /^gates:/],
    [
      'ApplyGates',
      { gates: [{ kind: 'GATE_KIND_CNOT', qubits: [qubit] }] },
      /^gates\[0\]\.qubits:/,
    ],
    [
      'ApplyGates',
      { gates: [{ kind: 'GATE_KIND_CNOT', qubits: [qubit, qubit] }] },
      /^gates\[0\]\.qubits:/,
    ],
    ['MeasureQubits', {}, /^measurements:/],
    ['MeasureQubits', { measurements: [{ qubit }] }, /^measurements\[0\]\.basis:/],
    ['ReleaseQubits', {}, /^qubit_handles:/],
    ['CloseSession', {}, /^session_handle:/],
    ['AttenuateHandle', {}, /^handle:/],
    ['AllocateQubits', { session_handle: session, count: 1, profile: 'bogus' }, /^profile:/],
  ];
  for (const [method, req, re] of cases) {
    const err = await callError(a, method, req);
    assert.is(
      err.code,
      status.INVALID_ARGUMENT,
      `${method} ${JSON.stringify(req)}: ${err.details}`,
    );
    assert.match(err.details, re);
  }
});

test('garbage: a handle that is not base64url → UNAUTHENTICATED naming the field', async () => {
  const err = await callError(a, 'ApplyGates', {
    gates: [{ kind: 'GATE_KIND_X', qubits: ['%%%'] }],
  });
  assert.is(err.code, status.UNAUTHENTICATED);
  assert.match(err.details, /^gates\[0\]\.qubits\[0\]:/);
});

test('garbage: after all of the above, another tenant is served normally', async () => {
  const s = await call<{ session_handle: string }>(other, 'OpenSession', {});
  const r = await call<{ qubits: { handle: string }[] }>(other, 'AllocateQubits', {
    session_handle: s.session_handle,
    count: 1,
  });
  await call(other, 'ApplyGates', {
    gates: [{ kind: 'GATE_KIND_X', qubits: [r.qubits[0]!.handle] }],
  });
  const out = await call<{ outcomes: number[] }>(other, 'MeasureQubits', {
    measurements: [{ qubit: r.qubits[0]!.handle, basis: 'BASIS_Z' }],
  });
  assert.equal(out.outcomes, [1]);
});

test.run();
