/**
 * Tenants as the channel and firewall tests use them: a tenant with an open session and a client
 * per service, and the calls those tests make again and again (allocate, open a channel both sides
 * approved, share, measure, read a channel's uses), each through the real daemon.
 */

import {
  type AnyClient,
  type Daemon,
  type Wire,
  call,
  channelClient,
  jobClient,
  newTenant,
} from './daemon.js';

/** A qubit as AllocateQubits returns it. */
export interface Q {
  qubit_id: string;
  handle: string;
}

export interface Party {
  name: string;
  id: string;
  apiKey: string;
  kernel: AnyClient;
  channels: AnyClient;
  jobs: AnyClient;
  session: string;
}

/** A new tenant named `name` with one open session. */
export async function party(d: Daemon, name: string): Promise<Party> {
  const t = await newTenant(d, name);
  const session = (await call<{ session_handle: string }>(t.client, 'OpenSession', {}))
    .session_handle;
  return {
    name,
    id: t.tenantId,
    apiKey: t.apiKey,
    kernel: t.client,
    channels: channelClient(d, t.apiKey),
    jobs: jobClient(d, t.apiKey),
    session,
  };
}

export function closeParty(p: Party): void {
  for (const c of [p.kernel, p.channels, p.jobs]) c.close();
}

export async function alloc(p: Party, n = 1): Promise<Q[]> {
  return (
    await call<{ qubits: Q[] }>(p.kernel, 'AllocateQubits', { session_handle: p.session, count: n })
  ).qubits;
}

const HOUR = 60 * 60 * 1000;

/** `from` asks `to` for a channel; `to` approves unless told not to. */
export async function channel(
  from: Party,
  to: Party,
  max: number,
  opts: { approve?: boolean; ttlMs?: number } = {},
): Promise<Wire> {
  const r = await call<{ channel: Wire }>(from.channels, 'RequestChannel', {
    peer_tenant: to.name,
    max_entanglements: max,
    expires_at_unix_ms: Date.now() + (opts.ttlMs ?? HOUR),
    purpose: `test ${from.name}->${to.name}`,
  });
  if (opts.approve === false) return r.channel;
  return (
    await call<{ channel: Wire }>(to.channels, 'RespondChannelRequest', {
      channel_id: r.channel.channel_id,
      approve: true,
    })
  ).channel;
}

/** A shared handle to `owner`'s qubit `q` on the channel. */
export async function share(owner: Party, channelId: string, q: Q): Promise<string> {
  return (
    await call<{ shared_handle: string }>(owner.channels, 'ShareQubit', {
      channel_id: channelId,
      qubit_handle: q.handle,
    })
  ).shared_handle;
}

/** One Z measurement of `q`, its outcome. */
export async function measure(p: Party, q: Q): Promise<number> {
  return (
    await call<{ outcomes: number[] }>(p.kernel, 'MeasureQubits', {
      measurements: [{ qubit: q.handle, basis: 'BASIS_Z' }],
    })
  ).outcomes[0]!;
}

/** The channel's entanglements used so far, as `p` (a party to it) reads it. */
export async function used(p: Party, channelId: string): Promise<number> {
  return (await call<{ channel: Wire }>(p.channels, 'GetChannel', { channel_id: channelId }))
    .channel.entanglements_used;
}
