/**
 * Who an act is attributed to, and the audit record that says so. Layer: kernel (pure).
 */
import type { Principal } from './model.js';
import type { AuditEvent, PoolOwner } from './ports.js';

/** Who an audit record names: a principal, or the kernel itself (sweeps, checkpoints). */
export type Actor = Principal | 'kernel';

/** The audit record of one act: `tenant/key` for a tenant's call, else `operator` or `kernel`. */
export function auditEvent(
  p: Actor,
  action: string,
  target: string,
  detail?: Record<string, unknown>,
): AuditEvent {
  const actor =
    p === 'kernel' ? 'kernel' : p.kind === 'operator' ? 'operator' : `${p.tenantId}/${p.keyId}`;
  return detail
    ? { actor, action, target, outcome: 'ok', detail }
    : { actor, action, target, outcome: 'ok' };
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
