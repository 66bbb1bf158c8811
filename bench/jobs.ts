/**
 * bench/jobs: job throughput and latency through the real gRPC API, all figures from one run.
 *
 * Bell jobs of 1,000 shots, each client doing submit then watch-until-done in a loop, with 8
 * concurrent clients (each its own tenant and channel): jobs/s and p50/p99 latency (submit to the
 * DONE event). Baseline in the same run: the same clients doing one bare grpc-js round trip per
 * "job" on loopback (the transport's ceiling for one unary call; a job is two calls: SubmitJob and
 * a WatchJob stream). Then single-job latency for GHZ-20 and a seeded random 20-qubit depth-20
 * circuit at 1,000 shots, with the run time the daemon reports.
 * Target (issue #3): ≥ 2,000 Bell jobs/s on the 2-core machine.
 * Usage: npm run bench:jobs [-- --seconds 5 --clients 8]; with QMK_DAEMON_DIST=1 after `npm run build`
 * the daemon runs compiled, as in production (otherwise under tsx, as the tests run it).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import {
  type AnyClient,
  type Daemon,
  call,
  jobClient,
  newTenant,
  removeStateDir,
  startDaemon,
  watchJob,
} from '../test/support/daemon.js';
import { ghzQasm, qvm, randomCircuitQasm } from '../test/support/programs.js';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '5' }, clients: { type: 'string', default: '8' } },
});
const SECONDS = Number(values.seconds);
const CLIENTS = Number(values.clients);

const BELL = qvm(
  ['a', 'b'],
  [
    { op: 'APPLY_H', vqs: ['a'] },
    { op: 'APPLY_CNOT', vqs: ['a', 'b'] },
    { op: 'MEASURE_Z', vqs: ['a'], produces: ['ma'] },
    { op: 'MEASURE_Z', vqs: ['b'], produces: ['mb'] },
  ],
  ['ma', 'mb'],
);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
}

/** Runs `clients` loops of `one` for SECONDS; returns per-op latencies (ms) and ops/s. */
async function closedLoop(
  clients: number,
  one: (i: number) => Promise<void>,
): Promise<{ lat: number[]; rate: number }> {
  const lat: number[] = [];
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: clients }, async (_, i) => {
      while (performance.now() < end) {
        const s = performance.now();
        await one(i);
        lat.push(performance.now() - s);
      }
    }),
  );
  return { lat, rate: lat.length / ((performance.now() - t0) / 1000) };
}

/** The generic client's one method (makeGenericClientConstructor leaves it untyped). */
type AnyEcho = { Echo(req: Buffer, cb: (e: Error | null) => void): void };

async function echoBaseline(): Promise<{ lat: number[]; rate: number }> {
  const server = new grpc.Server();
  const id = (b: Buffer) => b;
  const def = {
    path: '/bench.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: id,
    requestDeserialize: id,
    responseSerialize: id,
    responseDeserialize: id,
  };
  server.addService(
    { Echo: def },
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
  const Client = grpc.makeGenericClientConstructor({ Echo: def }, 'Echo');
  const clients = Array.from(
    { length: CLIENTS },
    () => new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()),
  );
  const payload = Buffer.alloc(64);
  const r = await closedLoop(
    CLIENTS,
    (i) =>
      new Promise<void>((res, rej) =>
        (clients[i] as unknown as AnyEcho).Echo(payload, (e: Error | null) => (e ? rej(e) : res())),
      ),
  );
  for (const c of clients) c.close();
  server.forceShutdown();
  return r;
}

/** CPU time (user + system, all threads) a process has used, from /proc. */
function daemonCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
  return (ticks * 1000) / CLOCK_TICKS_PER_S;
}
const CLOCK_TICKS_PER_S = 100;

/** One job client per bench tenant, and a Bell job (submit, watch to DONE) on client i. */
async function bellClients(
  d: Daemon,
): Promise<{ clients: AnyClient[]; bellJob: (i: number) => Promise<void> }> {
  const clients: AnyClient[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const t = await newTenant(d, `bench-${i}`);
    t.client.close();
    clients.push(jobClient(d, t.apiKey));
  }
  const bellJob = async (i: number) => {
    const c = clients[i]!;
    const { job } = await call<{ job: { job_id: string } }>(c, 'SubmitJob', {
      program: { format: 'PROGRAM_FORMAT_QVM_JSON', source: BELL },
      shots: 1000,
    });
    const events = await watchJob(c, job.job_id);
    if (events[events.length - 1]!.job.state !== 'JOB_STATE_DONE')
      throw new Error('bell job did not finish');
  };
  for (let i = 0; i < 50; i++) await bellJob(0); // warm up
  return { clients, bellJob };
}

/** The Bell phase alone on a daemon started with `env` (records unprotected: what MACs and sealing cost). */
async function bellOnly(env: NodeJS.ProcessEnv): Promise<{ lat: number[]; rate: number }> {
  const d = await startDaemon(undefined, env);
  try {
    const { clients, bellJob } = await bellClients(d);
    const r = await closedLoop(CLIENTS, bellJob);
    for (const c of clients) c.close();
    return r;
  } finally {
    await d.stop();
    removeStateDir(d.stateDir);
  }
}

/**
 * What a feature costs, measured fairly: Bell phases on fresh daemons with it off (`offEnv`) and
 * on, alternated (off, on, off, on) so that drift in the machine's speed hits both alike.
 */
async function featureCost(offEnv: NodeJS.ProcessEnv): Promise<{ off: number[]; on: number[] }> {
  const off: number[] = [];
  const on: number[] = [];
  for (let round = 0; round < 2; round++) {
    off.push((await bellOnly(offEnv)).rate);
    on.push((await bellOnly({})).rate);
  }
  return { off, on };
}

/** Metrics off and the audit log's Merkle tree not kept (AuditService not served). */
const OBSERVABILITY_OFF = { QMK_METRICS_LISTEN: 'off', QMK_AUDIT_TREE: 'off' };

async function main(): Promise<void> {
  const echo = await echoBaseline();
  const protection = await featureCost({ QMK_RECORD_PROTECTION: 'off' });
  const observability = await featureCost(OBSERVABILITY_OFF);
  const d = await startDaemon();
  try {
    const { clients, bellJob } = await bellClients(d);
    // Second baseline: one authenticated unary call through the daemon that does no work (GetJob
    // of a finished job): the daemon's per-call floor, against which a job's two calls compare.
    const finished: string[] = [];
    for (const c of clients) {
      const { job } = await call<{ job: { job_id: string } }>(c, 'SubmitJob', {
        program: { format: 'PROGRAM_FORMAT_QVM_JSON', source: BELL },
        shots: 10,
      });
      await watchJob(c, job.job_id);
      finished.push(job.job_id);
    }
    const getJob = await closedLoop(CLIENTS, (i) =>
      call(clients[i]!, 'GetJob', { job_id: finished[i] }).then(() => {}),
    );
    const cpu0 = { bench: process.cpuUsage(), daemon: daemonCpuMs(d.child.pid!) };
    const bell = await closedLoop(CLIENTS, bellJob);
    const benchCpu = process.cpuUsage(cpu0.bench);
    const cpu = {
      bench: (benchCpu.user + benchCpu.system) / 1000 / (SECONDS * 1000),
      daemon: (daemonCpuMs(d.child.pid!) - cpu0.daemon) / (SECONDS * 1000),
    };

    const single = async (name: string, source: string) => {
      const c = clients[0]!;
      const s = performance.now();
      const { job } = await call<{ job: { job_id: string } }>(c, 'SubmitJob', {
        program: { format: 'PROGRAM_FORMAT_OPENQASM2', source },
        shots: 1000,
        seed: '1',
      });
      const events = await watchJob(c, job.job_id);
      const total = performance.now() - s;
      if (events[events.length - 1]!.job.state !== 'JOB_STATE_DONE')
        throw new Error(`${name} did not finish`);
      const r = await call<{ run_ms: number; sampling: string; engine: string }>(
        c,
        'GetJobResult',
        { job_id: job.job_id },
      );
      return { name, total, run: Number(r.run_ms), sampling: r.sampling, engine: r.engine };
    };
    const big = [
      await single('GHZ-20, 1,000 shots', ghzQasm(20)),
      await single('random 20q depth 20, 1,000 shots', randomCircuitQasm(20, 20, 42)),
    ];
    for (const c of clients) c.close();

    const f = (x: number) => x.toFixed(2);
    console.log(`bench/jobs — ${CLIENTS} clients, ${SECONDS} s per phase`);
    console.log(
      `  baseline: bare gRPC unary echo   ${echo.rate.toFixed(0)} calls/s   p50 ${f(pct(echo.lat, 50))} ms  p99 ${f(pct(echo.lat, 99))} ms`,
    );
    console.log(
      `  baseline: GetJob via the daemon  ${getJob.rate.toFixed(0)} calls/s   p50 ${f(pct(getJob.lat, 50))} ms  p99 ${f(pct(getJob.lat, 99))} ms`,
    );
    console.log(
      `  Bell jobs, 1,000 shots           ${bell.rate.toFixed(0)} jobs/s    p50 ${f(pct(bell.lat, 50))} ms  p99 ${f(pct(bell.lat, 99))} ms  (${bell.lat.length} jobs)`,
    );
    console.log(
      `  CPU during the Bell phase (cores busy): daemon ${cpu.daemon.toFixed(2)} (all threads), bench clients ${cpu.bench.toFixed(2)}; daemon CPU per job ${((cpu.daemon * SECONDS * 1000) / bell.lat.length).toFixed(2)} ms`,
    );
    console.log(
      `  target ≥ 2,000 jobs/s: ${bell.rate >= 2000 ? 'met' : 'NOT met'}; jobs/s ÷ echo calls/s = ${(bell.rate / echo.rate).toFixed(3)}`,
    );
    for (const b of big) {
      console.log(
        `  ${b.name.padEnd(34)} submit→DONE ${f(b.total)} ms  (run ${b.run} ms, ${b.sampling}, engine ${b.engine})`,
      );
    }
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    console.log(
      `  Bell jobs/s, records unprotected / protected, alternating rounds: ${protection.off.map((x, i) => `${x.toFixed(0)} / ${protection.on[i]!.toFixed(0)}`).join(', ')}`,
    );
    console.log(
      `  record protection (MACs + sealing) cost: jobs/s ×${(sum(protection.on) / sum(protection.off)).toFixed(3)}  (goal: at least ×0.90)`,
    );
    console.log(
      `  Bell jobs/s, metrics and audit tree off / on, alternating rounds: ${observability.off.map((x, i) => `${x.toFixed(0)} / ${observability.on[i]!.toFixed(0)}`).join(', ')}`,
    );
    const obs = sum(observability.on) / sum(observability.off);
    console.log(
      `  metrics + audit tree cost: jobs/s ×${obs.toFixed(3)}  (goal: within 5 %: ${obs >= 0.95 ? 'met' : 'NOT met'})`,
    );
  } finally {
    await d.stop();
    removeStateDir(d.stateDir);
  }
}

await main();
