/**
 * qmkctl's connection to the daemon: where the admin socket is, and lazily connected
 * `AdminService` and `AuditService` clients (one connection) whose `call` is typed by method
 * from the generated protos. Layer: cli.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { MethodDefinition } from '@grpc/proto-loader';
import type { AdminServiceDefinition } from '../api/generated/qmk/v1/AdminService.js';
import type { AuditServiceDefinition } from '../api/generated/qmk/v1/AuditService.js';
import { loadGrpcObject } from '../api/proto.js';

/** Every RPC gets this long; an admin call that takes longer means a wedged daemon. */
export const CALL_DEADLINE_MS = 10_000;

// proto-loader decodes with defaults, enums as names and 64-bit ints as numbers (src/api/proto.ts),
// which is what the generated `__Output` types say; unset message fields decode as null.

/** The admin socket's methods (no name is in both services), typed as generated from the protos. */
type SocketServices = AdminServiceDefinition & AuditServiceDefinition;
export type AdminMethod = keyof SocketServices & string;
export type RequestOf<M extends AdminMethod> = SocketServices[M] extends MethodDefinition<
  infer Q,
  infer _R,
  infer _QO,
  infer _RO
>
  ? Q
  : never;
export type ReplyOf<M extends AdminMethod> = SocketServices[M] extends MethodDefinition<
  infer _Q,
  infer _R,
  infer _QO,
  infer RO
>
  ? RO
  : never;

/** --socket, else $QMK_ADMIN_SOCKET, else $QMK_STATE_DIR/admin.sock, else ./.qmk-state/…. */
export function resolveSocketPath(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
  cwd: string,
): string {
  // Empty values count as unset: `QMK_ADMIN_SOCKET= qmkctl status` should mean the default.
  if (flag !== undefined && flag !== '') return resolve(cwd, flag);
  if (env.QMK_ADMIN_SOCKET) return resolve(cwd, env.QMK_ADMIN_SOCKET);
  if (env.QMK_STATE_DIR) return resolve(cwd, env.QMK_STATE_DIR, 'admin.sock');
  return resolve(cwd, '.qmk-state', 'admin.sock');
}

/** Thrown when there is no daemon to talk to; the message names the socket path. */
export class ConnectError extends Error {}

export type UnaryMethod = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, response?: unknown) => void,
) => grpc.ClientUnaryCall;

export const NOT_RUNNING =
  'the daemon may not be running (start qmkd, or point --socket, ' +
  'QMK_ADMIN_SOCKET or QMK_STATE_DIR at its socket)';

/** Lazily connected AdminService and AuditService clients; `close()` lets the process exit. */
export class Admin {
  private clients: grpc.Client[] | undefined;

  constructor(readonly socketPath: string) {}

  call<M extends AdminMethod>(method: M, request: RequestOf<M>): Promise<ReplyOf<M>> {
    const client = this.connect().find(
      (c) => typeof (c as unknown as Record<string, unknown>)[method] === 'function',
    );
    const fn = (client as unknown as Record<string, UnaryMethod | undefined> | undefined)?.[method];
    if (client === undefined || typeof fn !== 'function') {
      throw new Error(`the admin socket has no method ${method}`);
    }
    return new Promise<ReplyOf<M>>((resolvePromise, reject) => {
      const options: grpc.CallOptions = { deadline: Date.now() + CALL_DEADLINE_MS };
      fn.call(client, request, new grpc.Metadata(), options, (err, response) => {
        if (err) reject(err);
        else resolvePromise(response as ReplyOf<M>);
      });
    });
  }

  close(): void {
    // One channel: the admin client owns it, the audit client borrows it.
    this.clients?.[0]?.close();
  }

  private connect(): grpc.Client[] {
    if (this.clients !== undefined) return this.clients;
    // Checked up front because grpc's own message for a missing socket is an opaque UNAVAILABLE.
    let isSocket: boolean;
    try {
      isSocket = statSync(this.socketPath).isSocket();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new ConnectError(`no admin socket at ${this.socketPath}: ${NOT_RUNNING}`);
      }
      // EACCES and the like: the socket may well exist, so say what actually went wrong.
      throw new ConnectError(`cannot access ${this.socketPath}: ${(e as Error).message}`);
    }
    if (!isSocket) throw new ConnectError(`${this.socketPath} is not a socket`);
    const { AdminService, AuditService } = loadGrpcObject();
    const admin = new AdminService(`unix:${this.socketPath}`, grpc.credentials.createInsecure());
    const audit = new AuditService(`unix:${this.socketPath}`, grpc.credentials.createInsecure(), {
      channelOverride: admin.getChannel(),
    });
    this.clients = [admin, audit];
    return this.clients;
  }
}

export function isServiceError(e: unknown): e is grpc.ServiceError {
  return (
    e instanceof Error &&
    typeof (e as Partial<grpc.ServiceError>).code === 'number' &&
    'details' in e
  );
}
