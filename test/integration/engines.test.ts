/**
 * Engine selection as an operator and a tenant see it: the daemon's start-up log names the engine
 * and why, GetJobResult reports the engine and fusion width that ran the job, the same seed gives
 * the same counts on both engines, and a bad setting stops the daemon with a message naming it.
 * Real daemons on loopback ports, real pool.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ghzQasm } from '../../src/sim/circuits.js';
import { loadNative } from '../../src/sim/kernels.js';
import {
  type Daemon,
  jobClient,
  newTenant,
  removeStateDir,
  runJob,
  startDaemon,
  tempStateDir,
} from '../support/daemon.js';

const NATIVE_BUILT = 'addon' in loadNative();
const GHZ = ghzQasm(14);
const ALL0 = '0'.repeat(14);
const ALL1 = '1'.repeat(14);

/** The start-up log's `simulation engine` record. */
function engineLog(d: Daemon): Record<string, unknown> {
  const line = d
    .output()
    .split('\n')
    .find((l) => l.includes('"msg":"simulation engine"'));
  assert.ok(line, `no simulation engine line in:\n${d.output()}`);
  return JSON.parse(line!) as Record<string, unknown>;
}

/** Runs GHZ-14 at 2,000 shots with a fixed seed on a fresh daemon; returns log, engine, counts. */
async function ghzOn(env: NodeJS.ProcessEnv) {
  const d = await startDaemon(tempStateDir(), env);
  try {
    const t = await newTenant(d, 'engines');
    const jobs = jobClient(d, t.apiKey);
    const { job, result } = await runJob(jobs, {
      program: { format: 'PROGRAM_FORMAT_OPENQASM2', source: GHZ },
      shots: 2000,
      seed: '20261201',
    });
    jobs.close();
    t.client.close();
    assert.is(job.state, 'JOB_STATE_DONE', JSON.stringify(job));
    return {
      log: engineLog(d),
      engine: String(result!.engine),
      counts: result!.counts as Record<string, string>,
    };
  } finally {
    await d.stop();
    removeStateDir(d.stateDir);
  }
}

test('QMK_SIM_ENGINE=js → log names js and the setting; jobs report "js fused k=2"', async () => {
  const r = await ghzOn({ QMK_SIM_ENGINE: 'js' });
  assert.is(r.log.name, 'js');
  assert.is(r.log.reason, 'QMK_SIM_ENGINE=js');
  assert.is(r.log.fusion, 2);
  assert.is(r.engine, 'js fused k=2');
  assert.equal(Object.keys(r.counts).sort(), [ALL0, ALL1]);
});

test('default selection → the native engine when built (else js, saying why); same seed, same counts', async () => {
  const native = await ghzOn({ QMK_SIM_ENGINE: '' });
  if (NATIVE_BUILT) {
    assert.is(native.log.name, 'native');
    assert.ok(
      ['avx512f', 'avx2', 'default'].includes(String(native.log.isa)),
      String(native.log.isa),
    );
    assert.is(native.engine, 'native fused k=3');
  } else {
    assert.is(native.log.name, 'js');
    assert.match(String(native.log.reason), /not built|failed to load/);
  }
  const js = await ghzOn({ QMK_SIM_ENGINE: 'js', QMK_SIM_FUSION: '0' });
  assert.is(js.engine, 'js');
  // GHZ amplitudes are exact (1/√2 and 0) in both engines, so the seeded draws agree exactly.
  assert.equal(native.counts, js.counts);
});

test('QMK_SIM_ENGINE=quantum → the daemon does not start, and says which setting is wrong', async () => {
  let message = '';
  try {
    const d = await startDaemon(tempStateDir(), { QMK_SIM_ENGINE: 'quantum' });
    await d.stop();
    removeStateDir(d.stateDir);
  } catch (e) {
    message = (e as Error).message;
  }
  assert.match(message, /QMK_SIM_ENGINE=quantum is not js, native or auto/);
});

test.run();
