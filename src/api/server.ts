/**
 * Builds the two gRPC servers: the tenant API (TCP, loopback by default) and the operator admin
 * API (a unix socket, mode 0600). Layer: api. Both get the same interceptor (with a different
 * audience), standard health and reflection. Limits are explicit: 4 MiB messages, 100 concurrent
 * streams per connection, keepalive, and an idle timeout for connections.
 */
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import type { Admin } from '../kernel/admin.js';
import type { AuditLog } from '../kernel/audit-log.js';
import type { KernelError } from '../kernel/errors.js';
import type { JobManager } from '../kernel/jobs.js';
import type { Kernel } from '../kernel/kernel.js';
import type { StateOperationsPort } from '../kernel/ports.js';
import { adminServiceHandlers } from './admin-service.js';
import { auditServiceHandlers } from './audit-service.js';
import { AUTHZ_TABLE } from './authz.js';
import { channelServiceHandlers } from './channel-service.js';
import type { GetStatusResponse } from './generated/qmk/v1/GetStatusResponse.js';
import type { CallTracker } from './handler.js';
import { type CallObserver, authInterceptor } from './interceptor.js';
import { jobServiceHandlers } from './job-service.js';
import { kernelServiceHandlers } from './kernel-service.js';
import { type QmkGrpc, loadGrpcObject, loadPackageDefinition, loadProtobufRoot } from './proto.js';
import { RequestLimits, deferDecoding } from './request-limits.js';

export const MESSAGE_BYTES_MAX = 4 * 1024 * 1024;
export const STREAMS_PER_CONNECTION_MAX = 100;
export const KEEPALIVE_TIME_MS = 60_000;
export const KEEPALIVE_TIMEOUT_MS = 20_000;
/** A connection with no call for this long is closed (idle-stream timeout). */
export const CONNECTION_IDLE_MS = 5 * 60_000;

/** The operator's requests are bounded by the compiled-in limits only. */
const OPERATOR_LIMITS = new RequestLimits(null);

const SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.max_receive_message_length': MESSAGE_BYTES_MAX,
  'grpc.max_send_message_length': MESSAGE_BYTES_MAX,
  'grpc.max_concurrent_streams': STREAMS_PER_CONNECTION_MAX,
  'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
  'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_ping_interval_without_data_ms': 10_000,
  'grpc.max_connection_idle_ms': CONNECTION_IDLE_MS,
};

/** What health reports on: the whole server ('') and each tenant-facing service. */
const HEALTH_SERVICES = [
  '',
  'qmk.v1.KernelService',
  'qmk.v1.JobService',
  'qmk.v1.ChannelService',
  'qmk.v1.AuditService',
];

/** Every health status at once: SERVING once the daemon serves, NOT_SERVING when it stops. */
export function setHealth(health: HealthImplementation, status: 'SERVING' | 'NOT_SERVING'): void {
  for (const name of HEALTH_SERVICES) health.setStatus(name, status);
}

export interface Servers {
  tenant: grpc.Server;
  admin: grpc.Server;
  health: HealthImplementation;
  tenantAddress: string;
  adminSocket: string;
}

export interface ServerDeps {
  kernel: Kernel;
  jobs: JobManager;
  admin: Admin;
  /** null: AuditService is not served (UNIMPLEMENTED; benchmarks only). */
  audit: AuditLog | null;
  tracker: CallTracker;
  status(): GetStatusResponse;
  stateOps: StateOperationsPort;
  onRefuse(path: string, err: KernelError, peer: string): void;
  observers: readonly CallObserver[];
}

/** TLS material for the tenant listener (PEM). */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  /** Present: clients must show a certificate this CA bundle signed (mutual TLS). */
  clientCa: Buffer | null;
}

function bind(
  server: grpc.Server,
  address: string,
  creds = grpc.ServerCredentials.createInsecure(),
): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, creds, (err, port) => (err ? reject(err) : resolve(port)));
  });
}

/** The tenant listener's credentials: TLS (mutual when a client CA is given), else plaintext. */
function tenantCredentials(tls: TlsMaterial | null): grpc.ServerCredentials {
  if (tls === null) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(
    tls.clientCa,
    [{ cert_chain: tls.cert, private_key: tls.key }],
    tls.clientCa !== null,
  );
}

export async function startServers(
  deps: ServerDeps,
  listen: string,
  adminSocket: string,
  tls: TlsMaterial | null = null,
): Promise<Servers> {
  const pkg = loadPackageDefinition();
  const qmk = loadGrpcObject();
  const health = new HealthImplementation(
    Object.fromEntries(HEALTH_SERVICES.map((name) => [name, 'NOT_SERVING'])),
  );
  const reflection = new ReflectionService(pkg);
  const root = loadProtobufRoot();
  const deferred = (name: keyof QmkGrpc) =>
    deferDecoding(root.lookupService(`qmk.v1.${name}`), qmk[name].service);

  const tenant = new grpc.Server({
    ...SERVER_OPTIONS,
    interceptors: [
      authInterceptor({
        table: AUTHZ_TABLE,
        audience: 'tenant',
        authenticate: (key, peer) => {
          const p = deps.kernel.principals.authenticateFrom(peer, key);
          deps.kernel.principals.admitCall(p);
          return p;
        },
        enter: (p) => deps.kernel.principals.enterCall(p),
        limits: (p) => {
          const principals = deps.kernel.principals;
          const quota = p?.kind === 'tenant' ? principals.quotaOf(principals.tenantOf(p)) : null;
          return new RequestLimits(quota);
        },
        onRefuse: deps.onRefuse,
        observers: deps.observers,
      }),
    ],
  });
  tenant.addService(deferred('KernelService'), kernelServiceHandlers(deps.kernel, deps.tracker));
  tenant.addService(deferred('JobService'), jobServiceHandlers(deps.jobs, deps.tracker));
  tenant.addService(deferred('ChannelService'), channelServiceHandlers(deps.kernel, deps.tracker));
  const audit = deps.audit && auditServiceHandlers(deps.audit, deps.tracker);
  if (audit) tenant.addService(deferred('AuditService'), audit);
  health.addToServer(tenant);
  reflection.addToServer(tenant);

  const admin = new grpc.Server({
    ...SERVER_OPTIONS,
    interceptors: [
      authInterceptor({
        table: AUTHZ_TABLE,
        audience: 'operator',
        authenticate: () => ({ kind: 'operator' }),
        limits: () => OPERATOR_LIMITS,
        onRefuse: deps.onRefuse,
        observers: deps.observers,
      }),
    ],
  });
  admin.addService(
    deferred('AdminService'),
    adminServiceHandlers(deps.admin, deps.tracker, deps.status, deps.stateOps),
  );
  if (audit) admin.addService(deferred('AuditService'), audit);
  health.addToServer(admin);
  reflection.addToServer(admin);

  const port = await bind(tenant, listen, tenantCredentials(tls));
  const host = listen.slice(0, listen.lastIndexOf(':'));
  if (existsSync(adminSocket)) unlinkSync(adminSocket); // a stale socket from a killed daemon
  // The socket is the operator's credential: only the daemon's user may connect. The umask makes
  // it 0600 from the moment it exists; the chmod states the intent.
  const umask = process.umask(0o177);
  try {
    await bind(admin, `unix:${adminSocket}`);
  } finally {
    process.umask(umask);
  }
  chmodSync(adminSocket, 0o600);
  return { tenant, admin, health, tenantAddress: `${host}:${port}`, adminSocket };
}

export function shutdownServer(server: grpc.Server): Promise<void> {
  return new Promise((resolve) => server.tryShutdown(() => resolve()));
}
