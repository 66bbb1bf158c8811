/**
 * Metrics in the Prometheus text format (prom-client), on an HTTP listener of their own
 * (`--metrics-listen`, loopback by default), never on the gRPC ports. Layer: api.
 *
 * - gRPC, under go-grpc-prometheus's names and labels: `grpc_server_started_total`,
 *   `grpc_server_handled_total` (with `grpc_code`), `grpc_server_handling_seconds`,
 *   `grpc_server_msg_received_total`, `grpc_server_msg_sent_total`; refused calls included.
 * - the kernel, as `qmk_*`: refusals by kernel code, jobs by state and the queue depth, job queue
 *   wait and run time, pool threads busy, store commit latency and batch size, free disk, the
 *   audit sequence; per tenant, calls and refusals and finished jobs.
 * - the process (prom-client's default metrics: CPU, memory, heap, event-loop lag, handles).
 *
 * Label cardinality is bounded: methods and codes are fixed sets (a method with no entry in the
 * authorization table is never served, so never counted); a `tenant` label holds a tenant id for
 * the first `TENANT_LABELS_MAX` tenants seen since start and `_other` for the rest.
 */
import { type Server, createServer } from 'node:http';
import { status } from '@grpc/grpc-js';
import client from 'prom-client';
import type { CallEnd, CallInfo, CallObserver } from './interceptor.js';

/** Distinct tenant ids a `tenant` label takes; later tenants share `_other`. */
export const TENANT_LABELS_MAX = 100;
export const OTHER_TENANTS = '_other';

const LINT_REFUSED_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/** go-grpc-prometheus's default handling-time buckets, seconds. */
const GRPC_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const JOB_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 1800];
const COMMIT_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

/** One method's gRPC series (children of the labelled metrics). */
interface MethodSeries {
  labels: Record<string, string>;
  started: client.Counter.Internal;
  received: client.Counter.Internal;
  sent: client.Counter.Internal;
  handling: client.Histogram.Internal<string>;
  /** By gRPC status code. */
  handled: Map<number, client.Counter.Internal>;
}

/** What the metrics read when scraped. */
export interface MetricsSources {
  jobsByState(): Record<string, number>;
  poolThreads(): number;
  poolThreadsBusy(): number;
  poolPlansQueued(): number;
  freeBytes(): number;
  auditSeq(): number;
}

/** `/qmk.v1.KernelService/OpenSession` → service and method labels. */
function serviceAndMethod(path: string): { grpc_service: string; grpc_method: string } {
  const slash = path.lastIndexOf('/');
  return { grpc_service: path.slice(1, slash), grpc_method: path.slice(slash + 1) };
}

export class Metrics implements CallObserver {
  readonly registry = new client.Registry();
  private readonly tenants = new Set<string>();
  private readonly byMethod = new Map<string, MethodSeries>();
  private readonly startedTotal: client.Counter;
  private readonly handledTotal: client.Counter;
  private readonly handling: client.Histogram;
  private readonly receivedTotal: client.Counter;
  private readonly sentTotal: client.Counter;
  private readonly refusals: client.Counter;
  private readonly tenantCalls: client.Counter;
  private readonly jobsFinished: client.Counter;
  private readonly jobWait: client.Histogram;
  private readonly jobRun: client.Histogram;
  private readonly commitSeconds: client.Histogram;
  private readonly commitBatch: client.Histogram;
  private readonly anomalies: client.Counter;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    const labels = ['grpc_type', 'grpc_service', 'grpc_method'];
    this.startedTotal = new client.Counter({
      name: 'grpc_server_started_total',
      help: 'Total number of RPCs started on the server.',
      labelNames: labels,
      registers,
    });
    this.handledTotal = new client.Counter({
      name: 'grpc_server_handled_total',
      help: 'Total number of RPCs completed on the server, regardless of success or failure.',
      labelNames: [...labels, 'grpc_code'],
      registers,
    });
    this.handling = new client.Histogram({
      name: 'grpc_server_handling_seconds',
      help: 'Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.',
      labelNames: labels,
      buckets: GRPC_BUCKETS,
      registers,
    });
    this.receivedTotal = new client.Counter({
      name: 'grpc_server_msg_received_total',
      help: 'Total number of RPC stream messages received on the server.',
      labelNames: labels,
      registers,
    });
    this.sentTotal = new client.Counter({
      name: 'grpc_server_msg_sent_total',
      help: 'Total number of gRPC stream messages sent by the server.',
      labelNames: labels,
      registers,
    });
    this.refusals = new client.Counter({
      name: 'qmk_refusals_total',
      help: 'Calls answered with an error, by the kernel code (NOT_FOUND, QUOTA_EXCEEDED, ...).',
      labelNames: ['code'],
      registers,
    });
    this.anomalies = new client.Counter({
      name: 'qmk_anomalies_total',
      help: 'Anomalies recorded (refusals of one kind past a tenant threshold), by type, severity and response.',
      labelNames: ['type', 'severity', 'response'],
      registers,
    });
    this.tenantCalls = new client.Counter({
      name: 'qmk_tenant_calls_total',
      help: `Calls by tenant (the first ${TENANT_LABELS_MAX} tenants seen; the rest as ${OTHER_TENANTS}) and outcome (ok or refused).`,
      labelNames: ['tenant', 'outcome'],
      registers,
    });
    this.jobsFinished = new client.Counter({
      name: 'qmk_tenant_jobs_finished_total',
      help: 'Jobs that reached a final state, by tenant (bounded as for calls) and state.',
      labelNames: ['tenant', 'state'],
      registers,
    });
    this.jobWait = new client.Histogram({
      name: 'qmk_job_queue_wait_seconds',
      help: 'Time from submission to start of jobs that started.',
      buckets: JOB_BUCKETS,
      registers,
    });
    this.jobRun = new client.Histogram({
      name: 'qmk_job_run_seconds',
      help: 'Time from start to the final state of jobs that ran.',
      buckets: JOB_BUCKETS,
      registers,
    });
    this.commitSeconds = new client.Histogram({
      name: 'qmk_store_commit_seconds',
      help: 'Time to write and sync one store transaction (a batch of commits).',
      buckets: COMMIT_BUCKETS,
      registers,
    });
    this.commitBatch = new client.Histogram({
      name: 'qmk_store_commit_batch_size',
      help: 'Commits (calls and kernel acts) written in one store transaction.',
      buckets: BATCH_BUCKETS,
      registers,
    });
    new client.Gauge({
      name: 'qmk_jobs',
      help: 'Jobs held by the daemon, by state.',
      labelNames: ['state'],
      registers,
      collect() {
        for (const [state, n] of Object.entries(sources.jobsByState())) this.set({ state }, n);
      },
    });
    new client.Gauge({
      name: 'qmk_job_queue_depth',
      help: 'Jobs queued, waiting for a pool thread.',
      registers,
      collect() {
        this.set(sources.jobsByState().QUEUED ?? 0);
      },
    });
    new client.Gauge({
      name: 'qmk_pool_threads',
      help: 'Simulation pool threads work may hold at once.',
      registers,
      collect() {
        this.set(sources.poolThreads());
      },
    });
    new client.Gauge({
      name: 'qmk_pool_threads_busy',
      help: 'Simulation pool threads held by a plan or a job now.',
      registers,
      collect() {
        this.set(sources.poolThreadsBusy());
      },
    });
    new client.Gauge({
      name: 'qmk_pool_plans_queued',
      help: 'Interactive plans waiting for a simulation pool thread now.',
      registers,
      collect() {
        this.set(sources.poolPlansQueued());
      },
    });
    new client.Gauge({
      name: 'qmk_storage_free_bytes',
      help: 'Bytes free on the disk that holds the state directory.',
      registers,
      collect() {
        this.set(sources.freeBytes());
      },
    });
    new client.Gauge({
      name: 'qmk_audit_seq',
      help: 'Sequence number of the last durable audit record (the Merkle tree size).',
      registers,
      collect() {
        this.set(sources.auditSeq());
      },
    });
    client.collectDefaultMetrics({ register: this.registry });
    // Gauges whose `_total` suffix Prometheus's linter refuses; the same counts are in
    // nodejs_active_handles, nodejs_active_requests and nodejs_active_resources (by type).
    for (const name of LINT_REFUSED_DEFAULTS) this.registry.removeSingleMetric(name);
  }

  /**
   * The series of one method, made once: a call then increments children without hashing its
   * labels again (a flood of refused calls reaches these once per call).
   */
  private series(call: CallInfo): MethodSeries {
    let s = this.byMethod.get(call.path);
    if (s === undefined) {
      const labels = { grpc_type: call.type, ...serviceAndMethod(call.path) };
      s = {
        labels,
        started: this.startedTotal.labels(labels),
        received: this.receivedTotal.labels(labels),
        sent: this.sentTotal.labels(labels),
        handling: this.handling.labels(labels),
        handled: new Map(),
      };
      this.byMethod.set(call.path, s);
    }
    return s;
  }

  /** A tenant label within the bound. */
  private tenant(id: string): string {
    if (this.tenants.has(id)) return id;
    if (this.tenants.size >= TENANT_LABELS_MAX) return OTHER_TENANTS;
    this.tenants.add(id);
    return id;
  }

  started(call: CallInfo): void {
    this.series(call).started.inc();
  }

  received(call: CallInfo): void {
    this.series(call).received.inc();
  }

  sent(call: CallInfo): void {
    this.series(call).sent.inc();
  }

  ended(end: CallEnd): void {
    const s = this.series(end);
    let handled = s.handled.get(end.code);
    if (handled === undefined) {
      handled = this.handledTotal.labels({
        ...s.labels,
        grpc_code: status[end.code] ?? String(end.code),
      });
      s.handled.set(end.code, handled);
    }
    handled.inc();
    s.handling.observe(end.ms / 1000);
    if (end.code !== status.OK) this.refusals.inc({ code: end.kernelCode || status[end.code] });
    if (end.principal?.kind === 'tenant') {
      const outcome = end.code === status.OK ? 'ok' : 'refused';
      this.tenantCalls.inc({ tenant: this.tenant(end.principal.tenantId), outcome });
    }
  }

  /** A job reached a final state; `waitMs`/`runMs` are null when it never started. */
  jobFinished(tenantId: string, state: string, waitMs: number | null, runMs: number | null): void {
    this.jobsFinished.inc({ tenant: this.tenant(tenantId), state });
    if (waitMs !== null) this.jobWait.observe(waitMs / 1000);
    if (runMs !== null) this.jobRun.observe(runMs / 1000);
  }

  /** One store transaction: how long its write and sync took and how many commits it held. */
  anomaly(a: { type: string; severity: string; response: string }): void {
    this.anomalies.inc({ type: a.type, severity: a.severity, response: a.response });
  }

  storeBatch(seconds: number, commits: number): void {
    this.commitSeconds.observe(seconds);
    this.commitBatch.observe(commits);
  }
}

/**
 * Serves `GET /metrics` on `listen` (HOST:PORT; port 0 picks one); everything else is 404.
 * Resolves with the server and the address it bound.
 */
export function serveMetrics(
  metrics: Metrics,
  listen: string,
): Promise<{ server: Server; address: string }> {
  const colon = listen.lastIndexOf(':');
  const host = listen.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const port = Number(listen.slice(colon + 1));
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      (err: unknown) =>
        res
          .writeHead(500, { 'content-type': 'text/plain' })
          .end(`metrics failed: ${String(err)}\n`),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const a = server.address();
      const bound = typeof a === 'object' && a !== null ? a.port : port;
      resolve({ server, address: `${host.includes(':') ? `[${host}]` : host}:${bound}` });
    });
  });
}
