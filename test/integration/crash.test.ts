/**
 * Crash durability: 20 cycles of `kill -9` at a random moment during streams of acknowledged
 * ApplyGates (X on a qubit), then restart and verify. Every acknowledged X is reflected and
 * nothing else: each qubit's measured parity equals the parity of its acknowledged X gates, or of
 * those plus the one call in flight at the kill. A Bell pair prepared before the crash still
 * measures correlated. At the end the whole audit chain verifies.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openStateOffline } from '../../src/store/offline.js';
import {
  type Daemon,
  call,
  kernelClient,
  newTenant,
  removeStateDir,
  sleep,
  startDaemon,
  tempStateDir,
} from '../support/daemon.js';

const CYCLES = 20;
const STREAMS = 4;

interface Q {
  qubit_id: string;
  handle: string;
}

test('crash: 20 × kill -9 during acknowledged ApplyGates → every acked X reflected, nothing else', async () => {
  const stateDir = tempStateDir();
  let d: Daemon = await startDaemon(stateDir);
  const t = await newTenant(d, 'crashy');
  let client = t.client;
  const session = (await call<{ session_handle: string }>(client, 'OpenSession', {}))
    .session_handle;
  try {
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const qs = (
        await call<{ qubits: Q[] }>(client, 'AllocateQubits', {
          session_handle: session,
          count: STREAMS + 2,
        })
      ).qubits;
      const [b0, b1] = [qs[STREAMS]!, qs[STREAMS + 1]!];
      await call(client, 'ApplyGates', {
        gates: [
          { kind: 'GATE_KIND_H', qubits: [b0.handle] },
          { kind: 'GATE_KIND_CNOT', qubits: [b0.handle, b1.handle] },
        ],
      });
      // A 12-qubit GHZ state (simulated on the worker pool, replayed after the crash).
      const ghz = (
        await call<{ qubits: Q[] }>(client, 'AllocateQubits', {
          session_handle: session,
          count: 12,
        })
      ).qubits;
      await call(client, 'ApplyGates', {
        gates: [
          { kind: 'GATE_KIND_H', qubits: [ghz[0]!.handle] },
          ...ghz
            .slice(1)
            .map((q) => ({ kind: 'GATE_KIND_CNOT', qubits: [ghz[0]!.handle, q.handle] })),
        ],
      });
      const acked = new Array(STREAMS).fill(0);
      const inFlight = new Array(STREAMS).fill(0);
      let dead = false;
      const streams = qs.slice(0, STREAMS).map(async (q, i) => {
        while (!dead) {
          inFlight[i] = 1;
          try {
            await call(client, 'ApplyGates', {
              gates: [{ kind: 'GATE_KIND_X', qubits: [q.handle] }],
            });
            acked[i]++;
            inFlight[i] = 0;
          } catch {
            return; // the daemon died under this call: it stays counted as in flight
          }
        }
      });
      // The kill lands at a random point once the streams are running: waiting for the first
      // acknowledgement first keeps a loaded CI machine from killing before any call completed.
      for (let waited = 0; !acked.some((n) => n > 0) && waited < 10_000; waited += 5)
        await sleep(5);
      await sleep(Math.floor(Math.random() * 400));
      await d.kill();
      dead = true;
      await Promise.all(streams);
      client.close();

      d = await startDaemon(stateDir);
      client = kernelClient(d, t.apiKey);
      const out = (
        await call<{ outcomes: number[] }>(client, 'MeasureQubits', {
          measurements: qs.map((q) => ({ qubit: q.handle, basis: 'BASIS_Z' })),
        })
      ).outcomes;
      for (let i = 0; i < STREAMS; i++) {
        const ok = out[i] === acked[i] % 2 || (inFlight[i] === 1 && out[i] === (acked[i] + 1) % 2);
        assert.ok(
          ok,
          `cycle ${cycle} stream ${i}: measured ${out[i]}, acked ${acked[i]}, in flight ${inFlight[i]}`,
        );
      }
      assert.ok(
        acked.some((n) => n > 0),
        `cycle ${cycle}: some X gates were acknowledged`,
      );
      assert.is(out[STREAMS], out[STREAMS + 1], `cycle ${cycle}: Bell pair still correlated`);
      const g = (
        await call<{ outcomes: number[] }>(client, 'MeasureQubits', {
          measurements: ghz.map((q) => ({ qubit: q.handle, basis: 'BASIS_Z' })),
        })
      ).outcomes.join('');
      assert.ok(
        g === '0'.repeat(12) || g === '1'.repeat(12),
        `cycle ${cycle}: GHZ-12 after replay ${g}`,
      );
      await call(client, 'ReleaseQubits', { qubit_handles: [...qs, ...ghz].map((q) => q.handle) });
    }
  } finally {
    client.close();
    await d.stop();
  }
  const state = openStateOffline(stateDir);
  const store = state.store;
  const broken = store.verifyAudit();
  const head = store.auditHead();
  await state.close();
  assert.is(broken, null, `audit chain intact (${JSON.stringify(broken)})`);
  assert.ok(head.seq > CYCLES * 10, `audit chain has records: ${head.seq}`);
  removeStateDir(stateDir);
});

test.run();
