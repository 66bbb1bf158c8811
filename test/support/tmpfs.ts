/**
 * Test support: a real small filesystem (tmpfs) for tests of a full disk. Mounting needs root (CI
 * runs as root); elsewhere `mountTmpfs` returns null with the reason, and the test prints it and
 * skips. The caller unmounts in a `finally`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Tmpfs {
  dir: string;
  unmount(): void;
}

export function mountTmpfs(sizeBytes: number): Tmpfs | { skip: string } {
  if (process.getuid?.() !== 0) return { skip: 'mounting a tmpfs needs root' };
  const dir = mkdtempSync(join(tmpdir(), 'qmkd-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0700`, 'tmpfs', dir], {
      stdio: 'pipe',
    });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    return {
      skip: `mount -t tmpfs failed: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`,
    };
  }
  return {
    dir,
    unmount() {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Writes a ballast file of `bytes` (or as much as fits); returns how many bytes were written. */
export function ballast(path: string, bytes: number): number {
  // dd stops at ENOSPC and reports what it wrote; no partial-write handling needed here.
  try {
    execFileSync(
      'dd',
      ['if=/dev/zero', `of=${path}`, 'bs=65536', `count=${Math.ceil(bytes / 65536)}`],
      { stdio: 'pipe' },
    );
  } catch {
    // ENOSPC: the file holds what fitted
  }
  return Number(execFileSync('stat', ['-c', '%s', path]).toString().trim());
}
