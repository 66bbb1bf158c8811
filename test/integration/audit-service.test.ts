/**
 * The audit log as tenants and operators read it, on a real daemon: a tenant's listing holds only
 * records that concern it (both tenants see their channel), proofs of its own records verify —
 * here and in an independent Python verifier (hashlib only) — a proof of another tenant's record
 * is NOT_FOUND, tree heads are signed by a key GetSigningKeys lists, and consistency proofs join
 * an earlier head to a later one. qmkctl checks heads and proofs itself, and `audit verify` names
 * a record changed in the data file behind the daemon's back.
 */
import { spawnSync } from 'node:child_process';
import { createPublicKey, verify } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from 'lmdb';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { treeHeadPayload } from '../../src/kernel/audit-log.js';
import { DataKeys } from '../../src/security/data-keys.js';
import { DEV_MASTER_KEY_FILE, readMasterKey } from '../../src/security/master-key.js';
import { leafHash, verifyConsistency, verifyInclusion } from '../../src/security/merkle.js';
import { RecordCodec } from '../../src/security/record-codec.js';
import {
  type AnyClient,
  type Daemon,
  type Wire,
  adminAuditClient,
  call,
  callError,
  channelClient,
  newTenant,
  removeStateDir,
  serviceClient,
  startDaemon,
} from '../support/daemon.js';
import { runQmkctl } from '../support/qmkctl.js';

const PY_VERIFIER = fileURLToPath(new URL('../support/rfc6962_verify.py', import.meta.url));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const ctl = (d: Daemon, ...args: string[]) => runQmkctl(d.adminSocket, args);

/** Runs the Python verifier on one query; true when it prints ok. */
function python(query: object): boolean {
  const r = spawnSync('python3', [PY_VERIFIER], {
    input: JSON.stringify(query),
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.error) throw r.error;
  if (r.status !== 0 && !r.stdout.startsWith('FAIL')) throw new Error(`python3: ${r.stderr}`);
  return r.status === 0 && r.stdout.trim() === 'ok';
}

/** Every record of a listing, following page tokens. */
async function listAll(client: AnyClient, req: object = {}): Promise<Wire[]> {
  const out: Wire[] = [];
  let token = '';
  do {
    const page = await call<Wire>(client, 'ListAuditRecords', { ...req, page_token: token });
    out.push(...page.records);
    token = page.next_page_token;
  } while (token !== '');
  return out;
}

/** A tree head's signature, checked with the key GetSigningKeys names for it. */
async function headSigned(channels: AnyClient, head: Wire): Promise<boolean> {
  const { keys } = await call<Wire>(channels, 'GetSigningKeys', {});
  const key = (keys as Wire[]).find((k) => k.key_id === head.key_id);
  if (!key) return false;
  const payload = treeHeadPayload(head.tree_size, head.root_hash, head.timestamp_unix_ms);
  if (!payload.equals(head.signed_payload)) return false;
  const pub = createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: key.public_key },
    format: 'jwk',
  });
  return verify(null, payload, pub, head.signature);
}

async function twoTenantsWithAChannel(d: Daemon) {
  const alice = await newTenant(d, 'alice');
  const bob = await newTenant(d, 'bob');
  await call(alice.client, 'OpenSession', {});
  await call(alice.client, 'OpenSession', {});
  await call(bob.client, 'OpenSession', {});
  const aliceChannels = channelClient(d, alice.apiKey);
  const bobChannels = channelClient(d, bob.apiKey);
  const { channel } = await call<Wire>(aliceChannels, 'RequestChannel', {
    peer_tenant: 'bob',
    max_entanglements: 3,
    expires_at_unix_ms: Date.now() + 3_600_000,
  });
  await call(bobChannels, 'RespondChannelRequest', {
    channel_id: channel.channel_id,
    approve: true,
  });
  const parties = {
    alice: {
      ...alice,
      audit: serviceClient(d, 'AuditService', alice.apiKey),
      channels: aliceChannels,
    },
    bob: { ...bob, audit: serviceClient(d, 'AuditService', bob.apiKey), channels: bobChannels },
  };
  /** Closes every client of both tenants. */
  const close = () => {
    for (const t of [parties.alice, parties.bob]) {
      for (const c of [t.client, t.audit, t.channels]) c.close();
    }
  };
  return { ...parties, channelId: channel.channel_id as string, close };
}

test('a tenant lists only the records that concern it; the operator lists all', async () => {
  const d = await startDaemon();
  const { alice, bob, channelId, close } = await twoTenantsWithAChannel(d);
  const admin = adminAuditClient(d);
  try {
    const mine = await listAll(alice.audit);
    const theirs = await listAll(bob.audit);
    const all = await listAll(admin);
    for (const r of mine)
      assert.ok(r.tenant_ids.includes(alice.tenantId), `alice sees ${r.action}`);
    for (const r of theirs) assert.ok(r.tenant_ids.includes(bob.tenantId), `bob sees ${r.action}`);
    const count = (rs: Wire[], action: string) => rs.filter((r) => r.action === action).length;
    assert.is(count(mine, 'OpenSession'), 2, "alice's two sessions, not bob's");
    assert.is(count(theirs, 'OpenSession'), 1);
    for (const rs of [mine, theirs]) {
      assert.ok(rs.some((r) => r.action === 'RequestChannel' && r.target === channelId));
      assert.ok(rs.some((r) => r.action === 'ApproveChannel' && r.target === channelId));
    }
    assert.ok(mine.some((r) => r.action === 'CreateTenant' && r.target === alice.tenantId));
    assert.not.ok(
      mine.some((r) => r.target === bob.tenantId),
      "nothing of bob's tenant",
    );
    assert.is(count(all, 'OpenSession'), 3);
    assert.is(all.length, all[all.length - 1]!.seq, 'the operator sees every record');
    // Filters and paging: newest first, by action, in pages of one.
    const newest = await call<Wire>(alice.audit, 'ListAuditRecords', {
      newest_first: true,
      page_size: 1,
    });
    assert.is(newest.records[0].seq, mine[mine.length - 1]!.seq);
    const sessions = await listAll(alice.audit, { action: 'OpenSession', page_size: 1 });
    assert.equal(
      sessions.map((r) => r.seq),
      mine.filter((r) => r.action === 'OpenSession').map((r) => r.seq),
    );
    const bobOnly = await listAll(admin, { tenant_id: bob.tenantId });
    assert.equal(
      bobOnly.map((r) => r.seq),
      theirs.map((r) => r.seq),
    );
    const refused = await callError(alice.audit, 'ListAuditRecords', { tenant_id: bob.tenantId });
    assert.is(refused.code, 3);
    assert.match(refused.details, /^tenant_id: /);
    const badToken = await callError(alice.audit, 'ListAuditRecords', { page_token: 'x' });
    assert.match(badToken.details, /^page_token: /);
  } finally {
    close();
    admin.close();
    await d.stop();
    removeStateDir(d.stateDir);
  }
});

test('proofs: a signed head, inclusion of own records (TypeScript and Python agree), consistency between heads', async () => {
  const d = await startDaemon();
  const { alice, bob, close } = await twoTenantsWithAChannel(d);
  try {
    const { head: first } = await call<Wire>(alice.audit, 'GetTreeHead', {});
    assert.ok(await headSigned(alice.channels, first), 'head signed by a GetSigningKeys key');
    assert.is(first.root_hash.length, 32);
    await call(alice.client, 'OpenSession', {});
    await call(bob.client, 'OpenSession', {});
    const mine = await listAll(alice.audit);
    const theirs = await listAll(bob.audit);
    for (const r of mine) {
      const p = await call<Wire>(alice.audit, 'GetInclusionProof', { leaf_index: r.leaf_index });
      const head = p.head;
      assert.ok(await headSigned(alice.channels, head));
      assert.equal(p.record.leaf_input, r.leaf_input);
      assert.equal(leafHash(p.record.leaf_input), p.record.leaf_hash);
      assert.ok(
        verifyInclusion(
          r.leaf_index,
          head.tree_size,
          p.record.leaf_hash,
          p.audit_path,
          head.root_hash,
        ),
      );
      const q = {
        kind: 'inclusion',
        index: r.leaf_index,
        size: head.tree_size,
        leaf_input: hex(p.record.leaf_input),
        path: p.audit_path.map(hex),
        root: hex(head.root_hash),
      };
      assert.ok(python(q), `python verifies record ${r.seq}`);
      const forged = { ...q, leaf_input: hex(Buffer.from(`${p.record.leaf_input.toString()} `)) };
      assert.not.ok(python(forged), 'python refuses a changed record');
      // The leaf input is the record: its fields, as listed.
      const parsed = JSON.parse(Buffer.from(p.record.leaf_input).toString('utf8'));
      assert.is(parsed.seq, r.seq);
      assert.is(parsed.action, r.action);
      assert.is(parsed.hash, r.hash);
    }
    // Bob's own records are NOT_FOUND to alice, as is a leaf beyond the log.
    const bobOnly = theirs.find((r) => !r.tenant_ids.includes(alice.tenantId))!;
    const denied = await callError(alice.audit, 'GetInclusionProof', {
      leaf_index: bobOnly.leaf_index,
    });
    assert.is(denied.code, 5);
    assert.match(denied.details, /^leaf_index: /);
    const beyond = await callError(alice.audit, 'GetInclusionProof', {
      leaf_index: 0,
      tree_size: 10_000,
    });
    assert.is(beyond.code, 3);
    assert.match(beyond.details, /^tree_size: /);
    // Consistency: the first head is a prefix of today's.
    const c = await call<Wire>(bob.audit, 'GetConsistencyProof', {
      first_tree_size: first.tree_size,
    });
    assert.equal(c.first.root_hash, first.root_hash, 'the same root for the same size');
    assert.ok(c.second.tree_size > first.tree_size);
    assert.ok(await headSigned(bob.channels, c.second));
    assert.ok(
      verifyConsistency(
        first.tree_size,
        c.second.tree_size,
        c.proof,
        first.root_hash,
        c.second.root_hash,
      ),
    );
    const q = {
      kind: 'consistency',
      size1: first.tree_size,
      size2: c.second.tree_size,
      proof: c.proof.map(hex),
      root1: hex(first.root_hash),
      root2: hex(c.second.root_hash),
    };
    assert.ok(python(q), 'python verifies the consistency proof');
    assert.not.ok(python({ ...q, root1: hex(c.second.root_hash) }), 'python refuses wrong roots');
  } finally {
    close();
    await d.stop();
    removeStateDir(d.stateDir);
  }
});

test('qmkctl audit head, list, prove and prove-consistency check what the daemon sends', async () => {
  const d = await startDaemon();
  const { alice, bob, close } = await twoTenantsWithAChannel(d);
  try {
    const head = await ctl(d, 'audit', 'head');
    assert.is(head.code, 0, head.err);
    assert.match(head.out, /^signature_check\s+valid \(key 1\)$/m);
    const size = Number(/^tree_size\s+(\d+)$/m.exec(head.out)![1]);
    const list = await ctl(
      d,
      '--json',
      'audit',
      'list',
      '--tenant',
      bob.tenantId,
      '--action',
      'OpenSession',
    );
    assert.is(list.code, 0, list.err);
    const records = JSON.parse(list.out).records as Wire[];
    assert.is(records.length, 1);
    const seq = String(records[0]!.seq);
    const prove = await ctl(d, 'audit', 'prove', seq);
    assert.is(prove.code, 0, prove.err);
    assert.match(prove.out, new RegExp(`record ${seq} is in the signed log`));
    await call(alice.client, 'OpenSession', {});
    const cons = await ctl(d, 'audit', 'prove-consistency', String(size));
    assert.is(cons.code, 0, cons.err);
    assert.match(cons.out, new RegExp(`the log of ${size} records is a prefix of the log of \\d+`));
    const tooBig = await ctl(d, 'audit', 'prove', String(size + 1000));
    assert.is(tooBig.code, 1);
    assert.match(tooBig.err, /leaf_index|tree_size/);
  } finally {
    close();
    await d.stop();
    removeStateDir(d.stateDir);
  }
});

test('audit verify names a record changed behind the daemon: re-signed by an insider, or garbled', async () => {
  const d = await startDaemon();
  const { close } = await twoTenantsWithAChannel(d);
  try {
    const ok = await ctl(d, 'audit', 'verify');
    assert.is(ok.code, 0, ok.err);
    // An insider with the data keys rewrites record 4 (valid MAC, changed content).
    const keys = DataKeys.open(
      d.stateDir,
      readMasterKey(join(d.stateDir, DEV_MASTER_KEY_FILE)),
      false,
    );
    const codec = new RecordCodec(keys.macKey, (o) => keys.keyFor(o));
    const raw = open({ path: `${d.stateDir}/db/qmk.lmdb`, maxDbs: 16 });
    const audit = raw.openDB({ name: 'audit', keyEncoding: 'ordered-binary', encoding: 'binary' });
    const r4 = codec.decode('audit', 4, audit.get(4) as Buffer) as Wire;
    await audit.put(4, codec.encode('audit', 4, { ...r4, target: 'someone-else' }));
    const edited = await ctl(d, '--json', 'audit', 'verify');
    assert.is(edited.code, 1);
    assert.match(edited.err, /audit chain broken at seq 4: record hash mismatch/);
    // Without the keys: bytes changed, the record no longer authenticates.
    const r6 = Buffer.from(audit.get(6) as Buffer);
    r6[r6.length - 1]! ^= 1;
    await audit.put(6, r6);
    await audit.put(4, codec.encode('audit', 4, r4));
    const garbled = await ctl(d, 'audit', 'verify');
    assert.is(garbled.code, 1);
    assert.match(garbled.out, /BROKEN at seq 6: record does not authenticate/);
    await raw.close();
  } finally {
    close();
    await d.stop();
    removeStateDir(d.stateDir);
  }
});

test.run();
