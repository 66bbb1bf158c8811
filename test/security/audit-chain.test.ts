import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  AUDIT_GENESIS_HASH,
  type AuditRecord,
  canonicalJson,
  linkAuditRecord,
  verifyAuditRun,
} from '../../src/security/audit-chain.js';

function chain(n: number): AuditRecord[] {
  const out: AuditRecord[] = [];
  let prev = AUDIT_GENESIS_HASH;
  for (let i = 1; i <= n; i++) {
    const r = linkAuditRecord(
      { actor: 'op', action: 'A', target: `t${i}`, outcome: 'ok', detail: { i } },
      i,
      1000 + i,
      prev,
    );
    out.push(r);
    prev = r.hash;
  }
  return out;
}

test('audit chain: intact chain → verifies', () => {
  assert.is(verifyAuditRun(chain(20), AUDIT_GENESIS_HASH), null);
});

test('audit chain: a changed field → record hash mismatch at that seq', () => {
  const c = chain(10);
  c[4] = { ...c[4]!, target: 'tampered' };
  assert.equal(verifyAuditRun(c, AUDIT_GENESIS_HASH), { seq: 5, reason: 'record hash mismatch' });
});

test('audit chain: a removed record → sequence gap', () => {
  const c = chain(10);
  c.splice(3, 1);
  assert.equal(verifyAuditRun(c, AUDIT_GENESIS_HASH), { seq: 5, reason: 'sequence gap' });
});

test('audit chain: a record rehashed after tampering → the next record no longer links', () => {
  const c = chain(10);
  c[2] = linkAuditRecord(
    { actor: 'evil', action: 'A', target: 't3', outcome: 'ok' },
    3,
    1003,
    c[1]!.hash,
  );
  assert.equal(verifyAuditRun(c, AUDIT_GENESIS_HASH), { seq: 4, reason: 'previous hash mismatch' });
});

test('canonicalJson: key order does not matter; undefined fields are dropped', () => {
  assert.is(
    canonicalJson({ b: 1, a: { d: [1, 2], c: null }, u: undefined }),
    '{"a":{"c":null,"d":[1,2]},"b":1}',
  );
  assert.is(
    canonicalJson({ a: { c: null, d: [1, 2] }, b: 1 }),
    canonicalJson({ b: 1, a: { d: [1, 2], c: null } }),
  );
});

test.run();
