/**
 * The audit log's Merkle tree in the real store: it grows in the same transaction as the records
 * (checkpoint records included), its root is the RFC 6962 hash of the records' leaves, proofs
 * from it verify, only subtrees of 16 leaves or more are stored, a log from before the tree gets its tree at open, and the tenant index lists
 * exactly the records naming a tenant, in both directions.
 */
import { mkdirSync } from 'node:fs';
import { open } from 'lmdb';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { AuditEvent } from '../../src/kernel/ports.js';
import { auditLeafInput } from '../../src/security/audit-chain.js';
import { DataKeys } from '../../src/security/data-keys.js';
import {
  MerkleFrontier,
  leafHash,
  verifyConsistency,
  verifyInclusion,
} from '../../src/security/merkle.js';
import { LEVEL_STRIDE, STORED_LEVEL_MIN } from '../../src/store/audit-tree.js';
import { LmdbStore } from '../../src/store/store.js';
import { removeStateDir, tempStateDir } from '../support/daemon.js';

const MASTER = Buffer.alloc(32, 7);
const openStore = (dir: string) => {
  mkdirSync(dir, { recursive: true });
  return LmdbStore.open(dir, { keys: DataKeys.open(dir, MASTER, true) });
};
const ev = (target: string, tenants?: string[]): AuditEvent =>
  tenants
    ? { actor: 'operator', action: 'Test', target, outcome: 'ok', tenants }
    : { actor: 'operator', action: 'Test', target, outcome: 'ok' };

/** The root computed from the records alone, leaf by leaf. */
function rootFromRecords(s: LmdbStore): Buffer {
  const f = MerkleFrontier.empty();
  for (const r of s.auditRecords()) f.append(leafHash(auditLeafInput(r)));
  return f.root();
}

test('the tree grows with every commit and checkpoint; its root is that of the records', async () => {
  const dir = tempStateDir();
  const s = openStore(dir);
  try {
    assert.is(s.auditLog.treeRoot().size, 0);
    const roots: Buffer[] = [s.auditLog.treeRoot().root];
    for (let i = 0; i < 11; i++) {
      // Two commits in one turn share a batch (group commit): both records go in one transaction.
      await Promise.all([s.commit([], [ev(`a${i}`)]), s.commit([], [ev(`b${i}`), ev(`c${i}`)])]);
      if (i === 5) await s.checkpoint([], 1);
    }
    const { size, root } = s.auditLog.treeRoot();
    assert.is(size, s.auditHead().seq);
    assert.is(size, 34);
    assert.equal(root, rootFromRecords(s));
    for (let n = 1; n <= size; n++) roots.push(s.auditLog.treeRoot(n).root);
    for (const index of [0, 1, 7, 16, 33]) {
      const leaf = s.auditLog.auditLeaf(index + 1)!;
      assert.equal(leaf.leafHash, leafHash(leaf.leafInput));
      assert.ok(
        verifyInclusion(index, size, leaf.leafHash, s.auditLog.inclusionProof(index, size), root),
      );
      // An older tree: the proof is against that tree's root.
      if (index < 20) {
        const p = s.auditLog.inclusionProof(index, 20);
        assert.ok(verifyInclusion(index, 20, leaf.leafHash, p, roots[20]!));
      }
    }
    for (const [a, b] of [
      [1, 34],
      [7, 8],
      [13, 29],
      [16, 34],
    ] as const) {
      assert.ok(verifyConsistency(a, b, s.auditLog.consistencyProof(a, b), roots[a]!, roots[b]!));
    }
    assert.throws(() => s.auditLog.treeRoot(35), /not in 0\.\.34/);
    assert.throws(() => s.auditLog.inclusionProof(34, 34), RangeError);
    await s.close();
    const r = openStore(dir);
    assert.equal(r.auditLog.treeRoot().root, root, 'the same tree after reopening');
    await r.commit([], [ev('after')]);
    assert.equal(r.auditLog.treeRoot().root, rootFromRecords(r));
    await r.close();
    // Only subtrees of 16 leaves or more are stored (the rest come from the records): for 35
    // records, the two of 16 and the one of 32.
    const raw = open({ path: `${dir}/qmk.lmdb`, maxDbs: 16 });
    const tree = raw.openDB({
      name: 'audit_tree',
      keyEncoding: 'ordered-binary',
      encoding: 'binary',
    });
    const keys = [...tree.getKeys()].map((k) => [
      Math.floor((k as number) / LEVEL_STRIDE),
      (k as number) % LEVEL_STRIDE,
    ]);
    assert.equal(keys, [
      [STORED_LEVEL_MIN, 0],
      [STORED_LEVEL_MIN, 1],
      [STORED_LEVEL_MIN + 1, 0],
    ]);
    await raw.close();
  } finally {
    removeStateDir(dir);
  }
});

test('a log written before the tree existed gets its tree at open, the same as if grown', async () => {
  const dir = tempStateDir();
  try {
    const s = openStore(dir);
    for (let i = 0; i < 9; i++) await s.commit([], [ev(`x${i}`, ['t1'])]);
    const root = s.auditLog.treeRoot().root;
    await s.close();
    // Remove the tree and the index, as in a state directory from an earlier qmkd.
    const raw = open({ path: `${dir}/qmk.lmdb`, maxDbs: 16 });
    for (const name of ['audit_tree', 'audit_index']) {
      const db = raw.openDB({ name, keyEncoding: 'ordered-binary', encoding: 'binary' });
      await db.clearAsync();
    }
    await raw.close();
    const r = openStore(dir);
    assert.is(r.auditLog.treeRoot().size, 9);
    assert.equal(r.auditLog.treeRoot().root, root);
    assert.equal(r.auditLog.auditSeqsOf('t1', 1, 100, false), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await r.close();
  } finally {
    removeStateDir(dir);
  }
});

test('the tenant index lists the records naming a tenant, up and down, from any point', async () => {
  const dir = tempStateDir();
  const s = openStore(dir);
  try {
    await s.commit([], [ev('1', ['alice'])]);
    await s.commit([], [ev('2', ['bob'])]);
    await s.commit([], [ev('3', ['alice', 'bob'])]);
    await s.commit([], [ev('4')]);
    await s.commit([], [ev('5', ['alice', 'alice'])]);
    assert.equal(s.auditLog.auditSeqsOf('alice', 1, 100, false), [1, 3, 5]);
    assert.equal(s.auditLog.auditSeqsOf('bob', 1, 100, false), [2, 3]);
    assert.equal(s.auditLog.auditSeqsOf('alice', 2, 100, false), [3, 5]);
    assert.equal(s.auditLog.auditSeqsOf('alice', 5, 100, true), [5, 3, 1]);
    assert.equal(s.auditLog.auditSeqsOf('alice', 4, 1, true), [3]);
    assert.equal(
      s.auditLog.auditSeqsOf('ali', 1, 100, false),
      [],
      'a prefix of a tenant id is not it',
    );
    assert.equal(s.auditLog.auditSeqsOf('nobody', 1, 100, false), []);
  } finally {
    await s.close();
    removeStateDir(dir);
  }
});

test('a batch of commits gets one index entry per tenant, listed alike from any point', async () => {
  const dir = tempStateDir();
  const s = openStore(dir);
  const names = ['alice', 'bob', 'carol'];
  const model = new Map<string, number[]>(names.map((n) => [n, []]));
  try {
    // Commits that arrive together are written in one transaction (after the first alone).
    const tenantsOf = (i: number) => names.filter((_, k) => (i + k) % (k + 2) === 0);
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => s.commit([], [ev(`b${i}`, tenantsOf(i))])),
    );
    await s.commit([], [ev('alone', ['alice'])]);
    for (let seq = 1; seq <= 41; seq++) {
      const tenants = seq === 41 ? ['alice'] : tenantsOf(seq - 1);
      for (const t of tenants) model.get(t)!.push(seq);
    }
    for (const t of names) {
      const all = model.get(t)!;
      for (let from = 1; from <= 42; from++) {
        for (const limit of [1, 2, 3, 100]) {
          const up = all.filter((x) => x >= from).slice(0, limit);
          const down = [...all]
            .reverse()
            .filter((x) => x <= from)
            .slice(0, limit);
          assert.equal(
            s.auditLog.auditSeqsOf(t, from, limit, false),
            up,
            `${t} up ${from}/${limit}`,
          );
          assert.equal(
            s.auditLog.auditSeqsOf(t, from, limit, true),
            down,
            `${t} down ${from}/${limit}`,
          );
        }
      }
    }
  } finally {
    await s.close();
  }
  try {
    const raw = open({ path: `${dir}/qmk.lmdb`, maxDbs: 16 });
    const index = raw.openDB({
      name: 'audit_index',
      keyEncoding: 'ordered-binary',
      encoding: 'binary',
    });
    const keys = [...index.getKeys()].length;
    const entries = [...model.values()].reduce((a, x) => a + x.length, 0);
    assert.ok(keys < entries / 2, `${keys} index entries for ${entries} listings`);
    await raw.close();
  } finally {
    removeStateDir(dir);
  }
});

test.run();
