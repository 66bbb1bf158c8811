/**
 * The conformance suite with the addon out of the picture: QMK_SIM_ENGINE=js selects the
 * JavaScript engine exactly as a missing or unloadable addon does, and every subject (unfused and
 * fused) must still pass.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';

process.env.QMK_SIM_ENGINE = 'js';
const { activeKernels, engineInfo, FUSION_WIDTH_DEFAULT, fusionWidth } = await import(
  '../../src/sim/kernels.js'
);
const { registerConformance, registerInteractive, subjectsFor } = await import('./conformance.js');

test('QMK_SIM_ENGINE=js → the JavaScript engine runs, with its default fusion width', () => {
  assert.is(activeKernels().name, 'js');
  assert.is(engineInfo().reason, 'QMK_SIM_ENGINE=js');
  assert.is(fusionWidth(), FUSION_WIDTH_DEFAULT.js);
});

registerInteractive(test, activeKernels());
registerConformance(
  test,
  subjectsFor(activeKernels()).filter((s) => [0, fusionWidth(), 5].includes(s.fusion)),
);

test.run();
