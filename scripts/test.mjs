#!/usr/bin/env node
// Test runner for `npm test`: runs every test file under test/ in its own Node process (so a crash
// in one file cannot hide the others), two at a time (the CI machine has two cores), sums uvu's
// per-file totals and ends with the one line CI reads: `N passed, N failed`.
// Why not plain `uvu`: its summary shape is not the line CI parses, and one process for all files
// would let a daemon-spawning integration test leak state into unit tests.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname;
const FILE_TIMEOUT_MS = 15 * 60 * 1000;
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

function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: ROOT,
      env: { ...process.env, FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), FILE_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const text = out.replace(ANSI, '');
      const total = [...text.matchAll(/Total:\s+(\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
      const passed = [...text.matchAll(/Passed:\s+(\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
      let failed = total - passed;
      // A file that died or exited non-zero without reporting a failure still counts as one.
      if ((code !== 0 || signal) && failed === 0) failed = 1;
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
    console.log(`${mark} ${rel}  (${r.passed} passed, ${r.failed} failed, ${(r.ms / 1000).toFixed(1)} s)`);
    if (r.failed > 0) console.log(r.text.split('\n').map((l) => `     ${l}`).join('\n'));
  }
}
await Promise.all(Array.from({ length: Math.max(1, PARALLEL) }, lane));
const passed = results.reduce((a, r) => a + r.passed, 0);
const failed = results.reduce((a, r) => a + r.failed, 0);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && files.length > 0 ? 0 : 1);
