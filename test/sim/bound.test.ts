/**
 * Bound runs (`runBound`, and `runBatch` with a bound job): a program run once on qubits that
 * already hold a state. Checked against states worked out by hand: the bound qubits' state after
 * the program, spectators of their clusters collapsing with them, program qubits measured out and
 * split off, the measured basis' eigenstate left behind, and bit-exact determinism in the seed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Program } from '../../src/kernel/program/ir.js';
import { parseQvm } from '../../src/kernel/program/qvm.js';
import { verifyProgram } from '../../src/kernel/program/verify.js';
import { runBatch } from '../../src/sim/batch.js';
import { runBound } from '../../src/sim/program.js';

const R = Math.SQRT1_2;
const alloc = (n: number) => new Float64Array(n);

/** A QVM program over `vqs` whose `bound` names are live from the start; verified with them. */
function boundProgram(
  vqs: string[],
  bound: string[],
  nodes: object[],
  events: string[] = [],
): Program {
  const parsed = parseQvm({
    version: '0.1',
    program: { nodes: nodes.map((n, i) => ({ id: `n${i}`, ...n })) },
    resources: { vqs, events },
  });
  assert.equal(parsed.violations, []);
  const v = verifyProgram(parsed.program!, {
    caps: ['CAP_ALLOC', 'CAP_COMPUTE', 'CAP_MEASURE'],
    strict: false,
    limits: {
      nodesMax: 100,
      qubitsLiveMax: 100,
      qubitsPerClusterMax: 26,
      physicalQubitsMax: 1e6,
      stateBytesMax: 2 ** 30,
    },
    bound,
  });
  assert.equal(
    v.violations.filter((x) => x.severity === 'error'),
    [],
  );
  return parsed.program!;
}

function close(actual: Float64Array, expected: number[], what: string): void {
  assert.is(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs(actual[i]! - expected[i]!) < 1e-12,
      `${what}[${i}] = ${actual[i]}, expected ${expected[i]}`,
    );
  }
}

test('H on a bound qubit in |+> leaves it in |0>; nothing measured is one empty key', () => {
  const p = boundProgram(['q'], ['q'], [{ op: 'APPLY_H', vqs: ['q'] }]);
  const out = runBound({
    program: p,
    seed: '1',
    shotOutcomesMax: 1,
    state: Float64Array.of(R, 0, R, 0),
    width: 1,
    bound: [{ name: 'q', bit: 0 }],
    alloc,
  });
  close(out.state, [1, 0, 0, 0], 'state');
  assert.equal(out.counts, { '': 1 });
  assert.is(out.shotsDone, 1);
});

test('measuring one half of a Bell pair collapses the spectator half with it', () => {
  const p = boundProgram(['q'], ['q'], [{ op: 'MEASURE_Z', vqs: ['q'], produces: ['m'] }], ['m']);
  const seen = new Set<string>();
  for (let seed = 0; seed < 40; seed++) {
    const out = runBound({
      program: p,
      seed: String(seed),
      shotOutcomesMax: 0,
      state: Float64Array.of(R, 0, 0, 0, 0, 0, R, 0),
      width: 2,
      bound: [{ name: 'q', bit: 1 }],
      alloc,
    });
    const m = Object.keys(out.counts)[0]!;
    seen.add(m);
    close(
      out.state,
      m === '0' ? [1, 0, 0, 0, 0, 0, 0, 0] : [0, 0, 0, 0, 0, 0, 1, 0],
      `seed ${seed}`,
    );
  }
  assert.equal([...seen].sort(), ['0', '1'], 'both outcomes occur over 40 seeds');
});

test('a program qubit entangled with a bound one is measured out and split off', () => {
  const p = boundProgram(
    ['q', 'a'],
    ['q'],
    [
      { op: 'ALLOC_LQ', vqs: ['a'], args: { n: 1 } },
      { op: 'APPLY_CNOT', vqs: ['q', 'a'] },
      { op: 'MEASURE_Z', vqs: ['a'], produces: ['m'] },
      { op: 'FREE_LQ', vqs: ['a'] },
    ],
    ['m'],
  );
  const seen = new Set<string>();
  for (let seed = 0; seed < 40; seed++) {
    const out = runBound({
      program: p,
      seed: String(seed),
      shotOutcomesMax: 0,
      state: Float64Array.of(R, 0, R, 0),
      width: 1,
      bound: [{ name: 'q', bit: 0 }],
      alloc,
    });
    const m = Object.keys(out.counts)[0]!;
    seen.add(m);
    // Measuring the copy collapses q to the same value; q alone (one qubit) is what remains.
    close(out.state, m === '0' ? [1, 0, 0, 0] : [0, 0, 1, 0], `seed ${seed}`);
    assert.is(out.largestState, 2);
  }
  assert.equal([...seen].sort(), ['0', '1']);
});

test('an unmeasured program qubit entangled with a bound one is measured out at the end', () => {
  const p = boundProgram(
    ['q', 'a'],
    ['q'],
    [
      { op: 'ALLOC_LQ', vqs: ['a'], args: { n: 1 } },
      { op: 'APPLY_H', vqs: ['a'] },
      { op: 'APPLY_CNOT', vqs: ['a', 'q'] },
    ],
  );
  const states = new Set<string>();
  for (let seed = 0; seed < 40; seed++) {
    const out = runBound({
      program: p,
      seed: String(seed),
      shotOutcomesMax: 0,
      state: Float64Array.of(1, 0, 0, 0),
      width: 1,
      bound: [{ name: 'q', bit: 0 }],
      alloc,
    });
    const one = Math.abs(out.state[2]!) > 0.5;
    close(out.state, one ? [0, 0, 1, 0] : [1, 0, 0, 0], `seed ${seed}`);
    states.add(one ? '1' : '0');
  }
  assert.equal([...states].sort(), ['0', '1'], 'the release-like measurement takes both values');
});

test('an X measurement leaves a bound qubit in the eigenstate it read', () => {
  const p = boundProgram(['q'], ['q'], [{ op: 'MEASURE_X', vqs: ['q'], produces: ['m'] }], ['m']);
  for (let seed = 0; seed < 20; seed++) {
    const out = runBound({
      program: p,
      seed: String(seed),
      shotOutcomesMax: 0,
      state: Float64Array.of(1, 0, 0, 0),
      width: 1,
      bound: [{ name: 'q', bit: 0 }],
      alloc,
    });
    const m = Object.keys(out.counts)[0]!;
    close(out.state, m === '0' ? [R, 0, R, 0] : [R, 0, -R, 0], `seed ${seed}`);
  }
});

test('the same seed and state give bit-identical results', () => {
  const p = boundProgram(
    ['q', 'r', 'a'],
    ['q', 'r'],
    [
      { op: 'ALLOC_LQ', vqs: ['a'], args: { n: 1 } },
      { op: 'APPLY_RY', vqs: ['q'], args: { theta: 0.7 } },
      { op: 'APPLY_CNOT', vqs: ['q', 'a'] },
      { op: 'MEASURE_Z', vqs: ['a'], produces: ['m'] },
      { op: 'APPLY_X', vqs: ['r'], guard: { event: 'm', equals: 1 } },
      { op: 'APPLY_RX', vqs: ['r'], args: { theta: 0.3 } },
      { op: 'FREE_LQ', vqs: ['a'] },
    ],
    ['m'],
  );
  const once = (seed: string) =>
    runBound({
      program: p,
      seed,
      shotOutcomesMax: 1,
      state: Float64Array.of(0.6, 0, 0, 0.8, 0, 0, 0, 0),
      width: 2,
      bound: [
        { name: 'q', bit: 0 },
        { name: 'r', bit: 1 },
      ],
      alloc,
    });
  for (const seed of ['5', '77', '18446744073709551615']) {
    const a = once(seed);
    const b = once(seed);
    assert.equal([...a.state], [...b.state], `seed ${seed}`);
    assert.equal(a.counts, b.counts);
    assert.equal(a.shotOutcomes, b.shotOutcomes);
  }
});

test('runBatch with a bound job merges the parts in order and returns one cluster', () => {
  const p = boundProgram(['c', 't'], ['c', 't'], [{ op: 'APPLY_CNOT', vqs: ['c', 't'] }]);
  const out = runBatch(
    {
      parts: [
        { qubits: ['q1'], state: Float64Array.of(0, 0, 1, 0) }, // |1>
        { qubits: ['q2'], state: Float64Array.of(1, 0, 0, 0) }, // |0>
      ],
      ops: [],
      split: [],
      boundJob: {
        program: p,
        seed: '3',
        shotOutcomesMax: 0,
        bound: [
          { name: 'c', qubitId: 'q1' },
          { name: 't', qubitId: 'q2' },
        ],
      },
    },
    alloc,
  );
  assert.is(out.clusters.length, 1);
  assert.equal(out.clusters[0]!.qubits, ['q1', 'q2']);
  close(out.clusters[0]!.state, [0, 0, 0, 0, 0, 0, 1, 0], '|11>'); // bit 0 = q1, bit 1 = q2
  assert.equal(out.outcomes, []);
  assert.equal(out.run?.counts, { '': 1 });
});

test.run();
