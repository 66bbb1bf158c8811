/**
 * The kernel: authenticates principals, verifies handles, and decides and invokes every tenant
 * operation on sessions and persistent qubits. Layer: kernel; it talks to the outside only through
 * ports (store, signer, simulator, clock, crypto) and imports nothing from api/, store/, sim/.
 *
 * Each operation is a decode/invoke pair (seL4 style): `decode*` checks everything and changes
 * nothing (it throws KernelError); `invoke*` changes state and cannot fail except by assertion.
 * Decisions happen synchronously on the main thread in one order, which is the kernel's
 * serialisation: two calls cannot both take the last unit of a quota. Arithmetic happens later in
 * the simulator; each plan's op-log entry and audit record commit in one transaction, and a reply
 * goes out only once that transaction is durable.
 */
import assert from 'node:assert';
import { reportBug } from '../util/bugs.js';
import {
  CHANNELS_PER_TENANT_MAX,
  type ChannelRecord,
  ChannelTable,
  approvalPayload,
  channelState,
  checkChannelTerms,
  checkText,
  refusal,
} from './channels.js';
import { ClusterGraph } from './clusters.js';
import { KernelError, invalid } from './errors.js';
import { GATE_SET, isBasis, isGateName } from './gate-set.js';
import {
  type HandleClaims,
  type HandleKind,
  RIGHTS,
  type RightName,
  SESSION_RIGHTS_ALL,
  VQ_RIGHTS_ALL,
  decodeHandle,
  encodeClaims,
  encodeHandle,
} from './handles.js';
import {
  HANDLES_PER_RELEASE_MAX,
  MEASUREMENTS_PER_CALL_MAX,
  QUBITS_PER_ALLOCATION_MAX,
  QUBITS_PER_CLUSTER_MAX,
  TIER_DEFAULTS,
  effectiveQuota,
  stateBytes,
} from './limits.js';
import {
  CAPS,
  type Cap,
  type Credential,
  type Principal,
  type Qubit,
  type Quota,
  type Session,
  type Tenant,
} from './model.js';
import type {
  AuditEvent,
  BoundJobRun,
  ClockPort,
  CryptoPort,
  ExecPlan,
  JobRunResult,
  LoadedState,
  OplogEntry,
  PoolOwner,
  SignerPort,
  SimOp,
  SimulatorPort,
  StorePort,
  StoreRecord,
} from './ports.js';
import { type RateKind, RateLimiter } from './rates.js';

export interface KernelPorts {
  store: StorePort;
  signer: SignerPort;
  sim: SimulatorPort;
  clock: ClockPort;
  crypto: CryptoPort;
}

export type TenantPrincipal = Extract<Principal, { kind: 'tenant' }>;
/** Who an audit record names: a principal, or the kernel itself (sweeps, checkpoints). */
export type Actor = Principal | 'kernel';

export interface GateRequest {
  kind: string;
  qubits: string[];
  theta: number;
}

export interface MeasureRequest {
  qubit: string;
  basis: string;
  angle: number;
}

export interface Usage {
  qubitsLive: number;
  stateBytes: number;
  sessionsOpen: number;
  clusters: number;
}

const API_KEY_PATTERN = /^qmk_[A-Za-z0-9_-]{43}$/;
const PROFILE_PATTERN =
  /^logical:(surface|surface_code|shyps|bacon_shor|qldpc)\(d=\d{1,3}(,k=\d{1,4})?(,rate=[0-9.]+)?\)$/i;
/** Verified-signature cache entries; a hit still checks key state, expiry and the resource. */
const HANDLE_CACHE_ENTRIES_MAX = 65_536;

export class Kernel {
  readonly tenants = new Map<string, Tenant>();
  readonly tenantsByName = new Map<string, Tenant>();
  readonly credentials = new Map<string, Credential>(); // by key id
  private readonly credentialsByHash = new Map<string, Credential>();
  readonly sessions = new Map<string, Session>();
  readonly qubits = new Map<string, Qubit>();
  private readonly qubitsBySession = new Map<string, Set<string>>();
  private readonly qubitsByTenant = new Map<string, Set<string>>();
  private readonly sessionsByTenant = new Map<string, Set<string>>();
  readonly graph: ClusterGraph;
  readonly channels: ChannelTable;
  private readonly rates = new RateLimiter();
  private readonly callsInFlight = new Map<string, number>();
  private readonly handleCache = new Map<string, HandleClaims>();
  /** While set, mutating operations wait before deciding (a checkpoint is being taken). */
  private gate: Promise<void> | null = null;
  /** The failed write that left memory ahead of the store, if any (see `commitEffects`). */
  private divergedBy: Error | null = null;
  /** Told once when memory diverges from the store; main restarts the daemon. */
  onDiverged: (err: Error) => void = () => {};
  /**
   * Takes a checkpoint (main wires the real one): afterwards no op-log entry precedes it, so a
   * deleted tenant's data key can be destroyed without breaking replay.
   */
  checkpointNow: () => Promise<void> = async () => {};

  constructor(
    readonly ports: KernelPorts,
    loaded?: LoadedState,
  ) {
    this.graph = new ClusterGraph(loaded?.nextClusterId ?? 1);
    this.channels = new ChannelTable(loaded?.channels ?? []);
    if (loaded) this.load(loaded);
  }

  // ---------------------------------------------------------------- loading and replay

  private load(s: LoadedState): void {
    for (const t of s.tenants) this.putTenant(t);
    for (const c of s.credentials) this.putCredential(c);
    for (const x of s.sessions) this.indexSession(x);
    for (const q of s.qubits) this.indexQubit(q);
  }

  /**
   * Rebuilds cluster state: restores the checkpoint, then replays the op log in order with the
   * recorded outcomes forced, so the state is bit-exact. Resolves when the simulator is idle.
   */
  async replay(s: LoadedState): Promise<number> {
    for (const { cluster, state } of s.checkpoint.clusters) {
      this.graph.add(cluster);
      this.ports.sim.restore(cluster, state);
    }
    for (const { entry } of s.oplog) this.replayEntry(entry);
    await this.ports.sim.idle();
    return s.oplog.length;
  }

  private replayEntry(e: OplogEntry): void {
    if (e.kind === 'create') {
      this.graph.add(e.cluster);
      this.ports.sim.create(e.cluster);
    } else if (e.kind === 'drop') {
      this.graph.remove(e.clusterId);
      this.ports.sim.drop(e.clusterId);
    } else {
      let k = 0;
      const ops: SimOp[] = e.plan.ops.map((op) => {
        const measures = op.kind === 'measure' || op.name === 'RESET';
        if (!measures) return op;
        const forced = e.outcomes[k++];
        assert(forced === 0 || forced === 1, 'op log outcome missing');
        const { random: _r, ...rest } = op;
        return { ...rest, forced };
      });
      const plan: ExecPlan = { ...e.plan, ops };
      this.graph.apply(plan);
      this.background(this.ports.sim.execute(plan, async () => {}));
    }
  }

  /**
   * Runs `fn` with no plan in flight and no new decision taken: mutating calls wait at the gate.
   * Used to take a consistent checkpoint of all cluster states.
   */
  async quiesce<T>(fn: () => Promise<T>): Promise<T> {
    while (this.gate) await this.gate;
    let open!: () => void;
    this.gate = new Promise((r) => {
      open = r;
    });
    try {
      await this.ports.sim.idle();
      return await fn();
    } finally {
      this.gate = null;
      open();
    }
  }

  async pass(): Promise<void> {
    while (this.gate) await this.gate;
    if (this.divergedBy) {
      throw new KernelError(
        'STORAGE_FAILED',
        `storage: memory is ahead of the acknowledged state after a failure (${this.divergedBy.message}); ` +
          'the daemon is restarting to reload the acknowledged state',
        'storage',
      );
    }
  }

  // ---------------------------------------------------------------- commits

  /**
   * Commits a change already made in memory that can be taken back: when the write fails, `undo`
   * restores memory, so a refused call leaves nothing behind (no phantom session, channel or
   * key, no quota counted). The error (STORAGE_FULL or STORAGE_FAILED) goes to the caller.
   */
  async commitOrUndo(undo: () => void, records: StoreRecord[], audit: AuditEvent[]): Promise<void> {
    try {
      await this.ports.store.commit(records, audit);
    } catch (err) {
      undo();
      throw err;
    }
  }

  /**
   * Commits a change whose memory effect cannot be taken back: simulator state (op-log entries)
   * and job transitions. When the write fails, memory is ahead of the store; the kernel refuses
   * every further decision and tells `onDiverged`, whose owner restarts the daemon so that replay
   * rebuilds exactly the acknowledged state. Nothing unacknowledged survives the restart.
   */
  async commitEffects(
    records: StoreRecord[],
    audit: AuditEvent[],
    oplog: OplogEntry[] = [],
  ): Promise<void> {
    try {
      await this.ports.store.commit(records, audit, oplog);
    } catch (err) {
      this.markDiverged(err);
      throw err;
    }
  }

  /**
   * Owns a promise no caller awaits, so none is left detached: a KernelError there is a failed
   * write the kernel already handled (`commitEffects` diverged: the daemon restarts; a refusal's
   * audit record that could not be written is lost with the refusal already answered), and
   * anything else is a programmer error, reported as a bug.
   */
  background(p: Promise<unknown>): void {
    p.catch((err: unknown) => {
      if (!(err instanceof KernelError)) reportBug(err);
    });
  }

  /**
   * Refuses work that grows the state while the store's disk is below the operator's free-space
   * watermark, so the disk never fills through tenant work: releases, closes, cancellations,
   * reads and the operator API (which free or only touch state) still pass.
   * @throws STORAGE_FULL
   */
  requireSpace(): void {
    const low = this.ports.store.lowSpace();
    if (low === null) return;
    throw new KernelError(
      'STORAGE_FULL',
      `storage_free_min_bytes: ${low.freeBytes} bytes free on the state disk, below the ` +
        `watermark of ${low.minBytes}; new work is refused until space is freed`,
      'storage_free_min_bytes',
    );
  }

  /**
   * Runs a plan on the simulator. A plan that fails in the simulator (its worker thread died:
   * a native abort, out of memory) may have left its clusters' shared state half-written, and the
   * graph has already moved on: memory is no longer the acknowledged state, so the kernel diverges
   * (see `commitEffects`) and the caller gets INTERNAL with the reason.
   */
  private executeOrDiverge(
    plan: ExecPlan,
    onDone: (outcomes: (0 | 1)[], run?: JobRunResult) => Promise<void>,
    owner?: PoolOwner,
  ): Promise<void> {
    return this.ports.sim.execute(plan, onDone, owner).catch((err: unknown) => {
      if (err instanceof KernelError) throw err; // a failed commit: already handled there
      this.markDiverged(err);
      throw new KernelError(
        'INTERNAL',
        `simulation: the worker running this operation failed (${err instanceof Error ? err.message : String(err)}); ` +
          'the daemon restarts to reload the acknowledged state',
      );
    });
  }

  markDiverged(err: unknown): void {
    if (this.divergedBy) return;
    this.divergedBy = err instanceof Error ? err : new Error(String(err));
    this.onDiverged(this.divergedBy);
  }

  get diverged(): boolean {
    return this.divergedBy !== null;
  }

  /**
   * Whose data key seals a cluster's snapshot: the tenant owning all its qubits, or the kernel
   * ('') for a cluster joined across tenants through a channel.
   */
  ownerOfCluster(qubitIds: readonly string[]): string {
    const owners = new Set(qubitIds.map((id) => this.qubits.get(id)?.tenantId ?? ''));
    return owners.size === 1 ? [...owners][0]! : '';
  }

  /** Qubits whose cluster is missing after replay would be a store bug: assert, don't guess. */
  checkConsistency(): void {
    for (const q of this.qubits.keys()) assert(this.graph.has(q), `qubit ${q} has no cluster`);
  }

  // ---------------------------------------------------------------- indexes

  putTenant(t: Tenant): void {
    const old = this.tenants.get(t.id);
    if (old) this.tenantsByName.delete(old.name);
    this.tenants.set(t.id, t);
    this.tenantsByName.set(t.name, t);
  }

  dropTenantIndex(t: Tenant): void {
    this.tenants.delete(t.id);
    this.tenantsByName.delete(t.name);
  }

  putCredential(c: Credential): void {
    this.credentials.set(c.keyId, c);
    this.credentialsByHash.set(c.secretHash, c);
  }

  dropCredential(c: Credential): void {
    this.credentials.delete(c.keyId);
    this.credentialsByHash.delete(c.secretHash);
  }

  private indexSession(s: Session): void {
    this.sessions.set(s.id, s);
    setOf(this.sessionsByTenant, s.tenantId).add(s.id);
    setOf(this.qubitsBySession, s.id);
  }

  private unindexSession(s: Session): void {
    this.sessions.delete(s.id);
    this.sessionsByTenant.get(s.tenantId)?.delete(s.id);
    this.qubitsBySession.delete(s.id);
  }

  private indexQubit(q: Qubit): void {
    this.qubits.set(q.id, q);
    setOf(this.qubitsBySession, q.sessionId).add(q.id);
    setOf(this.qubitsByTenant, q.tenantId).add(q.id);
  }

  private unindexQubit(q: Qubit): void {
    this.qubits.delete(q.id);
    this.qubitsBySession.get(q.sessionId)?.delete(q.id);
    this.qubitsByTenant.get(q.tenantId)?.delete(q.id);
  }

  sessionIdsOf(tenantId: string): string[] {
    return [...(this.sessionsByTenant.get(tenantId) ?? [])];
  }

  // ---------------------------------------------------------------- authentication

  /**
   * Turns a bearer API key into a principal.
   * @throws CREDENTIAL_MISSING, CREDENTIAL_INVALID, CREDENTIAL_REVOKED, TENANT_SUSPENDED
   */
  authenticate(apiKey: string | undefined): TenantPrincipal {
    if (apiKey === undefined || apiKey === '') {
      throw new KernelError('CREDENTIAL_MISSING', 'authorization: missing "Bearer <api key>"');
    }
    if (!API_KEY_PATTERN.test(apiKey)) {
      throw new KernelError('CREDENTIAL_INVALID', 'authorization: not an API key');
    }
    const cred = this.credentialsByHash.get(this.ports.crypto.sha256Hex(apiKey));
    if (!cred) throw new KernelError('CREDENTIAL_INVALID', 'authorization: unknown API key');
    if (cred.revoked) throw new KernelError('CREDENTIAL_REVOKED', 'authorization: key revoked');
    const tenant = this.tenants.get(cred.tenantId);
    if (!tenant) throw new KernelError('CREDENTIAL_INVALID', 'authorization: unknown API key');
    if (tenant.status === 'suspended') {
      throw new KernelError(
        'TENANT_SUSPENDED',
        `tenant suspended: ${tenant.suspendReason || 'no reason given'}`,
      );
    }
    return { kind: 'tenant', tenantId: tenant.id, keyId: cred.keyId, roles: cred.roles };
  }

  /**
   * Counts a tenant call in flight until the returned release (idempotent) is called; one past the
   * tenant's limit is refused at once, so a flooding tenant is turned away, not queued.
   * @throws QUOTA_EXCEEDED
   */
  enterCall(p: Principal): () => void {
    if (p.kind !== 'tenant') return () => {};
    const tenant = this.tenantOf(p);
    const n = this.callsInFlight.get(tenant.id) ?? 0;
    const limit = this.quotaOf(tenant).callsInFlightMax;
    if (n >= limit) {
      throw new KernelError(
        'QUOTA_EXCEEDED',
        `calls_in_flight_max: ${n} calls of this tenant in flight (limit ${limit})`,
        'calls_in_flight_max',
      );
    }
    this.callsInFlight.set(tenant.id, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.callsInFlight.get(tenant.id) ?? 1) - 1;
      if (left === 0) this.callsInFlight.delete(tenant.id);
      else this.callsInFlight.set(tenant.id, left);
    };
  }

  /** Every tenant call takes one token of its tenant's API-call rate. @throws QUOTA_EXCEEDED */
  admitCall(p: Principal): void {
    if (p.kind === 'tenant') this.takeRate(p, 'apiCalls', 1);
  }

  /** Takes `n` of the tenant's `kind` rate, or refuses with the retry delay. @throws QUOTA_EXCEEDED */
  takeRate(p: TenantPrincipal, kind: RateKind, n: number): void {
    const tenant = this.tenantOf(p);
    this.rates.take(tenant.id, kind, n, this.quotaOf(tenant), this.ports.clock.nowMs());
  }

  /** Refuses as `takeRate` would without taking (check first, take once decided). @throws QUOTA_EXCEEDED */
  checkRate(p: TenantPrincipal, kind: RateKind, n: number): void {
    const tenant = this.tenantOf(p);
    this.rates.check(tenant.id, kind, n, this.quotaOf(tenant), this.ports.clock.nowMs());
  }

  tenantOf(p: TenantPrincipal): Tenant {
    const t = this.tenants.get(p.tenantId);
    assert(t, 'authenticated tenant exists');
    return t;
  }

  quotaOf(t: Tenant): Quota {
    return effectiveQuota(t.tier, t.quotaOverrides);
  }

  // ---------------------------------------------------------------- handles

  issueHandle(
    kind: HandleKind,
    resourceId: string,
    tenantId: string,
    sessionId: string,
    rights: number,
    expiresAtMs: number,
  ): string {
    const claims: HandleClaims = {
      kind,
      resourceId,
      tenantId,
      sessionId,
      rights,
      issuedAtMs: this.ports.clock.nowMs(),
      expiresAtMs,
      keyId: this.ports.signer.activeKeyId(),
    };
    const payload = encodeClaims(claims);
    return encodeHandle(payload, this.ports.signer.sign(payload));
  }

  /**
   * Verifies a handle in full on every use: signature (cached), key known and not retired, not
   * expired, tenant = caller, kind, resource exists in that session, rights include `need`.
   * @throws HANDLE_INVALID, HANDLE_KEY_UNKNOWN, HANDLE_KEY_RETIRED, HANDLE_EXPIRED,
   *   HANDLE_WRONG_KIND, NOT_FOUND, SESSION_EXPIRED, RIGHTS_INSUFFICIENT, INVALID_ARGUMENT
   */
  verifyHandle(
    p: TenantPrincipal,
    text: string,
    field: string,
    kind: HandleKind | null,
    need: number,
  ): HandleClaims {
    let claims = this.handleCache.get(text);
    if (!claims) {
      const d = decodeHandle(text, field);
      const keyState = this.ports.signer.keyState(d.claims.keyId, this.ports.clock.nowMs());
      if (keyState === 'unknown-key') {
        throw new KernelError('HANDLE_KEY_UNKNOWN', `${field}: signed by an unknown key`, field);
      }
      if (!this.ports.signer.verify(d.claims.keyId, d.payload, d.signature)) {
        throw new KernelError('HANDLE_INVALID', `${field}: bad signature`, field);
      }
      claims = d.claims;
      if (this.handleCache.size >= HANDLE_CACHE_ENTRIES_MAX) this.handleCache.clear();
      this.handleCache.set(text, claims);
    }
    const now = this.ports.clock.nowMs();
    const keyState = this.ports.signer.keyState(claims.keyId, now);
    if (keyState === 'retired') {
      throw new KernelError('HANDLE_KEY_RETIRED', `${field}: signing key retired`, field);
    }
    if (keyState === 'unknown-key') {
      throw new KernelError('HANDLE_KEY_UNKNOWN', `${field}: signed by an unknown key`, field);
    }
    if (now >= claims.expiresAtMs) {
      throw new KernelError('HANDLE_EXPIRED', `${field}: handle expired`, field);
    }
    // Another tenant's handle is reported exactly like a missing resource: no existence leak.
    if (claims.tenantId !== p.tenantId) {
      throw new KernelError('NOT_FOUND', `${field}: no such resource`, field);
    }
    if (kind === 'VQ' && claims.kind === 'SHARED_VQ') {
      throw new KernelError(
        'RIGHTS_INSUFFICIENT',
        `${field}: a shared qubit handle allows only entangling gates, through its channel`,
        field,
      );
    }
    if (kind !== null && claims.kind !== kind) {
      throw new KernelError('HANDLE_WRONG_KIND', `${field}: expected a ${kind} handle`, field);
    }
    this.checkResource(claims, field);
    if ((claims.rights & need) !== need) {
      throw new KernelError('RIGHTS_INSUFFICIENT', `${field}: handle lacks the right`, field);
    }
    return claims;
  }

  private checkResource(c: HandleClaims, field: string): void {
    const missing = () => new KernelError('NOT_FOUND', `${field}: no such resource`, field);
    if (c.kind === 'SHARED_VQ') {
      // The channel still exists with the holder as a party, and the qubit is still the other
      // party's. Whether the channel may be used now is the firewall's decision, with its reason.
      const ch = this.channels.get(c.sessionId);
      if (!ch || (ch.requesterId !== c.tenantId && ch.peerId !== c.tenantId)) throw missing();
      const owner = ch.requesterId === c.tenantId ? ch.peerId : ch.requesterId;
      if (this.qubits.get(c.resourceId)?.tenantId !== owner) throw missing();
      return;
    }
    const session = this.sessions.get(c.sessionId);
    if (!session || session.tenantId !== c.tenantId) throw missing();
    if (c.kind === 'VQ') {
      const q = this.qubits.get(c.resourceId);
      if (!q || q.sessionId !== c.sessionId || q.tenantId !== c.tenantId) throw missing();
    } else if (c.kind === 'SESSION') {
      if (c.resourceId !== c.sessionId) throw missing();
    } else {
      throw missing();
    }
    if (this.ports.clock.nowMs() >= session.expiresAtMs) {
      throw new KernelError('SESSION_EXPIRED', `${field}: session expired`, field);
    }
  }

  private requireCap(session: Session, cap: Cap, field: string): void {
    if (!session.caps.includes(cap)) {
      throw new KernelError('CAP_MISSING', `${field}: session lacks ${cap}`, field);
    }
  }

  // ---------------------------------------------------------------- sessions

  /** @throws INVALID_ARGUMENT, QUOTA_EXCEEDED */
  async openSession(
    p: TenantPrincipal,
    requestedCaps: readonly string[],
    ttlSeconds: number,
  ): Promise<{ session: Session; handle: string }> {
    await this.pass();
    this.requireSpace();
    const tenant = this.tenantOf(p);
    const quota = this.quotaOf(tenant);
    const tierCaps = TIER_DEFAULTS[tenant.tier].caps;
    requestedCaps.forEach((c, i) => {
      if (!(CAPS as readonly string[]).includes(c)) {
        throw invalid(`requested_caps[${i}]`, `unknown cap ${c}`);
      }
    });
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 0) {
      throw invalid('ttl_seconds', 'must be a non-negative integer');
    }
    const open = this.sessionsByTenant.get(tenant.id)?.size ?? 0;
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
    const now = this.ports.clock.nowMs();
    const session: Session = {
      id: this.ports.crypto.id(),
      tenantId: tenant.id,
      caps,
      createdAtMs: now,
      expiresAtMs: now + ttl * 1000,
    };
    this.indexSession(session);
    await this.commitOrUndo(
      () => this.unindexSession(session),
      [{ op: 'put', db: 'sessions', key: session.id, value: session }],
      [this.audit(p, 'OpenSession', session.id, { caps, ttl })],
    );
    const handle = this.issueHandle(
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
  async closeSession(p: TenantPrincipal, handle: string): Promise<number> {
    await this.pass();
    const c = this.verifyHandle(p, handle, 'session_handle', 'SESSION', RIGHTS.RIGHT_CLOSE);
    const session = this.sessions.get(c.sessionId);
    assert(session);
    return this.invokeCloseSession(session, p, 'CloseSession');
  }

  /** Closes a session: releases its qubits, deletes it. Used by CloseSession, sweeps, deletion. */
  async invokeCloseSession(session: Session, actor: Actor, action: string): Promise<number> {
    const qubits = [...(this.qubitsBySession.get(session.id) ?? [])];
    const released = this.invokeRelease(
      qubits.map((id) => this.qubits.get(id)!),
      actor,
    );
    this.unindexSession(session);
    // The session's own deletion is record-only: when it fails the session comes back (without
    // the qubits whose releases did commit, as in the store).
    const done = this.commitOrUndo(
      () => this.indexSession(session),
      [{ op: 'del', db: 'sessions', key: session.id }],
      [
        this.audit(actor, action, session.id, {
          tenant: session.tenantId,
          qubits_released: qubits.length,
        }),
      ],
    );
    await Promise.all([released, done]);
    return qubits.length;
  }

  /** Closes every session past its expiry. Returns how many it closed. */
  async sweepExpiredSessions(): Promise<number> {
    await this.pass();
    const now = this.ports.clock.nowMs();
    const expired = [...this.sessions.values()].filter((s) => now >= s.expiresAtMs);
    await Promise.all(expired.map((s) => this.invokeCloseSession(s, 'kernel', 'SessionExpired')));
    return expired.length;
  }

  // ---------------------------------------------------------------- qubits

  /** @throws handle errors, CAP_MISSING, INVALID_ARGUMENT, QUOTA_EXCEEDED, LIMIT_EXCEEDED */
  async allocateQubits(
    p: TenantPrincipal,
    sessionHandle: string,
    count: number,
    profile: string,
  ): Promise<{ id: string; handle: string }[]> {
    await this.pass();
    this.requireSpace();
    const c = this.verifyHandle(p, sessionHandle, 'session_handle', 'SESSION', RIGHTS.RIGHT_ALLOC);
    const session = this.sessions.get(c.sessionId)!;
    this.requireCap(session, 'CAP_ALLOC', 'session_handle');
    if (!Number.isInteger(count) || count < 1) throw invalid('count', 'must be at least 1');
    if (count > QUBITS_PER_ALLOCATION_MAX) {
      throw new KernelError(
        'LIMIT_EXCEEDED',
        `count: ${count} exceeds qubits_per_allocation_max ${QUBITS_PER_ALLOCATION_MAX}`,
        'count',
      );
    }
    if (profile !== '' && !PROFILE_PATTERN.test(profile)) {
      throw invalid('profile', `"${profile}" is not logical:<family>(d=<int>)`);
    }
    const tenant = this.tenantOf(p);
    const quota = this.quotaOf(tenant);
    const live = this.qubitsByTenant.get(tenant.id)?.size ?? 0;
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
    this.takeRate(p, 'allocations', count);
    // Invoke: nothing below can fail except by assertion.
    const now = this.ports.clock.nowMs();
    const records: StoreRecord[] = [];
    const oplog: OplogEntry[] = [];
    const out: { id: string; handle: string }[] = [];
    for (let i = 0; i < count; i++) {
      const q: Qubit = {
        id: this.ports.crypto.id(),
        tenantId: tenant.id,
        sessionId: session.id,
        profile,
        fresh: true,
        createdAtMs: now,
      };
      this.indexQubit(q);
      const cluster = this.graph.planCreate(q.id);
      this.graph.add(cluster);
      this.ports.sim.create(cluster);
      records.push({ op: 'put', db: 'qubits', key: q.id, value: q });
      oplog.push({ kind: 'create', cluster, owner: tenant.id });
      const handle = this.issueHandle(
        'VQ',
        q.id,
        tenant.id,
        session.id,
        VQ_RIGHTS_ALL,
        session.expiresAtMs,
      );
      out.push({ id: q.id, handle });
    }
    await this.commitEffects(
      records,
      [this.audit(p, 'AllocateQubits', session.id, { count, qubits: out.map((x) => x.id) })],
      oplog,
    );
    return out;
  }

  /** @throws handle errors, INVALID_ARGUMENT, LIMIT_EXCEEDED */
  async releaseQubits(p: TenantPrincipal, handles: readonly string[]): Promise<number> {
    await this.pass();
    if (handles.length === 0) throw invalid('qubit_handles', 'at least one handle is required');
    if (handles.length > HANDLES_PER_RELEASE_MAX) {
      throw new KernelError(
        'LIMIT_EXCEEDED',
        `qubit_handles: more than ${HANDLES_PER_RELEASE_MAX}`,
        'qubit_handles',
      );
    }
    const ids = new Set<string>();
    handles.forEach((h, i) => {
      const c = this.verifyHandle(p, h, `qubit_handles[${i}]`, 'VQ', RIGHTS.RIGHT_RELEASE);
      if (ids.has(c.resourceId)) throw invalid(`qubit_handles[${i}]`, 'qubit named twice');
      ids.add(c.resourceId);
    });
    const qubits = [...ids].map((id) => this.qubits.get(id)!);
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
      this.unindexQubit(q);
      const del: StoreRecord = { op: 'del', db: 'qubits', key: q.id };
      const event = [this.audit(actor, 'ReleaseQubit', q.id, { session: q.sessionId })];
      const cluster = this.graph.clusterOf(q.id);
      if (cluster.qubits.length === 1) {
        this.graph.remove(cluster.id);
        this.ports.sim.drop(cluster.id);
        pending.push(
          this.commitEffects([del], event, [
            { kind: 'drop', clusterId: cluster.id, owner: q.tenantId },
          ]),
        );
        continue;
      }
      const plan = this.graph.plan(
        [{ kind: 'measure', qubit: q.id, basis: 'Z', random: this.ports.crypto.unit() }],
        [q.id],
      );
      this.graph.apply(plan);
      const own = plan.results[plan.results.length - 1]!;
      assert(own.qubits.length === 1 && own.qubits[0] === q.id);
      this.graph.remove(own.id);
      pending.push(
        this.executeOrDiverge(
          plan,
          (outcomes) =>
            this.commitEffects([del], event, [
              { kind: 'exec', plan, outcomes, owner: q.tenantId },
              { kind: 'drop', clusterId: own.id, owner: q.tenantId },
            ]),
          this.ownerOf(actor),
        ),
      );
      this.ports.sim.drop(own.id);
    }
    return Promise.all(pending).then(() => undefined);
  }

  // ---------------------------------------------------------------- gates and measurement

  /**
   * Applies a batch of gates: every gate is checked before any is applied. Gates on disjoint
   * qubit sets run as separate plans (no needless cluster merge).
   * @throws INVALID_ARGUMENT, handle errors, CAP_MISSING, QUBIT_NOT_FRESH, QUOTA_EXCEEDED,
   *   LIMIT_EXCEEDED
   */
  async applyGates(p: TenantPrincipal, gates: readonly GateRequest[]): Promise<number> {
    await this.pass();
    this.requireSpace();
    let decoded: Component[];
    try {
      decoded = this.decodeApplyGates(p, gates);
    } catch (err) {
      await this.auditFirewallRefusal(p, 'ApplyGates', err);
      throw err;
    }
    await this.invokeComponents(p, 'ApplyGates', decoded);
    return gates.length;
  }

  /** A firewall refusal is a security event: its audit record is durable before the reply. */
  async auditFirewallRefusal(p: Actor, action: string, err: unknown): Promise<void> {
    if (!(err instanceof KernelError) || !FIREWALL_CODES.has(err.code)) return;
    const event = this.audit(p, action, 'firewall', { code: err.code, message: err.message });
    await this.commitOrUndo(() => {}, [], [{ ...event, outcome: `denied:${err.code}` }]);
  }

  decodeApplyGates(p: TenantPrincipal, gates: readonly GateRequest[]): Component[] {
    const tenant = this.tenantOf(p);
    const quota = this.quotaOf(tenant);
    if (gates.length === 0) throw invalid('gates', 'at least one gate is required');
    if (gates.length > quota.gatesPerCallMax) {
      throw new KernelError(
        'QUOTA_EXCEEDED',
        `gates: ${gates.length} gates > gates_per_call_max ${quota.gatesPerCallMax}`,
        'gates_per_call_max',
      );
    }
    const touched = new Set<string>();
    const preferred = new Set<string>();
    const ops: SimOp[] = gates.map((g, i) => {
      const f = `gates[${i}]`;
      const name = g.kind;
      if (!isGateName(name)) throw invalid(`${f}.kind`, `unknown gate ${JSON.stringify(name)}`);
      const spec = GATE_SET[name];
      if (g.qubits.length !== spec.arity) {
        throw invalid(
          `${f}.qubits`,
          `${g.kind} takes ${spec.arity} qubit(s), got ${g.qubits.length}`,
        );
      }
      if (!Number.isFinite(g.theta)) throw invalid(`${f}.theta`, 'must be a finite number');
      if (!spec.theta && g.theta !== 0) throw invalid(`${f}.theta`, `${g.kind} takes no angle`);
      const ids = g.qubits.map((h, j) => {
        const field = `${f}.qubits[${j}]`;
        const c = this.verifyHandle(p, h, field, null, 0);
        if (c.kind === 'SHARED_VQ') {
          // Another tenant's qubit, shared through a channel: only to entangle with.
          if (spec.arity < 2) {
            throw new KernelError(
              'RIGHTS_INSUFFICIENT',
              `${field}: a shared qubit handle allows only entangling gates, not ${g.kind}`,
              field,
            );
          }
          if ((c.rights & RIGHTS.RIGHT_LINK) === 0) {
            throw new KernelError('RIGHTS_INSUFFICIENT', `${field}: handle lacks the right`, field);
          }
          preferred.add(c.sessionId);
          return c.resourceId;
        }
        if (c.kind !== 'VQ')
          throw new KernelError('HANDLE_WRONG_KIND', `${field}: expected a VQ handle`, field);
        if ((c.rights & RIGHTS.RIGHT_COMPUTE) === 0) {
          throw new KernelError('RIGHTS_INSUFFICIENT', `${field}: handle lacks the right`, field);
        }
        this.requireCap(this.sessions.get(c.sessionId)!, spec.cap, field);
        return c.resourceId;
      });
      if (new Set(ids).size !== ids.length) throw invalid(`${f}.qubits`, 'qubits must be distinct');
      if (
        g.kind === 'INJECT_T_STATE' &&
        (!this.qubits.get(ids[0]!)!.fresh || touched.has(ids[0]!))
      ) {
        throw new KernelError(
          'QUBIT_NOT_FRESH',
          `${f}.qubits[0]: INJECT_T_STATE needs a fresh qubit`,
          `${f}.qubits[0]`,
        );
      }
      for (const id of ids) touched.add(id);
      const op: SimOp = { kind: 'gate', name, qubits: ids };
      if (spec.theta) op.theta = g.theta;
      if (spec.measures) op.random = this.ports.crypto.unit();
      return op;
    });
    // Group by current cluster, not only by qubit: two gates on qubits already sharing a cluster
    // are one component, so the merged size (and the limit check) is the real one.
    const components = groupByConnectivity(ops, (q) => `c${this.graph.clusterOf(q).id}`);
    this.checkClusterLimits(tenant, quota, components);
    const taken = new Map<string, number>();
    return components.map((c) => ({
      ops: c,
      channels: this.decideFirewall(
        c.flatMap((o) => (o.kind === 'gate' ? o.qubits : [o.qubit])),
        preferred,
        taken,
      ),
    }));
  }

  /**
   * The entanglement firewall for one join: when the clusters of `qubits` are more than one and
   * hold qubits of two or more tenants, the channel (one per pair of tenants) whose use the join
   * takes. `taken` counts uses already decided in the same call. Changes nothing.
   * @throws FIREWALL_NO_CHANNEL, CHANNEL_NOT_APPROVED, CHANNEL_EXPIRED, CHANNEL_REVOKED,
   *   CHANNEL_EXHAUSTED
   */
  private decideFirewall(
    qubits: readonly string[],
    preferred: ReadonlySet<string>,
    taken: Map<string, number>,
  ): ChannelRecord[] {
    const parts = this.graph.partsFor(qubits);
    if (parts.length < 2) return [];
    const tenants = new Set<string>();
    for (const part of parts)
      for (const q of part.qubits) tenants.add(this.qubits.get(q)!.tenantId);
    if (tenants.size < 2) return [];
    // The joined cluster counts against every tenant in it: the smallest cluster limit holds.
    const size = ClusterGraph.mergedSize(parts);
    for (const t of tenants) {
      const limit = Math.min(
        this.quotaOf(this.tenants.get(t)!).qubitsPerClusterMax,
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
    const chosen = this.channels.decide([...tenants], preferred, this.ports.clock.nowMs(), (id) =>
      this.tenantName(id),
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
  private takeChannelUses(channels: readonly ChannelRecord[]): StoreRecord[] {
    return channels.map((ch) => {
      ch.used += 1;
      return { op: 'put', db: 'channels', key: ch.id, value: { ...ch } };
    });
  }

  /** @throws INVALID_ARGUMENT, handle errors, CAP_MISSING, LIMIT_EXCEEDED */
  async measureQubits(p: TenantPrincipal, ms: readonly MeasureRequest[]): Promise<(0 | 1)[]> {
    await this.pass();
    this.requireSpace();
    if (ms.length === 0) throw invalid('measurements', 'at least one measurement is required');
    if (ms.length > MEASUREMENTS_PER_CALL_MAX) {
      throw new KernelError(
        'LIMIT_EXCEEDED',
        `measurements: more than ${MEASUREMENTS_PER_CALL_MAX}`,
        'measurements',
      );
    }
    const ops: SimOp[] = ms.map((m, i) => {
      const f = `measurements[${i}]`;
      const c = this.verifyHandle(p, m.qubit, `${f}.qubit`, 'VQ', RIGHTS.RIGHT_MEASURE);
      this.requireCap(this.sessions.get(c.sessionId)!, 'CAP_MEASURE', `${f}.qubit`);
      const basis = m.basis;
      if (!isBasis(basis)) throw invalid(`${f}.basis`, `unknown basis ${JSON.stringify(basis)}`);
      if (!Number.isFinite(m.angle)) throw invalid(`${f}.angle`, 'must be a finite number');
      if (m.basis !== 'ANGLE' && m.angle !== 0)
        throw invalid(`${f}.angle`, 'only BASIS_ANGLE takes an angle');
      const op: SimOp = {
        kind: 'measure',
        qubit: c.resourceId,
        basis,
        random: this.ports.crypto.unit(),
      };
      if (basis === 'ANGLE') op.angle = m.angle;
      return op;
    });
    this.takeRate(p, 'measurements', ops.length);
    // Measurements never merge clusters: group by the cluster each qubit is in now.
    const byCluster = new Map<number, SimOp[]>();
    for (const op of ops) {
      const id = this.graph.clusterOf((op as { qubit: string }).qubit).id;
      const list = byCluster.get(id) ?? [];
      list.push(op);
      byCluster.set(id, list);
    }
    const outcomes = await this.invokeComponents(
      p,
      'MeasureQubits',
      [...byCluster.values()].map((ops) => ({ ops, channels: [] })),
    );
    // Map outcomes back to request order.
    return ops.map((op) => outcomes.get(op)!);
  }

  /**
   * Plans, applies to the graph, and executes each component; each plan's op-log entry and audit
   * record commit together. Resolves when all are durable, with each measuring op's outcome.
   */
  private async invokeComponents(
    p: TenantPrincipal,
    action: string,
    components: Component[],
  ): Promise<Map<SimOp, 0 | 1>> {
    const results = new Map<SimOp, 0 | 1>();
    const pending = components.map(({ ops, channels }) => {
      const split = splitAfter(ops);
      const plan = this.graph.plan(ops, split);
      this.graph.apply(plan);
      const records = [...this.markUsed(ops), ...this.takeChannelUses(channels)];
      const detail: Record<string, unknown> = {
        ops: ops.length,
        qubits: plan.results.flatMap((r) => r.qubits).length,
      };
      if (channels.length > 0) detail.channels = channels.map((c) => c.id);
      const event = this.audit(p, action, plan.results.map((r) => r.id).join(','), detail);
      return this.executeOrDiverge(
        plan,
        (outcomes) => {
          let k = 0;
          for (const op of ops) {
            if (op.kind === 'measure' || op.name === 'RESET') results.set(op, outcomes[k++]!);
          }
          return this.commitEffects(
            records,
            [event],
            [{ kind: 'exec', plan, outcomes, owner: p.tenantId }],
          );
        },
        this.ownerOf(p),
      );
    });
    await Promise.all(pending);
    return results;
  }

  // ---------------------------------------------------------------- channels

  /**
   * Asks `peerName` for a channel; the requester's approval is recorded and signed now.
   * @throws INVALID_ARGUMENT, NOT_FOUND (no such peer), QUOTA_EXCEEDED (channels per tenant)
   */
  async requestChannel(
    p: TenantPrincipal,
    peerName: string,
    maxUses: number,
    expiresAtMs: number,
    purpose: string,
  ): Promise<ChannelRecord> {
    await this.pass();
    this.requireSpace();
    const tenant = this.tenantOf(p);
    if (peerName === '') throw invalid('peer_tenant', 'is required');
    const peer = this.tenantsByName.get(peerName);
    if (!peer)
      throw new KernelError(
        'NOT_FOUND',
        `peer_tenant: no tenant ${JSON.stringify(peerName.slice(0, 64))}`,
        'peer_tenant',
      );
    if (peer.id === tenant.id)
      throw invalid('peer_tenant', 'is the caller: a channel joins two tenants');
    const now = this.ports.clock.nowMs();
    checkChannelTerms(maxUses, expiresAtMs, purpose, now);
    for (const t of [tenant, peer]) {
      if (this.channels.countOf(t.id) >= CHANNELS_PER_TENANT_MAX) {
        throw new KernelError(
          'QUOTA_EXCEEDED',
          `channels: ${t === tenant ? 'you are' : 'the peer is'} party to ${CHANNELS_PER_TENANT_MAX} channels already`,
          'channels',
        );
      }
    }
    const c: ChannelRecord = {
      id: this.ports.crypto.id(),
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
    this.channels.put(c);
    await this.commitOrUndo(
      () => this.channels.remove(c.id),
      [this.channelRecord(c)],
      [
        this.audit(p, 'RequestChannel', c.id, {
          peer: peer.id,
          max_entanglements: maxUses,
          expires_at: expiresAtMs,
        }),
      ],
    );
    return c;
  }

  /**
   * The peer approves (signed) or rejects a pending request.
   * @throws NOT_FOUND, CHANNEL_WRONG_TENANTS (the requester itself), CHANNEL_NOT_PENDING,
   *   INVALID_ARGUMENT
   */
  async respondChannel(
    p: TenantPrincipal,
    id: string,
    approve: boolean,
    reason: string,
  ): Promise<ChannelRecord> {
    await this.pass();
    const c = this.channels.visible(p.tenantId, id, 'channel_id');
    if (c.peerId !== p.tenantId) {
      throw new KernelError(
        'CHANNEL_WRONG_TENANTS',
        'channel_id: only the tenant a request is addressed to can approve or reject it',
        'channel_id',
      );
    }
    const now = this.ports.clock.nowMs();
    const state = channelState(c, now);
    if (state !== 'PENDING') {
      throw new KernelError(
        'CHANNEL_NOT_PENDING',
        `channel_id: the request is ${state.toLowerCase()}, not pending`,
        'channel_id',
      );
    }
    checkText('reason', reason);
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
    await this.commitOrUndo(
      () => Object.assign(c, before),
      [this.channelRecord(c)],
      [
        this.audit(
          p,
          approve ? 'ApproveChannel' : 'RejectChannel',
          c.id,
          reason ? { reason } : undefined,
        ),
      ],
    );
    return c;
  }

  /**
   * Either side ends a pending or approved channel; no join may use it afterwards.
   * @throws NOT_FOUND, CHANNEL_NOT_PENDING (already rejected or revoked), INVALID_ARGUMENT
   */
  async revokeChannel(p: TenantPrincipal, id: string, reason: string): Promise<ChannelRecord> {
    await this.pass();
    const c = this.channels.visible(p.tenantId, id, 'channel_id');
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
    c.endedAtMs = this.ports.clock.nowMs();
    c.endReason = reason;
    await this.commitOrUndo(
      () => Object.assign(c, before),
      [this.channelRecord(c)],
      [this.audit(p, 'RevokeChannel', c.id, reason ? { reason } : undefined)],
    );
    return c;
  }

  /**
   * A handle to one of the caller's qubits for the channel's peer: RIGHT_LINK only, expiring with
   * the channel (or the qubit's session, if sooner).
   * @throws NOT_FOUND, handle errors, the channel's state as a firewall code
   */
  async shareQubit(
    p: TenantPrincipal,
    id: string,
    qubitHandle: string,
  ): Promise<{ handle: string; expiresAtMs: number }> {
    await this.pass();
    const c = this.channels.visible(p.tenantId, id, 'channel_id');
    const claims = this.verifyHandle(p, qubitHandle, 'qubit_handle', 'VQ', RIGHTS.RIGHT_LINK);
    const state = channelState(c, this.ports.clock.nowMs());
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
    const session = this.sessions.get(claims.sessionId)!;
    const expiresAtMs = Math.min(c.expiresAtMs, session.expiresAtMs);
    const handle = this.issueHandle(
      'SHARED_VQ',
      claims.resourceId,
      holder,
      c.id,
      RIGHTS.RIGHT_LINK,
      expiresAtMs,
    );
    await this.commitOrUndo(
      () => {},
      [],
      [this.audit(p, 'ShareQubit', claims.resourceId, { channel: c.id, with: holder })],
    );
    return { handle, expiresAtMs };
  }

  private signApproval(c: ChannelRecord, tenantId: string, atMs: number) {
    const payload = approvalPayload(c, tenantId, atMs);
    const signature = this.ports.signer.sign(Buffer.from(payload, 'utf8'));
    return {
      tenantId,
      atMs,
      keyId: this.ports.signer.activeKeyId(),
      signature: Buffer.from(signature).toString('base64'),
      payload,
    };
  }

  private channelRecord(c: ChannelRecord): StoreRecord {
    return { op: 'put', db: 'channels', key: c.id, value: { ...c, approvals: [...c.approvals] } };
  }

  // ---------------------------------------------------------------- jobs on bound qubits

  /**
   * Rule 9's view of the firewall, for the job verifier: the channel per pair of tenants that a
   * join of clusters holding qubits of `tenants` would use now, with its uses left. Changes nothing.
   * @throws the firewall's refusal (FIREWALL_NO_CHANNEL, CHANNEL_NOT_APPROVED, …)
   */
  firewallDecision(
    tenants: readonly string[],
    preferred: ReadonlySet<string>,
  ): { id: string; usesLeft: number }[] {
    return this.channels
      .decide(tenants, preferred, this.ports.clock.nowMs(), (id) => this.tenantName(id))
      .map((c) => ({ id: c.id, usesLeft: c.maxUses - c.used }));
  }

  private tenantName(id: string): string {
    return JSON.stringify(this.tenants.get(id)?.name ?? id);
  }

  /** The tenant whose qubit a shared handle (held by `claims.tenantId`) names. */
  sharedOwner(claims: HandleClaims): string {
    assert(claims.kind === 'SHARED_VQ', 'a shared handle');
    return this.qubits.get(claims.resourceId)!.tenantId;
  }

  /**
   * Decides a bound job's run: the clusters of its bound qubits merge into one, where the program
   * runs once. Checked now, not at submission, since the qubits and channels may have changed:
   * each own bound qubit must still be the tenant's and each shared one still its channel peer's;
   * the merged cluster with every program-allocated qubit added (an upper bound: not all may
   * join) must fit the tenant's cluster and state limits; and the firewall runs again. The
   * channel uses taken are those the verifier counted for the program's joins across tenants
   * (`uses`), and at least one on each channel the merge itself needs.
   * @throws NOT_FOUND (a bound qubit was released), QUOTA_EXCEEDED, the firewall's refusals
   */
  decideBoundJob(
    tenantId: string,
    job: BoundJobRun,
    fw: BoundFirewall = { foreign: new Map(), uses: new Map() },
  ): { plan: ExecPlan; channels: ChannelUse[] } {
    const tenant = this.tenants.get(tenantId);
    assert(tenant, `job of unknown tenant ${tenantId}`);
    const quota = this.quotaOf(tenant);
    job.bound.forEach((b, i) => {
      const q = this.qubits.get(b.qubitId);
      const channelId = fw.foreign.get(b.qubitId);
      const ch = channelId === undefined ? undefined : this.channels.get(channelId);
      const owner =
        channelId === undefined
          ? tenantId
          : ch?.requesterId === tenantId
            ? ch.peerId
            : ch?.peerId === tenantId
              ? ch.requesterId
              : null;
      if (!q || q.tenantId !== owner) {
        throw new KernelError(
          'NOT_FOUND',
          `bindings[${i}]: the ${channelId === undefined ? '' : 'shared '}qubit bound as ${JSON.stringify(b.name)} was released before the job ran`,
          `bindings[${i}]`,
        );
      }
    });
    const parts = this.graph.partsFor(job.bound.map((b) => b.qubitId));
    const width = ClusterGraph.mergedSize(parts);
    const added = job.program.qubits.length - job.bound.length;
    const perCluster = Math.min(quota.qubitsPerClusterMax, QUBITS_PER_CLUSTER_MAX);
    if (width + added > perCluster) {
      throw new KernelError(
        'QUOTA_EXCEEDED',
        `qubits_per_cluster_max: the bound qubits' clusters hold ${width} qubits and the program adds up to ${added} (limit ${perCluster})`,
        'qubits_per_cluster_max',
      );
    }
    const after =
      this.stateBytesOf(tenantId) +
      stateBytes(width) -
      parts.reduce((a, c) => a + stateBytes(c.qubits.length), 0);
    if (after > quota.stateBytesMax) {
      throw new KernelError(
        'QUOTA_EXCEEDED',
        `state_bytes_max: merging the bound qubits' clusters makes ${after} bytes of state > ${quota.stateBytesMax}`,
        'state_bytes_max',
      );
    }
    // The bound qubits' clusters may hold other tenants' qubits (shared ones, or entangled through
    // channels): merging them is a join like any other, and the program's own joins were counted.
    const preferred = new Set([...fw.uses.keys(), ...fw.foreign.values()]);
    const uses = new Map(fw.uses);
    for (const ch of this.decideFirewall(
      job.bound.map((b) => b.qubitId),
      preferred,
      new Map(),
    )) {
      uses.set(ch.id, Math.max(uses.get(ch.id) ?? 0, 1));
    }
    const now = this.ports.clock.nowMs();
    const channels = [...uses].map(([id, n]) => {
      const ch = this.channels.get(id);
      if (!ch) {
        throw new KernelError(
          'FIREWALL_NO_CHANNEL',
          `firewall: channel ${id} no longer exists`,
          'channel',
        );
      }
      const pair = `${this.tenantName(ch.requesterId)} and ${this.tenantName(ch.peerId)}`;
      if (channelState(ch, now) !== 'ACTIVE') throw refusal([ch], now, pair);
      if (ch.used + n > ch.maxUses) {
        throw new KernelError(
          'CHANNEL_EXHAUSTED',
          `firewall: channel ${id} between ${pair} has ${ch.maxUses - ch.used} entanglement(s) left, the job needs ${n}`,
          'channel',
        );
      }
      return { channel: ch, uses: n };
    });
    return {
      plan: this.graph.planJob(
        job.bound.map((b) => b.qubitId),
        job,
      ),
      channels,
    };
  }

  /**
   * Runs a decided bound job after every earlier plan on its clusters. `commit` is called as soon
   * as the run ends, before any later plan on these clusters can end, with the run's result and
   * the qubit and channel records, op-log entry and audit records that must commit in the job's
   * final transaction: the job's effect on the qubits, the channel uses and its DONE record
   * become durable together, or (a crash first) none, and the re-run starts from the same state
   * with the same seed.
   */
  invokeBoundJob(
    jobId: string,
    plan: ExecPlan,
    channels: readonly ChannelUse[],
    commit: (
      run: JobRunResult,
      records: StoreRecord[],
      oplog: OplogEntry[],
      audit: AuditEvent[],
    ) => Promise<void>,
    owner?: PoolOwner,
  ): Promise<void> {
    assert(plan.job, 'a bound job plan');
    this.graph.apply(plan);
    const records: StoreRecord[] = [];
    for (const { channel, uses } of channels) {
      channel.used += uses;
      records.push(this.channelRecord(channel));
    }
    const audit =
      channels.length === 0
        ? []
        : [
            this.audit('kernel', 'RunBoundJob', jobId, {
              channels: Object.fromEntries(channels.map((c) => [c.channel.id, c.uses])),
            }),
          ];
    for (const b of plan.job.bound) {
      const q = this.qubits.get(b.qubitId)!;
      if (q.fresh) {
        q.fresh = false;
        records.push({ op: 'put', db: 'qubits', key: q.id, value: q });
      }
    }
    return this.executeOrDiverge(
      plan,
      (outcomes, run) => {
        assert(run, 'a bound job plan returns its run');
        const entry: OplogEntry = { kind: 'exec', plan, outcomes };
        if (owner) entry.owner = owner.tenant;
        return commit(run, records, [entry], audit);
      },
      owner,
    );
  }

  /** Marks fresh qubits as used; their records commit with the plan that used them. */
  private markUsed(ops: SimOp[]): StoreRecord[] {
    const records: StoreRecord[] = [];
    for (const op of ops) {
      for (const id of op.kind === 'gate' ? op.qubits : [op.qubit]) {
        const q = this.qubits.get(id);
        if (q?.fresh) {
          q.fresh = false;
          records.push({ op: 'put', db: 'qubits', key: q.id, value: q });
        }
      }
    }
    return records;
  }

  /**
   * Checked before any memory is allocated: the largest cluster a component would create, and the
   * tenant's state bytes after all merges.
   */
  private checkClusterLimits(tenant: Tenant, quota: Quota, components: SimOp[][]): void {
    const perCluster = Math.min(quota.qubitsPerClusterMax, QUBITS_PER_CLUSTER_MAX);
    let delta = 0;
    for (const ops of components) {
      const qubits = ops.flatMap((o) => (o.kind === 'gate' ? o.qubits : [o.qubit]));
      const parts = this.graph.partsFor(qubits);
      const n = ClusterGraph.mergedSize(parts);
      if (n > perCluster) {
        throw new KernelError(
          'QUOTA_EXCEEDED',
          `qubits_per_cluster_max: the gates would make a ${n}-qubit cluster > ${perCluster}`,
          'qubits_per_cluster_max',
        );
      }
      if (parts.length > 1) {
        delta += stateBytes(n) - parts.reduce((a, c) => a + stateBytes(c.qubits.length), 0);
      }
    }
    const after = this.stateBytesOf(tenant.id) + delta;
    if (after > quota.stateBytesMax) {
      throw new KernelError(
        'QUOTA_EXCEEDED',
        `state_bytes_max: ${after} bytes of state > ${quota.stateBytesMax}`,
        'state_bytes_max',
      );
    }
  }

  stateBytesOf(tenantId: string): number {
    const seen = new Set<number>();
    let bytes = 0;
    for (const q of this.qubitsByTenant.get(tenantId) ?? []) {
      const c = this.graph.clusterOf(q);
      if (!seen.has(c.id)) {
        seen.add(c.id);
        bytes += stateBytes(c.qubits.length);
      }
    }
    return bytes;
  }

  // ---------------------------------------------------------------- attenuation and usage

  /**
   * Derives a handle whose rights are a subset of the parent's and whose expiry is no later.
   * @throws handle errors, INVALID_ARGUMENT, RIGHTS_WIDEN
   */
  attenuateHandle(
    p: TenantPrincipal,
    parent: string,
    rights: readonly string[],
    expiresAtMs: number,
  ): { handle: string; rights: number; expiresAtMs: number } {
    const c = this.verifyHandle(p, parent, 'handle', null, 0);
    let mask = 0;
    rights.forEach((r, i) => {
      if (!Object.hasOwn(RIGHTS, r))
        throw invalid(`rights[${i}]`, `unknown right ${JSON.stringify(r)}`);
      mask |= RIGHTS[r as RightName];
    });
    if ((mask & ~c.rights) !== 0) {
      throw new KernelError('RIGHTS_WIDEN', 'rights: attenuation cannot add rights', 'rights');
    }
    if (!Number.isInteger(expiresAtMs) || expiresAtMs < 0) {
      throw invalid('expires_at_unix_ms', 'must be a non-negative integer');
    }
    const expiry = expiresAtMs === 0 ? c.expiresAtMs : expiresAtMs;
    if (expiry > c.expiresAtMs) {
      throw new KernelError(
        'RIGHTS_WIDEN',
        'expires_at_unix_ms: attenuation cannot extend the expiry',
        'expires_at_unix_ms',
      );
    }
    if (expiry <= this.ports.clock.nowMs()) throw invalid('expires_at_unix_ms', 'is in the past');
    const handle = this.issueHandle(c.kind, c.resourceId, c.tenantId, c.sessionId, mask, expiry);
    return { handle, rights: mask, expiresAtMs: expiry };
  }

  usageOf(tenantId: string): Usage {
    const qubits = this.qubitsByTenant.get(tenantId) ?? new Set<string>();
    const clusters = new Set([...qubits].map((q) => this.graph.clusterOf(q).id));
    return {
      qubitsLive: qubits.size,
      stateBytes: this.stateBytesOf(tenantId),
      sessionsOpen: this.sessionsByTenant.get(tenantId)?.size ?? 0,
      clusters: clusters.size,
    };
  }

  /** A tenant's scheduling weight: its own, else its tier's. */
  weightOf(tenantId: string): number {
    const tenant = this.tenants.get(tenantId);
    return tenant ? tenant.weight || TIER_DEFAULTS[tenant.tier].weight : 1;
  }

  /** The pool's view of who a plan is for (its fair queue across tenants). */
  private ownerOf(actor: Actor): PoolOwner | undefined {
    return actor === 'kernel' || actor.kind === 'operator'
      ? undefined
      : { tenant: actor.tenantId, weight: this.weightOf(actor.tenantId) };
  }

  audit(p: Actor, action: string, target: string, detail?: Record<string, unknown>): AuditEvent {
    const actor =
      p === 'kernel' ? 'kernel' : p.kind === 'operator' ? 'operator' : `${p.tenantId}/${p.keyId}`;
    return detail
      ? { actor, action, target, outcome: 'ok', detail }
      : { actor, action, target, outcome: 'ok' };
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

function setOf<K, V>(m: Map<K, Set<V>>, k: K): Set<V> {
  let s = m.get(k);
  if (!s) {
    s = new Set();
    m.set(k, s);
  }
  return s;
}

/**
 * Splits a batch into groups of ops whose qubits are connected through multi-qubit gates
 * (union-find); ops on disjoint qubit sets commute, so each group keeps its own program order.
 */
/** One connected group of a call's ops, and the channels whose uses its join takes. */
export interface Component {
  ops: SimOp[];
  channels: ChannelRecord[];
}

/** A bound job's channels: shared qubits (qubit id -> channel id) and the uses its program counted. */
export interface BoundFirewall {
  foreign: ReadonlyMap<string, string>;
  uses: ReadonlyMap<string, number>;
}

/** Uses of one channel taken by one decision. */
export interface ChannelUse {
  channel: ChannelRecord;
  uses: number;
}

const FIREWALL_CODES: ReadonlySet<string> = new Set([
  'FIREWALL_NO_CHANNEL',
  'CHANNEL_NOT_APPROVED',
  'CHANNEL_EXPIRED',
  'CHANNEL_REVOKED',
  'CHANNEL_EXHAUSTED',
]);

export function groupByConnectivity(ops: SimOp[], keyOf: (qubit: string) => string): SimOp[][] {
  const parent = new Map<string, string>();
  const find = (x: string): string => {
    let r = x;
    while (parent.get(r) !== r) r = parent.get(r)!;
    parent.set(x, r);
    return r;
  };
  const qubitsOf = (o: SimOp) => (o.kind === 'gate' ? o.qubits : [o.qubit]).map(keyOf);
  for (const o of ops) {
    const qs = qubitsOf(o);
    for (const q of qs) if (!parent.has(q)) parent.set(q, q);
    for (const q of qs.slice(1)) parent.set(find(q), find(qs[0]!));
  }
  const groups = new Map<string, SimOp[]>();
  for (const o of ops) {
    const root = find(qubitsOf(o)[0]!);
    const g = groups.get(root) ?? [];
    g.push(o);
    groups.set(root, g);
  }
  return [...groups.values()];
}

/**
 * Qubits to split out after a plan: those whose last op is a measurement (or RESET) leave the
 * plan in a product state with the rest, so keeping them merged would only waste memory.
 */
export function splitAfter(ops: SimOp[]): string[] {
  const last = new Map<string, boolean>();
  for (const o of ops) {
    if (o.kind === 'measure') last.set(o.qubit, true);
    else for (const q of o.qubits) last.set(q, o.name === 'RESET');
  }
  return [...last].filter(([, m]) => m).map(([q]) => q);
}
