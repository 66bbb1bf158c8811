/**
 * Rules 8 to 10 of the static verifier: caps (a program's own caps never grant), the
 * entanglement firewall for jobs that bind other tenants' qubits, and the bounds on qubits,
 * clusters and state bytes. Layer: kernel (pure).
 */

import { KernelError } from '../errors.js';
import { stateBytes } from '../limits.js';
import type { Program } from './ir.js';
import {
  OP_SPECS,
  SHARED_QUBIT_OPS,
  type VerifyContext,
  type ViolationList,
  quote,
  saturatingAdd,
} from './verify-base.js';
import type { Lifetimes } from './verify-lifetimes.js';

/** Rule 8: every required cap is held by the session; a program's own `caps` never grants. */
export function checkCaps(p: Program, ctx: VerifyContext, out: ViolationList): void {
  const held = new Set(ctx.caps);
  for (const node of p.nodes) {
    const cap = OP_SPECS[node.op].cap;
    if (cap !== null && !held.has(cap)) {
      out.add(
        node.id,
        `${node.source}.op`,
        8,
        `${node.op} needs ${cap}, which the session does not hold`,
      );
    }
  }
}

// Rule 9: the entanglement firewall.

/**
 * Rule 9: follows which tenants' qubits each op's clusters hold (union-find in program order,
 * guards ignored, so a guarded join counts as taken): a join of clusters holding two tenants'
 * qubits needs the kernel's firewall decision, and each takes one use of the channel chosen for
 * each pair. A shared qubit appears only in entangling gates. Returns the uses per channel the
 * program needs at most; the kernel reserves them when the job starts, checking again.
 */
export function checkFirewall(
  p: Program,
  ctx: VerifyContext,
  out: ViolationList,
): Map<string, number> {
  const uses = new Map<string, number>();
  const fw = ctx.firewall;
  if (fw === undefined || fw.foreign.size === 0) return uses;
  const parent = new Map<string, string>();
  const tenants = new Map<string, Set<string>>();
  for (const q of p.qubits) {
    parent.set(q, q);
    tenants.set(q, new Set([fw.foreign.get(q)?.tenant ?? fw.tenant]));
  }
  const root = (q: string): string => {
    let r = q;
    while (parent.get(r) !== r) r = parent.get(r)!;
    parent.set(q, r);
    return r;
  };
  const exhausted = new Set<string>();
  for (const node of p.nodes) {
    node.qubits.forEach((q, j) => {
      const shared = fw.foreign.get(q);
      if (shared === undefined || SHARED_QUBIT_OPS.has(node.op)) return;
      out.add(
        node.id,
        `${node.source}.vqs[${j}]`,
        9,
        `${quote(q)} is another tenant's qubit shared through channel ${quote(shared.channel)}: only entangling gates (CNOT, CZ, SWAP, TOFFOLI, TELEPORT_CNOT) may use it, not ${node.op}`,
        'error',
        'RIGHTS_INSUFFICIENT',
      );
    });
    if (!OP_SPECS[node.op].entangles) continue;
    const roots = [...new Set(node.qubits.filter((q) => parent.has(q)).map(root))];
    if (roots.length < 2) continue;
    const joined = new Set(roots.flatMap((r) => [...tenants.get(r)!]));
    if (joined.size > 1) {
      const preferred = new Set(node.qubits.flatMap((q) => fw.foreign.get(q)?.channel ?? []));
      if (node.args.channel !== undefined) preferred.add(node.args.channel);
      try {
        for (const ch of fw.decide([...joined], preferred)) {
          const n = (uses.get(ch.id) ?? 0) + 1;
          uses.set(ch.id, n);
          if (n > ch.usesLeft && !exhausted.has(ch.id)) {
            exhausted.add(ch.id);
            const message = `firewall: channel ${ch.id} has ${ch.usesLeft} entanglement(s) left; this is the program's join number ${n} across tenants through it`;
            out.add(node.id, `${node.source}.vqs`, 9, message, 'error', 'CHANNEL_EXHAUSTED');
          }
        }
      } catch (err) {
        if (!(err instanceof KernelError)) throw err;
        out.add(node.id, `${node.source}.vqs`, 9, err.message, 'error', err.code);
      }
    }
    const [first, ...rest] = roots;
    for (const r of rest) {
      parent.set(r, first!);
      for (const t of tenants.get(r)!) tenants.get(first!)!.add(t);
    }
  }
  return uses;
}

// Rule 10: bounds.

export interface Clusters {
  largest: number;
  /** The first node at which a cluster grows past `limits.qubitsPerClusterMax`. */
  overAt: string | null;
  stateBytes: number;
}

/**
 * Union-find over every multi-qubit op that can entangle (guards ignored): the partition of the
 * program's qubits into sets that can become one state vector. Each part is sized by its final
 * (largest) membership, so Σ 16·2^size bounds the state held at any moment.
 */
export function estimateClusters(p: Program, ctx: VerifyContext): Clusters {
  const id = new Map<string, number>();
  const parent: number[] = [];
  const size: number[] = [];
  const add = (name: string) => {
    if (id.has(name)) return;
    id.set(name, parent.length);
    parent.push(parent.length);
    size.push(1);
  };
  const root = (i: number): number => {
    let r = i;
    while (parent[r] !== r) r = parent[r]!;
    for (let j = i; j !== r; ) {
      const up = parent[j]!;
      parent[j] = r; // path compression: later finds on this path take one step
      j = up;
    }
    return r;
  };
  for (const name of ctx.bound ?? []) add(name);
  for (const node of p.nodes) for (const q of node.qubits) add(q);
  const result: Clusters = { largest: parent.length > 0 ? 1 : 0, overAt: null, stateBytes: 0 };
  for (const node of p.nodes) {
    if (!OP_SPECS[node.op].entangles) continue;
    for (const q of node.qubits.slice(1)) {
      let a = root(id.get(node.qubits[0]!)!);
      let b = root(id.get(q)!);
      if (a === b) continue;
      if (size[a]! < size[b]!) [a, b] = [b, a];
      parent[b] = a;
      size[a] = size[a]! + size[b]!;
      result.largest = Math.max(result.largest, size[a]!);
    }
    if (result.largest > ctx.limits.qubitsPerClusterMax && result.overAt === null) {
      result.overAt = node.id;
    }
  }
  for (let i = 0; i < parent.length; i++) {
    if (parent[i] === i) result.stateBytes = saturatingAdd(result.stateBytes, stateBytes(size[i]!));
  }
  return result;
}

export function checkBounds(
  p: Program,
  ctx: VerifyContext,
  life: Lifetimes,
  clusters: Clusters,
  out: ViolationList,
): void {
  const { limits } = ctx;
  const over = (node: string, field: keyof VerifyContext['limits'], what: string, limit: number) =>
    out.add(node, `limits.${field}`, 10, `${what}; the limit is ${limit} (limits.${field})`);
  if (p.nodes.length > limits.nodesMax) {
    over('', 'nodesMax', `the program has ${p.nodes.length} nodes`, limits.nodesMax);
  }
  const first = (node: string) => `(first exceeded at node ${quote(node)})`;
  if (life.liveOverAt !== null) {
    const at = `${life.peakLive} qubits are live at once ${first(life.liveOverAt)}`;
    over(life.liveOverAt, 'qubitsLiveMax', at, limits.qubitsLiveMax);
  }
  if (clusters.overAt !== null) {
    const at = `${clusters.largest} qubits can become entangled together ${first(clusters.overAt)}`;
    over(clusters.overAt, 'qubitsPerClusterMax', at, limits.qubitsPerClusterMax);
  }
  if (life.physicalOverAt !== null) {
    const at = `${life.peakPhysical} physical qubits live at once ${first(life.physicalOverAt)}`;
    over(life.physicalOverAt, 'physicalQubitsMax', at, limits.physicalQubitsMax);
  }
  if (clusters.stateBytes > limits.stateBytesMax) {
    over(
      '',
      'stateBytesMax',
      `the state vectors need ${clusters.stateBytes} bytes`,
      limits.stateBytesMax,
    );
  }
}
