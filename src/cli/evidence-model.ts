/**
 * What an evidence report is (`qmkctl evidence`): its fields, the signed file around it, the
 * digest the kernel signs, and the check of that signature. Layer: cli (pure: no I/O).
 */
import { createHash, createPublicKey, verify } from 'node:crypto';
import { evidencePayload } from '../kernel/evidence.js';
import { canonicalJson } from '../security/audit-chain.js';
import type { SelfTest } from './evidence-tests.js';

export const EVIDENCE_FORMAT = 'qmk.evidence.v1';

export interface EvidenceReport {
  format: string;
  generated_at: string;
  daemon: Record<string, unknown>;
  qmkctl: { node: string };
  authorization: { method: string; principal: string; roles: string[] }[];
  quotas: Record<string, { weight: number; caps: string[]; quota: Record<string, number> }>;
  self_tests: SelfTest[];
  temporary_tenants: { name: string; tenant_id: string; deleted: boolean }[];
  audit: {
    head: {
      tree_size: number;
      root_hash: string;
      timestamp_unix_ms: number;
      key_id: number;
      signature: string;
    };
    head_signature_valid: boolean;
    previous: { report_sha256: string; tree_size: number; root_hash: string } | null;
    consistency_proof: string[];
    consistency_verified: boolean | null;
  };
  claims: { supported: string[]; not_supported: string[] };
}

/** What is written to the file: the report and the kernel's signature over its SHA-256. */
export interface SignedEvidence {
  report: EvidenceReport;
  signature: {
    algorithm: 'Ed25519';
    key_id: number;
    report_sha256: string;
    signed_payload: string;
    signature: string;
    signed_at_unix_ms: number;
  };
}

/** SHA-256 of the report's canonical JSON (keys sorted, UTF-8): what the kernel signs. */
export function reportDigest(report: EvidenceReport): Buffer {
  return createHash('sha256').update(canonicalJson(report)).digest();
}

/**
 * Checks a signed report against public keys (key id → Ed25519 public key, base64url): the
 * digest is the report's, the payload is the evidence payload of that digest, the signature
 * verifies. Returns what failed, or null.
 */
export function evidenceProblem(
  signed: SignedEvidence,
  publicKeys: ReadonlyMap<number, string>,
): string | null {
  const digest = reportDigest(signed.report);
  if (digest.toString('hex') !== signed.signature.report_sha256)
    return 'the report does not hash to its signed digest';
  const payload = evidencePayload(digest);
  if (!payload.equals(Buffer.from(signed.signature.signed_payload, 'base64'))) {
    return 'the signed payload is not the evidence payload of the digest';
  }
  const key = publicKeys.get(signed.signature.key_id);
  if (key === undefined)
    return `signing key ${signed.signature.key_id} is not one of the daemon's keys`;
  const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: key }, format: 'jwk' });
  return verify(null, payload, publicKey, Buffer.from(signed.signature.signature, 'base64'))
    ? null
    : `the signature does not verify with signing key ${signed.signature.key_id}`;
}
