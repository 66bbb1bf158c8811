/**
 * Channels between tenants and the entanglement firewall's decision. Layer: kernel (pure; the
 * kernel persists what it returns and signs through its SignerPort).
 *
 * A channel is requested by one tenant (its approval is recorded, signed, at once) and approved or
 * rejected by the peer it names; either side may revoke it. It allows up to `maxUses` joins of
 * clusters across the two tenants until `expiresAtMs`. The firewall rule: an operation that joins
 * clusters whose qubits belong to two or more tenants needs, for every pair of those tenants, a
 * live channel with a use left, and takes one use of each. The cluster is the unit, so tracking is
 * transitive: joining A's and C's qubits through B's needs A–C as well as A–B and B–C.
 *
 * What counts as a use: one join. Gates between qubits already in one cluster join nothing and use
 * nothing; measuring a qubit splits it out, so entangling it again is a new join.
 */
import { KernelError, invalid, quote } from './errors.js';

export const CHANNEL_USES_MAX = 1_000_000;
export const CHANNEL_LIFETIME_MS_MAX = 30 * 24 * 60 * 60 * 1000;
export const CHANNEL_TEXT_CHARS_MAX = 256;
/**
 * Live channels a tenant may hold: active ones and the requests it sent that are pending. Ended
 * ones (rejected, revoked, expired, exhausted) stay readable but do not count, and neither do
 * requests addressed to it until it approves one, so no tenant can use up another's slots by
 * sending requests, and a long life does not lock a tenant out.
 */
export const CHANNELS_PER_TENANT_MAX = 1024;
/** Pending requests addressed to one tenant (its inbox), from all requesters together. */
export const CHANNEL_REQUESTS_INCOMING_MAX = 1024;
/**
 * Pending requests from one tenant to one peer: a peer's inbox holds at most this many from any
 * one requester, so one tenant cannot fill it.
 */
export const CHANNEL_REQUESTS_PENDING_PER_PEER_MAX = 16;
/** An ended channel stays readable (and in the audit log for ever) this long after it ended. */
export const CHANNEL_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

/**
 * When an ended channel ended (null while it is live): rejected or revoked when that was done,
 * expired at its expiry; an exhausted channel counts as ended at its expiry (its last use is not
 * recorded), so it is kept at most its lifetime longer.
 */
export function endedAt(c: ChannelRecord, nowMs: number): number | null {
  const state = channelState(c, nowMs);
  if (state === 'PENDING' || state === 'ACTIVE') return null;
  if (state === 'REJECTED' || state === 'REVOKED') return c.endedAtMs;
  return c.expiresAtMs;
}
export const APPROVAL_PAYLOAD_TAG = 'qmk.channel.approval.v1';

export interface ChannelApproval {
  tenantId: string;
  atMs: number;
  keyId: number;
  /** Base64 Ed25519 signature over `payload` (UTF-8). */
  signature: string;
  payload: string;
}

export interface ChannelRecord {
  id: string;
  requesterId: string;
  peerId: string;
  maxUses: number;
  used: number;
  expiresAtMs: number;
  purpose: string;
  status: 'pending' | 'approved' | 'rejected' | 'revoked';
  approvals: ChannelApproval[];
  createdAtMs: number;
  endedBy: string;
  endedAtMs: number;
  endReason: string;
}

export type ChannelState = 'PENDING' | 'ACTIVE' | 'REJECTED' | 'REVOKED' | 'EXPIRED' | 'EXHAUSTED';

/** The state a caller sees: expiry and exhaustion are derived, never written. */
export function channelState(c: ChannelRecord, nowMs: number): ChannelState {
  if (c.status === 'pending') return nowMs >= c.expiresAtMs ? 'EXPIRED' : 'PENDING';
  if (c.status === 'rejected') return 'REJECTED';
  if (c.status === 'revoked') return 'REVOKED';
  if (nowMs >= c.expiresAtMs) return 'EXPIRED';
  if (c.used >= c.maxUses) return 'EXHAUSTED';
  return 'ACTIVE';
}

/** The text an approval signs: one field a line, so no field can run into the next. */
export function approvalPayload(c: ChannelRecord, tenantId: string, atMs: number): string {
  return [
    APPROVAL_PAYLOAD_TAG,
    c.id,
    tenantId,
    c.requesterId,
    c.peerId,
    String(c.maxUses),
    String(c.expiresAtMs),
    c.purpose,
    String(atMs),
  ].join('\n');
}

/** Checks RequestChannel's numbers and text. @throws INVALID_ARGUMENT */
export function checkChannelTerms(
  maxUses: number,
  expiresAtMs: number,
  purpose: string,
  nowMs: number,
): void {
  if (!Number.isInteger(maxUses) || maxUses < 1 || maxUses > CHANNEL_USES_MAX) {
    throw invalid('max_entanglements', `must be 1 ..= ${CHANNEL_USES_MAX}`);
  }
  if (!Number.isInteger(expiresAtMs) || expiresAtMs <= nowMs) {
    throw invalid('expires_at_unix_ms', 'must be in the future');
  }
  if (expiresAtMs - nowMs > CHANNEL_LIFETIME_MS_MAX) {
    throw invalid(
      'expires_at_unix_ms',
      `must be at most ${CHANNEL_LIFETIME_MS_MAX / 86_400_000} days ahead`,
    );
  }
  checkText('purpose', purpose);
}

export function checkText(field: string, text: string): void {
  if (text.length > CHANNEL_TEXT_CHARS_MAX)
    throw invalid(field, `longer than ${CHANNEL_TEXT_CHARS_MAX} characters`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f]/.test(text))
    throw invalid(field, 'must not contain control characters');
}

/** Channels indexed by id and by tenant. */
export class ChannelTable {
  private readonly byId = new Map<string, ChannelRecord>();
  private readonly byTenant = new Map<string, Set<string>>();

  constructor(loaded: readonly ChannelRecord[] = []) {
    for (const c of loaded) this.put(c);
  }

  put(c: ChannelRecord): void {
    this.byId.set(c.id, c);
    for (const t of [c.requesterId, c.peerId]) {
      let s = this.byTenant.get(t);
      if (!s) {
        s = new Set();
        this.byTenant.set(t, s);
      }
      s.add(c.id);
    }
  }

  remove(id: string): void {
    const c = this.byId.get(id);
    if (!c) return;
    this.byId.delete(id);
    for (const t of [c.requesterId, c.peerId]) this.byTenant.get(t)?.delete(id);
  }

  get(id: string): ChannelRecord | undefined {
    return this.byId.get(id);
  }

  /** The tenant's channels, newest first. */
  of(tenantId: string): ChannelRecord[] {
    return [...(this.byTenant.get(tenantId) ?? [])]
      .map((id) => this.byId.get(id)!)
      .sort((a, b) => b.createdAtMs - a.createdAtMs || (a.id < b.id ? -1 : 1));
  }

  /** Every channel the tenant is party to, ended ones included. */
  countOf(tenantId: string): number {
    return this.byTenant.get(tenantId)?.size ?? 0;
  }

  /** Ended channels whose retention is over at `nowMs`. */
  expired(nowMs: number): ChannelRecord[] {
    const out: ChannelRecord[] = [];
    for (const c of this.byId.values()) {
      const end = endedAt(c, nowMs);
      if (end !== null && nowMs >= end + CHANNEL_RETENTION_MS) out.push(c);
    }
    return out;
  }

  /**
   * What the tenant holds at `nowMs` (its limit counts these): active channels, and pending
   * requests it sent.
   */
  heldCountOf(tenantId: string, nowMs: number): number {
    let n = 0;
    for (const id of this.byTenant.get(tenantId) ?? []) {
      const c = this.byId.get(id)!;
      const state = channelState(c, nowMs);
      if (state === 'ACTIVE' || (state === 'PENDING' && c.requesterId === tenantId)) n++;
    }
    return n;
  }

  /** Pending requests addressed to the tenant at `nowMs` (its inbox). */
  incomingCountOf(tenantId: string, nowMs: number): number {
    let n = 0;
    for (const id of this.byTenant.get(tenantId) ?? []) {
      const c = this.byId.get(id)!;
      if (c.peerId === tenantId && channelState(c, nowMs) === 'PENDING') n++;
    }
    return n;
  }

  /** Requests from `requesterId` to `peerId` still pending at `nowMs`. */
  pendingFromTo(requesterId: string, peerId: string, nowMs: number): number {
    let n = 0;
    for (const id of this.byTenant.get(requesterId) ?? []) {
      const c = this.byId.get(id)!;
      if (
        c.requesterId === requesterId &&
        c.peerId === peerId &&
        channelState(c, nowMs) === 'PENDING'
      )
        n++;
    }
    return n;
  }

  /** A channel the caller is party to; anyone else gets NOT_FOUND (no existence leak). */
  visible(tenantId: string, id: string, field: string): ChannelRecord {
    const c = this.byId.get(id);
    if (!c || (c.requesterId !== tenantId && c.peerId !== tenantId)) {
      throw new KernelError('NOT_FOUND', `${field}: no channel ${quote(id)}`, field);
    }
    return c;
  }

  /**
   * The firewall's decision for one join whose clusters hold qubits of `tenants`: for each pair, the
   * channel whose use it takes (a `preferred` one, named by a shared handle in the operation,
   * first). Changes nothing; the caller takes the uses with the operation's commit.
   * @throws FIREWALL_NO_CHANNEL, CHANNEL_NOT_APPROVED, CHANNEL_EXPIRED, CHANNEL_REVOKED,
   *   CHANNEL_EXHAUSTED: the reason of the pair's best channel
   */
  decide(
    tenants: readonly string[],
    preferred: ReadonlySet<string>,
    nowMs: number,
    name: (tenantId: string) => string,
  ): ChannelRecord[] {
    const sorted = [...new Set(tenants)].sort();
    const out: ChannelRecord[] = [];
    for (let i = 0; i < sorted.length; i++) {
      for (let j = i + 1; j < sorted.length; j++) {
        const [x, y] = [sorted[i]!, sorted[j]!];
        const between = [...(this.byTenant.get(x) ?? [])]
          .map((id) => this.byId.get(id)!)
          .filter((c) => c.requesterId === y || c.peerId === y);
        const pair = `${name(x)} and ${name(y)}`;
        if (between.length === 0) {
          throw new KernelError(
            'FIREWALL_NO_CHANNEL',
            `firewall: no channel between tenants ${pair}; qubits of two tenants join only through a channel both approved`,
            'channel',
          );
        }
        const named = between.filter((c) => preferred.has(c.id));
        const candidates = named.length > 0 ? named : between;
        const live = candidates
          .filter((c) => channelState(c, nowMs) === 'ACTIVE')
          .sort((a, b) => a.expiresAtMs - b.expiresAtMs);
        if (live.length > 0) {
          out.push(live[0]!);
          continue;
        }
        throw refusal(candidates, nowMs, pair);
      }
    }
    return out;
  }
}

/** Why no candidate is live, most telling first: a channel that was live says more than one never approved. */
export function refusal(
  candidates: readonly ChannelRecord[],
  nowMs: number,
  pair: string,
): KernelError {
  const states = candidates.map((c) => ({ c, s: channelState(c, nowMs) }));
  const pick = (s: ChannelState) => states.find((x) => x.s === s)?.c;
  const exhausted = pick('EXHAUSTED');
  if (exhausted) {
    return new KernelError(
      'CHANNEL_EXHAUSTED',
      `firewall: channel ${exhausted.id} between ${pair} has used all ${exhausted.maxUses} entanglements`,
      'channel',
    );
  }
  const revoked = pick('REVOKED');
  if (revoked) {
    return new KernelError(
      'CHANNEL_REVOKED',
      `firewall: channel ${revoked.id} between ${pair} was revoked${revoked.endReason ? ` (${revoked.endReason})` : ''}`,
      'channel',
    );
  }
  const expired = states.find((x) => x.s === 'EXPIRED' && x.c.status === 'approved')?.c;
  if (expired) {
    return new KernelError(
      'CHANNEL_EXPIRED',
      `firewall: channel ${expired.id} between ${pair} expired at ${new Date(expired.expiresAtMs).toISOString()}`,
      'channel',
    );
  }
  const c = candidates[0]!;
  return new KernelError(
    'CHANNEL_NOT_APPROVED',
    `firewall: channel ${c.id} between ${pair} is ${channelState(c, nowMs).toLowerCase()}, not approved by both tenants`,
    'channel',
  );
}
