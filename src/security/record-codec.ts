/**
 * How every stored record is protected at rest. Layer: security (pure over node:crypto and
 * msgpackr; the store calls it on every write and read).
 *
 * Every record is bound to its database and key (the associated data), so an offline edit, or a
 * record copied to another key or database, fails to open and is reported by name:
 * - authenticated (first byte 0x01): `0x01 || tag[16] || msgpack(value)`, tag = the first 16
 *   bytes of HMAC-SHA256(mac key, ad || payload). Used for records that are not tenant data.
 * - sealed (first byte 0x02): `0x02 || n || owner[n] || nonce[12] || tag[16] || ciphertext`,
 *   AES-256-GCM under the owner's data key with ad || owner as additional data. Used for tenant
 *   data (programs, results, per-shot outcomes, op-log entries, snapshots); owner '' is the
 *   kernel's own data key (state of clusters that span tenants).
 * Why AES-256-GCM and not tweetnacl's secretbox: measured here, GCM through node:crypto seals a
 * 4 KiB record in 30 µs against 45 µs, 256 KiB in 1.0 ms against 2.3 ms, and it takes the
 * associated data natively.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  hkdfSync,
  randomFillSync,
  timingSafeEqual,
} from 'node:crypto';
import { Packr } from 'msgpackr';

/** Plain msgpack, neither authenticated nor sealed: only with protection off (benchmarks). */
const UNPROTECTED = 0x00;
const AUTHENTICATED = 0x01;
const SEALED = 0x02;
const TAG_BYTES = 16;
const NONCE_BYTES = 12;
/** Tenant ids are 32 hex characters; the length byte bounds any owner to 255. */
const OWNER_BYTES_MAX = 255;
/** Nonces are drawn in blocks: one getrandom call serves this many records. */
const NONCE_BLOCK = 256;

/** Plain msgpack, no shared structures: a record decodes by itself, in any process. */
const packr = new Packr({ useRecords: false, moreTypes: false });
/**
 * msgpackr packs into one buffer shared by the process, grown (×4) to the largest value packed and
 * never shrunk: after a 1 MiB program it stayed at 12.5 MB (measured). Every encoding copies the
 * payload out, so after a payload this large the packer gets a small buffer again and the large
 * one goes with the garbage.
 */
const PACK_BUFFER_KEEP_BYTES = 64 * 1024;
const PACK_BUFFER_FRESH_BYTES = 8192;

function pack(value: unknown): Buffer {
  const payload = packr.pack(value);
  if (payload.buffer.byteLength > PACK_BUFFER_KEEP_BYTES) {
    packr.useBuffer(Buffer.allocUnsafeSlow(PACK_BUFFER_FRESH_BYTES));
  }
  return payload;
}

export type RecordKey = string | number;

/** A record that does not open: edited, moved, truncated, or sealed under a destroyed key. */
export class RecordError extends Error {
  constructor(
    readonly db: string,
    readonly key: RecordKey,
    readonly reason: 'tampered' | 'shredded' | 'malformed',
    detail: string,
  ) {
    super(`${db}/${String(key)}: ${detail}`);
  }
}

/** A record whose MAC or AEAD tag does not verify under its key. */
function forged(db: string, key: RecordKey): RecordError {
  return new RecordError(
    db,
    key,
    'tampered',
    'authentication failed (edited offline, or moved from another key)',
  );
}

/** A 32-byte key for one purpose, derived from a root key (HKDF-SHA256). */
export function deriveKey(root: Uint8Array, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', root, Buffer.alloc(0), `qmkd ${purpose}`, 32));
}

function associatedData(db: string, key: RecordKey): Buffer {
  return Buffer.from(`${db}\u0000${typeof key === 'number' ? 'n' : 's'}${String(key)}`, 'utf8');
}

export class RecordCodec {
  private readonly nonces = Buffer.alloc(NONCE_BYTES * NONCE_BLOCK);
  private nextNonce = NONCE_BLOCK;

  /**
   * @param macKey authenticates records that are not sealed
   * @param dataKey the data key of an owner (tenant id, or '' for the kernel), or null when that
   *   owner's key was destroyed (its records are shredded) or never existed
   */
  /**
   * @param protect false only to measure what protection costs: records are then written
   *   as plain msgpack, and plain records are read; a protected store refuses them
   */
  constructor(
    private readonly macKey: Buffer,
    private readonly dataKey: (owner: string) => Buffer | null,
    private readonly protect = true,
  ) {}

  encode(db: string, key: RecordKey, value: unknown, owner?: string): Buffer {
    const payload = pack(value);
    if (!this.protect) return Buffer.concat([Buffer.of(UNPROTECTED), payload]);
    const ad = associatedData(db, key);
    if (owner === undefined) {
      const tag = createHmac('sha256', this.macKey)
        .update(ad)
        .update(payload)
        .digest()
        .subarray(0, TAG_BYTES);
      return Buffer.concat([Buffer.of(AUTHENTICATED), tag, payload]);
    }
    const k = this.dataKey(owner);
    if (k === null) throw new Error(`no data key for owner ${JSON.stringify(owner)}`);
    const ownerBytes = Buffer.from(owner, 'latin1');
    if (ownerBytes.length > OWNER_BYTES_MAX) throw new Error('owner id too long');
    const nonce = this.nonce();
    const c = createCipheriv('aes-256-gcm', k, nonce);
    c.setAAD(Buffer.concat([ad, ownerBytes]));
    const ct = Buffer.concat([c.update(payload), c.final()]);
    return Buffer.concat([
      Buffer.of(SEALED, ownerBytes.length),
      ownerBytes,
      nonce,
      c.getAuthTag(),
      ct,
    ]);
  }

  /** @throws RecordError naming the database and key */
  decode(db: string, key: RecordKey, bytes: Uint8Array): unknown {
    const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const ad = associatedData(db, key);
    if (b.length >= 1 + TAG_BYTES && b[0] === AUTHENTICATED) {
      const payload = b.subarray(1 + TAG_BYTES);
      const tag = createHmac('sha256', this.macKey)
        .update(ad)
        .update(payload)
        .digest()
        .subarray(0, TAG_BYTES);
      if (!timingSafeEqual(tag, b.subarray(1, 1 + TAG_BYTES))) throw forged(db, key);
      return this.unpack(db, key, payload);
    }
    if (b.length >= 2 && b[0] === SEALED) {
      const n = b[1]!;
      const start = 2 + n;
      if (b.length < start + NONCE_BYTES + TAG_BYTES)
        throw new RecordError(db, key, 'malformed', 'sealed record truncated');
      const owner = b.subarray(2, start).toString('latin1');
      const k = this.dataKey(owner);
      if (k === null) {
        throw new RecordError(
          db,
          key,
          'shredded',
          `sealed with the data key of ${owner}, which was destroyed`,
        );
      }
      const nonce = b.subarray(start, start + NONCE_BYTES);
      const tag = b.subarray(start + NONCE_BYTES, start + NONCE_BYTES + TAG_BYTES);
      const d = createDecipheriv('aes-256-gcm', k, nonce);
      d.setAAD(Buffer.concat([ad, b.subarray(2, start)]));
      d.setAuthTag(tag);
      let payload: Buffer;
      try {
        payload = Buffer.concat([d.update(b.subarray(start + NONCE_BYTES + TAG_BYTES)), d.final()]);
      } catch {
        throw forged(db, key);
      }
      return this.unpack(db, key, payload);
    }
    if (b.length >= 1 && b[0] === UNPROTECTED) {
      if (this.protect)
        throw new RecordError(db, key, 'tampered', 'authentication failed (an unprotected record)');
      return this.unpack(db, key, b.subarray(1));
    }
    throw new RecordError(db, key, 'malformed', 'not a qmkd record (unknown format byte)');
  }

  private unpack(db: string, key: RecordKey, payload: Buffer): unknown {
    try {
      return packr.unpack(payload);
    } catch (err) {
      throw new RecordError(db, key, 'malformed', `undecodable (${(err as Error).message})`);
    }
  }

  private nonce(): Buffer {
    if (this.nextNonce === NONCE_BLOCK) {
      randomFillSync(this.nonces);
      this.nextNonce = 0;
    }
    const at = NONCE_BYTES * this.nextNonce++;
    return Buffer.from(this.nonces.subarray(at, at + NONCE_BYTES));
  }
}
