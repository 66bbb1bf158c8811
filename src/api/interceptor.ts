/**
 * The one server interceptor: authenticates every call and checks the authorization table before
 * any handler runs. Layer: api. A refused call never reaches a handler; the principal of an
 * accepted call is attached to its metadata object through a WeakMap (not a header), so a client
 * cannot forge it. Every call gets a request id (the client's `x-request-id`, when usable, else a
 * new one), sent back in the `x-request-id` response header (or trailer), and every call's end is
 * reported once (`onEnd`: logs, metrics), refused ones included.
 */
import { randomUUID } from 'node:crypto';
import { Metadata, ServerInterceptingCall, type ServerInterceptor, status } from '@grpc/grpc-js';
import { KernelError } from '../kernel/errors.js';
import type { Principal } from '../kernel/model.js';
import type { AuthzEntry } from './authz.js';
import { ERROR_CODE_KEY, ERROR_FIELD_KEY, errorStatus } from './errors.js';
import {
  type DecodeFailure,
  type DeferredRequest,
  type RequestLimits,
  isDeferred,
} from './request-limits.js';

const principals = new WeakMap<Metadata, Principal>();
const requestIds = new WeakMap<Metadata, string>();

export const REQUEST_ID_KEY = 'x-request-id';
/** A client's request id is used when it is 1–128 printable ASCII characters without spaces. */
const USABLE_REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

/** The request id of a call, as the interceptor settled it. */
export function requestIdOf(metadata: Metadata): string | undefined {
  return requestIds.get(metadata);
}

function requestIdFrom(metadata: Metadata): string {
  const given = metadata.get(REQUEST_ID_KEY)[0];
  return typeof given === 'string' && USABLE_REQUEST_ID.test(given) ? given : randomUUID();
}

export type GrpcType = 'unary' | 'client_stream' | 'server_stream' | 'bidi_stream';

/** A call as metrics name it: its path and its kind. */
export interface CallInfo {
  path: string;
  type: GrpcType;
}

/** How one call ended, as the interceptor saw it. */
export interface CallEnd extends CallInfo {
  principal: Principal | null;
  peer: string;
  requestId: string;
  /** gRPC status code, and the kernel's code for an error ('' when OK or not a kernel error). */
  code: number;
  kernelCode: string;
  /** The request field or quota the refusal names ('' if none). */
  kernelField: string;
  ms: number;
}

export function principalOf(metadata: Metadata): Principal | undefined {
  return principals.get(metadata);
}

/** Records the authenticated principal of a call (the interceptor's only way to hand it on). */
export function attachPrincipal(metadata: Metadata, principal: Principal): void {
  principals.set(metadata, principal);
}

export type Audience = 'tenant' | 'operator';

export interface InterceptorOptions {
  table: Readonly<Record<string, AuthzEntry>>;
  audience: Audience;
  /** Bearer key of a call from `peer` (its address, no port) -> tenant principal; throws KernelError. */
  authenticate(apiKey: string | undefined, peer: string): Principal;
  /** Counts an admitted call in flight; returns its release, called once when the call ends. */
  enter?(p: Principal): () => void;
  /** The limits a caller's requests are walked against before they are decoded. */
  limits(p: Principal | null): RequestLimits;
  /** Called for every refusal at the door (before any handler), with the caller's address. */
  onRefuse?(path: string, err: KernelError, peer: string): void;
  /** Told of every call: its start, each message each way, and once its end (refused or not). */
  observers?: readonly CallObserver[];
}

export interface CallObserver {
  started?(call: CallInfo): void;
  received?(call: CallInfo): void;
  sent?(call: CallInfo): void;
  ended?(end: CallEnd): void;
}

/** Extracts the key from `authorization: Bearer <key>`; undefined when absent. */
export function bearer(metadata: Metadata): string | undefined {
  const v = metadata.get('authorization')[0];
  if (typeof v !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)$/i.exec(v.trim());
  return m ? m[1] : v;
}

/**
 * The address a call comes from, without its port: `127.0.0.1`, `::1`, or `unix` for the admin
 * socket. IPv4 addresses mapped into IPv6 are written as IPv4, so one client is one address.
 */
export function peerAddress(remoteAddress: string | undefined): string {
  if (!remoteAddress) return 'unix';
  return remoteAddress.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
}

function decide(
  opts: InterceptorOptions,
  path: string,
  metadata: Metadata,
  peer: string,
): Principal | null {
  const entry = opts.table[path];
  if (!entry) throw new KernelError('ROLE_FORBIDDEN', `${path}: no authorization entry; denied`);
  if (entry.principal === 'none') return null;
  if (entry.principal === 'tenant-or-operator' && opts.audience === 'operator') {
    return { kind: 'operator' };
  }
  if (entry.principal === 'operator') {
    if (opts.audience !== 'operator') {
      throw new KernelError('ROLE_FORBIDDEN', `${path}: operator-only, use the admin socket`);
    }
    return { kind: 'operator' };
  }
  if (opts.audience !== 'tenant') {
    throw new KernelError('ROLE_FORBIDDEN', `${path}: tenant method on the admin socket`);
  }
  const p = opts.authenticate(bearer(metadata), peer);
  if (p.kind === 'tenant' && !p.roles.some((r) => entry.roles.includes(r))) {
    throw new KernelError('ROLE_FORBIDDEN', `${path}: the key's roles may not call this method`);
  }
  return p;
}

export function authInterceptor(opts: InterceptorOptions): ServerInterceptor {
  return (method, call) => {
    // The admitted call's place in its tenant's in-flight count, given back when the call ends
    // (its status is sent, or the client cancels).
    let release: (() => void) | null = null;
    const done = () => {
      release?.();
      release = null;
    };
    let limits: RequestLimits | null = null;
    const peer = peerAddress(call.getConnectionInfo().remoteAddress);
    const started = performance.now();
    const info: CallInfo = {
      path: method.path,
      type: method.requestStream
        ? method.responseStream
          ? 'bidi_stream'
          : 'client_stream'
        : method.responseStream
          ? 'server_stream'
          : 'unary',
    };
    const observers = opts.observers ?? [];
    for (const o of observers) o.started?.(info);
    let requestId = '';
    let principal: Principal | null = null;
    let headersSent = false;
    const ended = (code: number, trailers: Metadata | undefined) => {
      const kernelCode = trailers?.get(ERROR_CODE_KEY)[0];
      const kernelField = trailers?.get(ERROR_FIELD_KEY)[0];
      const end: CallEnd = {
        ...info,
        principal,
        peer,
        requestId,
        code,
        kernelCode: typeof kernelCode === 'string' ? kernelCode : '',
        kernelField: typeof kernelField === 'string' ? kernelField : '',
        ms: performance.now() - started,
      };
      for (const o of observers) o.ended?.(end);
    };
    const refuse = (err: unknown) => {
      const e =
        err instanceof KernelError ? err : new KernelError('INTERNAL', 'authentication failed');
      opts.onRefuse?.(method.path, e, peer);
      const s = errorStatus(e);
      const metadata = s.metadata ?? new Metadata();
      metadata.set(REQUEST_ID_KEY, requestId);
      const code = s.code ?? status.INTERNAL;
      call.sendStatus({ code, details: s.details ?? '', metadata });
      ended(code, metadata);
    };
    return new ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata, mdNext) {
            requestId = requestIdFrom(metadata);
            requestIds.set(metadata, requestId);
            try {
              principal = decide(opts, method.path, metadata, peer);
              if (principal && opts.enter) release = opts.enter(principal);
              limits = opts.limits(principal);
            } catch (err) {
              refuse(err);
              return;
            }
            if (principal) attachPrincipal(metadata, principal);
            mdNext(metadata);
          },
          onReceiveMessage(message, msgNext) {
            for (const o of observers) o.received?.(info);
            if (!isDeferred(message)) {
              msgNext(message);
              return;
            }
            try {
              // Metadata always comes first; a call refused there never reaches this point.
              limits!.check(message.type, message.bytes);
            } catch (err) {
              refuse(err);
              return;
            }
            msgNext(decodeOrFailure(message));
          },
          onCancel: done,
        });
      },
      sendMessage(message, next) {
        for (const o of observers) o.sent?.(info);
        next(message);
      },
      sendMetadata(metadata, next) {
        headersSent = true;
        metadata.set(REQUEST_ID_KEY, requestId);
        next(metadata);
      },
      sendStatus(s, next) {
        done();
        const trailers = s.metadata ?? new Metadata();
        if (!headersSent) trailers.set(REQUEST_ID_KEY, requestId);
        next({ ...s, metadata: trailers });
        ended(s.code, trailers);
      },
    });
  };
}

/** The decoded request, or what was wrong with it as a value the handler answers with. */
function decodeOrFailure(message: DeferredRequest): unknown {
  try {
    return message.decode(message.bytes);
  } catch (err) {
    return {
      __decodeError: `malformed message (${(err as Error).message})`,
    } satisfies DecodeFailure;
  }
}
