/**
 * qmkd composition root: configuration, master key, store, keyring, pool, kernel, replay, servers,
 * signals and shutdown. The only file that wires implementations to the kernel's ports.
 *
 * Start: open the store (schema check, audit tail verified) -> load -> start and warm the pool ->
 * replay the op log bit-exactly -> checkpoint -> serve (health SERVING, systemd READY=1).
 * Stop (SIGTERM/SIGINT): health NOT_SERVING, STOPPING=1, stop accepting, drain in-flight calls
 * (bounded), checkpoint, flush and close the store, exit 0.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setErrorLogger } from './api/errors.js';
import { CallTracker, routeUncaught } from './api/handler.js';
import { type Servers, shutdownServer, startServers } from './api/server.js';
import { loadConfig } from './config.js';
import { Admin } from './kernel/admin.js';
import { JobManager } from './kernel/jobs.js';
import { Kernel } from './kernel/kernel.js';
import { SESSION_SWEEP_INTERVAL_MS } from './kernel/limits.js';
import { Keyring, MASTER_KEY_BYTES } from './security/keyring.js';
import { NodeCrypto } from './security/node-crypto.js';
import { PoolSimulator } from './sim/front.js';
import { engineInfo, fusionWidth } from './sim/kernels.js';
import { checkStateDir, readMarker, writeMarker } from './store/integrity.js';
import { lockStateDir } from './store/lock.js';
import { LmdbStore, SCHEMA_VERSION } from './store/store.js';
import { createNotifier } from './util/sd-notify.js';

const VERSION = '0.1.0';
/** Refusals at the door are summed and logged once per window, not once each: a flood of them must stay cheap. */
const REFUSAL_LOG_WINDOW_MS = 10_000;

/** Counts refused calls by method and code; the first of each kind in a window is logged at once. */
class RefusalLog {
  private counts = new Map<string, number>();

  constructor() {
    setInterval(() => this.flush(), REFUSAL_LOG_WINDOW_MS).unref();
  }

  count(method: string, code: string): void {
    const key = `${method} ${code}`;
    const n = this.counts.get(key) ?? 0;
    if (n === 0) log('info', 'refused', { method, code });
    this.counts.set(key, n + 1);
  }

  private flush(): void {
    if (this.counts.size === 0) return;
    const refused = Object.fromEntries(this.counts);
    this.counts = new Map();
    log('info', 'refusals', { window_ms: REFUSAL_LOG_WINDOW_MS, refused });
  }
}

const refusals = new RefusalLog();
/** EX_TEMPFAIL: the unit's Restart=on-failure brings the daemon back. */
const EXIT_RESTART = 75;
const RESTART_AFTER_FAILED_WRITE =
  'a write failed after its effect was applied in memory; restarting to reload the acknowledged state';
const CHECKPOINT_CHECK_INTERVAL_MS = 10_000;

/**
 * Log streams whose reader went away (EPIPE: journald restarted, the parent died). Writing on
 * would only raise the error again; without this handler each failed write became an uncaught
 * exception whose own log line failed the same way, a loop that spun the main thread and starved
 * shutdown. The daemon keeps serving without those logs.
 */
const brokenLogStreams = new Set<NodeJS.WriteStream>();
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', () => brokenLogStreams.add(stream));
}

function log(level: 'info' | 'warn' | 'error', msg: string, fields: object = {}): void {
  const stream = level === 'info' ? process.stdout : process.stderr;
  if (brokenLogStreams.has(stream)) return;
  const line = JSON.stringify({ ts: new Date().toISOString(), level, msg, ...fields });
  stream.write(`${line}\n`);
}

/** Reads the operator's master key, or in the development default generates one (mode 0400). */
function masterKey(file: string | null, stateDir: string): Uint8Array {
  const path = file ?? join(stateDir, 'master.key');
  if (!existsSync(path)) {
    if (file !== null) throw new Error(`master key file ${path} does not exist`);
    const key = new NodeCrypto().secret();
    writeFileSync(path, key.toString('base64'), { mode: 0o400 });
    chmodSync(path, 0o400);
    log('info', 'generated a development master key', { path });
  }
  const text = readFileSync(path, 'utf8').trim();
  const raw = /^[A-Za-z0-9+/=]+$/.test(text)
    ? Buffer.from(text, 'base64')
    : Buffer.from(text, 'hex');
  if (raw.length !== MASTER_KEY_BYTES) {
    throw new Error(`master key file ${path} must hold ${MASTER_KEY_BYTES} bytes (base64 or hex)`);
  }
  return raw;
}

async function main(): Promise<void> {
  const config = loadConfig(process.argv.slice(2), process.env);
  const notifier = createNotifier(process.env, {
    onError: (e) => log('warn', 'systemd notification failed', { error: e.message }),
  });
  setErrorLogger(log);
  mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  // Before anything in the directory is read: a second daemon must not even look at the state.
  lockStateDir(config.stateDir);
  const dbDir = join(config.stateDir, 'db');
  // A missing, empty, foreign or crashing data file is refused before anything maps it.
  checkStateDir(config.stateDir, dbDir);
  const key = masterKey(config.masterKeyFile, config.stateDir);
  const clock = { nowMs: () => Date.now() };
  const crypto = new NodeCrypto();

  const store = LmdbStore.open(dbDir, { freeMinBytes: config.storageFreeMinBytes });
  if (readMarker(config.stateDir) === null) {
    writeMarker(config.stateDir, { storeId: store.storeId, createdAtMs: clock.nowMs() });
  }
  const loaded = store.load();
  const keyring = new Keyring(key, loaded.signingKeys);
  // A store without signing keys is a new state directory: the first start.
  const firstStart = keyring.empty;
  if (firstStart) {
    const records = keyring.bootstrap(clock.nowMs());
    await store.commit(records, [
      { actor: 'kernel', action: 'CreateSigningKey', target: '1', outcome: 'ok' },
    ]);
  }
  const sim = new PoolSimulator(config.threads === undefined ? {} : { threads: config.threads });
  // Every pool worker selects the same way (same environment, same addon file).
  log('info', 'simulation engine', { ...engineInfo(), fusion: fusionWidth() });
  await sim.warm();
  const kernel = new Kernel({ store, signer: keyring, sim, clock, crypto }, loaded);
  // A failed write whose effect is already in memory (simulator state, job transitions) cannot be
  // taken back: the daemon restarts (non-zero exit; systemd's Restart=on-failure) and replay
  // rebuilds exactly the acknowledged state. Until the servers run, that is an immediate exit.
  const divergence: { restart: (err: Error) => void } = {
    restart: (err: Error) => {
      log('error', RESTART_AFTER_FAILED_WRITE, { error: err.message });
      process.exit(EXIT_RESTART);
    },
  };
  kernel.onDiverged = (err) => divergence.restart(err);
  const replayed = await kernel.replay(loaded);
  kernel.checkConsistency();
  const checkpoint = () =>
    kernel.quiesce(async () => store.checkpoint(await sim.snapshot(), kernel.graph.nextClusterId));
  if (replayed > 0) await checkpoint();
  log('info', 'state loaded', {
    tenants: kernel.tenants.size,
    sessions: kernel.sessions.size,
    qubits: kernel.qubits.size,
    clusters: kernel.graph.size,
    replayed_ops: replayed,
    audit_seq: store.auditHead().seq,
    engine: sim.engine,
    threads: sim.threads,
  });

  const jobs = new JobManager(kernel, sim, loaded.jobs);
  const recovered = await jobs.recover();
  if (recovered.requeued + recovered.queued > 0) log('info', 'jobs recovered', recovered);

  const admin = new Admin(kernel);
  if (config.devTenant && firstStart) {
    const dev = await admin.createTenant('dev', 'pro', 0, ['tenant_admin']);
    process.stdout.write(
      `\nCreated development tenant "dev" (pro). Its API key, shown once:\n\n  ${dev.apiKey}\n\n` +
        'Use it as "authorization: Bearer <key>". Create more with: npx qmkctl tenant create NAME\n\n',
    );
  }

  const freeBytes = () => {
    try {
      return store.freeBytes();
    } catch {
      return 0;
    }
  };
  const tracker = new CallTracker();
  const startedAt = Date.now();
  const bound: { servers?: Servers } = {}; // filled once the servers listen; status reads it
  const status = () => {
    const j = jobs.stats();
    return {
      version: VERSION,
      started_at_unix_ms: startedAt,
      engine: sim.engine,
      pool_threads: sim.threads,
      tenants: kernel.tenants.size,
      sessions: kernel.sessions.size,
      qubits: kernel.qubits.size,
      clusters: kernel.graph.size,
      audit_seq: store.auditHead().seq,
      audit_head: store.auditHead().hash,
      signing_key_id: keyring.activeKeyId(),
      schema_version: SCHEMA_VERSION,
      state_dir: config.stateDir,
      tenant_address: bound.servers?.tenantAddress ?? '',
      jobs_queued: j.QUEUED,
      jobs_running: j.RUNNING + j.CANCELLING,
      storage_free_bytes: freeBytes(),
      storage_free_min_bytes: config.storageFreeMinBytes,
    };
  };
  const servers = await startServers(
    {
      kernel,
      jobs,
      admin,
      tracker,
      status,
      onRefuse: (path, err) => refusals.count(path, err.code),
    },
    config.listen,
    config.adminSocket,
  );
  bound.servers = servers;
  servers.health.setStatus('', 'SERVING');
  servers.health.setStatus('qmk.v1.KernelService', 'SERVING');
  servers.health.setStatus('qmk.v1.JobService', 'SERVING');
  servers.health.setStatus('qmk.v1.ChannelService', 'SERVING');
  log('info', 'listening', {
    address: servers.tenantAddress,
    admin_socket: servers.adminSocket,
    state_dir: config.stateDir,
  });
  notifier.ready(`serving on ${servers.tenantAddress}`);
  const stopWatchdog = notifier.startWatchdog();

  const background = (what: string, fn: () => Promise<unknown>) => () => {
    fn().catch((err) => log('error', `${what} failed`, { error: String(err) }));
  };
  const sweep = setInterval(
    background('session sweep', () => kernel.sweepExpiredSessions()),
    SESSION_SWEEP_INTERVAL_MS,
  );
  const checkpoints = setInterval(
    background('checkpoint', async () => {
      if (store.oplogEntriesSinceCheckpoint >= config.checkpointEntries) await checkpoint();
    }),
    CHECKPOINT_CHECK_INTERVAL_MS,
  );
  sweep.unref();
  checkpoints.unref();

  let stopping = false;
  const stop = async (signal: string, exitCode = 0) => {
    if (stopping) return;
    stopping = true;
    log('info', 'stopping', { signal });
    const s = servers;
    s.health.setStatus('', 'NOT_SERVING');
    s.health.setStatus('qmk.v1.KernelService', 'NOT_SERVING');
    s.health.setStatus('qmk.v1.JobService', 'NOT_SERVING');
    s.health.setStatus('qmk.v1.ChannelService', 'NOT_SERVING');
    notifier.stopping();
    clearInterval(sweep);
    clearInterval(checkpoints);
    stopWatchdog();
    const shutdown = Promise.all([shutdownServer(s.tenant), shutdownServer(s.admin)]);
    // Running jobs stop at their next gate boundary and re-run after the restart (same seed);
    // watch streams end with UNAVAILABLE so clients reconnect.
    jobs.stop();
    tracker.endStreams();
    const drained = await tracker.drained(config.drainMs);
    tracker.draining = true;
    if (!drained) log('warn', 'drain timed out', { in_flight: tracker.inFlight });
    s.tenant.forceShutdown();
    s.admin.forceShutdown();
    await shutdown;
    // After a failed write memory is ahead of the store: only the durable state may survive.
    if (!kernel.diverged) await checkpoint();
    await sim.close();
    await store.close();
    log('info', 'stopped');
    process.exit(exitCode);
  };
  divergence.restart = (err) => {
    log('error', RESTART_AFTER_FAILED_WRITE, { error: err.message });
    void stop('storage', EXIT_RESTART);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

// A stray exception (a throw in a timer or callback a handler started) must not take tenants down:
// inside a call it becomes that call's INTERNAL error, elsewhere it is logged, and the daemon keeps
// serving. An assertion is a programmer error that may have left shared state wrong, so it ends
// the process (systemd restarts it; replay restores the acknowledged state).
const onUncaught = (err: unknown) => {
  const route = routeUncaught(err);
  log('error', 'uncaught exception', {
    route,
    error: err instanceof Error ? (err.stack ?? err.message) : String(err),
  });
  if (route === 'fatal') process.exit(70);
};
process.on('uncaughtException', onUncaught);
process.on('unhandledRejection', onUncaught);

main().catch((err: unknown) => {
  log('error', 'failed to start', { error: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
