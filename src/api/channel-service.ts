/**
 * ChannelService adapter: decodes requests, calls the kernel, encodes replies. Layer: api; no
 * policy here (every check, and the firewall itself, is the kernel's).
 */
import type { ChannelRecord } from '../kernel/channels.js';
import type { ChannelDirection } from '../kernel/firewall.js';
import type { Kernel } from '../kernel/kernel.js';
import { num, str, tenant } from './convert.js';
import type { Channel as WireChannel } from './generated/qmk/v1/Channel.js';
import type { ChannelServiceHandlers } from './generated/qmk/v1/ChannelService.js';
import type { GetChannelRequest__Output } from './generated/qmk/v1/GetChannelRequest.js';
import type { ListChannelRequestsRequest__Output } from './generated/qmk/v1/ListChannelRequestsRequest.js';
import type { RequestChannelRequest__Output } from './generated/qmk/v1/RequestChannelRequest.js';
import type { RespondChannelRequestRequest__Output } from './generated/qmk/v1/RespondChannelRequestRequest.js';
import type { RevokeChannelRequest__Output } from './generated/qmk/v1/RevokeChannelRequest.js';
import type { ShareQubitRequest__Output } from './generated/qmk/v1/ShareQubitRequest.js';
import { type CallTracker, unary } from './handler.js';

/** The wire's direction enum as the kernel's; unset and unknown values list both. */
const DIRECTIONS: Readonly<Record<string, ChannelDirection>> = {
  CHANNEL_DIRECTION_INCOMING: 'incoming',
  CHANNEL_DIRECTION_OUTGOING: 'outgoing',
};

export function channelToWire(k: Kernel, c: ChannelRecord): WireChannel {
  const name = (id: string) => k.principals.tenant(id)?.name ?? '';
  return {
    channel_id: c.id,
    requester_tenant_id: c.requesterId,
    requester_name: name(c.requesterId),
    peer_tenant_id: c.peerId,
    peer_name: name(c.peerId),
    max_entanglements: c.maxUses,
    entanglements_used: c.used,
    expires_at_unix_ms: c.expiresAtMs,
    purpose: c.purpose,
    state: `CHANNEL_STATE_${k.firewall.stateOf(c)}` as const,
    approvals: c.approvals.map((a) => ({
      tenant_id: a.tenantId,
      approved_at_unix_ms: a.atMs,
      key_id: a.keyId,
      signature: Buffer.from(a.signature, 'base64'),
      signed_payload: Buffer.from(a.payload, 'utf8'),
    })),
    created_at_unix_ms: c.createdAtMs,
    ended_by_tenant_id: c.endedBy,
    ended_at_unix_ms: c.endedAtMs,
    end_reason: c.endReason,
  };
}

export function channelServiceHandlers(k: Kernel, tracker: CallTracker): ChannelServiceHandlers {
  const wire = (c: ChannelRecord) => ({ channel: channelToWire(k, c) });
  return {
    RequestChannel: unary(tracker, async (p, r: RequestChannelRequest__Output) =>
      wire(
        await k.firewall.request(
          tenant(p),
          str(r.peer_tenant),
          num(r.max_entanglements),
          num(r.expires_at_unix_ms),
          str(r.purpose),
        ),
      ),
    ),
    ListChannelRequests: unary(tracker, (p, r: ListChannelRequestsRequest__Output) => {
      const channels = k.firewall.pending(
        tenant(p).tenantId,
        DIRECTIONS[str(r.direction)] ?? 'both',
      );
      return { channels: channels.map((c) => channelToWire(k, c)) };
    }),
    RespondChannelRequest: unary(tracker, async (p, r: RespondChannelRequestRequest__Output) =>
      wire(
        await k.firewall.respond(tenant(p), str(r.channel_id), r.approve === true, str(r.reason)),
      ),
    ),
    GetChannel: unary(tracker, (p, r: GetChannelRequest__Output) => {
      const id = str(r.channel_id);
      return wire(k.firewall.get(tenant(p).tenantId, id, 'channel_id'));
    }),
    ListChannels: unary(tracker, (p) => ({
      channels: k.firewall.list(tenant(p).tenantId).map((c) => channelToWire(k, c)),
    })),
    RevokeChannel: unary(tracker, async (p, r: RevokeChannelRequest__Output) =>
      wire(await k.firewall.revoke(tenant(p), str(r.channel_id), str(r.reason))),
    ),
    ShareQubit: unary(tracker, async (p, r: ShareQubitRequest__Output) => {
      const out = await k.firewall.share(tenant(p), str(r.channel_id), str(r.qubit_handle));
      return { shared_handle: out.handle, expires_at_unix_ms: out.expiresAtMs };
    }),
    GetSigningKeys: unary(tracker, () => ({
      keys: k.handles
        .signingKeys()
        .map((key) => ({ key_id: key.keyId, public_key: key.publicKey, active: key.active })),
    })),
  };
}
