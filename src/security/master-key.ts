/**
 * The operator's master key (the key-encryption key): read from a file of 32 bytes in base64 or
 * hex (a systemd credential, or `<state dir>/master.key` in the development default). Layer:
 * security. It wraps the data keys and seals the signing keys; it never touches a record itself,
 * so a rotation rewraps keys and re-encrypts nothing.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MASTER_KEY_BYTES } from './keyring.js';

export const DEV_MASTER_KEY_FILE = 'master.key';

/** `file`, or the development default in the state directory. */
export function masterKeyPath(file: string | null, stateDir: string): string {
  return file ?? join(stateDir, DEV_MASTER_KEY_FILE);
}

/** @throws Error naming the file when it is missing or not 32 bytes. */
export function readMasterKey(path: string): Uint8Array {
  if (!existsSync(path)) throw new Error(`master key file ${path} does not exist`);
  const text = readFileSync(path, 'utf8').trim();
  const raw = /^[A-Za-z0-9+/=]+$/.test(text)
    ? Buffer.from(text, 'base64')
    : Buffer.from(text, 'hex');
  if (raw.length !== MASTER_KEY_BYTES) {
    throw new Error(`master key file ${path} must hold ${MASTER_KEY_BYTES} bytes (base64 or hex)`);
  }
  return raw;
}
