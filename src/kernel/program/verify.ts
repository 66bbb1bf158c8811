/**
 * The static verifier: decides whether a parsed program may run, by every rule of docs/programs.md
 * (1–8 and 10; rule 9, the cross-tenant firewall, is marked where it will go), and estimates the
 * resources it needs. Layer: kernel (pure); imports only `kernel/` and node built-ins.
 *
 * Invariants: it never throws on any well-typed `Program` (names such as `__proto__` are only
 * ever Map/Set keys); it returns every violation at once, each with node id, field path and rule
 * number, so a tenant fixes a program in one round trip; every loop is bounded by the program's
 * size and the violation list by `VIOLATIONS_MAX`.
 *
 * Why static and conservative: guards make the real execution path depend on measurement
 * outcomes, so the verifier over-approximates: a node under a guard is assumed to maybe run
 * (linearity tracks "maybe allocated" / "maybe freed"), and clusters are unions over every
 * multi-qubit op whether or not its guard holds. The kernel re-checks what depends on the path
 * actually taken when it runs the program.
 *
 * The rules live in three files: rules 2 to 6 here, rule 7 in `verify-lifetimes.ts`, rules 8 to 10
 * in `verify-resources.ts`; what they share is `verify-base.ts`'s.
 */

import assert from 'node:assert';
import type { Program, ProgramNode, Violation } from './ir.js';
import {
  CYCLE_NODES_LISTED_MAX,
  type Index,
  MANY,
  OP_SPECS,
  type Range,
  type Read,
  type ResourceEstimate,
  type VerifyContext,
  ViolationList,
  indexProgram,
  physicalPerLogical,
  quote,
} from './verify-base.js';
import { checkLinearity } from './verify-lifetimes.js';
import { checkBounds, checkCaps, checkFirewall, estimateClusters } from './verify-resources.js';

export {
  CYCLE_NODES_LISTED_MAX,
  type FirewallContext,
  OP_SPECS,
  PROFILE_CHARS_MAX,
  PROFILE_DISTANCE_MAX,
  PROFILE_KEY_IDEAL,
  type ResourceEstimate,
  SHARED_QUBIT_OPS,
  VIOLATIONS_MAX,
  type VerifyContext,
  ViolationList,
  mergeViolations,
  physicalPerLogical,
  quote,
} from './verify-base.js';

/**
 * Verifies a program against every rule of docs/programs.md and estimates its resources.
 * Never throws; all violations come back together, sorted by rule.
 */
export function verifyProgram(
  p: Program,
  ctx: VerifyContext,
): { violations: Violation[]; estimate: ResourceEstimate; channelUses: Map<string, number> } {
  const out = new ViolationList();
  const ix = indexProgram(p);
  checkNodeIds(p, out); // rule 2
  checkDeclared(ix, ctx, out); // rule 3
  checkEvents(ix, out); // rule 4
  checkCycles(ix, out); // rule 5
  p.nodes.forEach((node) => checkOperands(node, out)); // rule 6
  const life = checkLinearity(ix, ctx, out); // rule 7
  checkCaps(p, ctx, out); // rule 8
  const channelUses = checkFirewall(p, ctx, out); // rule 9
  const clusters = estimateClusters(p, ctx);
  checkBounds(p, ctx, life, clusters, out); // rule 10
  const gateCounts: Record<string, number> = {};
  for (const node of p.nodes) gateCounts[node.op] = (gateCounts[node.op] ?? 0) + 1;
  return {
    violations: out.finish(),
    estimate: {
      logicalQubits: life.peakLive,
      physicalQubits: life.peakPhysical,
      physicalByProfile: Object.fromEntries(life.byProfileAtPeak),
      largestCluster: clusters.largest,
      gateCounts,
      stateBytes: clusters.stateBytes,
      nodes: p.nodes.length,
    },
    channelUses,
  };
}

/** Rule 2: node ids are unique (their shape and the op's name are the parser's to check). */
function checkNodeIds(p: Program, out: ViolationList): void {
  const first = new Map<string, string>();
  for (const node of p.nodes) {
    const earlier = first.get(node.id);
    if (earlier === undefined) {
      first.set(node.id, node.source);
    } else {
      const message = `node id ${quote(node.id)} is already used by ${earlier}`;
      out.add(node.id, `${node.source}.id`, 2, message);
    }
  }
}

/** Rule 3: every name a node uses is declared in `resources` (and so is every bound qubit). */
function checkDeclared(ix: Index, ctx: VerifyContext, out: ViolationList): void {
  const undeclared = (node: ProgramNode, field: string, what: string, name: string, list: string) =>
    out.add(node.id, field, 3, `${what} ${quote(name)} is not declared in resources.${list}`);
  ix.p.nodes.forEach((node, i) => {
    node.qubits.forEach((name, j) => {
      if (!ix.qubits.has(name)) undeclared(node, `${node.source}.vqs[${j}]`, 'vq', name, 'vqs');
    });
    node.channels.forEach((name, j) => {
      if (!ix.channels.has(name)) {
        undeclared(node, `${node.source}.chs[${j}]`, 'channel', name, 'chs');
      }
    });
    node.produces.forEach((name, j) => {
      if (!ix.events.has(name)) {
        undeclared(node, `${node.source}.produces[${j}]`, 'event', name, 'events');
      }
    });
    for (const r of ix.reads[i]!) {
      if (!ix.events.has(r.event)) undeclared(node, r.field, 'event', r.event, 'events');
    }
  });
  (ctx.bound ?? []).forEach((name, i) => {
    if (!ix.qubits.has(name)) {
      out.add('', `bound[${i}]`, 3, `bound qubit ${quote(name)} is not declared in resources.vqs`);
    }
  });
}

/**
 * Rule 4: every declared event has exactly one producer, and every read of a declared event has a
 * producer that runs earlier in program order. Undeclared events are rule 3's, reported once.
 */
function checkEvents(ix: Index, out: ViolationList): void {
  const { p } = ix;
  const producedBy = new Map<string, string>();
  for (const node of p.nodes) {
    node.produces.forEach((e, j) => {
      if (!ix.events.has(e)) return;
      const earlier = producedBy.get(e);
      if (earlier === undefined) {
        producedBy.set(e, node.id);
        return;
      }
      const message = `event ${quote(e)} is produced twice: already by node ${quote(earlier)}`;
      out.add(node.id, `${node.source}.produces[${j}]`, 4, message);
    });
  }
  p.events.forEach((e, k) => {
    if (!producedBy.has(e)) {
      out.add('', `resources.events[${k}]`, 4, `event ${quote(e)} has no producer`);
    }
  });
  p.nodes.forEach((node, i) => {
    for (const r of ix.reads[i]!) {
      if (!ix.events.has(r.event)) continue;
      const at = ix.producer.get(r.event);
      if (at === undefined) {
        out.add(node.id, r.field, 4, `node reads event ${quote(r.event)}, which no node produces`);
      } else if (at === i) {
        out.add(
          node.id,
          r.field,
          4,
          `node reads event ${quote(r.event)}, which it produces itself`,
        );
      } else if (at > i) {
        out.add(
          node.id,
          r.field,
          4,
          `node reads event ${quote(r.event)} before node ${quote(p.nodes[at]!.id)} produces it`,
        );
      }
    }
  });
}

/**
 * Rule 5: the dependency graph — event edges (producer → reader) plus per-qubit and per-channel
 * program order — is acyclic. Order edges always point forward, so a cycle needs a backward event
 * edge (a read of an event produced later); each strongly connected component is reported once,
 * at such a read inside it.
 */
function checkCycles(ix: Index, out: ViolationList): void {
  const { p } = ix;
  const adj: number[][] = p.nodes.map(() => []);
  const lastOnQubit = new Map<string, number>();
  const lastOnChannel = new Map<string, number>();
  p.nodes.forEach((node, i) => {
    for (const [names, last] of [
      [node.qubits, lastOnQubit],
      [node.channels, lastOnChannel],
    ] as const) {
      for (const name of names) {
        const prev = last.get(name);
        if (prev !== undefined && prev !== i) adj[prev]!.push(i);
        last.set(name, i);
      }
    }
    for (const r of ix.reads[i]!) {
      const at = ix.producer.get(r.event);
      if (at !== undefined) adj[at]!.push(i);
    }
  });
  for (const comp of cyclicComponents(adj)) {
    const inComp = new Set(comp);
    const ids = comp.slice(0, CYCLE_NODES_LISTED_MAX).map((i) => quote(p.nodes[i]!.id));
    const more =
      comp.length > CYCLE_NODES_LISTED_MAX
        ? ` and ${comp.length - CYCLE_NODES_LISTED_MAX} more`
        : '';
    const back = findBackwardRead(ix, comp, inComp);
    assert(back !== null, 'a dependency cycle contains a backward event edge');
    const reader = quote(p.nodes[back.reader]!.id);
    const producer = quote(p.nodes[back.producer]!.id);
    const event = quote(back.read.event);
    const why = `${reader} waits for event ${event} from ${producer}, which waits for ${reader}`;
    out.add(
      p.nodes[back.reader]!.id,
      back.read.field,
      5,
      `dependency cycle among nodes ${ids.join(', ')}${more}: ${why}`,
    );
  }
}

function findBackwardRead(
  ix: Index,
  comp: readonly number[],
  inComp: ReadonlySet<number>,
): { reader: number; producer: number; read: Read } | null {
  for (const reader of comp) {
    for (const read of ix.reads[reader]!) {
      const producer = ix.producer.get(read.event);
      if (producer !== undefined && producer >= reader && inComp.has(producer)) {
        return { reader, producer, read };
      }
    }
  }
  return null;
}

/**
 * Tarjan's strongly connected components, iterative (no recursion depth to overflow); returns
 * the components that contain a cycle (more than one node, or a node with an edge to itself),
 * each sorted by program order.
 */
function cyclicComponents(adj: readonly number[][]): number[][] {
  const n = adj.length;
  const index = new Int32Array(n).fill(-1);
  const low = new Int32Array(n);
  const onStack = new Uint8Array(n);
  const stack: number[] = [];
  const found: number[][] = [];
  let next = 0;
  const visit = (v: number, work: [number, number][]) => {
    index[v] = next;
    low[v] = next;
    next += 1;
    stack.push(v);
    onStack[v] = 1;
    work.push([v, 0]);
  };
  for (let s = 0; s < n; s++) {
    if (index[s] !== -1) continue;
    const work: [number, number][] = [];
    visit(s, work);
    while (work.length > 0) {
      const top = work[work.length - 1]!;
      const v = top[0];
      const edges = adj[v]!;
      if (top[1] < edges.length) {
        const w = edges[top[1]]!;
        top[1] += 1;
        if (index[w] === -1) visit(w, work);
        else if (onStack[w] === 1) low[v] = Math.min(low[v]!, index[w]!);
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent !== undefined) low[parent[0]] = Math.min(low[parent[0]]!, low[v]!);
      if (low[v] !== index[v]) continue;
      const comp: number[] = [];
      for (let w = stack.pop(); w !== undefined; w = stack.pop()) {
        onStack[w] = 0;
        comp.push(w);
        if (w === v) break;
      }
      if (comp.length > 1 || edges.includes(v)) found.push(comp.sort((a, b) => a - b));
    }
  }
  return found;
}

/** Rule 6: operand counts, distinct operands and arguments, per the opcode table. */
function checkOperands(node: ProgramNode, out: ViolationList): void {
  const spec = OP_SPECS[node.op];
  const at = (field: string) => `${node.source}.${field}`;
  const counts: [string, readonly string[], Range, string][] = [
    ['vqs', node.qubits, spec.vqs, 'vqs'],
    ['chs', node.channels, spec.chs, 'channels'],
    ['produces', node.produces, spec.produces, 'events'],
  ];
  for (const [field, list, range, noun] of counts) {
    if (list.length < range[0] || list.length > range[1]) {
      const verb = field === 'produces' ? 'produces' : 'takes';
      out.add(
        node.id,
        at(field),
        6,
        `${node.op} ${verb} ${describeRange(range, noun)}, got ${list.length}`,
      );
    }
    if (field === 'produces') continue; // a twice-produced event is rule 4's
    const seen = new Set<string>();
    list.forEach((name, j) => {
      if (seen.has(name)) {
        out.add(
          node.id,
          at(`${field}[${j}]`),
          6,
          `${quote(name)} appears twice in ${node.op}: operands must be distinct`,
        );
      }
      seen.add(name);
    });
  }
  if (!spec.inputs && node.inputs.length > 0) {
    out.add(
      node.id,
      at('inputs'),
      6,
      `${node.op} reads no inputs (only COND_PAULI does); use a guard to make it conditional`,
    );
  }
  checkArgs(node, at, out);
}

function describeRange([min, max]: Range, noun: string): string {
  if (max === 0) return `no ${noun}`;
  if (min === max) return `${min} ${min === 1 ? noun.replace(/s$/, '') : noun}`;
  if (max === MANY) return `at least ${min} ${min === 1 ? noun.replace(/s$/, '') : noun}`;
  return `${min} or ${max} ${noun}`;
}

function checkArgs(node: ProgramNode, at: (field: string) => string, out: ViolationList): void {
  const { args, op } = node;
  const finite = (key: 'theta' | 'angle') => {
    const v = args[key];
    if (v === undefined) {
      out.add(node.id, at(`args.${key}`), 6, `${op} needs args.${key} (radians, finite)`);
    } else if (!Number.isFinite(v)) {
      out.add(node.id, at(`args.${key}`), 6, `args.${key} must be finite, got ${v}`);
    }
  };
  if (op === 'APPLY_RX' || op === 'APPLY_RY' || op === 'APPLY_RZ') finite('theta');
  if (op === 'MEASURE_ANGLE') finite('angle');
  if (op === 'COND_PAULI' && args.mask === undefined) {
    out.add(
      node.id,
      at('args.mask'),
      6,
      'COND_PAULI needs args.mask (or pauli): one of I, X, Y, Z',
    );
  }
  if (
    op === 'OPEN_CHAN' &&
    args.fidelity !== undefined &&
    !(args.fidelity > 0 && args.fidelity <= 1)
  ) {
    out.add(
      node.id,
      at('args.fidelity'),
      6,
      `args.fidelity must be in (0, 1], got ${args.fidelity}`,
    );
  }
  if (op !== 'ALLOC_LQ') return;
  if (args.n !== undefined && args.n !== node.qubits.length) {
    out.add(
      node.id,
      at('args.n'),
      6,
      `args.n must equal the number of vqs (${node.qubits.length}), got ${args.n}`,
    );
  }
  if (args.profile !== undefined) {
    const perLogical = physicalPerLogical(args.profile);
    if (typeof perLogical === 'string') out.add(node.id, at('args.profile'), 6, perLogical);
  }
}
