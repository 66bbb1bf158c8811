/**
 * bench/noisy-neighbour: does a flooding tenant slow a quiet one beyond its share? One run, one
 * daemon, three phases, all figures from the same run:
 *   1. alone: a quiet tenant submits a small job (Bell, 1,000 shots; submit then watch to DONE) at
 *      a fixed arrival rate, open loop;
 *   2. flooded: the same quiet load while a noisy tenant (free tier) floods expensive jobs from
 *      many concurrent loops and hammers interactive calls; the noisy side's refusals are counted
 *      with their latency (they must be fast RESOURCE_EXHAUSTED);
 *   3. imbalance: two backlogged tenants with equal weights, one submitting from 17 concurrent
 *      loops, the other from 1, the same medium pool job; completed jobs of each are compared.
 * Targets (issue #4): quiet p99 flooded ≤ 3 × quiet p99 alone, zero quiet errors, the flooder's
 * refusals fast; with 17:1 concurrency and equal weights, completed work within 2×.
 * Usage: npm run bench:noisy-neighbour [-- --seconds 8 --rate 40]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import {
  type AnyClient,
  call,
  jobClient,
  kernelClient,
  newTenant,
  removeStateDir,
  startDaemon,
  watchJob,
} from '../test/support/daemon.js';
import { perShotQasm, qvm } from '../test/support/programs.js';

const { values } = parseArgs({
  strict: false,
  options: {
    seconds: { type: 'string', default: '8' },
    rate: { type: 'string', default: '40' },
    // Which floods the noisy tenant runs (both by default; one alone to see which hurts).
    'noisy-jobs': { type: 'string', default: '24' },
    'noisy-calls': { type: 'string', default: '8' },
  },
});
const SECONDS = Number(values.seconds);
const RATE = Number(values.rate);

const BELL = {
  program: {
    format: 'PROGRAM_FORMAT_QVM_JSON',
    source: qvm(
      ['a', 'b'],
      [
        { op: 'APPLY_H', vqs: ['a'] },
        { op: 'APPLY_CNOT', vqs: ['a', 'b'] },
        { op: 'MEASURE_Z', vqs: ['a'], produces: ['ma'] },
        { op: 'MEASURE_Z', vqs: ['b'], produces: ['mb'] },
      ],
      ['ma', 'mb'],
    ),
  },
  shots: 1000,
};
/** Expensive: per-shot simulation of 16 qubits, ~1 s of pool time. */
const EXPENSIVE = {
  program: { format: 'PROGRAM_FORMAT_OPENQASM2', source: perShotQasm(16, 6, 5) },
  shots: 3000,
};
/** Medium pool job for the imbalance phase (~50–100 ms). */
const MEDIUM = {
  program: { format: 'PROGRAM_FORMAT_OPENQASM2', source: perShotQasm(12, 4, 9) },
  shots: 400,
};

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
}

async function runJob(c: AnyClient, req: object): Promise<string> {
  const { job } = await call<{ job: { job_id: string } }>(c, 'SubmitJob', req);
  const events = await watchJob(c, job.job_id);
  return events[events.length - 1]!.job.state as string;
}

/** Open-loop arrivals at RATE/s for `seconds`: latency of each job (submit to DONE), errors. */
async function quietLoad(
  c: AnyClient,
  seconds: number,
): Promise<{ lat: number[]; errors: number }> {
  const lat: number[] = [];
  let errors = 0;
  const inFlight: Promise<void>[] = [];
  const start = performance.now();
  for (let i = 0; i < seconds * RATE; i++) {
    const due = start + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const t0 = performance.now();
    inFlight.push(
      runJob(c, BELL).then(
        (state) => {
          if (state === 'JOB_STATE_DONE') lat.push(performance.now() - t0);
          else errors++;
        },
        () => {
          errors++;
        },
      ),
    );
  }
  await Promise.all(inFlight);
  return { lat, errors };
}

interface Flood {
  ok: number;
  exhausted: number[];
  other: number;
}

/** Loops calling `one` until `stop`; RESOURCE_EXHAUSTED latencies and other outcomes counted. */
async function flood(
  loops: number,
  one: (i: number) => Promise<unknown>,
  stop: () => boolean,
): Promise<Flood> {
  const f: Flood = { ok: 0, exhausted: [], other: 0 };
  await Promise.all(
    Array.from({ length: loops }, async (_, i) => {
      while (!stop()) {
        const t0 = performance.now();
        try {
          await one(i);
          f.ok++;
        } catch (err) {
          if ((err as grpc.ServiceError).code === grpc.status.RESOURCE_EXHAUSTED)
            f.exhausted.push(performance.now() - t0);
          else f.other++;
          await new Promise((r) => setTimeout(r, 5)); // a client that backs off a little
        }
      }
    }),
  );
  return f;
}

/** CPU time (user + system, all threads) a process has used, from /proc (clock ticks of 10 ms). */
function processCpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

/** Retries a call refused with RESOURCE_EXHAUSTED (a rate limit) until it passes. */
async function retrying<T>(fn: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if ((err as grpc.ServiceError).code !== grpc.status.RESOURCE_EXHAUSTED) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function main(): Promise<void> {
  const d = await startDaemon();
  const f2 = (x: number) => x.toFixed(2);
  try {
    const quiet = await newTenant(d, 'quiet');
    const noisy = await newTenant(d, 'noisy', 'TIER_FREE');
    const quietJobs = jobClient(d, quiet.apiKey);
    for (let i = 0; i < 30; i++) await runJob(quietJobs, BELL); // warm up

    const alone = await quietLoad(quietJobs, SECONDS);

    // Noisy: 24 loops of expensive jobs, 8 loops of interactive calls on its own qubits.
    // The flooder is its own process, as a noisy neighbour is: its client work does not delay the
    // quiet client's event loop (which would be measured as the daemon's latency).
    const noisyJobs = jobClient(d, noisy.apiKey);
    const flooder = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        fileURLToPath(import.meta.url),
        '--flooder',
        d.address,
        noisy.apiKey,
        String(SECONDS + 2),
        String(values['noisy-jobs']),
        String(values['noisy-calls']),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let flooderOut = '';
    flooder.stdout!.on('data', (b: Buffer) => {
      flooderOut += b.toString();
    });
    const flooderDone = new Promise<void>((r) => flooder.on('exit', () => r()));
    while (!flooderOut.includes('flooding')) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 1000)); // the flood reaches its steady state
    const cpu0 = {
      bench: process.cpuUsage(),
      daemon: processCpuMs(d.child.pid!),
      flooder: processCpuMs(flooder.pid!),
    };
    const flooded = await quietLoad(quietJobs, SECONDS);
    const benchCpu = process.cpuUsage(cpu0.bench);
    const cpu = {
      bench: (benchCpu.user + benchCpu.system) / 1000 / (SECONDS * 1000),
      daemon: (processCpuMs(d.child.pid!) - cpu0.daemon) / (SECONDS * 1000),
      flooder: (processCpuMs(flooder.pid!) - cpu0.flooder) / (SECONDS * 1000),
    };
    await flooderDone;
    const { jobs: fj, calls: fc } = JSON.parse(flooderOut.slice(flooderOut.indexOf('{'))) as {
      jobs: Flood;
      calls: Flood;
    };
    // Cancel what the noisy tenant left queued or running, so the next phase has the pool.
    // It is over its own API rate by now: honour the refusals' RetryInfo by retrying.
    const left = await retrying(() =>
      call<{ jobs: { job_id: string }[] }>(noisyJobs, 'ListJobs', {
        states: ['JOB_STATE_QUEUED', 'JOB_STATE_RUNNING'],
        page_size: 1000,
      }),
    );
    for (const j of left.jobs)
      await retrying(() => call(noisyJobs, 'CancelJob', { job_id: j.job_id })).catch(() => {});

    // Imbalance: equal weights, 17 loops against 1, the same medium job.
    const x = await newTenant(d, 'many-loops');
    const y = await newTenant(d, 'one-loop');
    const xj = jobClient(d, x.apiKey);
    const yj = jobClient(d, y.apiKey);
    let done = false;
    const counts = { x: 0, y: 0 };
    const loop = (c: AnyClient, key: 'x' | 'y') => async () => {
      while (!done) {
        if ((await runJob(c, MEDIUM)) === 'JOB_STATE_DONE' && !done) counts[key]++;
      }
    };
    const loops = [...Array.from({ length: 17 }, () => loop(xj, 'x')()), loop(yj, 'y')()];
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    done = true;
    await Promise.all(loops);

    const ap99 = pct(alone.lat, 99);
    const fp99 = pct(flooded.lat, 99);
    const all = [...fj.exhausted, ...fc.exhausted];
    console.log(
      `bench/noisy-neighbour — quiet: Bell 1,000 shots at ${RATE}/s open loop, ${SECONDS} s per phase`,
    );
    console.log(
      `  quiet alone    p50 ${f2(pct(alone.lat, 50))} ms  p99 ${f2(ap99)} ms  (${alone.lat.length} jobs, ${alone.errors} errors)`,
    );
    console.log(
      `  quiet flooded  p50 ${f2(pct(flooded.lat, 50))} ms  p99 ${f2(fp99)} ms  (${flooded.lat.length} jobs, ${flooded.errors} errors)`,
    );
    console.log(
      `  p99 flooded ÷ alone = ${f2(fp99 / ap99)} (target ≤ 3): ${fp99 <= 3 * ap99 ? 'met' : 'NOT met'}; quiet errors ${flooded.errors} (target 0)`,
    );
    console.log(
      `  CPU while flooded (cores busy, of 2): daemon ${f2(cpu.daemon)} (all threads), quiet client ${f2(cpu.bench)}, flooder ${f2(cpu.flooder)}`,
    );
    console.log(
      `  noisy jobs: ${fj.ok} accepted, ${fj.exhausted.length} RESOURCE_EXHAUSTED, ${fj.other} other errors`,
    );
    console.log(
      `  noisy calls: ${fc.ok} served, ${fc.exhausted.length} RESOURCE_EXHAUSTED, ${fc.other} other errors`,
    );
    console.log(`  noisy refusals: p50 ${f2(pct(all, 50))} ms  p99 ${f2(pct(all, 99))} ms`);
    const ratio = counts.x / Math.max(1, counts.y);
    console.log(
      `  imbalance 17:1 loops, equal weights: completed ${counts.x} vs ${counts.y} = ${f2(ratio)} (target within 2×): ${ratio <= 2 && ratio >= 0.5 ? 'met' : 'NOT met'}`,
    );
    for (const c of [quietJobs, noisyJobs, xj, yj, quiet.client, noisy.client, x.client, y.client])
      c.close();
  } finally {
    await d.stop();
    removeStateDir(d.stateDir);
  }
}

/** The flooder process: floods for `seconds`, then prints its counts as JSON. */
async function flooderMain(
  address: string,
  apiKey: string,
  seconds: number,
  jobLoops: number,
  callLoops: number,
): Promise<void> {
  const d = { address };
  const jobs = jobClient(d, apiKey);
  const kernel = kernelClient(d, apiKey);
  const session = (await call<{ session_handle: string }>(kernel, 'OpenSession', {}))
    .session_handle;
  const qubits = (
    await call<{ qubits: { handle: string }[] }>(kernel, 'AllocateQubits', {
      session_handle: session,
      count: 12,
    })
  ).qubits;
  const gates = qubits
    .slice(1)
    .map((q, i) => ({ kind: 'GATE_KIND_CNOT', qubits: [qubits[i]!.handle, q.handle] }));
  const end = performance.now() + seconds * 1000;
  const stop = () => performance.now() >= end;
  console.log('flooding');
  const [j, c] = await Promise.all([
    flood(jobLoops, () => call(jobs, 'SubmitJob', EXPENSIVE), stop),
    flood(callLoops, () => call(kernel, 'ApplyGates', { gates }), stop),
  ]);
  jobs.close();
  kernel.close();
  console.log(JSON.stringify({ jobs: j, calls: c }));
}

const flooderAt = process.argv.indexOf('--flooder');
if (flooderAt >= 0) {
  const [address, key, seconds, jobLoops, callLoops] = process.argv.slice(flooderAt + 1);
  await flooderMain(address!, key!, Number(seconds), Number(jobLoops), Number(callLoops));
} else {
  await main();
}
