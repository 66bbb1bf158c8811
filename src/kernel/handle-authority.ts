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
    // nothing about another tenant's resources, and the check costs the same on both paths (the
    // signature was verified above either way).
    if (claims.tenantId !== p.tenantId) throw noSuchResource(field);
    const now = this.clock.nowMs();
    const keyState = this.signer.keyState(claims.keyId, now);
    if (keyState === 'retired') {
      throw new KernelError('HANDLE_KEY_RETIRED', `${field}: signing key retired`, field);
    }
    if (keyState === 'unknown-key') {
      throw new KernelError('HANDLE_KEY_UNKNOWN', `${field}: signed by an unknown key`, field);
    }
    if (now >= claims.expiresAtMs) {
      throw new KernelError('HANDLE_EXPIRED', `${field}: handle expired`, field);
    }
    if (kind === 'VQ' && claims.kind === 'SHARED_VQ') {
      throw new KernelError(
        'RIGHTS_INSUFFICIENT',
        `${field}: a shared qubit handle allows only entangling gates, through its channel`,
        field,
      );
    }
    if (kind !== null && claims.kind !== kind) {
      throw new KernelError('HANDLE_WRONG_KIND', `${field}: expected a ${kind} handle`, field);
    }
    this.checkResource(claims, field);
    if ((claims.rights & need) !== need) {
      throw new KernelError('RIGHTS_INSUFFICIENT', `${field}: handle lacks the right`, field);
    }
    return claims;
  }

  private checkResource(c: HandleClaims, field: string): void {
    const missing = () => noSuchResource(field);
    if (c.kind === 'SHARED_VQ') {
      // The channel still exists with the holder as a party, and the qubit is still the other
      // party's. Whether the channel may be used now is the firewall's decision, with its reason.
      const ch = this.resources.channel(c.sessionId);
      if (!ch || (ch.requesterId !== c.tenantId && ch.peerId !== c.tenantId)) throw missing();
      const owner = ch.requesterId === c.tenantId ? ch.peerId : ch.requesterId;
      if (this.resources.qubit(c.resourceId)?.tenantId !== owner) throw missing();
      return;
    }
    const session = this.resources.session(c.sessionId);
    if (!session || session.tenantId !== c.tenantId) throw missing();
    if (c.kind === 'VQ') {
      const q = this.resources.qubit(c.resourceId);
      if (!q || q.sessionId !== c.sessionId || q.tenantId !== c.tenantId) throw missing();
    } else if (c.kind === 'SESSION') {
      if (c.resourceId !== c.sessionId) throw missing();
    } else {
      throw missing();
    }
    if (this.clock.nowMs() >= session.expiresAtMs) {
      throw new KernelError('SESSION_EXPIRED', `${field}: session expired`, field);
    }
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
