/**
 * The negative authorization matrix, generated from the loaded proto package: every method of
 * every qmk service, against the real daemon. For each method every attack that applies gets the
 * exact expected status and kernel code, and no data:
 *   no credentials, garbage credentials, a revoked key, a suspended tenant (every tenant method);
 *   a key whose role lacks the permission (methods closed to some role);
 *   another tenant's object id or handle, a tampered handle, an expired handle, a handle used
 *   beyond its rights (methods that take one);
 *   a tenant key on the tenant port for an operator method (UNIMPLEMENTED: the operator API is
 *   only on the admin socket).
 * The test fails when a method has no authorization-table entry or no row here, so a new RPC
 * cannot skip it.
 */
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AUTHZ_TABLE } from '../../src/api/authz.js';
import { loadPackageDefinition } from '../../src/api/proto.js';
import type { Role } from '../../src/kernel/model.js';
import {
  type AnyClient,
  type Daemon,
  type Wire,
  adminClient,
  call,
  newTenant,
  removeStateDir,
  runJob,
  serviceClient,
  sleep,
  startDaemon,
} from '../support/daemon.js';
import { qvm } from '../support/programs.js';

/** The objects a request names. */
interface Objs {
  session: string;
  qubit: string;
  jobId: string;
  channelId: string;
}

type HandleUse = 'session' | 'qubit' | 'none';

interface Row {
  build: (o: Objs) => object;
  /** Which object the request names: another tenant's is NOT_FOUND. */
  names: 'session' | 'qubit' | 'job' | 'channel' | 'none';
  /** Which handle it carries (tampered / expired / weak attacks). */
  handle: HandleUse;
  /** A handle of the caller's lacking the right this method needs. */
  weak?: keyof Weak;
}

interface Weak {
  sessionAllocOnly: string;
  sessionCloseOnly: string;
  qubitMeasureOnly: string;
  qubitComputeOnly: string;
}

/** A small job each tenant runs, to have a job id. */
const SMALL = qvm(['a'], [{ op: 'MEASURE_Z', vqs: ['a'], produces: ['m'] }], ['m']);
const bindJob = (o: Objs, shots = 1) => ({
  program: { format: 'PROGRAM_FORMAT_QVM_JSON', source: JSON.stringify(boundProgram()) },
  shots,
  bindings: [{ name: 'a', qubit_handle: o.qubit }],
});
function boundProgram() {
  return {
    version: '0.1',
    program: { nodes: [{ id: 'h', op: 'APPLY_H', vqs: ['a'] }] },
    resources: { vqs: ['a'], events: [] },
  };
}

const ROWS: Record<string, Row> = {
  '/qmk.v1.KernelService/OpenSession': { build: () => ({}), names: 'none', handle: 'none' },
  '/qmk.v1.KernelService/CloseSession': {
    build: (o) => ({ session_handle: o.session }),
    names: 'session',
    handle: 'session',
    weak: 'sessionAllocOnly',
  },
  '/qmk.v1.KernelService/AllocateQubits': {
    build: (o) => ({ session_handle: o.session, count: 1 }),
    names: 'session',
    handle: 'session',
    weak: 'sessionCloseOnly',
  },
  '/qmk.v1.KernelService/ReleaseQubits': {
    build: (o) => ({ qubit_handles: [o.qubit] }),
    names: 'qubit',
    handle: 'qubit',
    weak: 'qubitMeasureOnly',
  },
  '/qmk.v1.KernelService/ApplyGates': {
    build: (o) => ({ gates: [{ kind: 'GATE_KIND_H', qubits: [o.qubit] }] }),
    names: 'qubit',
    handle: 'qubit',
    weak: 'qubitMeasureOnly',
  },
  '/qmk.v1.KernelService/MeasureQubits': {
    build: (o) => ({ measurements: [{ qubit: o.qubit, basis: 'BASIS_Z' }] }),
    names: 'qubit',
    handle: 'qubit',
    weak: 'qubitComputeOnly',
  },
  '/qmk.v1.KernelService/AttenuateHandle': {
    // Asking for a right the handle lacks is the "beyond its rights" case (RIGHTS_WIDEN).
    build: (o) => ({ handle: o.qubit, rights: ['RIGHT_COMPUTE'] }),
    names: 'qubit',
    handle: 'qubit',
    weak: 'qubitMeasureOnly',
  },
  '/qmk.v1.KernelService/GetUsage': { build: () => ({}), names: 'none', handle: 'none' },
  '/qmk.v1.JobService/SubmitJob': {
    build: (o) => bindJob(o),
    names: 'qubit',
    handle: 'qubit',
    weak: 'qubitMeasureOnly',
  },
  '/qmk.v1.JobService/ValidateProgram': {
    build: (o) => bindJob(o),
    names: 'qubit',
    handle: 'qubit',
    weak: 'qubitMeasureOnly',
  },
  '/qmk.v1.JobService/GetJob': {
    build: (o) => ({ job_id: o.jobId }),
    names: 'job',
    handle: 'none',
  },
  '/qmk.v1.JobService/WatchJob': {
    build: (o) => ({ job_id: o.jobId }),
    names: 'job',
    handle: 'none',
  },
  '/qmk.v1.JobService/CancelJob': {
    build: (o) => ({ job_id: o.jobId }),
    names: 'job',
    handle: 'none',
  },
  '/qmk.v1.JobService/ListJobs': { build: () => ({}), names: 'none', handle: 'none' },
  '/qmk.v1.JobService/GetJobResult': {
    build: (o) => ({ job_id: o.jobId }),
    names: 'job',
    handle: 'none',
  },
  '/qmk.v1.ChannelService/RequestChannel': {
    build: () => ({
      peer_tenant: 'mx-carol',
      max_entanglements: 1,
      expires_at_unix_ms: Date.now() + 3_600_000,
    }),
    names: 'none',
    handle: 'none',
  },
  '/qmk.v1.ChannelService/ListChannelRequests': {
    build: () => ({}),
    names: 'none',
    handle: 'none',
  },
  '/qmk.v1.ChannelService/RespondChannelRequest': {
    build: (o) => ({ channel_id: o.channelId, approve: true }),
    names: 'channel',
    handle: 'none',
  },
  '/qmk.v1.ChannelService/GetChannel': {
    build: (o) => ({ channel_id: o.channelId }),
    names: 'channel',
    handle: 'none',
  },
  '/qmk.v1.ChannelService/ListChannels': { build: () => ({}), names: 'none', handle: 'none' },
  '/qmk.v1.ChannelService/RevokeChannel': {
    build: (o) => ({ channel_id: o.channelId }),
    names: 'channel',
    handle: 'none',
  },
  '/qmk.v1.ChannelService/ShareQubit': {
    build: (o) => ({ channel_id: o.channelId, qubit_handle: o.qubit }),
    names: 'channel',
    handle: 'qubit',
    weak: 'qubitComputeOnly',
  },
  '/qmk.v1.ChannelService/GetSigningKeys': { build: () => ({}), names: 'none', handle: 'none' },
};

interface Method {
  path: string;
  service: string;
  name: string;
  stream: boolean;
}

function methods(): Method[] {
  const out: Method[] = [];
  for (const [service, def] of Object.entries(loadPackageDefinition())) {
    if (!service.startsWith('qmk.') || !service.endsWith('Service')) continue;
    for (const [name, m] of Object.entries(
      def as Record<string, { path: string; responseStream: boolean }>,
    )) {
      out.push({
        path: m.path,
        service: service.slice('qmk.v1.'.length),
        name,
        stream: m.responseStream,
      });
    }
  }
  return out;
}

/** Calls a method; resolves with its error and whether any data came back. */
function attempt(
  client: AnyClient,
  m: Method,
  req: object,
): Promise<{ err: grpc.ServiceError | null; data: boolean }> {
  return new Promise((resolve) => {
    if (m.stream) {
      let data = false;
      const s = client[m.name](req) as grpc.ClientReadableStream<unknown>;
      s.on('data', () => {
        data = true;
      });
      s.on('error', (err: grpc.ServiceError) => resolve({ err, data }));
      s.on('end', () => resolve({ err: null, data }));
      return;
    }
    client[m.name](req, (err: grpc.ServiceError | null, res: unknown) =>
      resolve({ err, data: err === null && res !== undefined }),
    );
  });
}

let d: Daemon;
const keys: Record<string, string> = {};
let own: Objs;
let foreign: Objs;
let weak: Weak;
let tampered: Objs;
let expired: Objs;
/** Another tenant's genuine handles that are expired, or lack the right the method needs. */
let foreignExpired: Objs;
let foreignWeak: Objs;

function tamper(handle: string): string {
  const b = Buffer.from(handle, 'base64url');
  b.writeUInt8(b.readUInt8(b.length - 1) ^ 0x01, b.length - 1); // the signature's last byte
  return b.toString('base64url');
}

async function objectsOf(key: string, peer: string): Promise<Objs> {
  const k = serviceClient(d, 'KernelService', key);
  const j = serviceClient(d, 'JobService', key);
  const c = serviceClient(d, 'ChannelService', key);
  const session = (await call<{ session_handle: string }>(k, 'OpenSession', {})).session_handle;
  const qubit = (
    await call<{ qubits: { handle: string }[] }>(k, 'AllocateQubits', {
      session_handle: session,
      count: 1,
    })
  ).qubits[0]!.handle;
  const { job } = await runJob(j, {
    program: { format: 'PROGRAM_FORMAT_QVM_JSON', source: SMALL },
    shots: 5,
  });
  const ch = await call<{ channel: Wire }>(c, 'RequestChannel', {
    peer_tenant: peer,
    max_entanglements: 1,
    expires_at_unix_ms: Date.now() + 3_600_000,
  });
  for (const x of [k, j, c]) x.close();
  return { session, qubit, jobId: job.job_id, channelId: ch.channel.channel_id };
}

async function attenuate(
  key: string,
  handle: string,
  rights: string[],
  expiresAtMs = 0,
): Promise<string> {
  const k = serviceClient(d, 'KernelService', key);
  const r = await call<{ handle: string }>(k, 'AttenuateHandle', {
    handle,
    rights,
    expires_at_unix_ms: expiresAtMs,
  });
  k.close();
  return r.handle;
}

test.before(async () => {
  d = await startDaemon();
  const admin = adminClient(d);
  const alice = await newTenant(d, 'mx-alice');
  const bob = await newTenant(d, 'mx-bob');
  const carol = await newTenant(d, 'mx-carol');
  const sus = await newTenant(d, 'mx-suspended');
  for (const t of [alice, bob, carol, sus]) t.client.close();
  keys.alice = alice.apiKey;
  keys.suspended = sus.apiKey;
  const newKey = async (roles: string[]) =>
    await call<{ api_key: string; key: { key_id: string } }>(admin, 'CreateApiKey', {
      tenant: 'mx-alice',
      roles,
    });
  keys.researcher = (await newKey(['ROLE_RESEARCHER'])).api_key;
  keys.domain_scientist = (await newKey(['ROLE_DOMAIN_SCIENTIST'])).api_key;
  const revoked = await newKey(['ROLE_TENANT_ADMIN']);
  await call(admin, 'RevokeApiKey', { key_id: revoked.key.key_id });
  keys.revoked = revoked.api_key;
  await call(admin, 'SuspendTenant', { tenant: 'mx-suspended', reason: 'matrix' });
  admin.close();
  own = await objectsOf(alice.apiKey, 'mx-carol');
  foreign = await objectsOf(bob.apiKey, 'mx-carol');
  weak = {
    sessionAllocOnly: await attenuate(alice.apiKey, own.session, ['RIGHT_ALLOC']),
    sessionCloseOnly: await attenuate(alice.apiKey, own.session, ['RIGHT_CLOSE']),
    qubitMeasureOnly: await attenuate(alice.apiKey, own.qubit, ['RIGHT_MEASURE']),
    qubitComputeOnly: await attenuate(alice.apiKey, own.qubit, ['RIGHT_COMPUTE']),
  };
  tampered = { ...own, session: tamper(own.session), qubit: tamper(own.qubit) };
  const soon = Date.now() + 1000;
  expired = {
    ...own,
    session: await attenuate(alice.apiKey, own.session, ['RIGHT_ALLOC', 'RIGHT_CLOSE'], soon),
    qubit: await attenuate(
      alice.apiKey,
      own.qubit,
      ['RIGHT_COMPUTE', 'RIGHT_MEASURE', 'RIGHT_RELEASE', 'RIGHT_LINK'],
      soon,
    ),
  };
  foreignExpired = {
    ...foreign,
    session: await attenuate(bob.apiKey, foreign.session, ['RIGHT_ALLOC', 'RIGHT_CLOSE'], soon),
    qubit: await attenuate(
      bob.apiKey,
      foreign.qubit,
      ['RIGHT_COMPUTE', 'RIGHT_MEASURE', 'RIGHT_RELEASE', 'RIGHT_LINK'],
      soon,
    ),
  };
  // Rights no method needs alone, so the handle is short of the right wherever it is used.
  foreignWeak = {
    ...foreign,
    session: await attenuate(bob.apiKey, foreign.session, ['RIGHT_CLOSE']),
    qubit: await attenuate(bob.apiKey, foreign.qubit, ['RIGHT_LINK']),
  };
  await sleep(Math.max(0, soon - Date.now()) + 50);
});

test.after(async () => {
  await d.stop();
  removeStateDir(d.stateDir);
});

interface Case {
  attack: string;
  key: string | undefined;
  objs: Objs;
  code: grpc.status;
  kernelCode: string;
}

function casesFor(m: Method, row: Row): Case[] {
  const entry = AUTHZ_TABLE[m.path]!;
  if (entry.principal === 'operator') {
    // The operator API is not served on TCP at all: it exists only on the 0600 admin socket.
    return [
      {
        attack: 'tenant key on the tenant port',
        key: keys.alice,
        objs: own,
        code: grpc.status.UNIMPLEMENTED,
        kernelCode: '-',
      },
    ];
  }
  const out: Case[] = [
    {
      attack: 'no credentials',
      key: undefined,
      objs: own,
      code: grpc.status.UNAUTHENTICATED,
      kernelCode: 'CREDENTIAL_MISSING',
    },
    {
      attack: 'garbage credentials',
      key: 'qmk_garbage',
      objs: own,
      code: grpc.status.UNAUTHENTICATED,
      kernelCode: 'CREDENTIAL_INVALID',
    },
    {
      attack: 'revoked key',
      key: keys.revoked,
      objs: own,
      code: grpc.status.UNAUTHENTICATED,
      kernelCode: 'CREDENTIAL_REVOKED',
    },
    {
      attack: 'suspended tenant',
      key: keys.suspended,
      objs: own,
      code: grpc.status.PERMISSION_DENIED,
      kernelCode: 'TENANT_SUSPENDED',
    },
  ];
  if (entry.principal === 'tenant') {
    for (const role of ['researcher', 'domain_scientist'] as Role[]) {
      if (!entry.roles.includes(role)) {
        out.push({
          attack: `role ${role}`,
          key: keys[role],
          objs: own,
          code: grpc.status.PERMISSION_DENIED,
          kernelCode: 'ROLE_FORBIDDEN',
        });
      }
    }
  }
  if (row.names !== 'none') {
    const objs: Objs = { ...own };
    if (row.names === 'session') objs.session = foreign.session;
    if (row.names === 'qubit') objs.qubit = foreign.qubit;
    if (row.names === 'job') objs.jobId = foreign.jobId;
    if (row.names === 'channel') objs.channelId = foreign.channelId;
    out.push({
      attack: 'another tenant’s object',
      key: keys.alice,
      objs,
      code: grpc.status.NOT_FOUND,
      kernelCode: 'NOT_FOUND',
    });
  }
  if (row.handle !== 'none') {
    // Whatever else is wrong with another tenant's genuine handle, it names nothing the caller
    // can see: the same NOT_FOUND as for a missing resource (uniform denial).
    for (const [attack, objs] of [
      ['another tenant’s expired handle', foreignExpired],
      ['another tenant’s handle short of the right', foreignWeak],
    ] as const) {
      out.push({
        attack,
        key: keys.alice,
        objs: { ...own, [row.handle]: objs[row.handle] },
        code: grpc.status.NOT_FOUND,
        kernelCode: 'NOT_FOUND',
      });
    }
    out.push({
      attack: 'tampered handle',
      key: keys.alice,
      objs: tampered,
      code: grpc.status.UNAUTHENTICATED,
      kernelCode: 'HANDLE_INVALID',
    });
    out.push({
      attack: 'expired handle',
      key: keys.alice,
      objs: expired,
      code: grpc.status.UNAUTHENTICATED,
      kernelCode: 'HANDLE_EXPIRED',
    });
  }
  if (row.weak) {
    const objs: Objs = { ...own, [row.handle]: weak[row.weak] };
    const kernelCode = m.name === 'AttenuateHandle' ? 'RIGHTS_WIDEN' : 'RIGHTS_INSUFFICIENT';
    out.push({
      attack: `handle beyond its rights (${row.weak})`,
      key: keys.alice,
      objs,
      code: grpc.status.PERMISSION_DENIED,
      kernelCode,
    });
  }
  return out;
}

test('matrix: every method of every service has an authorization entry and a matrix row', () => {
  const all = methods();
  assert.ok(all.length >= 35, `${all.length} methods`);
  for (const m of all) {
    assert.ok(AUTHZ_TABLE[m.path], `${m.path} has no authorization-table entry`);
    if (AUTHZ_TABLE[m.path]!.principal === 'tenant')
      assert.ok(ROWS[m.path], `${m.path} has no matrix row`);
  }
  for (const path of Object.keys(ROWS))
    assert.ok(
      all.some((m) => m.path === path),
      `row ${path} names no method`,
    );
});

test('matrix: every attack on every method gets its exact code and no data', async () => {
  const failures: string[] = [];
  let cases = 0;
  for (const m of methods()) {
    const row = ROWS[m.path] ?? { build: () => ({}), names: 'none', handle: 'none' };
    for (const c of casesFor(m, row)) {
      const client = serviceClient(d, m.service as 'KernelService', c.key);
      const { err, data } = await attempt(client, m, row.build(c.objs));
      client.close();
      cases++;
      const got = err
        ? `${grpc.status[err.code]} ${err.metadata?.get('qmk-error-code')[0] ?? '-'}`
        : 'OK';
      const want = `${grpc.status[c.code]} ${c.kernelCode}`;
      if (got !== want || data)
        failures.push(
          `${m.path} [${c.attack}]: got ${got}${data ? ' with data' : ''}, want ${want}${err ? ` (${err.details})` : ''}`,
        );
    }
  }
  console.log(`  authz matrix: ${cases} cases over ${methods().length} methods`);
  assert.equal(failures, []);
});

test('role constraint: a domain scientist’s programs hold at most 20 qubits; a researcher’s are not so limited', async () => {
  const ghz = (n: number) => {
    const qs = Array.from({ length: n }, (_, i) => `q${i}`);
    const body = [
      { op: 'APPLY_H', vqs: ['q0'] },
      ...qs.slice(1).map((q, i) => ({ op: 'APPLY_CNOT', vqs: [qs[i]!, q] })),
    ];
    return { program: { format: 'PROGRAM_FORMAT_QVM_JSON', source: qvm(qs, body, []) }, shots: 1 };
  };
  const ds = serviceClient(d, 'JobService', keys.domain_scientist);
  const ok = await call<{ valid: boolean }>(ds, 'ValidateProgram', ghz(20));
  assert.is(ok.valid, true);
  const over = await call<{ valid: boolean; violations: Wire[] }>(ds, 'ValidateProgram', ghz(21));
  assert.is(over.valid, false);
  assert.ok(
    over.violations.some(
      (v) => v.field === 'limits.qubitsLiveMax' && /the limit is 20/.test(v.message),
    ),
    JSON.stringify(over.violations),
  );
  ds.close();
  const researcher = serviceClient(d, 'JobService', keys.researcher);
  assert.is((await call<{ valid: boolean }>(researcher, 'ValidateProgram', ghz(21))).valid, true);
  researcher.close();
});

test.run();
