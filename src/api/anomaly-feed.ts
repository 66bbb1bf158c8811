/**
 * Hands every refused tenant call to the kernel's anomaly detection (`kernel/anomalies.ts`), as
 * the interceptor saw it end: caller, address, method, kernel code and the field it names.
 * Layer: api. Operator calls are not counted (the operator is not a tenant to answer).
 */
import { status } from '@grpc/grpc-js';
import type { Anomalies } from '../kernel/anomalies.js';
import type { CallEnd, CallObserver } from './interceptor.js';

export class AnomalyFeed implements CallObserver {
  constructor(private readonly anomalies: Anomalies) {}

  ended(e: CallEnd): void {
    if (e.code === status.OK || e.principal?.kind === 'operator' || e.kernelCode === '') return;
    this.anomalies.refused({
      principal: e.principal,
      peer: e.peer,
      method: e.path.slice(e.path.lastIndexOf('/') + 1),
      code: e.kernelCode,
      field: e.kernelField,
    });
  }
}
