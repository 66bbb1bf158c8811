/**
 * systemd readiness, status and watchdog notifications (sd_notify protocol). Layer: util — imports
 * nothing from the project, only Node built-ins.
 *
 * Decides: what qmkd tells its service manager and when it is silent. With `NOTIFY_SOCKET` unset
 * (development, tests, any non-systemd supervisor) every call is a no-op. Under systemd
 * (systemd/qmkd.service, Type=notify) it sends READY=1, STATUS=…, STOPPING=1 and WATCHDOG=1.
 *
 * How: the protocol is one datagram on an AF_UNIX SOCK_DGRAM socket, which Node cannot send
 * (node:dgram is UDP only; node:net is stream only). The daemon passes `datagram`, the native
 * addon's sender: the datagram then leaves qmkd's own main thread, so systemd attributes it to the
 * main PID and the unit can say NotifyAccess=main. Without the addon (its build failed) each
 * notification runs the `systemd-notify` binary instead, with `--pid=<process.pid>`; that datagram
 * comes from a child process, which only NotifyAccess=all accepts (the daemon logs this at start).
 *
 * Never throws: a notification failure must not take the daemon down. Errors go to the optional
 * `onError` callback (the daemon logs them); without one they are dropped.
 */
import { execFile as nodeExecFile } from 'node:child_process';

/** Spawner signature; injectable so tests can observe the exact arguments without a process. */
export type ExecFn = (
  file: string,
  args: readonly string[],
  options: { env: NodeJS.ProcessEnv; timeout: number },
  callback: (error: Error | null) => void,
) => void;

/** Sends one datagram to `socketPath`: 0, or an errno (the native addon's `notifySocket`). */
export type DatagramFn = (socketPath: string, message: string) => number;

export interface NotifierOptions {
  /** Sends from this process (preferred: NotifyAccess=main); without it, the helper binary. */
  datagram?: DatagramFn | null;
  /** Runs the helper; defaults to node:child_process execFile. */
  exec?: ExecFn;
  /** Called with every failed notification (spawn error, non-zero exit, timeout). */
  onError?: (error: Error) => void;
  /** Helper binary; resolved through PATH. */
  binary?: string;
  /** PID reported as MAINPID=; defaults to process.pid. */
  pid?: number;
}

export interface Notifier {
  /** True when NOTIFY_SOCKET is set, i.e. calls actually send something. */
  readonly enabled: boolean;
  /** 'socket' when this process sends the datagrams itself, 'helper' when systemd-notify does. */
  readonly via: 'socket' | 'helper';
  /** READY=1 (plus STATUS= when given): the daemon accepts requests. */
  ready(status?: string): void;
  /** STOPPING=1: shutdown has begun. */
  stopping(): void;
  /** STATUS=<text>: free-form line shown by `systemctl status`. */
  status(text: string): void;
  /** WATCHDOG=1: one keep-alive ping. */
  watchdog(): void;
  /**
   * Pings WATCHDOG=1 every WATCHDOG_USEC/2 on an unref'd timer (it never keeps the process alive)
   * when systemd asked for a watchdog for this process; returns the function that stops it.
   */
  startWatchdog(): () => void;
}

/** systemd-notify waits at most 5 s for PID 1's barrier reply; anything longer is a hang. */
const EXEC_TIMEOUT_MS = 10_000;

const defaultExec: ExecFn = (file, args, options, callback) => {
  nodeExecFile(
    file,
    [...args],
    { env: options.env, timeout: options.timeout, killSignal: 'SIGKILL' },
    (error, _stdout, stderr) => {
      if (!error) {
        callback(null);
        return;
      }
      const detail = String(stderr).trim();
      callback(detail ? new Error(`${error.message}: ${detail}`, { cause: error }) : error);
    },
  );
};

/**
 * The watchdog interval in milliseconds, or null when systemd did not ask this process for one
 * (same rules as sd_watchdog_enabled(3): WATCHDOG_USEC positive, WATCHDOG_PID absent or ours).
 */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid = process.pid): number | null {
  const usecText = env.WATCHDOG_USEC;
  if (!usecText || !/^\d+$/.test(usecText)) return null;
  const usec = Number(usecText);
  if (!Number.isSafeInteger(usec) || usec <= 0) return null;
  const watchdogPid = env.WATCHDOG_PID;
  if (watchdogPid && watchdogPid !== String(pid)) return null;
  return Math.max(1, Math.floor(usec / 2 / 1000));
}

/**
 * The assignments are newline-separated (in the datagram, and systemd-notify joins its arguments
 * so), so a newline in a status text would start a second variable (e.g. "x\nREADY=1"); NUL
 * cannot be passed to execve at all.
 */
function oneLine(text: string): string {
  return text.replace(/[\r\n\0]+/g, ' ');
}

export function createNotifier(
  env: NodeJS.ProcessEnv = process.env,
  options: NotifierOptions = {},
): Notifier {
  const enabled = Boolean(env.NOTIFY_SOCKET);
  const exec = options.exec ?? defaultExec;
  const binary = options.binary ?? 'systemd-notify';
  const pid = options.pid ?? process.pid;
  const onError = options.onError;

  /** `what`: the notification as attempted (the helper's command line, or the datagram). */
  const report = (error: unknown, what: string): void => {
    if (!onError) return;
    const cause = error instanceof Error ? error : new Error(String(error));
    const wrapped = new Error(`${what} failed: ${cause.message}`, { cause });
    try {
      onError(wrapped);
    } catch {
      // The error callback itself failing must not escape into the daemon either.
    }
  };

  /** The helper's arguments for the protocol's assignments (its own spelling of two of them). */
  const helperArgs = (vars: readonly string[]): string[] => [
    `--pid=${pid}`,
    ...vars.map((v) =>
      v === 'READY=1' ? '--ready' : v.startsWith('STATUS=') ? `--status=${v.slice(7)}` : v,
    ),
  ];

  const socketPath = env.NOTIFY_SOCKET ?? '';
  const datagram = options.datagram ?? null;

  /** One notification: newline-separated assignments, in one datagram. */
  const send = (vars: readonly string[]): void => {
    if (!enabled) return;
    if (datagram !== null) {
      const what = `sd_notify ${vars.join(' ')} to ${socketPath}`;
      try {
        const errno = datagram(socketPath, vars.join('\n'));
        if (errno !== 0) report(new Error(`errno ${errno}`), what);
      } catch (error) {
        report(error, what);
      }
      return;
    }
    const full = helperArgs(vars);
    const what = `${binary} ${full.join(' ')}`;
    try {
      exec(binary, full, { env, timeout: EXEC_TIMEOUT_MS }, (error) => {
        if (error) report(error, what);
      });
    } catch (error) {
      report(error, what);
    }
  };

  return {
    enabled,
    via: datagram === null ? 'helper' : 'socket',
    ready(status?: string) {
      send(status === undefined ? ['READY=1'] : ['READY=1', `STATUS=${oneLine(status)}`]);
    },
    stopping() {
      send(['STOPPING=1']);
    },
    status(text: string) {
      send([`STATUS=${oneLine(text)}`]);
    },
    watchdog() {
      send(['WATCHDOG=1']);
    },
    startWatchdog() {
      const intervalMs = enabled ? watchdogIntervalMs(env, pid) : null;
      if (intervalMs === null) return () => {};
      const timer = setInterval(() => send(['WATCHDOG=1']), intervalMs);
      timer.unref();
      return () => clearInterval(timer);
    },
  };
}
