/**
 * `qmkctl evidence` on a running daemon: every self-test passes, the temporary tenants are gone
 * afterwards, the report's signature verifies with the kernel keys a tenant gets from
 * GetSigningKeys (checked here with node:crypto, not with qmkctl's own code), a second report
 * carries a verified consistency proof from the first one's audit head, `evidence verify`
 * accepts the file and refuses it once edited, and the HTML page shows the results.
 */
import { createHash, createPublicKey, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { canonicalJson } from '../../src/security/audit-chain.js';
import {
  type Daemon,
  type Wire,
  adminClient,
  call,
  channelClient,
  newTenant,
  removeStateDir,
  startDaemon,
} from '../support/daemon.js';
import { runQmkctl } from '../support/qmkctl.js';

const TESTS = [
  'cross_tenant_not_found',
  'no_entanglement_without_channel',
  'channel_use_limit',
  'released_state_zeroed',
  'deleted_tenant_data_key',
];

function reportIn(dir: string): { file: string; signed: Wire; html: string } {
  const json = readdirSync(dir).find((f) => f.endsWith('.json'))!;
  const html = readdirSync(dir).find((f) => f.endsWith('.html'))!;
  const file = join(dir, json);
  return {
    file,
    signed: JSON.parse(readFileSync(file, 'utf8')),
    html: readFileSync(join(dir, html), 'utf8'),
  };
}

test('evidence: all self-tests pass, signed, and a second report proves the log grew only', async () => {
  let d: Daemon | null = null;
  const out = mkdtempSync(join(tmpdir(), 'qmk-evidence-'));
  try {
    d = await startDaemon();
    const first = await runQmkctl(d.adminSocket, ['evidence', '--out', join(out, '1')]);
    assert.is(first.code, 0, `${first.out}\n${first.err}`);
    for (const id of TESTS) assert.match(first.out, new RegExp(`^PASS  ${id}$`, 'm'));
    const one = reportIn(join(out, '1'));
    const report = one.signed.report;
    assert.equal(
      report.self_tests.map((t: Wire) => [t.id, t.passed]),
      TESTS.map((id) => [id, true]),
    );
    const cross = report.self_tests[0].observations as string[];
    assert.ok(
      cross.filter((o) => o.endsWith(': NOT_FOUND/NOT_FOUND')).length >= 10,
      cross.join('\n'),
    );
    assert.is(report.audit.previous, null);
    assert.is(report.audit.head_signature_valid, true);
    assert.ok(report.claims.supported.length >= TESTS.length);
    assert.ok(report.claims.not_supported.some((c: string) => c.includes('Side channels')));
    assert.ok(
      report.authorization.some((a: Wire) => a.method === '/qmk.v1.AdminService/SignEvidence'),
    );
    assert.is(report.quotas.free.quota.calls_in_flight_max, 16);

    // The temporary tenants are gone.
    const admin = adminClient(d);
    const listed = await call<{ tenants: Wire[] }>(admin, 'ListTenants', { page_size: 1000 });
    admin.close();
    for (const t of report.temporary_tenants) {
      assert.is(t.deleted, true);
      assert.not.ok(listed.tenants.some((x) => x.tenant_id === t.tenant_id));
    }

    // The signature, checked as any tenant could: Ed25519 over the domain and the digest.
    const t = await newTenant(d, 'checker');
    t.client.close();
    const channels = channelClient(d, t.apiKey);
    const { keys } = await call<{ keys: Wire[] }>(channels, 'GetSigningKeys', {});
    channels.close();
    const digest = createHash('sha256').update(canonicalJson(report)).digest();
    assert.is(one.signed.signature.report_sha256, digest.toString('hex'));
    const payload = Buffer.concat([Buffer.from('qmk-evidence-v1\0', 'latin1'), digest]);
    const key = keys.find((k) => k.key_id === one.signed.signature.key_id)!;
    const publicKey = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: key.public_key },
      format: 'jwk',
    });
    assert.ok(
      verify(null, payload, publicKey, Buffer.from(one.signed.signature.signature, 'base64')),
    );

    assert.match(one.html, '<h3>PASS — cross_tenant_not_found</h3>');
    assert.not.match(one.html, '<script');

    // A second report: its audit head extends the first's, proven.
    const second = await runQmkctl(d.adminSocket, [
      'evidence',
      '--out',
      join(out, '2'),
      '--previous',
      one.file,
    ]);
    assert.is(second.code, 0, `${second.out}\n${second.err}`);
    assert.match(second.out, /consistency with the previous report \(\d+ records\): verified/);
    const two = reportIn(join(out, '2'));
    const audit = two.signed.report.audit;
    assert.is(audit.previous.tree_size, report.audit.head.tree_size);
    assert.is(audit.previous.root_hash, report.audit.head.root_hash);
    assert.ok(audit.head.tree_size > report.audit.head.tree_size);
    assert.ok(audit.consistency_proof.length > 0);
    assert.is(audit.consistency_verified, true);

    // evidence verify: the file as written passes; edited, it fails.
    const ok = await runQmkctl(d.adminSocket, ['evidence', 'verify', two.file]);
    assert.is(ok.code, 0, ok.err);
    assert.match(ok.out, /signature: valid/);
    two.signed.report.self_tests[1].passed = false;
    const edited = join(out, 'edited.json');
    writeFileSync(edited, JSON.stringify(two.signed));
    const bad = await runQmkctl(d.adminSocket, ['evidence', 'verify', edited]);
    assert.is(bad.code, 1);
    assert.match(bad.err, /does not hash to its signed digest/);
    // A previous report that was edited is refused too.
    const refused = await runQmkctl(d.adminSocket, [
      'evidence',
      '--out',
      join(out, '3'),
      '--previous',
      edited,
    ]);
    assert.is(refused.code, 1);
    assert.match(refused.err, /previous report .*does not hash/);
  } finally {
    if (d) {
      if (d.child.exitCode === null) await d.stop();
      removeStateDir(d.stateDir);
    }
    rmSync(out, { recursive: true, force: true });
  }
});

test.run();
