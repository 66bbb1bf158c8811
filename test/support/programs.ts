/**
 * Test programs, each in both formats: QVM graph JSON (built with `qvm`) and OpenQASM 2.0 text,
 * with the distribution true quantum mechanics predicts. Used by the job integration tests, the
 * restart and fairness tests and bench/jobs.
 */

type Node = {
  op: string;
  vqs?: string[];
  args?: Record<string, unknown>;
  produces?: string[];
  inputs?: string[];
  guard?: unknown;
};

/** A QVM v0.1 program: allocates `qubits`, runs `nodes` (ids assigned n1, n2, ...). */
export function qvm(
  qubits: string[],
  nodes: Node[],
  events: string[],
  caps: string[] = ['CAP_ALLOC'],
): string {
  const all: Node[] = [{ op: 'ALLOC_LQ', vqs: qubits, args: { n: qubits.length } }, ...nodes];
  return JSON.stringify({
    version: '0.1',
    program: { nodes: all.map((n, i) => ({ id: `n${i + 1}`, ...n })) },
    resources: { vqs: qubits, chs: [], events },
    caps,
  });
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const bits = (x: number, n: number) =>
  range(n)
    .map((i) => (x >> (n - 1 - i)) & 1)
    .join('');

/** Measures every qubit in Z into events m0..m(n-1). */
function measureAll(qs: string[]): Node[] {
  return qs.map((q, i) => ({ op: 'MEASURE_Z', vqs: [q], produces: [`m${i}`] }));
}

export function ghzQvm(n: number): string {
  const qs = range(n).map((i) => `q${i}`);
  const nodes: Node[] = [{ op: 'APPLY_H', vqs: ['q0'] }];
  for (let i = 1; i < n; i++) nodes.push({ op: 'APPLY_CNOT', vqs: [`q${i - 1}`, `q${i}`] });
  return qvm(
    qs,
    [...nodes, ...measureAll(qs)],
    qs.map((_, i) => `m${i}`),
  );
}

export function ghzQasm(n: number): string {
  const lines = [
    'OPENQASM 2.0;',
    'include "qelib1.inc";',
    `qreg q[${n}];`,
    `creg c[${n}];`,
    'h q[0];',
  ];
  for (let i = 1; i < n; i++) lines.push(`cx q[${i - 1}],q[${i}];`);
  lines.push('measure q -> c;');
  return lines.join('\n');
}

/** Teleports |+> from msg to bob with classically controlled corrections, then reads bob in X. */
export function teleportPlusQvm(): string {
  return qvm(
    ['msg', 'alice', 'bob'],
    [
      { op: 'APPLY_H', vqs: ['msg'] },
      { op: 'APPLY_H', vqs: ['alice'] },
      { op: 'APPLY_CNOT', vqs: ['alice', 'bob'] },
      { op: 'APPLY_CNOT', vqs: ['msg', 'alice'] },
      { op: 'APPLY_H', vqs: ['msg'] },
      { op: 'MEASURE_Z', vqs: ['msg'], produces: ['m_msg'] },
      { op: 'MEASURE_Z', vqs: ['alice'], produces: ['m_alice'] },
      { op: 'COND_PAULI', vqs: ['bob'], args: { mask: 'X' }, inputs: ['m_alice'] },
      { op: 'COND_PAULI', vqs: ['bob'], args: { mask: 'Z' }, inputs: ['m_msg'] },
      { op: 'MEASURE_X', vqs: ['bob'], produces: ['m_bob'] },
    ],
    ['m_msg', 'm_alice', 'm_bob'],
  );
}

/** The same in OpenQASM: `if` corrections, bob read in X as H then measure. Keys: `b a m`. */
export function teleportPlusQasm(): string {
  return [
    'OPENQASM 2.0;',
    'include "qelib1.inc";',
    'qreg q[3];',
    'creg m[1];',
    'creg a[1];',
    'creg b[1];',
    'h q[0];',
    'h q[1];',
    'cx q[1],q[2];',
    'cx q[0],q[1];',
    'h q[0];',
    'measure q[0] -> m[0];',
    'measure q[1] -> a[0];',
    'if (a==1) x q[2];',
    'if (m==1) z q[2];',
    'h q[2];',
    'measure q[2] -> b[0];',
  ].join('\n');
}

/** CCZ on three qubits as H·Toffoli·H. */
function ccz(a: string, b: string, c: string): Node[] {
  return [
    { op: 'APPLY_H', vqs: [c] },
    { op: 'APPLY_TOFFOLI', vqs: [a, b, c] },
    { op: 'APPLY_H', vqs: [c] },
  ];
}

/** 3-qubit Grover, two iterations, marking `marked` (q0 is the leftmost bit of the key). */
export function groverQvm(marked: number): string {
  const qs = ['q0', 'q1', 'q2'];
  const flipZeros = (): Node[] =>
    qs.filter((_, i) => ((marked >> (2 - i)) & 1) === 0).map((q) => ({ op: 'APPLY_X', vqs: [q] }));
  const all = (op: string): Node[] => qs.map((q) => ({ op, vqs: [q] }));
  const nodes: Node[] = [...all('APPLY_H')];
  for (let it = 0; it < 2; it++) {
    nodes.push(...flipZeros(), ...ccz('q0', 'q1', 'q2'), ...flipZeros());
    nodes.push(
      ...all('APPLY_H'),
      ...all('APPLY_X'),
      ...ccz('q0', 'q1', 'q2'),
      ...all('APPLY_X'),
      ...all('APPLY_H'),
    );
  }
  return qvm(qs, [...nodes, ...measureAll(qs)], ['m0', 'm1', 'm2']);
}

/** The same in OpenQASM; q[2] is the leftmost key bit, so q[i] carries bit i of `marked` reversed. */
export function groverQasm(marked: number): string {
  // Key (Qiskit): c[2] c[1] c[0]; we want key = bits(marked), so c[2-i] = bit i from the left.
  const q = (i: number) => `q[${2 - i}]`; // q(i) is the i-th key position from the left
  const zeros = [0, 1, 2].filter((i) => ((marked >> (2 - i)) & 1) === 0);
  const lines = ['OPENQASM 2.0;', 'include "qelib1.inc";', 'qreg q[3];', 'creg c[3];', 'h q;'];
  for (let it = 0; it < 2; it++) {
    for (const i of zeros) lines.push(`x ${q(i)};`);
    lines.push('h q[2];', 'ccx q[0],q[1],q[2];', 'h q[2];');
    for (const i of zeros) lines.push(`x ${q(i)};`);
    lines.push('h q;', 'x q;', 'h q[2];', 'ccx q[0],q[1],q[2];', 'h q[2];', 'x q;', 'h q;');
  }
  lines.push('measure q -> c;');
  return lines.join('\n');
}

/** Bernstein–Vazirani for `secret` (n bits, the leftmost key bit is q0). Deterministic. */
export function bvQvm(secret: string): string {
  const n = secret.length;
  const qs = [...range(n).map((i) => `q${i}`), 'anc'];
  const nodes: Node[] = [
    { op: 'APPLY_X', vqs: ['anc'] },
    { op: 'APPLY_H', vqs: ['anc'] },
  ];
  for (let i = 0; i < n; i++) nodes.push({ op: 'APPLY_H', vqs: [`q${i}`] });
  for (let i = 0; i < n; i++)
    if (secret[i] === '1') nodes.push({ op: 'APPLY_CNOT', vqs: [`q${i}`, 'anc'] });
  for (let i = 0; i < n; i++) nodes.push({ op: 'APPLY_H', vqs: [`q${i}`] });
  return qvm(
    qs,
    [...nodes, ...measureAll(qs.slice(0, n))],
    range(n).map((i) => `m${i}`),
  );
}

export function bvQasm(secret: string): string {
  const n = secret.length;
  // Key bit j from the left is c[n-1-j]; secret[j] is read from q[n-1-j].
  const lines = [
    'OPENQASM 2.0;',
    'include "qelib1.inc";',
    `qreg q[${n}];`,
    'qreg anc[1];',
    `creg c[${n}];`,
  ];
  lines.push('x anc[0];', 'h anc[0];', 'h q;');
  for (let j = 0; j < n; j++) if (secret[j] === '1') lines.push(`cx q[${n - 1 - j}],anc[0];`);
  lines.push('h q;', 'measure q -> c;');
  return lines.join('\n');
}

/** Controlled phase CP(λ) from CNOTs and RZ (exact up to global phase). */
function cp(lambda: number, a: string, b: string): Node[] {
  return [
    { op: 'APPLY_RZ', vqs: [a], args: { theta: lambda / 2 } },
    { op: 'APPLY_CNOT', vqs: [a, b] },
    { op: 'APPLY_RZ', vqs: [b], args: { theta: -lambda / 2 } },
    { op: 'APPLY_CNOT', vqs: [a, b] },
    { op: 'APPLY_RZ', vqs: [b], args: { theta: lambda / 2 } },
  ];
}

/** QFT of the basis state |x> on n qubits (X gates first): every outcome has probability 2^-n. */
export function qftQvm(n: number, x: number): string {
  const qs = range(n).map((i) => `q${i}`);
  const nodes: Node[] = [];
  for (let i = 0; i < n; i++) if ((x >> i) & 1) nodes.push({ op: 'APPLY_X', vqs: [`q${i}`] });
  for (let i = n - 1; i >= 0; i--) {
    nodes.push({ op: 'APPLY_H', vqs: [`q${i}`] });
    for (let j = i - 1; j >= 0; j--) nodes.push(...cp(Math.PI / 2 ** (i - j), `q${j}`, `q${i}`));
  }
  for (let i = 0; i < Math.floor(n / 2); i++)
    nodes.push({ op: 'APPLY_SWAP', vqs: [`q${i}`, `q${n - 1 - i}`] });
  return qvm(
    qs,
    [...nodes, ...measureAll(qs)],
    qs.map((_, i) => `m${i}`),
  );
}

export function qftQasm(n: number, x: number): string {
  const lines = ['OPENQASM 2.0;', 'include "qelib1.inc";', `qreg q[${n}];`, `creg c[${n}];`];
  for (let i = 0; i < n; i++) if ((x >> i) & 1) lines.push(`x q[${i}];`);
  for (let i = n - 1; i >= 0; i--) {
    lines.push(`h q[${i}];`);
    for (let j = i - 1; j >= 0; j--) lines.push(`cp(pi/${2 ** (i - j)}) q[${j}],q[${i}];`);
  }
  for (let i = 0; i < Math.floor(n / 2); i++) lines.push(`swap q[${i}],q[${n - 1 - i}];`);
  lines.push('measure q -> c;');
  return lines.join('\n');
}

/** Every n-bit key with probability 2^-n. */
export function uniform(n: number): Record<string, number> {
  return Object.fromEntries(range(2 ** n).map((x) => [bits(x, n), 2 ** -n]));
}

/**
 * A seeded random circuit on n qubits, `depth` layers: a random RX/RY/RZ on every qubit, then CZ
 * on alternating neighbour pairs; measured at the end. Same (n, depth, seed) -> same circuit.
 */
export function randomCircuitQasm(n: number, depth: number, seed: number): string {
  let s = seed >>> 0 || 1;
  const rnd = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
  const lines = ['OPENQASM 2.0;', 'include "qelib1.inc";', `qreg q[${n}];`, `creg c[${n}];`];
  for (let d = 0; d < depth; d++) {
    for (let i = 0; i < n; i++)
      lines.push(
        `${['rx', 'ry', 'rz'][Math.floor(rnd() * 3)]}(${(rnd() * 2 * Math.PI).toFixed(6)}) q[${i}];`,
      );
    for (let i = d % 2; i + 1 < n; i += 2) lines.push(`cz q[${i}],q[${i + 1}];`);
  }
  lines.push('measure q -> c;');
  return lines.join('\n');
}

/**
 * Asserts observed counts match `expected` probabilities within 5σ (σ = sqrt(p(1-p)/N)) and that
 * no outcome outside `expected` occurs. Returns a description of the first failure, or null.
 */
export function checkDistribution(
  counts: Record<string, number>,
  expected: Record<string, number>,
): string | null {
  const shots = Object.values(counts).reduce((a, b) => a + Number(b), 0);
  for (const k of Object.keys(counts)) {
    if (!(k in expected) || expected[k] === 0)
      return `impossible outcome ${k} occurred ${counts[k]} times`;
  }
  for (const [k, p] of Object.entries(expected)) {
    const f = Number(counts[k] ?? 0) / shots;
    const bound = 5 * Math.sqrt((p * (1 - p)) / shots);
    if (Math.abs(f - p) > bound + 1e-12)
      return `outcome ${k}: frequency ${f} not within ${bound} of ${p}`;
  }
  return null;
}

/**
 * A random circuit with a mid-circuit measurement feeding an `if`, so it runs per shot (each shot
 * simulates the tail again): pool-sized work whose run time scales with the shots.
 */
export function perShotQasm(n: number, depth: number, seed: number): string {
  const body = randomCircuitQasm(n, depth, seed)
    .replace(/measure q -> c;$/, '')
    .replace(`creg c[${n}];`, `creg c[${n}];\ncreg m[1];`);
  return `${body}measure q[0] -> m[0];\nif (m==1) x q[1];\nh q[2];\ncx q[2],q[3];\nmeasure q -> c;`;
}
