/**
 * The evidence report's signature check (`cli/evidence-model.ts`) with a key made here: a report
 * signed as the kernel signs passes; a changed report, another payload, an unknown key id or
 * another key's signature each fail with their reason. And the HTML page escapes what it shows.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { renderEvidenceHtml } from '../../src/cli/evidence-html.js';
import {
  type EvidenceReport,
  type SignedEvidence,
  evidenceProblem,
  reportDigest,
} from '../../src/cli/evidence-model.js';
import { evidencePayload } from '../../src/kernel/evidence.js';

function keyPair() {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return { privateKey, x: publicKey.export({ format: 'jwk' }).x as string };
}

const REPORT: EvidenceReport = {
  format: 'qmk.evidence.v1',
  generated_at: '2026-12-07T00:00:00.000Z',
  daemon: { version: '0.1.0' },
  qmkctl: { node: 'v20' },
  authorization: [{ method: '/qmk.v1.KernelService/OpenSession', principal: 'tenant', roles: [] }],
  quotas: { free: { weight: 1, caps: ['CAP_ALLOC'], quota: { sessions_max: 4 } } },
  self_tests: [
    {
      id: 'x',
      claim: 'a <b>claim</b> & more',
      passed: true,
      observations: ['<script>alert(1)</script>'],
    },
  ],
  temporary_tenants: [],
  audit: {
    head: { tree_size: 3, root_hash: 'ab', timestamp_unix_ms: 1, key_id: 1, signature: '' },
    head_signature_valid: true,
    previous: null,
    consistency_proof: [],
    consistency_verified: null,
  },
  claims: { supported: ['s'], not_supported: ['n'] },
};

function signed(
  report: EvidenceReport,
  privateKey: ReturnType<typeof keyPair>['privateKey'],
  keyId = 1,
): SignedEvidence {
  const digest = reportDigest(report);
  const payload = evidencePayload(digest);
  return {
    report,
    signature: {
      algorithm: 'Ed25519',
      key_id: keyId,
      report_sha256: digest.toString('hex'),
      signed_payload: payload.toString('base64'),
      signature: sign(null, payload, privateKey).toString('base64'),
      signed_at_unix_ms: 2,
    },
  };
}

test('evidenceProblem: a report signed as the kernel signs → null; every change → its reason', () => {
  const k = keyPair();
  const other = keyPair();
  const keys = new Map([
    [1, k.x],
    [2, other.x],
  ]);
  const good = signed(REPORT, k.privateKey);
  assert.is(evidenceProblem(good, keys), null);
  assert.is(evidencePayload(reportDigest(REPORT)).length, 48);

  const changed = structuredClone(good);
  changed.report.self_tests[0]!.passed = false;
  assert.match(evidenceProblem(changed, keys)!, 'does not hash to its signed digest');

  const payload = structuredClone(good);
  payload.signature.signed_payload = Buffer.alloc(48).toString('base64');
  assert.match(evidenceProblem(payload, keys)!, 'not the evidence payload');

  const unknown = structuredClone(good);
  unknown.signature.key_id = 9;
  assert.match(evidenceProblem(unknown, keys)!, 'signing key 9 is not one of');

  const wrongKey = signed(REPORT, other.privateKey, 1);
  assert.match(evidenceProblem(wrongKey, keys)!, 'does not verify with signing key 1');
});

test('evidencePayload: a digest that is not 32 bytes → INVALID_ARGUMENT naming the field', () => {
  assert.throws(() => evidencePayload(Buffer.alloc(31)), /report_sha256: must be 32 bytes, got 31/);
});

test('html: every report value escaped; no script', () => {
  const k = keyPair();
  const html = renderEvidenceHtml(signed(REPORT, k.privateKey));
  assert.not.match(html, '<script>');
  assert.match(html, '&lt;script&gt;alert(1)&lt;/script&gt;');
  assert.match(html, 'a &lt;b&gt;claim&lt;/b&gt; &amp; more');
  assert.match(html, '<h3>PASS — x</h3>');
});

test.run();
