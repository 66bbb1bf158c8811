/**
 * One daemon per state directory: an exclusive flock(2) on `<state dir>/qmkd.lock`, taken before
 * anything in the directory is read and held by this process for its whole life. Layer: store
 * (used by main.ts and qmkctl's offline commands).
 *
 * Why flock through flock(1): Node has no flock call. util-linux's flock(1) (on every Linux
 * system) takes the lock on a descriptor this process hands down; a flock lock belongs to the
 * open file description, which parent and child share, so the lock stays held through our
 * descriptor after the child exits, and the kernel drops it when this process ends, however it
 * ends (SIGKILL included). No stale lock file can block a restart, and no PID guessing is needed.
 * The holder writes its PID into the file so that a refused start can name it.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const LOCK_FILE = 'qmkd.lock';
/** flock(1)'s exit status when the lock is held elsewhere (chosen with --conflict-exit-code). */
const LOCK_HELD_EXIT = 75;

export class StateLockError extends Error {}

export interface StateLock {
  path: string;
  /** Drops the lock (closing the descriptor); the process ending drops it as well. */
  release(): void;
}

/**
 * Takes the state directory's lock or throws naming the holder.
 * @throws StateLockError when another process holds it, or flock(1) is missing.
 */
export function lockStateDir(stateDir: string, holder = 'qmkd'): StateLock {
  const path = join(stateDir, LOCK_FILE);
  const fd = openSync(path, 'a+', 0o600);
  const r = spawnSync(
    'flock',
    ['--exclusive', '--nonblock', '--conflict-exit-code', String(LOCK_HELD_EXIT), '3'],
    { stdio: ['ignore', 'ignore', 'pipe', fd] },
  );
  if (r.error || r.status !== 0) {
    closeSync(fd);
    if (r.status === LOCK_HELD_EXIT) {
      throw new StateLockError(
        `state directory ${stateDir} is in use by ${describeHolder(path)}; stop it first ` +
          '(one daemon per state directory)',
      );
    }
    const why = r.error ? r.error.message : `${r.stderr.toString().trim()} (exit ${r.status})`;
    throw new StateLockError(`could not lock ${path} with flock(1): ${why}`);
  }
  ftruncateSync(fd, 0);
  writeSync(fd, `${process.pid} ${holder}\n`);
  let held = true;
  return {
    path,
    release() {
      if (!held) return;
      held = false;
      closeSync(fd);
    },
  };
}

/** "qmkd (pid 1234)" from the lock file's content; the file is written only by its holder. */
function describeHolder(path: string): string {
  let text = '';
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch {
    // unreadable: named without a PID below
  }
  const m = /^(\d+) (\S+)/.exec(text);
  return m ? `${m[2]} (pid ${m[1]})` : 'another process';
}
