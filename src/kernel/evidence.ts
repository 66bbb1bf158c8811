/**
 * What the kernel signs for an isolation evidence report (`qmkctl evidence`): a domain prefix and
 * the report's SHA-256, 48 bytes in all, so the signature can never be mistaken for a handle's
 * (70-byte payloads) or a tree head's (50 bytes). Layer: kernel (pure).
 */
import { invalid } from './errors.js';

/** "qmk-evidence-v1" and a zero byte. */
export const EVIDENCE_DOMAIN = Buffer.from('qmk-evidence-v1\0', 'latin1');

/** The bytes signed for a report whose SHA-256 is `digest`. @throws INVALID_ARGUMENT */
export function evidencePayload(digest: Uint8Array): Buffer {
  if (digest.length !== 32)
    throw invalid('report_sha256', `must be 32 bytes, got ${digest.length}`);
  return Buffer.concat([EVIDENCE_DOMAIN, digest]);
}
