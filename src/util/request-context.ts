/**
 * The call a piece of code runs for, across awaits, callbacks and timers it starts: its request
 * id and who made it. Layer: util (the api sets it per call; the logger stamps lines with the
 * request id; the store stamps the caller's own audit records with it).
 *
 * Work the kernel does for nobody in particular (a job run the scheduler starts, a sweep) is
 * started `outsideRequest`, so it does not carry the id of whichever call happened to wake it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface RequestScope {
  requestId: string;
  /** The audit actor prefix of the caller: `<tenant id>/` for a tenant, `operator`, or null. */
  actor: string | null;
  /**
   * Answers the call with an error (the api's route for an exception nothing caught). Cleared
   * once the call is answered: a timer the call started can outlive it by minutes (a job's, a
   * pool thread's idle timer) and holds this scope; without the call it holds nothing of the
   * request (a 1 MiB program stayed resident that way, measured).
   */
  fail: ((err: unknown) => void) | null;
}

const scopes = new AsyncLocalStorage<RequestScope>();

/** Runs `fn` as part of the call `scope` (and everything it starts). */
export function withRequest<T>(scope: RequestScope, fn: () => T): T {
  return scopes.run(scope, fn);
}

export function currentRequest(): RequestScope | undefined {
  return scopes.getStore();
}

/** Runs `fn` (and what it starts) outside any call. */
export function outsideRequest<T>(fn: () => T): T {
  return scopes.exit(fn);
}

/** Whether an audit actor (`tenant/key`, `operator`, `kernel`) is the caller of `scope`. */
export function actsFor(scope: RequestScope, actor: string): boolean {
  if (scope.actor === null) return false;
  return scope.actor.endsWith('/') ? actor.startsWith(scope.actor) : actor === scope.actor;
}
