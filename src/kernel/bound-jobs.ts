/**
 * Jobs on bound session qubits: a program run once on qubits a session already holds. The run is
 * decided when it starts (the qubits and channels may have changed since submission) and runs as
 * one plan on the merged cluster, so it is ordered with the interactive calls on those qubits and
 * replayed like them. Layer: kernel; the job manager calls it, the job lifecycle stays there.
 */
import assert from 'node:assert';
import { auditEvent } from './actors.js';
import { type ChannelRecord, type ChannelTable, channelState, refusal } from './channels.js';
import { ClusterGraph } from './clusters.js';
import type { Durability } from './durability.js';
import { KernelError, quote } from './errors.js';
import type { Firewall } from './firewall.js';
import { QUBITS_PER_CLUSTER_MAX, stateBytes } from './limits.js';
import type {
  AuditEvent,
  BoundJobRun,
  ExecPlan,
  JobRunResult,
  OplogEntry,
  PoolOwner,
  StoreRecord,
} from './ports.js';
import type { Principals } from './principals.js';
import type { SessionTable } from './session-table.js';
import type { Sessions } from './sessions.js';

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

/** What the bound-job unit works with (the kernel wires them). */
export interface BoundJobDeps {
  clock: { nowMs(): number };
  principals: Principals;
  durability: Durability;
  table: SessionTable;
  graph: ClusterGraph;
  channels: ChannelTable;
  sessions: Sessions;
  firewall: Firewall;
}

export class BoundJobs {
  constructor(private readonly d: BoundJobDeps) {}

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
  decide(
    tenantId: string,
    job: BoundJobRun,
    fw: BoundFirewall = { foreign: new Map(), uses: new Map() },
  ): { plan: ExecPlan; channels: ChannelUse[] } {
    const tenant = this.d.principals.tenant(tenantId);
    assert(tenant, `job of unknown tenant ${tenantId}`);
    const quota = this.d.principals.quotaOf(tenant);
    job.bound.forEach((b, i) => {
      const q = this.d.table.qubit(b.qubitId);
      const channelId = fw.foreign.get(b.qubitId);
      const ch = channelId === undefined ? undefined : this.d.channels.get(channelId);
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
          `bindings[${i}]: the ${channelId === undefined ? '' : 'shared '}qubit bound as ${quote(b.name)} was released before the job ran`,
          `bindings[${i}]`,
        );
      }
    });
    const parts = this.d.graph.partsFor(job.bound.map((b) => b.qubitId));
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
      this.d.sessions.stateBytesOf(tenantId) +
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
    for (const ch of this.d.firewall.decideJoin(
      job.bound.map((b) => b.qubitId),
      preferred,
      new Map(),
    )) {
      uses.set(ch.id, Math.max(uses.get(ch.id) ?? 0, 1));
    }
    const now = this.d.clock.nowMs();
    const channels = [...uses].map(([id, n]) => {
      const ch = this.d.channels.get(id);
      if (!ch) {
        throw new KernelError(
          'FIREWALL_NO_CHANNEL',
          `firewall: channel ${id} no longer exists`,
          'channel',
        );
      }
      const pair = `${this.d.principals.tenantName(ch.requesterId)} and ${this.d.principals.tenantName(ch.peerId)}`;
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
      plan: this.d.graph.planJob(
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
  invoke(
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
    this.d.graph.apply(plan);
    const records: StoreRecord[] = [];
    for (const { channel, uses } of channels) {
      channel.used += uses;
      records.push(this.d.firewall.record(channel));
    }
    const audit =
      channels.length === 0
        ? []
        : [
            auditEvent(
              'kernel',
              'RunBoundJob',
              jobId,
              { channels: Object.fromEntries(channels.map((c) => [c.channel.id, c.uses])) },
              channels.flatMap((c) => [c.channel.requesterId, c.channel.peerId]),
            ),
          ];
    for (const b of plan.job.bound) {
      const q = this.d.table.qubit(b.qubitId)!;
      if (q.fresh) {
        q.fresh = false;
        records.push({ op: 'put', db: 'qubits', key: q.id, value: q });
      }
    }
    return this.d.durability.executeOrDiverge(
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
}
