/**
 * The cluster graph: which qubits share one state vector. Layer: kernel (pure).
 * Invariants: every live qubit is in exactly one cluster; a cluster's `qubits` order is the bit
 * order of its state vector (index 0 = least significant bit). Membership is a deterministic
 * function of the sequence of plans (never of measurement outcomes), so the kernel decides it
 * synchronously at decision time and the simulator, running later, produces exactly that layout.
 * Plans follow `sim/batch.ts`: merged order = the parts' qubits concatenated in part order;
 * splitting keeps the rest's relative order and puts each split qubit in a cluster of its own.
 */
import assert from 'node:assert';
import type { BoundJobRun, ClusterRef, ExecPlan, SimOp } from './ports.js';

export class ClusterGraph {
  private readonly byQubit = new Map<string, ClusterRef>();
  private readonly byId = new Map<number, ClusterRef>();
  private nextId: number;

  constructor(nextId = 1) {
    this.nextId = nextId;
  }

  get size(): number {
    return this.byId.size;
  }

  get nextClusterId(): number {
    return this.nextId;
  }

  clusterOf(qubit: string): ClusterRef {
    const c = this.byQubit.get(qubit);
    assert(c, `qubit ${qubit} has no cluster`);
    return c;
  }

  has(qubit: string): boolean {
    return this.byQubit.has(qubit);
  }

  clusters(): IterableIterator<ClusterRef> {
    return this.byId.values();
  }

  /** Plans a new 1-qubit cluster for a fresh qubit (not applied until `apply`). */
  planCreate(qubit: string): ClusterRef {
    assert(!this.byQubit.has(qubit));
    return { id: this.nextId++, qubits: [qubit] };
  }

  /** The clusters (distinct, in first-touch order) that the given qubits belong to. */
  partsFor(qubits: Iterable<string>): ClusterRef[] {
    const seen = new Set<number>();
    const parts: ClusterRef[] = [];
    for (const q of qubits) {
      const c = this.clusterOf(q);
      if (!seen.has(c.id)) {
        seen.add(c.id);
        parts.push(c);
      }
    }
    return parts;
  }

  /** Qubit count of the cluster that merging these parts would produce. */
  static mergedSize(parts: readonly ClusterRef[]): number {
    return parts.reduce((n, p) => n + p.qubits.length, 0);
  }

  /**
   * Plans one execution over the clusters touched by `ops` (and `extra` qubits), splitting out
   * `split`. Changes nothing until `apply`.
   */
  plan(ops: SimOp[], split: string[]): ExecPlan {
    const touched: string[] = [];
    for (const op of ops) {
      if (op.kind === 'gate') touched.push(...op.qubits);
      else touched.push(op.qubit);
    }
    const parts = this.partsFor(touched);
    const merged = parts.flatMap((p) => p.qubits);
    // A lone qubit has nothing to split from: it keeps its cluster and id.
    if (merged.length === 1) return { parts, ops, split: [], results: [parts[0]!] };
    const splitSet = new Set(split);
    assert(split.every((q) => merged.includes(q)) && splitSet.size === split.length);
    const rest = merged.filter((q) => !splitSet.has(q));
    const results: ClusterRef[] = [];
    // Nothing merged and nothing split: the cluster keeps its id for its whole life.
    if (rest.length > 0) {
      const id = parts.length === 1 && split.length === 0 ? parts[0]!.id : this.nextId++;
      results.push({ id, qubits: rest });
    }
    for (const q of split) results.push({ id: this.nextId++, qubits: [q] });
    return { parts, ops, split, results };
  }

  /**
   * A plan that merges the clusters of `qubits` into one (in part order, as `plan` does) and runs
   * a bound job there. One part keeps its id.
   */
  planJob(qubits: readonly string[], job: BoundJobRun): ExecPlan {
    const parts = this.partsFor(qubits);
    const merged = parts.flatMap((p) => p.qubits);
    const id = parts.length === 1 ? parts[0]!.id : this.nextId++;
    return { parts, ops: [], split: [], results: [{ id, qubits: merged }], job };
  }

  /** Applies a planned change to the graph (decision time, synchronously). */
  apply(plan: { parts: readonly ClusterRef[]; results: readonly ClusterRef[] }): void {
    for (const p of plan.parts) {
      assert(this.byId.get(p.id) === p || this.byId.get(p.id)?.qubits.join() === p.qubits.join());
      this.byId.delete(p.id);
      for (const q of p.qubits) this.byQubit.delete(q);
    }
    for (const r of plan.results) this.add(r);
  }

  add(c: ClusterRef): void {
    assert(!this.byId.has(c.id), `cluster ${c.id} exists`);
    const copy = { id: c.id, qubits: [...c.qubits] };
    this.byId.set(c.id, copy);
    for (const q of c.qubits) {
      assert(!this.byQubit.has(q), `qubit ${q} already in a cluster`);
      this.byQubit.set(q, copy);
    }
    if (c.id >= this.nextId) this.nextId = c.id + 1;
  }

  /** Removes a 1-qubit cluster (qubit release). */
  remove(clusterId: number): void {
    const c = this.byId.get(clusterId);
    assert(c && c.qubits.length === 1, 'only single-qubit clusters are removed');
    this.byId.delete(clusterId);
    this.byQubit.delete(c.qubits[0]!);
  }
}
