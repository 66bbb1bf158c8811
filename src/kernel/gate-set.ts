/**
 * The interactive gate set (the QVM opcodes that act on persistent qubits) and the measurement
 * bases: the one table of names, arities, angles and the cap each needs. Layer: kernel (pure
 * data; imports model types only), so the simulator may import it too: `sim/gates.ts` holds the
 * matrices of these same names and nothing else about them.
 *
 * Conventions the simulator follows: CNOT operands are (control, target), TOFFOLI's are
 * (c1, c2, target); RESET is measure-then-flip (it needs a random draw, so it has no matrix).
 */
import type { Cap } from './model.js';

/** Every gate name of the interactive QVM gate set. */
export type GateName =
  | 'H'
  | 'X'
  | 'Y'
  | 'Z'
  | 'S'
  | 'SDG'
  | 'T'
  | 'TDG'
  | 'RX'
  | 'RY'
  | 'RZ'
  | 'CNOT'
  | 'CZ'
  | 'SWAP'
  | 'TOFFOLI'
  | 'RESET'
  | 'INJECT_T_STATE';

export interface GateSpec {
  /** Number of qubit operands. */
  arity: number;
  /** Whether the gate takes an angle θ (radians). */
  theta: boolean;
  cap: Cap;
  /** RESET measures: its qubit leaves the batch in a product state and is split out. */
  measures: boolean;
}

const ONE: GateSpec = { arity: 1, theta: false, cap: 'CAP_COMPUTE', measures: false };
const ROT: GateSpec = { arity: 1, theta: true, cap: 'CAP_COMPUTE', measures: false };
const TWO: GateSpec = { arity: 2, theta: false, cap: 'CAP_COMPUTE', measures: false };

export const GATE_SET: Readonly<Record<GateName, GateSpec>> = {
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

/** True when `x` names a gate of the set (own keys only: "toString" is not a gate). */
export function isGateName(x: string): x is GateName {
  return Object.hasOwn(GATE_SET, x);
}

export function gateSpec(name: string): GateSpec | undefined {
  return isGateName(name) ? GATE_SET[name] : undefined;
}

/** The bases a qubit can be measured in; ANGLE takes an angle from Z towards X. */
export type Basis = 'Z' | 'X' | 'Y' | 'ANGLE';

export const BASES: readonly Basis[] = ['Z', 'X', 'Y', 'ANGLE'];

export function isBasis(x: string): x is Basis {
  return (BASES as readonly string[]).includes(x);
}
