/**
 * KernelService adapter: decodes requests, calls the kernel, encodes replies. Layer: api; no
 * policy here (every check is the kernel's).
 */
import { rightsToNames } from '../kernel/handles.js';
import type { Kernel } from '../kernel/kernel.js';
import { quotaToWire, roleToWire, strip, tierToWire } from './convert.js';
import type { KernelServiceHandlers } from './generated/qmk/v1/KernelService.js';
import { type CallTracker, unary } from './handler.js';

import { num, tenant } from './convert.js';
import type { AllocateQubitsRequest__Output } from './generated/qmk/v1/AllocateQubitsRequest.js';
import type { ApplyGatesRequest__Output } from './generated/qmk/v1/ApplyGatesRequest.js';
import type { AttenuateHandleRequest__Output } from './generated/qmk/v1/AttenuateHandleRequest.js';
import type { CloseSessionRequest__Output } from './generated/qmk/v1/CloseSessionRequest.js';
import type { MeasureQubitsRequest__Output } from './generated/qmk/v1/MeasureQubitsRequest.js';
import type { OpenSessionRequest__Output } from './generated/qmk/v1/OpenSessionRequest.js';
import type { ReleaseQubitsRequest__Output } from './generated/qmk/v1/ReleaseQubitsRequest.js';

const strs = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);

export function kernelServiceHandlers(k: Kernel, tracker: CallTracker): KernelServiceHandlers {
  return {
    OpenSession: unary(tracker, async (p, r: OpenSessionRequest__Output) => {
      const { session, handle } = await k.sessions.open(
        tenant(p),
        strs(r.requested_caps),
        num(r.ttl_seconds),
      );
      return {
        session_id: session.id,
        session_handle: handle,
        granted_caps: session.caps,
        expires_at_unix_ms: session.expiresAtMs,
      };
    }),
    CloseSession: unary(tracker, async (p, r: CloseSessionRequest__Output) => ({
      qubits_released: await k.sessions.close(tenant(p), String(r.session_handle ?? '')),
    })),
    AllocateQubits: unary(tracker, async (p, r: AllocateQubitsRequest__Output) => {
      const qubits = await k.sessions.allocate(
        tenant(p),
        String(r.session_handle ?? ''),
        num(r.count),
        String(r.profile ?? ''),
      );
      return { qubits: qubits.map((q) => ({ qubit_id: q.id, handle: q.handle })) };
    }),
    ReleaseQubits: unary(tracker, async (p, r: ReleaseQubitsRequest__Output) => ({
      qubits_released: await k.sessions.release(tenant(p), strs(r.qubit_handles)),
    })),
    ApplyGates: unary(tracker, async (p, r: ApplyGatesRequest__Output) => {
      const gates = (Array.isArray(r.gates) ? r.gates : []).map((g) => ({
        kind: strip('GATE_KIND_')(g.kind),
        qubits: strs(g.qubits),
        theta: num(g.theta),
      }));
      return { gates_applied: await k.interactive.apply(tenant(p), gates) };
    }),
    MeasureQubits: unary(tracker, async (p, r: MeasureQubitsRequest__Output) => {
      const ms = (Array.isArray(r.measurements) ? r.measurements : []).map((m) => ({
        qubit: String(m.qubit ?? ''),
        basis: strip('BASIS_')(m.basis),
        angle: num(m.angle),
      }));
      return { outcomes: await k.interactive.measure(tenant(p), ms) };
    }),
    AttenuateHandle: unary(tracker, (p, r: AttenuateHandleRequest__Output) => {
      const out = k.handles.attenuate(
        tenant(p),
        String(r.handle ?? ''),
        strs(r.rights),
        num(r.expires_at_unix_ms),
      );
      return {
        handle: out.handle,
        rights: rightsToNames(out.rights),
        expires_at_unix_ms: out.expiresAtMs,
      };
    }),
    GetUsage: unary(tracker, (p) => {
      const tp = tenant(p);
      const t = k.principals.tenantOf(tp);
      const u = k.sessions.usageOf(t.id);
      return {
        tenant_id: t.id,
        tier: tierToWire(t.tier),
        quota: quotaToWire(k.principals.quotaOf(t)),
        usage: {
          qubits_live: u.qubitsLive,
          state_bytes: u.stateBytes,
          sessions_open: u.sessionsOpen,
          clusters: u.clusters,
        },
        roles: tp.roles.map(roleToWire),
      };
    }),
  };
}
