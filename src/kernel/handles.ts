/**
 * Handles: compact binary tokens naming one resource, signed with Ed25519, base64url on the wire.
 * Layer: kernel (pure codec; signing is the SignerPort's). Invariants: a handle's rights only
 * shrink (attenuation), its expiry only moves earlier, and every use is verified in full by
 * `Kernel.verifyHandle` (signature, key, expiry, tenant, resource, rights).
 *
 * Layout, version 1, big-endian (70 bytes signed, then a 64-byte signature = 134 bytes):
 *   0 version u8 | 1 kind u8 | 2 resource id 16 B | 18 tenant id 16 B | 34 session id 16 B |
 *   50 rights u32 | 54 issued-at ms u48 | 60 expires-at ms u48 | 66 signing key id u32 | 70 sig
 * Fixed-width binary rather than JSON/JWT: decoding is a handful of reads, there is no parser to
 * attack, and the token stays ~180 characters.
 */
import { KernelError, invalid } from './errors.js';
import { HANDLE_CHARS_MAX } from './limits.js';

export const HANDLE_VERSION = 1;
export const HANDLE_PAYLOAD_BYTES = 70;
export const HANDLE_SIGNATURE_BYTES = 64;
export const HANDLE_BYTES = HANDLE_PAYLOAD_BYTES + HANDLE_SIGNATURE_BYTES;
const ID_BYTES = 16;

/**
 * The kinds of handle the kernel issues, by their code in the token. SHARED_VQ: another
 * tenant's qubit shared through a channel; `tenant` is the holder (the peer), the session field
 * carries the channel id, and the only right is RIGHT_LINK. Codes 3 and 4 are reserved (they
 * were set aside for channel and job handles, which are addressed by id instead) and never reused.
 */
export const HANDLE_KINDS = { SESSION: 1, VQ: 2, SHARED_VQ: 5 } as const;
export type HandleKind = keyof typeof HANDLE_KINDS;

/** Rights, as named in the proto enum `Right`; bit i is the enum value i + 1. */
export const RIGHTS = {
  RIGHT_ALLOC: 1 << 0,
  RIGHT_COMPUTE: 1 << 1,
  RIGHT_MEASURE: 1 << 2,
  RIGHT_RELEASE: 1 << 3,
  RIGHT_CLOSE: 1 << 4,
  RIGHT_LINK: 1 << 5,
} as const;
export type RightName = keyof typeof RIGHTS;
export const RIGHT_NAMES = Object.keys(RIGHTS) as RightName[];

export const SESSION_RIGHTS_ALL = RIGHTS.RIGHT_ALLOC | RIGHTS.RIGHT_CLOSE;
export const VQ_RIGHTS_ALL =
  RIGHTS.RIGHT_COMPUTE | RIGHTS.RIGHT_MEASURE | RIGHTS.RIGHT_RELEASE | RIGHTS.RIGHT_LINK;

export interface HandleClaims {
  kind: HandleKind;
  resourceId: string; // 32 hex chars
  tenantId: string;
  sessionId: string;
  rights: number;
  issuedAtMs: number;
  expiresAtMs: number;
  keyId: number;
}

export interface DecodedHandle {
  claims: HandleClaims;
  payload: Uint8Array;
  signature: Uint8Array;
}

const KIND_BY_CODE = new Map<number, HandleKind>(
  Object.entries(HANDLE_KINDS).map(([k, v]) => [v, k as HandleKind]),
);

export function rightsToNames(rights: number): RightName[] {
  return RIGHT_NAMES.filter((n) => (rights & RIGHTS[n]) !== 0);
}

export function encodeClaims(c: HandleClaims): Buffer {
  const b = Buffer.alloc(HANDLE_PAYLOAD_BYTES);
  b.writeUInt8(HANDLE_VERSION, 0);
  b.writeUInt8(HANDLE_KINDS[c.kind], 1);
  b.write(c.resourceId, 2, ID_BYTES, 'hex');
  b.write(c.tenantId, 18, ID_BYTES, 'hex');
  b.write(c.sessionId, 34, ID_BYTES, 'hex');
  b.writeUInt32BE(c.rights >>> 0, 50);
  b.writeUIntBE(c.issuedAtMs, 54, 6);
  b.writeUIntBE(c.expiresAtMs, 60, 6);
  b.writeUInt32BE(c.keyId >>> 0, 66);
  return b;
}

export function encodeHandle(payload: Uint8Array, signature: Uint8Array): string {
  return Buffer.concat([payload, signature]).toString('base64url');
}

/**
 * Parses a handle's bytes; verifies nothing cryptographic (that is the caller's next step).
 * @throws KernelError HANDLE_INVALID when the text is not a well-formed version-1 handle;
 *   INVALID_ARGUMENT when it is empty.
 */
export function decodeHandle(text: string, field: string): DecodedHandle {
  if (typeof text !== 'string' || text.length === 0) throw invalid(field, 'handle is required');
  if (text.length > HANDLE_CHARS_MAX || !/^[A-Za-z0-9_-]+$/.test(text)) {
    throw new KernelError('HANDLE_INVALID', `${field}: not a handle`, field);
  }
  const b = Buffer.from(text, 'base64url');
  if (b.length !== HANDLE_BYTES || b.readUInt8(0) !== HANDLE_VERSION) {
    throw new KernelError('HANDLE_INVALID', `${field}: not a version-1 handle`, field);
  }
  const kind = KIND_BY_CODE.get(b.readUInt8(1));
  if (kind === undefined) throw new KernelError('HANDLE_INVALID', `${field}: unknown kind`, field);
  const claims: HandleClaims = {
    kind,
    resourceId: b.toString('hex', 2, 18),
    tenantId: b.toString('hex', 18, 34),
    sessionId: b.toString('hex', 34, 50),
    rights: b.readUInt32BE(50),
    issuedAtMs: b.readUIntBE(54, 6),
    expiresAtMs: b.readUIntBE(60, 6),
    keyId: b.readUInt32BE(66),
  };
  return {
    claims,
    payload: b.subarray(0, HANDLE_PAYLOAD_BYTES),
    signature: b.subarray(HANDLE_PAYLOAD_BYTES),
  };
}
