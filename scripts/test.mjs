#!/usr/bin/env node
// Test runner for `npm test`: runs every test file under test/ in its own Node process (so a crash
// in one file cannot hide the others), two at a time (the CI machine has two cores), sums uvu's
// per-file totals and ends with the one line CI reads: `N passed, N failed`.
// Why not plain `uvu`: its summary shape is not the line CI parses, and one process for all files
// would let a daemon-spawning integration test leak state into unit tests.
// Each file runs in a process group of its own: a file that overruns its time is killed with
// everything it started (its daemons too), and any process a file leaves behind when it ends is
// killed and counted as a failure, since every test must stop what it starts.
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname;
/** A file running longer than this is killed and reported (the slowest takes about 1.5 min here). */
const FILE_TIMEOUT_MS = Number(process.env.QMK_TEST_FILE_TIMEOUT_S ?? 300) * 1000;
const PARALLEL = Number(process.env.QMK_TEST_PARALLEL ?? 2);

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (/\.test\.ts$/.test(name)) out.push(p);
  }
  return out;
}

const filter = process.argv.slice(2);
const files = walk(join(ROOT, 'test')).filter(
  (f) => filter.length === 0 || filter.some((x) => f.includes(x)),
);
// biome-ignore lint/suspicious/noControlCharactersInRegex: strips ANSI colour codes
const ANSI = /\u001b\[[0-9;]*m/g;

/** Processes still in process group `pgid` (read from /proc; empty where /proc is missing). */
function groupMembers(pgid) {
  const out = [];
  let entries = [];
  try {
    entries = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return out;
  }
  for (const pid of entries) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') out.push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function killGroup(pgid) {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Process groups of the files running now: killed with the runner if it is interrupted. */
const running = new Set();
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    for (const pgid of running) killGroup(pgid);
    process.exit(130);
  });
}

function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: ROOT,
      env: { ...process.env, FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, so its daemons can be found and killed
    });
    running.add(child.pid);
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, FILE_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child.pid);
      const leftover = groupMembers(child.pid);
      if (leftover.length > 0) killGroup(child.pid);
      if (timedOut)
        out += `\nTIMEOUT: still running after ${FILE_TIMEOUT_MS / 1000} s; killed with every process it started\n`;
      if (leftover.length > 0)
        out += `\nLEFT RUNNING: ${leftover.length} process(es) the file started and did not stop (${leftover.join(', ')}); killed\n`;
      const text = out.replace(ANSI, '');
      const total = [...text.matchAll(/Total:\s+(\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
      const passed = [...text.matchAll(/Passed:\s+(\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
      let failed = total - passed;
      // A file that died or exited non-zero without reporting a failure still counts as one.
      if ((code !== 0 || signal) && failed === 0) failed = 1;
      if ((timedOut || leftover.length > 0) && failed === 0) failed = 1;
      if (total === 0 && failed === 0) failed = 1; // a test file that ran no test is a defect
      resolve({ file, passed, failed, code, signal, text, ms: Date.now() - started });
    });
  });
}

const results = [];
let next = 0;
async function lane() {
  while (next < files.length) {
    const file = files[next++];
    const r = await runFile(file);
    results.push(r);
    const rel = relative(ROOT, r.file);
    const mark = r.failed === 0 ? 'ok  ' : 'FAIL';
    console.log(
      `${mark} ${rel}  (${r.passed} passed, ${r.failed} failed, ${(r.ms / 1000).toFixed(1)} s)`,
    );
    if (r.failed > 0)
      console.log(
        r.text
          .split('\n')
          .map((l) => `     ${l}`)
          .join('\n'),
      );
  }
}
await Promise.all(Array.from({ length: Math.max(1, PARALLEL) }, lane));
const passed = results.reduce((a, r) => a + r.passed, 0);
const failed = results.reduce((a, r) => a + r.failed, 0);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && files.length > 0 ? 0 : 1);
