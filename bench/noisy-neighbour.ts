/**
 * bench/noisy-neighbour: can one tenant slow another beyond its share? One daemon, one quiet
 * tenant, every figure from the same run:
 *   1. per attack mode (bench/attacks.ts): the quiet tenant's load alone, then the same load while
 *      a noisy tenant attacks from its own process; the daemon's resident memory before the
 *      attack, at its peak, and how long after the attack it takes to come back within 10 %;
 *   2. imbalance: two backlogged tenants with equal weights, one submitting from 17 concurrent
 *      loops, the other from 1, the same medium pool job; completed jobs of each are compared.
 * The quiet load: a Bell job of 1,000 shots (submit, then watch to DONE) at a fixed arrival rate,
 * open loop. The attacker runs at nice 10 (`--attacker-nice`): on this one host it stands in for
 * a neighbour on another machine, whose CPU is not the daemon's; the daemon and the quiet client
 * run at the default priority.
 * Each trial runs on a fresh daemon whose boot-time threads have ended, so no mode inherits
 * another's memory and "before" is a settled daemon; `--repeat N` runs N trials per mode and
 * shows the median one (a p99 of ~120 samples is noisy on a 2-core host).
 * Targets (issue #14): per mode, quiet p99 under attack ≤ 3 × quiet p99 alone, zero quiet errors,
 * memory back within 10 % of its pre-attack size within 30 s; with 17:1 concurrency and equal
 * weights, completed work within 2×.
 * Usage: npm run bench:noisy-neighbour [-- --seconds 6 --rate 20 --modes a,b --repeat 3
 *   --no-imbalance]; QMK_DAEMON_DIST=1 (after `npm run build`) measures the compiled daemon.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SIM_THREAD_IDLE_MS } from '../src/sim/front.js';
import { IDLE_SAMPLES_BEFORE_COLLECT, IDLE_SAMPLE_MS } from '../src/util/idle-collect.js';
import {
  type AnyClient,
  call,
  jobClient,
  newTenant,
  removeStateDir,
  startDaemon,
  watchJob,
} from '../test/support/daemon.js';
import { perShotQasm, qvm } from '../test/support/programs.js';
import { type AttackReport, MODES, MODE_TIER, type Mode } from './attacks.js';

const { values } = parseArgs({
  strict: false,
  options: {
    seconds: { type: 'string', default: '6' },
    rate: { type: 'string', default: '20' },
    modes: { type: 'string', default: MODES.join(',') },
    'attacker-nice': { type: 'string', default: '10' },
    repeat: { type: 'string', default: '1' },
    'no-imbalance': { type: 'boolean', default: false },
  },
});
const SECONDS = Number(values.seconds);
const RATE = Number(values.rate);
const REPEAT = Math.max(1, Number(values.repeat));

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

interface Trial {
  alone: number[];
  attacked: number[];
  errors: number;
  beforeMb: number;
  peakMb: number;
  /** ms until back within 10 %, or null. */
  backMs: number | null;
  /** RSS when the wait for it ended, MB. */
  endMb: number;
  report: AttackReport;
}

/**
 * One trial of one mode on a fresh daemon: warm up, wait until the threads started at boot have
 * ended (so the memory before the attack is the settled daemon's), the quiet load alone, then the
 * same load under attack; then how long the memory takes to come back.
 */
async function trial(mode: Mode): Promise<Trial> {
  const d = await startDaemon();
  try {
    const quiet = await newTenant(d, 'quiet');
    const quietJobs = jobClient(d, quiet.apiKey);
    for (let i = 0; i < 30; i++) await runJob(quietJobs, BELL); // warm up
    await new Promise((r) => setTimeout(r, SIM_THREAD_IDLE_MS + 2000));
    const noisy = await newTenant(d, `noisy-${mode}`, MODE_TIER[mode]);
    noisy.client.close();
    const alone = await quietLoad(quietJobs, SECONDS);
    // The size before the attack is the settled daemon's, as the size after it will be: the
    // daemon collects once it has been idle for a while after the quiet load (src/util/idle-collect).
    await new Promise((r) => setTimeout(r, (IDLE_SAMPLES_BEFORE_COLLECT + 2) * IDLE_SAMPLE_MS));
    const before = rssMb(d.child.pid!);
    const attacker = spawn(
      'nice',
      [
        '-n',
        String(values['attacker-nice']),
        process.execPath,
        '--import',
        'tsx',
        fileURLToPath(new URL('./attacks.ts', import.meta.url)),
        mode,
        d.address,
        noisy.apiKey,
        'quiet',
        String(SECONDS + 1),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      let out = '';
      attacker.stdout!.on('data', (b: Buffer) => {
        out += b.toString();
      });
      const exited = new Promise<void>((r) => attacker.on('exit', () => r()));
      while (!out.includes('attacking')) await new Promise((r) => setTimeout(r, 20));
      let peak = before;
      const sampler = setInterval(() => {
        peak = Math.max(peak, rssMb(d.child.pid!));
      }, 100);
      await new Promise((r) => setTimeout(r, 500)); // the attack reaches its steady state
      const attacked = await quietLoad(quietJobs, SECONDS);
      await exited;
      clearInterval(sampler);
      const report = JSON.parse(out.slice(out.indexOf('{'))) as AttackReport;
      const backMs = await memoryBack(d.child.pid!, before * 1.1, 30_000);
      for (const c of [quietJobs, quiet.client]) c.close();
      return {
        alone: alone.lat,
        attacked: attacked.lat,
        errors: attacked.errors,
        beforeMb: before,
        peakMb: peak,
        backMs,
        endMb: rssMb(d.child.pid!),
        report,
      };
    } finally {
      attacker.kill('SIGKILL');
    }
  } finally {
    await d.stop();
    removeStateDir(d.stateDir);
  }
}

async function main(): Promise<void> {
  const modes = (values.modes as string).split(',').filter(Boolean) as Mode[];
  for (const m of modes) if (!MODES.includes(m)) throw new Error(`unknown mode ${m}`);
  const f1 = (x: number) => x.toFixed(1);
  const rows: string[] = [];
  let met = true;
  for (const mode of modes) {
    const trials: Trial[] = [];
    for (let i = 0; i < REPEAT; i++) trials.push(await trial(mode));
    // Per trial: the ratio of quiet p99 attacked to alone; the mode's figure is the median trial.
    const ratio = (t: Trial) => pct(t.attacked, 99) / pct(t.alone, 99);
    trials.sort((a, b) => ratio(a) - ratio(b));
    const t = trials[Math.floor(trials.length / 2)]!;
    const errors = trials.reduce((n, x) => n + x.errors, 0);
    const allBack = trials.every((x) => x.backMs !== null);
    const ok = ratio(t) <= 3 && errors === 0 && allBack;
    met &&= ok;
    const ratios = trials.map((x) => ratio(x).toFixed(2)).join(', ');
    const memory = trials
      .map(
        (x) =>
          `${Math.round(x.beforeMb)} → ${Math.round(x.peakMb)} MB, ${x.backMs === null ? `not back in 30 s (${Math.round(x.endMb)} MB)` : `back in ${f1(x.backMs / 1000)} s`}`,
      )
      .join('; ');
    const codes = Object.entries(t.report.codes)
      .map(([c, n]) => `${c} ${n}`)
      .join(', ');
    rows.push(
      `| ${mode} | ${f1(pct(t.alone, 50))} / ${f1(pct(t.alone, 99))} | ${f1(pct(t.attacked, 50))} / ${f1(pct(t.attacked, 99))} | ${ratio(t).toFixed(2)} (${ratios}) | ${errors} | ${memory} | ${codes}; p50 ${f1(t.report.p50)} ms | ${ok ? 'met' : 'NOT met'} |`,
    );
    console.log(rows[rows.length - 1]);
  }
  console.log(
    `\nbench/noisy-neighbour — quiet: Bell 1,000 shots at ${RATE}/s open loop, ${SECONDS} s alone and ${SECONDS} s attacked; ${REPEAT} trial(s) per mode, each on a fresh daemon; the median trial shown`,
  );
  console.log(
    '| attack | quiet alone p50 / p99 ms | attacked p50 / p99 ms | p99 ratio ≤ 3 (each trial) | quiet errors | daemon RSS per trial | attacker got | targets |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
  console.log(`all attack targets ${met ? 'met' : 'NOT met'}`);
  if (values['no-imbalance'] !== true) {
    const d = await startDaemon();
    try {
      await imbalance(d);
    } finally {
      await d.stop();
      removeStateDir(d.stateDir);
    }
  }
}

/** Resident memory of a process, MB. */
function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) / 1024;
}

/** Milliseconds until the process's RSS is at most `limitMb`, or null after `withinMs`. */
async function memoryBack(pid: number, limitMb: number, withinMs: number): Promise<number | null> {
  const t0 = performance.now();
  while (performance.now() - t0 < withinMs) {
    if (rssMb(pid) <= limitMb) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, 250));
  }
  return null;
}

/** Equal weights, 17 loops against 1, the same medium job: completed jobs of each. */
async function imbalance(d: Awaited<ReturnType<typeof startDaemon>>): Promise<void> {
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
  const ratio = counts.x / Math.max(1, counts.y);
  console.log(
    `imbalance 17:1 loops, equal weights: completed ${counts.x} vs ${counts.y} = ${ratio.toFixed(2)} (target within 2×): ${ratio <= 2 && ratio >= 0.5 ? 'met' : 'NOT met'}`,
  );
  for (const c of [xj, yj, x.client, y.client]) c.close();
}

await main();
