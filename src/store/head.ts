/**
 * Rollback detection: the audit head (sequence and hash) kept outside the data file, in a small
 * authenticated file of the state directory (`store-head.json`) that is rewritten and synced
 * after commits. Layer: store.
 *
 * A data file replaced by an older copy of itself is internally consistent: every record opens
 * and the chain verifies, only shorter. This file remembers how far the log had come, so the
 * start refuses a data file whose log ends before it, or holds another record at that point.
 *
 * Why written after the commit and off the reply path: an extra fsync per batch would double
 * the cost of every acknowledged call. The file may lag the data file by the batches written
 * while it was being synced (a crash there leaves it behind, never ahead); a rollback to a copy
 * older than its last write is refused.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { open as openFile, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { StoreError } from './failures.js';
export const HEAD_FILE = 'store-head.json';

/** A point of the audit chain: a sequence number and the hash of the record there. */
export interface AuditPoint {
  seq: number;
  hash: string;
}

export interface StoreHead {
  storeId: string;
  auditSeq: number;
  auditHash: string;
  writtenAtMs: number;
}

export class HeadFileError extends Error {}

function mac(key: Buffer, h: StoreHead): string {
  return createHmac('sha256', key)
    .update(`${h.storeId}\n${h.auditSeq}\n${h.auditHash}\n${h.writtenAtMs}`)
    .digest('hex');
}

export class HeadFile {
  private writing: Promise<void> | null = null;
  private latest: AuditPoint | null = null;
  private written = -1;

  constructor(
    readonly path: string,
    private readonly key: Buffer,
    private readonly storeId: string,
    private readonly clock: () => number = Date.now,
  ) {}

  static at(stateDir: string): string {
    return join(stateDir, HEAD_FILE);
  }

  /** The recorded head, or null when there is none yet. @throws HeadFileError when edited */
  read(): StoreHead | null {
    if (!existsSync(this.path)) return null;
    let h: StoreHead & { mac?: string };
    try {
      h = JSON.parse(readFileSync(this.path, 'utf8')) as StoreHead & { mac?: string };
    } catch (err) {
      throw new HeadFileError(`${this.path}: unreadable (${(err as Error).message})`);
    }
    const expect = Buffer.from(mac(this.key, h), 'hex');
    const got = Buffer.from(typeof h.mac === 'string' ? h.mac : '', 'hex');
    if (got.length !== expect.length || !timingSafeEqual(got, expect)) {
      throw new HeadFileError(
        `${this.path}: authentication failed (edited, or from another state directory)`,
      );
    }
    return {
      storeId: h.storeId,
      auditSeq: h.auditSeq,
      auditHash: h.auditHash,
      writtenAtMs: h.writtenAtMs,
    };
  }

  /** Records `head` soon (coalesced: one write at a time, always of the newest head). */
  schedule(head: AuditPoint): void {
    this.latest = head;
    if (this.writing === null) this.writing = this.drain();
  }

  /** Resolves once the newest scheduled head is on disk. */
  async flush(): Promise<void> {
    while (this.writing !== null) await this.writing;
  }

  private async drain(): Promise<void> {
    try {
      while (this.latest !== null && this.latest.seq !== this.written) {
        const point = this.latest;
        await this.write(point);
        this.written = point.seq;
      }
    } catch {
      // A failed write (disk full) leaves the previous head: behind, which is safe; the next
      // commit schedules it again.
    } finally {
      this.writing = null;
    }
  }

  private async write(point: AuditPoint): Promise<void> {
    const h: StoreHead = {
      storeId: this.storeId,
      auditSeq: point.seq,
      auditHash: point.hash,
      writtenAtMs: this.clock(),
    };
    const tmp = `${this.path}.tmp`;
    const f = await openFile(tmp, 'w', 0o600);
    try {
      await f.writeFile(`${JSON.stringify({ ...h, mac: mac(this.key, h) })}\n`);
      await f.sync();
    } finally {
      await f.close();
    }
    await rename(tmp, this.path);
    const dir = await openFile(dirname(this.path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}

/** What the rollback check needs to know of the store it guards. */
export interface GuardedStore {
  storeId: string;
  auditSeq: number;
  /** The hash of the audit record at `seq`, or undefined when there is none. */
  hashAt(seq: number): string | undefined;
}

/**
 * Refuses a data file older than the head recorded beside it (a rollback to an older copy), or
 * with another history (another store, or records rewritten).
 * @throws StoreError naming the file and what was found
 */
export function checkAgainstHead(
  head: HeadFile,
  path: string,
  dataFile: string,
  store: GuardedStore,
): void {
  let h: StoreHead | null;
  try {
    h = head.read();
  } catch (err) {
    throw new StoreError(`state file damaged: ${(err as Error).message}`);
  }
  if (h === null) return;
  const when = new Date(h.writtenAtMs).toISOString();
  if (h.storeId !== store.storeId) {
    throw new StoreError(
      `state file damaged: ${path}: belongs to store ${h.storeId}, not ${store.storeId}`,
    );
  }
  if (store.auditSeq < h.auditSeq) {
    throw new StoreError(
      `state file damaged: ${dataFile}: rolled back: its audit log ends at seq ${store.auditSeq}, but ` +
        `seq ${h.auditSeq} was recorded in ${path} at ${when}; it was replaced by an older copy. To ` +
        `start from an older copy on purpose (a restore), remove ${path} first`,
    );
  }
  if (h.auditSeq > 0 && store.hashAt(h.auditSeq) !== h.auditHash) {
    throw new StoreError(
      `state file damaged: ${dataFile}: another history: audit record ${h.auditSeq} is not the one ` +
        `recorded in ${path} at ${when}`,
    );
  }
}
