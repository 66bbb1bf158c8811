/**
 * The interactive gate set (QVM.md's opcodes that act on persistent qubits), as the kernel checks
 * it: arity, whether an angle is required, and which cap the session must hold. Layer: kernel.
 * The matrices live in `sim/gates.ts`; this table is the policy side of the same names.
 */
import type { Cap } from './model.js';

export interface GateSpec {
  arity: number;
  theta: boolean;
  cap: Cap;
  /** RESET measures: its qubit leaves the batch in a product state and is split out. */
  measures: boolean;
}

const ONE: GateSpec = { arity: 1, theta: false, cap: 'CAP_COMPUTE', measures: false };
const ROT: GateSpec = { arity: 1, theta: true, cap: 'CAP_COMPUTE', measures: false };
const TWO: GateSpec = { arity: 2, theta: false, cap: 'CAP_COMPUTE', measures: false };

export const GATE_SET: Readonly<Record<string, GateSpec>> = {
  H: ONE,
  X: ONE,
  Y: ONE,
  Z: ONE,
  S: ONE,
  SDG: ONE,
  T: ONE,
  TDG: ONE,
  RX: ROT,
  RY: ROT,
  RZ: ROT,
  CNOT: TWO,
  CZ: TWO,
  SWAP: TWO,
  TOFFOLI: { arity: 3, theta: false, cap: 'CAP_COMPUTE', measures: false },
  RESET: { arity: 1, theta: false, cap: 'CAP_COMPUTE', measures: true },
  INJECT_T_STATE: { arity: 1, theta: false, cap: 'CAP_MAGIC', measures: false },
};

export function gateSpec(name: string): GateSpec | undefined {
  return Object.hasOwn(GATE_SET, name) ? GATE_SET[name] : undefined;
}
