/**
 * The damage matrix, one test per case: a state directory that served a tenant, stopped cleanly,
 * then damaged offline. Every case is refused at start by a clean exit (status 1, no signal)
 * whose message names the data file and the problem; none serves state. A deleted lock file is
 * no damage: the daemon starts and serves what it had.
 */
import { closeSync, cpSync, openSync, rmSync, statSync, truncateSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  adminClient,
  call,
  type Daemon,
  newTenant,
  removeStateDir,
  runDaemonToExit,
  startDaemon,
  tempStateDir,
} from '../support/daemon.js';

let pristine = '';

test.before(async () => {
  pristine = tempStateDir();
  let d: Daemon | undefined;
  try {
    d = await startDaemon(pristine);
    const t = await newTenant(d, 'acme');
    for (let i = 0; i < 4; i++) await call(t.client, 'OpenSession', {});
    t.client.close();
  } finally {
    if (d) await d.stop();
  }
});

test.after(() => {
  if (pristine !== '') removeStateDir(pristine);
});

/** A copy of the served state directory, damaged by `damage(dataFile)`. */
function damagedCopy(damage: (dataFile: string, dir: string) => void): string {
  const dir = tempStateDir();
  cpSync(pristine, dir, { recursive: true });
  damage(join(dir, 'db', 'qmk.lmdb'), dir);
  return dir;
}

function zeroBytes(file: string, offset: number, length = 4): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, Buffer.alloc(length), 0, length, offset);
  } finally {
    closeSync(fd);
  }
}

async function expectRefused(damage: (dataFile: string, dir: string) => void, problem: RegExp): Promise<void> {
  const dir = damagedCopy(damage);
  try {
    const r = await runDaemonToExit(dir);
    assert.is(r.signal, null, `ended by a signal:\n${r.output}`);
    assert.is(r.code, 1, r.output);
    const line = r.output.split('\n').find((l) => l.includes('"failed to start"')) ?? '';
    const file = join(dir, 'db', 'qmk.lmdb');
    assert.ok(line.includes(`state file damaged: ${file}: `), r.output);
    assert.match(line, problem);
    assert.not.match(r.output, /"msg":"listening"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('damage: data file emptied → refused: empty', async () => {
  await expectRefused((f) => truncateSync(f, 0), /empty \(0 bytes\) \(the state directory was initialised/);
});

test('damage: data file deleted → refused: missing, with how to start fresh', async () => {
  await expectRefused((f) => unlinkSync(f), /missing .*to start fresh deliberately move/);
});

test('damage: data file truncated to half → refused (the reader crashed in the check, not the daemon)', async () => {
  await expectRefused((f) => truncateSync(f, Math.floor(statSync(f).size / 2)), /crashed the reader \(SIG(BUS|SEGV)\)|cannot/);
});

test('damage: zero bytes in the first meta page (offset 16) → refused', async () => {
  await expectRefused((f) => zeroBytes(f, 16), /crashed the reader|cannot/);
});

test('damage: zero bytes in a page header (offset 8208) → refused naming the database', async () => {
  await expectRefused((f) => zeroBytes(f, 8192 + 16), /cannot be read|crashed the reader/);
});

test('damage: the marker is garbage → refused naming the marker', async () => {
  const dir = damagedCopy((_f, d) => {
    const fd = openSync(join(d, 'state.json'), 'w');
    writeSync(fd, 'not json');
    closeSync(fd);
  });
  try {
    const r = await runDaemonToExit(dir);
    assert.is(r.code, 1, r.output);
    assert.ok(r.output.includes(`state file damaged: ${join(dir, 'state.json')}: not a qmkd state marker`), r.output);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('damage: the lock file deleted → starts normally and serves the tenant', async () => {
  const dir = damagedCopy((_f, d) => unlinkSync(join(d, 'qmkd.lock')));
  let d: Daemon | undefined;
  try {
    d = await startDaemon(dir);
    const admin = adminClient(d);
    const list = await call<{ tenants: { name: string }[] }>(admin, 'ListTenants', {});
    assert.equal(list.tenants.map((t) => t.name), ['acme']);
    admin.close();
  } finally {
    if (d) await d.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
