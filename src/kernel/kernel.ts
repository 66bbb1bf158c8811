/**
 * The kernel: the units that decide every tenant and operator operation, wired together, plus
 * what belongs to no one unit: loading and replaying state at start. Layer: kernel; it talks to
 * the outside only through ports (store, signer, simulator, clock, crypto) and imports nothing
 * from api/, store/, sim/.
 *
 * The units, each with one job (callers use them directly, never another unit's maps or ports):
 * - `durability` (durability.ts): commits, the checkpoint barrier, divergence, the watermark;
 * - `principals` (principals.ts): tenants, API keys, authentication, call and rate admission;
 * - `handles` (handle-authority.ts): issuing, verifying and attenuating signed handles;
 * - `table` (session-table.ts) and `sessions` (sessions.ts): sessions and virtual qubits;
 * - `interactive` (interactive.ts): gates and measurements on session qubits;
 * - `firewall` (firewall.ts): channels between tenants and the entanglement firewall;
 * - `boundJobs` (bound-jobs.ts): a job's single run on bound session qubits.
 *
 * Every operation is a decode/invoke pair (seL4 style): decoding checks everything and changes
 * nothing (it throws KernelError); invoking changes state and cannot fail except by assertion.
 * Decisions happen synchronously on the main thread in one order, which is the kernel's
 * serialisation: two calls cannot both take the last unit of a quota. Arithmetic happens later in
 * the simulator; each plan's op-log entry and audit record commit in one transaction, and a reply
 * goes out only once that transaction is durable.
 */ import assert from 'node:assert';
import { auditEvent } from './actors.js';
import {
  ANOMALY_THROTTLE_SECONDS,
  Anomalies,
  type AnomalyResponse,
  type AnomalyType,
  DEFAULT_ANOMALY_RESPONSES,
} from './anomalies.js';
import { BoundJobs } from './bound-jobs.js';
import { ChannelTable } from './channels.js';
import { ClusterGraph } from './clusters.js';
import { Durability } from './durability.js';
import { Firewall } from './firewall.js';
import { HandleAuthority } from './handle-authority.js';
import { Interactive } from './interactive.js';
import type {
  ClockPort,
  CryptoPort,
  ExecPlan,
  LoadedState,
  OplogEntry,
  SignerPort,
  SimOp,
  SimulatorPort,
  StorePort,
} from './ports.js';
import { Principals } from './principals.js';
import { SessionTable } from './session-table.js';
import { Sessions } from './sessions.js';

/** How the daemon answers anomalies (its settings); unset parts take the defaults. */
export interface AnomalyPolicy {
  responses?: Partial<Record<AnomalyType, AnomalyResponse>>;
  throttleSeconds?: number;
}

export interface KernelPorts {
  store: StorePort;
  signer: SignerPort;
  sim: SimulatorPort;
  clock: ClockPort;
  crypto: CryptoPort;
}

export class Kernel {
  /** Tenants, keys, authentication and call admission. */
  readonly principals: Principals;
  /** Sessions and their qubits. */
  readonly table: SessionTable;
  readonly graph: ClusterGraph;
  readonly channels: ChannelTable;
  /** Issues, verifies and attenuates handles. */
  readonly handles: HandleAuthority;
  /** Opens and closes sessions, allocates and releases qubits. */
  readonly sessions: Sessions;
  /** Channels between tenants and the entanglement firewall they open. */
  readonly firewall: Firewall;
  /** Gates and measurements on session qubits. */
  readonly interactive: Interactive;
  /** Jobs run once on bound session qubits. */
  readonly boundJobs: BoundJobs;
  /** Commits, the checkpoint barrier, divergence and the free-space watermark. */
  readonly durability: Durability;
  /** Refusals counted per tenant; anomalies recorded and answered. */
  readonly anomalies: Anomalies;
  /**
   * Takes a checkpoint (main wires the real one): afterwards no op-log entry precedes it, so a
   * deleted tenant's data key can be destroyed without breaking replay.
   */
  checkpointNow: () => Promise<void> = async () => {};

  constructor(
    private readonly ports: KernelPorts,
    loaded?: LoadedState,
    anomalyPolicy: AnomalyPolicy = {},
  ) {
    this.durability = new Durability(ports.store, ports.sim);
    this.anomalies = new Anomalies({
      clock: ports.clock,
      tenant: (id) => this.principals.tenant(id),
      audit: (events) =>
        this.durability.background(this.durability.commitOrUndo(() => {}, [], events)),
      responses: { ...DEFAULT_ANOMALY_RESPONSES, ...anomalyPolicy.responses },
      throttleMs: (anomalyPolicy.throttleSeconds ?? ANOMALY_THROTTLE_SECONDS) * 1000,
    });
    this.table = new SessionTable(loaded?.sessions ?? [], loaded?.qubits ?? []);
    this.principals = new Principals(
      ports.clock,
      ports.crypto,
      loaded?.tenants ?? [],
      loaded?.credentials ?? [],
      (tenantId) => this.anomalies.rateDivisor(tenantId),
      (peer) => {
        const event = auditEvent('kernel', 'authenticate', `peer:${peer}`, {
          reason: 'failed authentications past the limit; the address is throttled',
        });
        const denied = [{ ...event, outcome: 'denied:FAILED_AUTH_THROTTLED' }];
        this.durability.background(this.durability.commitOrUndo(() => {}, [], denied));
      },
    );
    this.handles = new HandleAuthority(ports.clock, ports.signer, {
      session: (id) => this.table.session(id),
      qubit: (id) => this.table.qubit(id),
      channel: (id) => this.channels.get(id),
    });
    this.graph = new ClusterGraph(loaded?.nextClusterId ?? 1);
    this.channels = new ChannelTable(loaded?.channels ?? []);
    const units = {
      clock: ports.clock,
      crypto: ports.crypto,
      signer: ports.signer,
      sim: ports.sim,
      principals: this.principals,
      handles: this.handles,
      durability: this.durability,
      table: this.table,
      graph: this.graph,
      channels: this.channels,
    };
    this.sessions = new Sessions(units);
    this.firewall = new Firewall(units);
    const more = { ...units, sessions: this.sessions, firewall: this.firewall };
    this.interactive = new Interactive(more);
    this.boundJobs = new BoundJobs(more);
  }

  // ---------------------------------------------------------------- loading and replay

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
      this.durability.background(this.ports.sim.execute(plan, async () => {}));
    }
  }

  /**
   * Whose data key seals a cluster's snapshot: the tenant owning all its qubits, or the kernel
   * ('') for a cluster joined across tenants through a channel.
   */
  ownerOfCluster(qubitIds: readonly string[]): string {
    const owners = new Set(qubitIds.map((id) => this.table.qubit(id)?.tenantId ?? ''));
    return owners.size === 1 ? [...owners][0]! : '';
  }

  /** Qubits whose cluster is missing after replay would be a store bug: assert, don't guess. */
  checkConsistency(): void {
    for (const q of this.table.allQubitIds())
      assert(this.graph.has(q), `qubit ${q} has no cluster`);
  }

  // ---------------------------------------------------------------- indexes
}
