/**
 * What every rule of the static verifier shares: the context a program is verified in, the
 * resource estimate, the bounded violation list, the opcode table (one row per opcode, so the
 * compiler makes it total), profiles of logical qubits, and the index of a program every rule
 * reads. Layer: kernel (pure). `verify.ts` runs the rules; this file holds no rule.
 */
import { quote } from '../errors.js';
import type { Guard, Opcode, Program, Violation } from './ir.js';

/** One reply carries at most this many violations, plus one line saying how many were left out. */
export const VIOLATIONS_MAX = 256;
/** A cycle's message lists this many node ids, then "and N more". */
export const CYCLE_NODES_LISTED_MAX = 8;
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

export type Severity = Violation['severity'];

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

/** Names are quoted as every client value is (`kernel/errors.ts`): cut past a few dozen characters. */
export { quote };

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

export const MANY = Number.POSITIVE_INFINITY;
export type Range = readonly [min: number, max: number];

export interface OpSpec {
  vqs: Range;
  chs: Range;
  produces: Range;
  /** Only COND_PAULI reads `inputs`; on any other op they would silently condition nothing. */
  inputs: boolean;
  cap: string | null;
  /** Can join its qubits into one cluster (2- and 3-qubit gates, channel and Bell ops). */
  entangles: boolean;
}

export const NONE: Range = [0, 0];
export const ONE: Range = [1, 1];
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

export interface Read {
  event: string;
  field: string;
}

/** What every rule needs, computed once. */
export interface Index {
  p: Program;
  qubits: Set<string>;
  channels: Set<string>;
  events: Set<string>;
  /** Per node: the events it reads (inputs, then guard events left to right) with field paths. */
  reads: Read[][];
  /** First producer (node index) of each event, declared or not: the dependency edges. */
  producer: Map<string, number>;
}

export function indexProgram(p: Program): Index {
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
export function guardReads(guard: Guard, path: string): Read[] {
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

/** Adds, saturating at Number.MAX_SAFE_INTEGER so estimates stay exact integers or a clear cap. */
export function saturatingAdd(a: number, b: number): number {
  return Math.min(a + b, Number.MAX_SAFE_INTEGER);
}
