/**
 * What the log says about calls, from the interceptor's report of each call's end. Layer: api.
 *
 * - `debug`: one `call` line per call: method, tenant (or `operator`), peer, request id, gRPC code,
 *   kernel code, milliseconds.
 * - `info`: every operator call (an admin action) with its outcome.
 * - `info`: refusals — calls answered with an error. The first of each kind (tenant, method,
 *   kernel code) in a window is a `refused` line at once, with its peer and request id; the rest
 *   of the window are counted in one `refusals` line when it closes. A flood of refusals stays a
 *   few lines per window; every refusal is counted.
 */
import { status } from '@grpc/grpc-js';
import { log } from '../util/log.js';
import type { CallEnd, CallObserver } from './interceptor.js';

/** How long refusals of one kind are summed before they are logged as a count. */
export const REFUSAL_LOG_WINDOW_MS = 10_000;

function who(e: CallEnd): string {
  if (e.principal === null) return '';
  return e.principal.kind === 'operator' ? 'operator' : e.principal.tenantId;
}

export class CallLog implements CallObserver {
  private counts = new Map<string, number>();
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(windowMs = REFUSAL_LOG_WINDOW_MS) {
    this.timer = setInterval(() => this.flush(windowMs), windowMs);
    this.timer.unref();
  }

  ended(e: CallEnd): void {
    const tenant = who(e);
    if (log.enabled('debug')) {
      log.debug('call', {
        method: e.path,
        tenant,
        peer: e.peer,
        request_id: e.requestId,
        code: status[e.code] ?? e.code,
        kernel_code: e.kernelCode,
        ms: Math.round(e.ms * 1000) / 1000,
      });
    }
    if (e.principal?.kind === 'operator') {
      log.info('admin action', {
        method: e.path,
        request_id: e.requestId,
        code: status[e.code] ?? e.code,
        kernel_code: e.kernelCode,
      });
    } else if (e.code !== status.OK) {
      this.refused(e, tenant);
    }
  }

  private refused(e: CallEnd, tenant: string): void {
    const code = e.kernelCode || String(status[e.code] ?? e.code);
    const key = `${tenant}\u0000${e.path}\u0000${code}`;
    const n = this.counts.get(key) ?? 0;
    if (n === 0) {
      log.info('refused', {
        tenant,
        method: e.path,
        code,
        peer: e.peer,
        request_id: e.requestId,
      });
    }
    this.counts.set(key, n + 1);
  }

  private flush(windowMs: number): void {
    if (this.counts.size === 0) return;
    const refused = [...this.counts].map(([key, count]) => {
      const [tenant, method, code] = key.split('\u0000');
      return { tenant, method, code, count };
    });
    this.counts = new Map();
    log.info('refusals', { window_ms: windowMs, refused });
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
