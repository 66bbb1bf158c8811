/**
 * The one internal program representation: both parsers (QVM graph JSON, OpenQASM 2.0) produce
 * it; the verifier checks it; the simulator runs it. Layer: kernel (pure data, no behaviour).
 *
 * Names are the program's own (qubit, channel and event names); the kernel maps them to session
 * qubits or fresh job qubits when it runs the program. Opcodes are QVM's (docs/programs.md): OpenQASM
 * gates are lowered to them (e.g. `cx` → APPLY_CNOT, `u3` → RZ·RY·RZ), so the verifier and the
 * simulator know one instruction set.
 */

export const OPCODES = [
  'ALLOC_LQ',
  'FREE_LQ',
  'RESET',
  'APPLY_H',
  'APPLY_X',
  'APPLY_Y',
  'APPLY_Z',
  'APPLY_S',
  'APPLY_SDG',
  'APPLY_T',
  'APPLY_TDG',
  'APPLY_RX',
  'APPLY_RY',
  'APPLY_RZ',
  'APPLY_CNOT',
  'APPLY_CZ',
  'APPLY_SWAP',
  'APPLY_TOFFOLI',
  'MEASURE_Z',
  'MEASURE_X',
  'MEASURE_Y',
  'MEASURE_ANGLE',
  'MEASURE_BELL',
  'COND_PAULI',
  'INJECT_T_STATE',
  'TELEPORT_CNOT',
  'OPEN_CHAN',
  'USE_CHAN',
  'CLOSE_CHAN',
  'FENCE_EPOCH',
  'BAR_REGION',
  'SET_POLICY',
] as const;
export type Opcode = (typeof OPCODES)[number];

/** A guard: the node runs only when the condition on earlier events holds. */
export type Guard = { event: string; equals: 0 | 1 } | { type: 'and' | 'or'; conditions: Guard[] };

export interface ProgramArgs {
  /** Rotation angle in radians (APPLY_RX/RY/RZ). */
  theta?: number;
  /** Measurement axis angle in radians (MEASURE_ANGLE). */
  angle?: number;
  /** ALLOC_LQ: number of qubits (equals `qubits.length`). */
  n?: number;
  /** ALLOC_LQ: error-correction profile, e.g. `logical:surface(d=7)`. */
  profile?: string;
  /** COND_PAULI: which Pauli. */
  mask?: 'I' | 'X' | 'Y' | 'Z';
  /** OPEN_CHAN: fidelity in (0, 1]. */
  fidelity?: number;
  /** TELEPORT_CNOT / OPEN_CHAN across tenants: the channel id. */
  channel?: string;
  /** USE_CHAN. */
  semantic?: string;
  /** FENCE_EPOCH / BAR_REGION / SET_POLICY annotation. */
  tag?: string;
}

export interface ProgramNode {
  /** QVM node id, or `L<line>` (with a suffix for expanded gates) for OpenQASM. */
  id: string;
  op: Opcode;
  qubits: string[];
  channels: string[];
  /** Events read (COND_PAULI's XOR inputs). */
  inputs: string[];
  /** Events written (measurements). */
  produces: string[];
  args: ProgramArgs;
  guard?: Guard;
  /** Where it came from, for error messages: a JSON path (`program.nodes[3]`) or `line:col`. */
  source: string;
}

export interface Program {
  format: 'qvm' | 'qasm';
  qubits: string[];
  channels: string[];
  /**
   * Events in the order result counts are keyed by: first event leftmost. For OpenQASM this is
   * Qiskit's order (last-declared register leftmost, highest index leftmost within a register).
   */
  events: string[];
  nodes: ProgramNode[];
  /** Caps the program declares it intends to use; they never grant anything. */
  declaredCaps: string[];
  /** Describes the bit order of result keys for the reply, in words. */
  countsOrder: string;
}

/** One rule violation, located precisely enough to fix in one round trip. */
export interface Violation {
  /** QVM node id, or `line:col` for OpenQASM, or '' for program-level rules. */
  node: string;
  /** JSON-style field path: `program.nodes[3].args.theta`, `resources.vqs[1]`. */
  field: string;
  /** Rule number of the verifier (docs/programs.md, 1–10), or 0 for OpenQASM syntax. */
  rule: number;
  message: string;
  /** Warnings (e.g. a qubit still allocated at the end) do not reject unless `strict`. */
  severity: 'error' | 'warning';
  /** Rule 9: the firewall's reason (`FIREWALL_NO_CHANNEL`, `CHANNEL_EXHAUSTED`, …). */
  code?: string;
}
