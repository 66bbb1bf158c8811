/**
 * Sessions and virtual qubits: opening and closing sessions (and sweeping expired ones),
 * allocating and releasing qubits, and what a tenant holds (usage, state bytes). Layer: kernel.
 * Decides with the session table, the cluster graph and the tenant's quota; every change commits
 * through `Durability` with its audit record before the call is answered.
 */
import assert from 'node:assert';
import { type Actor, auditEvent, poolOwner } from './actors.js';
import type { ClusterGraph } from './clusters.js';
import type { Durability } from './durability.js';
import { KernelError, invalid, quote, requireCount } from './errors.js';
import type { HandleAuthority } from './handle-authority.js';
import { RIGHTS, SESSION_RIGHTS_ALL, VQ_RIGHTS_ALL } from './handles.js';
import {
  HANDLES_PER_RELEASE_MAX,
  QUBITS_PER_ALLOCATION_MAX,
  TIER_DEFAULTS,
  stateBytes,
} from './limits.js';
import { CAPS, type Qubit, type Session } from './model.js';
import type { ClockPort, CryptoPort, OplogEntry, SimulatorPort, StoreRecord } from './ports.js';
import type { Principals, TenantPrincipal } from './principals.js';
import { type SessionTable, requireCap } from './session-table.js';

const PROFILE_PATTERN =
  /^logical:(surface|surface_code|shyps|bacon_shor|qldpc)\(d=\d{1,3}(,k=\d{1,4})?(,rate=[0-9.]+)?\)$/i;

export interface Usage {
  qubitsLive: number;
  stateBytes: number;
  sessionsOpen: number;
  clusters: number;
}

/** What the session unit works with (the kernel wires them). */
export interface SessionDeps {
  clock: ClockPort;
  crypto: CryptoPort;
  sim: SimulatorPort;
  principals: Principals;
  handles: HandleAuthority;
  durability: Durability;
  table: SessionTable;
  graph: ClusterGraph;
}

export class Sessions {
  constructor(private readonly d: SessionDeps) {}

  /** @throws INVALID_ARGUMENT, QUOTA_EXCEEDED */
  async open(
    p: TenantPrincipal,
    requestedCaps: readonly string[],
    ttlSeconds: number,
  ): Promise<{ session: Session; handle: string }> {
    await this.d.durability.waitForCheckpoint();
    this.d.durability.requireSpace();
    const tenant = this.d.principals.tenantOf(p);
    const quota = this.d.principals.quotaOf(tenant);
    const tierCaps = TIER_DEFAULTS[tenant.tier].caps;
    requestedCaps.forEach((c, i) => {
      if (!(CAPS as readonly string[]).includes(c)) {
        throw invalid(`requested_caps[${i}]`, `unknown cap ${c}`);
      }
    });
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 0) {
      throw invalid('ttl_seconds', 'must be a non-negative integer');
    }
    const open = this.d.table.sessionCountOf(tenant.id);
    if (open + 1 > quota.sessionsMax) {
      throw new KernelError(
        'QUOTA_EXCEEDED',
        `sessions_max: ${open} of ${quota.sessionsMax} sessions open`,
        'sessions_max',
      );
    }
    const caps =
      requestedCaps.length === 0
        ? [...tierCaps]
        : tierCaps.filter((c) => requestedCaps.includes(c));
    const ttl = Math.min(
      ttlSeconds === 0 ? quota.sessionTtlSecondsMax : ttlSeconds,
      quota.sessionTtlSecondsMax,
    );
    const now = this.d.clock.nowMs();
    const session: Session = {
      id: this.d.crypto.id(),
      tenantId: tenant.id,
      caps,
      createdAtMs: now,
      expiresAtMs: now + ttl * 1000,
    };
    this.d.table.addSession(session);
    await this.d.durability.commitOrUndo(
      () => this.d.table.removeSession(session),
      [{ op: 'put', db: 'sessions', key: session.id, value: session }],
      [auditEvent(p, 'OpenSession', session.id, { caps, ttl })],
    );
    const handle = this.d.handles.issue(
      'SESSION',
      session.id,
      tenant.id,
      session.id,
      SESSION_RIGHTS_ALL,
      session.expiresAtMs,
    );
    return { session, handle };
  }

  /** @throws handle errors, RIGHTS_INSUFFICIENT */
  async close(p: TenantPrincipal, handle: string): Promise<number> {
    await this.d.durability.waitForCheckpoint();
    const c = this.d.handles.verify(p, handle, 'session_handle', 'SESSION', RIGHTS.RIGHT_CLOSE);
    const session = this.d.table.session(c.sessionId);
    assert(session);
    return this.invokeClose(session, p, 'CloseSession');
  }

  /** Closes a session: releases its qubits, deletes it. Used by CloseSession, sweeps, deletion. */
  async invokeClose(session: Session, actor: Actor, action: string): Promise<number> {
    const qubits = this.d.table.qubitIdsOfSession(session.id);
    const released = this.invokeRelease(
      qubits.map((id) => this.d.table.qubit(id)!),
      actor,
    );
    this.d.table.removeSession(session);
    // The session's own deletion is record-only: when it fails the session comes back (without
    // the qubits whose releases did commit, as in the store).
    const done = this.d.durability.commitOrUndo(
      () => this.d.table.addSession(session),
      [{ op: 'del', db: 'sessions', key: session.id }],
      [
        auditEvent(
          actor,
          action,
          session.id,
          { tenant: session.tenantId, qubits_released: qubits.length },
          [session.tenantId],
        ),
      ],
    );
    await Promise.all([released, done]);
    return qubits.length;
  }

  /** Closes every session past its expiry. Returns how many it closed. */
  async sweepExpired(): Promise<number> {
    await this.d.durability.waitForCheckpoint();
    const now = this.d.clock.nowMs();
    const expired = this.d.table.allSessions().filter((s) => now >= s.expiresAtMs);
    await Promise.all(expired.map((s) => this.invokeClose(s, 'kernel', 'SessionExpired')));
    return expired.length;
  }

  /** @throws handle errors, CAP_MISSING, INVALID_ARGUMENT, QUOTA_EXCEEDED, LIMIT_EXCEEDED */
  async allocate(
    p: TenantPrincipal,
    sessionHandle: string,
    count: number,
    profile: string,
  ): Promise<{ id: string; handle: string }[]> {
    await this.d.durability.waitForCheckpoint();
    this.d.durability.requireSpace();
    const c = this.d.handles.verify(
      p,
      sessionHandle,
      'session_handle',
      'SESSION',
      RIGHTS.RIGHT_ALLOC,
    );
    const session = this.d.table.session(c.sessionId)!;
    requireCap(session, 'CAP_ALLOC', 'session_handle');
    if (!Number.isInteger(count) || count < 1) throw invalid('count', 'must be at least 1');
    if (count > QUBITS_PER_ALLOCATION_MAX) {
      throw new KernelError(
        'LIMIT_EXCEEDED',
        `count: ${count} exceeds qubits_per_allocation_max ${QUBITS_PER_ALLOCATION_MAX}`,
        'count',
      );
    }
    if (profile !== '' && !PROFILE_PATTERN.test(profile)) {
      throw invalid('profile', `${quote(profile)} is not logical:<family>(d=<int>)`);
    }
    const tenant = this.d.principals.tenantOf(p);
    const quota = this.d.principals.quotaOf(tenant);
    const live = this.d.table.qubitCountOf(tenant.id);
    if (live + count > quota.qubitsLiveMax) {
      throw new KernelError(
        'QUOTA_EXCEEDED',
        `qubits_live_max: ${live} live + ${count} requested > ${quota.qubitsLiveMax}`,
        'qubits_live_max',
      );
    }
    const bytes = this.stateBytesOf(tenant.id) + count * stateBytes(1);
    if (bytes > quota.stateBytesMax) {
      throw new KernelError(
        'QUOTA_EXCEEDED',
        `state_bytes_max: ${bytes} bytes > ${quota.stateBytesMax}`,
        'state_bytes_max',
      );
    }
    this.d.principals.takeRate(p, 'allocations', count);
    // Invoke: nothing below can fail except by assertion.
    const now = this.d.clock.nowMs();
    const records: StoreRecord[] = [];
    const oplog: OplogEntry[] = [];
    const out: { id: string; handle: string }[] = [];
    for (let i = 0; i < count; i++) {
      const q: Qubit = {
        id: this.d.crypto.id(),
        tenantId: tenant.id,
        sessionId: session.id,
        profile,
        fresh: true,
        createdAtMs: now,
      };
      this.d.table.addQubit(q);
      const cluster = this.d.graph.planCreate(q.id);
      this.d.graph.add(cluster);
      this.d.sim.create(cluster);
      records.push({ op: 'put', db: 'qubits', key: q.id, value: q });
      oplog.push({ kind: 'create', cluster, owner: tenant.id });
      const handle = this.d.handles.issue(
        'VQ',
        q.id,
        tenant.id,
        session.id,
        VQ_RIGHTS_ALL,
        session.expiresAtMs,
      );
      out.push({ id: q.id, handle });
    }
    await this.d.durability.commitEffects(
      records,
      [auditEvent(p, 'AllocateQubits', session.id, { count, qubits: out.map((x) => x.id) })],
      oplog,
    );
    return out;
  }

  /** @throws handle errors, INVALID_ARGUMENT, LIMIT_EXCEEDED */
  async release(p: TenantPrincipal, handles: readonly string[]): Promise<number> {
    await this.d.durability.waitForCheckpoint();
    requireCount('qubit_handles', 'handle', handles.length, HANDLES_PER_RELEASE_MAX);
    const ids = new Set<string>();
    handles.forEach((h, i) => {
      const c = this.d.handles.verify(p, h, `qubit_handles[${i}]`, 'VQ', RIGHTS.RIGHT_RELEASE);
      if (ids.has(c.resourceId)) throw invalid(`qubit_handles[${i}]`, 'qubit named twice');
      ids.add(c.resourceId);
    });
    const qubits = [...ids].map((id) => this.d.table.qubit(id)!);
    await this.invokeRelease(qubits, p);
    return qubits.length;
  }

  /**
   * Releases qubits: an entangled qubit is first measured out (release = measure and discard),
   * then its 1-qubit cluster is dropped. Each qubit's record deletion commits with its op-log
   * entries and its audit record, in one transaction.
   */
  private invokeRelease(qubits: Qubit[], actor: Actor): Promise<void> {
    const pending: Promise<void>[] = [];
    for (const q of qubits) {
      this.d.table.removeQubit(q);
      const del: StoreRecord = { op: 'del', db: 'qubits', key: q.id };
      const event = [
        auditEvent(actor, 'ReleaseQubit', q.id, { session: q.sessionId }, [q.tenantId]),
      ];
      const cluster = this.d.graph.clusterOf(q.id);
      if (cluster.qubits.length === 1) {
        this.d.graph.remove(cluster.id);
        this.d.sim.drop(cluster.id);
        pending.push(
          this.d.durability.commitEffects([del], event, [
            { kind: 'drop', clusterId: cluster.id, owner: q.tenantId },
          ]),
        );
        continue;
      }
      const plan = this.d.graph.plan(
        [{ kind: 'measure', qubit: q.id, basis: 'Z', random: this.d.crypto.unit() }],
        [q.id],
      );
      this.d.graph.apply(plan);
      const own = plan.results[plan.results.length - 1]!;
      assert(own.qubits.length === 1 && own.qubits[0] === q.id);
      this.d.graph.remove(own.id);
      pending.push(
        this.d.durability.executeOrDiverge(
          plan,
          (outcomes) =>
            this.d.durability.commitEffects([del], event, [
              { kind: 'exec', plan, outcomes, owner: q.tenantId },
              { kind: 'drop', clusterId: own.id, owner: q.tenantId },
            ]),
          poolOwner(this.d.principals, actor),
        ),
      );
      this.d.sim.drop(own.id);
    }
    return Promise.all(pending).then(() => undefined);
  }

  stateBytesOf(tenantId: string): number {
    const seen = new Set<number>();
    let bytes = 0;
    for (const q of this.d.table.qubitIdsOfTenant(tenantId)) {
      const c = this.d.graph.clusterOf(q);
      if (!seen.has(c.id)) {
        seen.add(c.id);
        bytes += stateBytes(c.qubits.length);
      }
    }
    return bytes;
  }

  usageOf(tenantId: string): Usage {
    const qubits = this.d.table.qubitIdsOfTenant(tenantId);
    const clusters = new Set([...qubits].map((q) => this.d.graph.clusterOf(q).id));
    return {
      qubitsLive: qubits.size,
      stateBytes: this.stateBytesOf(tenantId),
      sessionsOpen: this.d.table.sessionCountOf(tenantId),
      clusters: clusters.size,
    };
  }
}
