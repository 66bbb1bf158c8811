/**
 * fast-check generators of QVM programs for property tests: `programArb` builds random programs
 * that are valid by construction (every choice taken modulo what is legal at that point), and
 * `MUTATIONS` each break at least one rule of docs/programs.md on any of them (deleted nodes, renamed
 * qubits, events read before they are produced, wrong arity, huge counts, non-finite angles, deep
 * guard nesting, junk types). Shared by the verifier's tests and the end-to-end property test.
 */
import fc from 'fast-check';
import { GUARD_DEPTH_MAX } from '../../src/kernel/program/qvm.js';

export type Json = Record<string, unknown>;

export const node = (id: string, op: string, vqs: string[], extra: Json = {}): Json => ({
  id,
  op,
  vqs,
  ...extra,
});

/** One random step of a program: which op, which operands, angle and guard shape. */
interface Step {
  kind: number;
  picks: [number, number, number];
  angle: number;
  guard: number;
  shape: number;
  equals: 0 | 1;
  extra: number;
}

const GATES_1Q = [
  'APPLY_H',
  'APPLY_X',
  'APPLY_Y',
  'APPLY_Z',
  'APPLY_S',
  'APPLY_SDG',
  'APPLY_T',
  'APPLY_TDG',
];
const ROTATIONS = ['APPLY_RX', 'APPLY_RY', 'APPLY_RZ'];
// CNOT twice: the commonest two-qubit gate gets two of the five step kinds.
const GATES_2Q = ['APPLY_CNOT', 'APPLY_CZ', 'APPLY_SWAP', 'APPLY_CNOT', 'TELEPORT_CNOT'];
const MEASURES = ['MEASURE_Z', 'MEASURE_X', 'MEASURE_Y', 'MEASURE_ANGLE'];
const PROFILES = [
  undefined,
  'logical:surface(d=3)',
  'logical:SHYPS(d=9)',
  'logical:qldpc(d=4,rate=0.25)',
  'logical:Bacon_Shor(d=5,k=1)',
];

const stepArb: fc.Arbitrary<Step> = fc.record({
  kind: fc.nat(27),
  picks: fc.tuple(fc.nat(), fc.nat(), fc.nat()),
  angle: fc.double({ noNaN: true, noDefaultInfinity: true }),
  guard: fc.nat(),
  shape: fc.nat(3),
  equals: fc.constantFrom(0 as const, 1 as const),
  extra: fc.nat(),
});

export const programArb = fc
  .record({
    nq: fc.integer({ min: 1, max: 6 }),
    split: fc.boolean(),
    profile: fc.nat(PROFILES.length - 1),
    steps: fc.array(stepArb, { maxLength: 30 }),
  })
  .map(({ nq, split, profile, steps }) => buildProgram(nq, split, PROFILES[profile], steps));

/** `n` distinct qubits chosen by `picks`, or null when there are fewer than `n`. */
function distinct(qs: readonly string[], n: number, picks: readonly number[]): string[] | null {
  if (n > qs.length) return null;
  const pool = [...qs];
  return Array.from({ length: n }, (_, i) => pool.splice((picks[i] ?? 0) % pool.length, 1)[0]!);
}

/** A valid program from random steps: every choice is taken modulo what is legal at that point. */
export function buildProgram(
  nq: number,
  split: boolean,
  profile: string | undefined,
  steps: Step[],
): Json {
  const qs = Array.from({ length: nq }, (_, i) => `q${i}`);
  const nodes: Json[] = [];
  const events: string[] = [];
  const chs: string[] = [];
  const open: string[] = [];
  const fresh = new Set(qs);
  const id = () => `n${nodes.length}`;
  const prof = profile === undefined ? {} : { profile };
  if (split) {
    for (const q of qs) nodes.push(node(id(), 'ALLOC_LQ', [q], { args: { n: 1, ...prof } }));
  } else {
    nodes.push(node(id(), 'ALLOC_LQ', [...qs], { args: { n: nq, ...prof } }));
  }
  for (const s of steps) {
    const made = stepNode(s, qs, events, chs, open, fresh, id());
    if (made === null) continue;
    const guard = guardFor(s, events);
    if (guard !== null && !['OPEN_CHAN', 'USE_CHAN', 'CLOSE_CHAN'].includes(made.op as string)) {
      made.guard = guard;
    }
    for (const q of made.vqs as string[]) fresh.delete(q);
    if (made.op === 'RESET' && made.guard === undefined) {
      for (const q of made.vqs as string[]) fresh.add(q);
    }
    events.push(...((made.produces as string[] | undefined) ?? []));
    nodes.push(made);
  }
  for (const c of open) nodes.push(node(id(), 'CLOSE_CHAN', [], { chs: [c] }));
  nodes.push(node(id(), 'FREE_LQ', [...qs]));
  return {
    version: '0.1',
    program: { nodes },
    resources: { vqs: [...qs], chs, events },
    caps: ['CAP_ALLOC'],
  };
}

function guardFor(s: Step, events: readonly string[]): Json | null {
  if (events.length === 0 || s.shape === 0) return null;
  const leaf = (k: number) => ({ event: events[k % events.length]!, equals: s.equals });
  if (s.shape === 1) return leaf(s.guard);
  return { type: s.shape === 2 ? 'and' : 'or', conditions: [leaf(s.guard), leaf(s.extra)] };
}

function stepNode(
  s: Step,
  qs: readonly string[],
  events: readonly string[],
  chs: string[],
  open: string[],
  fresh: ReadonlySet<string>,
  id: string,
): Json | null {
  const k = s.kind;
  const one = distinct(qs, 1, s.picks)!;
  const event = () => `e${events.length}`;
  if (k < 8) return node(id, GATES_1Q[k]!, one);
  if (k < 11) return node(id, ROTATIONS[k - 8]!, one, { args: { theta: s.angle } });
  if (k < 16) {
    const two = distinct(qs, 2, s.picks);
    return two && node(id, GATES_2Q[k - 11]!, two);
  }
  if (k === 16) {
    const three = distinct(qs, 3, s.picks);
    return three && node(id, 'APPLY_TOFFOLI', three);
  }
  if (k < 21) {
    const args = k === 20 ? { args: { angle: s.angle } } : {};
    return node(id, MEASURES[k - 17]!, one, { produces: [event()], ...args });
  }
  if (k === 21) {
    const two = distinct(qs, 2, s.picks);
    const produces = s.extra % 2 === 0 ? [event()] : [event(), `e${events.length + 1}`];
    return two && node(id, 'MEASURE_BELL', two, { produces });
  }
  if (k === 22) {
    const some = distinct(qs, 1 + (s.extra % qs.length), s.picks.concat(s.picks))!;
    const inputs = events.length === 0 ? [] : [events[s.guard % events.length]!];
    const key = s.extra % 3 === 0 ? 'pauli' : 'mask';
    return node(id, 'COND_PAULI', some, { inputs, args: { [key]: 'IXYZ'[s.extra % 4] } });
  }
  if (k === 23) return node(id, 'RESET', one);
  if (k === 24) {
    const q = qs.find((x, i) => fresh.has(x) && i >= s.picks[0] % qs.length) ?? null;
    return q === null ? null : node(id, 'INJECT_T_STATE', [q]);
  }
  if (k === 25) {
    const two = distinct(qs, 2, s.picks);
    if (two === null) return null;
    const ch = `c${chs.length}`;
    chs.push(ch);
    open.push(ch);
    return node(id, 'OPEN_CHAN', two, { chs: [ch], args: { fidelity: 1 - (s.extra % 100) / 100 } });
  }
  if (k === 26 && open.length > 0) {
    const j = s.extra % open.length;
    if (s.guard % 3 !== 0) {
      return node(id, 'USE_CHAN', [], { chs: [open[j]!], args: { semantic: 'x' } });
    }
    return node(id, 'CLOSE_CHAN', [], { chs: open.splice(j, 1) });
  }
  return node(id, ['FENCE_EPOCH', 'BAR_REGION', 'SET_POLICY'][s.extra % 3]!, [], {
    args: { tag: 't' },
  });
}

const notArray = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.string(),
  fc.boolean(),
  fc.constant(null),
  fc.object({ maxDepth: 3 }),
);
const notObject = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.string(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.anything({ maxDepth: 3 })),
);
const arrayWithNonString = fc
  .tuple(
    fc.array(fc.string()),
    fc.oneof(fc.integer(), fc.constant(null), fc.object({ maxDepth: 2 })),
  )
  .map(([ok, bad]) => [...ok, bad]);
/** Neither an opcode nor the version string: junk for `op` and for `version`. */
const notOpcode = fc.oneof(
  fc.string().filter((s) => !/^[A-Z_]+$/.test(s) && s !== '0.1'),
  fc.integer(),
  fc.constant(null),
);

export type Mutation = (
  json: Json,
  r: number,
  junk: { arr: unknown; obj: unknown; op: unknown },
) => void;

const nodesOf = (json: Json) => (json.program as Json).nodes as Json[];
const pickNode = (json: Json, r: number, ok: (n: Json) => boolean): Json | undefined => {
  const found = nodesOf(json).filter(ok);
  return found[r % Math.max(found.length, 1)];
};

/** Each mutation breaks at least one rule of docs/programs.md on any program `buildProgram` makes. */
export const MUTATIONS: Record<string, Mutation> = {
  deleteAlloc: (json, r) => {
    const allocs = nodesOf(json).flatMap((n, i) => (n.op === 'ALLOC_LQ' ? [i] : []));
    nodesOf(json).splice(allocs[r % allocs.length]!, 1);
  },
  renameToUndeclared: (json, r) => {
    const n = pickNode(json, r, (x) => Array.isArray(x.vqs) && (x.vqs as string[]).length > 0)!;
    (n.vqs as string[])[r % (n.vqs as string[]).length] = 'zz_undeclared';
  },
  guardOnLaterEvent: (json, r) => {
    const nodes = nodesOf(json);
    let j = nodes.findIndex((n, i) => i >= r % nodes.length && Array.isArray(n.produces));
    if (j < 0) {
      (json.resources as Json).events = [...((json.resources as Json).events as string[]), 'late'];
      nodes.splice(nodes.length - 1, 0, node('late', 'MEASURE_Z', ['q0'], { produces: ['late'] }));
      j = nodes.length - 2;
    }
    const event = (nodes[j]!.produces as string[])[0]!;
    nodes[r % (j + 1)]!.guard = { event, equals: r % 2 };
  },
  wrongArity: (json, r) => {
    const n = pickNode(json, r, (x) => Array.isArray(x.vqs) && (x.vqs as string[]).length > 0)!;
    const vqs = n.vqs as string[];
    n.vqs = r % 2 === 0 ? [] : [...vqs, vqs[0]!];
  },
  hugeN: (json, r) => {
    const n = pickNode(json, r, (x) => x.op === 'ALLOC_LQ')!;
    n.args = { ...(n.args as Json), n: [1e9, 2 ** 53, -1, 0.5, Number.NaN][r % 5] };
  },
  badAngle: (json, r) => {
    const theta = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY][r % 3];
    const op = ['APPLY_RX', 'APPLY_RY', 'APPLY_RZ', 'MEASURE_ANGLE'][r % 4]!;
    const extra =
      op === 'MEASURE_ANGLE' ? { args: { angle: theta }, produces: ['bad'] } : { args: { theta } };
    if (op === 'MEASURE_ANGLE') {
      (json.resources as Json).events = [...((json.resources as Json).events as string[]), 'bad'];
    }
    nodesOf(json).splice(nodesOf(json).length - 1, 0, node('bad', op, ['q0'], extra));
  },
  deepGuard: (json, r) => {
    let g: Json = { event: 'e0', equals: 1 };
    for (let i = 0; i < GUARD_DEPTH_MAX + (r % 200); i++) g = { type: 'and', conditions: [g] };
    nodesOf(json)[r % nodesOf(json).length]!.guard = g;
  },
  junkType: (json, r, junk) => {
    const n = nodesOf(json)[r % nodesOf(json).length]!;
    const slot = r % 11;
    if (slot < 4) n[['vqs', 'produces', 'inputs', 'chs'][slot]!] = junk.arr;
    else if (slot === 4) n.args = junk.obj;
    else if (slot === 5) n.guard = junk.obj;
    else if (slot === 6) n.op = junk.op;
    else if (slot === 7) nodesOf(json)[r % nodesOf(json).length] = junk.obj as Json;
    else if (slot === 8) (json.resources as Json)[r % 2 === 0 ? 'vqs' : 'events'] = junk.arr;
    else if (slot === 9) json[r % 2 === 0 ? 'program' : 'resources'] = junk.obj;
    else json.version = junk.op;
  },
};

/** Junk for `MUTATIONS.junkType`: non-arrays, non-objects and non-opcodes. */
export const junkArb = fc.record({
  arr: fc.oneof(notArray, arrayWithNonString),
  obj: notObject,
  op: notOpcode,
});
