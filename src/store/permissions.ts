/**
 * The state directory's permissions, tightened at every start: the directory and its
 * subdirectories 0700, every file 0600, the development master key 0400. Layer: store.
 *
 * Why at every start and not only at creation: a directory restored from a backup, copied by
 * hand or created by an older version keeps whatever modes it came with (0755 and 0644 were seen),
 * and the data file holds every tenant's records. Links are left alone (never followed).
 */
import { chmodSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export const DIR_MODE = 0o700;
export const FILE_MODE = 0o600;
export const KEY_FILE_MODE = 0o400;

/** A path whose mode was looser than it should be, with both modes (octal). */
export interface Tightened {
  path: string;
  from: string;
  to: string;
}

/**
 * Sets the modes under `stateDir` (the directory included). `keyFiles` are names, relative to
 * the state directory, of key files (mode 0400). Returns what was looser.
 */
export function tightenStateDir(stateDir: string, keyFiles: readonly string[]): Tightened[] {
  const changed: Tightened[] = [];
  const keys = new Set(keyFiles.map((f) => join(stateDir, f)));
  const visit = (path: string) => {
    const st = lstatSync(path);
    if (st.isSymbolicLink()) return;
    const want = st.isDirectory() ? DIR_MODE : keys.has(path) ? KEY_FILE_MODE : FILE_MODE;
    const have = st.mode & 0o777;
    if (have !== want) {
      chmodSync(path, want);
      if ((have & ~want) !== 0) {
        changed.push({ path, from: have.toString(8), to: want.toString(8) });
      }
    }
    if (st.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name));
  };
  visit(stateDir);
  return changed;
}
