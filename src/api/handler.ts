/**
 * Wraps a kernel call as a grpc-js unary handler with one exit: whatever the call throws or
 * rejects with, synchronously or in a callback, becomes that call's status (api/errors.ts).
 * A `KernelError` is a refusal and ends there; anything else is a programmer error: the call is
 * answered INTERNAL and the bug is reported (`util/bugs.ts`), which stops the daemon. Also counts
 * in-flight calls so shutdown can drain them. Layer: api.
 */
import type * as grpc from '@grpc/grpc-js';
import { KernelError } from '../kernel/errors.js';
import type { Principal } from '../kernel/model.js';
import { reportBug } from '../util/bugs.js';
import { type RequestScope, currentRequest, withRequest } from '../util/request-context.js';
import { errorStatus } from './errors.js';
import { principalOf, requestIdOf } from './interceptor.js';
import type { DecodeFailure } from './request-limits.js';

export class CallTracker {
  draining = false;
  inFlight = 0;
  private waiters: (() => void)[] = [];
  private readonly drainListeners = new Set<() => void>();

  /** Long-lived streams register here to be ended when the daemon starts draining. */
  onDrain(fn: () => void): void {
    this.drainListeners.add(fn);
  }

  offDrain(fn: () => void): void {
    this.drainListeners.delete(fn);
  }

  /** Ends open streams with UNAVAILABLE (shutdown); unary calls in flight finish. */
  endStreams(): void {
    for (const fn of [...this.drainListeners]) fn();
  }

  enter(): void {
    this.inFlight++;
  }

  leave(): void {
    this.inFlight--;
    if (this.inFlight === 0) for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves when no call is in flight, or after `timeoutMs` (drain is bounded). */
  drained(timeoutMs: number): Promise<boolean> {
    if (this.inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }
}

/**
 * Routes an exception nothing caught (a throw in a timer or callback a handler started). Every
 * such exception is a programmer error; inside a call's context that call is answered INTERNAL
 * first ('call'), so its client is not left waiting; otherwise there is no call to answer
 * ('none'). Either way the caller stops the daemon.
 */
export function routeUncaught(err: unknown): 'call' | 'none' {
  const fail = currentRequest()?.fail;
  if (!fail) return 'none';
  fail(err);
  return 'call';
}

/** A call's status for what it threw; anything but a `KernelError` is reported as a bug. */
function failureStatus(err: unknown): Partial<grpc.StatusObject> {
  if (!(err instanceof KernelError)) reportBug(err);
  return errorStatus(err);
}

/**
 * What every call checks before its handler: the daemon is not draining, the request decoded,
 * and the interceptor recorded a principal.
 * @throws UNAVAILABLE, INVALID_ARGUMENT (malformed message)
 */
function admit<Req>(
  tracker: CallTracker,
  call: { request: Req | DecodeFailure; metadata: grpc.Metadata },
): { p: Principal; req: Req } {
  if (tracker.draining) throw new KernelError('UNAVAILABLE', 'daemon is shutting down');
  const req = call.request;
  if (req && typeof req === 'object' && '__decodeError' in req) {
    throw new KernelError('INVALID_ARGUMENT', `request: ${req.__decodeError}`, 'request');
  }
  const p = principalOf(call.metadata);
  if (!p) throw new Error('no principal on an authenticated method');
  return { p, req: req as Req };
}

export function unary<Req, Res>(
  tracker: CallTracker,
  fn: (principal: Principal, req: Req) => Promise<Res> | Res,
): grpc.handleUnaryCall<Req | DecodeFailure, Res> {
  return (call, callback) => {
    tracker.enter();
    let answered = false;
    const ctx = scopeOf(call.metadata, (err) => answer(errorStatus(err)));
    const answer = (err: Partial<grpc.StatusObject> | null, res?: Res) => {
      if (answered) return;
      answered = true;
      ctx.fail = null;
      tracker.leave();
      if (err) callback(err as grpc.ServiceError);
      else callback(null, res);
    };
    withRequest(ctx, () =>
      Promise.resolve()
        .then(() => {
          const { p, req } = admit<Req>(tracker, call);
          return fn(p, req);
        })
        .then(
          (res) => answer(null, res),
          (err: unknown) => answer(failureStatus(err)),
        ),
    );
  };
}

/**
 * Wraps a server-streaming kernel call with the same single exit as `unary`: `fn` subscribes,
 * sends with `send` and finishes with `end`; it returns the unsubscribe function, called when the
 * stream ends for any reason (finished, cancelled by the client, failed, or the daemon drains).
 * A throw becomes the stream's status. Open streams count as in-flight calls; when the daemon
 * drains, each ends with UNAVAILABLE so clients know to reconnect.
 */
export function serverStream<Req, Res>(
  tracker: CallTracker,
  fn: (
    principal: Principal,
    req: Req,
    send: (res: Res) => void,
    end: () => void,
  ) => (() => void) | Promise<() => void>,
): grpc.handleServerStreamingCall<Req | DecodeFailure, Res> {
  return (call) => {
    tracker.enter();
    let closed = false;
    let unsubscribe: () => void = () => {};
    const ctx = scopeOf(call.metadata, (err) => close(errorStatus(err)));
    const close = (err: Partial<grpc.StatusObject> | null) => {
      if (closed) return;
      closed = true;
      ctx.fail = null;
      tracker.offDrain(onDrain);
      unsubscribe();
      tracker.leave();
      if (err) call.emit('error', err);
      else call.end();
    };
    const onDrain = () =>
      close(errorStatus(new KernelError('UNAVAILABLE', 'daemon is shutting down')));
    call.on('cancelled', () => close(null));
    const stream = async () => {
      try {
        const { p, req } = admit<Req>(tracker, call);
        tracker.onDrain(onDrain);
        const off = await fn(
          p,
          req,
          (res) => {
            if (!closed) call.write(res);
          },
          () => close(null),
        );
        if (closed) off();
        else unsubscribe = off;
      } catch (err) {
        close(failureStatus(err));
      }
    };
    withRequest(ctx, stream);
  };
}

/**
 * The call a piece of code runs for, across awaits, callbacks and timers it starts: its request
 * id and who makes it (for log lines and audit records), and how to answer it on a bug.
 */
function scopeOf(metadata: grpc.Metadata, fail: (err: unknown) => void): RequestScope {
  const p = principalOf(metadata);
  return {
    requestId: requestIdOf(metadata) ?? '',
    actor: p === undefined ? null : p.kind === 'operator' ? 'operator' : `${p.tenantId}/`,
    fail,
  };
}
