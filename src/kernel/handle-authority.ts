/**
 * The handle authority: issues Ed25519-signed handles, verifies them on every use, and derives
 * attenuated ones (rights only shrink, expiry only comes sooner). Layer: kernel. The token format
 * is `handles.ts`'s; this unit decides whether a presented handle names a live resource of the
 * caller with the rights the operation needs. Verified signatures are cached (a cache hit still
 * checks key state, expiry, tenant, kind, resource and rights); revocation is never cached.
 */
import type { ChannelRecord } from './channels.js';
import { KernelError, invalid, quote } from './errors.js';
import {
  type HandleClaims,
  type HandleKind,
  RIGHTS,
  type RightName,
  decodeHandle,
  encodeClaims,
  encodeHandle,
} from './handles.js';
import type { Qubit, Session } from './model.js';
import type { ClockPort, SignerPort, SigningKeyInfo } from './ports.js';
import type { TenantPrincipal } from './principals.js';

/** Verified-signature cache entries; a hit still checks key state, expiry and the resource. */
const HANDLE_CACHE_ENTRIES_MAX = 65_536;

/** What a handle can name, looked up by id (the kernel's registries). */
export interface HandleResources {
  session(id: string): Session | undefined;
  qubit(id: string): Qubit | undefined;
  channel(id: string): ChannelRecord | undefined;
}

/** The one answer for a resource the caller cannot see: missing, or another tenant's. */
function noSuchResource(field: string): KernelError {
  return new KernelError('NOT_FOUND', `${field}: no such resource`, field);
}

/** What can be wrong with a genuine handle's use. */
type Fault =
  | 'key-retired'
  | 'key-unknown'
  | 'expired'
  | 'shared-for-vq'
  | 'wrong-kind'
  | 'missing'
  | 'session-expired'
  | 'rights';

/** The refusal for a fault of the caller's own handle. */
function refusal(fault: Fault, field: string, kind: HandleKind | null): KernelError {
  switch (fault) {
    case 'key-retired':
      return new KernelError('HANDLE_KEY_RETIRED', `${field}: signing key retired`, field);
    case 'key-unknown':
      return new KernelError('HANDLE_KEY_UNKNOWN', `${field}: signed by an unknown key`, field);
    case 'expired':
      return new KernelError('HANDLE_EXPIRED', `${field}: handle expired`, field);
    case 'shared-for-vq':
      return new KernelError(
        'RIGHTS_INSUFFICIENT',
        `${field}: a shared qubit handle allows only entangling gates, through its channel`,
        field,
      );
    case 'wrong-kind':
      return new KernelError('HANDLE_WRONG_KIND', `${field}: expected a ${kind} handle`, field);
    case 'missing':
      return noSuchResource(field);
    case 'session-expired':
      return new KernelError('SESSION_EXPIRED', `${field}: session expired`, field);
    case 'rights':
      return new KernelError('RIGHTS_INSUFFICIENT', `${field}: handle lacks the right`, field);
  }
}

export class HandleAuthority {
  private readonly cache = new Map<string, HandleClaims>();

  constructor(
    private readonly clock: ClockPort,
    private readonly signer: SignerPort,
    private readonly resources: HandleResources,
  ) {}

  issue(
    kind: HandleKind,
    resourceId: string,
    tenantId: string,
    sessionId: string,
    rights: number,
    expiresAtMs: number,
  ): string {
    const claims: HandleClaims = {
      kind,
      resourceId,
      tenantId,
      sessionId,
      rights,
      issuedAtMs: this.clock.nowMs(),
      expiresAtMs,
      keyId: this.signer.activeKeyId(),
    };
    const payload = encodeClaims(claims);
    return encodeHandle(payload, this.signer.sign(payload));
  }

  /**
   * Verifies a handle in full on every use: signature (cached), tenant = caller, key known and
   * not retired, not expired, kind, resource exists in that session, rights include `need`.
   * @throws HANDLE_INVALID, HANDLE_KEY_UNKNOWN, HANDLE_KEY_RETIRED, HANDLE_EXPIRED,
   *   HANDLE_WRONG_KIND, NOT_FOUND, SESSION_EXPIRED, RIGHTS_INSUFFICIENT, INVALID_ARGUMENT
   */
  verify(
    p: TenantPrincipal,
    text: string,
    field: string,
    kind: HandleKind | null,
    need: number,
  ): HandleClaims {
    let claims = this.cache.get(text);
    if (!claims) {
      const d = decodeHandle(text, field);
      const keyState = this.signer.keyState(d.claims.keyId, this.clock.nowMs());
      if (keyState === 'unknown-key') {
        throw new KernelError('HANDLE_KEY_UNKNOWN', `${field}: signed by an unknown key`, field);
      }
      if (!this.signer.verify(d.claims.keyId, d.payload, d.signature)) {
        throw new KernelError('HANDLE_INVALID', `${field}: bad signature`, field);
      }
      claims = d.claims;
      if (this.cache.size >= HANDLE_CACHE_ENTRIES_MAX) this.cache.clear();
      this.cache.set(text, claims);
    }
    // A genuine handle of another tenant is reported exactly like a missing resource, whatever
    // else is wrong with it (expired, retired key, wrong kind or rights): the caller learns
    // nothing about another tenant's resources. Every check is judged on both paths and one
    // error is built on either, so the two cost the same (bench:denials measures them).
    const fault = this.judge(claims, kind, need);
    if (claims.tenantId !== p.tenantId) throw refusal('missing', field, kind);
    if (fault !== null) throw refusal(fault, field, kind);
    return claims;
  }

  /** What is wrong with a genuine handle's use, or null; changes nothing and never throws. */
  private judge(c: HandleClaims, kind: HandleKind | null, need: number): Fault | null {
    const now = this.clock.nowMs();
    const keyState = this.signer.keyState(c.keyId, now);
    if (keyState === 'retired') return 'key-retired';
    if (keyState === 'unknown-key') return 'key-unknown';
    if (now >= c.expiresAtMs) return 'expired';
    if (kind === 'VQ' && c.kind === 'SHARED_VQ') return 'shared-for-vq';
    if (kind !== null && c.kind !== kind) return 'wrong-kind';
    const resource = this.resourceFault(c, now);
    if (resource !== null) return resource;
    if ((c.rights & need) !== need) return 'rights';
    return null;
  }

  private resourceFault(c: HandleClaims, now: number): Fault | null {
    if (c.kind === 'SHARED_VQ') {
      // The channel still exists with the holder as a party, and the qubit is still the other
      // party's. Whether the channel may be used now is the firewall's decision, with its reason.
      const ch = this.resources.channel(c.sessionId);
      if (!ch || (ch.requesterId !== c.tenantId && ch.peerId !== c.tenantId)) return 'missing';
      const owner = ch.requesterId === c.tenantId ? ch.peerId : ch.requesterId;
      return this.resources.qubit(c.resourceId)?.tenantId === owner ? null : 'missing';
    }
    const session = this.resources.session(c.sessionId);
    if (!session || session.tenantId !== c.tenantId) return 'missing';
    if (c.kind === 'VQ') {
      const q = this.resources.qubit(c.resourceId);
      if (!q || q.sessionId !== c.sessionId || q.tenantId !== c.tenantId) return 'missing';
    } else if (c.kind !== 'SESSION' || c.resourceId !== c.sessionId) {
      return 'missing';
    }
    return now >= session.expiresAtMs ? 'session-expired' : null;
  }

  /**
   * Derives a handle whose rights are a subset of the parent's and whose expiry is no later.
   * @throws handle errors, INVALID_ARGUMENT, RIGHTS_WIDEN
   */
  attenuate(
    p: TenantPrincipal,
    parent: string,
    rights: readonly string[],
    expiresAtMs: number,
  ): { handle: string; rights: number; expiresAtMs: number } {
    const c = this.verify(p, parent, 'handle', null, 0);
    let mask = 0;
    rights.forEach((r, i) => {
      if (!Object.hasOwn(RIGHTS, r)) throw invalid(`rights[${i}]`, `unknown right ${quote(r)}`);
      mask |= RIGHTS[r as RightName];
    });
    if ((mask & ~c.rights) !== 0) {
      throw new KernelError('RIGHTS_WIDEN', 'rights: attenuation cannot add rights', 'rights');
    }
    if (!Number.isInteger(expiresAtMs) || expiresAtMs < 0) {
      throw invalid('expires_at_unix_ms', 'must be a non-negative integer');
    }
    const expiry = expiresAtMs === 0 ? c.expiresAtMs : expiresAtMs;
    if (expiry > c.expiresAtMs) {
      throw new KernelError(
        'RIGHTS_WIDEN',
        'expires_at_unix_ms: attenuation cannot extend the expiry',
        'expires_at_unix_ms',
      );
    }
    if (expiry <= this.clock.nowMs()) throw invalid('expires_at_unix_ms', 'is in the past');
    const handle = this.issue(c.kind, c.resourceId, c.tenantId, c.sessionId, mask, expiry);
    return { handle, rights: mask, expiresAtMs: expiry };
  }

  /** The signing keys a client may verify handles and approvals with (public keys only). */
  signingKeys(): SigningKeyInfo[] {
    return this.signer.keys(this.clock.nowMs());
  }
}
