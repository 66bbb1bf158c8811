/**
 * bench/denials: whether a denial tells another tenant's resource from a missing one by its time.
 * Three handles are refused NOT_FOUND with the same message: the caller's own released qubit
 * (missing), another tenant's live qubit, and another tenant's expired handle. Their latency
 * distributions are measured side by side, interleaved call by call so drift hits all three alike:
 * in-process (the kernel's handle check alone, per call) and through a real daemon (ApplyGates
 * over gRPC, what a client can observe).
 * Usage: npm run bench:denials [-- --calls 3000]
 */
import { parseArgs } from 'node:util';
import { KernelError } from '../src/kernel/errors.js';
import {
  call,
  callError,
  newTenant,
  removeStateDir,
  sleep,
  startDaemon,
  tempStateDir,
} from '../test/support/daemon.js';
import { kernelWithTenant } from '../test/support/fakes.js';

const { values } = parseArgs({ options: { calls: { type: 'string', default: '3000' } } });
const CALLS = Number(values.calls);
const PATHS = ['own missing qubit', "another tenant's qubit", "another tenant's expired handle"];

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

function table(title: string, unit: string, samples: number[][]): void {
  console.log(
    `\n${title}\n| path | p50 ${unit} | p90 ${unit} | p99 ${unit} | calls |\n|---|---|---|---|---|`,
  );
  PATHS.forEach((name, i) => {
    const xs = samples[i]!;
    const f = (x: number) => x.toFixed(unit === 'µs' ? 3 : 3);
    console.log(
      `| ${name} | ${f(pct(xs, 50))} | ${f(pct(xs, 90))} | ${f(pct(xs, 99))} | ${xs.length} |`,
    );
  });
  const p50s = samples.map((xs) => pct(xs, 50));
  const spread = (Math.max(...p50s) - Math.min(...p50s)) / Math.min(...p50s);
  console.log(`largest p50 difference between paths: ${(100 * spread).toFixed(1)} %`);
}

/** The kernel's handle check in-process, with a clock the bench moves to expire a handle. */
async function inProcess(): Promise<number[][]> {
  const { kernel: k, admin, principal: a, session: sa, clock } = await kernelWithTenant('pro');
  const b = k.principals.authenticate((await admin.createTenant('bench-b', 'pro', 0, [])).apiKey);
  const sb = await k.sessions.open(b, [], 0);
  const [own] = await k.sessions.allocate(a, sa, 1, '');
  const [theirs] = await k.sessions.allocate(b, sb.handle, 1, '');
  await k.sessions.release(a, [own!.handle]);
  const expiring = k.handles.attenuate(b, theirs!.handle, ['RIGHT_COMPUTE'], clock.now + 1000);
  clock.now += 2000;
  const handles = [own!.handle, theirs!.handle, expiring.handle];
  const samples: number[][] = [[], [], []];
  const check = (h: string) => {
    try {
      k.handles.verify(a, h, 'qubit', 'VQ', 1);
    } catch (err) {
      if (!(err instanceof KernelError) || err.code !== 'NOT_FOUND') throw err;
      return;
    }
    throw new Error('admitted');
  };
  for (const h of handles) for (let i = 0; i < 10_000; i++) check(h); // warm up
  const BATCH = 100;
  for (let round = 0; round < CALLS; round++) {
    for (let path = 0; path < 3; path++) {
      const h = handles[(round + path) % 3]!;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < BATCH; i++) check(h);
      samples[(round + path) % 3]!.push(Number(process.hrtime.bigint() - t0) / 1e3 / BATCH);
    }
  }
  return samples;
}

/** ApplyGates through a real daemon with each of the three handles. */
async function throughDaemon(): Promise<{ samples: number[][]; messages: string[] }> {
  const stateDir = tempStateDir();
  const d = await startDaemon(stateDir);
  try {
    const a = await newTenant(d, 'bench-a');
    const b = await newTenant(d, 'bench-b');
    const qubit = async (client: typeof a.client) => {
      const s = await call<{ session_handle: string }>(client, 'OpenSession', {});
      const q = await call<{ qubits: { handle: string }[] }>(client, 'AllocateQubits', {
        session_handle: s.session_handle,
        count: 1,
      });
      return q.qubits[0]!.handle;
    };
    const own = await qubit(a.client);
    const theirs = await qubit(b.client);
    await call(a.client, 'ReleaseQubits', { qubit_handles: [own] });
    const soon = Date.now() + 1000;
    const expiring = (
      await call<{ handle: string }>(b.client, 'AttenuateHandle', {
        handle: theirs,
        rights: ['RIGHT_COMPUTE'],
        expires_at_unix_ms: soon,
      })
    ).handle;
    await sleep(Math.max(0, soon - Date.now()) + 100);
    const handles = [own, theirs, expiring];
    const gate = (h: string) => ({ gates: [{ kind: 'GATE_KIND_X', qubits: [h] }] });
    const messages = await Promise.all(
      handles.map(async (h) => (await callError(a.client, 'ApplyGates', gate(h))).details),
    );
    const samples: number[][] = [[], [], []];
    for (let round = 0; round < CALLS; round++) {
      for (let path = 0; path < 3; path++) {
        const i = (round + path) % 3;
        const t0 = process.hrtime.bigint();
        await callError(a.client, 'ApplyGates', gate(handles[i]!));
        samples[i]!.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }
    a.client.close();
    b.client.close();
    return { samples, messages };
  } finally {
    await d.stop();
    removeStateDir(stateDir);
  }
}

async function main(): Promise<void> {
  console.log(`bench/denials: ${CALLS} rounds, the three paths interleaved`);
  table('kernel handle check, in-process (per call, batches of 100)', 'µs', await inProcess());
  const { samples, messages } = await throughDaemon();
  console.log(`\nmessages: ${messages.map((m) => JSON.stringify(m)).join(' | ')}`);
  console.log(`the same message on every path: ${new Set(messages).size === 1 ? 'yes' : 'NO'}`);
  table('ApplyGates through the daemon (gRPC, loopback)', 'ms', samples);
}

await main();
