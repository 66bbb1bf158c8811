/**
 * Failed authentication, throttled per peer address. Layer: kernel (pure; the clock is passed in).
 *
 * Each peer address has a bucket of `FAILED_AUTH_BURST` failures that refills at
 * `FAILED_AUTH_PER_MINUTE`. A failure (no key, not a key, an unknown or revoked key) takes one;
 * once a peer's bucket is empty its failures are answered QUOTA_EXCEEDED with the delay after
 * which one would be heard again, instead of the credential error. The moment a peer runs out is
 * reported once per episode (the kernel audits it) — not each refused call, nor each time the
 * bucket, refilled by one, runs out again; only after it has refilled completely — so a flood of
 * bad keys cannot flood the audit log. Other addresses are untouched.
 *
 * Why a valid key from a throttled address still passes: many honest clients share an address (one
 * host, a NAT, a proxy); refusing them all would let anyone who shares it lock them out with 256
 * bad keys — a lockout, which this kernel is built to prevent. What the throttle bounds is the cost
 * of bad keys (log lines, audit records, the answers' detail); guessing a 256-bit key is not a
 * threat a rate limit changes. At most `FAILED_AUTH_PEERS_MAX` addresses are tracked; past that the
 * ones that have refilled are forgotten first.
 */
import { KernelError } from './errors.js';

export const FAILED_AUTH_BURST = 256;
export const FAILED_AUTH_PER_MINUTE = 120;
export const FAILED_AUTH_PEERS_MAX = 10_000;
/** The refusal's field and QuotaFailure subject. */
export const FAILED_AUTH_FIELD = 'failed_authentications_per_minute';

/** One failure is given back every this many milliseconds. */
const REFILL_MS = 60_000 / FAILED_AUTH_PER_MINUTE;

interface Bucket {
  tokens: number;
  atMs: number;
  /** This run-out was reported; cleared once the bucket is full again (a new episode). */
  reported: boolean;
}

export class FailedAuthThrottle {
  private readonly peers = new Map<string, Bucket>();

  private refill(b: Bucket, nowMs: number): void {
    b.tokens = Math.min(FAILED_AUTH_BURST, b.tokens + Math.max(0, nowMs - b.atMs) / REFILL_MS);
    b.atMs = nowMs;
  }

  /**
   * Counts one failure of `peer`. `report`: this one emptied its bucket (audit it, once);
   * `refusal`: the answer instead of the credential error, while the bucket is empty.
   */
  failed(peer: string, nowMs: number): { report: boolean; refusal: KernelError | null } {
    let b = this.peers.get(peer);
    if (!b) {
      this.makeRoom(nowMs);
      b = { tokens: FAILED_AUTH_BURST, atMs: nowMs, reported: false };
      this.peers.set(peer, b);
    }
    this.refill(b, nowMs);
    if (b.tokens >= FAILED_AUTH_BURST) b.reported = false;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      // Once per episode: a bucket that refills a failure at a time while the flood goes on (a
      // slow attacker, or a loaded daemon) runs out again and again, but is reported once.
      const report = b.tokens < 1 && !b.reported;
      if (report) b.reported = true;
      return { report, refusal: null };
    }
    const retryMs = Math.ceil((1 - b.tokens) * REFILL_MS);
    const refusal = new KernelError(
      'QUOTA_EXCEEDED',
      `${FAILED_AUTH_FIELD}: more than ${FAILED_AUTH_BURST} failed authentications from this address; retry in ${retryMs} ms`,
      FAILED_AUTH_FIELD,
      [],
      retryMs,
    );
    return { report: false, refusal };
  }

  /** How many addresses are tracked (for tests and status). */
  get size(): number {
    return this.peers.size;
  }

  private makeRoom(nowMs: number): void {
    if (this.peers.size < FAILED_AUTH_PEERS_MAX) return;
    for (const [peer, b] of this.peers) {
      this.refill(b, nowMs);
      if (b.tokens >= FAILED_AUTH_BURST) this.peers.delete(peer);
    }
    // Still full: the oldest tracked address goes (insertion order).
    while (this.peers.size >= FAILED_AUTH_PEERS_MAX) {
      const oldest = this.peers.keys().next().value;
      if (oldest === undefined) break;
      this.peers.delete(oldest);
    }
  }
}
