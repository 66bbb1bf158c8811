/**
 * The operator's actions on the state directory as a whole: verify the audit chain, take a hot
 * backup, rotate the master key. Layer: store (over the store, the data keys and the directory's
 * files); served by the admin API while the daemon runs, and by qmkctl's offline commands (which
 * hold the directory's lock) when it does not.
 */
import { copyFileSync, existsSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { KernelError } from '../kernel/errors.js';
import type { AuditVerification, BackupResult, StateOperationsPort } from '../kernel/ports.js';
import { DATA_KEYS_FILE, type DataKeys } from '../security/data-keys.js';
import { DEV_MASTER_KEY_FILE, readMasterKey } from '../security/master-key.js';
import { MARKER_FILE } from './integrity.js';
import { DATA_FILE, type LmdbStore } from './store.js';

/** The new development key waits here until the data keys are rewrapped under it. */
export const NEXT_MASTER_KEY_SUFFIX = '.next';

export class StateOperations implements StateOperationsPort {
  constructor(
    private readonly stateDir: string,
    private readonly store: LmdbStore,
    private readonly keys: DataKeys,
    /** null: the development key file in the state directory, which a rotation replaces. */
    private readonly masterKeyFile: string | null,
  ) {}

  /** Re-hashes every audit record from the first (each one's MAC is checked as it is read). */
  async verifyAudit(): Promise<AuditVerification> {
    const r = await this.store.verifyAuditAsync();
    return {
      records: r.records,
      headSeq: r.head.seq,
      headHash: r.head.hash,
      ok: r.broken === null,
      brokenSeq: r.broken?.seq ?? 0,
      reason: r.broken?.reason ?? '',
    };
  }

  /**
   * A consistent copy of the state into `target` (a new directory): LMDB's own copy of one read
   * snapshot (compacted unless told otherwise), then the data keys and the marker. The master key
   * is not copied: it stays with the operator. Start a daemon on the copy to restore it.
   * @throws INVALID_ARGUMENT (path not absolute, parent missing), ALREADY_EXISTS
   */
  async backup(target: string, compact: boolean): Promise<BackupResult> {
    if (!isAbsolute(target))
      throw new KernelError(
        'INVALID_ARGUMENT',
        `path: must be absolute, got ${JSON.stringify(target.slice(0, 200))}`,
        'path',
      );
    if (existsSync(target))
      throw new KernelError(
        'ALREADY_EXISTS',
        `path: ${target} exists; a backup goes to a new directory`,
        'path',
      );
    if (!existsSync(dirname(target)))
      throw new KernelError(
        'INVALID_ARGUMENT',
        `path: the parent directory ${dirname(target)} does not exist`,
        'path',
      );
    // A copy may take as much again as the data file: refused below the watermark.
    const low = this.store.lowSpace();
    if (low) {
      throw new KernelError(
        'STORAGE_FULL',
        `storage_free_min_bytes: ${low.freeBytes} bytes free, below the watermark of ${low.minBytes}`,
        'storage_free_min_bytes',
      );
    }
    mkdirSync(join(target, 'db'), { recursive: true, mode: 0o700 });
    const auditSeq = this.store.auditHead().seq;
    const file = join(target, 'db', DATA_FILE);
    await this.store.backup(file, compact);
    // After the snapshot: every key its records were sealed with is in this copy of the file.
    copyFileSync(join(this.stateDir, DATA_KEYS_FILE), join(target, DATA_KEYS_FILE));
    copyFileSync(join(this.stateDir, MARKER_FILE), join(target, MARKER_FILE));
    return { path: target, bytes: statSync(file).size, auditSeq };
  }

  /**
   * Rewraps the data keys under the key in `newKeyFile`; no record is re-encrypted. With the
   * development key (in the state directory) the daemon's key file is replaced too; with an
   * operator's key file (a systemd credential) the operator replaces it before the next start.
   * @throws INVALID_ARGUMENT when the new key file is missing or malformed
   */
  rotateMasterKey(newKeyFile: string): { dataKeys: number; keyFileReplaced: string } {
    let key: Uint8Array;
    try {
      key = readMasterKey(newKeyFile);
    } catch (err) {
      throw new KernelError(
        'INVALID_ARGUMENT',
        `new_key_file: ${(err as Error).message}`,
        'new_key_file',
      );
    }
    if (this.masterKeyFile !== null) {
      this.keys.rewrap(key);
      return { dataKeys: this.keys.owners().length, keyFileReplaced: '' };
    }
    // Crash-safe order: the new key is on disk first, then the keys are rewrapped (one atomic
    // rename), then the key file is replaced; a start in between finds `.next` and finishes.
    const dev = join(this.stateDir, DEV_MASTER_KEY_FILE);
    const next = `${dev}${NEXT_MASTER_KEY_SUFFIX}`;
    writeFileSync(next, Buffer.from(key).toString('base64'), { mode: 0o400 });
    this.keys.rewrap(key);
    renameSync(next, dev);
    return { dataKeys: this.keys.owners().length, keyFileReplaced: dev };
  }
}
