/**
 * The RFC 6962 Merkle tree against the published vectors (the leaves, node and root hashes, and
 * inclusion and consistency proofs of Certificate Transparency's reference tests for trees of
 * 0–8 leaves), plus properties over random trees: every proof made verifies, and a proof with a
 * flipped bit, a wrong index or a wrong size does not.
 */
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  EMPTY_ROOT,
  MerkleFrontier,
  type NodeSource,
  consistencyProof,
  inclusionProof,
  leafHash,
  nodeHash,
  rangeHash,
  verifyConsistency,
  verifyInclusion,
} from '../../src/security/merkle.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const h = (s: string) => Buffer.from(s, 'hex');

const LEAVES = [
  '',
  '00',
  '10',
  '2021',
  '3031',
  '40414243',
  '5051525354555657',
  '606162636465666768696a6b6c6d6e6f',
].map(h);

/** Root hashes of the trees of the first 0..8 leaves. */
const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

/** Complete-subtree hashes of the 8-leaf tree, by level. */
const NODES = [
  [
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
    '0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7',
    '07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7',
    'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    '4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658',
    'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
    '46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1',
  ],
  [
    'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
    '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
    '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
    'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
  ],
  [
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
  ],
  ['5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328'],
];

/** Inclusion proofs: leaf index (0-based), tree size, path. */
const INCLUSION: [number, number, string[]][] = [
  [0, 1, []],
  [
    0,
    8,
    [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  ],
  [
    5,
    8,
    [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
  [2, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
  [
    1,
    5,
    [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  ],
];

/** Consistency proofs: size 1, size 2, proof. */
const CONSISTENCY: [number, number, string[]][] = [
  [1, 1, []],
  [
    1,
    8,
    [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  ],
  [
    6,
    8,
    [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
  [
    2,
    5,
    [
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  ],
  [
    6,
    7,
    [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
];

/** A tree grown leaf by leaf through the frontier, its nodes kept in a map (as the store does). */
function grow(leaves: Uint8Array[]): {
  node: NodeSource;
  roots: Buffer[];
  nodes: Map<string, Buffer>;
} {
  const nodes = new Map<string, Buffer>();
  const f = MerkleFrontier.empty();
  const roots = [f.root()];
  for (const leaf of leaves) {
    for (const n of f.append(leafHash(leaf))) nodes.set(`${n.level}/${n.index}`, n.hash);
    roots.push(f.root());
  }
  const node: NodeSource = (level, index) => {
    const x = nodes.get(`${level}/${index}`);
    if (!x) throw new Error(`no node ${level}/${index}`);
    return x;
  };
  return { node, roots, nodes };
}

test('the empty tree hashes to SHA-256 of nothing', () => {
  assert.is(hex(EMPTY_ROOT), ROOTS[0]);
  assert.is(hex(MerkleFrontier.empty().root()), ROOTS[0]);
});

test('root hashes of the trees of 0–8 leaves, and every complete subtree of the 8-leaf tree', () => {
  const { roots, nodes, node } = grow(LEAVES);
  assert.equal(roots.map(hex), ROOTS);
  for (const [level, row] of NODES.entries()) {
    for (const [index, want] of row.entries())
      assert.is(hex(nodes.get(`${level}/${index}`)!), want);
  }
  assert.is(nodes.size, 15, 'exactly the complete subtrees are stored');
  for (let size = 0; size <= 8; size++) assert.is(hex(rangeHash(node, 0, size)), ROOTS[size]);
});

test('a frontier read back from stored nodes continues the same tree', () => {
  const { node } = grow(LEAVES);
  for (let size = 0; size <= 8; size++) {
    const f = MerkleFrontier.of(size, node);
    assert.is(hex(f.root()), ROOTS[size], `size ${size}`);
    for (const leaf of LEAVES.slice(size)) f.append(leafHash(leaf));
    assert.is(hex(f.root()), ROOTS[8]);
  }
});

test('inclusion proofs: the published paths are produced and verify; corrupted ones do not', () => {
  const { node } = grow(LEAVES);
  for (const [index, size, want] of INCLUSION) {
    const proof = inclusionProof(node, index, size);
    assert.equal(proof.map(hex), want, `leaf ${index} of ${size}`);
    const leaf = leafHash(LEAVES[index]!);
    const root = h(ROOTS[size]!);
    assert.ok(verifyInclusion(index, size, leaf, proof, root));
    assert.not.ok(verifyInclusion(index + 1, size, leaf, proof, root), 'index + 1');
    assert.not.ok(verifyInclusion(index, size * 2, leaf, proof, root), 'size * 2');
    assert.not.ok(verifyInclusion(index, size, leaf, proof, EMPTY_ROOT), 'empty root');
    assert.not.ok(verifyInclusion(index, size, leaf, [...proof, root], root), 'trailing root');
    for (let i = 0; i < proof.length; i++) {
      const bad = proof.map((p) => Buffer.from(p));
      bad[i]![0]! ^= 8;
      assert.not.ok(verifyInclusion(index, size, leaf, bad, root), `flipped bit in ${i}`);
    }
    if (proof.length > 0) {
      assert.not.ok(verifyInclusion(index, size, leaf, proof.slice(0, -1), root), 'removed');
    }
  }
});

test('consistency proofs: the published proofs are produced and verify; corrupted ones do not', () => {
  const { node } = grow(LEAVES);
  for (const [size1, size2, want] of CONSISTENCY) {
    const proof = consistencyProof(node, size1, size2);
    assert.equal(proof.map(hex), want, `${size1} → ${size2}`);
    const r1 = h(ROOTS[size1]!);
    const r2 = h(ROOTS[size2]!);
    assert.ok(verifyConsistency(size1, size2, proof, r1, r2));
    if (proof.length === 0) continue;
    assert.not.ok(verifyConsistency(size1, size2, proof, r2, r1), 'swapped roots');
    assert.not.ok(verifyConsistency(size1 + 1, size2, proof, r1, r2), 'size1 + 1');
    assert.not.ok(verifyConsistency(size1, size2, proof.slice(0, -1), r1, r2), 'truncated');
    assert.not.ok(verifyConsistency(size1, size2, [], r1, r2), 'empty proof');
    for (let i = 0; i < proof.length; i++) {
      const bad = proof.map((p) => Buffer.from(p));
      bad[i]![0]! ^= 16;
      assert.not.ok(verifyConsistency(size1, size2, bad, r1, r2), `flipped bit in ${i}`);
    }
  }
  assert.ok(verifyConsistency(0, 5, [], EMPTY_ROOT, h(ROOTS[5]!)), 'the empty tree precedes any');
  assert.not.ok(verifyConsistency(5, 4, [], h(ROOTS[5]!), h(ROOTS[4]!)), 'no time travel');
});

test('property: in random trees every inclusion and consistency proof verifies, off by one does not', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 70 }), fc.nat(), fc.nat(), (size, a, b) => {
      const leaves = Array.from({ length: size }, (_, i) => Buffer.from(`leaf ${i}`));
      const { node, roots } = grow(leaves);
      const index = a % size;
      const proof = inclusionProof(node, index, size);
      const leaf = leafHash(leaves[index]!);
      assert.ok(verifyInclusion(index, size, leaf, proof, roots[size]!));
      if (size > 1) {
        const other = (index + 1) % size;
        assert.not.ok(verifyInclusion(other, size, leaf, proof, roots[size]!));
      }
      const size1 = b % (size + 1);
      const cp = consistencyProof(node, size1, size);
      assert.ok(verifyConsistency(size1, size, cp, roots[size1]!, roots[size]!));
      if (size1 > 0 && size1 < size) {
        assert.not.ok(verifyConsistency(size1, size, cp, roots[size1 - 1]!, roots[size]!));
      }
    }),
    { numRuns: 300 },
  );
});

test('node hashing is domain-separated from leaf hashing', () => {
  const a = leafHash(Buffer.from('a'));
  const b = leafHash(Buffer.from('b'));
  assert.is.not(hex(nodeHash(a, b)), hex(leafHash(Buffer.concat([a, b]))));
});

test.run();
