/**
 * The integrity check's child process (see integrity.ts): opens the data file read-only, reads and
 * decodes every record of every database, and prints one JSON line: `{"ok":true,"storeId":...}`
 * or `{"ok":false,"problem":...}` naming the database and key. A corrupt page may end this
 * process by a signal; the parent reports that. Layer: store. Run as `<node> integrity-child <dir>`.
 */
import { join } from 'node:path';
import { open } from 'lmdb';
import { DATA_FILE, DB_NAMES } from './store.js';

function check(dbDir: string): { ok: boolean; storeId?: string; problem?: string } {
  let root: ReturnType<typeof open>;
  try {
    root = open({ path: join(dbDir, DATA_FILE), maxDbs: 16, readOnly: true });
  } catch (err) {
    return { ok: false, problem: `LMDB cannot open it (${(err as Error).message})` };
  }
  let storeId = '';
  for (const name of DB_NAMES) {
    let db: ReturnType<typeof root.openDB>;
    try {
      db = root.openDB({ name, keyEncoding: 'ordered-binary', encoding: 'msgpack' });
    } catch (err) {
      return { ok: false, problem: `database ${name} cannot be opened (${(err as Error).message})` };
    }
    let last: unknown = '(first record)';
    try {
      for (const { key, value } of db.getRange()) {
        last = key;
        if (value === undefined) return { ok: false, problem: `${name}/${String(key)}: no value` };
        if (name === 'meta' && key === 'store_id') storeId = String(value);
      }
    } catch (err) {
      return { ok: false, problem: `${name}: the record after ${String(last)} cannot be read (${(err as Error).message})` };
    }
  }
  return { ok: true, storeId };
}

const dir = process.argv[2];
process.stdout.write(`${JSON.stringify(dir ? check(dir) : { ok: false, problem: 'no directory given' })}\n`);
