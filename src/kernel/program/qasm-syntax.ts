/**
 * The OpenQASM 2.0 front end's vocabulary: the lexer (tokens with `line:col`), arithmetic
 * expressions over gate parameters, and the built-in gate library (qelib1.inc and `U`, `CX`) with
 * each gate's lowering to QVM opcodes. Layer: kernel (pure). The grammar is `qasm-reader.ts`'s
 * and its subclasses'; this file knows nothing of statements.
 */

import type { Opcode } from './ir.js';
import { quote } from './verify.js';

export type TokenKind = 'id' | 'num' | 'str' | 'sym' | 'bad' | 'eof';

export interface Token {
  kind: TokenKind;
  text: string;
  line: number;
  col: number;
}

const ID_PATTERN = /[A-Za-z_][A-Za-z0-9_]*/y;
const NUM_PATTERN = /(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?/y;
export const INT_PATTERN = /^[0-9]+$/;
const STR_PATTERN = /"[^"\n]*"/y;
const SYMBOLS_2 = ['->', '=='];
const SYMBOLS_1 = new Set([';', ',', '(', ')', '[', ']', '{', '}', '+', '-', '*', '/', '^']);

/** Scans on demand, one token of lookahead: memory stays flat whatever the text's length. */
export class Lexer {
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

export const at = (t: Token) => `${t.line}:${t.col}`;

export function describeToken(t: Token): string {
  if (t.kind === 'eof') return 'the end of the program';
  if (t.kind === 'bad')
    return t.text === '"' ? 'an unterminated string' : `the character ${quote(t.text)}`;
  return quote(t.text);
}

export const FUNCTIONS: ReadonlyMap<string, (x: number) => number> = new Map([
  ['sin', Math.sin],
  ['cos', Math.cos],
  ['tan', Math.tan],
  ['exp', Math.exp],
  ['ln', Math.log],
  ['sqrt', Math.sqrt],
]);

export type BinaryOp = '+' | '-' | '*' | '/' | '^';

/** An expression tree; `depth` and `size` (nodes) are kept as it is built, to bound it. */
export type Expr = { depth: number; size: number } & (
  | { k: 'num'; v: number }
  | { k: 'param'; i: number }
  | { k: 'neg'; a: Expr }
  | { k: 'bin'; op: BinaryOp; a: Expr; b: Expr }
  | { k: 'fn'; f: (x: number) => number; a: Expr }
);

/** Evaluates with the enclosing gate's parameter values; recursion depth ≤ the tree's depth. */
export function evaluate(e: Expr, params: readonly number[]): number {
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

/** One lowered operation before it becomes a node. */
export interface Prim {
  op: Opcode;
  qubits: string[];
  theta?: number;
  produces?: string[];
}

export type Lower = (p: readonly number[], q: readonly string[]) => Prim[];

export interface Builtin {
  user: false;
  name: string;
  params: number;
  qubits: number;
  lower: Lower;
}

export interface UserGate {
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

export type GateDef = Builtin | UserGate;

export interface BodyCall {
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
export const BUILTINS: ReadonlyMap<string, Builtin> = new Map([
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
export const RESERVED: ReadonlySet<string> = new Set([
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
