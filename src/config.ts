/**
 * Daemon configuration from flags and environment (flags win). Layer: composition (used only by
 * main.ts). Every setting has an embedded default so `npm start` needs nothing: state in
 * ./.qmk-state, API on 127.0.0.1:50051, admin socket in the state dir, a generated master key.
 */
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

export interface Config {
  stateDir: string;
  listen: string;
  adminSocket: string;
  /** null: generate/read `<stateDir>/master.key` (development default). */
  masterKeyFile: string | null;
  threads: number | undefined;
  devTenant: boolean;
  drainMs: number;
  checkpointEntries: number;
  /** Free bytes on the state disk below which state-growing tenant work is refused (0: off). */
  storageFreeMinBytes: number;
}

/** The default free-space watermark: room for checkpoints and the calls that free space. */
export const STORAGE_FREE_MIN_BYTES_DEFAULT = 64 * 1024 ** 2;

export const USAGE = `qmkd — multi-tenant quantum microkernel daemon

  --state-dir DIR        state directory            env QMK_STATE_DIR   (default $STATE_DIRECTORY or ./.qmk-state)
  --listen HOST:PORT     tenant gRPC API            env QMK_LISTEN      (default 127.0.0.1:50051; port 0 = any)
  --admin-socket PATH    operator unix socket       env QMK_ADMIN_SOCKET (default <state-dir>/admin.sock)
  --master-key-file F    32-byte master key file    env QMK_MASTER_KEY_FILE (default $CREDENTIALS_DIRECTORY/master-key,
                         else <state-dir>/master.key, generated with mode 0400 on first start)
  --threads N            simulation worker threads  env QMK_THREADS     (default: CPU count)
  --no-dev-tenant        do not create the "dev" tenant on first start   env QMK_DEV_TENANT=0
  --drain-ms N           bound on draining calls at shutdown              env QMK_DRAIN_MS (default 10000)
  --storage-free-min-bytes N  below this many free bytes on the state disk, new sessions, qubits,
                         gates, measurements, jobs and channel requests are refused (STORAGE_FULL)
                         env QMK_STORAGE_FREE_MIN_BYTES (default 67108864 = 64 MiB; 0 = off)
`;

export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): Config {
  const { values } = parseArgs({
    args: argv,
    options: {
      'state-dir': { type: 'string' },
      listen: { type: 'string' },
      'admin-socket': { type: 'string' },
      'master-key-file': { type: 'string' },
      threads: { type: 'string' },
      'no-dev-tenant': { type: 'boolean' },
      'drain-ms': { type: 'string' },
      'storage-free-min-bytes': { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const stateDir = resolve(
    values['state-dir'] ?? env.QMK_STATE_DIR ?? env.STATE_DIRECTORY ?? '.qmk-state',
  );
  const credDir = env.CREDENTIALS_DIRECTORY;
  const threads = values.threads ?? env.QMK_THREADS;
  return {
    stateDir,
    listen: values.listen ?? env.QMK_LISTEN ?? '127.0.0.1:50051',
    adminSocket: resolve(
      values['admin-socket'] ?? env.QMK_ADMIN_SOCKET ?? join(stateDir, 'admin.sock'),
    ),
    masterKeyFile:
      values['master-key-file'] ??
      env.QMK_MASTER_KEY_FILE ??
      (credDir ? join(credDir, 'master-key') : null),
    threads: threads === undefined ? undefined : positiveInt(threads, 'threads'),
    devTenant: !values['no-dev-tenant'] && env.QMK_DEV_TENANT !== '0',
    drainMs: positiveInt(values['drain-ms'] ?? env.QMK_DRAIN_MS ?? '10000', 'drain-ms'),
    checkpointEntries: positiveInt(env.QMK_CHECKPOINT_ENTRIES ?? '20000', 'QMK_CHECKPOINT_ENTRIES'),
    storageFreeMinBytes: nonNegativeInt(
      values['storage-free-min-bytes'] ??
        env.QMK_STORAGE_FREE_MIN_BYTES ??
        String(STORAGE_FREE_MIN_BYTES_DEFAULT),
      'storage-free-min-bytes',
    ),
  };
}

function nonNegativeInt(v: string, name: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isSafeInteger(n) || n < 0) {
    throw new Error(`${name}: expected a non-negative integer, got ${v}`);
  }
  return n;
}

function positiveInt(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`${name}: expected a positive integer, got ${v}`);
  return n;
}
