/**
 * Test support: starts the real qmkd as a child process on a random loopback port with a
 * temporary state directory, and makes real gRPC clients for it. No mocks: the real LMDB, the
 * real pool, the real servers.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { loadGrpcObject } from '../../src/api/proto.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const START_TIMEOUT_MS = 60_000;

export interface Daemon {
  stateDir: string;
  address: string;
  adminSocket: string;
  /** `http://127.0.0.1:<port>/metrics`, or 'off'. */
  metricsUrl: string;
  child: ChildProcess;
  output: () => string;
  /** SIGKILL, no cleanup (crash). */
  kill(): Promise<void>;
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** Resolves when the process ends, by itself or killed: its exit code, or the signal. */
  ended: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function tempStateDir(): string {
  return mkdtempSync(join(tmpdir(), 'qmkd-test-'));
}

export function removeStateDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** The daemon as a child on `stateDir`, on any free loopback port, its output piped. */
function spawnDaemon(stateDir: string, env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(
    process.execPath,
    [
      // Extra node flags for the daemon (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" when profiling).
      ...(env.QMK_DAEMON_NODE_ARGS ?? process.env.QMK_DAEMON_NODE_ARGS ?? '')
        .split(' ')
        .filter(Boolean),
      // QMK_DAEMON_DIST=1: the compiled daemon (`npm run build`), as production runs it.
      ...(process.env.QMK_DAEMON_DIST === '1'
        ? [join(ROOT, 'dist/src/main.js')]
        : ['--import', 'tsx', join(ROOT, 'src/main.ts')]),
      '--state-dir',
      stateDir,
      '--listen',
      // QMK_TEST_LISTEN: another listen address (e.g. 0.0.0.0:0 to be reached from 127.0.0.2).
      env.QMK_TEST_LISTEN ?? '127.0.0.1:0',
      // QMK_TEST_DEV_TENANT=1: let the daemon create its development tenant (first start).
      ...(env.QMK_TEST_DEV_TENANT === '1' ? [] : ['--no-dev-tenant']),
    ],
    {
      cwd: ROOT,
      // Metrics on a free port unless a test says otherwise: daemons of parallel tests coexist.
      env: { QMK_METRICS_LISTEN: '127.0.0.1:0', ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
}

export async function startDaemon(
  stateDir = tempStateDir(),
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<Daemon> {
  const child = spawnDaemon(stateDir, { QMK_THREADS: '2', ...extraEnv });
  let out = '';
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const exited = ended.then((e) => e.code);
  const address = await new Promise<{ address: string; admin: string; metrics: string }>(
    (resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`daemon did not start:\n${out}`)),
        START_TIMEOUT_MS,
      );
      const onData = (d: Buffer) => {
        out += d.toString();
        const line = logLines(out).find((l) => l.msg === 'listening');
        if (line) {
          clearTimeout(timer);
          resolve({
            address: String(line.address),
            admin: String(line.admin_socket),
            metrics: String(line.metrics),
          });
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', (d: Buffer) => {
        out += d.toString();
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`daemon exited with ${code} before listening:\n${out}`));
      });
    },
  );
  return {
    stateDir,
    address: address.address,
    adminSocket: address.admin,
    metricsUrl: address.metrics,
    child,
    output: () => out,
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
    ended,
  };
}

// biome-ignore lint/suspicious/noExplicitAny: generated client methods are untyped at run time
export type AnyClient = grpc.Client & Record<string, any>;
/** A decoded reply message: tests read whichever fields they assert on. */
// biome-ignore lint/suspicious/noExplicitAny: reply shapes are checked by the assertions
export type Wire = Record<string, any>;

/** The daemon's JSON log lines in `output` (other text, and a partial last line, skipped). */
export function logLines(output: string): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  for (const text of output.split('\n')) {
    if (!text.startsWith('{') || !text.endsWith('}')) continue;
    try {
      lines.push(JSON.parse(text) as Record<string, unknown>);
    } catch {
      // not a log line
    }
  }
  return lines;
}

export function adminClient(d: Pick<Daemon, 'adminSocket'>): AnyClient {
  const { AdminService } = loadGrpcObject();
  return new AdminService(`unix:${d.adminSocket}`, grpc.credentials.createInsecure()) as AnyClient;
}

/** The AuditService on the admin socket (the operator's view: every record). */
export function adminAuditClient(d: Pick<Daemon, 'adminSocket'>): AnyClient {
  const { AuditService } = loadGrpcObject();
  return new AuditService(`unix:${d.adminSocket}`, grpc.credentials.createInsecure()) as AnyClient;
}

export function kernelClient(d: Pick<Daemon, 'address'>, apiKey?: string): AnyClient {
  return serviceClient(d, 'KernelService', apiKey);
}

export function jobClient(d: Pick<Daemon, 'address'>, apiKey?: string): AnyClient {
  return serviceClient(d, 'JobService', apiKey);
}

export function channelClient(d: Pick<Daemon, 'address'>, apiKey?: string): AnyClient {
  return serviceClient(d, 'ChannelService', apiKey);
}

/** A client of one tenant service, sending `authorization: Bearer <apiKey>` when given. */
export function serviceClient(
  d: Pick<Daemon, 'address'>,
  service: 'KernelService' | 'JobService' | 'ChannelService' | 'AuditService' | 'AdminService',
  apiKey?: string,
  creds: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
): AnyClient {
  const Ctor = loadGrpcObject()[service];
  const client = new Ctor(d.address, creds, {
    interceptors: apiKey
      ? [
          (options: grpc.InterceptorOptions, next: grpc.NextCall) =>
            new grpc.InterceptingCall(next(options), {
              start(
                metadata: grpc.Metadata,
                listener: grpc.InterceptingListener,
                nxt: (m: grpc.Metadata, l: grpc.InterceptingListener) => void,
              ) {
                metadata.set('authorization', `Bearer ${apiKey}`);
                nxt(metadata, listener);
              },
            }),
        ]
      : [],
  });
  return client as AnyClient;
}

/** Promisified unary call: `await call(client, 'OpenSession', {...})`. */
export function call<T = Record<string, unknown>>(
  client: AnyClient,
  method: string,
  req: object,
  metadata?: grpc.Metadata,
): Promise<T> {
  const fn = client[method] as (...a: unknown[]) => unknown;
  return new Promise((resolve, reject) => {
    const cb = (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res));
    if (metadata) fn.call(client, req, metadata, cb);
    else fn.call(client, req, cb);
  });
}

/** Expects the call to fail; returns the error (so tests can assert code and message). */
export async function callError(
  client: AnyClient,
  method: string,
  req: object,
  metadata?: grpc.Metadata,
): Promise<grpc.ServiceError> {
  try {
    await call(client, method, req, metadata);
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error(`${method} succeeded; expected an error`);
}

/** A tenant with its API key and a kernel client authenticated as it. */
export async function newTenant(
  d: Daemon,
  name: string,
  tier = 'TIER_PRO',
  roles: string[] = [],
): Promise<{ tenantId: string; apiKey: string; client: AnyClient; keyId: string }> {
  const admin = adminClient(d);
  const res = await call<{
    tenant: { tenant_id: string };
    api_key: string;
    key: { key_id: string };
  }>(admin, 'CreateTenant', { name, tier, roles });
  admin.close();
  return {
    tenantId: res.tenant.tenant_id,
    apiKey: res.api_key,
    keyId: res.key.key_id,
    client: kernelClient(d, res.api_key),
  };
}

export const sleep = promisify(setTimeout);

/** Collects a WatchJob stream until it ends; rejects with the stream's error. */
export function watchJob(client: AnyClient, jobId: string): Promise<{ job: Wire }[]> {
  return new Promise((resolve, reject) => {
    const out: { job: Wire }[] = [];
    const stream = client.WatchJob({ job_id: jobId }) as grpc.ClientReadableStream<{ job: Wire }>;
    stream.on('data', (m) => out.push(m));
    stream.on('error', reject);
    stream.on('end', () => resolve(out));
  });
}

/** Submits a job and waits (by watching) until it is terminal; returns the final job and result. */
export async function runJob(
  client: AnyClient,
  req: Record<string, unknown>,
): Promise<{ job: Wire; result: Wire | null }> {
  const { job } = await call<{ job: { job_id: string } }>(client, 'SubmitJob', req);
  const events = await watchJob(client, job.job_id);
  const last = events[events.length - 1]!.job;
  const result =
    last.state === 'JOB_STATE_DONE'
      ? await call(client, 'GetJobResult', { job_id: job.job_id })
      : null;
  return { job: last, result: result as Wire | null };
}

/**
 * Runs the daemon on `stateDir` expecting it to refuse to start: resolves with its exit status,
 * the signal that ended it (null unless it crashed) and its output. Killed as soon as it reports
 * listening, or after `timeoutMs` (it then started, which the caller asserts against).
 */
export async function runDaemonToExit(
  stateDir: string,
  extraEnv: NodeJS.ProcessEnv = {},
  timeoutMs = START_TIMEOUT_MS,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  const child = spawnDaemon(stateDir, { QMK_THREADS: '1', ...extraEnv });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => {
    output += d.toString();
    // It started after all: no need to wait for the timeout (the caller asserts on the output).
    if (output.includes('"msg":"listening"')) child.kill('SIGKILL');
  });
  child.stderr!.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    return await new Promise((resolve) => {
      // 'close', not 'exit': the output is complete once the pipes close.
      child.on('close', (code, signal) => resolve({ code, signal, output }));
    });
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}
