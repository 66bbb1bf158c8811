/**
 * The OpenQASM 2.0 front end: decides whether a program text is in the subset docs/programs.md describes and
 * lowers it to the internal `Program` in QVM opcodes, every fault a violation at `line:col`
 * (rule 0). Layer: kernel (pure); imports only `kernel/` and node built-ins.
 *
 * Invariants: it never throws and never hangs on any text. The text, the registers, gate nesting,
 * expression nesting, inline expansion (nodes and steps) and guard sizes are bounded by the
 * constants below; the lexer is lazy and every loop consumes a token or counts against one of
 * them. A program comes back only when there is no violation. After a faulty statement it goes
 * on at the next `;` (or after the `}` of a faulty gate definition), so one pass reports them all.
 *
 * Lowering, exact up to a global phase (which no count can show): qubits are `<qreg>_<i>`, events
 * `<creg>_<i>`; one ALLOC_LQ takes every qubit first. u3(θ,φ,λ) = U = u is RZ(λ), RY(θ), RZ(φ)
 * in that time order, u2(φ,λ) = u3(π/2,φ,λ), u1 = p = RZ; cy, ch, crz, cp = cu1 are qelib1.inc's
 * decompositions over CNOT (the table `BUILTINS`); id lowers to nothing. User gates expand
 * inline with their parameters substituted. A FREE_LQ of every qubit closes the program: OpenQASM
 * releases them at the end, and without it the verifier would flag each one as left allocated
 * (an error under `strict`; and past 256 such warnings the list's overflow line is an error). Node ids are `L<line>` for the first node a line
 * emits, then `L<line>.1`, `L<line>.2`, ...; a node's `source` is its statement's `line:col`.
 *
 * Decisions where OpenQASM and the IR differ:
 * - Classical bits start at 0 in OpenQASM, but an IR event needs exactly one producer (rule 4).
 *   A bit becomes an event when a `measure` writes it, and a second write of the same bit is
 *   rejected. An `if` reads a bit not yet measured at that point as the constant 0 it is, so its
 *   guard is simplified: a leaf that asks for 0 is dropped; one that asks for 1 can never hold,
 *   and the operation is left out. A measurement skipped by its own guard shows 0 (the
 *   simulator's value for an unproduced event), which again is OpenQASM's value.
 * - Counts: only registers with measured bits are in the key, in Qiskit's order (`events` lists
 *   the last-declared register first, highest index first; `registers` gives the widths, so the
 *   kernel can put Qiskit's spaces between them). A register never measured is left out; one
 *   measured only in part is rejected, since its unmeasured bits could not be in the key.
 * - `barrier` is checked and dropped: the IR already keeps per-qubit program order and the
 *   simulator is ideal, so a barrier cannot change a count.
 * - `include "qelib1.inc";` is optional: its gates (and `U`, `CX`) are always known.
 */
import type { Guard, Opcode, Program, ProgramNode, Violation } from './ir.js';
import { GUARD_TERMS_MAX, NAMES_PER_LIST_MAX, PROGRAM_NODES_MAX } from './qvm.js';
import { ViolationList, quote } from './verify.js';

/** Program text in UTF-16 code units: 1 MiB, the kernel's `PROGRAM_SOURCE_BYTES_MAX`. */
export const QASM_SOURCE_CHARS_MAX = 1024 * 1024;
/** Qubits in one qreg (the kernel's `QUBITS_PER_ALLOCATION_MAX`). */
export const QASM_QUBITS_PER_REGISTER_MAX = 1024;
export const QASM_BITS_PER_REGISTER_MAX = 1024;
/** All qubits (and all bits): the ALLOC_LQ's vqs and `events` are name lists like any other. */
export const QASM_QUBITS_MAX = NAMES_PER_LIST_MAX;
export const QASM_BITS_MAX = NAMES_PER_LIST_MAX;
/** Declared names; `<name>_<index>` then stays well inside the QVM identifier length (128). */
export const QASM_IDENTIFIER_CHARS_MAX = 64;
/** User gates calling user gates: bounds the expansion's recursion (a built-in gate is depth 0). */
export const QASM_GATE_DEPTH_MAX = 32;
/** Parentheses, operators and calls in one expression, nested: bounds parsing and evaluation. */
export const QASM_EXPRESSION_DEPTH_MAX = 64;
/**
 * Work of inline expansion: one step per gate application plus one per expression node
 * evaluated. Nodes alone would not bound it (`id` and empty gates emit none); 4 Mi cheap steps
 * take well under a second.
 */
export const QASM_EXPANSION_STEPS_MAX = 1 << 22;
/** Bits an `if` may compare: its guard is an `and` of one leaf per bit (qvm's guard bound). */
export const QASM_BITS_PER_CONDITION_MAX = GUARD_TERMS_MAX - 1;
/** Guard leaves summed over every node: what the verifier and simulator walk per program. */
export const QASM_GUARD_LEAVES_MAX = 1 << 20;
/** The one include file, built in. */
export const QASM_INCLUDE = 'qelib1.inc';
export const QASM_COUNTS_ORDER =
  "Qiskit's: classical registers separated by spaces, the last-declared register leftmost, " +
  'the highest bit index leftmost within a register; registers never measured are left out';

/** A classical register in the key, in Qiskit's order (last declared first). */
export interface QasmRegister {
  name: string;
  size: number;
}

/**
 * Parses and lowers an OpenQASM 2.0 program. `program` is null exactly when there are
 * violations; `registers` (empty then) lists the cregs in the key, leftmost first, so the key can
 * be split into Qiskit's space-separated form. Never throws.
 */
export function parseQasm(text: string): {
  program: Program | null;
  violations: Violation[];
  registers: QasmRegister[];
} {
  const out = new ViolationList();
  if (text.length > QASM_SOURCE_CHARS_MAX) {
    const max = QASM_SOURCE_CHARS_MAX;
    out.add('', 'source', 0, `the program has ${text.length} characters; the kernel takes ${max}`);
    return { program: null, violations: out.finish(), registers: [] };
  }
  const parser = new Parser(text, out);
  parser.parse();
  const result = parser.finish();
  const violations = out.finish();
  if (violations.length > 0 || result === null) return { program: null, violations, registers: [] };
  return { program: result.program, violations, registers: result.registers };
}

// ---------------------------------------------------------------- lexer

type TokenKind = 'id' | 'num' | 'str' | 'sym' | 'bad' | 'eof';

interface Token {
  kind: TokenKind;
  text: string;
  line: number;
  col: number;
}

const ID_PATTERN = /[A-Za-z_][A-Za-z0-9_]*/y;
const NUM_PATTERN = /(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?/y;
const INT_PATTERN = /^[0-9]+$/;
const STR_PATTERN = /"[^"\n]*"/y;
const SYMBOLS_2 = ['->', '=='];
const SYMBOLS_1 = new Set([';', ',', '(', ')', '[', ']', '{', '}', '+', '-', '*', '/', '^']);

/** Scans on demand, one token of lookahead: memory stays flat whatever the text's length. */
class Lexer {
  private at = 0;
  private line = 1;
  private lineStart = 0;
  private ahead: Token | null = null;

  constructor(private readonly text: string) {}

  peek(): Token {
    if (this.ahead === null) this.ahead = this.scan();
    return this.ahead;
  }

  next(): Token {
    const t = this.peek();
    this.ahead = null;
    return t;
  }

  private scan(): Token {
    this.skipSpace();
    const { text, at } = this;
    const token = (kind: TokenKind, length: number): Token => {
      this.at = at + length;
      return {
        kind,
        text: text.slice(at, at + length),
        line: this.line,
        col: at - this.lineStart + 1,
      };
    };
    if (at >= text.length) return token('eof', 0);
    for (const [kind, re] of [
      ['id', ID_PATTERN],
      ['num', NUM_PATTERN],
      ['str', STR_PATTERN],
    ] as const) {
      re.lastIndex = at;
      const m = re.exec(text);
      if (m !== null) return token(kind, m[0].length);
    }
    if (SYMBOLS_2.some((s) => text.startsWith(s, at))) return token('sym', 2);
    return token(SYMBOLS_1.has(text[at]!) ? 'sym' : 'bad', 1);
  }

  /** Spaces, tabs, line ends and `//` comments; a line end starts a new line for columns. */
  private skipSpace(): void {
    const { text } = this;
    while (this.at < text.length) {
      const c = text[this.at]!;
      if (c === ' ' || c === '\t' || c === '\r') {
        this.at += 1;
      } else if (c === '\n') {
        this.at += 1;
        this.line += 1;
        this.lineStart = this.at;
      } else if (c === '/' && text[this.at + 1] === '/') {
        const end = text.indexOf('\n', this.at);
        this.at = end === -1 ? text.length : end;
      } else {
        return;
      }
    }
  }
}

const at = (t: Token) => `${t.line}:${t.col}`;

function describeToken(t: Token): string {
  if (t.kind === 'eof') return 'the end of the program';
  if (t.kind === 'bad')
    return t.text === '"' ? 'an unterminated string' : `the character ${quote(t.text)}`;
  return quote(t.text);
}

// ---------------------------------------------------------------- expressions

const FUNCTIONS: ReadonlyMap<string, (x: number) => number> = new Map([
  ['sin', Math.sin],
  ['cos', Math.cos],
  ['tan', Math.tan],
  ['exp', Math.exp],
  ['ln', Math.log],
  ['sqrt', Math.sqrt],
]);

type BinaryOp = '+' | '-' | '*' | '/' | '^';

/** An expression tree; `depth` and `size` (nodes) are kept as it is built, to bound it. */
type Expr = { depth: number; size: number } & (
  | { k: 'num'; v: number }
  | { k: 'param'; i: number }
  | { k: 'neg'; a: Expr }
  | { k: 'bin'; op: BinaryOp; a: Expr; b: Expr }
  | { k: 'fn'; f: (x: number) => number; a: Expr }
);

/** Evaluates with the enclosing gate's parameter values; recursion depth ≤ the tree's depth. */
function evaluate(e: Expr, params: readonly number[]): number {
  switch (e.k) {
    case 'num':
      return e.v;
    case 'param':
      return params[e.i] ?? Number.NaN;
    case 'neg':
      return -evaluate(e.a, params);
    case 'fn':
      return e.f(evaluate(e.a, params));
    case 'bin': {
      const a = evaluate(e.a, params);
      const b = evaluate(e.b, params);
      if (e.op === '+') return a + b;
      if (e.op === '-') return a - b;
      if (e.op === '*') return a * b;
      if (e.op === '/') return a / b;
      return a ** b;
    }
  }
}

// ---------------------------------------------------------------- gates

/** One lowered operation before it becomes a node. */
interface Prim {
  op: Opcode;
  qubits: string[];
  theta?: number;
  produces?: string[];
}

type Lower = (p: readonly number[], q: readonly string[]) => Prim[];

interface Builtin {
  user: false;
  name: string;
  params: number;
  qubits: number;
  lower: Lower;
}

interface UserGate {
  user: true;
  name: string;
  params: number;
  qubits: number;
  body: BodyCall[];
  /** 1 + the deepest gate it calls (built-ins are 0). */
  depth: number;
  /** Its definition had a violation: calls to it are checked but emit nothing. */
  broken: boolean;
  where: string;
}

type GateDef = Builtin | UserGate;

interface BodyCall {
  gate: GateDef;
  params: Expr[];
  /** Indices into the enclosing gate's qubit arguments. */
  args: number[];
  /** Expansion steps it costs before its own callee: 1 + its expression nodes. */
  cost: number;
}

const gate1 = (op: Opcode, q: string): Prim => ({ op, qubits: [q] });
const rot = (op: Opcode, theta: number, q: string): Prim => ({ op, qubits: [q], theta });
const cnot = (c: string, t: string): Prim => ({ op: 'APPLY_CNOT', qubits: [c, t] });
/** u3(θ,φ,λ) = RZ(φ)·RY(θ)·RZ(λ) up to the phase e^{i(φ+λ)/2}: RZ(λ) acts first. */
const u3 = (theta: number, phi: number, lambda: number, q: string): Prim[] => [
  rot('APPLY_RZ', lambda, q),
  rot('APPLY_RY', theta, q),
  rot('APPLY_RZ', phi, q),
];
const one =
  (op: Opcode): Lower =>
  (_p, q) => [gate1(op, q[0]!)];
const rotation =
  (op: Opcode): Lower =>
  (p, q) => [rot(op, p[0]!, q[0]!)];
const plain =
  (op: Opcode): Lower =>
  (_p, q) => [{ op, qubits: [...q] }];
const lowerU3: Lower = (p, q) => u3(p[0]!, p[1]!, p[2]!, q[0]!);
/** Controlled phase (qelib1's cu1 with u1 → RZ; the RZ phases are not controlled, so global). */
const lowerCp: Lower = (p, [a = '', b = '']) => [
  rot('APPLY_RZ', p[0]! / 2, a),
  cnot(a, b),
  rot('APPLY_RZ', -p[0]! / 2, b),
  cnot(a, b),
  rot('APPLY_RZ', p[0]! / 2, b),
];

function builtin(name: string, params: number, qubits: number, lower: Lower): [string, Builtin] {
  return [name, { user: false, name, params, qubits, lower }];
}

/** qelib1.inc's gates plus OpenQASM's own U and CX, with their lowering (docs/programs.md). */
const BUILTINS: ReadonlyMap<string, Builtin> = new Map([
  builtin('id', 0, 1, () => []),
  builtin('x', 0, 1, one('APPLY_X')),
  builtin('y', 0, 1, one('APPLY_Y')),
  builtin('z', 0, 1, one('APPLY_Z')),
  builtin('h', 0, 1, one('APPLY_H')),
  builtin('s', 0, 1, one('APPLY_S')),
  builtin('sdg', 0, 1, one('APPLY_SDG')),
  builtin('t', 0, 1, one('APPLY_T')),
  builtin('tdg', 0, 1, one('APPLY_TDG')),
  builtin('rx', 1, 1, rotation('APPLY_RX')),
  builtin('ry', 1, 1, rotation('APPLY_RY')),
  builtin('rz', 1, 1, rotation('APPLY_RZ')),
  builtin('u1', 1, 1, rotation('APPLY_RZ')),
  builtin('p', 1, 1, rotation('APPLY_RZ')),
  builtin('u2', 2, 1, (p, q) => u3(Math.PI / 2, p[0]!, p[1]!, q[0]!)),
  builtin('u3', 3, 1, lowerU3),
  builtin('u', 3, 1, lowerU3),
  builtin('U', 3, 1, lowerU3),
  builtin('cx', 0, 2, plain('APPLY_CNOT')),
  builtin('CX', 0, 2, plain('APPLY_CNOT')),
  builtin('cy', 0, 2, (_p, [c = '', t = '']) => [
    gate1('APPLY_SDG', t),
    cnot(c, t),
    gate1('APPLY_S', t),
  ]),
  builtin('cz', 0, 2, plain('APPLY_CZ')),
  builtin('swap', 0, 2, plain('APPLY_SWAP')),
  builtin('ccx', 0, 3, plain('APPLY_TOFFOLI')),
  builtin('cp', 1, 2, lowerCp),
  builtin('cu1', 1, 2, lowerCp),
  builtin('crz', 1, 2, (p, [c = '', t = '']) => [
    rot('APPLY_RZ', p[0]! / 2, t),
    cnot(c, t),
    rot('APPLY_RZ', -p[0]! / 2, t),
    cnot(c, t),
  ]),
  builtin('ch', 0, 2, (_p, [c = '', t = '']) => [
    gate1('APPLY_S', t),
    gate1('APPLY_H', t),
    gate1('APPLY_T', t),
    cnot(c, t),
    gate1('APPLY_TDG', t),
    gate1('APPLY_H', t),
    gate1('APPLY_SDG', t),
  ]),
]);

/** Words that cannot name a register, gate or parameter. */
const RESERVED: ReadonlySet<string> = new Set([
  'OPENQASM',
  'include',
  'qreg',
  'creg',
  'gate',
  'opaque',
  'measure',
  'reset',
  'barrier',
  'if',
  'pi',
  ...FUNCTIONS.keys(),
]);

// ---------------------------------------------------------------- parser

interface Register {
  name: string;
  size: number;
  kind: 'qreg' | 'creg';
  /** Its `qreg`/`creg` keyword, for messages. */
  decl: Token;
}

interface Arg {
  name: Token;
  index: { tok: Token; value: number } | null;
}

interface Param {
  expr: Expr;
  tok: Token;
}

interface CallSyntax {
  name: Token;
  params: Param[];
  args: Arg[];
}

/** An `if (c == n)`: `reg` is null when the condition itself was faulty (nothing is emitted). */
interface Condition {
  reg: Register | null;
  value: bigint;
  /** The `if` keyword: the source of the nodes it guards. */
  start: Token;
}

/** Names in scope in a gate body, to their positions in the parameter or qubit list. */
type Scope = ReadonlyMap<string, number>;
const NO_NAMES: Scope = new Map();

const NEVER = 'never';
const RESYNC = 'resync';
const nodesOver = () => `the program expands to more than ${PROGRAM_NODES_MAX} nodes`;
/** Decimal digits of a condition's value: 2^1024 has 309. */
const CONDITION_DIGITS_MAX = 320;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

class Parser {
  private readonly lx: Lexer;
  private errors = 0;
  private readonly registers = new Map<string, Register>();
  private readonly cregs: Register[] = [];
  private readonly gates = new Map<string, UserGate>();
  private readonly qubits: string[] = [];
  private bits = 0;
  private readonly nodes: ProgramNode[] = [];
  private alloc: ProgramNode | null = null;
  /** The FREE_LQ at the end; emission keeps a place for it within PROGRAM_NODES_MAX. */
  private free: ProgramNode | null = null;
  /** Event name → `line:col` of the measurement that writes it. */
  private readonly measured = new Map<string, string>();
  private readonly lineNodes = new Map<number, number>();
  private readonly caps = new Set<string>();
  private steps = 0;
  private guardLeaves = 0;
  /** A program-wide limit was passed (reported once): nothing more is expanded or emitted. */
  private overflow = false;

  constructor(
    text: string,
    private readonly out: ViolationList,
  ) {
    this.lx = new Lexer(text);
  }

  parse(): void {
    if (!this.header()) return;
    while (this.lx.peek().kind !== 'eof') {
      if (!this.statement()) this.skipStatement();
    }
    if (this.alloc !== null) {
      this.free = this.node(this.lx.peek(), { op: 'FREE_LQ', qubits: [] }, null);
      this.nodes.push(this.free);
    }
  }

  /** The program, or null when a violation was reported (the caller returns those). */
  finish(): { program: Program; registers: QasmRegister[] } | null {
    this.checkPartialRegisters();
    if (this.errors > 0) return null;
    const keyed = [...this.cregs].reverse().filter((r) => this.measured.has(`${r.name}_0`));
    const events = keyed.flatMap((r) =>
      Array.from({ length: r.size }, (_, i) => `${r.name}_${r.size - 1 - i}`),
    );
    if (this.alloc !== null && this.free !== null) {
      this.alloc.qubits = [...this.qubits];
      this.alloc.args.n = this.qubits.length;
      this.free.qubits = [...this.qubits];
    }
    const caps = ['CAP_ALLOC', 'CAP_COMPUTE', 'CAP_MEASURE'].filter((c) => this.caps.has(c));
    return {
      program: {
        format: 'qasm',
        qubits: this.qubits,
        channels: [],
        events,
        nodes: this.nodes,
        declaredCaps: caps,
        countsOrder: QASM_COUNTS_ORDER,
      },
      registers: keyed.map((r) => ({ name: r.name, size: r.size })),
    };
  }

  // -------------------------------------------------------------- token helpers

  private fail(t: Token, message: string): void {
    this.errors += 1;
    this.out.add(at(t), at(t), 0, message);
  }

  private is(text: string): boolean {
    const t = this.lx.peek();
    return (t.kind === 'sym' || t.kind === 'id') && t.text === text;
  }

  /** Consumes a `,` if one is next. */
  private comma(): boolean {
    if (!this.is(',')) return false;
    this.lx.next();
    return true;
  }

  private expect(text: string, context: string): Token | null {
    const t = this.lx.peek();
    if (this.is(text)) return this.lx.next();
    this.fail(t, `expected ${quote(text)} ${context}, got ${describeToken(t)}`);
    return null;
  }

  /** A name being declared: an identifier, not reserved, not too long; null after a fault. */
  private declaredName(context: string): Token | null {
    const t = this.lx.peek();
    if (t.kind !== 'id') {
      this.fail(t, `expected a name ${context}, got ${describeToken(t)}`);
      return null;
    }
    this.lx.next();
    if (RESERVED.has(t.text)) {
      this.fail(t, `${quote(t.text)} is a reserved word and cannot be declared`);
      return null;
    }
    if (t.text.length > QASM_IDENTIFIER_CHARS_MAX) {
      const max = QASM_IDENTIFIER_CHARS_MAX;
      this.fail(t, `a name has at most ${max} characters, ${quote(t.text)} has ${t.text.length}`);
      return null;
    }
    return t;
  }

  private integer(context: string): { tok: Token; value: number } | null {
    const t = this.lx.peek();
    if (t.kind !== 'num' || !INT_PATTERN.test(t.text)) {
      this.fail(t, `expected a non-negative integer ${context}, got ${describeToken(t)}`);
      return null;
    }
    this.lx.next();
    return { tok: t, value: Number(t.text) };
  }

  /** Error recovery: on to the next `;`, or past the `}` of a block begun on the way. */
  private skipStatement(): void {
    let depth = 0;
    for (let t = this.lx.peek(); t.kind !== 'eof'; t = this.lx.peek()) {
      this.lx.next();
      if (t.kind !== 'sym') continue;
      if (t.text === '{') depth += 1;
      if (t.text === '}' && depth <= 1) return;
      if (t.text === '}') depth -= 1;
      if (t.text === ';' && depth === 0) return;
    }
  }

  // -------------------------------------------------------------- statements

  /** `OPENQASM 2.0;`. False when the text is another language and parsing should stop. */
  private header(): boolean {
    const first = this.lx.peek();
    if (!this.is('OPENQASM')) {
      this.fail(first, `a program starts with "OPENQASM 2.0;", got ${describeToken(first)}`);
      return true;
    }
    this.lx.next();
    const version = this.lx.next();
    if (version.kind !== 'num' || version.text !== '2.0') {
      const got = version.kind === 'num' ? `OPENQASM ${version.text}` : describeToken(version);
      this.fail(version, `${got} is not supported: this kernel takes OpenQASM 2.0 (QVM.md §2)`);
      return false;
    }
    if (this.expect(';', 'after OPENQASM 2.0') === null) this.skipStatement();
    return true;
  }

  /** One top-level statement. False on a syntax fault (the caller skips to the next `;`). */
  private statement(): boolean {
    const t = this.lx.peek();
    if (t.kind !== 'id') {
      this.fail(t, `expected a statement, got ${describeToken(t)}`);
      return false;
    }
    switch (t.text) {
      case 'include':
        return this.include();
      case 'qreg':
      case 'creg':
        return this.register(t.text);
      case 'gate':
        return this.gateDefinition();
      case 'barrier':
        return this.barrier();
      case 'if':
        return this.conditional();
      case 'opaque':
        this.fail(t, 'opaque gates are not supported: every gate must have a definition');
        return false;
      case 'OPENQASM':
        this.fail(t, 'OPENQASM 2.0; appears once, as the first statement');
        return false;
      default:
        return this.operation(null);
    }
  }

  private include(): boolean {
    this.lx.next();
    const file = this.lx.peek();
    if (file.kind !== 'str') {
      this.fail(
        file,
        `expected a file name in double quotes after include, got ${describeToken(file)}`,
      );
      return false;
    }
    this.lx.next();
    if (file.text !== `"${QASM_INCLUDE}"`) {
      this.fail(
        file,
        `cannot include ${quote(file.text.slice(1, -1))}: only "${QASM_INCLUDE}" is built in`,
      );
    }
    return this.expect(';', 'after include') !== null;
  }

  private register(kind: 'qreg' | 'creg'): boolean {
    const keyword = this.lx.next();
    const name = this.declaredName(`after ${kind}`);
    if (name === null || this.expect('[', `after ${kind} ${name.text}`) === null) return false;
    const size = this.integer('as the register size');
    if (size === null || this.expect(']', 'after the register size') === null) return false;
    if (this.expect(';', `after ${kind} ${name.text}[${size.tok.text}]`) === null) return false;
    const fault = this.registerFault(kind, name, size);
    if (fault !== null) {
      this.fail(fault.at, fault.message);
      return true;
    }
    const reg: Register = { name: name.text, size: size.value, kind, decl: keyword };
    this.registers.set(reg.name, reg);
    if (kind === 'creg') {
      this.cregs.push(reg);
      this.bits += reg.size;
      return true;
    }
    if (this.alloc === null) {
      this.alloc = this.node(keyword, { op: 'ALLOC_LQ', qubits: this.qubits }, null);
      this.nodes.push(this.alloc);
      this.caps.add('CAP_ALLOC');
    }
    for (let i = 0; i < reg.size; i++) this.qubits.push(`${reg.name}_${i}`);
    return true;
  }

  private registerFault(
    kind: 'qreg' | 'creg',
    name: Token,
    size: { tok: Token; value: number },
  ): { at: Token; message: string } | null {
    const unit = kind === 'qreg' ? 'qubits' : 'bits';
    const max = kind === 'qreg' ? QASM_QUBITS_PER_REGISTER_MAX : QASM_BITS_PER_REGISTER_MAX;
    const total = (kind === 'qreg' ? this.qubits.length : this.bits) + size.value;
    const totalMax = kind === 'qreg' ? QASM_QUBITS_MAX : QASM_BITS_MAX;
    const earlier = this.registers.get(name.text);
    if (!(size.value >= 1 && size.value <= max)) {
      return { at: size.tok, message: `a ${kind} has 1 to ${max} ${unit}, got ${size.tok.text}` };
    }
    if (earlier !== undefined) {
      const message = `register ${quote(name.text)} is already declared at ${at(earlier.decl)}`;
      return { at: name, message };
    }
    if (total > totalMax) {
      const message = `${kind} ${name.text} brings the program to ${total} ${unit}`;
      return { at: size.tok, message: `${message}; the kernel takes ${totalMax}` };
    }
    return null;
  }

  // -------------------------------------------------------------- gate definitions

  /** `gate name(params) qargs { body }`: checked once, expanded at each call. */
  private gateDefinition(): boolean {
    const keyword = this.lx.next();
    const name = this.declaredName('after gate');
    if (name === null) return false;
    const earlier = BUILTINS.get(name.text) ?? this.gates.get(name.text);
    if (earlier !== undefined) {
      const where = earlier.user ? `at ${earlier.where}` : 'by qelib1.inc';
      this.fail(name, `gate ${quote(name.text)} is already defined ${where}`);
    }
    const errorsBefore = this.errors;
    const define = (def: Omit<UserGate, 'user' | 'name' | 'where'>) => {
      const gate: UserGate = { user: true, name: name.text, where: at(keyword), ...def };
      if (earlier === undefined) this.gates.set(name.text, gate);
    };
    const broken = { params: 0, qubits: 0, body: [], depth: 0, broken: true };
    const header = this.gateHeader();
    if (header === null) {
      define(broken); // its calls then raise no second violation
      return false;
    }
    this.checkDistinct([...header.params, ...header.qargs]);
    const params: Scope = new Map(header.params.map((t, i) => [t.text, i]));
    const qargs: Scope = new Map(header.qargs.map((t, i) => [t.text, i]));
    const body: BodyCall[] = [];
    while (!this.is('}') && this.lx.peek().kind !== 'eof') {
      const call = this.bodyStatement(name.text, params, qargs);
      if (call === RESYNC) this.skipBodyStatement();
      else if (call !== null) body.push(call);
    }
    if (this.expect('}', `to close the body of gate ${name.text}`) === null) {
      define(broken);
      return true; // at the end of the text: nothing left to skip
    }
    const depth = 1 + body.reduce((d, c) => Math.max(d, c.gate.user ? c.gate.depth : 0), 0);
    if (depth > QASM_GATE_DEPTH_MAX) {
      const max = QASM_GATE_DEPTH_MAX;
      this.fail(
        name,
        `gate ${quote(name.text)} nests gate definitions ${depth} deep; at most ${max}`,
      );
    }
    const ok = this.errors === errorsBefore;
    define({ params: params.size, qubits: qargs.size, body, depth, broken: !ok });
    return true;
  }

  /** `[(p, ...)] a, ... {`: the names, or null on a syntax fault. */
  private gateHeader(): { params: Token[]; qargs: Token[] } | null {
    const params: Token[] = [];
    if (this.is('(')) {
      this.lx.next();
      for (let more = !this.is(')'); more; more = this.comma()) {
        const p = this.declaredName('as a gate parameter');
        if (p === null) return null;
        params.push(p);
      }
      if (this.expect(')', 'after the gate parameters') === null) return null;
    }
    const qargs: Token[] = [];
    for (let more = true; more; more = this.comma()) {
      const q = this.declaredName('as a qubit argument of the gate');
      if (q === null) return null;
      qargs.push(q);
    }
    if (this.expect('{', 'to open the gate body') === null) return null;
    return { params, qargs };
  }

  /** Parameter and qubit names of one gate are distinct; the fault names the second. */
  private checkDistinct(names: readonly Token[]): void {
    const seen = new Set<string>();
    for (const t of names) {
      if (seen.has(t.text)) this.fail(t, `${quote(t.text)} is declared twice in this gate`);
      seen.add(t.text);
    }
  }

  /** A gate call or barrier in a body: null when it adds nothing, RESYNC on a syntax fault. */
  private bodyStatement(
    defining: string,
    params: Scope,
    qargs: Scope,
  ): BodyCall | null | typeof RESYNC {
    const t = this.lx.peek();
    if (t.kind !== 'id' || (RESERVED.has(t.text) && t.text !== 'barrier')) {
      this.fail(t, `a gate body holds only gate calls and barrier, got ${describeToken(t)}`);
      return RESYNC;
    }
    const call = this.callSyntax(params, false);
    if (call === null) return RESYNC;
    const barrier = t.text === 'barrier';
    if (barrier && call.params.length > 0) this.fail(call.name, 'barrier takes no parameters');
    const args = this.bodyArgs(call.args, qargs, defining, !barrier);
    const gate = barrier ? null : this.resolveGate(call, defining);
    if (gate === null || args === null) return null;
    const params1 = call.params.map((p) => p.expr);
    const cost = 1 + args.length + params1.reduce((n, e) => n + e.size, 0);
    return { gate, params: params1, args, cost };
  }

  private bodyArgs(
    args: readonly Arg[],
    qargs: Scope,
    defining: string,
    distinct: boolean,
  ): number[] | null {
    const out: number[] = [];
    const seen = new Set<number>();
    for (const a of args) {
      const i = qargs.get(a.name.text);
      if (i === undefined) {
        this.fail(
          a.name,
          `${quote(a.name.text)} is not a qubit argument of gate ${quote(defining)}`,
        );
        return null;
      }
      if (distinct && seen.has(i)) {
        this.fail(a.name, `qubit ${quote(a.name.text)} is used twice in one gate call`);
        return null;
      }
      seen.add(i);
      out.push(i);
    }
    return out;
  }

  /** Inside a gate body: on to the next `;` (consumed) or the body's `}` (left for the caller). */
  private skipBodyStatement(): void {
    for (let t = this.lx.peek(); t.kind !== 'eof' && !this.is('}'); t = this.lx.peek()) {
      this.lx.next();
      if (t.kind === 'sym' && t.text === ';') return;
    }
  }

  /** The gate a call names, with its arity checked; null after a fault. */
  private resolveGate(call: CallSyntax, defining: string | null): GateDef | null {
    const { name } = call;
    if (name.text === defining) {
      this.fail(name, `gate ${quote(name.text)} calls itself: recursion is not allowed`);
      return null;
    }
    const gate = BUILTINS.get(name.text) ?? this.gates.get(name.text);
    if (gate === undefined) {
      const where = defining === null ? 'defined' : 'defined before this gate';
      this.fail(
        name,
        `unknown gate ${quote(name.text)}: neither in QVM.md §2's subset nor ${where}`,
      );
      return null;
    }
    if (gate.user && gate.broken) return null; // its definition's violation says why
    const what = `gate ${quote(name.text)} takes`;
    if (call.params.length !== gate.params) {
      this.fail(name, `${what} ${plural(gate.params, 'parameter')}, got ${call.params.length}`);
      return null;
    }
    if (call.args.length !== gate.qubits) {
      this.fail(name, `${what} ${plural(gate.qubits, 'qubit')}, got ${call.args.length}`);
      return null;
    }
    return gate;
  }

  // -------------------------------------------------------------- calls and arguments

  /** `name[(expr, ...)] arg, ...;`: the syntax shared by gate calls and a body's barrier. */
  private callSyntax(scope: Scope, indexed: boolean): CallSyntax | null {
    const name = this.lx.next();
    const params: Param[] = [];
    if (this.is('(')) {
      this.lx.next();
      for (let more = !this.is(')'); more; more = this.comma()) {
        const tok = this.lx.peek();
        const expr = this.expression(scope, 0);
        if (expr === null) return null;
        params.push({ expr, tok });
      }
      if (this.expect(')', `after the parameters of ${name.text}`) === null) return null;
    }
    const args = this.argList(indexed, `after ${name.text}`);
    if (args === null || this.expect(';', `after the arguments of ${name.text}`) === null) {
      return null;
    }
    return { name, params, args };
  }

  private argList(indexed: boolean, context: string): Arg[] | null {
    const args: Arg[] = [];
    for (let more = true; more; more = this.comma()) {
      const a = this.arg(indexed, args.length === 0 ? context : 'after ","');
      if (a === null) return null;
      args.push(a);
    }
    return args;
  }

  /** `name` or (top level only) `name[index]`. */
  private arg(indexed: boolean, context: string): Arg | null {
    const name = this.lx.peek();
    if (name.kind !== 'id' || RESERVED.has(name.text)) {
      const what = indexed ? 'a register or register[index]' : "one of the gate's qubit arguments";
      this.fail(name, `expected ${what} ${context}, got ${describeToken(name)}`);
      return null;
    }
    this.lx.next();
    if (!this.is('[')) return { name, index: null };
    if (!indexed) {
      const message = "a gate body names the gate's qubit arguments, without an index";
      this.fail(this.lx.peek(), message);
      return null;
    }
    this.lx.next();
    const index = this.integer('as the index');
    if (index === null || this.expect(']', 'after the index') === null) return null;
    return { name, index };
  }

  /** A top-level argument against the declared registers; null after a fault. */
  private resolveArg(
    arg: Arg,
    want: 'qreg' | 'creg',
  ): { reg: Register; index: number | null } | null {
    const { name, index } = arg;
    const reg = this.registers.get(name.text);
    if (reg === undefined) {
      this.fail(name, `${quote(name.text)} is not a declared ${want}`);
      return null;
    }
    if (reg.kind !== want) {
      const needed = want === 'qreg' ? 'a qubit' : 'a classical bit';
      this.fail(name, `${quote(name.text)} is a ${reg.kind}, where ${needed} is needed`);
      return null;
    }
    if (index !== null && !(index.value < reg.size)) {
      const range = `${reg.kind} ${reg.name}[${reg.size}]`;
      this.fail(index.tok, `index ${index.tok.text} is out of range for ${range}`);
      return null;
    }
    return { reg, index: index?.value ?? null };
  }

  // -------------------------------------------------------------- operations

  /** A gate call, measure or reset; under `cond` when it follows an `if`. */
  private operation(cond: Condition | null): boolean {
    const t = this.lx.peek();
    if (t.kind === 'id' && t.text === 'measure') return this.measure(cond);
    if (t.kind === 'id' && t.text === 'reset') return this.reset(cond);
    if (t.kind !== 'id' || RESERVED.has(t.text)) {
      const where = cond === null ? '' : ' after if (...)';
      this.fail(t, `expected a gate call, measure or reset${where}, got ${describeToken(t)}`);
      return false;
    }
    return this.gateStatement(cond);
  }

  private gateStatement(cond: Condition | null): boolean {
    const call = this.callSyntax(NO_NAMES, true);
    if (call === null) return false;
    const gate = this.resolveGate(call, null);
    const values = call.params.map((p) => evaluate(p.expr, []));
    values.forEach((v, i) => {
      if (Number.isFinite(v)) return;
      const message = `parameter ${i + 1} of ${quote(call.name.text)} is ${v}, not a finite number`;
      this.fail(call.params[i]!.tok, message);
    });
    const args = call.args.map((a) => this.resolveArg(a, 'qreg'));
    const count = this.broadcastCount(call.args, args);
    if (gate === null || count === null || !values.every(Number.isFinite)) return true;
    const guard = this.guardFor(cond);
    if (guard === NEVER || this.overflow) return true;
    const start = cond?.start ?? call.name;
    for (let k = 0; k < count; k++) {
      const qubits: string[] = [];
      for (const r of args) qubits.push(`${r!.reg.name}_${r!.index ?? k}`);
      if (!this.distinct(call.args, qubits)) return true;
      this.steps += 1 + qubits.length;
      const prims: Prim[] = [];
      const fault =
        this.steps > QASM_EXPANSION_STEPS_MAX
          ? this.limit(`expanding the program takes more than ${QASM_EXPANSION_STEPS_MAX} steps`)
          : this.expand(gate, values, qubits, prims);
      if (fault !== null) {
        this.fail(call.name, fault);
        return true;
      }
      if (!this.emit(start, prims, guard)) return true;
    }
    return true;
  }

  /**
   * Broadcasting: a whole register stands for each of its qubits in turn, so all whole registers
   * must have one size; the result is how many applications, or null after a fault.
   */
  private broadcastCount(
    syntax: readonly Arg[],
    args: readonly ({ reg: Register; index: number | null } | null)[],
  ): number | null {
    let first: Register | null = null;
    for (let i = 0; i < args.length; i++) {
      const r = args[i];
      if (r === null) return null;
      if (r === undefined || r.index !== null) continue;
      if (first === null) {
        first = r.reg;
      } else if (first.size !== r.reg.size) {
        const other = `${quote(r.reg.name)} ${r.reg.size}`;
        const sizes = `${quote(first.name)} has ${first.size} qubits, ${other}`;
        this.fail(syntax[i]!.name, `whole registers in one gate call must have one size: ${sizes}`);
        return null;
      }
    }
    return first === null ? 1 : first.size;
  }

  /** One application's qubits are distinct (the IR's rule 6); the fault names the second use. */
  private distinct(syntax: readonly Arg[], qubits: readonly string[]): boolean {
    const seen = new Set<string>();
    for (let j = 0; j < qubits.length; j++) {
      const q = qubits[j]!;
      if (seen.has(q)) {
        const shown = q.replace(/_([0-9]+)$/, '[$1]');
        this.fail(syntax[j]!.name, `qubit ${shown} is used twice in one gate call`);
        return false;
      }
      seen.add(q);
    }
    return true;
  }

  private measure(cond: Condition | null): boolean {
    const keyword = this.lx.next();
    const src = this.arg(true, 'after measure');
    if (src === null || this.expect('->', 'between the qubit and the bit of measure') === null) {
      return false;
    }
    const dst = this.arg(true, 'after ->');
    if (dst === null || this.expect(';', 'after measure') === null) return false;
    const q = this.resolveArg(src, 'qreg');
    const c = this.resolveArg(dst, 'creg');
    if (q === null || c === null) return true;
    if ((q.index === null) !== (c.index === null)) {
      this.fail(src.name, 'measure takes a qubit -> a bit, or a whole qreg -> a whole creg');
      return true;
    }
    if (q.reg.size !== c.reg.size && q.index === null) {
      const sizes = `${q.reg.name} has ${q.reg.size} qubits, ${c.reg.name} ${c.reg.size} bits`;
      this.fail(dst.name, `measure of a whole register needs registers of one size: ${sizes}`);
      return true;
    }
    const prims: Prim[] = [];
    for (let k = 0; k < (q.index === null ? q.reg.size : 1); k++) {
      const j = c.index ?? k;
      const event = `${c.reg.name}_${j}`;
      const earlier = this.measured.get(event);
      if (earlier !== undefined) {
        const why = 'a bit is written once here, as an event has one producer (QVM.md §1 rule 4)';
        this.fail(
          dst.name,
          `${c.reg.name}[${j}] is already written by the measure at ${earlier}: ${why}`,
        );
        return true;
      }
      prims.push({ op: 'MEASURE_Z', qubits: [`${q.reg.name}_${q.index ?? k}`], produces: [event] });
    }
    const start = cond?.start ?? keyword;
    const guard = this.guardFor(cond);
    if (guard === NEVER || !this.emit(start, prims, guard)) return true;
    for (const p of prims) this.measured.set(p.produces![0]!, at(start));
    return true;
  }

  private reset(cond: Condition | null): boolean {
    const keyword = this.lx.next();
    const target = this.arg(true, 'after reset');
    if (target === null || this.expect(';', 'after reset') === null) return false;
    const q = this.resolveArg(target, 'qreg');
    if (q === null) return true;
    const indices = q.index === null ? Array.from({ length: q.reg.size }, (_, i) => i) : [q.index];
    const prims = indices.map((i): Prim => ({ op: 'RESET', qubits: [`${q.reg.name}_${i}`] }));
    const guard = this.guardFor(cond);
    if (guard !== NEVER) this.emit(cond?.start ?? keyword, prims, guard);
    return true;
  }

  /** Checked and dropped (see the header). */
  private barrier(): boolean {
    this.lx.next();
    const args = this.argList(true, 'after barrier');
    if (args === null || this.expect(';', 'after barrier') === null) return false;
    for (const a of args) this.resolveArg(a, 'qreg');
    return true;
  }

  /** `if (c == n) operation`. */
  private conditional(): boolean {
    const keyword = this.lx.next();
    if (this.expect('(', 'after if') === null) return false;
    const name = this.lx.peek();
    if (name.kind !== 'id') {
      this.fail(name, `expected a creg name in the if condition, got ${describeToken(name)}`);
      return false;
    }
    this.lx.next();
    if (this.expect('==', `after if (${name.text}`) === null) return false;
    const value = this.integer('to compare the creg with');
    if (value === null || this.expect(')', 'to close the if condition') === null) return false;
    const reg = this.conditionRegister(name, value.tok);
    const n = reg === null ? 0n : BigInt(value.tok.text);
    return this.operation({ reg, value: n, start: keyword });
  }

  private conditionRegister(name: Token, value: Token): Register | null {
    const reg = this.registers.get(name.text);
    if (reg === undefined || reg.kind !== 'creg') {
      const what = reg === undefined ? 'is not a declared creg' : 'is a qreg; if compares a creg';
      this.fail(name, `${quote(name.text)} ${what}`);
      return null;
    }
    if (reg.size > QASM_BITS_PER_CONDITION_MAX) {
      const max = QASM_BITS_PER_CONDITION_MAX;
      this.fail(name, `if compares at most ${max} bits; creg ${reg.name} has ${reg.size}`);
      return null;
    }
    if (value.text.length > CONDITION_DIGITS_MAX || BigInt(value.text) >> BigInt(reg.size) !== 0n) {
      const bits = plural(reg.size, 'bit');
      this.fail(
        value,
        `${quote(value.text)} does not fit in creg ${reg.name}'s ${bits}: it never equals it`,
      );
      return null;
    }
    return reg;
  }

  /**
   * The guard of an operation under `cond`: an `and` of one leaf per bit measured so far; a bit
   * not measured yet is 0, so it drops out when it must be 0 and makes the condition NEVER hold
   * when it must be 1. Null: no condition (or it always holds).
   */
  private guardFor(cond: Condition | null): Guard | null | typeof NEVER {
    if (cond === null) return null;
    if (cond.reg === null) return NEVER;
    const leaves: Guard[] = [];
    for (let i = 0; i < cond.reg.size; i++) {
      const equals = ((cond.value >> BigInt(i)) & 1n) === 1n ? 1 : 0;
      const event = `${cond.reg.name}_${i}`;
      if (this.measured.has(event)) leaves.push({ event, equals });
      else if (equals === 1) return NEVER;
    }
    if (leaves.length <= 1) return leaves[0] ?? null;
    return { type: 'and', conditions: leaves };
  }

  // -------------------------------------------------------------- expansion and emission

  /**
   * Lowers one application of `gate` into `into`, user gates recursively (depth at most
   * QASM_GATE_DEPTH_MAX). Returns a violation message or null; a program-wide limit also sets
   * `overflow`.
   */
  private expand(
    gate: GateDef,
    params: readonly number[],
    qubits: readonly string[],
    into: Prim[],
  ): string | null {
    if (!gate.user) {
      into.push(...gate.lower(params, qubits));
      return this.nodesPassMax(into.length) ? this.limit(nodesOver()) : null;
    }
    for (const call of gate.body) {
      this.steps += call.cost;
      if (this.steps > QASM_EXPANSION_STEPS_MAX) {
        return this.limit(
          `expanding the program takes more than ${QASM_EXPANSION_STEPS_MAX} steps`,
        );
      }
      const values = call.params.map((e) => evaluate(e, params));
      const bad = values.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) {
        const which = `parameter ${bad + 1} of ${quote(call.gate.name)}`;
        const where = `in gate ${quote(gate.name)} (defined at ${gate.where})`;
        return `${where}, ${which} evaluates to ${values[bad]}, not a finite number`;
      }
      const fault = this.expand(
        call.gate,
        values,
        call.args.map((i) => qubits[i]!),
        into,
      );
      if (fault !== null) return fault;
    }
    return null;
  }

  /** Whether `more` nodes (and the closing FREE_LQ) would pass PROGRAM_NODES_MAX. */
  private nodesPassMax(more: number): boolean {
    return this.nodes.length + more + 1 > PROGRAM_NODES_MAX;
  }

  private limit(message: string): string {
    this.overflow = true;
    return message;
  }

  /** Appends one statement's nodes; false (after reporting) when a program-wide limit is hit. */
  private emit(start: Token, prims: readonly Prim[], guard: Guard | null): boolean {
    if (this.overflow) return false;
    if (this.nodesPassMax(prims.length)) {
      this.fail(start, this.limit(nodesOver()));
      return false;
    }
    const leaves = guard === null ? 0 : 'event' in guard ? 1 : guard.conditions.length;
    this.guardLeaves += leaves * prims.length;
    if (this.guardLeaves > QASM_GUARD_LEAVES_MAX) {
      const message = `the program's guards read more than ${QASM_GUARD_LEAVES_MAX} bits in all`;
      this.fail(start, this.limit(`${message} (each node under an if reads its register's bits)`));
      return false;
    }
    for (const p of prims) {
      this.nodes.push(this.node(start, p, guard));
      this.caps.add(p.op === 'MEASURE_Z' ? 'CAP_MEASURE' : 'CAP_COMPUTE');
    }
    return true;
  }

  /** A node with the next id of its statement's line. */
  private node(start: Token, p: Prim, guard: Guard | null): ProgramNode {
    const k = this.lineNodes.get(start.line) ?? 0;
    this.lineNodes.set(start.line, k + 1);
    const node: ProgramNode = {
      id: k === 0 ? `L${start.line}` : `L${start.line}.${k}`,
      op: p.op,
      qubits: p.qubits,
      channels: [],
      inputs: [],
      produces: p.produces ?? [],
      args: p.theta === undefined ? {} : { theta: p.theta },
      source: at(start),
    };
    if (guard !== null) node.guard = guard;
    return node;
  }

  /** A register measured only in part cannot be keyed (see the header). */
  private checkPartialRegisters(): void {
    for (const reg of this.cregs) {
      const missing: string[] = [];
      for (let i = 0; i < reg.size; i++) {
        if (!this.measured.has(`${reg.name}_${i}`)) missing.push(`${reg.name}[${i}]`);
      }
      if (missing.length === 0 || missing.length === reg.size) continue;
      const more = missing.length > 8 ? ` and ${missing.length - 8} more` : '';
      const listed = `${missing.slice(0, 8).join(', ')}${more}`;
      const why = "measure every bit of a register or none: a count's key holds measured bits";
      this.fail(
        reg.decl,
        `creg ${quote(reg.name)} is measured only in part (not ${listed}): ${why}`,
      );
    }
  }

  // -------------------------------------------------------------- expressions

  /** expression := term (('+' | '-') term)*. */
  private expression(scope: Scope, depth: number): Expr | null {
    let a = this.term(scope, depth);
    while (a !== null && (this.is('+') || this.is('-'))) {
      const op = this.lx.next();
      const b = this.term(scope, depth);
      a = b === null ? null : this.binary(op, a, b);
    }
    return a;
  }

  /** term := unary (('*' | '/') unary)*. */
  private term(scope: Scope, depth: number): Expr | null {
    let a = this.unary(scope, depth);
    while (a !== null && (this.is('*') || this.is('/'))) {
      const op = this.lx.next();
      const b = this.unary(scope, depth);
      a = b === null ? null : this.binary(op, a, b);
    }
    return a;
  }

  /** unary := '-' unary | atom ('^' unary)?, so -2^2 is -4 and 2^-1 is 0.5. */
  private unary(scope: Scope, depth: number): Expr | null {
    const t = this.lx.peek();
    if (depth >= QASM_EXPRESSION_DEPTH_MAX) {
      this.fail(t, `an expression is nested at most ${QASM_EXPRESSION_DEPTH_MAX} deep`);
      return null;
    }
    if (this.is('-')) {
      this.lx.next();
      const a = this.unary(scope, depth + 1);
      return a === null
        ? null
        : this.made(t, { k: 'neg', a, depth: a.depth + 1, size: a.size + 1 });
    }
    const base = this.atom(scope, depth);
    if (base === null || !this.is('^')) return base;
    const op = this.lx.next();
    const exponent = this.unary(scope, depth + 1);
    return exponent === null ? null : this.binary(op, base, exponent);
  }

  /** atom := number | pi | parameter | function '(' expression ')' | '(' expression ')'. */
  private atom(scope: Scope, depth: number): Expr | null {
    const t = this.lx.peek();
    if (t.kind === 'num') {
      this.lx.next();
      return { k: 'num', v: Number(t.text), depth: 1, size: 1 };
    }
    if (this.is('(')) {
      this.lx.next();
      const e = this.expression(scope, depth + 1);
      return e === null || this.expect(')', 'to close the parenthesis') === null ? null : e;
    }
    const f = t.kind === 'id' ? FUNCTIONS.get(t.text) : undefined;
    if (f !== undefined) {
      this.lx.next();
      if (this.expect('(', `after ${t.text}`) === null) return null;
      const a = this.expression(scope, depth + 1);
      if (a === null || this.expect(')', `to close ${t.text}(`) === null) return null;
      return this.made(t, { k: 'fn', f, a, depth: a.depth + 1, size: a.size + 1 });
    }
    const i = t.kind === 'id' ? scope.get(t.text) : undefined;
    if (t.kind === 'id' && (t.text === 'pi' || i !== undefined)) {
      this.lx.next();
      return i === undefined
        ? { k: 'num', v: Math.PI, depth: 1, size: 1 }
        : { k: 'param', i, depth: 1, size: 1 };
    }
    const known = scope.size === 0 ? 'pi' : 'pi, a gate parameter';
    const got = t.kind === 'id' ? `the unknown name ${quote(t.text)}` : describeToken(t);
    this.fail(t, `expected a number, ${known}, a function or "(", got ${got}`);
    return null;
  }

  private binary(op: Token, a: Expr, b: Expr): Expr | null {
    const e: Expr = {
      k: 'bin',
      op: op.text as BinaryOp,
      a,
      b,
      depth: Math.max(a.depth, b.depth) + 1,
      size: a.size + b.size + 1,
    };
    return this.made(op, e);
  }

  /** A tree deeper than the limit (a long chain `1+1+...`) is refused: evaluation recurses. */
  private made(t: Token, e: Expr): Expr | null {
    if (e.depth <= QASM_EXPRESSION_DEPTH_MAX) return e;
    this.fail(t, `an expression is nested at most ${QASM_EXPRESSION_DEPTH_MAX} deep`);
    return null;
  }
}
