/**
 * End-to-end property over the job path's parts: random valid QVM programs are accepted (parsed
 * and verified as SubmitJob does) and run on the real Piscina pool; random mutations of them are
 * refused with violations. Nothing may throw, hang (each run has a time limit) or crash a worker
 * (a crashed worker rejects its task, which fails the property). The seed is printed;
 * `FC_SEED=<seed>` reruns with it.
 */
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseProgram } from '../../src/kernel/program-check.js';
import {
  type VerifyContext,
  mergeViolations,
  verifyProgram,
} from '../../src/kernel/program/verify.js';
import { PoolSimulator } from '../../src/sim/front.js';
import { MUTATIONS, junkArb, programArb } from '../support/qvm-arb.js';

const RUNS = 10_000;
const SHOTS = 16;
const SEED = process.env.FC_SEED === undefined ? Date.now() % 2 ** 31 : Number(process.env.FC_SEED);
console.log(`program-property: fast-check seed ${SEED} (rerun with FC_SEED=${SEED})`);

const CTX: VerifyContext = {
  caps: ['CAP_ALLOC', 'CAP_COMPUTE', 'CAP_MEASURE', 'CAP_LINK', 'CAP_TELEPORT', 'CAP_MAGIC'],
  strict: false,
  limits: {
    nodesMax: 10_000,
    qubitsLiveMax: 1_000,
    qubitsPerClusterMax: 26,
    physicalQubitsMax: 1e9,
    stateBytesMax: 2 ** 40,
  },
};

/** Parse and verify a QVM JSON text as the job path does: the errors, and the program if none. */
function accept(source: string) {
  const parsed = parseProgram('qvm', source);
  if (parsed.program === null) return { program: null, errors: parsed.violations };
  const verified = verifyProgram(parsed.program, CTX);
  const errors = mergeViolations(parsed.violations, verified.violations).filter(
    (v) => v.severity === 'error',
  );
  return { program: errors.length === 0 ? parsed.program : null, errors };
}

const pool = new PoolSimulator({ threads: 2 });

test.after(async () => {
  await pool.close();
});

test(`property: ${RUNS} random programs are accepted and run on the pool; their mutations are refused`, async () => {
  const kinds = Object.keys(MUTATIONS);
  let ran = 0;
  let refused = 0;
  await fc.assert(
    fc.asyncProperty(
      programArb,
      fc.nat(kinds.length - 1),
      fc.nat(),
      junkArb,
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      async (json, kind, r, junk, seed) => {
        const valid = accept(JSON.stringify(json));
        if (valid.program === null)
          throw new Error(`a valid program was refused: ${JSON.stringify(valid.errors)}`);
        const out = await pool.run({
          program: { plan: pool.prepare(valid.program, SHOTS).plan },
          shots: SHOTS,
          seed: seed.toString(),
          shotOutcomesMax: 0,
        });
        const total = Object.values(out.counts).reduce((a, b) => a + b, 0);
        if (out.stopped !== 0 || out.shotsDone !== SHOTS || total !== SHOTS) {
          throw new Error(
            `run: stopped ${out.stopped}, ${out.shotsDone} shots, counts ${JSON.stringify(out.counts)}`,
          );
        }
        ran++;
        const mutated = structuredClone(json);
        MUTATIONS[kinds[kind]!]!(mutated, r, junk);
        // JSON text, as a client sends it: NaN and Infinity become null, still refused.
        const bad = accept(JSON.stringify(mutated));
        if (bad.program !== null || bad.errors.length === 0) {
          throw new Error(`${kinds[kind]} was accepted: ${JSON.stringify(mutated)}`);
        }
        refused++;
      },
    ),
    // A run takes milliseconds; the per-run bound only turns a hang into a report with the seed,
    // so it is generous enough for a machine running two suites at once.
    { numRuns: RUNS, seed: SEED, timeout: 120_000 },
  );
  assert.is(ran, RUNS);
  assert.is(refused, RUNS);
});

test.run();
