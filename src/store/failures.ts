/**
 * How the store fails: a state file that does not open (`StoreError`, refused at start), the
 * mapping of LMDB and filesystem write errors to the kernel's storage codes, and the failpoints a
 * batch can reach (tests). Layer: store. Why apart from `store.ts`: these are about failure, not
 * about reading and writing, and are read on their own when a disk fills or a file is damaged.
 */
import { constants as osConstants } from 'node:os';
import type { RootDatabase } from 'lmdb';
import { KernelError } from '../kernel/errors.js';
import { FAILPOINTS_ON, fires } from '../util/failpoints.js';

/** A damaged or foreign state file; its message names the file (refused at start). */
export class StoreError extends Error {}

/** ENOSPC as lmdb-js reports it (a number): the disk is full. */
const ENOSPC = osConstants.errno.ENOSPC;
/** LMDB's MDB_MAP_FULL: the environment reached its map size. */
const MDB_MAP_FULL = -30792;
/**
 * A failed write counts as "disk full" when less than this is free afterwards: LMDB grows its
 * file by whole pages and batches, and on Linux a full disk reaches lmdb-js as EIO, not ENOSPC.
 */
export const STORAGE_FULL_SLACK_BYTES = 4 * 1024 ** 2;

/** The failpoints a batch reaches (tests only; all false unless QMK_FAILPOINTS is set). */
export interface BatchFaults {
  beforeCommit: boolean;
  commitError: Error | null;
  auditAppend: boolean;
  oplogAppend: boolean;
  afterCommit: boolean;
}

const NO_FAULTS: BatchFaults = {
  beforeCommit: false,
  commitError: null,
  auditAppend: false,
  oplogAppend: false,
  afterCommit: false,
};

/**
 * Store failpoints match the audit actions of the batch (`store.before-commit:OpenSession` fires
 * for the batch that commits an OpenSession), so a test aims at one call, whatever the daemon
 * wrote before it. Injected commit errors carry the errno LMDB would report.
 */
export function batchFaults(
  batch: readonly { audit: readonly { action: string }[]; ops: readonly unknown[] }[],
): BatchFaults {
  if (!FAILPOINTS_ON) return NO_FAULTS;
  const actions = batch.flatMap((c) => c.audit.map((a) => a.action));
  const hasOps = batch.some((c) => c.ops.length > 0);
  const any = (name: Parameters<typeof fires>[0]) => actions.some((a) => fires(name, a));
  const enospc = any('store.commit-enospc');
  const eio = any('store.commit-eio');
  return {
    beforeCommit: any('store.before-commit'),
    commitError: enospc
      ? Object.assign(new Error('No space left on device (failpoint)'), { code: ENOSPC })
      : eio
        ? Object.assign(new Error('Input/output error (failpoint)'), {
            code: osConstants.errno.EIO,
          })
        : null,
    auditAppend: actions.length > 0 && any('store.audit-append'),
    oplogAppend: hasOps && any('store.oplog-append'),
    afterCommit: any('store.after-commit'),
  };
}

/**
 * A failed write as the kernel's error: STORAGE_FULL when the disk (or LMDB's map) has no room,
 * else STORAGE_FAILED. `dir` is the store's directory, `file` its data file; `freeBytes` reads the disk's free space (it may throw when the filesystem
 * itself is failing).
 */
export function storageFailure(
  err: unknown,
  dir: string,
  file: string,
  freeBytes: () => number,
): KernelError {
  const cause = err instanceof Error ? err : new Error(String(err));
  const code = (cause as { code?: unknown }).code;
  if (code === MDB_MAP_FULL) {
    return new KernelError(
      'STORAGE_FULL',
      `storage: the state store ${file} reached its map size; nothing was written`,
      'storage',
    );
  }
  let free: number | null = null;
  try {
    free = freeBytes();
  } catch {
    // the filesystem itself is failing: reported as a failed write below
  }
  if (code === 'ENOSPC' || code === ENOSPC || (free !== null && free < STORAGE_FULL_SLACK_BYTES)) {
    return new KernelError(
      'STORAGE_FULL',
      `storage: the disk holding ${dir} is full (${free ?? 0} bytes free); nothing was ` +
        'written; retry once space is freed',
      'storage',
    );
  }
  return new KernelError(
    'STORAGE_FAILED',
    `storage: writing ${file} failed (${cause.message}); nothing was written`,
    'storage',
  );
}

/**
 * One write transaction, synced before it resolves. lmdb-js reports a failed commit as an error
 * whose `commitError` promise holds the cause (ENOSPC and EIO both arrive as LMDB's EIO); the
 * cause is awaited here so that it is neither lost nor left as an unhandled rejection.
 */
export async function transactDurably(
  root: RootDatabase,
  fn: (write: (result: unknown) => void) => void,
  injected: Error | null = null,
): Promise<void> {
  if (injected) throw injected;
  // Inside a transaction lmdb-js's put and remove return the transaction's commit promise; on a
  // failed commit it rejects, and unobserved that would be an unhandled rejection. The failure
  // is reported once, below, through the transaction's own promise.
  const seen = new Set<Promise<unknown>>();
  const write = (result: unknown) => {
    if (result instanceof Promise && !seen.has(result)) {
      seen.add(result);
      result.catch(() => {});
    }
  };
  try {
    await root.transaction(() => fn(write));
  } catch (err) {
    const pending = (err as { commitError?: Promise<unknown> }).commitError;
    if (pending) {
      await pending.then(
        () => {},
        (cause: unknown) => {
          throw cause;
        },
      );
    }
    throw err;
  }
  await root.flushed;
}
