/**
 * The first layer of the OpenQASM 2.0 parser: its state, token helpers, gate calls with their
 * arguments, and parameter expressions. Layer: kernel (pure). The parser is built in layers, each
 * a subclass of the one before, so each file holds one part of the grammar: `QasmReader`
 * (tokens, calls, expressions), `QasmEmitter` (`qasm-emitter.ts`: expansion into nodes),
 * `QasmOperations` (`qasm-operations.ts`: gate applications, measure, reset, barrier, if) and the
 * `Parser` of `qasm.ts` (program structure, registers, gate definitions).
 */

import type { ProgramNode } from './ir.js';
import { QASM_EXPRESSION_DEPTH_MAX, QASM_IDENTIFIER_CHARS_MAX } from './qasm-limits.js';
import {
  BUILTINS,
  type BinaryOp,
  type Expr,
  FUNCTIONS,
  type GateDef,
  INT_PATTERN,
  Lexer,
  RESERVED,
  type Token,
  type UserGate,
  at,
  describeToken,
} from './qasm-syntax.js';
import { PROGRAM_NODES_MAX } from './qvm.js';
import { type ViolationList, quote } from './verify.js';

export interface Register {
  name: string;
  size: number;
  kind: 'qreg' | 'creg';
  /** Its `qreg`/`creg` keyword, for messages. */
  decl: Token;
}

export interface Arg {
  name: Token;
  index: { tok: Token; value: number } | null;
}

export interface Param {
  expr: Expr;
  tok: Token;
}

export interface CallSyntax {
  name: Token;
  params: Param[];
  args: Arg[];
}

/** An `if (c == n)`: `reg` is null when the condition itself was faulty (nothing is emitted). */
export interface Condition {
  reg: Register | null;
  value: bigint;
  /** The `if` keyword: the source of the nodes it guards. */
  start: Token;
}

/** Names in scope in a gate body, to their positions in the parameter or qubit list. */
export type Scope = ReadonlyMap<string, number>;
export const NO_NAMES: Scope = new Map();

export const NEVER = 'never';
export const RESYNC = 'resync';
export const nodesOver = () => `the program expands to more than ${PROGRAM_NODES_MAX} nodes`;
/** Decimal digits of a condition's value: 2^1024 has 309. */
export const CONDITION_DIGITS_MAX = 320;
export const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export class QasmReader {
  protected readonly lx: Lexer;
  protected errors = 0;
  protected readonly registers = new Map<string, Register>();
  protected readonly cregs: Register[] = [];
  protected readonly gates = new Map<string, UserGate>();
  protected readonly qubits: string[] = [];
  protected bits = 0;
  protected readonly nodes: ProgramNode[] = [];
  protected alloc: ProgramNode | null = null;
  /** The FREE_LQ at the end; emission keeps a place for it within PROGRAM_NODES_MAX. */
  protected free: ProgramNode | null = null;
  /** Event name → `line:col` of the measurement that writes it. */
  protected readonly measured = new Map<string, string>();
  protected readonly lineNodes = new Map<number, number>();
  protected readonly caps = new Set<string>();
  protected steps = 0;
  protected guardLeaves = 0;
  /** A program-wide limit was passed (reported once): nothing more is expanded or emitted. */
  protected overflow = false;

  constructor(
    text: string,
    private readonly out: ViolationList,
  ) {
    this.lx = new Lexer(text);
  }

  // -------------------------------------------------------------- token helpers

  protected fail(t: Token, message: string): void {
    this.errors += 1;
    this.out.add(at(t), at(t), 0, message);
  }

  protected is(text: string): boolean {
    const t = this.lx.peek();
    return (t.kind === 'sym' || t.kind === 'id') && t.text === text;
  }

  /** Consumes a `,` if one is next. */
  protected comma(): boolean {
    if (!this.is(',')) return false;
    this.lx.next();
    return true;
  }

  protected expect(text: string, context: string): Token | null {
    const t = this.lx.peek();
    if (this.is(text)) return this.lx.next();
    this.fail(t, `expected ${quote(text)} ${context}, got ${describeToken(t)}`);
    return null;
  }

  /** A name being declared: an identifier, not reserved, not too long; null after a fault. */
  protected declaredName(context: string): Token | null {
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

  protected integer(context: string): { tok: Token; value: number } | null {
    const t = this.lx.peek();
    if (t.kind !== 'num' || !INT_PATTERN.test(t.text)) {
      this.fail(t, `expected a non-negative integer ${context}, got ${describeToken(t)}`);
      return null;
    }
    this.lx.next();
    return { tok: t, value: Number(t.text) };
  }

  /** Error recovery: on to the next `;`, or past the `}` of a block begun on the way. */
  protected skipStatement(): void {
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

  // -------------------------------------------------------------- calls and arguments

  /** The gate a call names, with its arity checked; null after a fault. */
  protected resolveGate(call: CallSyntax, defining: string | null): GateDef | null {
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
  /** `name[(expr, ...)] arg, ...;`: the syntax shared by gate calls and a body's barrier. */
  protected callSyntax(scope: Scope, indexed: boolean): CallSyntax | null {
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

  protected argList(indexed: boolean, context: string): Arg[] | null {
    const args: Arg[] = [];
    for (let more = true; more; more = this.comma()) {
      const a = this.arg(indexed, args.length === 0 ? context : 'after ","');
      if (a === null) return null;
      args.push(a);
    }
    return args;
  }

  /** `name` or (top level only) `name[index]`. */
  protected arg(indexed: boolean, context: string): Arg | null {
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
  protected resolveArg(
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

  // -------------------------------------------------------------- expressions

  /** expression := term (('+' | '-') term)*. */
  protected expression(scope: Scope, depth: number): Expr | null {
    return this.leftAssociative(['+', '-'], () => this.term(scope, depth));
  }

  /** term := unary (('*' | '/') unary)*. */
  protected term(scope: Scope, depth: number): Expr | null {
    return this.leftAssociative(['*', '/'], () => this.unary(scope, depth));
  }

  /** operand ((ops[0] | ops[1]) operand)*, folded to the left; null once an operand fails. */
  private leftAssociative(ops: readonly [string, string], operand: () => Expr | null): Expr | null {
    let a = operand();
    while (a !== null && (this.is(ops[0]) || this.is(ops[1]))) {
      const op = this.lx.next();
      const b = operand();
      a = b === null ? null : this.binary(op, a, b);
    }
    return a;
  }

  /** unary := '-' unary | atom ('^' unary)?, so -2^2 is -4 and 2^-1 is 0.5. */
  protected unary(scope: Scope, depth: number): Expr | null {
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
  protected atom(scope: Scope, depth: number): Expr | null {
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

  protected binary(op: Token, a: Expr, b: Expr): Expr | null {
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
  protected made(t: Token, e: Expr): Expr | null {
    if (e.depth <= QASM_EXPRESSION_DEPTH_MAX) return e;
    this.fail(t, `an expression is nested at most ${QASM_EXPRESSION_DEPTH_MAX} deep`);
    return null;
  }
}
