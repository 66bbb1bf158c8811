/**
 * The benchmark and conformance circuits as OpenQASM 2.0 text, generated in the repo and seeded
 * (the definitions): GHZ = H then a CNOT chain; QFT = H and a controlled-phase ladder,
 * then swaps; random = per layer a random RX/RY/RZ on every qubit, then CZ on alternating
 * neighbour pairs. Every qubit is measured at the end (terminal), so a job simulates the state
 * once and samples. Layer: sim; pure.
 */

/** mulberry32: a small seeded generator; enough for choosing gates and angles. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function wrap(n: number, body: string[], measure: boolean): string {
  const head = ['OPENQASM 2.0;', 'include "qelib1.inc";', `qreg q[${n}];`];
  if (measure) head.push(`creg c[${n}];`);
  const tail = measure ? ['measure q -> c;'] : [];
  return [...head, ...body, ...tail].join('\n');
}

/** GHZ on n qubits: H q[0], then CNOT q[i-1] → q[i]. */
export function ghzQasm(n: number, measure = true): string {
  const body = ['h q[0];'];
  for (let i = 1; i < n; i++) body.push(`cx q[${i - 1}],q[${i}];`);
  return wrap(n, body, measure);
}

/** QFT on n qubits (applied to |0…0>, optionally after X on `input`'s set bits). */
export function qftQasm(n: number, measure = true, input = 0): string {
  const body: string[] = [];
  for (let i = 0; i < n; i++) if ((input >> i) & 1) body.push(`x q[${i}];`);
  for (let i = n - 1; i >= 0; i--) {
    body.push(`h q[${i}];`);
    for (let j = i - 1; j >= 0; j--) body.push(`cp(${Math.PI / 2 ** (i - j)}) q[${j}],q[${i}];`);
  }
  for (let i = 0; i < n >> 1; i++) body.push(`swap q[${i}],q[${n - 1 - i}];`);
  return wrap(n, body, measure);
}

/** The random circuit: `layers` layers of random RX/RY/RZ on every qubit, then CZ pairs. */
export function randomQasm(n: number, layers: number, seed: number, measure = true): string {
  const rnd = seededRandom(seed);
  const body: string[] = [];
  for (let l = 0; l < layers; l++) {
    for (let q = 0; q < n; q++) {
      const gate = ['rx', 'ry', 'rz'][Math.floor(rnd() * 3)]!;
      body.push(`${gate}(${(rnd() * 2 * Math.PI).toFixed(12)}) q[${q}];`);
    }
    for (let q = l % 2; q + 1 < n; q += 2) body.push(`cz q[${q}],q[${q + 1}];`);
  }
  return wrap(n, body, measure);
}

/**
 * A random circuit over the whole gate set (conformance): 1-qubit gates with random angles,
 * CNOT, CZ, SWAP and Toffoli on random distinct qubits.
 */
export function mixedQasm(n: number, gates: number, seed: number, measure = true): string {
  const rnd = seededRandom(seed);
  const pick = (k: number): number[] => {
    const qs: number[] = [];
    while (qs.length < k) {
      const q = Math.floor(rnd() * n);
      if (!qs.includes(q)) qs.push(q);
    }
    return qs;
  };
  const one = ['h', 'x', 'y', 'z', 's', 'sdg', 't', 'tdg'];
  const body: string[] = [];
  for (let g = 0; g < gates; g++) {
    const r = rnd();
    if (r < 0.35 || n < 2) {
      body.push(`${one[Math.floor(rnd() * one.length)]} q[${pick(1)[0]}];`);
    } else if (r < 0.6) {
      const gate = ['rx', 'ry', 'rz'][Math.floor(rnd() * 3)]!;
      body.push(`${gate}(${(rnd() * 2 * Math.PI).toFixed(12)}) q[${pick(1)[0]}];`);
    } else if (r < 0.9 || n < 3) {
      const [a, b] = pick(2);
      body.push(`${['cx', 'cz', 'swap'][Math.floor(rnd() * 3)]} q[${a}],q[${b}];`);
    } else {
      const [a, b, c] = pick(3);
      body.push(`ccx q[${a}],q[${b}],q[${c}];`);
    }
  }
  return wrap(n, body, measure);
}
