/**
 * Channel slots are not a lockout: ended channels do not count toward a tenant's limit, and one
 * requester can keep only a few requests pending in a peer's inbox. Against a real daemon.
 */
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  CHANNELS_PER_TENANT_MAX,
  CHANNEL_REQUESTS_INCOMING_MAX,
  CHANNEL_REQUESTS_PENDING_PER_PEER_MAX,
} from '../../src/kernel/channels.js';
import {
  type Daemon,
  type Wire,
  call,
  callError,
  removeStateDir,
  startDaemon,
} from '../support/daemon.js';
import { type Party, channel, closeParty, party } from '../support/parties.js';

let d: Daemon;
const parties: Party[] = [];

test.before(async () => {
  d = await startDaemon();
});

test.after(async () => {
  for (const p of parties) closeParty(p);
  if (d) {
    await d.stop();
    removeStateDir(d.stateDir);
  }
});

async function tenant(name: string): Promise<Party> {
  const p = await party(d, name);
  parties.push(p);
  return p;
}

/** A request from `from` to `peer` that is refused: its error, checked as a quota refusal. */
async function refusedRequest(from: Party, peer: Party): Promise<grpc.ServiceError> {
  const err = await callError(from.channels, 'RequestChannel', {
    peer_tenant: peer.name,
    max_entanglements: 1,
    expires_at_unix_ms: Date.now() + 60 * 60 * 1000,
  });
  assert.is(err.code, grpc.status.RESOURCE_EXHAUSTED);
  assert.is(err.metadata.get('qmk-error-code')[0], 'QUOTA_EXCEEDED');
  return err;
}

test(`${CHANNELS_PER_TENANT_MAX} rejected requests from one tenant do not stop two others from opening a channel with the victim`, async () => {
  const [attacker, victim, b, c] = [
    await tenant('attacker'),
    await tenant('victim'),
    await tenant('tenant-b'),
    await tenant('tenant-c'),
  ];
  for (let i = 0; i < CHANNELS_PER_TENANT_MAX; i++) {
    const r = await channel(attacker, victim, 1, { approve: false });
    await call(victim.channels, 'RespondChannelRequest', {
      channel_id: r.channel_id,
      approve: false,
    });
  }
  for (const other of [b, c]) {
    const ch = await channel(other, victim, 1);
    assert.is(ch.state, 'CHANNEL_STATE_ACTIVE', `${other.name} opened a channel with the victim`);
  }
  // The ended channels stay readable to both parties.
  const listed = await call<{ channels: Wire[] }>(attacker.channels, 'ListChannels', {});
  assert.ok(listed.channels.length > 0);
});

test(`one requester keeps at most ${CHANNEL_REQUESTS_PENDING_PER_PEER_MAX} requests pending with one peer; others are unaffected`, async () => {
  const [spammer, inbox, honest] = [
    await tenant('spammer'),
    await tenant('inbox'),
    await tenant('honest'),
  ];
  for (let i = 0; i < CHANNEL_REQUESTS_PENDING_PER_PEER_MAX; i++) {
    await channel(spammer, inbox, 1, { approve: false });
  }
  const err = await refusedRequest(spammer, inbox);
  assert.match(err.details, /^channels: 16 requests to this peer are pending already/);
  const ok = await channel(honest, inbox, 1);
  assert.is(ok.state, 'CHANNEL_STATE_ACTIVE');
});

test(`a full inbox (${CHANNEL_REQUESTS_INCOMING_MAX} pending from many requesters) does not stop its tenant from holding channels`, async () => {
  const target = await tenant('target');
  const requesters = CHANNEL_REQUESTS_INCOMING_MAX / CHANNEL_REQUESTS_PENDING_PER_PEER_MAX;
  for (let r = 0; r < requesters; r++) {
    const from = await tenant(`requester-${r}`);
    await Promise.all(
      Array.from({ length: CHANNEL_REQUESTS_PENDING_PER_PEER_MAX }, () =>
        channel(from, target, 1, { approve: false }),
      ),
    );
  }
  const late = await tenant('late-requester');
  const err = await refusedRequest(late, target);
  assert.match(err.details, /^channels: the peer has 1024 requests waiting for its answer already/);
  // Requests addressed to it are not channels it holds: it opens its own, and approves one.
  const own = await channel(target, late, 1);
  assert.is(own.state, 'CHANNEL_STATE_ACTIVE');
  const waiting = await call<{ channels: Wire[] }>(target.channels, 'ListChannelRequests', {});
  assert.ok(waiting.channels.length > 0);
  const approved = await call<{ channel: Wire }>(target.channels, 'RespondChannelRequest', {
    channel_id: waiting.channels[0]!.channel_id,
    approve: true,
  });
  assert.is(approved.channel.state, 'CHANNEL_STATE_ACTIVE');
});

test.run();
