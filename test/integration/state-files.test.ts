/**
 * Files and secrets: the state directory's modes are tightened at every start, and the
 * development tenant's key reaches a terminal only (otherwise a 0600 file) and never exists under
 * systemd. Against the real daemon.
 */
import { chmodSync, existsSync, lstatSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  call,
  kernelClient,
  removeStateDir,
  startDaemon,
  tempStateDir,
} from '../support/daemon.js';

const mode = (p: string) => lstatSync(p).mode & 0o777;

/** Every path under `dir` (itself included), links left out. */
function walk(dir: string): string[] {
  const out = [dir];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p);
    if (st.isSymbolicLink()) continue;
    if (st.isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

/** Not under systemd, whatever runs the tests. */
const NOT_SYSTEMD = { INVOCATION_ID: '', NOTIFY_SOCKET: '' };

test('a state directory with loose modes is tightened at start: 0700 directories, 0600 files, 0400 key', async () => {
  const dir = tempStateDir();
  try {
    const first = await startDaemon(dir);
    assert.is(await first.stop(), 0);
    for (const p of walk(dir)) {
      const st = lstatSync(p);
      if (st.isSocket()) continue;
      chmodSync(p, st.isDirectory() ? 0o755 : 0o644);
    }
    const d = await startDaemon(dir);
    try {
      for (const p of walk(dir)) {
        const st = lstatSync(p);
        if (st.isSocket()) continue;
        const want = st.isDirectory() ? 0o700 : p.endsWith('/master.key') ? 0o400 : 0o600;
        assert.is(mode(p).toString(8), want.toString(8), p);
      }
      assert.match(d.output(), /"msg":"tightened the mode of a state file"/);
    } finally {
      await d.stop();
    }
  } finally {
    removeStateDir(dir);
  }
});

test("without a terminal the dev tenant's key goes to a 0600 file, not to stdout", async () => {
  const dir = tempStateDir();
  try {
    const d = await startDaemon(dir, { QMK_TEST_DEV_TENANT: '1', ...NOT_SYSTEMD });
    try {
      const file = join(dir, 'dev-tenant.key');
      assert.ok(existsSync(file), 'the key file exists');
      assert.is(mode(file).toString(8), '600');
      const key = readFileSync(file, 'utf8').trim();
      assert.ok(!d.output().includes(key), 'the key is not in the output');
      assert.ok(d.output().includes(file), 'the path is logged');
      const k = kernelClient(d, key);
      try {
        const u = await call<{ usage: { qubits_live: number } }>(k, 'GetUsage', {});
        assert.is(u.usage.qubits_live, 0, 'the key works');
      } finally {
        k.close();
      }
    } finally {
      await d.stop();
    }
  } finally {
    removeStateDir(dir);
  }
});

test('under systemd no dev tenant is created, even when asked for', async () => {
  const dir = tempStateDir();
  try {
    const d = await startDaemon(dir, { QMK_TEST_DEV_TENANT: '1', INVOCATION_ID: 'test-unit' });
    try {
      assert.not.ok(existsSync(join(dir, 'dev-tenant.key')));
      assert.match(d.output(), /no development tenant under systemd/);
    } finally {
      await d.stop();
    }
  } finally {
    removeStateDir(dir);
  }
});

test.run();
