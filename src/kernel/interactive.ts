/**
 * Gates and measurements on session qubits (the interactive path): every gate of a call is
 * checked (handles, caps, arity, limits, the firewall) before any is applied, then each group of
 * connected ops runs as one plan on the simulator and commits its op-log entry with its audit
 * record. Layer: kernel. Decode-then-invoke: `decodeApply` checks everything and changes nothing.
 */

import { auditEvent, poolOwner } from './actors.js';
import type { ChannelRecord } from './channels.js';
import { ClusterGraph } from './clusters.js';
import type { Durability } from './durability.js';
import { KernelError, invalid, quote, requireCount } from './errors.js';
import type { Firewall } from './firewall.js';
import { GATE_SET, isBasis, isGateName } from './gate-set.js';
import type { HandleAuthority } from './handle-authority.js';
import { RIGHTS } from './handles.js';
import { MEASUREMENTS_PER_CALL_MAX, QUBITS_PER_CLUSTER_MAX, stateBytes } from './limits.js';
import type { Quota, Tenant } from './model.js';
import type { CryptoPort, SimOp, StoreRecord } from './ports.js';
import type { Principals, TenantPrincipal } from './principals.js';
import { type SessionTable, requireCap } from './session-table.js';
import type { Sessions } from './sessions.js';

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

/** One connected group of a call's ops, and the channels whose uses its join takes. */
export interface Component {
  ops: SimOp[];
  channels: ChannelRecord[];
}

/** What the interactive unit works with (the kernel wires them). */
export interface InteractiveDeps {
  crypto: CryptoPort;
  principals: Principals;
  handles: HandleAuthority;
  durability: Durability;
  table: SessionTable;
  graph: ClusterGraph;
  sessions: Sessions;
  firewall: Firewall;
}

export class Interactive {
  constructor(private readonly d: InteractiveDeps) {}

  /**
   * Applies a batch of gates: every gate is checked before any is applied. Gates on disjoint
   * qubit sets run as separate plans (no needless cluster merge).
   * @throws INVALID_ARGUMENT, handle errors, CAP_MISSING, QUBIT_NOT_FRESH, QUOTA_EXCEEDED,
   *   LIMIT_EXCEEDED
   */
  async apply(p: TenantPrincipal, gates: readonly GateRequest[]): Promise<number> {
    await this.d.durability.waitForCheckpoint();
    this.d.durability.requireSpace();
    let decoded: Component[];
    try {
      decoded = this.decodeApply(p, gates);
    } catch (err) {
      await this.d.firewall.auditRefusal(p, 'ApplyGates', err);
      throw err;
    }
    await this.invokeComponents(p, 'ApplyGates', decoded);
    return gates.length;
  }

  decodeApply(p: TenantPrincipal, gates: readonly GateRequest[]): Component[] {
    const tenant = this.d.principals.tenantOf(p);
    const quota = this.d.principals.quotaOf(tenant);
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
      if (!isGateName(name)) throw invalid(`${f}.kind`, `unknown gate ${quote(name)}`);
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
        const c = this.d.handles.verify(p, h, field, null, 0);
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
        requireCap(this.d.table.session(c.sessionId)!, spec.cap, field);
        return c.resourceId;
      });
      if (new Set(ids).size !== ids.length) throw invalid(`${f}.qubits`, 'qubits must be distinct');
      if (
        g.kind === 'INJECT_T_STATE' &&
        (!this.d.table.qubit(ids[0]!)!.fresh || touched.has(ids[0]!))
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
      if (spec.measures) op.random = this.d.crypto.unit();
      return op;
    });
    // Group by current cluster, not only by qubit: two gates on qubits already sharing a cluster
    // are one component, so the merged size (and the limit check) is the real one.
    const components = groupByConnectivity(ops, (q) => `c${this.d.graph.clusterOf(q).id}`);
    this.checkClusterLimits(tenant, quota, components);
    const taken = new Map<string, number>();
    return components.map((c) => ({
      ops: c,
      channels: this.d.firewall.decideJoin(
        c.flatMap((o) => (o.kind === 'gate' ? o.qubits : [o.qubit])),
        preferred,
        taken,
      ),
    }));
  }

  /** @throws INVALID_ARGUMENT, handle errors, CAP_MISSING, LIMIT_EXCEEDED */
  async measure(p: TenantPrincipal, ms: readonly MeasureRequest[]): Promise<(0 | 1)[]> {
    await this.d.durability.waitForCheckpoint();
    this.d.durability.requireSpace();
    requireCount('measurements', 'measurement', ms.length, MEASUREMENTS_PER_CALL_MAX);
    const ops: SimOp[] = ms.map((m, i) => {
      const f = `measurements[${i}]`;
      const c = this.d.handles.verify(p, m.qubit, `${f}.qubit`, 'VQ', RIGHTS.RIGHT_MEASURE);
      requireCap(this.d.table.session(c.sessionId)!, 'CAP_MEASURE', `${f}.qubit`);
      const basis = m.basis;
      if (!isBasis(basis)) throw invalid(`${f}.basis`, `unknown basis ${quote(basis)}`);
      if (!Number.isFinite(m.angle)) throw invalid(`${f}.angle`, 'must be a finite number');
      if (m.basis !== 'ANGLE' && m.angle !== 0)
        throw invalid(`${f}.angle`, 'only BASIS_ANGLE takes an angle');
      const op: SimOp = {
        kind: 'measure',
        qubit: c.resourceId,
        basis,
        random: this.d.crypto.unit(),
      };
      if (basis === 'ANGLE') op.angle = m.angle;
      return op;
    });
    this.d.principals.takeRate(p, 'measurements', ops.length);
    // Measurements never merge clusters: group by the cluster each qubit is in now.
    const byCluster = new Map<number, SimOp[]>();
    for (const op of ops) {
      const id = this.d.graph.clusterOf((op as { qubit: string }).qubit).id;
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
      const plan = this.d.graph.plan(ops, split);
      this.d.graph.apply(plan);
      const records = [...this.markUsed(ops), ...this.d.firewall.takeUses(channels)];
      const detail: Record<string, unknown> = {
        ops: ops.length,
        qubits: plan.results.flatMap((r) => r.qubits).length,
      };
      if (channels.length > 0) detail.channels = channels.map((c) => c.id);
      const event = auditEvent(
        p,
        action,
        plan.results.map((r) => r.id).join(','),
        detail,
        // A join across tenants concerns both sides of each channel it used.
        channels.length > 0 ? channels.flatMap((c) => [c.requesterId, c.peerId]) : undefined,
      );
      return this.d.durability.executeOrDiverge(
        plan,
        (outcomes) => {
          let k = 0;
          for (const op of ops) {
            if (op.kind === 'measure' || op.name === 'RESET') results.set(op, outcomes[k++]!);
          }
          return this.d.durability.commitEffects(
            records,
            [event],
            [{ kind: 'exec', plan, outcomes, owner: p.tenantId }],
          );
        },
        poolOwner(this.d.principals, p),
      );
    });
    await Promise.all(pending);
    return results;
  }

  /** Marks fresh qubits as used; their records commit with the plan that used them. */
  private markUsed(ops: SimOp[]): StoreRecord[] {
    const records: StoreRecord[] = [];
    for (const op of ops) {
      for (const id of op.kind === 'gate' ? op.qubits : [op.qubit]) {
        const q = this.d.table.qubit(id);
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
      const parts = this.d.graph.partsFor(qubits);
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
    const after = this.d.sessions.stateBytesOf(tenant.id) + delta;
    if (after > quota.stateBytesMax) {
      throw new KernelError(
        'QUOTA_EXCEEDED',
        `state_bytes_max: ${after} bytes of state > ${quota.stateBytesMax}`,
        'state_bytes_max',
      );
    }
  }
}

/**
 * Splits a batch into groups of ops whose qubits are connected through multi-qubit gates
 * (union-find); ops on disjoint qubit sets commute, so each group keeps its own program order.
 */
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
