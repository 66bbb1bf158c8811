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

import type { Program, Violation } from './ir.js';
import {
  QASM_BITS_MAX,
  QASM_BITS_PER_REGISTER_MAX,
  QASM_COUNTS_ORDER,
  QASM_GATE_DEPTH_MAX,
  QASM_INCLUDE,
  QASM_QUBITS_MAX,
  QASM_QUBITS_PER_REGISTER_MAX,
  QASM_SOURCE_CHARS_MAX,
} from './qasm-limits.js';
import { QasmOperations } from './qasm-operations.js';
import { type Arg, RESYNC, type Register, type Scope } from './qasm-reader.js';
import {
  BUILTINS,
  type BodyCall,
  RESERVED,
  type Token,
  type UserGate,
  at,
  describeToken,
} from './qasm-syntax.js';
import { ViolationList, quote } from './verify.js';

export * from './qasm-limits.js';

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

/** The last layer of the parser: program structure, registers and gate definitions. */
class Parser extends QasmOperations {
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

  // -------------------------------------------------------------- statements

  /** `OPENQASM 2.0;`. False when the text is another language and parsing should stop. */
  protected header(): boolean {
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
  protected statement(): boolean {
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

  protected include(): boolean {
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

  protected register(kind: 'qreg' | 'creg'): boolean {
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

  protected registerFault(
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
  protected gateDefinition(): boolean {
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
  protected gateHeader(): { params: Token[]; qargs: Token[] } | null {
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
  protected checkDistinct(names: readonly Token[]): void {
    const seen = new Set<string>();
    for (const t of names) {
      if (seen.has(t.text)) this.fail(t, `${quote(t.text)} is declared twice in this gate`);
      seen.add(t.text);
    }
  }

  /** A gate call or barrier in a body: null when it adds nothing, RESYNC on a syntax fault. */
  protected bodyStatement(
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

  protected bodyArgs(
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
  protected skipBodyStatement(): void {
    for (let t = this.lx.peek(); t.kind !== 'eof' && !this.is('}'); t = this.lx.peek()) {
      this.lx.next();
      if (t.kind === 'sym' && t.text === ';') return;
    }
  }
}
