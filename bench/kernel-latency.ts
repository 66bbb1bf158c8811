/**
 * bench/kernel-latency: what durability and the kernel's decisions cost, all figures from one run.
 *
 * Baselines measured in the same run: a bare grpc-js unary echo on loopback, an fdatasync of a
 * small file in the state directory, and a bare lmdb-js commit of one record (LMDB syncs the data
 * pages and then the meta page, so its floor is above one fdatasync). Then through the real
 * daemon: sequential ApplyGates (one gate on a 1-qubit cluster), the same with 64 calls in flight
 * across 8 tenants (group commit), and in-process the kernel's decision cost (handle verification
 * and checks) per op. Costs of a feature (record protection; metrics + audit tree) compare two
 * daemons run side by side in the same seconds, calls alternating between them.
 * Targets (issue #2): sequential ApplyGates p50 ≤ 1.5 × (echo p50 + fdatasync p50); 64-in-flight
 * throughput ≥ 20 × sequential throughput; decision cost < 20 µs per op.
 * Usage: npm run bench:kernel-latency [-- --seconds 5 --rounds 3]
 */
import { closeSync, fdatasyncSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { open } from 'lmdb';
import { Admin } from '../src/kernel/admin.js';
import { Kernel } from '../src/kernel/kernel.js';
import type { SimulatorPort, StorePort } from '../src/kernel/ports.js';
import { Keyring } from '../src/security/keyring.js';
import { NodeCrypto } from '../src/security/node-crypto.js';
import {
  type AnyClient,
  call,
  newTenant,
  removeStateDir,
  startDaemon,
  tempStateDir,
} from '../test/support/daemon.js';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '4' }, rounds: { type: 'string', default: '3' } },
});
const SECONDS = Number(values.seconds);
/** Rounds of the bare and the full daemon side by side (observability's cost). */
const ROUNDS = Number(values.rounds);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

const ms = (ns: bigint | number) => Number(ns) / 1e6;

async function timeLoop(fn: () => Promise<void>, seconds: number): Promise<number[]> {
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const t0 = process.hrtime.bigint();
    await fn();
    lat.push(ms(process.hrtime.bigint() - t0));
  }
  return lat;
}

/** Echo latencies sequentially, then throughput with 64 calls in flight (the transport's ceiling). */
async function echoBaseline(): Promise<{ seq: number[]; concRate: number }> {
  const server = new grpc.Server();
  const id = (b: Buffer) => b;
  server.addService(
    {
      Echo: {
        path: '/bench.Echo/Echo',
        requestStream: false,
        responseStream: false,
        requestSerialize: id,
        requestDeserialize: id,
        responseSerialize: id,
        responseDeserialize: id,
      },
    },
    {
      Echo: (c: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
        cb(null, c.request),
    },
  );
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? rej(e) : res(p),
    ),
  );
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const payload = Buffer.alloc(200, 1); // about the size of an ApplyGates request with one handle
  const once = () =>
    new Promise<void>((res, rej) =>
      client.makeUnaryRequest('/bench.Echo/Echo', id, id, payload, (e) => (e ? rej(e) : res())),
    );
  await timeLoop(once, 0.5);
  const lat = await timeLoop(once, SECONDS);
  let done = 0;
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (performance.now() < end) {
        await once();
        done++;
      }
    }),
  );
  const concRate = done / ((performance.now() - t0) / 1000);
  client.close();
  server.forceShutdown();
  return { seq: lat, concRate };
}

function fdatasyncBaseline(dir: string): number[] {
  const path = join(dir, 'fdatasync-probe');
  const fd = openSync(path, 'w');
  const block = Buffer.alloc(4096, 7);
  const lat: number[] = [];
  const end = performance.now() + SECONDS * 1000;
  while (performance.now() < end) {
    const t0 = process.hrtime.bigint();
    writeSync(fd, block, 0, block.length, 0);
    fdatasyncSync(fd);
    lat.push(ms(process.hrtime.bigint() - t0));
  }
  closeSync(fd);
  unlinkSync(path);
  return lat;
}

/** A bare lmdb-js commit of one small record, awaited until flushed: the store's own floor. */
async function lmdbBaseline(dir: string): Promise<number[]> {
  const root = open({ path: join(dir, 'lmdb-probe'), maxDbs: 2 });
  const db = root.openDB({ name: 'probe' });
  const once = async (i: number) => {
    await root.transaction(() => db.put(i % 64, { i }));
    await root.flushed;
  };
  let i = 0;
  const lat = await timeLoop(() => once(i++), SECONDS);
  await root.close();
  return lat;
}

/** Decision cost in-process: the kernel with ports that do no I/O, verifying real signed handles. */
async function decisionCost(): Promise<number> {
  const crypto = new NodeCrypto();
  const keyring = new Keyring(crypto.secret(), []);
  keyring.bootstrap(Date.now());
  const store: StorePort = {
    commit: async () => {},
    auditHead: () => ({ seq: 0, hash: '' }),
    read: () => undefined,
    lowSpace: () => null,
    shred: () => true,
  };
  const sim: SimulatorPort = {
    engine: 'none',
    threads: 0,
    create() {},
    execute: async (_p, done) => done([]),
    drop() {},
    snapshot: async () => [],
    restore() {},
    idle: async () => {},
  };
  const k = new Kernel({ store, signer: keyring, sim, clock: { nowMs: () => Date.now() }, crypto });
  const admin = new Admin(k, {
    clock: { nowMs: () => Date.now() },
    crypto,
    signer: keyring,
    store,
  });
  const t = await admin.createTenant('bench', 'pro', 0, []);
  const p = k.principals.authenticate(t.apiKey);
  const { handle } = await k.sessions.open(p, [], 0);
  const qubits = await k.sessions.allocate(p, handle, 64, '');
  const gates = qubits.map((q) => ({ kind: 'X', qubits: [q.handle], theta: 0 }));
  const N = 200_000;
  for (let i = 0; i < 10_000; i++)
    k.interactive.decodeApply(k.principals.authenticate(t.apiKey), [gates[i % 64]!]);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++)
    k.interactive.decodeApply(k.principals.authenticate(t.apiKey), [gates[i % 64]!]);
  return Number(process.hrtime.bigint() - t0) / 1e3 / N;
}

/** One daemon under measurement: ApplyGates on one of 64 one-qubit clusters of 8 tenants. */
interface BenchDaemon {
  apply(lane: number): Promise<void>;
  /** CPU seconds the daemon process has used (all threads); NaN where /proc is not there. */
  cpu(): number;
  close(): Promise<void>;
}

async function benchDaemon(env: NodeJS.ProcessEnv): Promise<BenchDaemon> {
  const stateDir = tempStateDir();
  const d = await startDaemon(stateDir, env);
  const tenants: { client: AnyClient; handle: string }[] = [];
  for (let i = 0; i < 8; i++) {
    const t = await newTenant(d, `bench-${i}`, 'TIER_ENTERPRISE');
    const s = await call<{ session_handle: string }>(t.client, 'OpenSession', {});
    const q = await call<{ qubits: { handle: string }[] }>(t.client, 'AllocateQubits', {
      session_handle: s.session_handle,
      count: 8,
    });
    for (const x of q.qubits) tenants.push({ client: t.client, handle: x.handle });
  }
  const ticks = Number(process.env.CLK_TCK ?? 100);
  return {
    apply(lane) {
      const { client, handle } = tenants[lane % tenants.length]!;
      return call(client, 'ApplyGates', {
        gates: [{ kind: 'GATE_KIND_X', qubits: [handle] }],
      }).then(() => undefined);
    },
    cpu() {
      try {
        const f = readFileSync(`/proc/${d.child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
        return (Number(f[11]) + Number(f[12])) / ticks;
      } catch {
        return Number.NaN;
      }
    },
    async close() {
      for (const t of tenants) t.client.close();
      await d.stop();
      removeStateDir(stateDir);
    },
  };
}

/** What one daemon of a pair measured. */
interface Phases {
  seq: number[];
  seqRate: number;
  conc: number[];
  concRate: number;
  /** Daemon CPU time per call (all threads, µs), sequential and 64 in flight. */
  seqCpuUs: number;
  concCpuUs: number;
}

/** 64 ApplyGates calls in flight on `d` for `seconds`; latencies into `into`; returns calls done. */
async function concSlice(d: BenchDaemon, seconds: number, into: number[]): Promise<number> {
  // 64 in flight across 8 tenants: each lane owns one qubit, so lanes never wait on each other.
  const end = performance.now() + seconds * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: 64 }, async (_, lane) => {
      while (performance.now() < end) {
        const s = process.hrtime.bigint();
        await d.apply(lane);
        into.push(ms(process.hrtime.bigint() - s));
        done++;
      }
    }),
  );
  return done;
}

/**
 * Two daemons measured side by side, so drift in the machine's speed (disk sync times vary by
 * tens of percent from one second to the next here) hits both alike: sequential calls alternate
 * between them call by call, and the 64-in-flight phase alternates slices of 0.5 s.
 */
async function pairedPhases(
  envA: NodeJS.ProcessEnv,
  envB: NodeJS.ProcessEnv,
): Promise<[Phases, Phases]> {
  const pair = [await benchDaemon(envA), await benchDaemon(envB)] as const;
  try {
    for (const d of pair) await timeLoop(() => d.apply(0), 0.5);
    const seq: [number[], number[]] = [[], []];
    const cpu0 = pair.map((d) => d.cpu());
    const end = performance.now() + 2 * SECONDS * 1000;
    for (let k = 0; performance.now() < end; k++) {
      for (const i of k % 2 === 0 ? [0, 1] : [1, 0]) {
        const t0 = process.hrtime.bigint();
        await pair[i]!.apply(0);
        seq[i]!.push(ms(process.hrtime.bigint() - t0));
      }
    }
    const seqCpu = pair.map((d, i) => d.cpu() - cpu0[i]!);
    const conc: [number[], number[]] = [[], []];
    const done = [0, 0];
    const took = [0, 0];
    const concCpu = [0, 0];
    const SLICE = 0.5;
    for (let k = 0; k < Math.max(1, Math.round(SECONDS / SLICE)); k++) {
      // Each goes first in every other pair of slices: the one after another's slice starts
      // with work left behind (syncs, collections), and that must not always be the same one.
      for (const i of k % 2 === 0 ? [0, 1] : [1, 0]) {
        const c0 = pair[i]!.cpu();
        const t0 = performance.now();
        done[i]! += await concSlice(pair[i]!, SLICE, conc[i]!);
        took[i]! += (performance.now() - t0) / 1000;
        concCpu[i]! += pair[i]!.cpu() - c0;
      }
    }
    const phases = (i: number): Phases => {
      const total = seq[i]!.reduce((a, x) => a + x, 0) / 1000;
      return {
        seq: seq[i]!,
        seqRate: seq[i]!.length / total,
        conc: conc[i]!,
        concRate: done[i]! / took[i]!,
        seqCpuUs: (seqCpu[i]! * 1e6) / seq[i]!.length,
        concCpuUs: (concCpu[i]! * 1e6) / done[i]!,
      };
    };
    return [phases(0), phases(1)];
  } finally {
    for (const d of pair) await d.close();
  }
}

async function main() {
  const stateDir = tempStateDir();
  console.log(`kernel-latency: ${SECONDS} s per phase, state dir ${stateDir}`);
  const { seq: echo, concRate: echoConcRate } = await echoBaseline();
  const sync = fdatasyncBaseline(stateDir);
  const lmdb = await lmdbBaseline(stateDir);
  removeStateDir(stateDir);
  // Record protection (MACs and sealing) off against on; then observability (metrics listener
  // and audit Merkle tree) off against on. Each pair side by side; the targets read the full daemon.
  const [off, protectedRun] = await pairedPhases({ QMK_RECORD_PROTECTION: 'off' }, {});
  const BARE = { QMK_METRICS_LISTEN: 'off', QMK_AUDIT_TREE: 'off' };
  const bareRounds: Phases[] = [];
  const fullRounds: Phases[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const [bareRun, fullRun] = await pairedPhases(BARE, {});
    bareRounds.push(bareRun);
    fullRounds.push(fullRun);
  }
  const merged = (rs: Phases[]): Phases => ({
    seq: rs.flatMap((x) => x.seq),
    seqRate: rs.reduce((a, x) => a + x.seqRate, 0) / rs.length,
    conc: rs.flatMap((x) => x.conc),
    concRate: rs.reduce((a, x) => a + x.concRate, 0) / rs.length,
    seqCpuUs: rs.reduce((a, x) => a + x.seqCpuUs, 0) / rs.length,
    concCpuUs: rs.reduce((a, x) => a + x.concCpuUs, 0) / rs.length,
  });
  const bare = merged(bareRounds);
  const full = merged(fullRounds);
  const { seq, seqRate, conc, concRate } = full;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const roundSeq = fullRounds.map((f, i) => pct(f.seq, 50) / pct(bareRounds[i]!.seq, 50));
  const roundConc = fullRounds.map((f, i) => f.concRate / bareRounds[i]!.concRate);
  const decisionUs = await decisionCost();

  const echoP50 = pct(echo, 50);
  const syncP50 = pct(sync, 50);
  const seqP50 = pct(seq, 50);
  const rows = [
    ['grpc-js unary echo', echoP50, pct(echo, 99), echo.length / SECONDS],
    ['grpc-js unary echo, 64 in flight', Number.NaN, Number.NaN, echoConcRate],
    ['fdatasync 4 KiB (state dir)', syncP50, pct(sync, 99), sync.length / SECONDS],
    ['lmdb-js commit of one record, flushed', pct(lmdb, 50), pct(lmdb, 99), lmdb.length / SECONDS],
    ['ApplyGates sequential', seqP50, pct(seq, 99), seqRate],
    ['ApplyGates 64 in flight / 8 tenants', pct(conc, 50), pct(conc, 99), concRate],
    ['ApplyGates sequential, records unprotected', pct(off.seq, 50), pct(off.seq, 99), off.seqRate],
    [
      'ApplyGates 64 in flight, records unprotected',
      pct(off.conc, 50),
      pct(off.conc, 99),
      off.concRate,
    ],
    [
      'ApplyGates sequential, no metrics, no audit tree',
      pct(bare.seq, 50),
      pct(bare.seq, 99),
      bare.seqRate,
    ],
    [
      'ApplyGates 64 in flight, no metrics, no audit tree',
      pct(bare.conc, 50),
      pct(bare.conc, 99),
      bare.concRate,
    ],
  ] as const;
  console.log('\n| measurement | p50 ms | p99 ms | ops/s |\n|---|---|---|---|');
  for (const [name, p50, p99, rate] of rows) {
    const f = (x: number) => (Number.isNaN(x) ? '–' : x.toFixed(3));
    console.log(`| ${name} | ${f(p50)} | ${f(p99)} | ${rate.toFixed(0)} |`);
  }
  const ratio = seqP50 / (echoP50 + syncP50);
  const speedup = concRate / seqRate;
  console.log(
    `\nsequential p50 / (echo p50 + fdatasync p50) = ${ratio.toFixed(2)}  (target ≤ 1.5)`,
  );
  const lmdbP50 = pct(lmdb, 50);
  console.log(
    `sequential p50 / (echo p50 + lmdb commit p50) = ${(seqP50 / (echoP50 + lmdbP50)).toFixed(2)}  ` +
      '(what the kernel adds on top of one store commit)',
  );
  console.log(
    `64-in-flight throughput / sequential throughput = ${speedup.toFixed(1)}×  (target ≥ 20)`,
  );
  console.log(
    `64-in-flight ApplyGates / 64-in-flight bare echo = ${(concRate / echoConcRate).toFixed(2)}  ` +
      '(share of the transport ceiling this machine allows)',
  );
  console.log(
    `decision cost (authenticate + decodeApplyGates, 1 gate) = ${decisionUs.toFixed(2)} µs/op  (target < 20)`,
  );
  const sealSeq = pct(protectedRun.seq, 50) / pct(off.seq, 50);
  const sealConc = off.concRate / protectedRun.concRate;
  console.log(
    `record protection (MACs + sealing) cost: sequential p50 ×${sealSeq.toFixed(3)}, ` +
      `64-in-flight throughput ×${(1 / sealConc).toFixed(3)}  (goal: at most 10 % either way)`,
  );
  const obsSeq = median(roundSeq);
  const obsConc = median(roundConc);
  const list = (xs: number[]) => xs.map((x) => x.toFixed(3)).join(', ');
  console.log(
    `metrics + audit tree cost, median of ${ROUNDS} alternating rounds: sequential p50 ×${obsSeq.toFixed(3)} ` +
      `(${list(roundSeq)}), 64-in-flight throughput ×${obsConc.toFixed(3)} (${list(roundConc)})  ` +
      `(goal: within 5 % either way: ${obsSeq <= 1.05 && obsConc >= 0.95 ? 'met' : 'NOT met'})`,
  );
  const cpu = (x: number) => `${x.toFixed(0)} µs`;
  console.log(
    `daemon CPU per call (all threads), bare / full: sequential ${cpu(bare.seqCpuUs)} / ${cpu(full.seqCpuUs)}, ` +
      `64 in flight ${cpu(bare.concCpuUs)} / ${cpu(full.concCpuUs)}`,
  );
  console.log(
    JSON.stringify({
      echoP50,
      echoConcRate,
      syncP50,
      lmdbP50,
      seqP50,
      seqRate,
      concRate,
      ratio,
      speedup,
      decisionUs,
      unprotectedSeqP50: pct(off.seq, 50),
      unprotectedConcRate: off.concRate,
    }),
  );
}

await main();
