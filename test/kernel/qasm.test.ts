/**
 * The OpenQASM 2.0 front end (`kernel/program/qasm.ts`) against docs/programs.md: exact lowering of
 * every gate (and a state-vector check that each decomposition equals its textbook matrix up to a
 * global phase), broadcasting, `if` guards, Qiskit's count order, one exact `line:col` case per
 * rejection, every limit at max and max + 1, and that the verifier accepts what it produces.
 * Property tests print their seed; `FC_SEED=<seed>` reruns them with it.
 */
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Guard, Program, ProgramNode } from '../../src/kernel/program/ir.js';
import {
  QASM_BITS_PER_CONDITION_MAX,
  QASM_COUNTS_ORDER,
  QASM_EXPANSION_STEPS_MAX,
  QASM_EXPRESSION_DEPTH_MAX,
  QASM_GATE_DEPTH_MAX,
  QASM_GUARD_LEAVES_MAX,
  QASM_IDENTIFIER_CHARS_MAX,
  QASM_QUBITS_MAX,
  QASM_QUBITS_PER_REGISTER_MAX,
  QASM_SOURCE_CHARS_MAX,
  parseQasm,
} from '../../src/kernel/program/qasm.js';
import { PROGRAM_NODES_MAX } from '../../src/kernel/program/qvm.js';
import { type VerifyContext, verifyProgram } from '../../src/kernel/program/verify.js';

const CTX: VerifyContext = {
  caps: ['CAP_ALLOC', 'CAP_COMPUTE', 'CAP_MEASURE'],
  strict: false,
  limits: {
    nodesMax: 100_000,
    qubitsLiveMax: 4096,
    qubitsPerClusterMax: 26,
    physicalQubitsMax: 1e9,
    stateBytesMax: 2 ** 40,
  },
};
const HEAD = 'OPENQASM 2.0;\ninclude "qelib1.inc";\n';

/** Parses a valid program, asserting no violation and no verifier error. */
function ok(text: string): Program {
  const r = parseQasm(text);
  assert.equal(r.violations, [], 'parse violations');
  assert.ok(r.program);
  const errors = verifyProgram(r.program, CTX).violations.filter((v) => v.severity === 'error');
  assert.equal(errors, [], 'verifier errors');
  return r.program;
}

/** Each node as `id op qubits [theta] [-> events] [if guard]`, the shape the tests compare. */
function show(n: ProgramNode): string {
  const parts = [n.id, n.op, n.qubits.join(',')];
  if (n.args.theta !== undefined) parts.push(`θ=${round(n.args.theta)}`);
  if (n.op === 'ALLOC_LQ') parts.push(`n=${n.args.n}`);
  if (n.produces.length > 0) parts.push(`-> ${n.produces.join(',')}`);
  if (n.guard !== undefined) parts.push(`if ${showGuard(n.guard)}`);
  return parts.join(' ');
}

function showGuard(g: Guard): string {
  if ('event' in g) return `${g.event}=${g.equals}`;
  return `${g.type}(${g.conditions.map(showGuard).join(' ')})`;
}

const round = (x: number) => Math.round(x * 1e9) / 1e9;
const nodes = (text: string) => ok(text).nodes.map(show);
/** The program's nodes between its ALLOC_LQ and its closing FREE_LQ. */
const ops = (text: string) => nodes(text).slice(1, -1);
/** The violations as `line:col message`; also checks `field` repeats `node`. */
function rejects(text: string): string[] {
  const r = parseQasm(text);
  assert.is(r.program, null);
  assert.equal(r.registers, []);
  for (const v of r.violations) {
    assert.is(v.field, v.node);
    assert.is(v.rule, 0);
    assert.is(v.severity, 'error');
  }
  return r.violations.map((v) => `${v.node} ${v.message}`);
}

// Whole programs.

test('bell: h, cx, measure → exact nodes, events, registers, caps, verifier accepts', () => {
  const text = `${HEAD}qreg q[2];\ncreg c[2];\nh q[0];\ncx q[0], q[1];\nmeasure q -> c;\n`;
  const r = parseQasm(text);
  assert.equal(r.violations, []);
  const p = ok(text);
  assert.equal(p.nodes.map(show), [
    'L3 ALLOC_LQ q_0,q_1 n=2',
    'L5 APPLY_H q_0',
    'L6 APPLY_CNOT q_0,q_1',
    'L7 MEASURE_Z q_0 -> c_0',
    'L7.1 MEASURE_Z q_1 -> c_1',
    'L8 FREE_LQ q_0,q_1',
  ]);
  assert.equal(
    p.nodes.map((n) => n.source),
    ['3:1', '5:1', '6:1', '7:1', '7:1', '8:1'],
  );
  assert.is(p.format, 'qasm');
  assert.equal(p.qubits, ['q_0', 'q_1']);
  assert.equal(p.channels, []);
  assert.equal(p.events, ['c_1', 'c_0']);
  assert.equal(p.declaredCaps, ['CAP_ALLOC', 'CAP_COMPUTE', 'CAP_MEASURE']);
  assert.is(p.countsOrder, QASM_COUNTS_ORDER);
  assert.equal(r.registers, [{ name: 'c', size: 2 }]);
  for (const n of p.nodes) {
    assert.equal([n.channels, n.inputs, n.guard], [[], [], undefined]);
  }
  const e = verifyProgram(p, CTX).estimate;
  assert.equal([e.logicalQubits, e.largestCluster, e.nodes], [2, 2, 6]);
});

test('ghz: broadcast measure of 3 qubits → events highest index first', () => {
  const text = `${HEAD}qreg q[3];\ncreg c[3];\nh q[0];\ncx q[0],q[1];\ncx q[1],q[2];\nmeasure q -> c;`;
  const p = ok(text);
  assert.equal(ops(text), [
    'L5 APPLY_H q_0',
    'L6 APPLY_CNOT q_0,q_1',
    'L7 APPLY_CNOT q_1,q_2',
    'L8 MEASURE_Z q_0 -> c_0',
    'L8.1 MEASURE_Z q_1 -> c_1',
    'L8.2 MEASURE_Z q_2 -> c_2',
  ]);
  assert.equal(p.events, ['c_2', 'c_1', 'c_0']);
});

test('two cregs: events in Qiskit order (last-declared register first, high bit first)', () => {
  const text =
    `${HEAD}qreg q[3];\ncreg a[1];\ncreg b[2];\n` +
    'measure q[0] -> a[0];\nmeasure q[1] -> b[0];\nmeasure q[2] -> b[1];\n';
  const r = parseQasm(text);
  assert.equal(r.program?.events, ['b_1', 'b_0', 'a_0']);
  assert.equal(r.registers, [
    { name: 'b', size: 2 },
    { name: 'a', size: 1 },
  ]);
  ok(text);
});

test('cregs: a never-measured register → left out of events and registers', () => {
  const text = `${HEAD}qreg q[1];\ncreg unused[3];\ncreg c[1];\nmeasure q[0] -> c[0];\n`;
  const r = parseQasm(text);
  assert.equal(r.program?.events, ['c_0']);
  assert.equal(r.registers, [{ name: 'c', size: 1 }]);
});

test('header: include is optional; comments and blank lines are skipped', () => {
  const text = '// a comment\n\nOPENQASM 2.0; // trailing\nqreg q[1];\n  x q[0]; // x\n';
  assert.equal(nodes(text), ['L4 ALLOC_LQ q_0 n=1', 'L5 APPLY_X q_0', 'L6 FREE_LQ q_0']);
  assert.equal(ok(text).nodes[1]!.source, '5:3');
});

test('no qubits: a header alone → an empty program', () => {
  const p = ok('OPENQASM 2.0;');
  assert.equal([p.nodes, p.qubits, p.events, p.declaredCaps], [[], [], [], []]);
});

test('node ids: statements sharing a line → L<line>, L<line>.1, ... unique', () => {
  const text = `${HEAD}qreg q[2]; h q[0]; cx q[0], q[1]; x q;\n`;
  assert.equal(nodes(text), [
    'L3 ALLOC_LQ q_0,q_1 n=2',
    'L3.1 APPLY_H q_0',
    'L3.2 APPLY_CNOT q_0,q_1',
    'L3.3 APPLY_X q_0',
    'L3.4 APPLY_X q_1',
    'L4 FREE_LQ q_0,q_1',
  ]);
});

test('qregs: several → one ALLOC_LQ first, every qubit in declaration order', () => {
  const text = `${HEAD}qreg a[1];\nx a[0];\nqreg b[2];\nx b[1];\n`;
  assert.equal(nodes(text), [
    'L3 ALLOC_LQ a_0,b_0,b_1 n=3',
    'L4 APPLY_X a_0',
    'L6 APPLY_X b_1',
    'L7 FREE_LQ a_0,b_0,b_1',
  ]);
  assert.equal(ok(text).qubits, ['a_0', 'b_0', 'b_1']);
});

test('caps: only the caps the program uses are declared', () => {
  assert.equal(ok(`${HEAD}qreg q[1];`).declaredCaps, ['CAP_ALLOC']);
  assert.equal(ok(`${HEAD}qreg q[1];\nh q[0];`).declaredCaps, ['CAP_ALLOC', 'CAP_COMPUTE']);
  const measured = `${HEAD}qreg q[1];\ncreg c[1];\nmeasure q[0] -> c[0];`;
  assert.equal(ok(measured).declaredCaps, ['CAP_ALLOC', 'CAP_MEASURE']);
});

// Gate lowering.

const LOWERING: [string, string[]][] = [
  ['id q[0];', []],
  ['x q[0];', ['APPLY_X q_0']],
  ['y q[0];', ['APPLY_Y q_0']],
  ['z q[0];', ['APPLY_Z q_0']],
  ['h q[0];', ['APPLY_H q_0']],
  ['s q[0];', ['APPLY_S q_0']],
  ['sdg q[0];', ['APPLY_SDG q_0']],
  ['t q[0];', ['APPLY_T q_0']],
  ['tdg q[0];', ['APPLY_TDG q_0']],
  ['rx(0.5) q[0];', ['APPLY_RX q_0 θ=0.5']],
  ['ry(0.5) q[0];', ['APPLY_RY q_0 θ=0.5']],
  ['rz(0.5) q[0];', ['APPLY_RZ q_0 θ=0.5']],
  ['u1(0.5) q[0];', ['APPLY_RZ q_0 θ=0.5']],
  ['p(0.5) q[0];', ['APPLY_RZ q_0 θ=0.5']],
  [
    'u2(0.2, 0.3) q[0];',
    ['APPLY_RZ q_0 θ=0.3', 'APPLY_RY q_0 θ=1.570796327', 'APPLY_RZ q_0 θ=0.2'],
  ],
  ['u3(0.1, 0.2, 0.3) q[0];', ['APPLY_RZ q_0 θ=0.3', 'APPLY_RY q_0 θ=0.1', 'APPLY_RZ q_0 θ=0.2']],
  ['u(0.1, 0.2, 0.3) q[0];', ['APPLY_RZ q_0 θ=0.3', 'APPLY_RY q_0 θ=0.1', 'APPLY_RZ q_0 θ=0.2']],
  ['U(0.1, 0.2, 0.3) q[0];', ['APPLY_RZ q_0 θ=0.3', 'APPLY_RY q_0 θ=0.1', 'APPLY_RZ q_0 θ=0.2']],
  ['cx q[0], q[1];', ['APPLY_CNOT q_0,q_1']],
  ['CX q[0], q[1];', ['APPLY_CNOT q_0,q_1']],
  ['cy q[0], q[1];', ['APPLY_SDG q_1', 'APPLY_CNOT q_0,q_1', 'APPLY_S q_1']],
  ['cz q[0], q[1];', ['APPLY_CZ q_0,q_1']],
  ['swap q[0], q[1];', ['APPLY_SWAP q_0,q_1']],
  ['ccx q[0], q[1], q[2];', ['APPLY_TOFFOLI q_0,q_1,q_2']],
  [
    'cp(0.5) q[0], q[1];',
    [
      'APPLY_RZ q_0 θ=0.25',
      'APPLY_CNOT q_0,q_1',
      'APPLY_RZ q_1 θ=-0.25',
      'APPLY_CNOT q_0,q_1',
      'APPLY_RZ q_1 θ=0.25',
    ],
  ],
  [
    'cu1(0.5) q[0], q[1];',
    [
      'APPLY_RZ q_0 θ=0.25',
      'APPLY_CNOT q_0,q_1',
      'APPLY_RZ q_1 θ=-0.25',
      'APPLY_CNOT q_0,q_1',
      'APPLY_RZ q_1 θ=0.25',
    ],
  ],
  [
    'crz(0.5) q[0], q[1];',
    ['APPLY_RZ q_1 θ=0.25', 'APPLY_CNOT q_0,q_1', 'APPLY_RZ q_1 θ=-0.25', 'APPLY_CNOT q_0,q_1'],
  ],
  [
    'ch q[0], q[1];',
    [
      'APPLY_S q_1',
      'APPLY_H q_1',
      'APPLY_T q_1',
      'APPLY_CNOT q_0,q_1',
      'APPLY_TDG q_1',
      'APPLY_H q_1',
      'APPLY_SDG q_1',
    ],
  ],
];

for (const [statement, expected] of LOWERING) {
  const gate = statement.split(/[ (]/)[0];
  test(`lowering: ${gate} → ${expected.map((e) => e.split(' ')[0]).join(', ') || 'nothing'}`, () => {
    const got = ops(`${HEAD}qreg q[3];\n${statement}\n`);
    assert.equal(
      got,
      expected.map((e, k) => `${k === 0 ? 'L4' : `L4.${k}`} ${e}`),
    );
  });
}

// A tiny state-vector check of every decomposition: the emitted ops' unitary equals the
// textbook matrix up to a global phase. Basis index: the gate's first qubit is the most
// significant bit.

type C = [number, number];
type M = C[][];
const c = (re: number, im = 0): C => [re, im];
const cmul = (a: C, b: C): C => [a[0] * b[0] - a[1] * b[1], a[0] * b[1] + a[1] * b[0]];
const cadd = (a: C, b: C): C => [a[0] + b[0], a[1] + b[1]];
const cexp = (phi: number): C => [Math.cos(phi), Math.sin(phi)];
const R = Math.SQRT1_2;

const ONE_QUBIT: Record<string, (theta: number) => M> = {
  APPLY_H: () => [
    [c(R), c(R)],
    [c(R), c(-R)],
  ],
  APPLY_X: () => [
    [c(0), c(1)],
    [c(1), c(0)],
  ],
  APPLY_Y: () => [
    [c(0), c(0, -1)],
    [c(0, 1), c(0)],
  ],
  APPLY_Z: () => diag(c(1), c(-1)),
  APPLY_S: () => diag(c(1), c(0, 1)),
  APPLY_SDG: () => diag(c(1), c(0, -1)),
  APPLY_T: () => diag(c(1), cexp(Math.PI / 4)),
  APPLY_TDG: () => diag(c(1), cexp(-Math.PI / 4)),
  APPLY_RX: (t) => [
    [c(Math.cos(t / 2)), c(0, -Math.sin(t / 2))],
    [c(0, -Math.sin(t / 2)), c(Math.cos(t / 2))],
  ],
  APPLY_RY: (t) => [
    [c(Math.cos(t / 2)), c(-Math.sin(t / 2))],
    [c(Math.sin(t / 2)), c(Math.cos(t / 2))],
  ],
  APPLY_RZ: (t) => diag(cexp(-t / 2), cexp(t / 2)),
};

function diag(...d: C[]): M {
  return d.map((x, i) => d.map((_, j) => (i === j ? x : c(0))));
}

/** Applies one node to a state over `n` qubits `q_0..q_{n-1}` (q_0 most significant). */
function applyNode(state: C[], node: ProgramNode, n: number): C[] {
  const bit = (name: string) => 1 << (n - 1 - Number(name.slice(2)));
  const [a = 0, b = 0, t = 0] = node.qubits.map(bit);
  const out = state.map((x): C => [x[0], x[1]]);
  const one = ONE_QUBIT[node.op];
  if (one !== undefined) {
    const m = one(node.args.theta ?? 0);
    for (let i = 0; i < state.length; i++) {
      if (i & a) continue;
      const [x0, x1] = [state[i]!, state[i | a]!];
      out[i] = cadd(cmul(m[0]![0]!, x0), cmul(m[0]![1]!, x1));
      out[i | a] = cadd(cmul(m[1]![0]!, x0), cmul(m[1]![1]!, x1));
    }
    return out;
  }
  for (let i = 0; i < state.length; i++) {
    if (node.op === 'APPLY_CNOT' && i & a) out[i] = state[i ^ b]!;
    else if (node.op === 'APPLY_CZ' && i & a && i & b) out[i] = cmul(c(-1), state[i]!);
    else if (node.op === 'APPLY_SWAP' && !(i & a) !== !(i & b)) out[i] = state[i ^ a ^ b]!;
    else if (node.op === 'APPLY_TOFFOLI' && i & a && i & b) out[i] = state[i ^ t]!;
    else if (!['APPLY_CNOT', 'APPLY_CZ', 'APPLY_SWAP', 'APPLY_TOFFOLI'].includes(node.op)) {
      throw new Error(`no test matrix for ${node.op}`);
    }
  }
  return out;
}

/** The unitary of a gate statement on q[0..n-1], column by column. */
function unitaryOf(statement: string, n: number): M {
  const program = ok(`${HEAD}qreg q[${n}];\n${statement}\n`);
  const dim = 1 << n;
  const columns = Array.from({ length: dim }, (_, k) => {
    let state = Array.from({ length: dim }, (_, i) => c(i === k ? 1 : 0));
    for (const node of program.nodes.slice(1, -1)) state = applyNode(state, node, n);
    return state;
  });
  return Array.from({ length: dim }, (_, i) => columns.map((col) => col[i]!));
}

/** max |U - e^{iφ} V| for the best φ (read off V's largest entry): 0 when equal up to phase. */
function phaseDistance(u: M, v: M): number {
  let best: [number, number] = [0, 0];
  v.forEach((row, i) =>
    row.forEach((x, j) => {
      if (Math.hypot(...x) > Math.hypot(...v[best[0]]![best[1]]!)) best = [i, j];
    }),
  );
  const [bi, bj] = best;
  const vb = v[bi]![bj]!;
  const ub = u[bi]![bj]!;
  const norm = vb[0] ** 2 + vb[1] ** 2;
  const phase = cmul(ub, [vb[0] / norm, -vb[1] / norm]);
  let worst = Math.abs(Math.hypot(...phase) - 1);
  u.forEach((row, i) =>
    row.forEach((x, j) => {
      const d = cadd(x, cmul(c(-1), cmul(phase, v[i]![j]!)));
      worst = Math.max(worst, Math.hypot(...d));
    }),
  );
  return worst;
}

/** |0><0| ⊗ I + |1><1| ⊗ m on (control, target). */
function controlled(m: M): M {
  const z = c(0);
  return [
    [c(1), z, z, z],
    [z, c(1), z, z],
    [z, z, m[0]![0]!, m[0]![1]!],
    [z, z, m[1]![0]!, m[1]![1]!],
  ];
}

function u3(theta: number, phi: number, lambda: number): M {
  const [co, si] = [Math.cos(theta / 2), Math.sin(theta / 2)];
  return [
    [c(co), cmul(c(-si), cexp(lambda))],
    [cmul(c(si), cexp(phi)), cmul(c(co), cexp(phi + lambda))],
  ];
}

const [TH, PH, LA] = [0.7, -1.3, 2.1];
const H_MATRIX = ONE_QUBIT.APPLY_H!(0);
const TEXTBOOK: [string, number, M][] = [
  ['id q[0];', 1, diag(c(1), c(1))],
  [`rx(${TH}) q[0];`, 1, ONE_QUBIT.APPLY_RX!(TH)],
  [`ry(${TH}) q[0];`, 1, ONE_QUBIT.APPLY_RY!(TH)],
  [`rz(${TH}) q[0];`, 1, ONE_QUBIT.APPLY_RZ!(TH)],
  [`u1(${LA}) q[0];`, 1, diag(c(1), cexp(LA))],
  [`p(${LA}) q[0];`, 1, diag(c(1), cexp(LA))],
  [`u2(${PH}, ${LA}) q[0];`, 1, u3(Math.PI / 2, PH, LA)],
  [`u3(${TH}, ${PH}, ${LA}) q[0];`, 1, u3(TH, PH, LA)],
  [`U(${TH}, ${PH}, ${LA}) q[0];`, 1, u3(TH, PH, LA)],
  ['cx q[0], q[1];', 2, controlled(ONE_QUBIT.APPLY_X!(0))],
  ['cy q[0], q[1];', 2, controlled(ONE_QUBIT.APPLY_Y!(0))],
  ['cz q[0], q[1];', 2, controlled(ONE_QUBIT.APPLY_Z!(0))],
  ['ch q[0], q[1];', 2, controlled(H_MATRIX)],
  [`crz(${LA}) q[0], q[1];`, 2, controlled(ONE_QUBIT.APPLY_RZ!(LA))],
  [`cp(${LA}) q[0], q[1];`, 2, controlled(diag(c(1), cexp(LA)))],
  [`cu1(${LA}) q[0], q[1];`, 2, controlled(diag(c(1), cexp(LA)))],
  ['cx q[1], q[0];', 2, [0, 3, 2, 1].map((col) => [0, 1, 2, 3].map((j) => c(j === col ? 1 : 0)))],
  ['swap q[0], q[1];', 2, [0, 2, 1, 3].map((col) => [0, 1, 2, 3].map((j) => c(j === col ? 1 : 0)))],
  [
    'ccx q[0], q[1], q[2];',
    3,
    [0, 1, 2, 3, 4, 5, 7, 6].map((col) =>
      [0, 1, 2, 3, 4, 5, 6, 7].map((j) => c(j === col ? 1 : 0)),
    ),
  ],
];

for (const [statement, n, matrix] of TEXTBOOK) {
  test(`decomposition: ${statement} → its textbook matrix up to a global phase`, () => {
    assert.ok(phaseDistance(unitaryOf(statement, n), matrix) < 1e-12);
  });
}

test('decomposition check: a wrong lowering is caught (cp against crz differs)', () => {
  const cp = unitaryOf(`cp(${LA}) q[0], q[1];`, 2);
  assert.ok(phaseDistance(cp, controlled(ONE_QUBIT.APPLY_RZ!(LA))) > 0.1);
});

test('user gate: a controlled-H built from qelib gates → equals ch up to phase', () => {
  const gate =
    'gate myh a { u2(0, pi) a; }\ngate mych(k) a, b { ry(k/4) b; cx a, b; ry(-k/4) b; }\n';
  const u = unitaryOf(`${gate}mych(pi) q[0], q[1];`, 2);
  // Control 0: RY(-π/4)·RY(π/4) = I. Control 1: RY(-π/4)·X·RY(π/4) = RY(-π/2)·X = H.
  assert.ok(phaseDistance(u, controlled(H_MATRIX)) < 1e-12);
  assert.ok(phaseDistance(unitaryOf(`${gate}myh q[0];`, 1), H_MATRIX) < 1e-12);
});

// User gates.

test('user gate: parameters substituted, earlier gates expand inline, ids per line', () => {
  const text =
    `${HEAD}qreg q[2];\n` +
    'gate rot(a, b) x { rz(a) x; ry(b / 2) x; }\n' +
    'gate pair(t) x, y { rot(t, -t) x; cx x, y; rot(2 * t, pi) y; barrier x, y; }\n' +
    'pair(0.5) q[1], q[0];\n';
  assert.equal(ops(text), [
    'L6 APPLY_RZ q_1 θ=0.5',
    'L6.1 APPLY_RY q_1 θ=-0.25',
    'L6.2 APPLY_CNOT q_1,q_0',
    'L6.3 APPLY_RZ q_0 θ=1',
    'L6.4 APPLY_RY q_0 θ=1.570796327',
  ]);
  assert.equal(
    ok(text)
      .nodes.slice(1, -1)
      .map((n) => n.source),
    ['6:1', '6:1', '6:1', '6:1', '6:1'],
  );
});

test('user gate: no parameters, empty parentheses and an empty body → accepted', () => {
  const text = `${HEAD}qreg q[1];\ngate nop() a { }\ngate flip a { x a; }\nnop q[0];\nflip q[0];\n`;
  assert.equal(ops(text), ['L7 APPLY_X q_0']);
});

test('user gate: broadcast over a register → one expansion per qubit', () => {
  const text = `${HEAD}qreg q[2];\ngate hx a { h a; x a; }\nhx q;\n`;
  assert.equal(ops(text), [
    'L5 APPLY_H q_0',
    'L5.1 APPLY_X q_0',
    'L5.2 APPLY_H q_1',
    'L5.3 APPLY_X q_1',
  ]);
});

// Broadcasting.

test('broadcast: h q → each qubit; cx q, r → pairwise; cx q[0], r → one control', () => {
  const text = `${HEAD}qreg q[2];\nqreg r[2];\nh q;\ncx q, r;\ncx q[0], r;\n`;
  assert.equal(ops(text), [
    'L5 APPLY_H q_0',
    'L5.1 APPLY_H q_1',
    'L6 APPLY_CNOT q_0,r_0',
    'L6.1 APPLY_CNOT q_1,r_1',
    'L7 APPLY_CNOT q_0,r_0',
    'L7.1 APPLY_CNOT q_0,r_1',
  ]);
});

test('broadcast: reset q and measure q -> c → one node per qubit', () => {
  const text = `${HEAD}qreg q[2];\ncreg c[2];\nreset q;\nreset q[1];\nmeasure q -> c;\n`;
  assert.equal(ops(text), [
    'L5 RESET q_0',
    'L5.1 RESET q_1',
    'L6 RESET q_1',
    'L7 MEASURE_Z q_0 -> c_0',
    'L7.1 MEASURE_Z q_1 -> c_1',
  ]);
});

test('barrier: checked and dropped → no node', () => {
  assert.equal(ops(`${HEAD}qreg q[2];\nbarrier q;\nbarrier q[0], q[1];\nh q[0];\n`), [
    'L6 APPLY_H q_0',
  ]);
});

// Expressions.

const EXPRESSIONS: [string, number][] = [
  ['pi', Math.PI],
  ['1e-3', 0.001],
  ['.5', 0.5],
  ['2.', 2],
  ['1.5E+2', 150],
  ['-pi/2', -Math.PI / 2],
  ['1 - 2 - 3', -4],
  ['8 / 4 / 2', 1],
  ['2 + 3 * 4', 14],
  ['(2 + 3) * 4', 20],
  ['-2^2', -4],
  ['2^-1', 0.5],
  ['2^3^2', 512],
  ['--1', 1],
  ['sin(pi/2) + cos(0) + tan(0)', 2],
  ['exp(0) + ln(1) + sqrt(16)', 5],
  ['sqrt(2)^2', 2],
];

for (const [expr, value] of EXPRESSIONS) {
  test(`expression: ${expr} → ${round(value)}`, () => {
    const p = ok(`${HEAD}qreg q[1];\nrz(${expr}) q[0];\n`);
    assert.is(round(p.nodes[1]!.args.theta!), round(value));
  });
}

// Conditions.

test('if: one-bit creg measured before → a leaf guard on every node of the operation', () => {
  const text = `${HEAD}qreg q[2];\ncreg c[1];\nmeasure q[0] -> c[0];\nif (c == 1) x q;\n`;
  assert.equal(ops(text).slice(1), ['L6 APPLY_X q_0 if c_0=1', 'L6.1 APPLY_X q_1 if c_0=1']);
  assert.equal(ok(text).nodes[2]!.source, '6:1');
});

test('if: multi-bit creg → and of one leaf per bit, bit i of n; gates, measure and reset', () => {
  const text =
    `${HEAD}qreg q[3];\ncreg c[2];\ncreg d[1];\nmeasure q[0] -> c[0];\nmeasure q[1] -> c[1];\n` +
    'if (c == 2) u1(0.5) q[2];\nif (c == 1) measure q[2] -> d[0];\nif (c == 3) reset q[0];\n';
  assert.equal(ops(text).slice(2), [
    'L8 APPLY_RZ q_2 θ=0.5 if and(c_0=0 c_1=1)',
    'L9 MEASURE_Z q_2 -> d_0 if and(c_0=1 c_1=0)',
    'L10 RESET q_0 if and(c_0=1 c_1=1)',
  ]);
});

test('if: a bit not yet measured reads 0 → its leaf drops, or the operation is left out', () => {
  const text =
    `${HEAD}qreg q[3];\ncreg c[2];\nmeasure q[0] -> c[0];\n` +
    'if (c == 1) x q[1];\nif (c == 2) x q[1];\nif (c == 0) y q[1];\nmeasure q[1] -> c[1];\n' +
    'if (c == 2) z q[2];\n';
  assert.equal(ops(text).slice(1), [
    'L6 APPLY_X q_1 if c_0=1',
    'L8 APPLY_Y q_1 if c_0=0',
    'L9 MEASURE_Z q_1 -> c_1',
    'L10 APPLY_Z q_2 if and(c_0=0 c_1=1)',
  ]);
});

test('if: creg never measured → == 0 always holds (no guard), == 1 never (nothing)', () => {
  const text = `${HEAD}qreg q[1];\ncreg c[2];\nif (c == 0) x q[0];\nif (c == 1) y q[0];\n`;
  assert.equal(ops(text), ['L5 APPLY_X q_0']);
  assert.equal(ok(text).events, []);
});

// Rejections: each with its exact line:col and message.

const REJECTIONS: [string, string, string[]][] = [
  [
    'OPENQASM 3',
    'OPENQASM 3.0;\nqubit[2] q;\n',
    ['1:10 OPENQASM 3.0 is not supported: this kernel takes OpenQASM 2.0 (QVM.md §2)'],
  ],
  ['missing header', 'qreg q[1];\n', ['1:1 a program starts with "OPENQASM 2.0;", got "qreg"']],
  ['empty text', '', ['1:1 a program starts with "OPENQASM 2.0;", got the end of the program']],
  [
    'second header',
    `${HEAD}OPENQASM 2.0;\n`,
    ['3:1 OPENQASM 2.0; appears once, as the first statement'],
  ],
  [
    'other include',
    `${HEAD}include "other.inc";\n`,
    ['3:9 cannot include "other.inc": only "qelib1.inc" is built in'],
  ],
  [
    'opaque',
    `${HEAD}qreg q[1];\nopaque g a;\n`,
    ['4:1 opaque gates are not supported: every gate must have a definition'],
  ],
  [
    'unknown gate',
    `${HEAD}qreg q[1];\nsx q[0];\n`,
    ['4:1 unknown gate "sx": neither in QVM.md §2\'s subset nor defined'],
  ],
  [
    'wrong arity',
    `${HEAD}qreg q[2];\ncx q[0];\nrx q[0];\nh(1) q[0];\n`,
    [
      '4:1 gate "cx" takes 2 qubits, got 1',
      '5:1 gate "rx" takes 1 parameter, got 0',
      '6:1 gate "h" takes 0 parameters, got 1',
    ],
  ],
  ['undeclared register', `${HEAD}qreg q[2];\nh r[0];\n`, ['4:3 "r" is not a declared qreg']],
  [
    'index out of range',
    `${HEAD}qreg q[2];\nh q[2];\n`,
    ['4:5 index 2 is out of range for qreg q[2]'],
  ],
  [
    'recursion',
    `${HEAD}gate g a { g a; }\n`,
    ['3:12 gate "g" calls itself: recursion is not allowed'],
  ],
  [
    'gate used before its definition',
    `${HEAD}gate f a { g a; }\ngate g a { x a; }\n`,
    ['3:12 unknown gate "g": neither in QVM.md §2\'s subset nor defined before this gate'],
  ],
  [
    'non-finite parameters',
    `${HEAD}qreg q[2];\nrx(1/0) q[0];\nry(ln(-1)) q[0];\nrz(1e999) q[0];\n`,
    [
      '4:4 parameter 1 of "rx" is Infinity, not a finite number',
      '5:4 parameter 1 of "ry" is NaN, not a finite number',
      '6:4 parameter 1 of "rz" is Infinity, not a finite number',
    ],
  ],
  [
    'non-finite parameter inside a gate',
    `${HEAD}qreg q[2];\ngate g(t) a { rx(1/t) a; }\ng(0) q[0];\n`,
    [
      '5:1 in gate "g" (defined at 4:1), parameter 1 of "rx" evaluates to Infinity, not a finite number',
    ],
  ],
  [
    'duplicate registers',
    `${HEAD}qreg q[2];\nqreg q[3];\ncreg q[1];\n`,
    ['4:6 register "q" is already declared at 3:1', '5:6 register "q" is already declared at 3:1'],
  ],
  [
    'duplicate gates',
    `${HEAD}gate g a { h a; }\ngate g a { x a; }\ngate h a { x a; }\n`,
    ['4:6 gate "g" is already defined at 3:1', '5:6 gate "h" is already defined by qelib1.inc'],
  ],
  [
    'duplicate gate names',
    `${HEAD}gate g(a, a) b, b { h b; }\ngate k(a) a { h a; }\n`,
    [
      '3:11 "a" is declared twice in this gate',
      '3:17 "b" is declared twice in this gate',
      '4:11 "a" is declared twice in this gate',
    ],
  ],
  [
    'repeated qubit',
    `${HEAD}qreg q[2];\ncx q[1], q[1];\ncx q[0], q;\ngate g a, b { cx a, a; }\n`,
    [
      '4:10 qubit q[1] is used twice in one gate call',
      '5:10 qubit q[0] is used twice in one gate call',
      '6:21 qubit "a" is used twice in one gate call',
    ],
  ],
  [
    'broadcast size mismatch',
    `${HEAD}qreg q[2];\nqreg r[3];\ncx q, r;\n`,
    ['5:7 whole registers in one gate call must have one size: "q" has 2 qubits, "r" 3'],
  ],
  [
    'measure shapes',
    `${HEAD}qreg q[2];\ncreg c[3];\nmeasure q -> c;\nmeasure q[0] -> c;\n`,
    [
      '5:14 measure of a whole register needs registers of one size: q has 2 qubits, c 3 bits',
      '6:9 measure takes a qubit -> a bit, or a whole qreg -> a whole creg',
    ],
  ],
  [
    'bit measured twice',
    `${HEAD}qreg q[2];\ncreg c[1];\nmeasure q[0] -> c[0];\nmeasure q[1] -> c[0];\n`,
    [
      '6:17 c[0] is already written by the measure at 5:1: a bit is written once here, as an event has one producer (QVM.md §1 rule 4)',
    ],
  ],
  [
    'creg measured in part',
    `${HEAD}qreg q[2];\ncreg c[3];\nmeasure q[0] -> c[1];\n`,
    [
      '4:1 creg "c" is measured only in part (not c[0], c[2]): measure every bit of a register or none: a count\'s key holds measured bits',
    ],
  ],
  [
    'bad conditions',
    `${HEAD}qreg q[1];\ncreg c[2];\nif (c == 4) x q[0];\nif (q == 1) x q[0];\nif (d == 0) x q[0];\n`,
    [
      '5:10 "4" does not fit in creg c\'s 2 bits: it never equals it',
      '6:5 "q" is a qreg; if compares a creg',
      '7:5 "d" is not a declared creg',
    ],
  ],
  [
    'nested if',
    `${HEAD}qreg q[1];\ncreg c[1];\nif (c == 1) if (c == 1) x q[0];\n`,
    ['5:13 expected a gate call, measure or reset after if (...), got "if"'],
  ],
  [
    'register sizes',
    `${HEAD}qreg q[0];\nqreg r[1025];\ncreg c[1025];\n`,
    [
      '3:8 a qreg has 1 to 1024 qubits, got 0',
      '4:8 a qreg has 1 to 1024 qubits, got 1025',
      '5:8 a creg has 1 to 1024 bits, got 1025',
    ],
  ],
  [
    'missing semicolon',
    `${HEAD}qreg q[1];\nh q[0]\nx q[0];\n`,
    ['5:1 expected ";" after the arguments of h, got "x"'],
  ],
  [
    'unknown names in expressions',
    `${HEAD}qreg q[1];\nrx(theta) q[0];\nrx(foo(1)) q[0];\n`,
    [
      '4:4 expected a number, pi, a function or "(", got the unknown name "theta"',
      '5:4 expected a number, pi, a function or "(", got the unknown name "foo"',
    ],
  ],
  [
    'gate body faults',
    `${HEAD}gate g(t) a { rx(s) a; h a[0]; measure a -> c; }\n`,
    [
      '3:18 expected a number, pi, a gate parameter, a function or "(", got the unknown name "s"',
      "3:27 a gate body names the gate's qubit arguments, without an index",
      '3:32 a gate body holds only gate calls and barrier, got "measure"',
    ],
  ],
  [
    'qubit not an argument of the gate',
    `${HEAD}qreg q[1];\ngate g a { h q; }\n`,
    ['4:14 "q" is not a qubit argument of gate "g"'],
  ],
  [
    'reserved names',
    `${HEAD}qreg measure[1];\ncreg pi[1];\ngate sin a { }\n`,
    [
      '3:6 "measure" is a reserved word and cannot be declared',
      '4:6 "pi" is a reserved word and cannot be declared',
      '5:6 "sin" is a reserved word and cannot be declared',
    ],
  ],
  [
    'stray character',
    `${HEAD}qreg q[1];\nh q[0]; @ x q[0];\n`,
    ['4:9 expected a statement, got the character "@"'],
  ],
  [
    'wrong register kinds',
    `${HEAD}qreg q[1];\nbarrier r;\nreset c;\ncreg c[1];\nh c[0];\nmeasure c[0] -> q[0];\n`,
    [
      '4:9 "r" is not a declared qreg',
      '5:7 "c" is not a declared qreg',
      '7:3 "c" is a creg, where a qubit is needed',
      '8:9 "c" is a creg, where a qubit is needed',
      '8:17 "q" is a qreg, where a classical bit is needed',
    ],
  ],
  [
    'unclosed gate header',
    `${HEAD}qreg q[1];\ngate g(a b { h b; }\nh q[0];\n`,
    ['4:10 expected ")" after the gate parameters, got "b"'],
  ],
  [
    'unterminated string',
    `${HEAD}qreg q[1];\nh q[0]; "unterminated\n`,
    ['4:9 expected a statement, got an unterminated string'],
  ],
  [
    'unclosed gate body',
    `${HEAD}gate g a { h a; \n`,
    ['4:1 expected "}" to close the body of gate g, got the end of the program'],
  ],
  [
    'parameter lists',
    `${HEAD}qreg q[1];\nrx(1,) q[0];\nrx(1 2) q[0];\n`,
    [
      '4:6 expected a number, pi, a function or "(", got ")"',
      '5:6 expected ")" after the parameters of rx, got "2"',
    ],
  ],
  [
    'measure without arrow',
    `${HEAD}qreg q[1];\ncreg c[1];\nmeasure q[0] c[0];\n`,
    ['5:14 expected "->" between the qubit and the bit of measure, got "c"'],
  ],
  [
    'non-integer size and index',
    `${HEAD}qreg q[1.5];\nqreg r[2];\nh r[0.5];\n`,
    [
      '3:8 expected a non-negative integer as the register size, got "1.5"',
      '5:5 expected a non-negative integer as the index, got "0.5"',
    ],
  ],
];

for (const [what, text, expected] of REJECTIONS) {
  test(`rejects: ${what} → exact line:col violations`, () => {
    assert.equal(rejects(text), expected);
  });
}

test('rejects: a broken gate definition → its calls raise no second violation', () => {
  const text = `${HEAD}qreg q[1];\ngate g(a b { h b; }\ng(1) q[0];\ngate k a { foo a; }\nk q[0];\n`;
  assert.equal(rejects(text), [
    '4:10 expected ")" after the gate parameters, got "b"',
    '6:12 unknown gate "foo": neither in QVM.md §2\'s subset nor defined before this gate',
  ]);
});

test('rejects: faults in many statements → all reported in one pass, in source order', () => {
  const text = `${HEAD}qreg q[2];\nfoo q;\nh q[5];\ncx q[0] q[1];\nrx(1/0) q[0];\nx r;\n`;
  assert.equal(
    rejects(text).map((v) => v.split(' ')[0]),
    ['4:1', '5:5', '6:9', '7:4', '8:3'],
  );
});

// Limits: each at max and max + 1.

function violationsOf(text: string): string[] {
  return parseQasm(text).violations.map((v) => `${v.node} ${v.message}`);
}

test('limit: source text of QASM_SOURCE_CHARS_MAX → accepted; one more → rejected', () => {
  const base = `${HEAD}qreg q[1];\n//`;
  const atMax = base + 'x'.repeat(QASM_SOURCE_CHARS_MAX - base.length);
  assert.is(atMax.length, QASM_SOURCE_CHARS_MAX);
  ok(atMax);
  const r = parseQasm(`${atMax}x`);
  assert.is(r.program, null);
  assert.equal(
    r.violations.map((v) => [v.node, v.field, v.message]),
    [
      [
        '',
        'source',
        `the program has ${QASM_SOURCE_CHARS_MAX + 1} characters; the kernel takes 1048576`,
      ],
    ],
  );
});

test('limit: qreg of QASM_QUBITS_PER_REGISTER_MAX → accepted; one more → rejected', () => {
  const max = QASM_QUBITS_PER_REGISTER_MAX;
  assert.is(ok(`${HEAD}qreg q[${max}];`).qubits.length, max);
  assert.equal(violationsOf(`${HEAD}qreg q[${max + 1}];`), [
    `3:8 a qreg has 1 to ${max} qubits, got ${max + 1}`,
  ]);
});

test('limit: QASM_QUBITS_MAX qubits in all → accepted; one more → rejected', () => {
  const regs = QASM_QUBITS_MAX / QASM_QUBITS_PER_REGISTER_MAX;
  const decls = Array.from({ length: regs }, (_, i) => `qreg r${i}[1024];`).join('\n');
  const r = parseQasm(`${HEAD}${decls}\n`);
  assert.equal(r.violations, []);
  assert.is(r.program?.nodes[0]?.args.n, QASM_QUBITS_MAX);
  assert.equal(violationsOf(`${HEAD}${decls}\nqreg extra[1];\n`), [
    `${regs + 3}:12 qreg extra brings the program to ${QASM_QUBITS_MAX + 1} qubits; the kernel takes ${QASM_QUBITS_MAX}`,
  ]);
});

test('limit: names of QASM_IDENTIFIER_CHARS_MAX characters → accepted; one more → rejected', () => {
  const name = 'a'.repeat(QASM_IDENTIFIER_CHARS_MAX);
  assert.equal(ok(`${HEAD}qreg ${name}[1];`).qubits, [`${name}_0`]);
  assert.equal(violationsOf(`${HEAD}qreg ${name}b[1];`), [
    `3:6 a name has at most 64 characters, "${name}…" has 65`,
  ]);
});

test('limit: PROGRAM_NODES_MAX nodes → accepted; one more → rejected at the statement', () => {
  // ALLOC + 63 × 1024 + 1022 + FREE = 65536 nodes.
  const atMax = `${HEAD}qreg q[1024];\nqreg r[1022];\n${'h q;\n'.repeat(63)}h r;\n`;
  const r = parseQasm(atMax);
  assert.equal(r.violations, []);
  assert.is(r.program?.nodes.length, PROGRAM_NODES_MAX);
  assert.equal(violationsOf(`${atMax}x q[0];\nx q[1];\n`), [
    `69:1 the program expands to more than ${PROGRAM_NODES_MAX} nodes`,
  ]);
});

test('limit: user gates doubling past PROGRAM_NODES_MAX → one violation at the call', () => {
  const levels = Array.from({ length: 16 }, (_, i) =>
    i === 0 ? 'gate g0 a { x a; x a; }' : `gate g${i} a { g${i - 1} a; g${i - 1} a; }`,
  );
  const text = `${HEAD}qreg q[1];\n${levels.join('\n')}\ng14 q[0];\ng15 q[0];\ng15 q[0];\n`;
  assert.equal(violationsOf(text), [
    `21:1 the program expands to more than ${PROGRAM_NODES_MAX} nodes`,
  ]);
});

test('limit: expansion emitting nothing (id) → bounded by QASM_EXPANSION_STEPS_MAX', () => {
  const levels = Array.from({ length: 24 }, (_, i) =>
    i === 0 ? 'gate g0 a { id a; id a; }' : `gate g${i} a { g${i - 1} a; g${i - 1} a; }`,
  );
  const text = `${HEAD}qreg q[1];\n${levels.join('\n')}\ng18 q[0];\ng23 q[0];\n`;
  assert.equal(violationsOf(text), [
    `29:1 expanding the program takes more than ${QASM_EXPANSION_STEPS_MAX} steps`,
  ]);
});

test('limit: gate nesting QASM_GATE_DEPTH_MAX deep → accepted; one more → rejected', () => {
  const chain = (n: number) =>
    Array.from({ length: n }, (_, i) =>
      i === 0 ? 'gate g1 a { x a; }' : `gate g${i + 1} a { g${i} a; }`,
    ).join('\n');
  const max = QASM_GATE_DEPTH_MAX;
  assert.equal(ops(`${HEAD}qreg q[1];\n${chain(max)}\ng${max} q[0];\n`), [
    `L${max + 4} APPLY_X q_0`,
  ]);
  assert.equal(violationsOf(`${HEAD}qreg q[1];\n${chain(max + 1)}\n`), [
    `${max + 4}:6 gate "g${max + 1}" nests gate definitions ${max + 1} deep; at most ${max}`,
  ]);
});

test('limit: expressions nested QASM_EXPRESSION_DEPTH_MAX deep → accepted; one more → rejected', () => {
  const max = QASM_EXPRESSION_DEPTH_MAX;
  const parens = (n: number) => `${'('.repeat(n)}1${')'.repeat(n)}`;
  ok(`${HEAD}qreg q[1];\nrz(${parens(max - 1)}) q[0];\n`);
  assert.equal(violationsOf(`${HEAD}qreg q[1];\nrz(${parens(max)}) q[0];\n`), [
    `4:${max + 4} an expression is nested at most ${max} deep`,
  ]);
  // A chain of k additions is a tree k + 1 deep: evaluation would recurse that deep.
  const sum = (k: number) => Array.from({ length: k + 1 }, () => '1').join('+');
  assert.is(ok(`${HEAD}qreg q[1];\nrz(${sum(max - 1)}) q[0];\n`).nodes[1]!.args.theta, max);
  assert.equal(violationsOf(`${HEAD}qreg q[1];\nrz(${sum(max)}) q[0];\n`), [
    `4:${3 + 2 * max} an expression is nested at most ${max} deep`,
  ]);
});

test('limit: if on a creg of QASM_BITS_PER_CONDITION_MAX bits → accepted; one more → rejected', () => {
  const max = QASM_BITS_PER_CONDITION_MAX;
  const text = (bits: number) =>
    `${HEAD}qreg q[${bits}];\ncreg c[${bits}];\nmeasure q -> c;\nif (c == 5) x q[0];\n`;
  const guard = ok(text(max)).nodes.at(-2)!.guard!;
  assert.ok('conditions' in guard && guard.conditions.length === max);
  assert.equal(violationsOf(text(max + 1)), [
    `6:5 if compares at most ${max} bits; creg c has ${max + 1}`,
  ]);
});

test('limit: guard leaves over QASM_GUARD_LEAVES_MAX in all → rejected at the statement', () => {
  const bits = QASM_BITS_PER_CONDITION_MAX;
  const per = bits * bits;
  const under = Math.floor(QASM_GUARD_LEAVES_MAX / per);
  const head = `${HEAD}qreg q[${bits}];\ncreg c[${bits}];\nmeasure q -> c;\n`;
  const r = parseQasm(`${head}${'if (c == 0) h q;\n'.repeat(under)}`);
  assert.equal(r.violations, []);
  assert.equal(violationsOf(`${head}${'if (c == 0) h q;\n'.repeat(under + 1)}`), [
    `${6 + under}:1 the program's guards read more than ${QASM_GUARD_LEAVES_MAX} bits in all (each node under an if reads its register's bits)`,
  ]);
});

// Properties.

const SEED = process.env.FC_SEED === undefined ? Date.now() % 2 ** 31 : Number(process.env.FC_SEED);
console.log(`qasm: fast-check seed ${SEED} (rerun with FC_SEED=${SEED})`);

const VALID = [
  `${HEAD}qreg q[2];\ncreg c[2];\nh q[0];\ncx q[0], q[1];\nmeasure q -> c;\n`,
  `${HEAD}qreg q[3];\ncreg a[1];\ncreg b[2];\ngate g(t, p) x, y { u3(t, p, -t/2) x; cp(2*p) x, y; }\n` +
    'g(pi/3, 1e-3) q[0], q[2];\nmeasure q[0] -> a[0];\nif (a == 1) ccx q[0], q[1], q[2];\n' +
    'barrier q;\nmeasure q[1] -> b[0];\nmeasure q[2] -> b[1];\nif (b == 2) reset q;\n',
  `${HEAD}qreg q[2];\nqreg r[2];\ncreg c[2];\ncy q, r;\nswap q[0], r[1];\nch q[1], r[0];\n` +
    'crz(-sqrt(2)^2) r[0], q[0];\nrx(sin(pi/4)) q;\nmeasure r -> c;\n',
];

const TOKENS = [
  ...'qreg creg gate measure reset barrier if opaque pi include OPENQASM q r c x cx u3 g'.split(
    ' ',
  ),
  ...'; , ( ) [ ] { } -> == + - * / ^ 0 1 2 1025 1e999 "qelib1.inc" // @ "'.split(' '),
  '\n',
  ' ',
];

type Mutation = { kind: number; pos: number; len: number; token: number };

function mutate(text: string, ms: Mutation[]): string {
  let s = text;
  for (const m of ms) {
    const at = m.pos % (s.length + 1);
    const tok = TOKENS[m.token % TOKENS.length]!;
    if (m.kind === 0) s = s.slice(0, at) + s.slice(at + m.len);
    else if (m.kind === 1) s = s.slice(0, at) + tok + s.slice(at);
    else if (m.kind === 2) s = s.slice(0, at) + tok + s.slice(at + m.len);
    else s = s.slice(0, at) + s.slice(at, at + m.len * 4).repeat(2) + s.slice(at + m.len * 4);
  }
  return s;
}

const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.nat(3),
  pos: fc.nat(),
  len: fc.integer({ min: 1, max: 8 }),
  token: fc.nat(),
});

/** What holds for every input: no throw, program iff no violation, and what it accepts verifies. */
function consistent(text: string): boolean {
  const r = parseQasm(text);
  assert.is(r.program === null, r.violations.length > 0);
  if (r.program === null) return true;
  const width = r.registers.reduce((n, g) => n + g.size, 0);
  assert.is(width, r.program.events.length);
  const errors = verifyProgram(r.program, CTX).violations.filter(
    (v) => v.severity === 'error' && v.rule !== 10, // bounds: a mutant may entangle 27 qubits
  );
  assert.equal(errors, []);
  return true;
}

test('property: mutated valid programs (2000 runs) → never throw; accepted ones verify', () => {
  fc.assert(
    fc.property(
      fc.nat(VALID.length - 1),
      fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
      (i, ms) => consistent(mutate(VALID[i]!, ms)),
    ),
    { numRuns: 2000, seed: SEED },
  );
});

test('property: random text (1000 runs) → never throws; without the header → violations', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.fullUnicodeString()), (text) => {
      consistent(text);
      if (!text.includes('OPENQASM')) assert.ok(parseQasm(text).violations.length > 0);
      return true;
    }),
    { numRuns: 1000, seed: SEED },
  );
});

test('property: valid programs themselves → accepted', () => {
  for (const text of VALID) ok(text);
});

test.run();
