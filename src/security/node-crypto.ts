/**
 * CryptoPort over node:crypto: CSPRNG ids, measurement draws and secrets, SHA-256.
 * Layer: security.
 */
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import type { CryptoPort } from '../kernel/ports.js';

/** Draws are refilled in blocks: one syscall serves 512 measurements. */
const DRAW_BLOCK = 512;

export class NodeCrypto implements CryptoPort {
  private readonly draws = new Uint32Array(DRAW_BLOCK * 2);
  private next = DRAW_BLOCK * 2;

  id(): string {
    return randomBytes(16).toString('hex');
  }

  /** 53 uniform bits -> [0, 1): every double in the range with equal spacing. */
  unit(): number {
    if (this.next >= this.draws.length) {
      randomFillSync(this.draws);
      this.next = 0;
    }
    const hi = this.draws[this.next++]! >>> 5; // 27 bits
    const lo = this.draws[this.next++]! >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  secret(): Buffer {
    return randomBytes(32);
  }

  sha256Hex(...parts: string[]): string {
    const h = createHash('sha256');
    if (parts.length === 1) return h.update(parts[0]!).digest('hex');
    for (const p of parts) h.update(`${p.length}:`).update(p);
    return h.digest('hex');
  }
}
