/**
 * The kernel's Ed25519 signing keys: generated with tweetnacl, sealed at rest with secretbox under
 * a seal key derived from the store key (itself wrapped by the operator's master key, so a master
 * key rotation rewraps one file and re-seals nothing), signed and verified with node:crypto (same Ed25519 signatures, and
 * measured faster on the hot verification path). Layer: security; implements `SignerPort`.
 * Invariants: exactly one active key; a retired key never verifies again; a key's secret never
 * leaves this module unsealed.
 */
import assert from 'node:assert';
import { type KeyObject, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import nacl from 'tweetnacl';
import type { KeyState, SignerPort, SigningKeyInfo, StoreRecord } from '../kernel/ports.js';

export const MASTER_KEY_BYTES = nacl.secretbox.keyLength; // 32
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** What the store holds per key: the seed sealed under the seal key. */
export interface SealedSigningKey {
  keyId: number;
  publicKey: string; // base64url, 32 bytes
  sealed: string; // base64: 24-byte nonce || secretbox(seed)
  active: boolean;
  createdAtMs: number;
  /** 0 while not scheduled for retirement. */
  retireAtMs: number;
}

interface LiveKey {
  record: SealedSigningKey;
  publicKey: KeyObject;
  privateKey: KeyObject;
}

export function seal(seed: Uint8Array, key: Uint8Array): string {
  const nonce = nacl.randomBytes(nacl.secretbox.nonceLength);
  return Buffer.concat([nonce, nacl.secretbox(seed, nonce, key)]).toString('base64');
}

export function unseal(sealed: string, key: Uint8Array): Uint8Array {
  const b = Buffer.from(sealed, 'base64');
  const opened = nacl.secretbox.open(
    b.subarray(nacl.secretbox.nonceLength),
    b.subarray(0, nacl.secretbox.nonceLength),
    key,
  );
  if (!opened) {
    throw new Error(
      'cannot unseal a signing key: the master key does not match this state directory',
    );
  }
  return opened;
}

export class Keyring implements SignerPort {
  private readonly byId = new Map<number, LiveKey>();
  private active: LiveKey | undefined;

  /** Records that opened only with the legacy key: re-sealed, to be committed at start. */
  readonly resealed: StoreRecord[] = [];

  /**
   * @param sealKey seals the keys at rest (derived from the store key); state directories older
   *   than sealed records sealed them with the master key itself, passed as `legacyKey`: such
   *   records are re-sealed and offered in `resealed`
   */
  constructor(
    private readonly sealKey: Uint8Array,
    records: SealedSigningKey[],
    private readonly legacyKey?: Uint8Array,
  ) {
    assert(sealKey.length === MASTER_KEY_BYTES, 'seal key is 32 bytes');
    for (const r of records) this.add(r);
  }

  /** A first key for a new store; returns its record to persist. */
  bootstrap(nowMs: number): StoreRecord[] {
    assert(this.byId.size === 0);
    return [this.generate(1, nowMs)];
  }

  get empty(): boolean {
    return this.byId.size === 0;
  }

  private add(stored: SealedSigningKey): void {
    let r = stored;
    let seed: Uint8Array;
    try {
      seed = unseal(r.sealed, this.sealKey);
    } catch (err) {
      if (this.legacyKey === undefined) throw err;
      seed = unseal(r.sealed, this.legacyKey);
      r = { ...r, sealed: seal(seed, this.sealKey) };
      this.resealed.push({ op: 'put', db: 'signing_keys', key: r.keyId, value: r });
    }
    const privateKey = createPrivateKey({
      key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]),
      format: 'der',
      type: 'pkcs8',
    });
    const publicKey = createPublicKey({
      key: Buffer.concat([SPKI_ED25519_PREFIX, Buffer.from(r.publicKey, 'base64url')]),
      format: 'der',
      type: 'spki',
    });
    const live = { record: r, publicKey, privateKey };
    this.byId.set(r.keyId, live);
    if (r.active) this.active = live;
  }

  private generate(keyId: number, nowMs: number): StoreRecord {
    const seed = nacl.randomBytes(32);
    const pair = nacl.sign.keyPair.fromSeed(seed);
    const record: SealedSigningKey = {
      keyId,
      publicKey: Buffer.from(pair.publicKey).toString('base64url'),
      sealed: seal(seed, this.sealKey),
      active: true,
      createdAtMs: nowMs,
      retireAtMs: 0,
    };
    this.add(record);
    return { op: 'put', db: 'signing_keys', key: keyId, value: record };
  }

  activeKeyId(): number {
    assert(this.active, 'keyring has an active key');
    return this.active.record.keyId;
  }

  sign(payload: Uint8Array): Uint8Array {
    assert(this.active, 'keyring has an active key');
    return sign(null, payload, this.active.privateKey);
  }

  verify(keyId: number, payload: Uint8Array, signature: Uint8Array): boolean {
    const k = this.byId.get(keyId);
    if (!k) return false;
    return verify(null, payload, k.publicKey, signature);
  }

  keyState(keyId: number, nowMs: number): KeyState {
    const k = this.byId.get(keyId);
    if (!k) return 'unknown-key';
    const at = k.record.retireAtMs;
    return at !== 0 && nowMs >= at ? 'retired' : 'ok';
  }

  rotate(nowMs: number, graceMs: number): { records: StoreRecord[]; active: SigningKeyInfo } {
    assert(this.active && graceMs >= 0);
    const prev = this.active;
    prev.record = { ...prev.record, active: false, retireAtMs: nowMs + graceMs };
    const next = Math.max(...this.byId.keys()) + 1;
    const records: StoreRecord[] = [
      { op: 'put', db: 'signing_keys', key: prev.record.keyId, value: prev.record },
      this.generate(next, nowMs),
    ];
    return { records, active: info(this.active.record) };
  }

  keys(_nowMs: number): SigningKeyInfo[] {
    return [...this.byId.values()].map((k) => info(k.record));
  }
}

function info(r: SealedSigningKey): SigningKeyInfo {
  return {
    keyId: r.keyId,
    publicKey: r.publicKey,
    active: r.active,
    createdAtMs: r.createdAtMs,
    retireAtMs: r.retireAtMs,
  };
}
