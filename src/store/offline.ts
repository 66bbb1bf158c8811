/**
 * Opens a state directory without the daemon, for offline tools (qmkctl's `--state-dir`
 * commands) and tests: takes the directory's lock first (so a running daemon is never read
 * behind its back), opens the data keys with the master key, then the store. Layer: store.
 */
import { join } from 'node:path';
import { DataKeys } from '../security/data-keys.js';
import { masterKeyPath, readMasterKey } from '../security/master-key.js';
import { HeadFile } from './head.js';
import { type StateLock, lockStateDir } from './lock.js';
import { LmdbStore } from './store.js';

export interface OfflineState {
  store: LmdbStore;
  keys: DataKeys;
  lock: StateLock;
  /** Closes the store and drops the lock. */
  close(): Promise<void>;
}

/** @throws StateLockError while a daemon runs on the directory; DataKeysError on a wrong key */
export function openStateOffline(
  stateDir: string,
  masterKeyFile: string | null = null,
  holder = 'qmkctl',
): OfflineState {
  const lock = lockStateDir(stateDir, holder);
  try {
    const keys = DataKeys.open(
      stateDir,
      readMasterKey(masterKeyPath(masterKeyFile, stateDir)),
      false,
    );
    const store = LmdbStore.open(join(stateDir, 'db'), { keys, headFile: HeadFile.at(stateDir) });
    return {
      store,
      keys,
      lock,
      async close() {
        try {
          await store.close();
        } finally {
          lock.release();
        }
      },
    };
  } catch (err) {
    lock.release();
    throw err;
  }
}
