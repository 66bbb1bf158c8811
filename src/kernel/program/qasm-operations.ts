/**
 * The third layer of the OpenQASM 2.0 parser: the operations of a program body (gate
 * applications with register broadcast, measure, reset, barrier) and `if` conditions on a
 * classical register. Layer: kernel (pure). See `qasm-reader.ts` for the layers.
 */

import type { Guard } from './ir.js';
import { QasmEmitter } from './qasm-emitter.js';
import { QASM_BITS_PER_CONDITION_MAX, QASM_EXPANSION_STEPS_MAX } from './qasm-limits.js';
import {
  type Arg,
  CONDITION_DIGITS_MAX,
  type Condition,
  NEVER,
  NO_NAMES,
  type Register,
  plural,
} from './qasm-reader.js';
import { type Prim, RESERVED, type Token, at, describeToken, evaluate } from './qasm-syntax.js';
import { quote } from './verify.js';

export abstract class QasmOperations extends QasmEmitter {
  // -------------------------------------------------------------- operations

  /** A gate call, measure or reset; under `cond` when it follows an `if`. */
  protected operation(cond: Condition | null): boolean {
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

  protected gateStatement(cond: Condition | null): boolean {
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
  protected broadcastCount(
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
  protected distinct(syntax: readonly Arg[], qubits: readonly string[]): boolean {
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

  protected measure(cond: Condition | null): boolean {
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

  protected reset(cond: Condition | null): boolean {
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
  protected barrier(): boolean {
    this.lx.next();
    const args = this.argList(true, 'after barrier');
    if (args === null || this.expect(';', 'after barrier') === null) return false;
    for (const a of args) this.resolveArg(a, 'qreg');
    return true;
  }

  /** `if (c == n) operation`. */
  protected conditional(): boolean {
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

  protected conditionRegister(name: Token, value: Token): Register | null {
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
  protected guardFor(cond: Condition | null): Guard | null | typeof NEVER {
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
}
