/**
 * Start-up checks of the state directory, before the daemon maps the data file. Layer: store.
 *
 * - An initialised directory (its marker file exists) whose data file is missing or empty is
 *   refused: serving it would look like a first start (new keys, no tenants) and hide the loss.
 * - The data file must be the one the marker names (a store id kept in both), so a data file
 *   from another state directory is refused too.
 * - Every record of every database is read and decoded in a child process first. LMDB trusts
 *   its pages: a damaged page can end the process reading it by SIGSEGV or SIGBUS, which no
 *   try/catch sees. In a child that death is an exit status, reported here with the file named.
 *
 * Every refusal reads `state file damaged: <file>: <what>` and says how to start fresh on purpose.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DATA_FILE, DB_NAMES } from './store.js';

export const MARKER_FILE = 'state.json';
/** The check reads every page; a damaged file must not hang the start either. */
const CHECK_TIMEOUT_MS = 10 * 60_000;

export class StateDamagedError extends Error {}

/**
 * The child: opens the data file read-only, reads every record of every database and prints one
 * JSON line, `{"ok":true,"storeId":...}` or `{"ok":false,"problem":...}` naming the database and
 * the last key read. It holds no keys: records are authenticated by the daemon once the structure
 * is known to be sound. The store id is read from its meta record without the MAC (format byte
 * 0x01 and a 16-byte tag precede the msgpack; schema 1 stored plain msgpack).
 * argv: data file, database names (comma-separated), lmdb's and msgpackr's module URLs.
 */
const CHILD_SCRIPT = `
const [file, names, lmdbUrl, msgpackrUrl] = process.argv.slice(1);
const { open } = await import(lmdbUrl);
const { unpack } = await import(msgpackrUrl);
function check() {
  let root;
  try {
    root = open({ path: file, maxDbs: 16, readOnly: true });
  } catch (err) {
    return { ok: false, problem: 'LMDB cannot open it (' + err.message + ')' };
  }
  let storeId = '';
  for (const name of names.split(',')) {
    let db;
    try {
      db = root.openDB({ name, keyEncoding: 'ordered-binary', encoding: 'binary' });
    } catch (err) {
      return { ok: false, problem: 'database ' + name + ' cannot be opened (' + err.message + ')' };
    }
    let last = '(first record)';
    try {
      for (const { key, value } of db.getRange()) {
        last = key;
        if (value === undefined) return { ok: false, problem: name + '/' + String(key) + ': no value' };
        if (name === 'meta' && key === 'store_id') {
          try { storeId = String(unpack(value[0] === 1 ? value.subarray(17) : value)); } catch { storeId = ''; }
        }
      }
    } catch (err) {
      return { ok: false, problem: name + ': the record after ' + String(last) + ' cannot be read (' + err.message + ')' };
    }
  }
  return { ok: true, storeId };
}
process.stdout.write(JSON.stringify(check()) + '\\n');
`;

export interface Marker {
  storeId: string;
  createdAtMs: number;
}

function damaged(file: string, what: string, stateDir: string): StateDamagedError {
  return new StateDamagedError(
    `state file damaged: ${file}: ${what}. Restore it from a backup (docs/operations.md), or to ` +
      `start fresh deliberately move ${stateDir} away first`,
  );
}

export function readMarker(stateDir: string): Marker | null {
  const path = join(stateDir, MARKER_FILE);
  if (!existsSync(path)) return null;
  try {
    const m = JSON.parse(readFileSync(path, 'utf8')) as Partial<Marker>;
    if (typeof m.storeId === 'string' && typeof m.createdAtMs === 'number') return m as Marker;
  } catch {
    // reported below
  }
  throw damaged(path, 'not a qmkd state marker (unreadable JSON or fields missing)', stateDir);
}

/**
 * A directory from before the marker: its development master key (written on the first start,
 * next to the data) shows that it was initialised. Its store id is not known.
 */
function legacyMarker(stateDir: string): Marker | null {
  const key = join(stateDir, 'master.key');
  return existsSync(key) ? { storeId: '', createdAtMs: statSync(key).mtimeMs } : null;
}

/** Written once, atomically (a crash leaves the old file or none, never half of one). */
export function writeMarker(stateDir: string, marker: Marker): void {
  const path = join(stateDir, MARKER_FILE);
  writeFileSync(`${path}.tmp`, `${JSON.stringify(marker)}\n`, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

/**
 * Refuses a missing, empty or crashing data file of an initialised directory; reads every
 * record in a child process. Returns the store id found in the data file ('' on a first start).
 * @throws StateDamagedError naming the file and the problem.
 */
export function checkStateDir(stateDir: string, dbDir: string): string {
  const marker = readMarker(stateDir) ?? legacyMarker(stateDir);
  const file = join(dbDir, DATA_FILE);
  const since = marker
    ? ` (the state directory was initialised ${new Date(marker.createdAtMs).toISOString()})`
    : '';
  if (!existsSync(file)) {
    if (marker) throw damaged(file, `missing${since}`, stateDir);
    return '';
  }
  if (statSync(file).size === 0) {
    if (marker) throw damaged(file, `empty (0 bytes)${since}`, stateDir);
    throw damaged(file, 'empty (0 bytes)', stateDir);
  }
  const require = createRequire(import.meta.url);
  const args = [
    '--input-type=module',
    '-e',
    CHILD_SCRIPT,
    join(dbDir, DATA_FILE),
    DB_NAMES.join(','),
    pathToFileURL(require.resolve('lmdb')).href,
    pathToFileURL(require.resolve('msgpackr')).href,
  ];
  // Plain node, whatever runs the daemon (tsx in development): the child is a script of its own.
  const r = spawnSync(process.execPath, args, {
    encoding: 'utf8',
    timeout: CHECK_TIMEOUT_MS,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.signal) {
    const how =
      r.error && /ETIMEDOUT/.test(r.error.message)
        ? 'reading it did not finish in time'
        : `reading it crashed the reader (${r.signal})`;
    throw damaged(file, `${how}; a page is corrupt`, stateDir);
  }
  const out = r.stdout.trim().split('\n').pop() ?? '';
  let result: { ok: boolean; storeId?: string; problem?: string } | null = null;
  try {
    result = JSON.parse(out) as { ok: boolean; storeId?: string; problem?: string };
  } catch {
    result = null;
  }
  if (result === null) {
    throw damaged(
      file,
      `the integrity check failed (exit ${r.status}): ${r.stderr.trim().split('\n').slice(-3).join(' ')}`,
      stateDir,
    );
  }
  if (!result.ok) throw damaged(file, result.problem ?? 'unreadable', stateDir);
  const storeId = result.storeId ?? '';
  if (marker && marker.storeId !== '' && storeId !== marker.storeId) {
    throw damaged(
      file,
      storeId === ''
        ? `holds no store id but the directory's marker names ${marker.storeId}${since}`
        : `is store ${storeId}, not this directory's store ${marker.storeId}`,
      stateDir,
    );
  }
  return storeId;
}
