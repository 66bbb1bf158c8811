/**
 * Quantum behaviour through the real daemon, as a tenant client uses it: Bell statistics, GHZ,
 * rotations against analytic probabilities, the Toffoli truth table, all four measurement bases.
 * Statistical checks accept a frequency within 5σ of p and require impossible outcomes to be absent.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type AnyClient,
  type Daemon,
  call,
  newTenant,
  removeStateDir,
  startDaemon,
} from '../support/daemon.js';

let d: Daemon;
let client: AnyClient;
let session: string;

interface Q {
  qubit_id: string;
  handle: string;
}

async function alloc(n: number): Promise<Q[]> {
  const r = await call<{ qubits: Q[] }>(client, 'AllocateQubits', {
    session_handle: session,
    count: n,
  });
  return r.qubits;
}

const gate = (kind: string, qs: Q[], theta = 0) => ({
  kind,
  qubits: qs.map((q) => q.handle),
  theta,
});

async function apply(gates: object[]): Promise<void> {
  await call(client, 'ApplyGates', { gates });
}

async function measure(qs: Q[], basis = 'BASIS_Z', angle = 0): Promise<number[]> {
  const r = await call<{ outcomes: number[] }>(client, 'MeasureQubits', {
    measurements: qs.map((q) => ({ qubit: q.handle, basis, angle })),
  });
  return r.outcomes;
}

async function release(qs: Q[]): Promise<void> {
  await call(client, 'ReleaseQubits', { qubit_handles: qs.map((q) => q.handle) });
}

function within5Sigma(count: number, n: number, p: number): boolean {
  const sigma = Math.sqrt((p * (1 - p)) / n);
  return Math.abs(count / n - p) <= 5 * sigma + 1e-12;
}

test.before(async () => {
  d = await startDaemon();
  const t = await newTenant(d, 'quantum');
  client = t.client;
  const s = await call<{ session_handle: string }>(client, 'OpenSession', {});
  session = s.session_handle;
});

test.after(async () => {
  client?.close();
  if (d) {
    await d.stop();
    removeStateDir(d.stateDir);
  }
});

test('bell: H then CNOT over 1000 pairs → 00 and 11 about half each, never 01 or 10', async () => {
  const counts: Record<string, number> = { '00': 0, '01': 0, '10': 0, '11': 0 };
  const ROUNDS = 10;
  const PAIRS = 100;
  for (let r = 0; r < ROUNDS; r++) {
    const qs = await alloc(2 * PAIRS);
    const pairs = Array.from({ length: PAIRS }, (_, i) => [qs[2 * i]!, qs[2 * i + 1]!] as const);
    await apply(
      pairs.flatMap(([a, b]) => [gate('GATE_KIND_H', [a]), gate('GATE_KIND_CNOT', [a, b])]),
    );
    const out = await measure(qs);
    for (let i = 0; i < PAIRS; i++) {
      const key = `${out[2 * i]}${out[2 * i + 1]}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    await release(qs);
  }
  const n = ROUNDS * PAIRS;
  assert.is(counts['01'], 0, 'never 01');
  assert.is(counts['10'], 0, 'never 10');
  assert.ok(within5Sigma(counts['00']!, n, 0.5), `00 count ${counts['00']} of ${n}`);
  assert.ok(within5Sigma(counts['11']!, n, 0.5), `11 count ${counts['11']} of ${n}`);
});

test('ghz: 10 qubits → all zeros or all ones, both seen', async () => {
  let zeros = 0;
  let ones = 0;
  const RUNS = 100;
  for (let r = 0; r < RUNS; r++) {
    const qs = await alloc(10);
    await apply([
      gate('GATE_KIND_H', [qs[0]!]),
      ...qs.slice(1).map((q) => gate('GATE_KIND_CNOT', [qs[0]!, q])),
    ]);
    const out = await measure(qs);
    const s = out.join('');
    assert.ok(s === '0000000000' || s === '1111111111', `GHZ outcome ${s}`);
    if (s[0] === '0') zeros++;
    else ones++;
    await release(qs);
  }
  assert.ok(within5Sigma(zeros, RUNS, 0.5), `zeros ${zeros}`);
  assert.is(zeros + ones, RUNS);
});

test('ghz: 14 qubits (above the inline size: runs on the worker pool) → all zeros or all ones', async () => {
  const seen = new Set<string>();
  for (let r = 0; r < 30; r++) {
    const qs = await alloc(14);
    await apply([
      gate('GATE_KIND_H', [qs[0]!]),
      ...qs.slice(1).map((q) => gate('GATE_KIND_CNOT', [qs[0]!, q])),
    ]);
    const s = (await measure(qs)).join('');
    assert.ok(s === '0'.repeat(14) || s === '1'.repeat(14), `GHZ-14 outcome ${s}`);
    seen.add(s);
    await release(qs);
  }
  assert.is(seen.size, 2, 'both outcomes seen in 30 runs');
});

test('rotations: RX, RY at several angles → P(1) = sin²(θ/2) within 5σ; RZ on |0> → always 0', async () => {
  const N = 400;
  for (const kind of ['GATE_KIND_RX', 'GATE_KIND_RY']) {
    for (const theta of [Math.PI / 3, Math.PI / 2, (2 * Math.PI) / 3, Math.PI]) {
      const qs = await alloc(N);
      await apply(qs.map((q) => gate(kind, [q], theta)));
      const ones = (await measure(qs)).filter((x) => x === 1).length;
      const p = Math.sin(theta / 2) ** 2;
      if (p > 1 - 1e-12) assert.is(ones, N, `${kind}(π) always 1`);
      else
        assert.ok(within5Sigma(ones, N, p), `${kind}(${theta.toFixed(3)}): ${ones}/${N} vs p=${p}`);
      await release(qs);
    }
  }
  const qs = await alloc(50);
  await apply(qs.map((q) => gate('GATE_KIND_RZ', [q], 1.234)));
  assert.equal(await measure(qs), new Array(50).fill(0));
  await release(qs);
});

test('toffoli: every basis input → target flips exactly when both controls are 1', async () => {
  for (let input = 0; input < 8; input++) {
    const qs = await alloc(3);
    const bits = [(input >> 2) & 1, (input >> 1) & 1, input & 1];
    const prep = qs.filter((_, i) => bits[i] === 1).map((q) => gate('GATE_KIND_X', [q]));
    await apply([...prep, gate('GATE_KIND_TOFFOLI', qs)]);
    const out = await measure(qs);
    const expectTarget = bits[2]! ^ (bits[0]! & bits[1]!);
    assert.equal(out, [bits[0], bits[1], expectTarget], `input ${bits.join('')}`);
    await release(qs);
  }
});

test('bases: |+> in X → 0; |+> in Z → uniform; |+i> in Y → 0; |+> along π/2 → 0, along 0 → uniform', async () => {
  const N = 400;
  const plus = async () => {
    const qs = await alloc(N);
    await apply(qs.map((q) => gate('GATE_KIND_H', [q])));
    return qs;
  };
  let qs = await plus();
  assert.equal(await measure(qs, 'BASIS_X'), new Array(N).fill(0));
  await release(qs);
  qs = await plus();
  const z = (await measure(qs, 'BASIS_Z')).filter((x) => x === 1).length;
  assert.ok(within5Sigma(z, N, 0.5), `Z on |+>: ${z}`);
  await release(qs);
  qs = await alloc(N);
  await apply(qs.flatMap((q) => [gate('GATE_KIND_H', [q]), gate('GATE_KIND_S', [q])]));
  assert.equal(await measure(qs, 'BASIS_Y'), new Array(N).fill(0));
  await release(qs);
  qs = await plus();
  const y = (await measure(qs, 'BASIS_Y')).filter((x) => x === 1).length;
  assert.ok(within5Sigma(y, N, 0.5), `Y on |+>: ${y}`);
  await release(qs);
  qs = await plus();
  assert.equal(await measure(qs, 'BASIS_ANGLE', Math.PI / 2), new Array(N).fill(0));
  await release(qs);
  qs = await plus();
  const a = (await measure(qs, 'BASIS_ANGLE', Math.PI / 6)).filter((x) => x === 0).length;
  assert.ok(within5Sigma(a, N, (1 + Math.sin(Math.PI / 6)) / 2), `angle π/6 zeros: ${a}`);
  await release(qs);
});

test('measurement: the qubit stays in its post-measurement state → a second Z measurement agrees', async () => {
  const qs = await alloc(100);
  await apply(qs.map((q) => gate('GATE_KIND_H', [q])));
  const first = await measure(qs);
  const second = await measure(qs);
  assert.equal(second, first);
  await release(qs);
});

test.run();
