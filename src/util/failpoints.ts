/**
 * Named failpoints: places where a fault-injection test makes the daemon fail as a real machine
 * would (a crash between two steps, a disk that reports ENOSPC or EIO, a worker thread that
 * dies). Layer: util (imports nothing of the project).
 *
 * Set only by tests, through the environment: `QMK_FAILPOINTS="name[:arg],..."`. Without the
 * variable every check is one comparison of a module constant (`FAILPOINTS_ON`), so production
 * pays nothing measurable. Without `arg` the point fires the first time it is reached; `#N` fires
 * on the Nth time, once; any other `arg` is a word that must equal what the call site passes as
 * `match` (for example a job's seed), firing every time it matches, and `word@N` fires from the
 * Nth match on (so a test can let its own set-up pass first).
 */

export const FAILPOINT_NAMES = [
  /** A commit is about to be written: the process dies before its transaction. */
  'store.before-commit',
  /** A commit's transaction fails as on a full disk (ENOSPC). */
  'store.commit-enospc',
  /** A commit's transaction fails as on a failing disk (EIO). */
  'store.commit-eio',
  /** A commit is durable; the process dies before anyone is told. */
  'store.after-commit',
  /** A checkpoint's snapshot is being written: the process dies inside its transaction. */
  'store.checkpoint',
  /** Op-log entries are being appended: the process dies inside the transaction. */
  'store.oplog-append',
  /** Audit records are being appended: the process dies inside the transaction. */
  'store.audit-append',
  /** A pool worker thread dies while running a job (match: the job's seed). */
  'worker.job',
  /** A pool worker thread dies running an interactive plan (match: the plan's first gate name). */
  'worker.plan',
  /** A program check on its own thread never ends (match: the source's length). */
  'check.spin',
  /** A program check on its own thread allocates without end (match: the source's length). */
  'check.oom',
] as const;

export type FailpointName = (typeof FAILPOINT_NAMES)[number];

interface Armed {
  nth: number | null;
  match: string | null;
  /** With `match`: the first matching hit that fires. */
  from: number;
  hits: number;
}

function parse(spec: string | undefined): Map<FailpointName, Armed> {
  const out = new Map<FailpointName, Armed>();
  if (spec === undefined || spec.trim() === '') return out;
  for (const part of spec.split(',')) {
    const [name = '', arg] = part.trim().split(':');
    if (!(FAILPOINT_NAMES as readonly string[]).includes(name)) {
      throw new Error(
        `QMK_FAILPOINTS: unknown failpoint ${JSON.stringify(name)} (known: ${FAILPOINT_NAMES.join(', ')})`,
      );
    }
    const nth = arg === undefined ? 1 : /^#\d+$/.test(arg) ? Number(arg.slice(1)) : null;
    const [word = '', from = '1'] = nth === null ? (arg ?? '').split('@') : [];
    out.set(name as FailpointName, {
      nth,
      match: nth === null ? word : null,
      from: Number(from),
      hits: 0,
    });
  }
  return out;
}

const ARMED = parse(process.env.QMK_FAILPOINTS);
export const FAILPOINTS_ON = ARMED.size > 0;

/** Whether the failpoint fires now. Counts the hit. */
export function fires(name: FailpointName, match?: string): boolean {
  if (!FAILPOINTS_ON) return false;
  const a = ARMED.get(name);
  if (a === undefined) return false;
  if (a.match !== null) {
    if (match !== a.match) return false;
    a.hits++;
    return a.hits >= a.from;
  }
  a.hits++;
  return a.hits === a.nth;
}

/** Ends the process at once, as a power cut or `kill -9` would: no handler, no flush. */
export function crashNow(name: FailpointName): never {
  process.stderr.write(`failpoint ${name}: crashing\n`);
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable: SIGKILL did not end the process');
}
