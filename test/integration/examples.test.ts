/**
 * The README's example clients, run as a user runs them (`npx tsx examples/...` with QMK_API_KEY)
 * against a real daemon: their output must show correct statistics, and a refused program must
 * list its violations.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Daemon, newTenant, removeStateDir, startDaemon } from '../support/daemon.js';

const run = promisify(execFile);
const ROOT = new URL('../..', import.meta.url).pathname;
const EXAMPLES = join(ROOT, 'examples/qvm');

let d: Daemon;
let apiKey: string;

test.before(async () => {
  d = await startDaemon();
  const t = await newTenant(d, 'examples');
  t.client.close();
  apiKey = t.apiKey;
});

test.after(async () => {
  await d.stop();
  removeStateDir(d.stateDir);
});

async function example(
  script: string,
  args: string[],
): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await run(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'examples', script), ...args, '--address', d.address],
      {
        cwd: ROOT,
        env: { ...process.env, QMK_API_KEY: apiKey },
      },
    );
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, out: x.stdout, err: x.stderr };
  }
}

/** `  key: count (p %)` lines of an example's output. */
function counts(out: string): Record<string, number> {
  return Object.fromEntries(
    [...out.matchAll(/^ {2}(\S+): (\d+) \(/gm)].map((m) => [m[1]!, Number(m[2])]),
  );
}

test('examples/bell.ts: 200 interactive Bell pairs → only 00 and 11', async () => {
  const r = await example('bell.ts', ['--repetitions', '200']);
  assert.is(r.code, 0, r.err);
  const c = counts(r.out);
  assert.is(c['01'], 0);
  assert.is(c['10'], 0);
  assert.is(c['00']! + c['11']!, 200);
  assert.ok(c['00']! > 50 && c['11']! > 50, r.out);
});

test('examples/job.ts: an OpenQASM Bell job watched to DONE → only 00 and 11', async () => {
  const file = join(d.stateDir, 'bell.qasm');
  writeFileSync(
    file,
    'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\nmeasure q -> c;\n',
  );
  const r = await example('job.ts', [file, '--shots', '4000', '--seed', '7']);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /^job [0-9a-f]+ \(seed 7\)$/m);
  assert.match(r.out, /^ {2}DONE 4000\/4000 shots$/m);
  const c = counts(r.out);
  assert.equal(Object.keys(c).sort(), ['00', '11']);
  assert.is(c['00']! + c['11']!, 4000);
  assert.ok(Math.abs(c['00']! / 4000 - 0.5) < 5 * Math.sqrt(0.25 / 4000), r.out);
});

test('examples/job.ts: the shipped GHZ example (QVM JSON) → 0000 and 1111 only', async () => {
  const r = await example('job.ts', [join(EXAMPLES, 'ghz_state.qvm.json'), '--shots', '2000']);
  assert.is(r.code, 0, r.err);
  assert.equal(Object.keys(counts(r.out)).sort(), ['0000', '1111']);
});

test('examples/job.ts: a refused program prints every violation and exits 1', async () => {
  const file = join(d.stateDir, 'bad.qasm');
  writeFileSync(
    file,
    'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nfoo q[0];\ncx q[0],q[0];\n',
  );
  const r = await example('job.ts', [file]);
  assert.is(r.code, 1);
  assert.match(r.err, /^refused: program: 2 violation\(s\)/m);
  assert.match(r.err, /^ {2}4:\d+/m);
  assert.match(r.err, /^ {2}5:\d+/m);
});

test.run();
