/**
 * ChannelService adapter: decodes requests, calls the kernel, encodes replies. Layer: api; no
 * policy here (every check, and the firewall itself, is the kernel's).
 */
import type * as grpc from '@grpc/grpc-js';
import { type ChannelRecord, channelState } from '../kernel/channels.js';
import type { Kernel } from '../kernel/kernel.js';
import { num, str, tenant } from './convert.js';
import type { GetChannelRequest__Output } from './generated/qmk/v1/GetChannelRequest.js';
import type { ListChannelRequestsRequest__Output } from './generated/qmk/v1/ListChannelRequestsRequest.js';
import type { RequestChannelRequest__Output } from './generated/qmk/v1/RequestChannelRequest.js';
import type { RespondChannelRequestRequest__Output } from './generated/qmk/v1/RespondChannelRequestRequest.js';
import type { RevokeChannelRequest__Output } from './generated/qmk/v1/RevokeChannelRequest.js';
import type { ShareQubitRequest__Output } from './generated/qmk/v1/ShareQubitRequest.js';
import { type CallTracker, unary } from './handler.js';

export function channelToWire(k: Kernel, c: ChannelRecord) {
  const name = (id: string) => k.tenants.get(id)?.name ?? '';
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
    state: `CHANNEL_STATE_${channelState(c, k.ports.clock.nowMs())}`,
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

export function channelServiceHandlers(
  k: Kernel,
  tracker: CallTracker,
): grpc.UntypedServiceImplementation {
  const wire = (c: ChannelRecord) => ({ channel: channelToWire(k, c) });
  return {
    RequestChannel: unary(tracker, async (p, r: RequestChannelRequest__Output) =>
      wire(
        await k.requestChannel(
          tenant(p),
          str(r.peer_tenant),
          num(r.max_entanglements),
          num(r.expires_at_unix_ms),
          str(r.purpose),
        ),
      ),
    ),
    ListChannelRequests: unary(tracker, (p, r: ListChannelRequestsRequest__Output) => {
      const me = tenant(p).tenantId;
      const dir = str(r.direction);
      const now = k.ports.clock.nowMs();
      const channels = k.channels.of(me).filter((c) => {
        if (channelState(c, now) !== 'PENDING') return false;
        if (dir === 'CHANNEL_DIRECTION_INCOMING') return c.peerId === me;
        if (dir === 'CHANNEL_DIRECTION_OUTGOING') return c.requesterId === me;
        return true;
      });
      return { channels: channels.map((c) => channelToWire(k, c)) };
    }),
    RespondChannelRequest: unary(tracker, async (p, r: RespondChannelRequestRequest__Output) =>
      wire(await k.respondChannel(tenant(p), str(r.channel_id), r.approve === true, str(r.reason))),
    ),
    GetChannel: unary(tracker, (p, r: GetChannelRequest__Output) => {
      const id = str(r.channel_id);
      return wire(k.channels.visible(tenant(p).tenantId, id, 'channel_id'));
    }),
    ListChannels: unary(tracker, (p) => ({
      channels: k.channels.of(tenant(p).tenantId).map((c) => channelToWire(k, c)),
    })),
    RevokeChannel: unary(tracker, async (p, r: RevokeChannelRequest__Output) =>
      wire(await k.revokeChannel(tenant(p), str(r.channel_id), str(r.reason))),
    ),
    ShareQubit: unary(tracker, async (p, r: ShareQubitRequest__Output) => {
      const out = await k.shareQubit(tenant(p), str(r.channel_id), str(r.qubit_handle));
      return { shared_handle: out.handle, expires_at_unix_ms: out.expiresAtMs };
    }),
    GetSigningKeys: unary(tracker, () => ({
      keys: k.ports.signer
        .keys(k.ports.clock.nowMs())
        .map((key) => ({ key_id: key.keyId, public_key: key.publicKey, active: key.active })),
    })),
  };
}
