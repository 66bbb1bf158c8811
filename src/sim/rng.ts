/**
 * The one source of randomness of a job run: xoshiro128** seeded from the job's decimal uint64
 * seed. Layer: sim. Why a seeded generator and not a CSPRNG: a job re-run after a crash (same
 * seed) must give the same counts; outcomes need statistical quality, not secrecy.
 */
import assert from 'node:assert';
import { SEED_MAX } from '../kernel/limits.js';

const MASK64 = (1n << 64n) - 1n;

/**
 * xoshiro128** (Blackman and Vigna), seeded with two outputs of splitmix64 on the uint64 seed.
 * BigInt only in the constructor; the hot path is 32-bit integer arithmetic.
 */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** From a seed, or from the four words `state()` gave (a stopped run resuming). */
  constructor(seed: bigint | readonly number[]) {
    if (typeof seed !== 'bigint') {
      assert(seed.length === 4 && seed.every(Number.isInteger), 'xoshiro state is four words');
      [this.s0, this.s1, this.s2, this.s3] = seed.map((w) => w | 0) as [
        number,
        number,
        number,
        number,
      ];
      assert((this.s0 | this.s1 | this.s2 | this.s3) !== 0, 'xoshiro state is all zero');
      return;
    }
    let x = seed;
    const next64 = (): bigint => {
      x = (x + 0x9e3779b97f4a7c15n) & MASK64;
      let z = x;
      z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
      z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
      return z ^ (z >> 31n);
    };
    const lo = next64();
    const hi = next64();
    this.s0 = Number(lo & 0xffffffffn) | 0;
    this.s1 = Number(lo >> 32n) | 0;
    this.s2 = Number(hi & 0xffffffffn) | 0;
    this.s3 = Number(hi >> 32n) | 0;
    // An all-zero state would stay zero; splitmix64 is a bijection, so two zero outputs in a row
    // cannot happen, but the generator's one forbidden state is still worth a check.
    assert((this.s0 | this.s1 | this.s2 | this.s3) !== 0, 'xoshiro state is all zero');
  }

  /** The generator's state as four 32-bit words: the draws that follow are fixed by it. */
  state(): number[] {
    return [this.s0, this.s1, this.s2, this.s3];
  }

  /** Copies the state into `into` (no allocation: saved at every shot of a per-shot run). */
  saveTo(into: Int32Array): void {
    into[0] = this.s0;
    into[1] = this.s1;
    into[2] = this.s2;
    into[3] = this.s3;
  }

  nextU32(): number {
    const s1 = this.s1;
    const r = Math.imul(s1, 5);
    const result = Math.imul((r << 7) | (r >>> 25), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= s1;
    this.s1 = s1 ^ this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = (this.s3 << 11) | (this.s3 >>> 21);
    return result;
  }

  /** A uniform double in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.nextU32() >>> 5;
    const lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }
}

/** The decimal uint64 seed of a run as a bigint (the kernel checked its form). */
export function parseSeed(seed: string): bigint {
  assert(/^[0-9]{1,20}$/.test(seed), `seed ${JSON.stringify(seed)} is not a decimal uint64`);
  const v = BigInt(seed);
  assert(v <= SEED_MAX, `seed ${seed} exceeds 2^64 - 1`);
  return v;
}
