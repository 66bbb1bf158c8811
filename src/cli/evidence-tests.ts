/**
 * The self-tests of `qmkctl evidence`, run against the live daemon as two temporary tenants
 * would see it: cross-tenant access to every kind of resource, entanglement without a channel, a
 * channel's use limit, released state zeroed before reuse, and a deleted tenant's data key.
 * Layer: cli. Each test returns what it saw, never throws for a refusal it expected; a test
 * that could not be carried out fails with the reason.
 */
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { loadGrpcObject } from '../api/proto.js';

/** One self-test's outcome: the claim, whether it held, and what was seen. */
export interface SelfTest {
  id: string;
  claim: string;
  passed: boolean;
  /** What was tried and answered, one line per probe. */
  observations: string[];
}

type Wire = Record<string, unknown>;
type Call = (service: Service, method: string, request: Wire) => Promise<Wire>;
type Service = 'KernelService' | 'JobService' | 'ChannelService' | 'AuditService';

/** An answer: 'OK', or the gRPC status name and the kernel code (`NOT_FOUND/NOT_FOUND`). */
type Outcome = string;

/** A tenant's clients on the tenant API (one channel), calls with a deadline. */
export class TenantApi {
  private readonly clients = new Map<Service, grpc.Client>();

  constructor(
    address: string,
    credentials: grpc.ChannelCredentials,
    private readonly apiKey: string,
  ) {
    const g = loadGrpcObject();
    let first: grpc.Client | undefined;
    for (const s of ['KernelService', 'JobService', 'ChannelService', 'AuditService'] as const) {
      // One connection: the first client's channel carries the others.
      const c: grpc.Client = new g[s](
        address,
        credentials,
        first ? { channelOverride: first.getChannel() } : {},
      );
      first ??= c;
      this.clients.set(s, c);
    }
  }

  call: Call = (service, method, request) => {
    const client = this.clients.get(service) as unknown as Record<
      string,
      grpc.requestCallback<Wire>
    >;
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${this.apiKey}`);
    return new Promise((resolve, reject) => {
      (client[method] as unknown as (...a: unknown[]) => void).call(
        client,
        request,
        md,
        { deadline: Date.now() + 30_000 },
        (err: grpc.ServiceError | null, res: Wire) => (err ? reject(err) : resolve(res)),
      );
    });
  };

  /** The call's outcome as a string, refusals included (never rejects for a gRPC error). */
  async outcome(service: Service, method: string, request: Wire): Promise<Outcome> {
    try {
      await this.call(service, method, request);
      return 'OK';
    } catch (e) {
      return describe(e);
    }
  }

  /** The updates of a job's watch stream until it ends (or its refusal). */
  watch(jobId: string): Promise<{ updates: Wire[]; outcome: Outcome }> {
    const client = this.clients.get('JobService') as unknown as Record<
      string,
      (...a: unknown[]) => grpc.ClientReadableStream<Wire>
    >;
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${this.apiKey}`);
    const stream = client.WatchJob!.call(client, { job_id: jobId }, md, {
      deadline: Date.now() + 60_000,
    });
    const updates: Wire[] = [];
    return new Promise((resolve) => {
      stream.on('data', (m: Wire) => updates.push(m));
      stream.on('error', (e) => resolve({ updates, outcome: describe(e) }));
      stream.on('end', () => resolve({ updates, outcome: 'OK' }));
    });
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
  }
}

function describe(e: unknown): Outcome {
  const err = e as grpc.ServiceError;
  if (typeof err.code !== 'number') throw e;
  const kernel = err.metadata?.get('qmk-error-code')[0];
  return `${grpc.status[err.code]}/${typeof kernel === 'string' ? kernel : '-'}`;
}

const BELL = `OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0],q[1];
measure q -> c;
`;

/** Two tenants' clients and what the first one made for the second to probe. */
export interface Pair {
  a: TenantApi;
  b: TenantApi;
  aId: string;
  bId: string;
  bName: string;
}

/** Allocates `n` qubits in `sessionHandle` (a session of `t`'s). */
async function allocate(t: TenantApi, sessionHandle: unknown, n: number): Promise<Wire[]> {
  const r = await t.call('KernelService', 'AllocateQubits', {
    session_handle: sessionHandle,
    count: n,
  });
  return r.qubits as Wire[];
}

/** A new session of `t` with `n` fresh qubits. */
async function sessionWith(t: TenantApi, n: number): Promise<{ handle: string; qubits: Wire[] }> {
  const session = await t.call('KernelService', 'OpenSession', {});
  return {
    handle: String(session.session_handle),
    qubits: await allocate(t, session.session_handle, n),
  };
}

/** What tenant A holds: a session, a qubit, a finished job, a channel to B, an audit record. */
async function holdings(a: TenantApi, aId: string) {
  const session = await sessionWith(a, 1);
  const qubit = session.qubits[0]!;
  const submitted = await a.call('JobService', 'SubmitJob', {
    program: { format: 'PROGRAM_FORMAT_OPENQASM2', source: BELL },
    shots: 100,
  });
  const jobId = String((submitted.job as Wire).job_id);
  const watched = await a.watch(jobId);
  const own = await a.call('AuditService', 'ListAuditRecords', {
    tenant_id: '',
    newest_first: true,
    page_size: 1,
  });
  const record = (own.records as Wire[])[0];
  return {
    sessionHandle: session.handle,
    qubitHandle: String(qubit.handle),
    jobId,
    jobDone: watched.updates.some((u) => (u.job as Wire).state === 'JOB_STATE_DONE'),
    leafIndex: record === undefined ? null : Number(record.leaf_index),
    tenant: aId,
  };
}

const isNotFound = (o: Outcome) => o === 'NOT_FOUND/NOT_FOUND';

/** Every kind of A's resources probed by B: each must answer NOT_FOUND. */
export async function crossTenantAccess(p: Pair): Promise<SelfTest> {
  const held = await holdings(p.a, p.aId);
  const probes: [string, Promise<Outcome>][] = [
    [
      'AllocateQubits on A’s session',
      p.b.outcome('KernelService', 'AllocateQubits', {
        session_handle: held.sessionHandle,
        count: 1,
      }),
    ],
    [
      'CloseSession of A’s session',
      p.b.outcome('KernelService', 'CloseSession', { session_handle: held.sessionHandle }),
    ],
    [
      'ApplyGates on A’s qubit',
      p.b.outcome('KernelService', 'ApplyGates', {
        gates: [{ kind: 'GATE_KIND_X', qubits: [held.qubitHandle] }],
      }),
    ],
    [
      'MeasureQubits of A’s qubit',
      p.b.outcome('KernelService', 'MeasureQubits', {
        measurements: [{ qubit: held.qubitHandle, basis: 'BASIS_Z' }],
      }),
    ],
    [
      'ReleaseQubits of A’s qubit',
      p.b.outcome('KernelService', 'ReleaseQubits', { qubit_handles: [held.qubitHandle] }),
    ],
    [
      'AttenuateHandle of A’s qubit',
      p.b.outcome('KernelService', 'AttenuateHandle', {
        handle: held.qubitHandle,
        rights: ['RIGHT_MEASURE'],
      }),
    ],
    ['GetJob of A’s job', p.b.outcome('JobService', 'GetJob', { job_id: held.jobId })],
    ['GetJobResult of A’s job', p.b.outcome('JobService', 'GetJobResult', { job_id: held.jobId })],
    ['CancelJob of A’s job', p.b.outcome('JobService', 'CancelJob', { job_id: held.jobId })],
    ['WatchJob of A’s job', p.b.watch(held.jobId).then((w) => w.outcome)],
    ...(held.leafIndex === null
      ? []
      : ([
          [
            'GetInclusionProof of A’s audit record',
            p.b.outcome('AuditService', 'GetInclusionProof', { leaf_index: held.leafIndex }),
          ],
        ] as [string, Promise<Outcome>][])),
  ];
  const observations: string[] = [];
  let passed = held.jobDone;
  if (!held.jobDone) observations.push('A’s job did not finish: nothing to probe');
  for (const [what, outcome] of probes) {
    const o = await outcome;
    observations.push(`${what}: ${o}`);
    if (!isNotFound(o)) passed = false;
  }
  // Listings: B's own views hold nothing of A's.
  const jobs = await p.b.call('JobService', 'ListJobs', { page_size: 1000 });
  const leaked = (jobs.jobs as Wire[]).filter((j) => j.job_id === held.jobId).length;
  observations.push(`ListJobs as B: ${leaked} of A’s jobs`);
  const audit = await p.b.call('AuditService', 'ListAuditRecords', { page_size: 1000 });
  const aRecords = (audit.records as Wire[]).filter(
    (r) =>
      (r.tenant_ids as string[]).includes(p.aId) && !(r.tenant_ids as string[]).includes(p.bId),
  ).length;
  observations.push(`ListAuditRecords as B: ${aRecords} records concerning only A`);
  if (leaked > 0 || aRecords > 0) passed = false;
  return {
    id: 'cross_tenant_not_found',
    claim:
      'A tenant cannot reach another tenant’s sessions, qubits, handles, jobs, results or audit records: every such call answers NOT_FOUND, and its listings hold none of them',
    passed,
    observations,
  };
}

/** B names A's qubit in an entangling gate and in a job's bindings, with no channel between them. */
export async function noEntanglementWithoutChannel(p: Pair): Promise<SelfTest> {
  const aq = (await sessionWith(p.a, 1)).qubits[0]!;
  const bq = (await sessionWith(p.b, 1)).qubits[0]!;
  const clustersOf = async (t: TenantApi) =>
    Number(((await t.call('KernelService', 'GetUsage', {})).usage as Wire).clusters);
  const before = [await clustersOf(p.a), await clustersOf(p.b)];
  const gate = await p.b.outcome('KernelService', 'ApplyGates', {
    gates: [{ kind: 'GATE_KIND_CNOT', qubits: [bq.handle, aq.handle] }],
  });
  const job = await p.b.outcome('JobService', 'SubmitJob', {
    program: {
      format: 'PROGRAM_FORMAT_OPENQASM2',
      source: 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncx q[0],q[1];\n',
    },
    shots: 1,
    bindings: [
      { name: 'q_0', qubit_handle: bq.handle },
      { name: 'q_1', qubit_handle: aq.handle },
    ],
  });
  const after = [await clustersOf(p.a), await clustersOf(p.b)];
  const unchanged = before[0] === after[0] && before[1] === after[1];
  return {
    id: 'no_entanglement_without_channel',
    claim:
      'Without a channel both tenants approved, no gate or job of one tenant can entangle its qubits with another’s',
    passed: isNotFound(gate) && isNotFound(job) && unchanged,
    observations: [
      `CNOT(B’s qubit, A’s qubit) by B: ${gate}`,
      `job by B binding A’s qubit: ${job}`,
      `clusters of A and of B before and after: ${before.join(', ')} → ${after.join(', ')}`,
    ],
  };
}

/** A channel approved for one entanglement: the first join passes, the second is refused. */
export async function channelUseLimit(p: Pair): Promise<SelfTest> {
  const requested = await p.a.call('ChannelService', 'RequestChannel', {
    peer_tenant: p.bName,
    max_entanglements: 1,
    expires_at_unix_ms: Date.now() + 10 * 60_000,
    purpose: 'qmkctl evidence: channel use limit',
  });
  const channelId = String((requested.channel as Wire).channel_id);
  await p.b.call('ChannelService', 'RespondChannelRequest', {
    channel_id: channelId,
    approve: true,
  });
  const bq = (await sessionWith(p.b, 1)).qubits[0]!;
  const shared = await p.b.call('ChannelService', 'ShareQubit', {
    channel_id: channelId,
    qubit_handle: bq.handle,
  });
  const aqs = (await sessionWith(p.a, 2)).qubits;
  const join = (q: Wire) =>
    p.a.outcome('KernelService', 'ApplyGates', {
      gates: [{ kind: 'GATE_KIND_CNOT', qubits: [q.handle, shared.shared_handle] }],
    });
  const first = await join(aqs[0]!);
  const second = await join(aqs[1]!);
  const got = await p.a.call('ChannelService', 'GetChannel', { channel_id: channelId });
  const used = Number((got.channel as Wire).entanglements_used);
  return {
    id: 'channel_use_limit',
    claim:
      'A channel allows at most the entanglements both tenants agreed to; one more is refused and counted nowhere',
    passed: first === 'OK' && second === 'RESOURCE_EXHAUSTED/CHANNEL_EXHAUSTED' && used === 1,
    observations: [
      `first join through a 1-use channel: ${first}`,
      `second join: ${second}`,
      `entanglements used: ${used}`,
    ],
  };
}

/** Qubits put in |1⟩ and released; the qubits allocated next read 0, every one. */
export async function releasedStateZeroed(p: Pair): Promise<SelfTest> {
  const session = await p.a.call('KernelService', 'OpenSession', {});
  const observations: string[] = [];
  let ones = 0;
  const ROUNDS = 8;
  for (let i = 0; i < ROUNDS; i++) {
    const qs = await allocate(p.a, session.session_handle, 2);
    const measured = await p.a.call('KernelService', 'MeasureQubits', {
      measurements: qs.map((q) => ({ qubit: q.handle, basis: 'BASIS_Z' })),
    });
    ones += (measured.outcomes as number[]).filter((o) => o === 1).length;
    // Leave them in |1⟩ (and entangled) for the next allocation to inherit, were it not zeroed.
    await p.a.call('KernelService', 'ApplyGates', {
      gates: [
        { kind: 'GATE_KIND_X', qubits: [qs[0]!.handle] },
        { kind: 'GATE_KIND_H', qubits: [qs[1]!.handle] },
        { kind: 'GATE_KIND_CNOT', qubits: [qs[1]!.handle, qs[0]!.handle] },
      ],
    });
    await p.a.call('KernelService', 'ReleaseQubits', { qubit_handles: qs.map((q) => q.handle) });
  }
  observations.push(
    `${ROUNDS} rounds: allocate 2 qubits, measure in Z, excite and entangle them, release; 1s read on fresh qubits: ${ones}`,
  );
  return {
    id: 'released_state_zeroed',
    claim:
      'A qubit is |0⟩ when allocated: nothing of a released qubit’s state reaches the next allocation',
    passed: ones === 0,
    observations,
  };
}

/** A fresh name for a temporary tenant. */
export function temporaryName(role: string): string {
  return `evidence-${role}-${randomBytes(4).toString('hex')}`;
}
