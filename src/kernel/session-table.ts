/**
 * The table of sessions and their virtual qubits, with the indexes by tenant and by session the
 * kernel's limits and listings need. Layer: kernel (pure data). Other units read and change it
 * only through these methods, so the indexes never disagree with the tables.
 */
import { KernelError } from './errors.js';
import type { Cap, Qubit, Session } from './model.js';

const NONE: ReadonlySet<string> = new Set();

export class SessionTable {
  private readonly sessions = new Map<string, Session>();
  private readonly qubits = new Map<string, Qubit>();
  private readonly qubitsBySession = new Map<string, Set<string>>();
  private readonly qubitsByTenant = new Map<string, Set<string>>();
  private readonly sessionsByTenant = new Map<string, Set<string>>();

  constructor(sessions: readonly Session[] = [], qubits: readonly Qubit[] = []) {
    for (const s of sessions) this.addSession(s);
    for (const q of qubits) this.addQubit(q);
  }

  session(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  qubit(id: string): Qubit | undefined {
    return this.qubits.get(id);
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  get qubitCount(): number {
    return this.qubits.size;
  }

  allSessions(): Session[] {
    return [...this.sessions.values()];
  }

  allQubitIds(): string[] {
    return [...this.qubits.keys()];
  }

  sessionIdsOf(tenantId: string): string[] {
    return [...(this.sessionsByTenant.get(tenantId) ?? [])];
  }

  sessionCountOf(tenantId: string): number {
    return this.sessionsByTenant.get(tenantId)?.size ?? 0;
  }

  qubitIdsOfSession(sessionId: string): string[] {
    return [...(this.qubitsBySession.get(sessionId) ?? [])];
  }

  /** A view, not a copy: the state-bytes check reads it on every gate call. */
  qubitIdsOfTenant(tenantId: string): ReadonlySet<string> {
    return this.qubitsByTenant.get(tenantId) ?? NONE;
  }

  qubitCountOf(tenantId: string): number {
    return this.qubitsByTenant.get(tenantId)?.size ?? 0;
  }

  addSession(s: Session): void {
    this.sessions.set(s.id, s);
    setOf(this.sessionsByTenant, s.tenantId).add(s.id);
    setOf(this.qubitsBySession, s.id);
  }

  removeSession(s: Session): void {
    this.sessions.delete(s.id);
    this.sessionsByTenant.get(s.tenantId)?.delete(s.id);
    this.qubitsBySession.delete(s.id);
  }

  addQubit(q: Qubit): void {
    this.qubits.set(q.id, q);
    setOf(this.qubitsBySession, q.sessionId).add(q.id);
    setOf(this.qubitsByTenant, q.tenantId).add(q.id);
  }

  removeQubit(q: Qubit): void {
    this.qubits.delete(q.id);
    this.qubitsBySession.get(q.sessionId)?.delete(q.id);
    this.qubitsByTenant.get(q.tenantId)?.delete(q.id);
  }
}

/** @throws CAP_MISSING when the session was not granted `cap` */
export function requireCap(session: Session, cap: Cap, field: string): void {
  if (!session.caps.includes(cap)) {
    throw new KernelError('CAP_MISSING', `${field}: session lacks ${cap}`, field);
  }
}

function setOf<K, V>(m: Map<K, Set<V>>, k: K): Set<V> {
  let s = m.get(k);
  if (!s) {
    s = new Set();
    m.set(k, s);
  }
  return s;
}
