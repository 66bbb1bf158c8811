import nacl from 'tweetnacl';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openStateOffline } from '../../src/store/offline.js';
import {
  type Daemon,
  type Wire,
  call,
  callError,
  channelClient,
  jobClient,
  kernelClient,
  removeStateDir,
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

let d: Daemon;
let A: Party;
let B: Party;
let C: Party;
/** Firewall refusals made, by code: each must have its audit record. */
const refused = new Map<string, number>();

test.before(async () => {
  d = await startDaemon();
  A = await party(d, 'tenant-a');
  B = await party(d, 'tenant-b');
  C = await party(d, 'tenant-c');
});

test.after(async () => {
  for (const p of [A, B, C]) closeParty(p);
  if (d.child.exitCode === null) await d.stop();
  removeStateDir(d.stateDir);
});

const cnot = (p: Party, control: string, target: string) =>
  call(p.kernel, 'ApplyGates', { gates: [{ kind: 'GATE_KIND_CNOT', qubits: [control, target] }] });

async function clusters(p: Party): Promise<number> {
  return (await call<{ usage: { clusters: number } }>(p.kernel, 'GetUsage', {})).usage.clusters;
}

/** A refused cross-tenant CNOT: exact code and reason, and neither tenant's clusters changed. */
async function refusedCnot(
  p: Party,
  control: string,
  target: string,
  code: number,
  kernelCode: string,
  reason: RegExp,
) {
  const before = await Promise.all([A, B, C].map(clusters));
  const err = await callError(p.kernel, 'ApplyGates', {
    gates: [{ kind: 'GATE_KIND_CNOT', qubits: [control, target] }],
  });
  assert.is(err.code, code, err.details);
  assert.is(err.metadata.get('qmk-error-code')[0], kernelCode);
  assert.match(err.details, reason);
  assert.equal(await Promise.all([A, B, C].map(clusters)), before, 'no cluster changed');
  refused.set(kernelCode, (refused.get(kernelCode) ?? 0) + 1);
}

test('allowed: B shares a qubit with A through an approved channel; A’s CNOT entangles, is counted', async () => {
  const ch = await channel(A, B, 5);
  assert.is(ch.state, 'CHANNEL_STATE_ACTIVE');
  const [a] = await alloc(A);
  const [b] = await alloc(B);
  await call(A.kernel, 'ApplyGates', { gates: [{ kind: 'GATE_KIND_X', qubits: [a!.handle] }] });
  const shared = await share(B, ch.channel_id, b!);
  await cnot(A, a!.handle, shared);
  assert.is(await used(A, ch.channel_id), 1);
  assert.is(await used(B, ch.channel_id), 1, 'both sides see the count');
  // A CNOT on qubits already in one cluster joins nothing and uses nothing.
  await cnot(A, a!.handle, shared);
  assert.is(await used(A, ch.channel_id), 1);
  await cnot(A, a!.handle, shared); // undo the second, so b holds the copy of |1> again
  assert.is(await measure(B, b!), 1, 'B reads the |1> A copied onto its qubit');
});

test('approvals: both are signed by the kernel and verify against GetSigningKeys', async () => {
  const ch = await channel(A, B, 3);
  const { keys } = await call<{ keys: Wire[] }>(A.channels, 'GetSigningKeys', {});
  assert.is(ch.approvals.length, 2);
  assert.equal(
    ch.approvals.map((x: Wire) => x.tenant_id),
    [A.id, B.id],
  );
  for (const ap of ch.approvals as Wire[]) {
    const key = keys.find((k) => k.key_id === ap.key_id);
    assert.ok(key, `key ${ap.key_id} is listed`);
    const ok = nacl.sign.detached.verify(
      ap.signed_payload,
      ap.signature,
      Buffer.from(key.public_key, 'base64'),
    );
    assert.ok(ok, 'signature verifies');
    const lines = Buffer.from(ap.signed_payload).toString('utf8').split('\n');
    assert.equal(lines.slice(0, 6), [
      'qmk.channel.approval.v1',
      ch.channel_id,
      ap.tenant_id,
      A.id,
      B.id,
      '3',
    ]);
    // A changed byte does not verify.
    const forged = Buffer.from(ap.signed_payload);
    forged.writeUInt8(forged.readUInt8(forged.length - 1) ^ 1, forged.length - 1);
    assert.not.ok(
      nacl.sign.detached.verify(forged, ap.signature, Buffer.from(key.public_key, 'base64')),
    );
  }
});

test('only one side approved: sharing is refused and GetChannel shows one approval', async () => {
  const ch = await channel(A, B, 3, { approve: false });
  assert.is(ch.state, 'CHANNEL_STATE_PENDING');
  assert.is(ch.approvals.length, 1);
  const incoming = await call<{ channels: Wire[] }>(B.channels, 'ListChannelRequests', {
    direction: 'CHANNEL_DIRECTION_INCOMING',
  });
  assert.ok(incoming.channels.some((c) => c.channel_id === ch.channel_id));
  const [b] = await alloc(B);
  const err = await callError(B.channels, 'ShareQubit', {
    channel_id: ch.channel_id,
    qubit_handle: b!.handle,
  });
  assert.is(err.code, 7);
  assert.is(err.metadata.get('qmk-error-code')[0], 'CHANNEL_NOT_APPROVED');
  // Without a share A cannot name B's qubit at all: B's own handle is NOT_FOUND for A.
  const [a] = await alloc(A);
  const e2 = await callError(A.kernel, 'ApplyGates', {
    gates: [{ kind: 'GATE_KIND_CNOT', qubits: [a!.handle, b!.handle] }],
  });
  assert.is(e2.code, 5);
  assert.match(e2.details, /^gates\[0\]\.qubits\[1\]: no such resource/);
});

test('a request answered by a tenant it was not addressed to', async () => {
  const ch = await channel(A, B, 3, { approve: false });
  const third = await callError(C.channels, 'RespondChannelRequest', {
    channel_id: ch.channel_id,
    approve: true,
  });
  assert.is(third.code, 5, 'a third tenant cannot see it');
  const own = await callError(A.channels, 'RespondChannelRequest', {
    channel_id: ch.channel_id,
    approve: true,
  });
  assert.is(own.code, 7);
  assert.is(own.metadata.get('qmk-error-code')[0], 'CHANNEL_WRONG_TENANTS');
  const after = await call<{ channel: Wire }>(B.channels, 'GetChannel', {
    channel_id: ch.channel_id,
  });
  assert.is(after.channel.state, 'CHANNEL_STATE_PENDING', 'still pending, one approval');
  assert.is(after.channel.approvals.length, 1);
});

test('through a third qubit: A–B and B–C are not enough to join A’s and C’s qubits; A–C must exist', async () => {
  const ab = await channel(A, B, 10);
  const bc = await channel(B, C, 10);
  const [a] = await alloc(A);
  const [b] = await alloc(B);
  const [c] = await alloc(C);
  await cnot(A, a!.handle, await share(B, ab.channel_id, b!)); // {a, b}: A–B
  const bForC = await share(B, bc.channel_id, b!);
  await refusedCnot(
    C,
    c!.handle,
    bForC,
    7,
    'FIREWALL_NO_CHANNEL',
    /no channel between tenants ("tenant-a" and "tenant-c"|"tenant-c" and "tenant-a")/,
  );
  assert.is(await used(B, bc.channel_id), 0, 'the refused join took no use');
  // An A–C request that only A approved does not do either.
  const ac = await channel(A, C, 10, { approve: false });
  await refusedCnot(
    C,
    c!.handle,
    bForC,
    7,
    'CHANNEL_NOT_APPROVED',
    /between ("tenant-a" and "tenant-c"|"tenant-c" and "tenant-a") is pending/,
  );
  await call(C.channels, 'RespondChannelRequest', { channel_id: ac.channel_id, approve: true });
  const abUses = async () => {
    const { channels } = await call<{ channels: Wire[] }>(A.channels, 'ListChannels', {});
    return channels
      .filter((x) => x.peer_tenant_id === B.id)
      .reduce((n, x) => n + x.entanglements_used, 0);
  };
  const abBefore = await abUses();
  await cnot(C, c!.handle, bForC);
  // One use of a live channel for each pair: B–C and A–C are the only ones of their pairs; for
  // A–B any live channel serves (the earliest to expire is taken).
  assert.equal(await Promise.all([used(B, bc.channel_id), used(C, ac.channel_id)]), [1, 1]);
  assert.is(await abUses(), abBefore + 1, 'the three-tenant join took one A–B use');
  assert.ok((await used(A, ab.channel_id)) >= 1);
});

test('the (N+1)th entanglement with N = 2 is refused', async () => {
  const ch = await channel(A, B, 2);
  const [b] = await alloc(B);
  const shared = await share(B, ch.channel_id, b!);
  const as = await alloc(A, 3);
  for (const a of as.slice(0, 2)) {
    await cnot(A, a.handle, shared);
    await measure(B, b!); // measuring splits b out: the next CNOT is a new join
  }
  assert.is(await used(A, ch.channel_id), 2);
  await refusedCnot(
    A,
    as[2]!.handle,
    shared,
    8,
    'CHANNEL_EXHAUSTED',
    /has used all 2 entanglements/,
  );
  assert.is(await used(A, ch.channel_id), 2);
  const got = await call<{ channel: Wire }>(A.channels, 'GetChannel', {
    channel_id: ch.channel_id,
  });
  assert.is(got.channel.state, 'CHANNEL_STATE_EXHAUSTED');
});

/**
 * Waits until the wall clock is past `unixMs`: expiry is the daemon's real time, so the test waits
 * for the moment itself rather than a guess of how long the calls before took.
 */
async function pastExpiry(unixMs: number): Promise<void> {
  while (Date.now() <= unixMs + 20) await sleep(unixMs + 25 - Date.now());
}

// The channels below live 3 s: the few calls that use them before expiry must fit, also on a
// loaded machine; the waits end when the expiry has passed, however long that took.
test('after expiry the channel is refused', async () => {
  const ch = await channel(A, B, 5, { ttlMs: 3000 });
  const [a] = await alloc(A);
  const [b] = await alloc(B);
  const shared = await share(B, ch.channel_id, b!);
  await pastExpiry(Number(ch.expires_at_unix_ms));
  // The shared handle expired with the channel; the channel itself refuses a fresh share too.
  const e = await callError(A.kernel, 'ApplyGates', {
    gates: [{ kind: 'GATE_KIND_CNOT', qubits: [a!.handle, shared] }],
  });
  assert.is(e.code, 16);
  assert.is(e.metadata.get('qmk-error-code')[0], 'HANDLE_EXPIRED');
  const s = await callError(B.channels, 'ShareQubit', {
    channel_id: ch.channel_id,
    qubit_handle: b!.handle,
  });
  assert.is(s.metadata.get('qmk-error-code')[0], 'CHANNEL_EXPIRED');
  // A join that needs the pair (through an older, still-live share of another channel) is refused.
  assert.is(await used(A, ch.channel_id), 0);
});

test('an expired channel refuses a join that needs it', async () => {
  // Fresh tenants, so the pair has no other channel. X–Y expires; a live Y–Z share lets Z join
  // Y's qubit, which is entangled with X's through the expired channel's earlier use: the X–Y
  // pair's only channel is expired.
  const [X, Y, Z] = [
    await party(d, 'tenant-x'),
    await party(d, 'tenant-y'),
    await party(d, 'tenant-z'),
  ];
  const xy = await channel(X, Y, 5, { ttlMs: 3000 });
  const yz = await channel(Y, Z, 5);
  const xz = await channel(X, Z, 5);
  const [x] = await alloc(X);
  const [y] = await alloc(Y);
  const [z] = await alloc(Z);
  await cnot(X, x!.handle, await share(Y, xy.channel_id, y!));
  const yForZ = await share(Y, yz.channel_id, y!);
  await pastExpiry(Number(xy.expires_at_unix_ms));
  const err = await callError(Z.kernel, 'ApplyGates', {
    gates: [{ kind: 'GATE_KIND_CNOT', qubits: [z!.handle, yForZ] }],
  });
  assert.is(err.code, 7, err.details);
  assert.is(err.metadata.get('qmk-error-code')[0], 'CHANNEL_EXPIRED');
  assert.match(
    err.details,
    /channel [0-9a-f]+ between ("tenant-x" and "tenant-y"|"tenant-y" and "tenant-x") expired at/,
  );
  refused.set('CHANNEL_EXPIRED', (refused.get('CHANNEL_EXPIRED') ?? 0) + 1);
  assert.equal(await Promise.all([used(Y, yz.channel_id), used(X, xz.channel_id)]), [0, 0]);
  assert.is(await clusters(Z), 1, 'z is still alone');
  for (const p of [X, Y, Z]) closeParty(p);
});

test('after revocation by either side the channel is refused, with the reason', async () => {
  for (const revoker of ['requester', 'peer'] as const) {
    const ch = await channel(A, B, 5);
    const [a] = await alloc(A);
    const [b] = await alloc(B);
    const shared = await share(B, ch.channel_id, b!);
    const by = revoker === 'requester' ? A : B;
    const r = await call<{ channel: Wire }>(by.channels, 'RevokeChannel', {
      channel_id: ch.channel_id,
      reason: `done (${revoker})`,
    });
    assert.is(r.channel.state, 'CHANNEL_STATE_REVOKED');
    assert.is(r.channel.ended_by_tenant_id, by.id);
    await refusedCnot(
      A,
      a!.handle,
      shared,
      7,
      'CHANNEL_REVOKED',
      new RegExp(`was revoked \\(done \\(${revoker}\\)\\)`),
    );
    assert.is(await used(A, ch.channel_id), 0);
    const again = await callError(B.channels, 'RevokeChannel', { channel_id: ch.channel_id });
    assert.is(again.metadata.get('qmk-error-code')[0], 'CHANNEL_NOT_PENDING');
  }
});

test('a shared qubit used by a third tenant is NOT_FOUND; its channel is invisible to it', async () => {
  const ch = await channel(A, B, 5);
  const [b] = await alloc(B);
  const shared = await share(B, ch.channel_id, b!);
  const [c] = await alloc(C);
  const e = await callError(C.kernel, 'ApplyGates', {
    gates: [{ kind: 'GATE_KIND_CNOT', qubits: [c!.handle, shared] }],
  });
  assert.is(e.code, 5);
  assert.match(e.details, /^gates\[0\]\.qubits\[1\]: no such resource/);
  const g = await callError(C.channels, 'GetChannel', { channel_id: ch.channel_id });
  assert.is(g.code, 5);
  assert.is(await used(A, ch.channel_id), 0);
});

test('a shared handle used for anything but an entangling gate is PERMISSION_DENIED', async () => {
  const ch = await channel(A, B, 5);
  const [b] = await alloc(B);
  const shared = await share(B, ch.channel_id, b!);
  const attempts: [string, object][] = [
    ['ApplyGates', { gates: [{ kind: 'GATE_KIND_H', qubits: [shared] }] }],
    ['MeasureQubits', { measurements: [{ qubit: shared, basis: 'BASIS_Z' }] }],
    ['ReleaseQubits', { qubit_handles: [shared] }],
  ];
  for (const [method, req] of attempts) {
    const e = await callError(A.kernel, method, req);
    assert.is(e.code, 7, `${method}: ${e.details}`);
    assert.is(e.metadata.get('qmk-error-code')[0], 'RIGHTS_INSUFFICIENT');
    assert.match(e.details, /shared qubit handle allows only entangling gates/);
  }
  assert.is(await measure(B, b!), 0, 'B’s qubit is untouched');
  assert.is(await used(A, ch.channel_id), 0);
});

test('every firewall refusal left an audit record; channels and their counts survive a restart', async () => {
  const list = async (p: Party) =>
    (await call<{ channels: Wire[] }>(p.channels, 'ListChannels', {})).channels.map((c) => [
      c.channel_id,
      c.state,
      c.entanglements_used,
      c.approvals.length,
    ]);
  const before = await list(A);
  assert.ok(before.length >= 8);
  assert.is(await d.stop(), 0);
  const state = openStateOffline(d.stateDir);
  const store = state.store;
  const seen = new Map<string, number>();
  for (const r of store.auditRecords()) {
    if (r.outcome.startsWith('denied:'))
      seen.set(r.outcome.slice(7), (seen.get(r.outcome.slice(7)) ?? 0) + 1);
  }
  await state.close();
  assert.ok(refused.size >= 4, 'the scenarios above refused');
  for (const [code, n] of refused) assert.is(seen.get(code), n, `audit records of ${code}`);
  d = await startDaemon(d.stateDir);
  closeParty(A);
  A = {
    ...A,
    channels: channelClient(d, A.apiKey),
    kernel: kernelClient(d, A.apiKey),
    jobs: jobClient(d, A.apiKey),
  };
  assert.equal(await list(A), before);
});

test.run();
