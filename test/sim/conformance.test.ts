/**
 * Engine conformance on every engine this machine can load: the reference engine with fusion,
 * and the native addon (unfused, fused, one and two threads) when it is built. Without the addon
 * the native rows are absent and `conformance-js.test.ts` covers that configuration.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ghzQasm, randomQasm } from '../../src/sim/circuits.js';
import { zeroState } from '../../src/sim/engine.js';
import { jsKernels, loadNative, nativeKernels } from '../../src/sim/kernels.js';
import { finalStates } from '../../src/sim/program.js';
import {
  AMPLITUDE_TOL,
  maxDiff,
  program,
  registerConformance,
  registerInteractive,
  subjectsFor,
} from './conformance.js';

const loaded = loadNative();
const native = 'addon' in loaded ? loaded.addon : null;
if (native === null)
  console.log(
    `conformance: native engine not loaded (${'error' in loaded ? loaded.error : ''}); JS only`,
  );

registerConformance(test, [
  ...subjectsFor(jsKernels).filter((s) => s.fusion !== 0),
  ...(native === null ? [] : subjectsFor(nativeKernels(native))),
]);

if (native !== null) {
  const kernels = nativeKernels(native);
  registerInteractive(test, kernels);

  test('native: 18-qubit random circuit on 1 and 2 threads → identical amplitudes, equal to JS', () => {
    const p = program(randomQasm(18, 6, 3));
    native.setThreads(1);
    const one = finalStates(p, { kernels, fusion: 3 })[0]!.state;
    native.setThreads(2);
    const two = finalStates(p, { kernels, fusion: 3 })[0]!.state;
    assert.ok(
      one.every((x, i) => x === two[i]),
      'thread count changes no amplitude bit',
    );
    const d = maxDiff(p, { kernels, fusion: 3 }, { kernels: jsKernels, fusion: 0 });
    assert.ok(d <= AMPLITUDE_TOL, `max |Δ| = ${d}`);
  });

  test('native: 18-qubit GHZ branch weights on 2 threads → 1/2 and 1/2', () => {
    native.setThreads(2);
    const s = finalStates(program(ghzQasm(18)), { kernels, fusion: 0 })[0]!.state;
    const w = new Float64Array(2);
    kernels.branchWeights(s, 18, 17, w);
    assert.ok(Math.abs(w[0]! - 0.5) < 1e-12 && Math.abs(w[1]! - 0.5) < 1e-12, `${w}`);
  });

  test('native: contract violations → negative codes, state untouched', () => {
    const s = zeroState(3);
    const m2 = new Float64Array(32);
    assert.is(native.applyDense(s, 3, Int32Array.of(0, 0), m2), -2, 'repeated qubit');
    assert.is(native.applyDense(s, 3, Int32Array.of(0, 3), m2), -2, 'qubit out of range');
    assert.is(native.applyDense(s, 3, Int32Array.of(0, 1), new Float64Array(8)), -3, 'matrix size');
    assert.is(native.applyDense(s, 4, Int32Array.of(0), new Float64Array(8)), -1, 'state length');
    assert.is(native.applyX(s, 3, 2 ** 2, 2), -2, 'control equals target');
    assert.is(native.applyPhase(s, 3, 0, -1, 0), -2, 'empty phase mask');
    assert.is(native.applySwap(s, 3, 1, 1), -2, 'swap with itself');
    assert.is(native.collapse(s, 3, 0, 2, 1), -4, 'outcome not 0 or 1');
    assert.equal([...s], [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  test('native: the dispatcher picked an instruction set this CPU has', () => {
    assert.ok(['avx512f', 'avx2', 'default'].includes(native.isa()), native.isa());
  });
}

test.run();
