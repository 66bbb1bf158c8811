/**
 * The data keys of a state directory, wrapped by the operator's master key (the KEK). Layer:
 * security.
 *
 * They live in their own small file (`<state dir>/data-keys.json`), never in the LMDB data file:
 * destroying a tenant's key rewrites this file without it, so the tenant's sealed records cannot
 * be opened afterwards even from a copy of the data file made before (crypto-shredding). A
 * rotation of the master key rewraps these keys and nothing else: no record is re-encrypted.
 *
 * The file holds the store key (from which the record MAC key, the kernel's own data key and
 * the head file's key are derived), one 32-byte data key per tenant, and the ids of shredded
 * tenants. Each key is wrapped with AES-256-GCM under the KEK, its id as associated data. The file
 * is replaced atomically and synced (temp file, fsync, rename, fsync of the directory), and is
 * written before any record sealed with a new key can commit.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { deriveKey } from './record-codec.js';

export const DATA_KEYS_FILE = 'data-keys.json';
/** Tenants are bounded (TENANTS_MAX); so is this file. Shredded ids stay listed for good. */
const KEY_BYTES = 32;

interface KeysFile {
  version: 1;
  store: string;
  tenants: Record<string, string>;
  shredded: string[];
}

export class DataKeysError extends Error {}

function wrap(kek: Uint8Array, id: string, key: Buffer): string {
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', kek, nonce);
  c.setAAD(Buffer.from(`qmkd data key ${id}`));
  const ct = Buffer.concat([c.update(key), c.final()]);
  return Buffer.concat([nonce, c.getAuthTag(), ct]).toString('base64');
}

function unwrap(kek: Uint8Array, id: string, wrapped: string, path: string): Buffer {
  const b = Buffer.from(wrapped, 'base64');
  const d = createDecipheriv('aes-256-gcm', kek, b.subarray(0, 12));
  d.setAAD(Buffer.from(`qmkd data key ${id}`));
  d.setAuthTag(b.subarray(12, 28));
  try {
    return Buffer.concat([d.update(b.subarray(28)), d.final()]);
  } catch {
    throw new DataKeysError(
      `${path}: the key of ${id === '' ? 'the store' : `tenant ${id}`} does not open with this master key ` +
        '(a different master key, or the file was edited)',
    );
  }
}

export class DataKeys {
  private readonly tenants = new Map<string, Buffer>();
  private readonly shredded = new Set<string>();
  readonly macKey: Buffer;
  readonly headKey: Buffer;
  /** Seals the kernel's Ed25519 signing keys in the data file. */
  readonly signingSealKey: Buffer;
  private readonly kernelKey: Buffer;

  private constructor(
    private readonly path: string,
    private kek: Uint8Array,
    private readonly storeKey: Buffer,
  ) {
    this.macKey = deriveKey(storeKey, 'record mac v1');
    this.headKey = deriveKey(storeKey, 'store head v1');
    this.signingSealKey = deriveKey(storeKey, 'signing key seal v1');
    this.kernelKey = deriveKey(storeKey, 'kernel data key v1');
  }

  static exists(stateDir: string): boolean {
    return existsSync(join(stateDir, DATA_KEYS_FILE));
  }

  /**
   * Opens the file, or creates it with a new store key when `create` (a first start, or a state
   * directory from before sealing). @throws DataKeysError on a wrong master key or a damaged file.
   */
  static open(stateDir: string, kek: Uint8Array, create: boolean): DataKeys {
    const path = join(stateDir, DATA_KEYS_FILE);
    if (!existsSync(path)) {
      if (!create)
        throw new DataKeysError(`${path}: missing; the sealed records cannot be opened without it`);
      const keys = new DataKeys(path, kek, randomBytes(KEY_BYTES));
      keys.persist();
      return keys;
    }
    let file: KeysFile;
    try {
      file = JSON.parse(readFileSync(path, 'utf8')) as KeysFile;
      if (file.version !== 1 || typeof file.store !== 'string') throw new Error('fields missing');
    } catch (err) {
      throw new DataKeysError(`${path}: not a qmkd data-keys file (${(err as Error).message})`);
    }
    const keys = new DataKeys(path, kek, unwrap(kek, '', file.store, path));
    for (const [id, w] of Object.entries(file.tenants ?? {}))
      keys.tenants.set(id, unwrap(kek, id, w, path));
    for (const id of file.shredded ?? []) keys.shredded.add(id);
    return keys;
  }

  /** The data key of `owner` (a tenant id, or '' for the kernel); null once shredded or unknown. */
  keyFor(owner: string): Buffer | null {
    if (owner === '') return this.kernelKey;
    return this.tenants.get(owner) ?? null;
  }

  isShredded(owner: string): boolean {
    return this.shredded.has(owner);
  }

  /** Makes sure `tenantId` has a data key; a new one is on disk before this returns. */
  ensure(tenantId: string): void {
    if (tenantId === '' || this.tenants.has(tenantId)) return;
    if (this.shredded.has(tenantId))
      throw new Error(`tenant ${tenantId} was shredded; its key cannot return`);
    this.tenants.set(tenantId, randomBytes(KEY_BYTES));
    this.persist();
  }

  /**
   * Destroys the tenant's data key for good (crypto-shredding). Durable on return; true when the
   * key is gone (now or before).
   */
  shred(tenantId: string): boolean {
    if (this.tenants.delete(tenantId) || !this.shredded.has(tenantId)) {
      this.shredded.add(tenantId);
      this.persist();
    }
    return !this.tenants.has(tenantId) && this.shredded.has(tenantId);
  }

  /** Tenants holding a key. */
  owners(): string[] {
    return [...this.tenants.keys()];
  }

  /** Rewraps every key under `newKek` (master key rotation); durable on return. */
  rewrap(newKek: Uint8Array): void {
    const old = this.kek;
    this.kek = newKek;
    try {
      this.persist();
    } catch (err) {
      this.kek = old;
      throw err;
    }
  }

  private persist(): void {
    const file: KeysFile = {
      version: 1,
      store: wrap(this.kek, '', this.storeKey),
      tenants: Object.fromEntries([...this.tenants].map(([id, k]) => [id, wrap(this.kek, id, k)])),
      shredded: [...this.shredded],
    };
    writeDurably(this.path, `${JSON.stringify(file)}\n`);
  }
}

/** Replaces `path` atomically and durably: temp file, fsync, rename, fsync of the directory. */
export function writeDurably(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
