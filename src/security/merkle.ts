/**
 * The audit log as an RFC 6962 Merkle tree (Certificate Transparency's, also RFC 9162 §2.1).
 * Layer: security (pure functions over SHA-256; the store keeps the nodes).
 *
 * - leaf hash `SHA-256(0x00 || leaf input)`, node hash `SHA-256(0x01 || left || right)`, the
 *   empty tree's hash `SHA-256()`;
 * - a tree of n leaves splits at k, the largest power of two below n: the left k leaves form a
 *   complete subtree, the rest are the right one (RFC 6962 §2.1);
 * - inclusion proofs (audit paths) and consistency proofs are listed leaf end first, as RFC 6962
 *   builds them, and checked by the RFC 9162 §2.1.3.2 and §2.1.4.2 algorithms.
 *
 * Every hash a proof needs is the hash of a *complete* subtree (2^level leaves starting at a
 * multiple of 2^level) or is built from such hashes, so a tree is kept as those nodes: each leaf
 * appended adds its own and one per subtree it completes (two per leaf on average).
 */
import { createHash } from 'node:crypto';

export const HASH_BYTES = 32;

/** The root of the empty tree: SHA-256 of nothing. */
export const EMPTY_ROOT: Buffer = createHash('sha256').digest();

export function leafHash(input: Uint8Array): Buffer {
  return createHash('sha256').update(LEAF_PREFIX).update(input).digest();
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest();
}

const LEAF_PREFIX = Buffer.from([0]);
const NODE_PREFIX = Buffer.from([1]);

/** The hash of the complete subtree of 2^level leaves starting at leaf `index * 2^level`. */
export type NodeSource = (level: number, index: number) => Buffer;

/** The largest power of two strictly below n (n ≥ 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/**
 * The Merkle tree hash of leaves [start, end): a complete subtree is looked up, any other range
 * is split as RFC 6962 splits it. Ranges reached from a tree's root always decompose this way.
 */
export function rangeHash(node: NodeSource, start: number, end: number): Buffer {
  const n = end - start;
  if (n === 0) return EMPTY_ROOT;
  if (isPowerOfTwo(n) && start % n === 0) return node(Math.log2(n), start / n);
  const k = splitPoint(n);
  return nodeHash(rangeHash(node, start, start + k), rangeHash(node, start + k, end));
}

/** The inclusion proof of leaf `index` in the tree of the first `size` leaves (RFC 6962 PATH). */
export function inclusionProof(node: NodeSource, index: number, size: number): Buffer[] {
  if (!(index >= 0 && index < size)) throw new RangeError(`leaf ${index} not in a tree of ${size}`);
  const path = (m: number, start: number, end: number): Buffer[] => {
    const n = end - start;
    if (n === 1) return [];
    const k = splitPoint(n);
    return m < k
      ? [...path(m, start, start + k), rangeHash(node, start + k, end)]
      : [...path(m - k, start + k, end), rangeHash(node, start, start + k)];
  };
  return path(index, 0, size);
}

/**
 * The consistency proof from the tree of the first `size1` leaves to the tree of the first
 * `size2` (RFC 6962 PROOF): empty when `size1` is 0 or equals `size2`.
 */
export function consistencyProof(node: NodeSource, size1: number, size2: number): Buffer[] {
  if (!(size1 >= 0 && size1 <= size2)) {
    throw new RangeError(`no consistency proof from a tree of ${size1} to one of ${size2}`);
  }
  if (size1 === 0 || size1 === size2) return [];
  const sub = (m: number, start: number, end: number, whole: boolean): Buffer[] => {
    const n = end - start;
    if (m === n) return whole ? [] : [rangeHash(node, start, end)];
    const k = splitPoint(n);
    return m <= k
      ? [...sub(m, start, start + k, whole), rangeHash(node, start + k, end)]
      : [...sub(m - k, start + k, end, false), rangeHash(node, start, start + k)];
  };
  return sub(size1, 0, size2, true);
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/** Whether `proof` shows leaf hash `leaf` at `index` in the tree of `size` leaves with `root`. */
export function verifyInclusion(
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  if (!(index >= 0 && index < size) || leaf.length !== HASH_BYTES) return false;
  let fn = index;
  let sn = size - 1;
  let r: Uint8Array = leaf;
  for (const p of proof) {
    if (sn === 0 || p.length !== HASH_BYTES) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(r, root);
}

/** Whether `proof` shows the tree of `size1` leaves with `root1` is a prefix of `size2`'s with `root2`. */
export function verifyConsistency(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): boolean {
  if (!(size1 >= 0 && size1 <= size2)) return false;
  if (size1 === size2) return proof.length === 0 && equal(root1, root2);
  if (size1 === 0) return proof.length === 0;
  if (proof.length === 0 || proof.some((p) => p.length !== HASH_BYTES)) return false;
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr: Uint8Array = path[0]!;
  let sr: Uint8Array = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(fr, root1) && equal(sr, root2);
}

/** A complete subtree: 2^level leaves from leaf `index * 2^level`. */
export interface TreeNode {
  level: number;
  index: number;
  hash: Buffer;
}

/**
 * The right edge of a growing tree: the hashes of the complete subtrees it is made of, largest
 * first (one per set bit of its size). Appending a leaf returns the nodes it completes; the root
 * folds the edge from the right.
 */
export class MerkleFrontier {
  private constructor(
    private n: number,
    private readonly edge: Buffer[],
  ) {}

  static empty(): MerkleFrontier {
    return new MerkleFrontier(0, []);
  }

  /** The edge of the tree of `size` leaves, read from its stored nodes. */
  static of(size: number, node: NodeSource): MerkleFrontier {
    const edge: Buffer[] = [];
    let start = 0;
    for (let level = Math.floor(Math.log2(Math.max(size, 1))); level >= 0; level--) {
      const width = 2 ** level;
      if (size - start >= width) {
        edge.push(node(level, start / width));
        start += width;
      }
    }
    return new MerkleFrontier(size, edge);
  }

  get size(): number {
    return this.n;
  }

  copy(): MerkleFrontier {
    return new MerkleFrontier(this.n, [...this.edge]);
  }

  /** Adds the leaf with this hash; returns the nodes to store (the leaf's and those it completes). */
  append(leaf: Buffer): TreeNode[] {
    let index = this.n;
    let level = 0;
    let hash = leaf;
    const nodes: TreeNode[] = [{ level, index, hash }];
    while (index % 2 === 1) {
      hash = nodeHash(this.edge.pop()!, hash);
      level++;
      index = (index - 1) / 2;
      nodes.push({ level, index, hash });
    }
    this.edge.push(hash);
    this.n++;
    return nodes;
  }

  root(): Buffer {
    if (this.edge.length === 0) return EMPTY_ROOT;
    let r = this.edge[this.edge.length - 1]!;
    for (let i = this.edge.length - 2; i >= 0; i--) r = nodeHash(this.edge[i]!, r);
    return r;
  }
}
