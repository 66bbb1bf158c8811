/**
 * qmkd composition root: configuration, master key, store, keyring, pool, kernel, replay, servers,
 * signals and shutdown. The only file that wires implementations to the kernel's ports.
 *
 * Start: open the store (schema check, audit tail verified) -> load -> start and warm the pool ->
 * replay the op log bit-exactly -> checkpoint -> serve (health SERVING, systemd READY=1).
 * Stop (SIGTERM/SIGINT): health NOT_SERVING, STOPPING=1, stop accepting, drain in-flight calls
 * (bounded), checkpoint, flush and close the store, exit 0.
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import { join } from 'node:path';
import { AnomalyFeed } from './api/anomaly-feed.js';
import { CallLog } from './api/call-log.js';
import { CallTracker, routeUncaught } from './api/handler.js';
import { Metrics, serveMetrics } from './api/metrics.js';
import { type Servers, setHealth, shutdownServer, startServers } from './api/server.js';
import { ProgramCheckPool } from './check/pool.js';
import { loadConfig } from './config.js';
import { Admin } from './kernel/admin.js';
import { AuditLog } from './kernel/audit-log.js';
import type { JobRecord } from './kernel/job-model.js';
import { JobManager } from './kernel/jobs.js';
import { Kernel } from './kernel/kernel.js';
import { SESSION_SWEEP_INTERVAL_MS } from './kernel/limits.js';
import { DataKeys, DataKeysError } from './security/data-keys.js';
import { Keyring } from './security/keyring.js';
import { DEV_MASTER_KEY_FILE, masterKeyPath, readMasterKey } from './security/master-key.js';
import { NodeCrypto } from './security/node-crypto.js';
import { PoolSimulator } from './sim/front.js';
import { engineInfo, fusionWidth, notifySender, trimNativeHeap } from './sim/kernels.js';
import { HeadFile } from './store/head.js';
import { checkStateDir, readMarker, writeMarker } from './store/integrity.js';
import { lockStateDir } from './store/lock.js';
import { NEXT_MASTER_KEY_SUFFIX, StateOperations } from './store/operations.js';
import { tightenStateDir } from './store/permissions.js';
import { LOADED_DBS, LmdbStore, SCHEMA_VERSION } from './store/store.js';
import { onBug, reportBug } from './util/bugs.js';
import { collectWhenIdle } from './util/idle-collect.js';
import { configureLog, log } from './util/log.js';
import { createNotifier } from './util/sd-notify.js';

const VERSION = '0.1.0';
/** EX_TEMPFAIL: the unit's Restart=on-failure brings the daemon back. */
const EXIT_RESTART = 75;
/** Exit status after a programmer error (EX_SOFTWARE). */
const EXIT_BUG = 70;
/** How long a stop after a bug waits for the INTERNAL reply and the log line to leave. */
const BUG_EXIT_DELAY_MS = 100;
const RESTART_AFTER_FAILED_WRITE =
  'memory is ahead of the acknowledged state (a failed write, or a simulation worker that died mid-plan); restarting to reload the acknowledged state';
const CHECKPOINT_CHECK_INTERVAL_MS = 10_000;
/** How long a stopping daemon lets grpc-js deliver the last replies before cutting connections. */
const SHUTDOWN_FLUSH_MS = 2_000;

/** Where the development tenant's key is written when stdout is not a terminal. */
const DEV_KEY_FILE = 'dev-tenant.key';

/** systemd sets INVOCATION_ID for every unit it starts (and NOTIFY_SOCKET for Type=notify). */
function underSystemd(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.INVOCATION_ID || env.NOTIFY_SOCKET);
}

/**
 * The development tenant's key goes to a terminal only: when stdout is not one (a pipe, a log
 * collector), it is written to a 0600 file in the state directory and only the path is logged.
 */
function showDevKey(stateDir: string, apiKey: string): void {
  const use =
    'Use it as "authorization: Bearer <key>". Create more with: npx qmkctl tenant create NAME';
  if (process.stdout.isTTY) {
    process.stdout.write(
      `\nCreated development tenant "dev" (pro). Its API key, shown once:\n\n  ${apiKey}\n\n${use}\n\n`,
    );
    return;
  }
  const path = join(stateDir, DEV_KEY_FILE);
  writeFileSync(path, `${apiKey}\n`, { mode: 0o600 });
  log.info('created development tenant "dev"; its API key is in a file', { path });
}

/** Reads the operator's master key, or in the development default generates one (mode 0400). */
function masterKey(file: string | null, stateDir: string): Uint8Array {
  const path = masterKeyPath(file, stateDir);
  if (file === null && !existsSync(path)) {
    const key = new NodeCrypto().secret();
    writeFileSync(path, key.toString('base64'), { mode: 0o400 });
    chmodSync(path, 0o400);
    log.info('generated a development master key', { path });
  }
  return readMasterKey(path);
}

/**
 * Opens the data keys. With the development key, a rotation interrupted between rewrapping the
 * keys and replacing the key file left the new key in `master.key.next`: used, and put in place.
 */
function openDataKeys(
  stateDir: string,
  key: Uint8Array,
  create: boolean,
  devKey: boolean,
): DataKeys {
  const next = `${masterKeyPath(null, stateDir)}${NEXT_MASTER_KEY_SUFFIX}`;
  try {
    const keys = DataKeys.open(stateDir, key, create);
    if (devKey && existsSync(next)) rmSync(next); // the rotation never rewrapped: its key is unused
    return keys;
  } catch (err) {
    if (!(err instanceof DataKeysError) || !devKey || !existsSync(next)) throw err;
    const keys = DataKeys.open(stateDir, readMasterKey(next), create);
    renameSync(next, masterKeyPath(null, stateDir));
    log.info('finished an interrupted master key rotation', {
      path: masterKeyPath(null, stateDir),
    });
    return keys;
  }
}

async function main(): Promise<void> {
  const config = loadConfig(process.argv.slice(2), process.env);
  configureLog(config.logLevel);
  const calls = new CallLog();
  const notifier = createNotifier(process.env, {
    datagram: notifySender(),
    onError: (e) => log.warn('systemd notification failed', { error: e.message }),
  });
  if (notifier.enabled && notifier.via === 'helper') {
    log.warn(
      'native addon not built: systemd notifications go through systemd-notify, which needs NotifyAccess=all in the unit',
    );
  }
  mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  // Before anything in the directory is read: a second daemon must not even look at the state.
  lockStateDir(config.stateDir);
  for (const t of tightenStateDir(config.stateDir, [DEV_MASTER_KEY_FILE])) {
    log.warn('tightened the mode of a state file', { ...t });
  }
  const dbDir = join(config.stateDir, 'db');
  // A missing, empty, foreign or crashing data file is refused before anything maps it.
  checkStateDir(config.stateDir, dbDir);
  const key = masterKey(config.masterKeyFile, config.stateDir);
  const clock = { nowMs: () => Date.now() };
  const crypto = new NodeCrypto();

  // New data keys only for a new directory or one from before sealing (no marker yet); a marked
  // directory without its keys file is refused (its sealed records could not be opened).
  const marked = readMarker(config.stateDir) !== null;
  const keys = openDataKeys(config.stateDir, key, !marked, config.masterKeyFile === null);
  // Benchmarks measure what record protection costs by turning it off; nothing else should.
  const protect = process.env.QMK_RECORD_PROTECTION !== 'off';
  if (!protect)
    log.warn(
      'records are written without MACs or sealing (QMK_RECORD_PROTECTION=off): for benchmarks only',
    );
  // Likewise the audit log's Merkle tree (its cost; AuditService is then not served).
  const auditTree = process.env.QMK_AUDIT_TREE !== 'off';
  if (!auditTree)
    log.warn(
      'the audit Merkle tree is not kept and AuditService is not served (QMK_AUDIT_TREE=off): for benchmarks only; the next start adds the records to the tree',
    );
  // Its sources are read at scrape time, once everything below exists (metrics are served last).
  const metrics: Metrics | null =
    config.metricsListen === null
      ? null
      : new Metrics({
          jobsByState: (): Record<string, number> => {
            const { poolBusy: _, ...byState } = jobs.stats();
            return byState;
          },
          poolThreads: () => sim.admission.capacity,
          poolThreadsBusy: () => sim.admission.threadsBusy,
          poolPlansQueued: () => sim.admission.plansQueued,
          freeBytes: () => store.freeBytes(),
          auditSeq: () => store.auditHead().seq,
        });
  const store = LmdbStore.open(dbDir, {
    freeMinBytes: config.storageFreeMinBytes,
    keys,
    headFile: HeadFile.at(config.stateDir),
    protect,
    auditTree,
    ...(metrics === null ? {} : { onBatch: (s: number, n: number) => metrics.storeBatch(s, n) }),
  });
  if (!marked) writeMarker(config.stateDir, { storeId: store.storeId, createdAtMs: clock.nowMs() });
  // Every record opens (its MAC or seal checks) before anything is served: `load` opens what it
  // reads, the rest (audit, results, meta) is opened here.
  const loaded = store.load();
  const records = store.verifyRecords(LOADED_DBS);
  const keyring = new Keyring(keys.signingSealKey, loaded.signingKeys, key);
  if (keyring.resealed.length > 0) {
    await store.commit(keyring.resealed, [
      { actor: 'kernel', action: 'ResealSigningKeys', target: 'signing_keys', outcome: 'ok' },
    ]);
  }
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
  log.info('simulation engine', { ...engineInfo(), fusion: fusionWidth() });
  await sim.warm();
  const kernel = new Kernel({ store, signer: keyring, sim, clock, crypto }, loaded, {
    responses: config.anomalyResponses,
    throttleSeconds: config.anomalyThrottleSeconds,
  });
  kernel.anomalies.listeners.push((a) => {
    log.warn('anomaly', {
      type: a.type,
      severity: a.severity,
      tenant: a.tenantId ?? '',
      peer: a.peer,
      count: a.count,
      threshold: a.threshold,
      window_s: a.windowSeconds,
      response: a.response,
    });
    metrics?.anomaly(a);
  });
  // A failed write whose effect is already in memory (simulator state, job transitions) cannot be
  // taken back: the daemon restarts (non-zero exit; systemd's Restart=on-failure) and replay
  // rebuilds exactly the acknowledged state. Until the servers run, that is an immediate exit.
  const divergence: { restart: (err: Error) => void } = {
    restart: (err: Error) => {
      log.error(RESTART_AFTER_FAILED_WRITE, { error: err.message });
      process.exit(EXIT_RESTART);
    },
  };
  kernel.durability.onDiverged = (err) => divergence.restart(err);
  const replayed = await kernel.replay(loaded);
  kernel.checkConsistency();
  const checkpoint = () =>
    kernel.durability.quiesce(async () => {
      const clusters = (await sim.snapshot()).map((c) => ({
        ...c,
        owner: kernel.ownerOfCluster(c.cluster.qubits),
      }));
      return store.checkpoint(clusters, kernel.graph.nextClusterId);
    });
  if (replayed > 0) await checkpoint();
  kernel.checkpointNow = checkpoint;
  // A deletion that crashed between its commit and the shredding: finish the shredding now.
  for (const owner of keys.owners()) {
    if (kernel.principals.tenant(owner) === undefined) keys.shred(owner);
  }
  log.info('state loaded', {
    tenants: kernel.principals.tenantCount,
    sessions: kernel.table.sessionCount,
    qubits: kernel.table.qubitCount,
    clusters: kernel.graph.size,
    replayed_ops: replayed,
    other_records_verified: records,
    audit_seq: store.auditHead().seq,
    engine: sim.engine,
    threads: sim.threads,
  });

  const checker = new ProgramCheckPool({ secondsMax: config.programCheckSecondsMax });
  const jobs = new JobManager(
    kernel,
    sim,
    {
      clock,
      crypto,
      results: store,
      checker,
      ...(metrics === null ? {} : { onFinished: (rec: JobRecord) => jobFinished(metrics, rec) }),
    },
    sim.admission,
    loaded.jobs,
  );
  const recovered = await jobs.recover();
  if (recovered.requeued + recovered.queued > 0) log.info('jobs recovered', recovered);

  const admin = new Admin(kernel, { clock, crypto, signer: keyring, store });
  // An anomaly answered by suspension suspends as the operator's command does, acting as the kernel.
  kernel.anomalies.suspend = (tenantId, reason) => admin.suspend(tenantId, reason, 'kernel');
  if (config.devTenant && firstStart) {
    if (underSystemd(process.env)) {
      log.info('no development tenant under systemd: create tenants with qmkctl');
    } else {
      const dev = await admin.createTenant('dev', 'pro', 0, ['tenant_admin']);
      showDevKey(config.stateDir, dev.apiKey);
    }
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
  // Filled once the servers listen; status and stop read it.
  const bound: { servers?: Servers; metrics?: HttpServer | null } = {};
  // Set once a stop begins (status reports it; a second signal does not start a second stop).
  let stopping = false;
  const status = () => {
    const j = jobs.stats();
    const tree = auditTree ? store.auditLog.treeRoot() : null;
    return {
      version: VERSION,
      started_at_unix_ms: startedAt,
      engine: sim.engine,
      pool_threads: sim.threads,
      tenants: kernel.principals.tenantCount,
      sessions: kernel.table.sessionCount,
      qubits: kernel.table.qubitCount,
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
      pool_threads_busy: sim.admission.threadsBusy,
      pool_plans_queued: sim.admission.plansQueued,
      audit_tree_size: tree?.size ?? 0,
      audit_tree_root: tree?.root.toString('hex') ?? '',
      draining: stopping,
    };
  };
  const servers = await startServers(
    {
      kernel,
      jobs,
      admin,
      audit: auditTree ? new AuditLog(store.auditLog, keyring, clock) : null,
      tracker,
      status,
      stateOps: new StateOperations(config.stateDir, store, keys, config.masterKeyFile),
      observers: [calls, new AnomalyFeed(kernel.anomalies), ...(metrics === null ? [] : [metrics])],
      onRefuse: (path, err, peer) => {
        // Bounded per address by the failed-authentication throttle, so these cannot flood.
        if (err.code.startsWith('CREDENTIAL_')) {
          log.warn('failed authentication', { method: path, code: err.code, peer });
        }
      },
    },
    config.listen,
    config.adminSocket,
    config.tls === null
      ? null
      : {
          cert: readFileSync(config.tls.certFile),
          key: readFileSync(config.tls.keyFile),
          clientCa: config.tls.clientCaFile === null ? null : readFileSync(config.tls.clientCaFile),
        },
  );
  bound.servers = servers;
  setHealth(servers.health, 'SERVING');
  const stopWatchdog = notifier.startWatchdog();

  const background = (what: string, fn: () => Promise<unknown>) => () => {
    fn().catch((err) => log.error(`${what} failed`, { error: String(err) }));
  };
  const sweep = setInterval(
    background('sweep', async () => {
      await kernel.sessions.sweepExpired();
      await kernel.firewall.sweepRetired();
      kernel.anomalies.sweep();
    }),
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
  const stopIdleCollection = collectWhenIdle(trimNativeHeap);

  const stop = async (signal: string, exitCode = 0) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    const s = servers;
    setHealth(s.health, 'NOT_SERVING');
    notifier.stopping();
    clearInterval(sweep);
    clearInterval(checkpoints);
    stopIdleCollection();
    calls.stop();
    bound.metrics?.close();
    bound.metrics?.closeAllConnections();
    stopWatchdog();
    // No new calls (connections are told to go away); calls in flight go on, and so do the watch
    // streams, so a client watching a job that finishes during the drain sees it end.
    const shutdown = Promise.all([shutdownServer(s.tenant), shutdownServer(s.admin)]);
    // Nothing more starts; running jobs get the drain time to finish, then stop with their shot
    // progress recorded and go on from there after the restart (same seed, same counts).
    const drainStart = performance.now();
    const [interrupted, drained] = await Promise.all([
      jobs.drain(config.drainMs),
      tracker.drained(config.drainMs),
    ]);
    log.info('drained', {
      ms: Math.round(performance.now() - drainStart),
      jobs_interrupted: interrupted,
    });
    // Watch streams end with UNAVAILABLE so clients reconnect after the restart.
    tracker.endStreams();
    tracker.draining = true;
    if (!drained) log.warn('drain timed out', { in_flight: tracker.inFlight });
    // Replies already handed to grpc-js still have to reach their clients: the graceful shutdown
    // sends them and closes the connections; only what is still open after a bound is cut.
    const closed = await Promise.race([
      shutdown.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), SHUTDOWN_FLUSH_MS).unref()),
    ]);
    if (!closed) {
      s.tenant.forceShutdown();
      s.admin.forceShutdown();
      await shutdown;
    }
    // After a failed write memory is ahead of the store: only the durable state may survive.
    if (!kernel.durability.diverged) await checkpoint();
    await checker.close();
    await sim.close();
    await store.close();
    log.info('stopped');
    process.exit(exitCode);
  };
  divergence.restart = (err) => {
    log.error(RESTART_AFTER_FAILED_WRITE, { error: err.message });
    // After the current turn: the call whose write failed gets its error before the drain.
    setImmediate(() => void stop('storage', EXIT_RESTART));
  };
  shutdownSignals.stop = (signal) => void stop(signal);
  // Announced last, with the signal handlers in place: whoever waits for this line may stop us.
  const metricsServer =
    metrics === null || config.metricsListen === null
      ? null
      : await serveMetrics(metrics, config.metricsListen);
  bound.metrics = metricsServer?.server ?? null;
  log.info('listening', {
    address: servers.tenantAddress,
    admin_socket: servers.adminSocket,
    metrics: metricsServer === null ? 'off' : `http://${metricsServer.address}/metrics`,
    state_dir: config.stateDir,
    tls: config.tls === null ? 'off' : config.tls.clientCaFile === null ? 'tls' : 'mutual',
  });
  notifier.ready(`serving on ${servers.tenantAddress}`);
  if (shutdownSignals.requested !== null) void stop(shutdownSignals.requested);
}

/**
 * SIGTERM and SIGINT are caught from the first line: one that arrives while the daemon starts is
 * remembered and honoured once it serves (everything written so far is durable, so a stop then
 * is clean); without this the default action would kill the process mid-start.
 */
const shutdownSignals: { requested: string | null; stop: ((signal: string) => void) | null } = {
  requested: null,
  stop: null,
};
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (shutdownSignals.stop) shutdownSignals.stop(signal);
    else shutdownSignals.requested ??= signal;
  });
}

// A programmer error (a non-KernelError out of a handler, an assertion, any exception nothing
// caught) is a bug, not a reply: the call that hit it is answered INTERNAL where there is one,
// the stack goes to the log, and the daemon stops at once with EXIT_BUG, since shared state may
// be wrong. systemd restarts it (Restart=on-failure) and replay restores the acknowledged state.
// The short delay lets the INTERNAL reply and the log line leave the process.
let stopping = false;
onBug((err: unknown) => {
  log.error('programmer error: stopping', {
    error: err instanceof Error ? (err.stack ?? err.message) : String(err),
  });
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(EXIT_BUG), BUG_EXIT_DELAY_MS);
});
const onUncaught = (err: unknown) => {
  routeUncaught(err);
  reportBug(err);
};
process.on('uncaughtException', onUncaught);
process.on('unhandledRejection', onUncaught);

main().catch((err: unknown) => {
  log.error('failed to start', { error: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});

/** A finished job in the metrics: queue wait and run time when it started. */
function jobFinished(metrics: Metrics, rec: JobRecord): void {
  const started = rec.startedAtMs > 0;
  metrics.jobFinished(
    rec.tenantId,
    rec.state,
    started ? Math.max(0, rec.startedAtMs - rec.submittedAtMs) : null,
    started ? Math.max(0, rec.finishedAtMs - rec.startedAtMs) : null,
  );
}
