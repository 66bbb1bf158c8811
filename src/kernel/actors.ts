/**
 * Who an act is attributed to, and the audit record that says so. Layer: kernel (pure).
 */
import type { Principal } from './model.js';
import type { AuditEvent, PoolOwner } from './ports.js';

/** Who an audit record names: a principal, or the kernel itself (sweeps, checkpoints). */
export type Actor = Principal | 'kernel';

/**
 * The audit record of one act: `tenant/key` for a tenant's call, else `operator` or `kernel`.
 * `tenants`: whom the act concerns (each sees the record in its view of the log); by default
 * the calling tenant, none for the operator's and the kernel's own acts.
 */
export function auditEvent(
  p: Actor,
  action: string,
  target: string,
  detail?: Record<string, unknown>,
  tenants?: readonly string[],
): AuditEvent {
  const actor =
    p === 'kernel' ? 'kernel' : p.kind === 'operator' ? 'operator' : `${p.tenantId}/${p.keyId}`;
  const concerns = tenants ?? (p !== 'kernel' && p.kind === 'tenant' ? [p.tenantId] : []);
  const event: AuditEvent = { actor, action, target, outcome: 'ok' };
  if (detail) event.detail = detail;
  if (concerns.length > 0) event.tenants = [...new Set(concerns)];
  return event;
}

/** The pool's view of who a plan is for (its fair queue across tenants); none for the kernel. */
export function poolOwner(
  weights: { weightOf(tenantId: string): number },
  actor: Actor,
): PoolOwner | undefined {
  return actor === 'kernel' || actor.kind === 'operator'
    ? undefined
    : { tenant: actor.tenantId, weight: weights.weightOf(actor.tenantId) };
}
