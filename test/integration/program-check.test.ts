/**
 * Large programs are checked (parsed and verified) off the main thread, within a time and a heap
 * budget: while one is being checked the daemon answers other calls, and a check past either
 * budget is refused with LIMIT_EXCEEDED; small programs are checked inline. The misbehaving
 * checks are made with failpoints (`check.spin`, `check.oom`, matched by the program's length).
 */
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type Daemon,
  call,
  callError,
  jobClient,
  newTenant,
  removeStateDir,
  startDaemon,
} from '../support/daemon.js';

const BELL =
  'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\nmeasure q -> c;\n';
/** A valid program over the inline size (64 KiB): checked on the check thread. */
const LARGE = `${BELL}//${'p'.repeat(64 * 1024)}\n`;

const validate = (source: string) => ({
  program: { format: 'PROGRAM_FORMAT_OPENQASM2', source },
  shots: 10,
});

async function withDaemon(env: NodeJS.ProcessEnv, fn: (d: Daemon) => Promise<void>) {
  const d = await startDaemon(undefined, env);
  try {
    await fn(d);
  } finally {
    await d.stop();
    removeStateDir(d.stateDir);
  }
}

test('a check that never ends: other calls are answered meanwhile; it is refused at its time budget', async () => {
  await withDaemon(
    { QMK_FAILPOINTS: `check.spin:${LARGE.length}`, QMK_PROGRAM_CHECK_SECONDS_MAX: '5' },
    async (d) => {
      const a = await newTenant(d, 'checker-a');
      const b = await newTenant(d, 'checker-b');
      const jobs = jobClient(d, a.apiKey);
      try {
        let settled = false;
        const pending = callError(jobs, 'ValidateProgram', validate(LARGE)).finally(() => {
          settled = true;
        });
        // The main thread is free: another tenant's calls, and a small program (checked inline).
        const u = await call<{ usage: { qubits_live: number } }>(b.client, 'GetUsage', {});
        assert.is(u.usage.qubits_live, 0);
        const small = await call<{ valid: boolean }>(jobs, 'ValidateProgram', validate(BELL));
        assert.is(small.valid, true);
        assert.not.ok(settled, 'the spinning check was still running while those were answered');
        const err = await pending;
        assert.is(err.code, grpc.status.RESOURCE_EXHAUSTED);
        assert.is(err.metadata.get('qmk-error-code')[0], 'LIMIT_EXCEEDED');
        assert.is(err.details, 'program: checking it took longer than 5 s');
      } finally {
        jobs.close();
        a.client.close();
        b.client.close();
      }
    },
  );
});

test('a check that never stops allocating is refused at its heap budget; the next check works', async () => {
  await withDaemon({ QMK_FAILPOINTS: `check.oom:${LARGE.length}` }, async (d) => {
    const a = await newTenant(d, 'checker-oom');
    const jobs = jobClient(d, a.apiKey);
    try {
      const err = await callError(jobs, 'ValidateProgram', validate(LARGE));
      assert.is(err.metadata.get('qmk-error-code')[0], 'LIMIT_EXCEEDED');
      assert.match(err.details, /^program: checking it needed more than \d+ MiB$/);
      const ok = await call<{ valid: boolean }>(jobs, 'ValidateProgram', validate(`${LARGE}\n`));
      assert.is(ok.valid, true);
    } finally {
      jobs.close();
      a.client.close();
    }
  });
});

test.run();
