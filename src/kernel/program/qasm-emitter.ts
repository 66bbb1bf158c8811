/**
 * The second layer of the OpenQASM 2.0 parser: expanding gate applications (user gates inline,
 * with their parameters substituted) and emitting IR nodes with their ids, sources and guards,
 * within the program-wide bounds. Layer: kernel (pure). See `qasm-reader.ts` for the layers.
 */

import type { Guard, ProgramNode } from './ir.js';
import { QASM_EXPANSION_STEPS_MAX, QASM_GUARD_LEAVES_MAX } from './qasm-limits.js';
import { QasmReader, nodesOver } from './qasm-reader.js';
import { type GateDef, type Prim, type Token, at, evaluate } from './qasm-syntax.js';
import { PROGRAM_NODES_MAX } from './qvm.js';
import { quote } from './verify.js';

export abstract class QasmEmitter extends QasmReader {
  // -------------------------------------------------------------- expansion and emission

  /**
   * Lowers one application of `gate` into `into`, user gates recursively (depth at most
   * QASM_GATE_DEPTH_MAX). Returns a violation message or null; a program-wide limit also sets
   * `overflow`.
   */
  protected expand(
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
  protected nodesPassMax(more: number): boolean {
    return this.nodes.length + more + 1 > PROGRAM_NODES_MAX;
  }

  protected limit(message: string): string {
    this.overflow = true;
    return message;
  }

  /** Appends one statement's nodes; false (after reporting) when a program-wide limit is hit. */
  protected emit(start: Token, prims: readonly Prim[], guard: Guard | null): boolean {
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
  protected node(start: Token, p: Prim, guard: Guard | null): ProgramNode {
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
  protected checkPartialRegisters(): void {
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
}
