/**
 * Daemon configuration from flags and environment (flags win). Layer: composition (used only by
 * main.ts). Every setting has an embedded default so `npm start` needs nothing: state in
 * ./.qmk-state, API on 127.0.0.1:50051, admin socket in the state dir, a generated master key.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  ANOMALY_RESPONSES,
  ANOMALY_THROTTLE_SECONDS,
  ANOMALY_TYPES,
  type AnomalyResponse,
  type AnomalyType,
} from './kernel/anomalies.js';
import { PROGRAM_CHECK_SECONDS_MAX } from './kernel/limits.js';
import { LOG_LEVELS, type LogLevel } from './util/log.js';

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
  /** TLS on the tenant listener: certificate chain and key files (PEM); null: plaintext. */
  tls: { certFile: string; keyFile: string; clientCaFile: string | null } | null;
  /** Plaintext on an address that is not loopback (refused unless set). */
  allowInsecureListen: boolean;
  /** Seconds a large program's check (parse and verify, off the main thread) may take. */
  programCheckSecondsMax: number;
  logLevel: LogLevel;
  /** HOST:PORT of the Prometheus metrics listener; null: no metrics. */
  metricsListen: string | null;
  /** How anomalies are answered, per type (unnamed types keep their default). */
  anomalyResponses: Partial<Record<AnomalyType, AnomalyResponse>>;
  /** How long an anomaly's throttle lasts. */
  anomalyThrottleSeconds: number;
}

/** Where metrics are served unless told otherwise: loopback only. */
export const METRICS_LISTEN_DEFAULT = '127.0.0.1:9464';

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
  --drain-ms N           at SIGTERM, how long running jobs and calls may go on before the jobs stop
                         with their shot progress recorded               env QMK_DRAIN_MS (default 10000)
  --storage-free-min-bytes N  below this many free bytes on the state disk, new sessions, qubits,
                         gates, measurements, jobs and channel requests are refused (STORAGE_FULL)
                         env QMK_STORAGE_FREE_MIN_BYTES (default 67108864 = 64 MiB; 0 = off)
  --tls-cert F           TLS certificate chain (PEM) for the tenant API   env QMK_TLS_CERT
                         (default $CREDENTIALS_DIRECTORY/tls-cert when present)
  --tls-key F            its private key (PEM)      env QMK_TLS_KEY (default $CREDENTIALS_DIRECTORY/tls-key)
  --tls-client-ca F      CA bundle (PEM): clients must present a certificate it signed (mutual TLS)
                         env QMK_TLS_CLIENT_CA (default $CREDENTIALS_DIRECTORY/tls-client-ca when present)
  --allow-insecure-listen  serve plaintext on an address that is not loopback (refused otherwise)
                         env QMK_ALLOW_INSECURE_LISTEN=1
  --log-level L          fatal, error, warn, info, debug (a line per call), trace or silent
                         env QMK_LOG_LEVEL (default info)
  --metrics-listen HOST:PORT  Prometheus metrics at http://HOST:PORT/metrics, or off
                         env QMK_METRICS_LISTEN (default 127.0.0.1:9464; port 0 = any)
  --anomaly-responses T=R,...  how each anomaly type is answered: record, throttle or suspend
                         (types: firewall_probing, denial_probing, quota_pressure, rate_flooding;
                         auth_failures is always recorded)   env QMK_ANOMALY_RESPONSES
                         (default firewall_probing=suspend,denial_probing=throttle,
                         quota_pressure=record,rate_flooding=throttle)
  --anomaly-throttle-seconds N  how long a throttle lowers the tenant's rates (÷10)
                         env QMK_ANOMALY_THROTTLE_SECONDS (default 300)
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
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-client-ca': { type: 'string' },
      'allow-insecure-listen': { type: 'boolean' },
      'log-level': { type: 'string' },
      'metrics-listen': { type: 'string' },
      'anomaly-responses': { type: 'string' },
      'anomaly-throttle-seconds': { type: 'string' },
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
  const credential = (name: string) => {
    const p = credDir ? join(credDir, name) : null;
    return p !== null && existsSync(p) ? p : undefined;
  };
  const listen = values.listen ?? env.QMK_LISTEN ?? '127.0.0.1:50051';
  const tls = tlsConfig(
    values['tls-cert'] ?? env.QMK_TLS_CERT ?? credential('tls-cert'),
    values['tls-key'] ?? env.QMK_TLS_KEY ?? credential('tls-key'),
    values['tls-client-ca'] ?? env.QMK_TLS_CLIENT_CA ?? credential('tls-client-ca'),
  );
  const allowInsecureListen =
    values['allow-insecure-listen'] === true || env.QMK_ALLOW_INSECURE_LISTEN === '1';
  if (tls === null && !allowInsecureListen && !isLoopback(listen)) {
    throw new Error(
      `listen: ${listen} is not a loopback address and TLS is not configured (--tls-cert, --tls-key); API keys would cross the network in the clear. Configure TLS, or pass --allow-insecure-listen`,
    );
  }
  return {
    stateDir,
    listen,
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
    tls,
    allowInsecureListen,
    programCheckSecondsMax: positiveInt(
      env.QMK_PROGRAM_CHECK_SECONDS_MAX ?? String(PROGRAM_CHECK_SECONDS_MAX),
      'QMK_PROGRAM_CHECK_SECONDS_MAX',
    ),
    logLevel: logLevel(values['log-level'] ?? env.QMK_LOG_LEVEL ?? 'info'),
    metricsListen: metricsListen(
      values['metrics-listen'] ?? env.QMK_METRICS_LISTEN ?? METRICS_LISTEN_DEFAULT,
    ),
    anomalyResponses: anomalyResponses(
      values['anomaly-responses'] ?? env.QMK_ANOMALY_RESPONSES ?? '',
    ),
    anomalyThrottleSeconds: positiveInt(
      values['anomaly-throttle-seconds'] ??
        env.QMK_ANOMALY_THROTTLE_SECONDS ??
        String(ANOMALY_THROTTLE_SECONDS),
      'anomaly-throttle-seconds',
    ),
  };
}

/** `type=response,...` → the responses named; each type and response must be known. */
export function anomalyResponses(text: string): Partial<Record<AnomalyType, AnomalyResponse>> {
  const out: Partial<Record<AnomalyType, AnomalyResponse>> = {};
  for (const part of text.split(',').map((p) => p.trim())) {
    if (part === '') continue;
    const [type, response, extra] = part.split('=');
    const t = ANOMALY_TYPES.find((x) => x === type?.trim());
    const r = ANOMALY_RESPONSES.find((x) => x === response?.trim());
    if (t === undefined || r === undefined || extra !== undefined) {
      throw new Error(
        `anomaly-responses: "${part.slice(0, 64)}" is not TYPE=RESPONSE (types: ${ANOMALY_TYPES.join(', ')}; responses: ${ANOMALY_RESPONSES.join(', ')})`,
      );
    }
    if (t === 'auth_failures' && r !== 'record') {
      throw new Error(
        'anomaly-responses: auth_failures can only be recorded (failed authentications have no tenant to throttle or suspend; the failed-authentication throttle slows their address)',
      );
    }
    out[t] = r;
  }
  return out;
}

function tlsConfig(
  certFile: string | undefined,
  keyFile: string | undefined,
  clientCaFile: string | undefined,
): Config['tls'] {
  if (certFile === undefined && keyFile === undefined) {
    if (clientCaFile !== undefined)
      throw new Error('tls-client-ca: needs --tls-cert and --tls-key');
    return null;
  }
  if (certFile === undefined) throw new Error('tls-key: needs --tls-cert as well');
  if (keyFile === undefined) throw new Error('tls-cert: needs --tls-key as well');
  return {
    certFile: resolve(certFile),
    keyFile: resolve(keyFile),
    clientCaFile: clientCaFile === undefined ? null : resolve(clientCaFile),
  };
}

/** Whether HOST:PORT's host is a loopback address (127.0.0.0/8, ::1, localhost). */
export function isLoopback(listen: string): boolean {
  const host = listen.slice(0, listen.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
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

function logLevel(v: string): LogLevel {
  if ((LOG_LEVELS as readonly string[]).includes(v)) return v as LogLevel;
  throw new Error(
    `log-level: must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(v.slice(0, 64))}`,
  );
}

function metricsListen(v: string): string | null {
  if (v === 'off') return null;
  const port = Number(v.slice(v.lastIndexOf(':') + 1));
  if (!/^.+:\d+$/.test(v) || !(port >= 0 && port <= 65535)) {
    throw new Error(
      `metrics-listen: must be HOST:PORT or off, got ${JSON.stringify(v.slice(0, 64))}`,
    );
  }
  return v;
}
