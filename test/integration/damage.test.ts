/**
 * The damage matrix, one test per case: a state directory that served a tenant, stopped cleanly,
 * then damaged offline. Every case is refused at start by a clean exit (status 1, no signal)
 * whose message names the data file and the problem; none serves state. A deleted lock file is
 * no damage: the daemon starts and serves what it had.
 */
import {
  closeSync,
  cpSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { open } from 'lmdb';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { seededRandom } from '../../src/sim/circuits.js';
import {
  type Daemon,
  adminClient,
  call,
  newTenant,
  removeStateDir,
  runDaemonToExit,
  startDaemon,
  tempStateDir,
} from '../support/daemon.js';

let pristine = '';
/** The data file as it was earlier in the same directory's life (for the rollback case). */
let older: Buffer = Buffer.alloc(0);
let tenantId = '';

test.before(async () => {
  pristine = tempStateDir();
  let d: Daemon | undefined;
  try {
    d = await startDaemon(pristine);
    const t = await newTenant(d, 'acme');
    tenantId = t.tenantId;
    for (let i = 0; i < 4; i++) await call(t.client, 'OpenSession', {});
    t.client.close();
    assert.is(await d.stop(), 0);
    older = readFileSync(join(pristine, 'db', 'qmk.lmdb'));
    d = await startDaemon(pristine);
    const u = await newTenant(d, 'later');
    await call(u.client, 'OpenSession', {});
    u.client.close();
  } finally {
    if (d) await d.stop();
  }
});

test.after(() => {
  if (pristine !== '') removeStateDir(pristine);
});

/** The raw stored bytes of one record of the pristine data file. */
function rawRecord(db: string, key: string | number): Buffer {
  const raw = open({ path: join(pristine, 'db', 'qmk.lmdb'), maxDbs: 16, readOnly: true });
  try {
    return Buffer.from(
      raw
        .openDB({ name: db, keyEncoding: 'ordered-binary', encoding: 'binary' })
        .get(key) as Buffer,
    );
  } finally {
    raw.close();
  }
}

/**
 * Every place a record's bytes sit in the data file. LMDB stores small values inline in their
 * page and copies pages on write, so stale copies of a record can remain in free pages: an
 * attacker editing the record must edit the live one, and editing every copy is sure to.
 */
function offsetsOf(file: string, bytes: Buffer): number[] {
  const data = readFileSync(file);
  const out: number[] = [];
  for (let at = data.indexOf(bytes); at >= 0; at = data.indexOf(bytes, at + 1)) out.push(at);
  assert.ok(out.length > 0, 'the record is in the file');
  return out;
}

/** A copy of the served state directory, damaged by `damage(dataFile)`. */
function damagedCopy(damage: (dataFile: string, dir: string) => void): string {
  const dir = tempStateDir();
  cpSync(pristine, dir, { recursive: true });
  damage(join(dir, 'db', 'qmk.lmdb'), dir);
  return dir;
}

function writeFileAt(file: string, offset: number, bytes: Buffer): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}

function zeroBytes(file: string, offset: number, length = 4): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, Buffer.alloc(length), 0, length, offset);
  } finally {
    closeSync(fd);
  }
}

async function expectRefused(
  damage: (dataFile: string, dir: string) => void,
  problem: RegExp,
): Promise<void> {
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
  await expectRefused(
    (f) => truncateSync(f, 0),
    /empty \(0 bytes\) \(the state directory was initialised/,
  );
});

test('damage: data file deleted → refused: missing, with how to start fresh', async () => {
  await expectRefused((f) => unlinkSync(f), /missing .*to start fresh deliberately move/);
});

test('damage: data file truncated to half → refused (the reader crashed in the check, not the daemon)', async () => {
  await expectRefused(
    (f) => truncateSync(f, Math.floor(statSync(f).size / 2)),
    /crashed the reader \(SIG(BUS|SEGV)\)|cannot/,
  );
});

test('damage: zero bytes in the first meta page (offset 16) → refused', async () => {
  await expectRefused((f) => zeroBytes(f, 16), /crashed the reader|cannot/);
});

test('damage: zero bytes in the page holding a tenant record → refused', async () => {
  await expectRefused((f) => {
    // The first 32 bytes of each page that holds it: its header, whatever LMDB version wrote it.
    for (const at of offsetsOf(f, rawRecord('tenants', tenantId)))
      zeroBytes(f, Math.floor(at / 4096) * 4096, 32);
  }, /cannot|crashed the reader|record tenants/);
});

test('damage: one tenant record edited (tier pro → ent in place) → refused naming the record', async () => {
  await expectRefused(
    (f) => {
      const value = rawRecord('tenants', tenantId);
      for (const at of offsetsOf(f, value))
        writeFileAt(f, at + value.indexOf(Buffer.from('pro')), Buffer.from('ent'));
    },
    new RegExp(`record tenants/${tenantId}: authentication failed`),
  );
});

test('damage: an old audit record edited → refused naming it', async () => {
  await expectRefused((f) => {
    const value = rawRecord('audit', 2);
    const inRecord = value.indexOf(Buffer.from('CreateTenant'));
    assert.ok(inRecord > 0);
    for (const at of offsetsOf(f, value))
      writeFileAt(f, at + inRecord, Buffer.from('DeleteTenant'));
  }, /record audit\/2: authentication failed/);
});

test('damage: random byte flips inside records (seeded) → each refused', async () => {
  const rand = seededRandom(20261202);
  const records: [string, string | number][] = [
    ['tenants', tenantId],
    ['audit', 1],
    ['audit', 3],
    ['credentials', ''],
    ['signing_keys', 1],
  ];
  const raw = open({ path: join(pristine, 'db', 'qmk.lmdb'), maxDbs: 16, readOnly: true });
  records[3]![1] = String(
    [
      ...raw
        .openDB({ name: 'credentials', keyEncoding: 'ordered-binary', encoding: 'binary' })
        .getKeys(),
    ][0],
  );
  raw.close();
  for (const [db, key] of records) {
    const value = rawRecord(db, key);
    const flip = Math.floor(rand() * value.length);
    const bit = 1 << Math.floor(rand() * 8);
    console.log(`  flip: ${db}/${key} byte ${flip} of ${value.length}, bit ${bit} (seed 20261202)`);
    await expectRefused((f) => {
      for (const at of offsetsOf(f, value))
        writeFileAt(f, at + flip, Buffer.of(value[flip]! ^ bit));
    }, /authentication failed|not a qmkd record|truncated|undecodable|cannot|crashed the reader|audit chain broken/);
  }
});

test('damage: the data file replaced by an older copy of itself → refused: rolled back', async () => {
  await expectRefused(
    (f) => writeFileSync(f, older),
    /rolled back: its audit log ends at seq \d+, but seq \d+ was recorded/,
  );
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
    assert.ok(
      r.output.includes(`state file damaged: ${join(dir, 'state.json')}: not a qmkd state marker`),
      r.output,
    );
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
    assert.equal(
      list.tenants.map((t) => t.name),
      ['acme', 'later'],
    );
    admin.close();
  } finally {
    if (d) await d.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
