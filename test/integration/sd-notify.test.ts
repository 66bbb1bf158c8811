/**
 * systemd notifications from the daemon itself: a Python stand-in for systemd's notify socket
 * (test/support/notify_socket.py) reads each datagram with the sender's pid as the kernel reports
 * it (SO_PASSCRED, what systemd checks under NotifyAccess=main). The daemon must send READY=1 once
 * serving, WATCHDOG=1 pings at half the WATCHDOG_USEC interval, and STOPPING=1 on SIGTERM, every
 * one from its own pid.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { nativeAddon } from '../../src/sim/kernels.js';
import {
  type Daemon,
  logLines,
  removeStateDir,
  startDaemon,
  tempStateDir,
} from '../support/daemon.js';

const RECEIVER = new URL('../support/notify_socket.py', import.meta.url).pathname;

interface Datagram {
  pid: number | null;
  message: string;
}

/** The receiver on `path`: its datagrams so far, and a wait for one that matches. */
async function receiver(path: string) {
  const child: ChildProcess = spawn('python3', [RECEIVER, path], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const got: Datagram[] = [];
  const waiting: { match: (d: Datagram) => boolean; resolve: () => void }[] = [];
  let buffered = '';
  let listening: () => void = () => {};
  const ready = new Promise<void>((r) => {
    listening = r;
  });
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      const parsed = JSON.parse(line) as Datagram & { listening?: string };
      if (parsed.listening) {
        listening();
        continue;
      }
      got.push(parsed);
      for (const w of waiting.splice(0)) {
        if (w.match(parsed)) w.resolve();
        else waiting.push(w);
      }
    }
  });
  await ready;
  return {
    got,
    /** Resolves once a datagram satisfying `match` has arrived (already, or later). */
    until(match: (d: Datagram) => boolean): Promise<void> {
      if (got.some(match)) return Promise.resolve();
      return new Promise((resolve) => waiting.push({ match, resolve }));
    },
    stop() {
      child.kill('SIGKILL');
    },
  };
}

test('READY=1, WATCHDOG=1 and STOPPING=1 arrive from the daemon’s own pid', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qmk-notify-'));
  const socketPath = join(dir, 'notify.sock');
  const stateDir = tempStateDir();
  const r = await receiver(socketPath);
  let d: Daemon | null = null;
  try {
    d = await startDaemon(stateDir, { NOTIFY_SOCKET: socketPath, WATCHDOG_USEC: '200000' });
    if (nativeAddon() === null) {
      // Without the addon the daemon falls back to the systemd-notify helper and says so.
      assert.ok(
        logLines(d.output()).some((l) => String(l.msg).startsWith('native addon not built')),
      );
      return;
    }
    await r.until((g) => g.message.split('\n').includes('READY=1'));
    await r.until((g) => g.message === 'WATCHDOG=1');
    assert.is(await d.stop(), 0);
    await r.until((g) => g.message === 'STOPPING=1');
    const ready = r.got.find((g) => g.message.startsWith('READY=1'))!;
    assert.match(ready.message, /^READY=1\nSTATUS=serving on 127\.0\.0\.1:\d+$/);
    for (const g of r.got)
      assert.is(g.pid, d.child.pid, `${JSON.stringify(g.message)} from the daemon`);
    assert.not.ok(
      logLines(d.output()).some((l) => l.msg === 'systemd notification failed'),
      'no failed notification',
    );
  } finally {
    if (d && d.child.exitCode === null) await d.kill();
    r.stop();
    removeStateDir(stateDir);
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
