/**
 * bench/sim: the state-vector engines on GHZ, QFT and random circuits (generated in the repo,
 * seeded), n = 16, 20, 24, 26; engines js/native; fusion off/on; threads 1/2 (native). One run
 * also measures the machine's memory bandwidth (a native read-modify-write pass over 1 GiB, on 1
 * and 2 threads) and reports each result as a fraction of its bandwidth floor: the passes the run
 * makes over the state × one measured read-modify-write pass over a state of that size.
 *
 * Then, end to end: the 24-qubit random circuit as a job through the real gRPC API (a daemon on
 * loopback, 1 shot) against the engine's own time for the same program in this process.
 *
 * Output: a table on the terminal as results arrive, and bench/results/<date>.json plus
 * bench/results/<date>.html (charts: time vs qubits per engine, fraction of floor).
 * Usage: npm run bench:sim [-- --qubits 16,20,24,26 --circuits ghz,qft,random
 *   --engines js,native --cap-s 60 --no-e2e]. A configuration whose predicted time (from the
 * same configuration at the previous size, ×2^Δn) exceeds --cap-s is skipped and listed as such.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Program } from '../src/kernel/program/ir.js';
import { parseQasm } from '../src/kernel/program/qasm.js';
import { ghzQasm, qftQasm, randomQasm } from '../src/sim/circuits.js';
import {
  FUSION_WIDTH_DEFAULT,
  type Kernels,
  alignedDoubles,
  clearStateCache,
  describeEngine,
  engineInfo,
  jsKernels,
  loadNative,
  nativeKernels,
} from '../src/sim/kernels.js';
import { finalStates, stateOpCount } from '../src/sim/program.js';

const { values } = parseArgs({
  options: {
    qubits: { type: 'string', default: '16,20,24,26' },
    circuits: { type: 'string', default: 'ghz,qft,random' },
    engines: { type: 'string', default: 'js,native' },
    'cap-s': { type: 'string', default: '60' },
    'no-e2e': { type: 'boolean', default: false },
  },
});
const QUBITS = values.qubits.split(',').map(Number);
const CIRCUITS = values.circuits.split(',');
const ENGINES = values.engines.split(',');
const CAP_S = Number(values['cap-s']);
const RANDOM_LAYERS = 20;
const RANDOM_SEED = 1;

const loaded = loadNative();
const addon = 'addon' in loaded ? loaded.addon : null;

function circuit(name: string, n: number): Program {
  const text =
    name === 'ghz'
      ? ghzQasm(n)
      : name === 'qft'
        ? qftQasm(n)
        : randomQasm(n, RANDOM_LAYERS, RANDOM_SEED);
  const parsed = parseQasm(text);
  if (parsed.program === null)
    throw new Error(`${name}(${n}): ${JSON.stringify(parsed.violations)}`);
  return parsed.program;
}

// ---------------------------------------------------------------- bandwidth floor

interface Bandwidth {
  threads: number;
  /** Seconds per double for one read-modify-write pass (best of the repetitions). */
  secondsPerDouble: number;
  gbPerSecond: number;
}

function measureBandwidth(threads: number): Bandwidth | null {
  if (addon === null) return null;
  const doubles = 2 ** 27; // 1 GiB
  // Aligned as the engine's states are; every page touched before timing.
  const buf = alignedDoubles(addon, doubles).fill(1e-3);
  addon.setThreads(threads);
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < 6; r++) {
    const t0 = performance.now();
    addon.bandwidthPass(buf, 1, 0);
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  const secondsPerDouble = best / doubles;
  return { threads, secondsPerDouble, gbPerSecond: (2 * 8 * doubles) / best / 1e9 };
}

// ---------------------------------------------------------------- runs

interface Config {
  engine: 'js' | 'native';
  fusion: number;
  threads: number;
}

interface Row extends Config {
  circuit: string;
  qubits: number;
  passes: number;
  seconds: number | null;
  /** The bandwidth floor (passes × one RMW pass) ÷ measured time; null without the addon. */
  fractionOfFloor: number | null;
  skipped?: string;
}

function configs(): Config[] {
  const out: Config[] = [];
  if (ENGINES.includes('js')) {
    out.push(
      { engine: 'js', fusion: 0, threads: 1 },
      { engine: 'js', fusion: FUSION_WIDTH_DEFAULT.js, threads: 1 },
    );
  }
  if (ENGINES.includes('native') && addon !== null) {
    for (const threads of [1, 2]) {
      out.push(
        { engine: 'native', fusion: 0, threads },
        { engine: 'native', fusion: FUSION_WIDTH_DEFAULT.native, threads },
      );
    }
  }
  return out;
}

function kernelsFor(c: Config): Kernels {
  if (c.engine === 'js') return jsKernels;
  addon!.setThreads(c.threads);
  return nativeKernels(addon!);
}

const configName = (c: Config) =>
  `${c.engine} ${c.fusion === 0 ? 'unfused' : `fused k=${c.fusion}`} ${c.threads}t`;

/** Frees the previous run's states first (the npm script runs node with --expose-gc). */
function collect(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/**
 * One timed run, as on a warm daemon: the engine's per-thread state cache already holds a state
 * of this size (a fresh 256 MiB state costs ~300 ms of page faults on the reference VM; the cache
 * turns that into one zeroing pass). The end-to-end part compares cold with cold.
 */
function runOne(p: Program, c: Config): number {
  collect();
  const kernels = kernelsFor(c);
  const n = p.qubits.length; // every circuit here entangles all its qubits into one group
  kernels.release(kernels.alloc(n), n);
  const t0 = performance.now();
  const states = finalStates(p, { kernels, fusion: c.fusion });
  const seconds = (performance.now() - t0) / 1000;
  if (states.length === 0) throw new Error('nothing simulated');
  for (const st of states) kernels.release(st.state, Math.log2(st.state.length / 2));
  return seconds;
}

const pad = (s: string | number, n: number) => String(s).padStart(n);

async function main(): Promise<void> {
  const started = new Date();
  console.log(
    `bench/sim — engine selection: ${describeEngine(engineInfo())}; timed runs reuse a cached state (warm daemon)`,
  );
  if (addon === null)
    console.log(`  native engine unavailable: ${'error' in loaded ? loaded.error : ''}`);
  const bw = [measureBandwidth(1), measureBandwidth(2)];
  for (const b of bw) {
    if (b !== null)
      console.log(
        `  bandwidth floor, ${b.threads} thread(s): ${b.gbPerSecond.toFixed(1)} GB/s read+write (RMW over 1 GiB)`,
      );
  }
  const floorPass = (n: number, threads: number): number | null => {
    const b = bw[threads - 1] ?? null;
    return b === null ? null : b.secondsPerDouble * 2 ** (n + 1);
  };
  console.log(
    `  ${'circuit'.padEnd(7)} ${'n'.padStart(2)}  ${'config'.padEnd(22)} ${'passes'.padStart(6)} ${'time'.padStart(9)} ${'floor'.padStart(9)}  of floor`,
  );
  const rows: Row[] = [];
  for (const name of CIRCUITS) {
    for (const c of configs()) {
      let last: { n: number; seconds: number } | null = null;
      for (const n of QUBITS) {
        const p = circuit(name, n);
        const passes = stateOpCount(p, c.fusion, kernelsFor(c).costs);
        const predicted = last === null ? 0 : last.seconds * 2 ** (n - last.n);
        const base = { ...c, circuit: name, qubits: n, passes };
        if (predicted > CAP_S) {
          rows.push({
            ...base,
            seconds: null,
            fractionOfFloor: null,
            skipped: `predicted ${predicted.toFixed(0)} s > cap ${CAP_S} s`,
          });
          console.log(
            `  ${name.padEnd(7)} ${pad(n, 2)}  ${configName(c).padEnd(22)} ${pad(passes, 6)}   skipped (predicted ${predicted.toFixed(0)} s > --cap-s ${CAP_S})`,
          );
          continue;
        }
        if (process.stdout.isTTY) process.stdout.write(`  … ${name} ${n} ${configName(c)}\r`);
        const seconds = runOne(p, c);
        const floor = floorPass(n, c.threads);
        const fraction = floor === null ? null : (passes * floor) / seconds;
        rows.push({ ...base, seconds, fractionOfFloor: fraction });
        last = { n, seconds };
        console.log(
          `  ${name.padEnd(7)} ${pad(n, 2)}  ${configName(c).padEnd(22)} ${pad(passes, 6)} ${pad(seconds.toFixed(3), 7)} s ${floor === null ? '        -' : `${pad((passes * floor).toFixed(3), 7)} s`}  ${fraction === null ? '-' : `${(100 * fraction).toFixed(0)} %`}`,
        );
      }
    }
  }
  const date = started.toISOString().slice(0, 10);
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(dir, { recursive: true });
  const write = (e2e: EndToEnd | null, gates: GatePass[]) => {
    const report = {
      date: started.toISOString(),
      engine: engineInfo(),
      isa: addon?.isa() ?? null,
      bandwidth: bw.filter((b) => b !== null),
      randomLayers: RANDOM_LAYERS,
      randomSeed: RANDOM_SEED,
      rows,
      gates,
      e2e,
    };
    writeFileSync(join(dir, `${date}.json`), `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(join(dir, `${date}.html`), html(report));
  };
  write(null, []); // the engine figures survive a failure of the later parts
  const passes = singleGatePasses(floorPass);
  write(null, passes);
  const e2e = values['no-e2e'] ? null : await endToEnd();
  write(e2e, passes);
  console.log(`  wrote bench/results/${date}.json and bench/results/${date}.html`);
}

// ---------------------------------------------------------------- single-gate passes

interface GatePass {
  gate: string;
  qubits: number;
  threads: number;
  ms: number;
  floorMs: number;
  fractionOfFloor: number;
}

/**
 * Unfused single-gate passes on the native engine at the largest size up to 24 qubits: each gate
 * kind (dense 1-qubit on low, middle and high qubits, diagonal, CNOT, CZ, SWAP) as one pass over
 * the state, best of 5, against one read-modify-write pass over the same bytes.
 */
function singleGatePasses(floorPass: (n: number, threads: number) => number | null): GatePass[] {
  if (addon === null || !ENGINES.includes('native')) return [];
  const n = Math.max(...QUBITS.filter((q) => q <= 24));
  const k = nativeKernels(addon);
  collect();
  const s = k.alloc(n).fill(Math.SQRT1_2 ** n); // readied as a job's state is
  const h = Float64Array.of(Math.SQRT1_2, 0, Math.SQRT1_2, 0, Math.SQRT1_2, 0, -Math.SQRT1_2, 0);
  const rz = Float64Array.of(Math.cos(0.3), -Math.sin(0.3), Math.cos(0.3), Math.sin(0.3));
  const gates: [string, () => void][] = [
    ['H q0', () => k.matrix1(s, n, 0, h)],
    ['H q1', () => k.matrix1(s, n, 1, h)],
    ['H q6', () => k.matrix1(s, n, 6, h)],
    ['H q12', () => k.matrix1(s, n, 12, h)],
    [`H q${n - 1}`, () => k.matrix1(s, n, n - 1, h)],
    ['RZ q12 (diagonal)', () => k.diagonal1(s, n, 12, rz)],
    ['CNOT 3→9', () => k.cnot(s, n, 3, 9)],
    [`CNOT 0→${n - 1}`, () => k.cnot(s, n, 0, n - 1)],
    ['CZ 3,9', () => k.cz(s, n, 3, 9)],
    [`SWAP 2,${n - 2}`, () => k.swap(s, n, 2, n - 2)],
  ];
  const out: GatePass[] = [];
  console.log(`  unfused single-gate passes, native, ${n} qubits (best of 5):`);
  for (const threads of [1, 2]) {
    addon.setThreads(threads);
    const floorMs = 1000 * (floorPass(n, threads) ?? Number.NaN);
    for (const [gate, run] of gates) {
      let best = Number.POSITIVE_INFINITY;
      for (let r = 0; r < 5; r++) {
        const t0 = performance.now();
        run();
        best = Math.min(best, performance.now() - t0);
      }
      out.push({ gate, qubits: n, threads, ms: best, floorMs, fractionOfFloor: floorMs / best });
      console.log(
        `    ${threads}t ${gate.padEnd(18)} ${best.toFixed(2).padStart(7)} ms  floor ${floorMs.toFixed(2)} ms  ${((100 * floorMs) / best).toFixed(0)} %`,
      );
    }
  }
  return out;
}

// ---------------------------------------------------------------- end to end

interface EndToEnd {
  qubits: number;
  /** Cold: a fresh daemon's first job against the engine with no cached state. */
  engineSeconds: number;
  jobSeconds: number;
  runSeconds: number;
  ratio: number;
  /** Warm: best of later jobs against the engine reusing its cached state. */
  engineWarmSeconds: number;
  jobWarmSeconds: number;
  warmRatio: number;
  engine: string;
}

/** Warm repetitions of the end-to-end pair (best of these). */
const E2E_WARM_RUNS = 4;

async function endToEnd(): Promise<EndToEnd | null> {
  const { call, jobClient, newTenant, removeStateDir, startDaemon, watchJob } = await import(
    '../test/support/daemon.js'
  );
  const n = 24;
  const text = randomQasm(n, RANDOM_LAYERS, RANDOM_SEED);
  const p = circuit('random', n);
  const info = engineInfo();
  const kernels = info.name === 'native' ? nativeKernels(addon!) : jsKernels;
  if (info.name === 'native') addon!.setThreads(info.threads ?? 2);
  const choice = { kernels, fusion: FUSION_WIDTH_DEFAULT[info.name] };
  const engineRun = (): number => {
    collect();
    const t0 = performance.now();
    const states = finalStates(p, choice);
    const seconds = (performance.now() - t0) / 1000;
    for (const st of states) kernels.release(st.state, n);
    return seconds;
  };
  clearStateCache(); // cold, as the first job on a fresh daemon is
  const engineCold = engineRun();
  let engineWarm = Number.POSITIVE_INFINITY;
  for (let r = 0; r < E2E_WARM_RUNS; r++) engineWarm = Math.min(engineWarm, engineRun());
  const d = await startDaemon();
  try {
    const t = await newTenant(d, 'bench-sim', 'TIER_ENTERPRISE');
    const jobs = jobClient(d, t.apiKey);
    const job = async (seed: string) => {
      const t1 = performance.now();
      const sub = await call<{ job: { job_id: string } }>(jobs, 'SubmitJob', {
        program: { format: 'PROGRAM_FORMAT_OPENQASM2', source: text },
        shots: 1,
        seed,
      });
      const events = await watchJob(jobs, sub.job.job_id);
      const seconds = (performance.now() - t1) / 1000;
      const state = events.at(-1)?.job.state;
      if (state !== 'JOB_STATE_DONE') throw new Error(`job ended ${state}`);
      const r = await call<{ run_ms: number; engine: string }>(jobs, 'GetJobResult', {
        job_id: sub.job.job_id,
      });
      return { seconds, run: Number(r.run_ms) / 1000, engine: r.engine };
    };
    const cold = await job('7');
    // Later jobs of the same size reuse a pool thread's cached state when they land on a thread
    // that ran one (Piscina picks the thread): best of a few, as a warm daemon serves them.
    let warm = cold;
    for (let r = 0; r < E2E_WARM_RUNS; r++) {
      const w = await job(String(8 + r));
      if (w.seconds < warm.seconds) warm = w;
    }
    jobs.close();
    const ratio = cold.seconds / engineCold;
    const warmRatio = warm.seconds / engineWarm;
    console.log(
      `  end to end, random ${n}q job through gRPC (engine ${cold.engine}), target ≤ 1.3×:\n` +
        `    cold (fresh daemon, first job): ${cold.seconds.toFixed(3)} s (run ${cold.run.toFixed(3)} s) vs engine alone cold ${engineCold.toFixed(3)} s = ${ratio.toFixed(2)}×\n` +
        `    warm (best of ${E2E_WARM_RUNS} later jobs): ${warm.seconds.toFixed(3)} s (run ${warm.run.toFixed(3)} s) vs engine alone warm ${engineWarm.toFixed(3)} s = ${warmRatio.toFixed(2)}×`,
    );
    return {
      qubits: n,
      engineSeconds: engineCold,
      jobSeconds: cold.seconds,
      runSeconds: cold.run,
      ratio,
      engineWarmSeconds: engineWarm,
      jobWarmSeconds: warm.seconds,
      warmRatio,
      engine: cold.engine,
    };
  } finally {
    await d.stop();
    removeStateDir(d.stateDir);
  }
}

// ---------------------------------------------------------------- HTML report

function html(report: {
  date: string;
  rows: Row[];
  gates: GatePass[];
  bandwidth: (Bandwidth | null)[];
  e2e: EndToEnd | null;
  isa: string | null;
}): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const charts = CIRCUITS.map((c) =>
    lineChart(
      c,
      report.rows.filter((r) => r.circuit === c),
    ),
  ).join('\n');
  const bars = barChart(report.rows.filter((r) => r.fractionOfFloor !== null));
  const table = report.rows
    .map(
      (r) =>
        `<tr><td>${r.circuit}</td><td>${r.qubits}</td><td>${esc(configName(r))}</td><td>${r.passes}</td><td>${r.seconds === null ? esc(r.skipped ?? '') : r.seconds.toFixed(3)}</td><td>${r.fractionOfFloor === null ? '' : `${(100 * r.fractionOfFloor).toFixed(0)} %`}</td></tr>`,
    )
    .join('\n');
  const bw = report.bandwidth
    .map((b) => `${b!.threads} thread(s): ${b!.gbPerSecond.toFixed(1)} GB/s`)
    .join(', ');
  const e2e =
    report.e2e === null
      ? 'not run'
      : `${report.e2e.qubits}-qubit random job ${report.e2e.jobSeconds.toFixed(3)} s vs engine ${report.e2e.engineSeconds.toFixed(3)} s = ${report.e2e.ratio.toFixed(2)}×`;
  return `<!doctype html><html><head><meta charset="utf-8"><title>bench/sim ${esc(report.date)}</title>
<style>body{font:14px sans-serif;margin:2em}svg{border:1px solid #ccc;margin:0 1em 1em 0}td,th{padding:2px 8px;text-align:right}</style></head><body>
<h1>bench/sim — ${esc(report.date)}</h1>
<p>ISA: ${esc(report.isa ?? 'native engine unavailable')}. Bandwidth floor (read-modify-write over 1 GiB): ${esc(bw)}. End to end: ${esc(e2e)}.</p>
<h2>Time vs qubits (log scale)</h2>${charts}
<h2>Fraction of the bandwidth floor</h2>${bars}
<h2>Unfused single-gate passes (native)</h2><table><tr><th>threads</th><th>gate</th><th>ms</th><th>floor ms</th><th>of floor</th></tr>${report.gates.map((g) => `<tr><td>${g.threads}</td><td>${esc(g.gate)}</td><td>${g.ms.toFixed(2)}</td><td>${g.floorMs.toFixed(2)}</td><td>${(100 * g.fractionOfFloor).toFixed(0)} %</td></tr>`).join('')}</table>
<h2>All results</h2><table><tr><th>circuit</th><th>n</th><th>config</th><th>passes</th><th>seconds</th><th>of floor</th></tr>${table}</table>
</body></html>\n`;
}

const COLOURS = [
  '#1b9e77',
  '#d95f02',
  '#7570b3',
  '#e7298a',
  '#66a61e',
  '#e6ab02',
  '#a6761d',
  '#666',
];

function lineChart(title: string, rows: Row[]): string {
  const W = 460;
  const H = 300;
  const done = rows.filter((r) => r.seconds !== null);
  if (done.length === 0) return '';
  const xs = [...new Set(rows.map((r) => r.qubits))].sort((a, b) => a - b);
  const ys = done.map((r) => Math.log10(r.seconds!));
  const [y0, y1] = [Math.floor(Math.min(...ys)), Math.ceil(Math.max(...ys))];
  const x = (n: number) => 50 + ((n - xs[0]!) / Math.max(1, xs.at(-1)! - xs[0]!)) * (W - 200);
  const y = (s: number) => H - 30 - ((Math.log10(s) - y0) / Math.max(1, y1 - y0)) * (H - 60);
  const names = [...new Set(rows.map(configName))];
  const lines = names.map((name, i) => {
    const pts = done
      .filter((r) => configName(r) === name)
      .map((r) => `${x(r.qubits).toFixed(1)},${y(r.seconds!).toFixed(1)}`);
    return `<polyline fill="none" stroke="${COLOURS[i % COLOURS.length]}" stroke-width="2" points="${pts.join(' ')}"/><text x="${W - 140}" y="${20 + 16 * i}" fill="${COLOURS[i % COLOURS.length]}">${name}</text>`;
  });
  const ticks = [];
  for (let e = y0; e <= y1; e++) ticks.push(`<text x="4" y="${y(10 ** e) + 4}">1e${e} s</text>`);
  for (const n of xs) ticks.push(`<text x="${x(n) - 6}" y="${H - 10}">${n}</text>`);
  return `<svg width="${W}" height="${H}"><text x="50" y="16" font-weight="bold">${title}</text>${ticks.join('')}${lines.join('')}</svg>`;
}

function barChart(rows: Row[]): string {
  const W = 900;
  const rowH = 14;
  const H = 20 + rows.length * rowH;
  const bars = rows.map((r, i) => {
    const f = r.fractionOfFloor!;
    const w = Math.min(1, f) * (W - 330);
    return `<text x="4" y="${16 + i * rowH + 10}" font-size="11">${r.circuit} ${r.qubits}q ${configName(r)}</text><rect x="260" y="${16 + i * rowH}" width="${w.toFixed(1)}" height="${rowH - 3}" fill="${f >= 0.7 ? '#1b9e77' : '#d95f02'}"/><text x="${265 + w}" y="${16 + i * rowH + 10}" font-size="11">${(100 * f).toFixed(0)} %</text>`;
  });
  return `<svg width="${W}" height="${H}">${bars.join('')}</svg>`;
}

await main();
