/**
 * The fusion planner: blocks stay within k qubits, gates only move past gates they commute with
 * (disjoint ones), and a fused program is the same unitary (the conformance suite compares
 * amplitudes; here the plan's shape and the pass counts it saves).
 */
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseQasm } from '../../src/kernel/program/qasm.js';
import { ghzQasm, qftQasm, randomQasm } from '../../src/sim/circuits.js';
import { blockMatrix, permutationMatrix, planFusion } from '../../src/sim/fusion.js';
import { NATIVE_COSTS, jsKernels } from '../../src/sim/kernels.js';
import { fusionStats, stateOpCount } from '../../src/sim/program.js';

type G = { qubits: number[]; domain: number; id: number };
const g = (id: number, qubits: number[], domain = 0): G => ({ id, qubits, domain });

test('planFusion: a chain on two qubits → one block of every gate', () => {
  const gates = [g(0, [0]), g(1, [1]), g(2, [0, 1]), g(3, [0]), g(4, [1, 0])];
  assert.equal(
    planFusion(gates, 2).map((b) => b.map((x) => x.id)),
    [[0, 1, 2, 3, 4]],
  );
});

test('planFusion: a gate past a skipped non-commuting gate → stays after it', () => {
  // 0 on {0,1} opens the block (k=2); 1 on {1,2} cannot join and blocks 1 and 2; 2 on {1} must
  // not move ahead of gate 1; 3 on {0} may (disjoint from gate 1).
  const gates = [g(0, [0, 1]), g(1, [1, 2]), g(2, [1]), g(3, [0])];
  assert.equal(
    planFusion(gates, 2).map((b) => b.map((x) => x.id)),
    [
      [0, 3],
      [1, 2],
    ],
  );
});

test('planFusion: gates of different domains → never in one block', () => {
  const gates = [g(0, [0], 0), g(1, [0], 1), g(2, [0], 0)];
  assert.equal(
    planFusion(gates, 3).map((b) => b.map((x) => x.id)),
    [[0, 2], [1]],
  );
});

test('planFusion: random gate lists (fast-check, seed printed) → a valid reordering', () => {
  const seed = Date.now() % 2 ** 31;
  console.log(`fusion property seed ${seed}`);
  const gate = fc.record({
    qubits: fc.uniqueArray(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 3 }),
    domain: fc.integer({ min: 0, max: 1 }),
  });
  fc.assert(
    fc.property(fc.array(gate, { maxLength: 60 }), fc.integer({ min: 1, max: 5 }), (raw, k) => {
      const gates = raw.map((x, id) => ({ ...x, id }));
      const blocks = planFusion(gates, k);
      const order = blocks.flat().map((x) => x.id);
      assert.equal(
        [...order].sort((a, b) => a - b),
        gates.map((x) => x.id),
        'each gate once',
      );
      for (const b of blocks) {
        const qs = new Set(b.flatMap((x) => x.qubits));
        assert.ok(b.length === 1 || qs.size <= k, 'a block of several gates fits in k qubits');
        assert.ok(
          b.every((x) => x.domain === b[0]!.domain),
          'one domain per block',
        );
      }
      // Any two gates sharing a qubit and a domain keep their relative order.
      const pos = new Map(order.map((id, i) => [id, i]));
      for (let i = 0; i < gates.length; i++) {
        for (let j = i + 1; j < gates.length; j++) {
          const a = gates[i]!;
          const b = gates[j]!;
          const share = a.domain === b.domain && a.qubits.some((q) => b.qubits.includes(q));
          if (share) assert.ok(pos.get(a.id)! < pos.get(b.id)!, `gates ${i} and ${j} swapped`);
        }
      }
    }),
    { seed, numRuns: 2000 },
  );
});

test('blockMatrix: CNOT then CNOT → identity; CNOT·SWAP·CNOT on reversed operands → SWAP', () => {
  const cnot = permutationMatrix('CNOT');
  const id = blockMatrix(
    [
      { qubits: [0, 1], matrix: cnot },
      { qubits: [0, 1], matrix: cnot },
    ],
    [0, 1],
  );
  assert.equal([...id], [...blockMatrix([], [0, 1])]);
  const swap = blockMatrix(
    [
      { qubits: [0, 1], matrix: cnot },
      { qubits: [1, 0], matrix: cnot },
      { qubits: [0, 1], matrix: cnot },
    ],
    [0, 1],
  );
  assert.equal([...swap], [...permutationMatrix('SWAP')]);
});

test('stateOpCount: random 24-qubit depth-20 circuit → fusion cuts the passes', () => {
  const p = parseQasm(randomQasm(24, 20, 1)).program!;
  const unfused = stateOpCount(p, 0, NATIVE_COSTS);
  const k3 = stateOpCount(p, 3, NATIVE_COSTS);
  const k4 = stateOpCount(p, 4, NATIVE_COSTS);
  // 710 gates (480 rotations, 230 CZ); terminal measurements are sampled, not ops.
  assert.is(unfused, 710);
  assert.ok(k3 < unfused / 4, `k=3: ${k3} passes`);
  assert.ok(k4 < k3, `k=4: ${k4} passes, k=3: ${k3}`);
});

test('cost model: GHZ-16 (a CNOT chain) → not fused on native (two CNOTs beat one dense pass)', () => {
  const p = parseQasm(ghzQasm(16)).program!;
  assert.is(stateOpCount(p, 3, NATIVE_COSTS), stateOpCount(p, 0, NATIVE_COSTS));
});

test('cost model: random 12q at k=3 on JS (dense k=3 is slow there) → no 3-qubit dense blocks', () => {
  const p = parseQasm(randomQasm(12, 10, 5)).program!;
  const s = fusionStats(p, 3, jsKernels.costs);
  const k2 = fusionStats(p, 2, jsKernels.costs);
  assert.ok(s.ops > k2.ops, `k=3 keeps more ops unfused (${s.ops}) than k=2 (${k2.ops}) on JS`);
});

test('fusionStats: QFT-12 at k=3 → its controlled-phase blocks run as diagonals, not dense', () => {
  const p = parseQasm(qftQasm(12)).program!;
  const s = fusionStats(p, 3, NATIVE_COSTS);
  // Each cp lowers to RZ, CNOT, RZ, CNOT, RZ: diagonal as a product, so a block of them is too.
  assert.ok(s.diagonal > s.dense, `${s.diagonal} diagonal vs ${s.dense} dense of ${s.ops}`);
  assert.ok(s.diagonal > 0 && s.dense > 0);
});

test.run();
