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
 */
import assert from 'node:assert';
import { KernelError } from '../errors.js';
import { stateBytes } from '../limits.js';
import type { Guard, Opcode, Program, ProgramNode, Violation } from './ir.js';

/** One reply carries at most this many violations, plus one line saying how many were left out. */
export const VIOLATIONS_MAX = 256;
/** A cycle's message lists this many node ids, then "and N more". */
export const CYCLE_NODES_LISTED_MAX = 8;
/** Names are quoted in messages up to this length, so junk input cannot bloat a reply. */
export const NAME_IN_MESSAGE_CHARS_MAX = 64;
/** A profile string longer than this is junk, refused before it is matched. */
export const PROFILE_CHARS_MAX = 128;
/** Code distance ceiling: d = 10 000 is 2·10^8 physical per logical, beyond any real device. */
export const PROFILE_DISTANCE_MAX = 10_000;
/** Physical accounting for a qubit allocated without a profile: one ideal logical qubit. */
export const PROFILE_KEY_IDEAL = 'ideal';

export interface VerifyContext {
  /** Caps the submitting session holds (rule 8). */
  caps: readonly string[];
  /** Rule 7: a qubit or channel still allocated at the end is an error, else a warning. */
  strict: boolean;
  limits: {
    nodesMax: number;
    qubitsLiveMax: number;
    qubitsPerClusterMax: number;
    physicalQubitsMax: number;
    stateBytesMax: number;
  };
  /**
   * Program qubit names bound to session qubits of the caller (job bindings); empty for
   * fresh-qubit jobs. Bound qubits count as allocated from the start.
   */
  bound?: readonly string[];
  /**
   * Rule 9, for jobs that bind another tenant's qubits (shared through channels). Absent, or
   * with no foreign names, when every qubit of the program is the submitter's.
   */
  firewall?: FirewallContext;
}

/** What rule 9 needs to know about tenants and channels; the kernel supplies it. */
export interface FirewallContext {
  /** The submitting tenant: every program qubit not in `foreign` is its. */
  tenant: string;
  /** Bound program qubit names that are another tenant's qubit: its owner and the channel shared through. */
  foreign: ReadonlyMap<string, { tenant: string; channel: string }>;
  /**
   * The kernel's firewall decision for one join of clusters holding qubits of `tenants`: per pair
   * of tenants, the channel it would use (a `preferred` one first) and that channel's uses left.
   * Throws a `KernelError` whose code is the refusal's reason.
   */
  decide(
    tenants: readonly string[],
    preferred: ReadonlySet<string>,
  ): readonly { id: string; usesLeft: number }[];
}

/**
 * Ops a shared (foreign) qubit may appear in: entangling gates only. A shared handle grants no
 * way to measure, reset, rotate or free another tenant's qubit.
 */
export const SHARED_QUBIT_OPS: ReadonlySet<Opcode> = new Set([
  'APPLY_CNOT',
  'APPLY_CZ',
  'APPLY_SWAP',
  'APPLY_TOFFOLI',
  'TELEPORT_CNOT',
]);

export interface ResourceEstimate {
  /** Peak number of program qubits live at once (bound qubits included, guarded ones counted). */
  logicalQubits: number;
  /** Peak physical qubits live at once (bound qubits excluded: the session already holds them). */
  physicalQubits: number;
  /** The physical qubits at that peak, by profile string (`ideal` for no profile). */
  physicalByProfile: Record<string, number>;
  /**
   * Qubits in the largest set that can become entangled together (guards ignored). Program qubits
   * only: a bound qubit's existing session cluster is the kernel's to add.
   */
  largestCluster: number;
  /** Number of nodes per opcode. */
  gateCounts: Record<string, number>;
  /** Σ 16·2^size over that cluster partition; saturates at Number.MAX_SAFE_INTEGER. */
  stateBytes: number;
  nodes: number;
}

type Severity = Violation['severity'];

/**
 * Collects violations up to `VIOLATIONS_MAX`; `finish` sorts them by rule (stable) and, when
 * some were dropped, appends one rule-10 violation (a bound) at field `violations` saying so.
 */
export class ViolationList {
  private readonly items: Violation[] = [];
  private dropped = 0;

  add(
    node: string,
    field: string,
    rule: number,
    message: string,
    severity: Severity = 'error',
    code?: string,
  ) {
    if (this.items.length >= VIOLATIONS_MAX) {
      this.dropped += 1;
      return;
    }
    this.items.push(
      code === undefined
        ? { node, field, rule, message, severity }
        : { node, field, rule, message, severity, code },
    );
  }

  finish(): Violation[] {
    const out = [...this.items].sort((a, b) => a.rule - b.rule);
    if (this.dropped > 0) {
      out.push({
        node: '',
        field: 'violations',
        rule: 10,
        message: `${this.dropped} further violations not listed (at most ${VIOLATIONS_MAX} are)`,
        severity: 'error',
      });
    }
    return out;
  }
}

/** `"name"`, cut to `NAME_IN_MESSAGE_CHARS_MAX` characters. */
export function quote(name: string): string {
  const cut = name.length > NAME_IN_MESSAGE_CHARS_MAX;
  return JSON.stringify(cut ? `${name.slice(0, NAME_IN_MESSAGE_CHARS_MAX)}…` : name);
}

/**
 * Merges the parser's violations with the verifier's. A verifier violation whose field is the
 * same as, inside, or around a field the parser already rejected is the same fault seen twice
 * (a wrongly typed `theta` reaches the verifier as a missing one), so it is dropped.
 */
export function mergeViolations(
  parsed: readonly Violation[],
  verified: readonly Violation[],
): Violation[] {
  const related = (a: string, b: string) =>
    a === b || b.startsWith(`${a}.`) || b.startsWith(`${a}[`);
  const seen = parsed.filter((p) => p.field !== '').map((p) => p.field);
  const kept = verified.filter(
    (v) => !seen.some((f) => related(f, v.field) || related(v.field, f)),
  );
  return [...parsed, ...kept].sort((a, b) => a.rule - b.rule);
}

// The opcode table (docs/programs.md), one row per opcode so the compiler makes it total.

const MANY = Number.POSITIVE_INFINITY;
type Range = readonly [min: number, max: number];

interface OpSpec {
  vqs: Range;
  chs: Range;
  produces: Range;
  /** Only COND_PAULI reads `inputs`; on any other op they would silently condition nothing. */
  inputs: boolean;
  cap: string | null;
  /** Can join its qubits into one cluster (2- and 3-qubit gates, channel and Bell ops). */
  entangles: boolean;
}

const NONE: Range = [0, 0];
const ONE: Range = [1, 1];
const gate1: OpSpec = {
  vqs: ONE,
  chs: NONE,
  produces: NONE,
  inputs: false,
  cap: 'CAP_COMPUTE',
  entangles: false,
};
const gate2: OpSpec = { ...gate1, vqs: [2, 2], entangles: true };
const measure1: OpSpec = { ...gate1, produces: ONE, cap: 'CAP_MEASURE' };
const annotation: OpSpec = { ...gate1, vqs: NONE, cap: null };
const link: OpSpec = { ...gate1, vqs: NONE, chs: ONE, cap: 'CAP_LINK' };

export const OP_SPECS: Readonly<Record<Opcode, OpSpec>> = {
  ALLOC_LQ: { ...gate1, vqs: [1, MANY], cap: 'CAP_ALLOC' },
  FREE_LQ: { ...gate1, vqs: [1, MANY], cap: 'CAP_ALLOC' },
  RESET: { ...gate1, vqs: [1, MANY] },
  APPLY_H: gate1,
  APPLY_X: gate1,
  APPLY_Y: gate1,
  APPLY_Z: gate1,
  APPLY_S: gate1,
  APPLY_SDG: gate1,
  APPLY_T: gate1,
  APPLY_TDG: gate1,
  APPLY_RX: gate1,
  APPLY_RY: gate1,
  APPLY_RZ: gate1,
  APPLY_CNOT: gate2,
  APPLY_CZ: gate2,
  APPLY_SWAP: gate2,
  APPLY_TOFFOLI: { ...gate2, vqs: [3, 3] },
  MEASURE_Z: measure1,
  MEASURE_X: measure1,
  MEASURE_Y: measure1,
  MEASURE_ANGLE: measure1,
  MEASURE_BELL: { ...measure1, vqs: [2, 2], produces: [1, 2], entangles: true },
  COND_PAULI: { ...gate1, vqs: [1, MANY], inputs: true },
  INJECT_T_STATE: { ...gate1, cap: 'CAP_MAGIC' },
  TELEPORT_CNOT: { ...gate2, cap: 'CAP_TELEPORT' },
  OPEN_CHAN: { ...link, vqs: [2, 2], entangles: true },
  USE_CHAN: link,
  CLOSE_CHAN: { ...link, chs: [1, MANY] },
  FENCE_EPOCH: annotation,
  BAR_REGION: annotation,
  SET_POLICY: annotation,
};

// Profiles: `logical:<family>(d=<int>[,k=<int>][,rate=<float>])`, family case-insensitive.

const PROFILE_PATTERN = /^logical:([A-Za-z_][A-Za-z0-9_]*)\(([^()]*)\)$/;
const INT_PATTERN = /^[0-9]{1,9}$/;
const FLOAT_PATTERN = /^(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]{1,3})?$/;

/** Physical qubits per logical qubit by family, from distance d and (qLDPC) rate. */
const FAMILIES: Readonly<Record<string, (d: number, rate: number | null) => number | string>> = {
  surface: (d) => 2 * d * d,
  surface_code: (d) => 2 * d * d,
  shyps: (d) => Math.floor(1.5 * d * d),
  bacon_shor: (d) => d * d,
  qldpc: (d, rate) => (rate === null ? 'qldpc needs rate=<float>' : Math.ceil((d * d) / rate)),
};

/** Physical qubits per logical for a profile string, or the reason it is not a valid profile. */
export function physicalPerLogical(profile: string): number | string {
  const m = profile.length <= PROFILE_CHARS_MAX ? PROFILE_PATTERN.exec(profile) : null;
  if (m === null) return 'profile must read logical:<family>(d=<int>[,k=<int>][,rate=<float>])';
  const family = m[1]!.toLowerCase();
  if (!Object.hasOwn(FAMILIES, family)) {
    return `unknown code family ${quote(m[1]!)} (surface, surface_code, SHYPS, bacon_shor, qldpc)`;
  }
  const params = new Map<string, string>();
  for (const part of m[2]!.split(',')) {
    const [key = '', value, ...rest] = part.split('=').map((s) => s.trim());
    if (value === undefined || rest.length > 0) {
      return `profile parameter ${quote(part)} is not key=value`;
    }
    if (key !== 'd' && key !== 'k' && key !== 'rate') {
      return `unknown profile parameter ${quote(key)}`;
    }
    if (params.has(key)) return `profile parameter ${key} is given twice`;
    params.set(key, value);
  }
  const dText = params.get('d');
  if (dText === undefined) return 'profile is missing the code distance d=<int>';
  const d = INT_PATTERN.test(dText) ? Number(dText) : Number.NaN;
  if (!(d >= 1 && d <= PROFILE_DISTANCE_MAX)) {
    return `d must be an integer in 1..${PROFILE_DISTANCE_MAX}`;
  }
  const kText = params.get('k');
  if (kText !== undefined && !(INT_PATTERN.test(kText) && Number(kText) >= 1)) {
    return 'k must be a positive integer';
  }
  const rateText = params.get('rate');
  const rate = rateText === undefined ? null : FLOAT_PATTERN.test(rateText) ? Number(rateText) : -1;
  if (rate !== null && !(rate > 0 && rate <= 1)) return 'rate must be a number in (0, 1]';
  return FAMILIES[family]!(d, rate);
}

interface Read {
  event: string;
  field: string;
}

/** What every rule needs, computed once. */
interface Index {
  p: Program;
  qubits: Set<string>;
  channels: Set<string>;
  events: Set<string>;
  /** Per node: the events it reads (inputs, then guard events left to right) with field paths. */
  reads: Read[][];
  /** First producer (node index) of each event, declared or not: the dependency edges. */
  producer: Map<string, number>;
}

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

function indexProgram(p: Program): Index {
  const reads = p.nodes.map((node) => [
    ...node.inputs.map((event, j) => ({ event, field: `${node.source}.inputs[${j}]` })),
    ...(node.guard === undefined ? [] : guardReads(node.guard, `${node.source}.guard`)),
  ]);
  const producer = new Map<string, number>();
  p.nodes.forEach((node, i) => {
    for (const e of node.produces) if (!producer.has(e)) producer.set(e, i);
  });
  return {
    p,
    qubits: new Set(p.qubits),
    channels: new Set(p.channels),
    events: new Set(p.events),
    reads,
    producer,
  };
}

/** The guard's event leaves, left to right; iterative, so no guard depth can overflow the stack. */
function guardReads(guard: Guard, path: string): Read[] {
  const found: Read[] = [];
  const stack: { g: Guard; path: string }[] = [{ g: guard, path }];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const { g } = top;
    if ('event' in g) {
      found.push({ event: g.event, field: `${top.path}.event` });
      continue;
    }
    for (let k = g.conditions.length - 1; k >= 0; k--) {
      stack.push({ g: g.conditions[k]!, path: `${top.path}.conditions[${k}]` });
    }
  }
  return found;
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

// Rule 7: linearity, walked in program order (which every valid schedule keeps per qubit).

/** `maybe*` states come from a guarded ALLOC / FREE (or OPEN / CLOSE): it may not have run. */
type Life = 'unallocated' | 'live' | 'freed' | 'maybeLive' | 'maybeFreed';

interface Track {
  state: Life;
  /** The node (id, field) that set `state`, for messages and the leftover warning. */
  since: { node: string; field: string };
  /** Allocated (or RESET) and untouched since: what INJECT_T_STATE needs. */
  fresh: boolean;
  bound: boolean;
  physical: number;
  profile: string | null;
}

interface Lifetimes {
  peakLive: number;
  /** The first node after which the live count exceeds `limits.qubitsLiveMax`. */
  liveOverAt: string | null;
  peakPhysical: number;
  physicalOverAt: string | null;
  byProfileAtPeak: Map<string, number>;
}

const counted = (s: Life) => s === 'live' || s === 'maybeLive' || s === 'maybeFreed';

/** Qubit words; channels reuse the walk with their own. */
const QUBIT_WORDS = { what: 'vq', open: 'ALLOC_LQ', close: 'FREE_LQ', held: 'allocated' };
const CHANNEL_WORDS = { what: 'channel', open: 'OPEN_CHAN', close: 'CLOSE_CHAN', held: 'open' };
type Words = typeof QUBIT_WORDS;

/** Live and physical counts over the walk, with their peaks and where a limit was first passed. */
class Ledger {
  live = 0;
  physical = 0;
  private readonly byProfile = new Map<string, number>();
  readonly result: Lifetimes;

  constructor(
    private readonly limits: VerifyContext['limits'],
    bound: number,
  ) {
    this.live = bound;
    this.result = {
      peakLive: bound,
      liveOverAt: null,
      peakPhysical: 0,
      physicalOverAt: null,
      byProfileAtPeak: new Map(),
    };
  }

  /** A qubit entered (+1) or left (-1) the live set. Bound qubits cost no new hardware. */
  move(t: Track, delta: 1 | -1): void {
    this.live += delta;
    if (t.bound || t.physical === 0) return;
    this.physical = saturatingAdd(this.physical, delta * t.physical);
    const key = t.profile ?? PROFILE_KEY_IDEAL;
    this.byProfile.set(key, (this.byProfile.get(key) ?? 0) + delta * t.physical);
  }

  /** After each node: record peaks and the first node past each limit. */
  settle(nodeId: string): void {
    const r = this.result;
    r.peakLive = Math.max(r.peakLive, this.live);
    if (this.live > this.limits.qubitsLiveMax && r.liveOverAt === null) r.liveOverAt = nodeId;
    if (this.physical > r.peakPhysical) {
      r.peakPhysical = this.physical;
      r.byProfileAtPeak = new Map([...this.byProfile].filter(([, v]) => v > 0));
    }
    if (this.physical > this.limits.physicalQubitsMax && r.physicalOverAt === null) {
      r.physicalOverAt = nodeId;
    }
  }
}

function newTrack(): Track {
  return {
    state: 'unallocated',
    since: { node: '', field: '' },
    fresh: false,
    bound: false,
    physical: 0,
    profile: null,
  };
}

function checkLinearity(ix: Index, ctx: VerifyContext, out: ViolationList): Lifetimes {
  const qubits = new Map<string, Track>();
  const channels = new Map<string, Track>();
  for (const name of ix.qubits) qubits.set(name, newTrack());
  for (const name of ix.channels) channels.set(name, newTrack());
  let bound = 0;
  (ctx.bound ?? []).forEach((name, i) => {
    const t = qubits.get(name);
    if (t === undefined || t.bound) return; // undeclared (rule 3) or listed twice
    Object.assign(t, { state: 'live', since: { node: '', field: `bound[${i}]` }, bound: true });
    bound += 1;
  });
  const ledger = new Ledger(ctx.limits, bound);
  const reported = new Set<string>();
  const report: Report = (key, node, field, message) => {
    if (reported.has(key)) return; // one report per name and fault: the rest is the same cause
    reported.add(key);
    out.add(node.id, field, 7, message);
  };
  for (const node of ix.p.nodes) {
    const guarded = node.guard !== undefined;
    const spec = OP_SPECS[node.op];
    const seen = new Set<string>();
    // A list the op does not take (vqs on a fence, chs on a gate) is rule 6's alone.
    const vqs = spec.vqs[1] > 0 ? node.qubits : [];
    const chs = spec.chs[1] > 0 ? node.channels : [];
    vqs.forEach((name, j) => {
      const t = qubits.get(name);
      if (t === undefined || seen.has(name)) return; // undeclared (rule 3) or repeated (rule 6)
      seen.add(name);
      const before = counted(t.state);
      step(t, name, node, `${node.source}.vqs[${j}]`, guarded, QUBIT_WORDS, report);
      if (!before && counted(t.state)) {
        allocPhysical(t, node);
        ledger.move(t, 1);
      } else if (before && !counted(t.state)) {
        ledger.move(t, -1);
      }
    });
    seen.clear();
    chs.forEach((name, j) => {
      const t = channels.get(name);
      if (t === undefined || seen.has(name)) return;
      seen.add(name);
      step(t, name, node, `${node.source}.chs[${j}]`, guarded, CHANNEL_WORDS, report);
    });
    ledger.settle(node.id);
  }
  leftovers(qubits, QUBIT_WORDS, ctx.strict, out);
  leftovers(channels, CHANNEL_WORDS, ctx.strict, out);
  return ledger.result;
}

function allocPhysical(t: Track, node: ProgramNode): void {
  const profile = node.args.profile;
  if (profile === undefined) {
    t.physical = 1;
    t.profile = null;
    return;
  }
  // An invalid profile is rule 6's violation; it adds nothing to the physical count.
  const perLogical = physicalPerLogical(profile);
  t.physical = typeof perLogical === 'number' ? perLogical : 0;
  t.profile = profile;
}

type Report = (key: string, node: ProgramNode, field: string, message: string) => void;

/**
 * One name's step through one node. `open`/`close` are ALLOC_LQ/FREE_LQ (OPEN_CHAN/CLOSE_CHAN for
 * channels); every other op is a use. After a fault the state is kept, so one mistake is reported
 * once, not again at every later use.
 */
function step(
  t: Track,
  name: string,
  node: ProgramNode,
  field: string,
  guarded: boolean,
  w: Words,
  report: Report,
): void {
  const n = `${w.what} ${quote(name)}`;
  const by = t.since.node === '' ? 'by its binding' : `by node ${quote(t.since.node)}`;
  const key = (fault: string) => `${w.what}\u0000${fault}\u0000${name}`;
  if (node.op === w.open) {
    if (t.state === 'unallocated') {
      const state: Life = guarded ? 'maybeLive' : 'live';
      Object.assign(t, { state, since: { node: node.id, field }, fresh: true });
    } else if (t.state === 'freed') {
      report(key('reopen'), node, field, `${n} was released ${by}; a name is used once`);
    } else {
      const may = t.state === 'live' ? 'is' : 'may be';
      report(key('double'), node, field, `double ${w.open}: ${n} ${may} already ${w.held} ${by}`);
    }
    return;
  }
  const closing = node.op === w.close;
  const fault = faultFor(t.state, closing, w, node.op);
  if (fault !== null) {
    const text = fault.since ? `${fault.text} ${by}` : fault.text;
    report(key(`${closing ? 'close' : 'use'}-${t.state}`), node, field, `${n} ${text}`);
    return;
  }
  if (closing) {
    const state: Life = guarded ? 'maybeFreed' : 'freed';
    Object.assign(t, { state, since: { node: node.id, field }, fresh: false });
    return;
  }
  if (node.op === 'INJECT_T_STATE' && !t.fresh) {
    report(
      key('stale'),
      node,
      field,
      `INJECT_T_STATE needs a fresh ${n}: not ALLOC'd or RESET just before`,
    );
  }
  // RESET returns the qubit to |0>; under a guard it may not have, so freshness is only kept.
  t.fresh = node.op === 'RESET' ? t.fresh || !guarded : false;
}

/**
 * The linearity fault of using (or closing) a name in `state`, or null when it is live; `since`
 * says whether the message ends by naming the node that put it in that state.
 */
function faultFor(
  state: Life,
  closing: boolean,
  w: Words,
  op: string,
): { text: string; since: boolean } | null {
  const use = closing ? `released by ${w.close}` : `used by ${op}`;
  switch (state) {
    case 'live':
      return null;
    case 'unallocated':
      return { text: `is ${use} before ${w.open}`, since: false };
    case 'freed':
      return closing
        ? { text: `is released twice (double ${w.close}): already`, since: true }
        : { text: `is ${use} after ${w.close}`, since: true };
    case 'maybeLive':
      return { text: `may be ${use} before ${w.open}: guarded ${w.open}`, since: true };
    case 'maybeFreed':
      return { text: `may be ${use} after ${w.close}: guarded ${w.close}`, since: true };
  }
}

function leftovers(
  tracks: Map<string, Track>,
  w: Words,
  strict: boolean,
  out: ViolationList,
): void {
  for (const [name, t] of tracks) {
    if (t.bound || !counted(t.state)) continue;
    const may = t.state === 'live' ? 'is still' : 'may still be';
    out.add(
      t.since.node,
      t.since.field,
      7,
      `${w.what} ${quote(name)} ${may} ${w.held} at the end of the program; add ${w.close}`,
      strict ? 'error' : 'warning',
    );
  }
}

/** Rule 8: every required cap is held by the session; a program's own `caps` never grants. */
function checkCaps(p: Program, ctx: VerifyContext, out: ViolationList): void {
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
function checkFirewall(p: Program, ctx: VerifyContext, out: ViolationList): Map<string, number> {
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

interface Clusters {
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
function estimateClusters(p: Program, ctx: VerifyContext): Clusters {
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

function checkBounds(
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

/** Adds, saturating at Number.MAX_SAFE_INTEGER so estimates stay exact integers or a clear cap. */
function saturatingAdd(a: number, b: number): number {
  return Math.min(a + b, Number.MAX_SAFE_INTEGER);
}
