/**
 * The QVM adapter (`kernel/program/qvm.ts`) and the static verifier (`kernel/program/verify.ts`)
 * against docs/programs.md: the shipped examples, one exact case per rule (node, field, rule), every
 * fault at once, and fast-check properties over random valid programs and their mutations.
 * Property tests print their seed; `FC_SEED=<seed>` reruns them with it.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KernelError } from '../../src/kernel/errors.js';
import type { Violation } from '../../src/kernel/program/ir.js';
import {
  GUARD_DEPTH_MAX,
  GUARD_TERMS_MAX,
  PROGRAM_NODES_MAX,
  parseQvm,
} from '../../src/kernel/program/qvm.js';
import {
  type ResourceEstimate,
  VIOLATIONS_MAX,
  type VerifyContext,
  mergeViolations,
  physicalPerLogical,
  verifyProgram,
} from '../../src/kernel/program/verify.js';
import { MUTATIONS, junkArb, programArb } from '../support/qvm-arb.js';

const EXAMPLES_DIR = new URL('../../examples/qvm/', import.meta.url).pathname;
const CAPS_BASIC = ['CAP_ALLOC', 'CAP_COMPUTE', 'CAP_MEASURE'];
const CAPS_ALL = [...CAPS_BASIC, 'CAP_LINK', 'CAP_TELEPORT', 'CAP_MAGIC'];
const LIMITS: VerifyContext['limits'] = {
  nodesMax: 10_000,
  qubitsLiveMax: 1_000,
  qubitsPerClusterMax: 26,
  physicalQubitsMax: 1e9,
  stateBytesMax: 2 ** 40,
};
const CTX: VerifyContext = { caps: CAPS_ALL, strict: false, limits: LIMITS };

type Json = Record<string, unknown>;

/** Parse, verify (when there is a program) and merge, as the job path does. */
function check(json: unknown, ctx: Partial<VerifyContext> = {}): Violation[] {
  const parsed = parseQvm(json);
  if (parsed.program === null) return parsed.violations;
  const verified = verifyProgram(parsed.program, { ...CTX, ...ctx });
  return mergeViolations(parsed.violations, verified.violations);
}

function estimate(json: unknown, ctx: Partial<VerifyContext> = {}): ResourceEstimate {
  const { program } = parseQvm(json);
  assert.ok(program);
  return verifyProgram(program, { ...CTX, ...ctx }).estimate;
}

const where = (vs: readonly Violation[]) => vs.map((v) => `${v.rule} ${v.node} ${v.field}`);
const errors = (vs: readonly Violation[]) => vs.filter((v) => v.severity === 'error');

/** Exactly these errors, each as "rule node field". */
function expectErrors(json: unknown, expected: string[], ctx: Partial<VerifyContext> = {}) {
  const got = errors(check(json, ctx));
  assert.equal(where(got), expected, JSON.stringify(got, null, 1));
  return got;
}

/** A program over qubits a, b, c: ALLOC, the given nodes, FREE. */
function qvm(
  nodes: unknown[],
  res: { vqs?: string[]; chs?: string[]; events?: string[] } = {},
): Json {
  const vqs = res.vqs ?? ['a', 'b', 'c'];
  return {
    version: '0.1',
    program: {
      nodes: [
        { id: 'alloc', op: 'ALLOC_LQ', vqs, args: { n: vqs.length } },
        ...nodes,
        { id: 'free', op: 'FREE_LQ', vqs },
      ],
    },
    resources: { vqs, chs: res.chs ?? [], events: res.events ?? [] },
  };
}

const node = (id: string, op: string, vqs: string[], extra: Json = {}): Json => ({
  id,
  op,
  vqs,
  ...extra,
});

// The shipped examples.

const EXAMPLES = readdirSync(EXAMPLES_DIR).filter((f) => f.endsWith('.json'));
const readExample = (f: string): unknown => JSON.parse(readFileSync(join(EXAMPLES_DIR, f), 'utf8'));

test('examples: the directory holds the five QMK programs → all found', () => {
  assert.is(EXAMPLES.length, 5);
});

for (const file of EXAMPLES) {
  test(`examples: ${file} with basic caps → parses, zero errors`, () => {
    const parsed = parseQvm(readExample(file));
    assert.equal(parsed.violations, []);
    assert.ok(parsed.program);
    const { violations } = verifyProgram(parsed.program, { ...CTX, caps: CAPS_BASIC });
    assert.equal(errors(violations), []);
  });
}

test('examples: teleportation_demo → exact estimate, events in declared order', () => {
  const json = readExample('teleportation_demo.qvm.json');
  const { program } = parseQvm(json);
  assert.equal(program?.events, ['m_msg', 'm_alice', 'm_bob']);
  assert.is(program?.countsOrder, 'events in resources.events order, first event leftmost');
  assert.equal(estimate(json), {
    logicalQubits: 3,
    physicalQubits: 3 * 121, // SHYPS d=9: ⌊1.5·81⌋ = 121 per logical
    physicalByProfile: { 'logical:SHYPS(d=9)': 363 },
    largestCluster: 3,
    gateCounts: {
      ALLOC_LQ: 1,
      APPLY_H: 3,
      APPLY_S: 1,
      APPLY_CNOT: 2,
      FENCE_EPOCH: 2,
      MEASURE_Z: 3,
      COND_PAULI: 2,
      FREE_LQ: 1,
    },
    stateBytes: 16 * 2 ** 3,
    nodes: 15,
  });
});

test('examples: teleportation_demo nodes → mapped fields (vqs, inputs, args.mask, source)', () => {
  const { program } = parseQvm(readExample('teleportation_demo.qvm.json'));
  const corr = program?.nodes[11];
  assert.equal(corr, {
    id: 'corr_x',
    op: 'COND_PAULI',
    qubits: ['bob'],
    channels: [],
    inputs: ['m_alice'],
    produces: [],
    args: { mask: 'X' },
    source: 'program.nodes[11]',
  });
});

test('examples: ghz_state (Surface d=7) → 4 qubits × 98 physical, one 4-qubit cluster', () => {
  const e = estimate(readExample('ghz_state.qvm.json'));
  assert.equal(
    [e.logicalQubits, e.physicalQubits, e.largestCluster, e.stateBytes],
    [4, 392, 4, 256],
  );
});

test('examples: measurement_bases (no FREE_LQ, no chs) → warnings; strict → errors', () => {
  const json = readExample('measurement_bases.qvm.json');
  const vs = check(json, { caps: CAPS_BASIC });
  assert.equal(where(vs), [
    '7 alloc program.nodes[0].vqs[0]',
    '7 alloc program.nodes[0].vqs[1]',
    '7 alloc program.nodes[0].vqs[2]',
  ]);
  assert.ok(vs.every((v) => v.severity === 'warning'));
  assert.is(errors(check(json, { caps: CAPS_BASIC, strict: true })).length, 3);
});

test('examples: conditional_correction guards → parsed as leaf guards', () => {
  const { program } = parseQvm(readExample('conditional_correction.qvm.json'));
  assert.equal(program?.nodes[5]?.guard, { event: 'm0', equals: 1 });
});

// Rule 1: version, nodes, resources.

test('rule 1: version "0.2" → violation at version', () => {
  const json = qvm([]);
  json.version = '0.2';
  expectErrors(json, ['1  version']);
});

test('rule 1: top level is an array → one violation, no program', () => {
  const parsed = parseQvm([qvm([])]);
  assert.is(parsed.program, null);
  assert.equal(where(parsed.violations), ['1  ']);
});

test('rule 1: program.nodes empty → violation, no program', () => {
  const parsed = parseQvm({
    version: '0.1',
    program: { nodes: [] },
    resources: { vqs: [], events: [] },
  });
  assert.is(parsed.program, null);
  assert.equal(where(parsed.violations), ['1  program.nodes']);
});

test('rule 1: resources.vqs with a repeat, a non-identifier, a number → each at its index', () => {
  const json = qvm([], { vqs: ['a', 'b', 'c'] });
  (json.resources as Json).vqs = ['a', 'a', 'q-1', 7];
  const parsed = parseQvm(json);
  assert.equal(where(parsed.violations), [
    '1  resources.vqs[1]',
    '1  resources.vqs[2]',
    '1  resources.vqs[3]',
  ]);
  assert.is(parsed.program, null, 'a non-string declaration voids the program');
  (json.resources as Json).vqs = ['a', 'a', 'b', 'c'];
  expectErrors(json, ['1  resources.vqs[1]']);
});

test('rule 10: nodes at PROGRAM_NODES_MAX → parsed; one more → violation, no program', () => {
  const fences = Array.from({ length: PROGRAM_NODES_MAX }, (_, i) =>
    node(`f${i}`, 'FENCE_EPOCH', []),
  );
  const json = { version: '0.1', program: { nodes: fences }, resources: { vqs: [], events: [] } };
  assert.is(parseQvm(json).program?.nodes.length, PROGRAM_NODES_MAX);
  fences.push(node('one_more', 'FENCE_EPOCH', []));
  const parsed = parseQvm(json);
  assert.is(parsed.program, null);
  assert.equal(where(parsed.violations), ['10  program.nodes']);
});

test('junk: sparse arrays (a hole in vqs, a vqs of length 2^32-1) → violations, no hang', () => {
  const holey: unknown[] = [];
  holey[1] = 'a';
  const huge: unknown[] = [];
  huge.length = 2 ** 32 - 1;
  const json = qvm([
    node('h', 'APPLY_H', holey as string[]),
    node('x', 'APPLY_X', huge as string[]),
  ]);
  expectErrors(json, ['6 h program.nodes[1].vqs[0]', '10 x program.nodes[2].vqs']);
});

test('rule 1: resources.events missing → violation; resources.chs missing → read as empty', () => {
  const json = qvm([]);
  json.resources = { vqs: ['a', 'b', 'c'], events: [] };
  assert.equal(check(json), []);
  json.resources = { vqs: ['a', 'b', 'c'] };
  expectErrors(json, ['1  resources.events']);
});

test('rule 1: unknown fields (description) at top level and on nodes → ignored', () => {
  const json = qvm([node('h', 'APPLY_H', ['a'], { description: 'x', colour: [1] })]);
  json.description = { anything: true };
  assert.equal(check(json), []);
});

// Rule 2: node ids and ops.

test('rule 2: two nodes with id "h" → violation at the second id', () => {
  const json = qvm([node('h', 'APPLY_H', ['a']), node('h', 'APPLY_X', ['b'])]);
  expectErrors(json, ['2 h program.nodes[2].id']);
});

test('rule 2: unknown op APPLY_CX → violation at op; the node is left out', () => {
  const json = qvm([node('cx', 'APPLY_CX', ['a', 'b'])]);
  const [v] = expectErrors(json, ['2 cx program.nodes[1].op']);
  assert.match(v!.message, /unknown op "APPLY_CX"/);
  assert.is(parseQvm(json).program?.nodes.length, 2);
});

test('rule 2: id a number, id not an identifier → violations at id', () => {
  const json = qvm([node('ok', 'APPLY_H', ['a']), node('n-1', 'APPLY_H', ['a'])]);
  ((json.program as Json).nodes as Json[])[1]!.id = 5;
  expectErrors(json, ['2  program.nodes[1].id', '2 n-1 program.nodes[2].id']);
});

test('rule 2: op "constructor" / "__proto__" → unknown op, never a prototype lookup', () => {
  const json = qvm([node('p', 'constructor', ['a']), node('q', '__proto__', ['a'])]);
  expectErrors(json, ['2 p program.nodes[1].op', '2 q program.nodes[2].op']);
});

// Rule 3: declared names.

test('rule 3: undeclared vq, ch, produced event, input, nested guard event → each located', () => {
  const json = qvm(
    [
      node('m', 'MEASURE_Z', ['a'], { produces: ['m0'] }),
      node('x', 'APPLY_X', ['zz']),
      node('u', 'USE_CHAN', [], { chs: ['ch9'] }),
      node('mz', 'MEASURE_Z', ['b'], { produces: ['ghost'] }),
      node('p', 'COND_PAULI', ['c'], { args: { mask: 'X' }, inputs: ['nope'] }),
      node('g', 'APPLY_H', ['c'], {
        guard: {
          type: 'and',
          conditions: [
            { event: 'm0', equals: 1 },
            { event: 'e9', equals: 0 },
          ],
        },
      }),
    ],
    { events: ['m0'] },
  );
  expectErrors(json, [
    '3 x program.nodes[2].vqs[0]',
    '3 u program.nodes[3].chs[0]',
    '3 mz program.nodes[4].produces[0]',
    '3 p program.nodes[5].inputs[0]',
    '3 g program.nodes[6].guard.conditions[1].event',
  ]);
});

test('rule 3: a bound qubit not in resources.vqs → violation at bound[i]', () => {
  const json = qvm([node('h', 'APPLY_H', ['a'])]);
  expectErrors(json, ['3  bound[0]'], { bound: ['elsewhere'] });
});

// Rule 4: one producer per event, produced before read.

test('rule 4: event produced twice → violation at the second producer', () => {
  const json = qvm(
    [
      node('m1', 'MEASURE_Z', ['a'], { produces: ['e'] }),
      node('m2', 'MEASURE_Z', ['b'], { produces: ['e'] }),
    ],
    { events: ['e'] },
  );
  expectErrors(json, ['4 m2 program.nodes[2].produces[0]']);
});

test('rule 4: declared event never produced → violation at resources.events[i]', () => {
  const json = qvm([node('m1', 'MEASURE_Z', ['a'], { produces: ['e'] })], {
    events: ['e', 'never'],
  });
  expectErrors(json, ['4  resources.events[1]']);
});

test('rule 4: guard on a later event of another qubit, no path back → rule 4 only', () => {
  const json = qvm(
    [
      node('x', 'APPLY_X', ['a'], { guard: { event: 'mb', equals: 1 } }),
      node('m', 'MEASURE_Z', ['b'], { produces: ['mb'] }),
    ],
    { events: ['mb'] },
  );
  const [v] = expectErrors(json, ['4 x program.nodes[1].guard.event']);
  assert.match(v!.message, /before node "m" produces it/);
});

test('rule 4: COND_PAULI input read before any producer → violation at inputs[0]', () => {
  const json = qvm(
    [
      node('p', 'COND_PAULI', ['a'], { args: { mask: 'Z' }, inputs: ['e'] }),
      node('m', 'MEASURE_Z', ['b'], { produces: ['e'] }),
    ],
    { events: ['e'] },
  );
  expectErrors(json, ['4 p program.nodes[1].inputs[0]']);
});

// Rule 5: the dependency graph is acyclic.

test('rule 5: guard on a later measurement of the same qubit → cycle at the guard', () => {
  const json = qvm(
    [
      node('x', 'APPLY_X', ['a'], { guard: { event: 'ma', equals: 1 } }),
      node('m', 'MEASURE_Z', ['a'], { produces: ['ma'] }),
    ],
    { events: ['ma'] },
  );
  const vs = expectErrors(json, [
    '4 x program.nodes[1].guard.event',
    '5 x program.nodes[1].guard.event',
  ]);
  assert.match(vs[1]!.message, /cycle among nodes "x", "m"/);
});

test('rule 5: a measurement guarded on its own event → self-cycle', () => {
  const json = qvm(
    [node('m', 'MEASURE_Z', ['a'], { produces: ['e'], guard: { event: 'e', equals: 0 } })],
    {
      events: ['e'],
    },
  );
  expectErrors(json, ['4 m program.nodes[1].guard.event', '5 m program.nodes[1].guard.event']);
});

test('rule 5: x(a) → cx(a,b) → measure(b) → guard of x → cycle naming all three', () => {
  const json = qvm(
    [
      node('x', 'APPLY_X', ['a'], {
        guard: { type: 'or', conditions: [{ event: 'mb', equals: 1 }] },
      }),
      node('cx', 'APPLY_CNOT', ['a', 'b']),
      node('m', 'MEASURE_Z', ['b'], { produces: ['mb'] }),
    ],
    { events: ['mb'] },
  );
  const vs = expectErrors(json, [
    '4 x program.nodes[1].guard.conditions[0].event',
    '5 x program.nodes[1].guard.conditions[0].event',
  ]);
  assert.match(vs[1]!.message, /"x", "cx", "m"/);
});

test('rule 5: cycle through channel order (guarded use, open, measure) → found', () => {
  const json = qvm(
    [
      node('use', 'USE_CHAN', [], { chs: ['k'], guard: { event: 'e', equals: 1 } }),
      node('open', 'OPEN_CHAN', ['a', 'b'], { chs: ['k'] }),
      node('m', 'MEASURE_Z', ['a'], { produces: ['e'] }),
      node('close', 'CLOSE_CHAN', [], { chs: ['k'] }),
    ],
    { chs: ['k'], events: ['e'] },
  );
  const rules = errors(check(json)).map((v) => `${v.rule} ${v.node}`);
  assert.ok(rules.includes('5 use'), rules.join('; '));
});

test('rule 5: two independent cycles → two rule-5 violations', () => {
  const json = qvm(
    [
      node('x', 'APPLY_X', ['a'], { guard: { event: 'ma', equals: 1 } }),
      node('ma', 'MEASURE_Z', ['a'], { produces: ['ma'] }),
      node('y', 'APPLY_Y', ['b'], { guard: { event: 'mb', equals: 1 } }),
      node('mb', 'MEASURE_Z', ['b'], { produces: ['mb'] }),
    ],
    { events: ['ma', 'mb'] },
  );
  const cycles = errors(check(json)).filter((v) => v.rule === 5);
  assert.equal(where(cycles), [
    '5 x program.nodes[1].guard.event',
    '5 y program.nodes[3].guard.event',
  ]);
});

// Rule 6: arity and arguments.

test('rule 6: CNOT with one vq, and with the same vq twice → count, then distinctness', () => {
  const json = qvm([node('c1', 'APPLY_CNOT', ['a']), node('c2', 'APPLY_CNOT', ['a', 'a'])]);
  expectErrors(json, ['6 c1 program.nodes[1].vqs', '6 c2 program.nodes[2].vqs[1]']);
});

test('rule 6: TOFFOLI with 2 vqs, H with 2 vqs, FENCE with a vq → each at vqs', () => {
  const json = qvm([
    node('t', 'APPLY_TOFFOLI', ['a', 'b']),
    node('h', 'APPLY_H', ['a', 'b']),
    node('f', 'FENCE_EPOCH', ['a']),
  ]);
  expectErrors(json, [
    '6 t program.nodes[1].vqs',
    '6 h program.nodes[2].vqs',
    '6 f program.nodes[3].vqs',
  ]);
});

test('rule 6: RX without theta, RY theta NaN, RZ theta Infinity → args.theta each', () => {
  const json = qvm([
    node('rx', 'APPLY_RX', ['a']),
    node('ry', 'APPLY_RY', ['a'], { args: { theta: Number.NaN } }),
    node('rz', 'APPLY_RZ', ['a'], { args: { theta: Number.POSITIVE_INFINITY } }),
  ]);
  expectErrors(json, [
    '6 rx program.nodes[1].args.theta',
    '6 ry program.nodes[2].args.theta',
    '6 rz program.nodes[3].args.theta',
  ]);
});

test('rule 6: theta given as a string → one violation (the verifier echo is merged away)', () => {
  const json = qvm([node('rx', 'APPLY_RX', ['a'], { args: { theta: '0.5' } })]);
  const [v] = expectErrors(json, ['6 rx program.nodes[1].args.theta']);
  assert.match(v!.message, /must be a number, got the string "0.5"/);
});

test('rule 6: MEASURE_ANGLE angle -Infinity → args.angle', () => {
  const json = qvm(
    [
      node('ma', 'MEASURE_ANGLE', ['a'], {
        produces: ['e'],
        args: { angle: Number.NEGATIVE_INFINITY },
      }),
    ],
    {
      events: ['e'],
    },
  );
  expectErrors(json, ['6 ma program.nodes[1].args.angle']);
});

test('rule 6: measurement with no event, with two events; BELL with three → produces', () => {
  const json = qvm(
    [
      node('m0', 'MEASURE_Z', ['a']),
      node('m2', 'MEASURE_X', ['a'], { produces: ['e1', 'e2'] }),
      node('b3', 'MEASURE_BELL', ['a', 'b'], { produces: ['e3', 'e4', 'e5'] }),
    ],
    { events: ['e1', 'e2', 'e3', 'e4', 'e5'] },
  );
  expectErrors(json, [
    '6 m0 program.nodes[1].produces',
    '6 m2 program.nodes[2].produces',
    '6 b3 program.nodes[3].produces',
  ]);
});

test('rule 6: MEASURE_BELL producing 1 and producing 2 events → both valid', () => {
  const json = qvm(
    [
      node('b1', 'MEASURE_BELL', ['a', 'b'], { produces: ['v'] }),
      node('b2', 'MEASURE_BELL', ['b', 'c'], { produces: ['m0', 'm1'] }),
    ],
    { events: ['v', 'm0', 'm1'] },
  );
  assert.equal(check(json), []);
});

test('rule 6: COND_PAULI mask "W", no mask, pauli alias "Y" → two violations, alias kept', () => {
  const json = qvm([
    node('p1', 'COND_PAULI', ['a'], { args: { mask: 'W' } }),
    node('p2', 'COND_PAULI', ['a']),
    node('p3', 'COND_PAULI', ['a'], { args: { pauli: 'Y' } }),
  ]);
  expectErrors(json, ['6 p1 program.nodes[1].args.mask', '6 p2 program.nodes[2].args.mask']);
  assert.equal(parseQvm(json).program?.nodes[3]?.args, { mask: 'Y' });
});

test('rule 6: ALLOC_LQ n = 1e9 with 3 vqs, n = 2.5 → args.n', () => {
  const json = qvm([]);
  const alloc = ((json.program as Json).nodes as Json[])[0]!;
  alloc.args = { n: 1e9 };
  expectErrors(json, ['6 alloc program.nodes[0].args.n']);
  alloc.args = { n: 2.5 };
  expectErrors(json, ['6 alloc program.nodes[0].args.n']);
});

test('rule 6: profile unknown family, missing d, qldpc without rate → args.profile', () => {
  for (const profile of [
    'logical:toric(d=5)',
    'logical:surface(k=1)',
    'logical:qldpc(d=5)',
    'surface',
  ]) {
    const json = qvm([]);
    ((json.program as Json).nodes as Json[])[0]!.args = { profile };
    expectErrors(json, ['6 alloc program.nodes[0].args.profile']);
  }
});

test('rule 6: profiles → surface 2d², SHYPS ⌊1.5d²⌋, bacon_shor d², qldpc ⌈d²/rate⌉', () => {
  assert.is(physicalPerLogical('logical:surface(d=3)'), 18);
  assert.is(physicalPerLogical('logical:Surface_Code(d=3)'), 18);
  assert.is(physicalPerLogical('logical:SHYPS(d=9)'), 121);
  assert.is(physicalPerLogical('logical:shyps(d=3, k=2)'), 13);
  assert.is(physicalPerLogical('logical:BACON_SHOR(d=5)'), 25);
  assert.is(physicalPerLogical('logical:qldpc(d=4,rate=0.3)'), 54);
  assert.type(physicalPerLogical('logical:qldpc(d=4,rate=0)'), 'string');
  assert.type(physicalPerLogical('logical:surface(d=0)'), 'string');
  assert.type(physicalPerLogical('logical:surface(d=3,d=5)'), 'string');
});

test('rule 6: OPEN_CHAN fidelity 0 and 1.5 → args.fidelity; fidelity 1 → valid', () => {
  const chan = (fidelity: number) =>
    qvm(
      [
        node('o', 'OPEN_CHAN', ['a', 'b'], { chs: ['k'], args: { fidelity } }),
        node('c', 'CLOSE_CHAN', [], { chs: ['k'] }),
      ],
      { chs: ['k'] },
    );
  expectErrors(chan(0), ['6 o program.nodes[1].args.fidelity']);
  expectErrors(chan(1.5), ['6 o program.nodes[1].args.fidelity']);
  assert.equal(check(chan(1)), []);
});

test('rule 6: inputs on APPLY_X, chs on APPLY_H → violations (only COND_PAULI reads)', () => {
  const json = qvm(
    [
      node('m', 'MEASURE_Z', ['a'], { produces: ['e'] }),
      node('x', 'APPLY_X', ['b'], { inputs: ['e'] }),
      node('h', 'APPLY_H', ['b'], { chs: ['k'] }),
    ],
    { events: ['e'], chs: ['k'] },
  );
  expectErrors(json, ['6 x program.nodes[2].inputs', '6 h program.nodes[3].chs']);
});

test(`rule 6: guard nested ${GUARD_DEPTH_MAX} deep → valid; one deeper → violation`, () => {
  const nest = (depth: number): Json => {
    let g: Json = { event: 'e', equals: 1 };
    for (let i = 1; i < depth; i++) g = { type: 'and', conditions: [g] };
    return g;
  };
  const at = (depth: number) =>
    qvm(
      [
        node('m', 'MEASURE_Z', ['a'], { produces: ['e'] }),
        node('x', 'APPLY_X', ['b'], { guard: nest(depth) }),
      ],
      { events: ['e'] },
    );
  assert.equal(check(at(GUARD_DEPTH_MAX)), []);
  const deep = `program.nodes[2].guard${'.conditions[0]'.repeat(GUARD_DEPTH_MAX)}`;
  expectErrors(at(GUARD_DEPTH_MAX + 1), [`6 x ${deep}`]);
});

test('rule 6: guard nested 100 000 deep → one violation, no stack overflow', () => {
  let g: Json = { event: 'e', equals: 1 };
  for (let i = 0; i < 100_000; i++) g = { type: 'or', conditions: [g] };
  const json = qvm([node('x', 'APPLY_X', ['a'], { guard: g })]);
  const vs = errors(check(json));
  assert.is(vs.length, 1);
  assert.is(vs[0]!.rule, 6);
});

test(`rule 6: a guard of ${GUARD_TERMS_MAX} terms → valid; one more term → one violation`, () => {
  const orOf = (leaves: number) =>
    qvm(
      [
        node('m', 'MEASURE_Z', ['a'], { produces: ['e'] }),
        node('x', 'APPLY_X', ['b'], {
          guard: { type: 'or', conditions: Array(leaves).fill({ event: 'e', equals: 0 }) },
        }),
      ],
      { events: ['e'] },
    );
  assert.equal(check(orOf(GUARD_TERMS_MAX - 1)), []); // the `or` itself is a term
  const vs = errors(check(orOf(GUARD_TERMS_MAX)));
  assert.equal(where(vs), [`6 x program.nodes[2].guard.conditions[${GUARD_TERMS_MAX - 1}]`]);
});

test('rule 6: guards with equals 2, type xor, event and type, no conditions → each', () => {
  const json = qvm(
    [
      node('m', 'MEASURE_Z', ['a'], { produces: ['e'] }),
      node('g1', 'APPLY_X', ['b'], { guard: { event: 'e', equals: 2 } }),
      node('g2', 'APPLY_X', ['b'], {
        guard: { type: 'xor', conditions: [{ event: 'e', equals: 1 }] },
      }),
      node('g3', 'APPLY_X', ['b'], { guard: { event: 'e', equals: 1, type: 'and' } }),
      node('g4', 'APPLY_X', ['b'], { guard: { type: 'and', conditions: [] } }),
    ],
    { events: ['e'] },
  );
  expectErrors(json, [
    '6 g1 program.nodes[2].guard.equals',
    '6 g2 program.nodes[3].guard.type',
    '6 g3 program.nodes[4].guard',
    '6 g4 program.nodes[5].guard.conditions',
  ]);
});

// Rule 7: linearity.

test('rule 7: ALLOC_LQ of a live qubit → double ALLOC at the second', () => {
  const json = qvm([node('again', 'ALLOC_LQ', ['b'])]);
  const [v] = expectErrors(json, ['7 again program.nodes[1].vqs[0]']);
  assert.match(v!.message, /double ALLOC_LQ: vq "b" is already allocated by node "alloc"/);
});

test('rule 7: use before ALLOC → reported once per qubit, at the first use', () => {
  const json = qvm([], { vqs: ['a'] });
  const nodes = (json.program as Json).nodes as Json[];
  nodes.splice(0, 0, node('h', 'APPLY_H', ['a']), node('x', 'APPLY_X', ['a']));
  expectErrors(json, ['7 h program.nodes[0].vqs[0]']);
});

test('rule 7: use after FREE_LQ, double FREE → each at its node', () => {
  const json = qvm([], { vqs: ['a'] });
  const nodes = (json.program as Json).nodes as Json[];
  nodes.push(node('h', 'APPLY_H', ['a']), node('free2', 'FREE_LQ', ['a']));
  expectErrors(json, ['7 h program.nodes[2].vqs[0]', '7 free2 program.nodes[3].vqs[0]']);
});

test('rule 7: ALLOC after FREE_LQ → violation (a name is allocated once)', () => {
  const json = qvm([], { vqs: ['a'] });
  ((json.program as Json).nodes as Json[]).push(
    node('re', 'ALLOC_LQ', ['a']),
    node('f2', 'FREE_LQ', ['a']),
  );
  const vs = errors(check(json));
  assert.equal(where(vs).slice(0, 1), ['7 re program.nodes[2].vqs[0]']);
});

test('rule 7: measure, RESET, measure again, then gates → valid (neither consumes)', () => {
  const json = qvm(
    [
      node('m1', 'MEASURE_Z', ['a'], { produces: ['e1'] }),
      node('r', 'RESET', ['a', 'b']),
      node('m2', 'MEASURE_X', ['a'], { produces: ['e2'] }),
      node('h', 'APPLY_H', ['a']),
    ],
    { events: ['e1', 'e2'] },
  );
  assert.equal(check(json), []);
});

test('rule 7: qubit left allocated → warning; under strict → error', () => {
  const json = qvm([]);
  ((json.program as Json).nodes as Json[]).pop();
  const vs = check(json);
  assert.equal(where(vs), [
    '7 alloc program.nodes[0].vqs[0]',
    '7 alloc program.nodes[0].vqs[1]',
    '7 alloc program.nodes[0].vqs[2]',
  ]);
  assert.ok(vs.every((v) => v.severity === 'warning'));
  assert.ok(check(json, { strict: true }).every((v) => v.severity === 'error'));
});

test('rule 7: guarded ALLOC then an unguarded use → "may be used before ALLOC"', () => {
  const json = qvm(
    [
      node('m', 'MEASURE_Z', ['a'], { produces: ['e'] }),
      node('al', 'ALLOC_LQ', ['d'], { guard: { event: 'e', equals: 1 } }),
      node('h', 'APPLY_H', ['d']),
      node('fd', 'FREE_LQ', ['d'], { guard: { event: 'e', equals: 1 } }),
    ],
    { vqs: ['a', 'b', 'c'], events: ['e'] },
  );
  (json.resources as Json).vqs = ['a', 'b', 'c', 'd'];
  const vs = expectErrors(json, ['7 h program.nodes[3].vqs[0]', '7 fd program.nodes[4].vqs[0]']);
  assert.match(vs[0]!.message, /may be used by APPLY_H before ALLOC_LQ/);
});

test('rule 7: guarded FREE then a use → "may be used after FREE_LQ"; leftover → warning', () => {
  const json = qvm(
    [
      node('m', 'MEASURE_Z', ['a'], { produces: ['e'] }),
      node('fa', 'FREE_LQ', ['c'], { guard: { event: 'e', equals: 0 } }),
      node('x', 'APPLY_X', ['c']),
    ],
    { events: ['e'] },
  );
  const nodes = (json.program as Json).nodes as Json[];
  nodes[nodes.length - 1] = node('free', 'FREE_LQ', ['a', 'b']);
  const vs = check(json);
  assert.equal(where(errors(vs)), ['7 x program.nodes[3].vqs[0]']);
  assert.equal(where(vs.filter((v) => v.severity === 'warning')), ['7 fa program.nodes[2].vqs[0]']);
});

test('rule 7: INJECT_T_STATE fresh → valid; after a gate → violation; after RESET → valid', () => {
  const json = qvm([
    node('t1', 'INJECT_T_STATE', ['a']),
    node('h', 'APPLY_H', ['b']),
    node('t2', 'INJECT_T_STATE', ['b']),
    node('r', 'RESET', ['b']),
    node('t3', 'INJECT_T_STATE', ['b']),
  ]);
  expectErrors(json, ['7 t2 program.nodes[3].vqs[0]']);
});

test('rule 7: channel used before OPEN_CHAN, left open → error and warning', () => {
  const json = qvm(
    [node('u', 'USE_CHAN', [], { chs: ['k'] }), node('o', 'OPEN_CHAN', ['a', 'b'], { chs: ['k'] })],
    { chs: ['k'] },
  );
  const vs = check(json);
  assert.equal(where(errors(vs)), ['7 u program.nodes[1].chs[0]']);
  assert.equal(where(vs.filter((v) => v.severity === 'warning')), ['7 o program.nodes[2].chs[0]']);
});

test('rule 7: bound qubits → live from the start; ALLOC of one → double ALLOC', () => {
  const bound = {
    version: '0.1',
    program: {
      nodes: [node('h', 'APPLY_H', ['s']), node('m', 'MEASURE_Z', ['s'], { produces: ['e'] })],
    },
    resources: { vqs: ['s'], events: ['e'] },
  };
  assert.equal(check(bound, { bound: ['s'], caps: ['CAP_COMPUTE', 'CAP_MEASURE'] }), []);
  assert.equal(where(errors(check(bound))), ['7 h program.nodes[0].vqs[0]']);
  const nodes = bound.program.nodes as Json[];
  nodes.unshift(node('al', 'ALLOC_LQ', ['s']));
  expectErrors(bound, ['7 al program.nodes[0].vqs[0]'], { bound: ['s'] });
});

// Rule 8: caps.

test('rule 8: no CAP_COMPUTE → each compute node at its op; fences need nothing', () => {
  const json = qvm([
    node('h', 'APPLY_H', ['a']),
    node('f', 'FENCE_EPOCH', []),
    node('r', 'RESET', ['a']),
  ]);
  expectErrors(json, ['8 h program.nodes[1].op', '8 r program.nodes[3].op'], {
    caps: ['CAP_ALLOC', 'CAP_MEASURE'],
  });
});

test("rule 8: a program's own caps list naming CAP_MAGIC → grants nothing", () => {
  const json = qvm([node('t', 'INJECT_T_STATE', ['a'], { caps: ['CAP_MAGIC'] })]);
  json.caps = ['CAP_ALLOC', 'CAP_MAGIC'];
  const [v] = expectErrors(json, ['8 t program.nodes[1].op'], { caps: CAPS_BASIC });
  assert.match(v!.message, /INJECT_T_STATE needs CAP_MAGIC/);
});

test('rule 8: channel and teleport ops → CAP_LINK and CAP_TELEPORT required', () => {
  const json = qvm(
    [
      node('o', 'OPEN_CHAN', ['a', 'b'], { chs: ['k'] }),
      node('t', 'TELEPORT_CNOT', ['a', 'c']),
      node('c', 'CLOSE_CHAN', [], { chs: ['k'] }),
    ],
    { chs: ['k'] },
  );
  expectErrors(
    json,
    ['8 o program.nodes[1].op', '8 t program.nodes[2].op', '8 c program.nodes[3].op'],
    {
      caps: CAPS_BASIC,
    },
  );
});

test('rule 8: ALLOC_LQ/FREE_LQ without CAP_ALLOC → both nodes', () => {
  expectErrors(qvm([]), ['8 alloc program.nodes[0].op', '8 free program.nodes[1].op'], {
    caps: ['CAP_COMPUTE', 'CAP_MEASURE'],
  });
});

// Rule 9: the firewall, for programs with another tenant's qubits bound (x: tenant B's, y: C's).

/** A program over own qubits a, c (allocated and freed) and bound names x, y. */
function foreignQvm(nodes: unknown[], events: string[] = []): Json {
  return {
    version: '0.1',
    program: {
      nodes: [
        { id: 'alloc', op: 'ALLOC_LQ', vqs: ['a', 'c'], args: { n: 2 } },
        ...nodes,
        { id: 'free', op: 'FREE_LQ', vqs: ['a', 'c'] },
      ],
    },
    resources: { vqs: ['a', 'c', 'x', 'y'], chs: [], events },
  };
}

/** A firewall over channels by tenant pair ("A|B" sorted): each with its uses left; others are missing. */
function firewall(
  channels: Record<string, number>,
  asked: string[][] = [],
): Partial<VerifyContext> {
  return {
    bound: ['x', 'y'],
    firewall: {
      tenant: 'A',
      foreign: new Map([
        ['x', { tenant: 'B', channel: 'ch-ab' }],
        ['y', { tenant: 'C', channel: 'ch-ac' }],
      ]),
      decide: (tenants) => {
        const sorted = [...tenants].sort();
        asked.push(sorted);
        const out: { id: string; usesLeft: number }[] = [];
        for (let i = 0; i < sorted.length; i++) {
          for (let j = i + 1; j < sorted.length; j++) {
            const pair = `${sorted[i]}|${sorted[j]}`;
            const left = channels[pair];
            if (left === undefined)
              throw new KernelError(
                'FIREWALL_NO_CHANNEL',
                `firewall: no channel between ${pair}`,
                'channel',
              );
            out.push({ id: `ch-${pair}`, usesLeft: left });
          }
        }
        return out;
      },
    },
  };
}

function uses(json: unknown, ctx: Partial<VerifyContext>): Record<string, number> {
  const { program } = parseQvm(json);
  assert.ok(program);
  return Object.fromEntries(verifyProgram(program, { ...CTX, ...ctx }).channelUses);
}

test('rule 9: no foreign qubit bound → no decision asked, no uses', () => {
  const asked: string[][] = [];
  const ctx = {
    ...firewall({}, asked),
    bound: [],
    firewall: { ...firewall({}, asked).firewall!, foreign: new Map() },
  };
  assert.equal(uses(qvm([node('g', 'APPLY_CNOT', ['a', 'b'])]), ctx), {});
  assert.equal(asked, []);
});

test('rule 9: each join across tenants takes one use; a CNOT inside one cluster takes none', () => {
  const json = foreignQvm([
    node('j1', 'APPLY_CNOT', ['a', 'x']),
    node('j2', 'APPLY_CZ', ['x', 'a']),
    node('j3', 'APPLY_CNOT', ['c', 'x']),
  ]);
  const asked: string[][] = [];
  assert.equal(errors(check(json, firewall({ 'A|B': 5 }, asked))), []);
  assert.equal(uses(json, firewall({ 'A|B': 5 })), { 'ch-A|B': 2 });
  assert.equal(asked, [
    ['A', 'B'],
    ['A', 'B'],
  ]);
});

test('rule 9: a guarded join counts (guards are ignored: the use is reserved)', () => {
  const json = foreignQvm(
    [
      node('m', 'MEASURE_Z', ['a'], { produces: ['m'] }),
      node('j', 'APPLY_CNOT', ['c', 'x'], { guard: { event: 'm', equals: 1 } }),
    ],
    ['m'],
  );
  assert.equal(uses(json, firewall({ 'A|B': 1 })), { 'ch-A|B': 1 });
});

test('rule 9: uses beyond the channel’s → CHANNEL_EXHAUSTED once, at the first join over', () => {
  const json = foreignQvm([
    node('j1', 'APPLY_CNOT', ['a', 'x']),
    node('j2', 'APPLY_CNOT', ['c', 'x']),
    node('j3', 'APPLY_CNOT', ['c', 'y']),
  ]);
  const [v, ...rest] = expectErrors(
    json,
    ['9 j2 program.nodes[2].vqs', '9 j3 program.nodes[3].vqs'],
    firewall({ 'A|B': 1, 'A|C': 9 }),
  );
  assert.is(v!.code, 'CHANNEL_EXHAUSTED');
  assert.match(
    v!.message,
    /channel ch-A\|B has 1 entanglement\(s\) left; this is the program's join number 2/,
  );
  // j3 joins {a, c, x} (A, B) with y (C): B–C has no channel.
  assert.is(rest[0]!.code, 'FIREWALL_NO_CHANNEL');
});

test('rule 9: transitive: joining A–B’s cluster with C’s qubit needs A–C and B–C', () => {
  const json = foreignQvm([
    node('j1', 'APPLY_CNOT', ['a', 'x']),
    node('j2', 'APPLY_TOFFOLI', ['a', 'c', 'y']),
  ]);
  const asked: string[][] = [];
  const [v] = expectErrors(
    json,
    ['9 j2 program.nodes[2].vqs'],
    firewall({ 'A|B': 5, 'A|C': 5 }, asked),
  );
  assert.is(v!.code, 'FIREWALL_NO_CHANNEL');
  assert.match(v!.message, /B\|C/);
  assert.equal(asked[asked.length - 1], ['A', 'B', 'C']);
  assert.equal(uses(json, firewall({ 'A|B': 5, 'A|C': 5, 'B|C': 5 })), {
    'ch-A|B': 2,
    'ch-A|C': 1,
    'ch-B|C': 1,
  });
});

test('rule 9: a shared qubit in a non-entangling op → RIGHTS_INSUFFICIENT at its operand', () => {
  const json = foreignQvm(
    [
      node('h', 'APPLY_H', ['x']),
      node('mz', 'MEASURE_Z', ['x'], { produces: ['m'] }),
      node('rs', 'RESET', ['a', 'y']),
      node('bell', 'MEASURE_BELL', ['a', 'x'], { produces: ['m2'] }),
    ],
    ['m', 'm2'],
  );
  const got = expectErrors(
    json,
    [
      '9 h program.nodes[1].vqs[0]',
      '9 mz program.nodes[2].vqs[0]',
      '9 rs program.nodes[3].vqs[1]',
      '9 bell program.nodes[4].vqs[1]',
    ],
    firewall({ 'A|B': 5 }),
  );
  assert.ok(got.every((v) => v.code === 'RIGHTS_INSUFFICIENT'));
  assert.match(
    got[0]!.message,
    /"x" is another tenant's qubit shared through channel "ch-ab": only entangling gates/,
  );
});

// Rule 10: bounds, each at max (valid) and max + 1 (violation naming the limit).

const limits = (over: Partial<VerifyContext['limits']>) => ({ limits: { ...LIMITS, ...over } });

test('rule 10: nodes at nodesMax → valid; one more → limits.nodesMax', () => {
  const json = qvm([node('h', 'APPLY_H', ['a'])]);
  assert.equal(check(json, limits({ nodesMax: 3 })), []);
  const [v] = expectErrors(json, ['10  limits.nodesMax'], limits({ nodesMax: 2 }));
  assert.match(v!.message, /3 nodes; the limit is 2/);
});

test('rule 10: live qubits at qubitsLiveMax → valid; one more → violation at the ALLOC', () => {
  const json = qvm([]);
  assert.equal(check(json, limits({ qubitsLiveMax: 3 })), []);
  expectErrors(json, ['10 alloc limits.qubitsLiveMax'], limits({ qubitsLiveMax: 2 }));
});

test('rule 10: freeing before allocating more → peak, not total, counts', () => {
  const json = {
    version: '0.1',
    program: {
      nodes: [
        node('a1', 'ALLOC_LQ', ['a', 'b']),
        node('f1', 'FREE_LQ', ['a', 'b']),
        node('a2', 'ALLOC_LQ', ['c', 'd']),
        node('f2', 'FREE_LQ', ['c', 'd']),
      ],
    },
    resources: { vqs: ['a', 'b', 'c', 'd'], events: [] },
  };
  assert.equal(check(json, limits({ qubitsLiveMax: 2 })), []);
  assert.is(estimate(json).logicalQubits, 2);
});

test('rule 10: cluster at qubitsPerClusterMax → valid; one more → violation', () => {
  const json = qvm([node('c1', 'APPLY_CNOT', ['a', 'b']), node('c2', 'APPLY_CZ', ['b', 'c'])]);
  assert.equal(check(json, limits({ qubitsPerClusterMax: 3 })), []);
  const [v] = expectErrors(
    json,
    ['10 c2 limits.qubitsPerClusterMax'],
    limits({ qubitsPerClusterMax: 2 }),
  );
  assert.match(v!.message, /3 qubits can become entangled together/);
});

test('rule 10: cluster union ignores guards and counts MEASURE_BELL/TOFFOLI → conservative', () => {
  const json = qvm(
    [
      node('m', 'MEASURE_Z', ['a'], { produces: ['e'] }),
      node('cz', 'APPLY_CZ', ['a', 'b'], { guard: { event: 'e', equals: 1 } }),
      node('bell', 'MEASURE_BELL', ['b', 'c'], { produces: ['v'] }),
    ],
    { vqs: ['a', 'b', 'c', 'd'], events: ['e', 'v'] },
  );
  const e = estimate(json);
  assert.equal([e.largestCluster, e.stateBytes], [3, 16 * 8 + 16 * 2]);
});

test('rule 10: physical (surface d=3, 3 qubits = 54) at max → valid; max - 1 → violation', () => {
  const json = qvm([]);
  ((json.program as Json).nodes as Json[])[0]!.args = { n: 3, profile: 'logical:surface(d=3)' };
  assert.equal(check(json, limits({ physicalQubitsMax: 54 })), []);
  expectErrors(json, ['10 alloc limits.physicalQubitsMax'], limits({ physicalQubitsMax: 53 }));
  assert.equal(estimate(json).physicalByProfile, { 'logical:surface(d=3)': 54 });
});

test('rule 10: mixed profiles → physical by profile at the peak; no profile is ideal', () => {
  const json = {
    version: '0.1',
    program: {
      nodes: [
        node('a1', 'ALLOC_LQ', ['a'], { args: { profile: 'logical:qldpc(d=4,rate=0.5)' } }),
        node('a2', 'ALLOC_LQ', ['b', 'c']),
        node('f', 'FREE_LQ', ['a', 'b', 'c']),
      ],
    },
    resources: { vqs: ['a', 'b', 'c'], events: [] },
  };
  const e = estimate(json);
  assert.equal(e.physicalByProfile, { 'logical:qldpc(d=4,rate=0.5)': 32, ideal: 2 });
  assert.is(e.physicalQubits, 34);
});

test('rule 10: state bytes ({a,b},{c} = 64 + 32) at max → valid; max - 1 → violation', () => {
  const json = qvm([node('c', 'APPLY_CNOT', ['a', 'b'])]);
  assert.is(estimate(json).stateBytes, 96);
  assert.equal(check(json, limits({ stateBytesMax: 96 })), []);
  expectErrors(json, ['10  limits.stateBytesMax'], limits({ stateBytesMax: 95 }));
});

test('rule 10: 2000-qubit cluster → state bytes saturate, never Infinity', () => {
  const vqs = Array.from({ length: 2000 }, (_, i) => `q${i}`);
  const chain = vqs.slice(1).map((q, i) => node(`c${i}`, 'APPLY_CNOT', [vqs[i]!, q]));
  const json = qvm(chain, { vqs });
  const e = estimate(json);
  assert.is(e.stateBytes, Number.MAX_SAFE_INTEGER);
  assert.is(e.largestCluster, 2000);
  assert.ok(errors(check(json)).some((v) => v.field === 'limits.stateBytesMax'));
});

// All at once, junk, prototype keys.

test('all at once: six different faults → six violations in one reply, sorted by rule', () => {
  const json = qvm(
    [
      node('h', 'APPLY_H', ['zz']), // rule 3
      node('m', 'MEASURE_Z', ['a'], { produces: ['e'] }),
      node('m', 'APPLY_X', ['b']), // rule 2 (duplicate id)
      node('rx', 'APPLY_RX', ['c'], { args: { theta: Number.NaN } }), // rule 6
      node('t', 'INJECT_T_STATE', ['a']), // rule 7 (not fresh) and rule 8 (no CAP_MAGIC)
      node('q', 'APPLY_QFT', ['a']), // rule 2 (unknown op)
    ],
    { events: ['e', 'unused'] }, // rule 4
  );
  expectErrors(
    json,
    [
      '2 q program.nodes[6].op',
      '2 m program.nodes[3].id',
      '3 h program.nodes[1].vqs[0]',
      '4  resources.events[1]',
      '6 rx program.nodes[4].args.theta',
      '7 t program.nodes[5].vqs[0]',
      '8 t program.nodes[5].op',
    ],
    { caps: CAPS_BASIC },
  );
});

test(`violations: 1000 faults → at most ${VIOLATIONS_MAX} plus one summary line`, () => {
  const many = Array.from({ length: 1000 }, (_, i) => node(`x${i}`, 'APPLY_X', [`u${i}`]));
  const { violations } = verifyProgram(parseQvm(qvm(many)).program!, CTX);
  assert.is(violations.length, VIOLATIONS_MAX + 1);
  assert.match(violations[VIOLATIONS_MAX]!.message, /further violations not listed/);
});

test('junk: node fields of the wrong type → each reported, the node keeps its good parts', () => {
  const json = qvm([
    { id: 'j1', op: 'APPLY_H', vqs: 'a' },
    { id: 'j2', op: 'APPLY_CNOT', vqs: ['a', 5] },
    { id: 'j3', op: 'APPLY_X', vqs: ['a'], args: [1, 2], guard: 7, caps: 'CAP_ALL' },
    ['not', 'a', 'node'],
    null,
  ]);
  expectErrors(json, [
    '2  program.nodes[4]',
    '2  program.nodes[5]',
    '6 j1 program.nodes[1].vqs',
    '6 j2 program.nodes[2].vqs[1]',
    '6 j3 program.nodes[3].args',
    '6 j3 program.nodes[3].guard',
    '8 j3 program.nodes[3].caps',
  ]);
});

test('junk: prototype keys from JSON.parse (__proto__, constructor) → plain names', () => {
  const text = `{"__proto__": {"version": "0.1"}, "constructor": 1, "version": "0.1",
    "program": {"nodes": [
      {"id": "constructor", "op": "ALLOC_LQ", "vqs": ["__proto__", "toString"], "__proto__": []},
      {"id": "__proto__", "op": "APPLY_CNOT", "vqs": ["__proto__", "toString"]},
      {"id": "hasOwnProperty", "op": "MEASURE_Z", "vqs": ["toString"], "produces": ["valueOf"]},
      {"id": "f", "op": "FREE_LQ", "vqs": ["__proto__", "toString"],
       "args": {"__proto__": {"n": 2}}}]},
    "resources": {"vqs": ["__proto__", "toString"], "events": ["valueOf"],
      "__proto__": {"chs": 1}}}`;
  assert.equal(check(JSON.parse(text)), []);
  assert.equal(check(JSON.parse(text.replace('"version": "0.1",', ''))).length, 1);
});

test('junk: a null-prototype object as a node → violation, never a TypeError', () => {
  const bare = Object.create(null) as Json;
  bare.id = Object.create(null);
  const json = qvm([bare]);
  expectErrors(json, ['2  program.nodes[1].id', '2  program.nodes[1].op']);
});

// Properties.

const SEED = process.env.FC_SEED === undefined ? Date.now() % 2 ** 31 : Number(process.env.FC_SEED);
console.log(`qvm-verify: fast-check seed ${SEED} (rerun with FC_SEED=${SEED})`);

test('property: random valid programs (3000 runs) → zero violations, estimate consistent', () => {
  fc.assert(
    fc.property(programArb, (json) => {
      const text = JSON.parse(JSON.stringify(json)) as unknown;
      const vs = check(text);
      if (vs.length > 0) throw new Error(JSON.stringify(vs));
      const e = estimate(text);
      const byProfile = Object.values(e.physicalByProfile).reduce((a, b) => a + b, 0);
      return byProfile === e.physicalQubits && e.largestCluster <= e.logicalQubits;
    }),
    { numRuns: 3000, seed: SEED },
  );
});

test('property: mutations of valid programs (5000 runs) → an error, never a throw', () => {
  const kinds = Object.keys(MUTATIONS);
  fc.assert(
    fc.property(programArb, fc.nat(kinds.length - 1), fc.nat(), junkArb, (json, kind, r, junk) => {
      const mutated = structuredClone(json);
      MUTATIONS[kinds[kind]!]!(mutated, r, junk);
      const vs = errors(check(mutated));
      if (vs.length === 0) {
        throw new Error(`${kinds[kind]} left no error: ${JSON.stringify(mutated)}`);
      }
    }),
    { numRuns: 5000, seed: SEED },
  );
});

test('property: arbitrary junk input (2000 runs) → at least one violation, never a throw', () => {
  const junk = fc.oneof(
    fc.anything({
      maxDepth: 6,
      withNullPrototype: true,
      withBigInt: true,
      withBoxedValues: true,
      withMap: true,
      withSet: true,
      withSparseArray: true,
      withTypedArray: true,
      withDate: true,
    }),
    fc.jsonValue({ maxDepth: 8 }),
    fc.record({
      version: fc.constant('0.1'),
      program: fc.record({ nodes: fc.array(fc.anything({ maxDepth: 4 }), { minLength: 1 }) }),
      resources: fc.anything({ maxDepth: 3 }),
    }),
  );
  fc.assert(
    fc.property(junk, (input) => {
      const vs = check(input);
      if (vs.length === 0) throw new Error(`no violation for ${String(typeof input)}`);
    }),
    { numRuns: 2000, seed: SEED },
  );
});

test.run();
