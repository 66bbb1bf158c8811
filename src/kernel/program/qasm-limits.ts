/**
 * The OpenQASM 2.0 front end's limits and fixed names: every bound on the text, registers, gate
 * nesting, expressions, expansion and guards. Layer: kernel (pure).
 */

import { PROGRAM_SOURCE_BYTES_MAX, QUBITS_PER_ALLOCATION_MAX } from '../limits.js';
import { GUARD_TERMS_MAX, NAMES_PER_LIST_MAX } from './qvm.js';

/** Program text in UTF-16 code units: 1 MiB, the kernel's `PROGRAM_SOURCE_BYTES_MAX`. */
export const QASM_SOURCE_CHARS_MAX = PROGRAM_SOURCE_BYTES_MAX;
/** Qubits in one qreg (the kernel's `QUBITS_PER_ALLOCATION_MAX`). */
export const QASM_QUBITS_PER_REGISTER_MAX = QUBITS_PER_ALLOCATION_MAX;
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
