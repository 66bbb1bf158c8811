/**
 * The entanglement firewall and the channels that open it: tenants request, approve (signed),
 * reject, revoke and share qubits through channels, and every join of clusters holding qubits of
 * two or more tenants is decided here against a live channel with uses left. Layer: kernel. The
 * table of channels and their states is `channels.ts`'s; this unit is the policy over it, and
 * the only place that changes it.
 */
import assert from 'node:assert';
import { type Actor, auditEvent } from './actors.js';
import {
  CHANNELS_PER_TENANT_MAX,
  CHANNEL_REQUESTS_INCOMING_MAX,
  CHANNEL_REQUESTS_PENDING_PER_PEER_MAX,
  type ChannelRecord,
  type ChannelState,
  type ChannelTable,
  approvalPayload,
  channelState,
  checkChannelTerms,
  checkText,
} from './channels.js';
import { ClusterGraph } from './clusters.js';
import type { Durability } from './durability.js';
import { FIREWALL_CODES, KernelError, invalid, quote } from './errors.js';
import type { HandleAuthority } from './handle-authority.js';
import { type HandleClaims, RIGHTS } from './handles.js';
import { QUBITS_PER_CLUSTER_MAX } from './limits.js';
import type { ClockPort, CryptoPort, SignerPort, StoreRecord } from './ports.js';
import type { Principals, TenantPrincipal } from './principals.js';
import type { FirewallSnapshot } from './program-check.js';
import type { SessionTable } from './session-table.js';

/** What the firewall works with (the kernel wires them). */
export interface FirewallDeps {
  clock: ClockPort;
  crypto: CryptoPort;
  signer: SignerPort;
  principals: Principals;
  handles: HandleAuthority;
  durability: Durability;
  table: SessionTable;
  graph: ClusterGraph;
  channels: ChannelTable;
}

/** Which pending requests a tenant lists: addressed to it, sent by it, or both. */
export type ChannelDirection = 'incoming' | 'outgoing' | 'both';

export class Firewall {
  private readonly table: ChannelTable;

  constructor(private readonly d: FirewallDeps) {
    this.table = d.channels;
  }

  /** A channel the tenant is party to. @throws NOT_FOUND (also for other tenants' channels) */
  get(tenantId: string, id: string, field = 'channel_id'): ChannelRecord {
    return this.table.visible(tenantId, id, field);
  }

  /** Every channel the tenant is party to. */
  list(tenantId: string): ChannelRecord[] {
    return this.table.of(tenantId);
  }

  /** The tenant's pending requests in one direction. */
  pending(tenantId: string, direction: ChannelDirection): ChannelRecord[] {
    const now = this.d.clock.nowMs();
    return this.table.of(tenantId).filter((c) => {
      if (channelState(c, now) !== 'PENDING') return false;
      if (direction === 'incoming') return c.peerId === tenantId;
      if (direction === 'outgoing') return c.requesterId === tenantId;
      return true;
    });
  }

  /** A channel's state now (its record holds only what was decided). */
  stateOf(c: ChannelRecord): ChannelState {
    return channelState(c, this.d.clock.nowMs());
  }

  /** A firewall refusal is a security event: its audit record is durable before the reply. */
  async auditRefusal(p: Actor, action: string, err: unknown): Promise<void> {
    if (!(err instanceof KernelError) || !FIREWALL_CODES.has(err.code)) return;
    const event = auditEvent(p, action, 'firewall', { code: err.code, message: err.message });
    await this.d.durability.commitOrUndo(
      () => {},
      [],
      [{ ...event, outcome: `denied:${err.code}` }],
    );
  }

  /**
   * The entanglement firewall for one join: when the clusters of `qubits` are more than one and
   * hold qubits of two or more tenants, the channel (one per pair of tenants) whose use the join
   * takes. `taken` counts uses already decided in the same call. Changes nothing.
   * @throws FIREWALL_NO_CHANNEL, CHANNEL_NOT_APPROVED, CHANNEL_EXPIRED, CHANNEL_REVOKED,
   *   CHANNEL_EXHAUSTED
   */
  decideJoin(
    qubits: readonly string[],
    preferred: ReadonlySet<string>,
    taken: Map<string, number>,
  ): ChannelRecord[] {
    const parts = this.d.graph.partsFor(qubits);
    if (parts.length < 2) return [];
    const tenants = new Set<string>();
    for (const part of parts)
      for (const q of part.qubits) tenants.add(this.d.table.qubit(q)!.tenantId);
    if (tenants.size < 2) return [];
    // The joined cluster counts against every tenant in it: the smallest cluster limit holds.
    const size = ClusterGraph.mergedSize(parts);
    for (const t of tenants) {
      const limit = Math.min(
        this.d.principals.quotaOf(this.d.principals.tenant(t)!).qubitsPerClusterMax,
        QUBITS_PER_CLUSTER_MAX,
      );
      if (size > limit) {
        throw new KernelError(
          'QUOTA_EXCEEDED',
          `qubits_per_cluster_max: the join would make a ${size}-qubit cluster > ${limit}, the limit of a tenant in it`,
          'qubits_per_cluster_max',
        );
      }
    }
    const chosen = this.table.decide([...tenants], preferred, this.d.clock.nowMs(), (id) =>
      this.d.principals.tenantName(id),
    );
    for (const ch of chosen) {
      const n = (taken.get(ch.id) ?? 0) + 1;
      if (ch.used + n > ch.maxUses) {
        throw new KernelError(
          'CHANNEL_EXHAUSTED',
          `firewall: channel ${ch.id} has ${ch.maxUses - ch.used} entanglement(s) left, this call needs ${n}`,
          'channel',
        );
      }
      taken.set(ch.id, n);
    }
    return chosen;
  }

  /** Takes one use of each channel a join was decided with; the records commit with the join. */
  takeUses(channels: readonly ChannelRecord[]): StoreRecord[] {
    return channels.map((ch) => {
      ch.used += 1;
      return { op: 'put', db: 'channels', key: ch.id, value: { ...ch } };
    });
  }

  /**
   * Asks `peerName` for a channel; the requester's approval is recorded and signed now.
   * @throws INVALID_ARGUMENT, NOT_FOUND (no such peer), QUOTA_EXCEEDED (channels per tenant)
   */
  async request(
    p: TenantPrincipal,
    peerName: string,
    maxUses: number,
    expiresAtMs: number,
    purpose: string,
  ): Promise<ChannelRecord> {
    await this.d.durability.waitForCheckpoint();
    this.d.durability.requireSpace();
    const tenant = this.d.principals.tenantOf(p);
    if (peerName === '') throw invalid('peer_tenant', 'is required');
    const peer = this.d.principals.tenantByName(peerName);
    if (!peer)
      throw new KernelError(
        'NOT_FOUND',
        `peer_tenant: no tenant ${quote(peerName)}`,
        'peer_tenant',
      );
    if (peer.id === tenant.id)
      throw invalid('peer_tenant', 'is the caller: a channel joins two tenants');
    const now = this.d.clock.nowMs();
    checkChannelTerms(maxUses, expiresAtMs, purpose, now);
    if (
      this.table.pendingFromTo(tenant.id, peer.id, now) >= CHANNEL_REQUESTS_PENDING_PER_PEER_MAX
    ) {
      throw new KernelError(
        'QUOTA_EXCEEDED',
        `channels: ${CHANNEL_REQUESTS_PENDING_PER_PEER_MAX} requests to this peer are pending already; wait for its answer or their expiry`,
        'channels',
      );
    }
    if (this.table.heldCountOf(tenant.id, now) >= CHANNELS_PER_TENANT_MAX) {
      throw new KernelError(
        'QUOTA_EXCEEDED',
        `channels: you hold ${CHANNELS_PER_TENANT_MAX} live channels (active, or requested and pending) already`,
        'channels',
      );
    }
    if (this.table.incomingCountOf(peer.id, now) >= CHANNEL_REQUESTS_INCOMING_MAX) {
      throw new KernelError(
        'QUOTA_EXCEEDED',
        `channels: the peer has ${CHANNEL_REQUESTS_INCOMING_MAX} requests waiting for its answer already`,
        'channels',
      );
    }
    const c: ChannelRecord = {
      id: this.d.crypto.id(),
      requesterId: tenant.id,
      peerId: peer.id,
      maxUses,
      used: 0,
      expiresAtMs,
      purpose,
      status: 'pending',
      approvals: [],
      createdAtMs: now,
      endedBy: '',
      endedAtMs: 0,
      endReason: '',
    };
    c.approvals.push(this.signApproval(c, tenant.id, now));
    this.table.put(c);
    await this.d.durability.commitOrUndo(
      () => this.table.remove(c.id),
      [this.record(c)],
      [
        auditEvent(
          p,
          'RequestChannel',
          c.id,
          { peer: peer.id, max_entanglements: maxUses, expires_at: expiresAtMs },
          [p.tenantId, peer.id],
        ),
      ],
    );
    return c;
  }

  /**
   * Deletes ended channels whose retention (`CHANNEL_RETENTION_MS`) is over, each with an audit
   * record; run periodically. Returns how many went.
   */
  async sweepRetired(): Promise<number> {
    await this.d.durability.waitForCheckpoint();
    const gone = this.table.expired(this.d.clock.nowMs());
    if (gone.length === 0) return 0;
    for (const c of gone) this.table.remove(c.id);
    await this.d.durability.commitOrUndo(
      () => {
        for (const c of gone) this.table.put(c);
      },
      gone.map((c) => ({ op: 'del', db: 'channels', key: c.id }) as const),
      gone.map((c) =>
        auditEvent('kernel', 'RetireChannel', c.id, { reason: 'retention over' }, parties(c)),
      ),
    );
    return gone.length;
  }

  /**
   * The peer approves (signed) or rejects a pending request.
   * @throws NOT_FOUND, CHANNEL_WRONG_TENANTS (the requester itself), CHANNEL_NOT_PENDING,
   *   INVALID_ARGUMENT
   */
  async respond(
    p: TenantPrincipal,
    id: string,
    approve: boolean,
    reason: string,
  ): Promise<ChannelRecord> {
    await this.d.durability.waitForCheckpoint();
    const c = this.table.visible(p.tenantId, id, 'channel_id');
    if (c.peerId !== p.tenantId) {
      throw new KernelError(
        'CHANNEL_WRONG_TENANTS',
        'channel_id: only the tenant a request is addressed to can approve or reject it',
        'channel_id',
      );
    }
    const now = this.d.clock.nowMs();
    const state = channelState(c, now);
    if (state !== 'PENDING') {
      throw new KernelError(
        'CHANNEL_NOT_PENDING',
        `channel_id: the request is ${state.toLowerCase()}, not pending`,
        'channel_id',
      );
    }
    checkText('reason', reason);
    if (approve && this.table.heldCountOf(p.tenantId, now) >= CHANNELS_PER_TENANT_MAX) {
      throw new KernelError(
        'QUOTA_EXCEEDED',
        `channels: you hold ${CHANNELS_PER_TENANT_MAX} live channels (active, or requested and pending) already; revoke one to approve another`,
        'channels',
      );
    }
    const before = endedFields(c);
    if (approve) {
      c.status = 'approved';
      c.approvals.push(this.signApproval(c, p.tenantId, now));
    } else {
      c.status = 'rejected';
      c.endedBy = p.tenantId;
      c.endedAtMs = now;
      c.endReason = reason;
    }
    await this.d.durability.commitOrUndo(
      () => Object.assign(c, before),
      [this.record(c)],
      [
        auditEvent(
          p,
          approve ? 'ApproveChannel' : 'RejectChannel',
          c.id,
          reason ? { reason } : undefined,
          parties(c),
        ),
      ],
    );
    return c;
  }

  /**
   * Either side ends a pending or approved channel; no join may use it afterwards.
   * @throws NOT_FOUND, CHANNEL_NOT_PENDING (already rejected or revoked), INVALID_ARGUMENT
   */
  async revoke(p: TenantPrincipal, id: string, reason: string): Promise<ChannelRecord> {
    await this.d.durability.waitForCheckpoint();
    const c = this.table.visible(p.tenantId, id, 'channel_id');
    if (c.status === 'rejected' || c.status === 'revoked') {
      throw new KernelError(
        'CHANNEL_NOT_PENDING',
        `channel_id: the channel is already ${c.status}`,
        'channel_id',
      );
    }
    checkText('reason', reason);
    const before = endedFields(c);
    c.status = 'revoked';
    c.endedBy = p.tenantId;
    c.endedAtMs = this.d.clock.nowMs();
    c.endReason = reason;
    await this.d.durability.commitOrUndo(
      () => Object.assign(c, before),
      [this.record(c)],
      [auditEvent(p, 'RevokeChannel', c.id, reason ? { reason } : undefined, parties(c))],
    );
    return c;
  }

  /**
   * A handle to one of the caller's qubits for the channel's peer: RIGHT_LINK only, expiring with
   * the channel (or the qubit's session, if sooner).
   * @throws NOT_FOUND, handle errors, the channel's state as a firewall code
   */
  async share(
    p: TenantPrincipal,
    id: string,
    qubitHandle: string,
  ): Promise<{ handle: string; expiresAtMs: number }> {
    await this.d.durability.waitForCheckpoint();
    const c = this.table.visible(p.tenantId, id, 'channel_id');
    const claims = this.d.handles.verify(p, qubitHandle, 'qubit_handle', 'VQ', RIGHTS.RIGHT_LINK);
    const state = channelState(c, this.d.clock.nowMs());
    if (state !== 'ACTIVE') {
      const code =
        state === 'REVOKED'
          ? 'CHANNEL_REVOKED'
          : state === 'EXPIRED'
            ? 'CHANNEL_EXPIRED'
            : state === 'EXHAUSTED'
              ? 'CHANNEL_EXHAUSTED'
              : 'CHANNEL_NOT_APPROVED';
      throw new KernelError(
        code,
        `channel_id: the channel is ${state.toLowerCase()}; only an active channel shares qubits`,
        'channel_id',
      );
    }
    const holder = c.requesterId === p.tenantId ? c.peerId : c.requesterId;
    const session = this.d.table.session(claims.sessionId)!;
    const expiresAtMs = Math.min(c.expiresAtMs, session.expiresAtMs);
    const handle = this.d.handles.issue(
      'SHARED_VQ',
      claims.resourceId,
      holder,
      c.id,
      RIGHTS.RIGHT_LINK,
      expiresAtMs,
    );
    await this.d.durability.commitOrUndo(
      () => {},
      [],
      [auditEvent(p, 'ShareQubit', claims.resourceId, { channel: c.id, with: holder }, parties(c))],
    );
    return { handle, expiresAtMs };
  }

  private signApproval(c: ChannelRecord, tenantId: string, atMs: number) {
    const payload = approvalPayload(c, tenantId, atMs);
    const signature = this.d.signer.sign(Buffer.from(payload, 'utf8'));
    return {
      tenantId,
      atMs,
      keyId: this.d.signer.activeKeyId(),
      signature: Buffer.from(signature).toString('base64'),
      payload,
    };
  }

  record(c: ChannelRecord): StoreRecord {
    return { op: 'put', db: 'channels', key: c.id, value: { ...c, approvals: [...c.approvals] } };
  }

  /**
   * Rule 9's view of the firewall, for the job verifier: the channel per pair of tenants that a
   * join of clusters holding qubits of `tenants` would use now, with its uses left. Changes nothing.
   * @throws the firewall's refusal (FIREWALL_NO_CHANNEL, CHANNEL_NOT_APPROVED, …)
   */
  decision(
    tenants: readonly string[],
    preferred: ReadonlySet<string>,
  ): { id: string; usesLeft: number }[] {
    return this.table
      .decide(tenants, preferred, this.d.clock.nowMs(), (id) => this.d.principals.tenantName(id))
      .map((c) => ({ id: c.id, usesLeft: c.maxUses - c.used }));
  }

  /**
   * What rule 9 may consult for a program whose qubits belong to `tenantIds`: the channels
   * between any two of them and their names, as of now (a program's check runs on its own thread).
   */
  snapshot(tenantIds: readonly string[]): FirewallSnapshot {
    const ids = new Set(tenantIds);
    const channels = new Map<string, ChannelRecord>();
    if (ids.size > 1) {
      for (const t of ids) {
        for (const c of this.table.of(t)) {
          if (ids.has(c.requesterId) && ids.has(c.peerId)) channels.set(c.id, c);
        }
      }
    }
    const names: Record<string, string> = {};
    for (const t of ids) names[t] = this.d.principals.tenantName(t);
    return { nowMs: this.d.clock.nowMs(), channels: [...channels.values()], names };
  }

  /** The tenant whose qubit a shared handle (held by `claims.tenantId`) names. */
  sharedOwner(claims: HandleClaims): string {
    assert(claims.kind === 'SHARED_VQ', 'a shared handle');
    return this.d.table.qubit(claims.resourceId)!.tenantId;
  }
}

/**
 * The fields a response or revocation changes, to put back when its write fails. `used` is not
 * among them: joins decided meanwhile keep their own count.
 */
function endedFields(c: ChannelRecord): Partial<ChannelRecord> {
  const { status, approvals, endedBy, endedAtMs, endReason } = c;
  return { status, approvals: [...approvals], endedBy, endedAtMs, endReason };
}

/** Both tenants of a channel: each sees its records in its view of the audit log. */
function parties(c: ChannelRecord): string[] {
  return [c.requesterId, c.peerId];
}
