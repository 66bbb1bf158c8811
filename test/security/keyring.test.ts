import { verify as edVerify } from 'node:crypto';
import nacl from 'tweetnacl';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Keyring, type SealedSigningKey, seal, unseal } from '../../src/security/keyring.js';

const master = () => nacl.randomBytes(32);

test('keyring: node:crypto signatures verify with tweetnacl (same Ed25519)', () => {
  const k = new Keyring(master(), []);
  const [rec] = k.bootstrap(1);
  const pub = Buffer.from((rec as { value: SealedSigningKey }).value.publicKey, 'base64url');
  const msg = Buffer.from('payload');
  const sig = k.sign(msg);
  assert.ok(nacl.sign.detached.verify(msg, sig, pub));
  assert.ok(k.verify(1, msg, sig));
  assert.not.ok(k.verify(1, Buffer.from('other'), sig));
  assert.not.ok(k.verify(2, msg, sig));
  void edVerify;
});

test('keyring: sealed keys reopen under the same master key; another master key fails loudly', () => {
  const m = master();
  const k = new Keyring(m, []);
  const records = k.bootstrap(1).map((r) => (r as { value: SealedSigningKey }).value);
  const again = new Keyring(m, records);
  const sig = again.sign(Buffer.from('x'));
  assert.ok(k.verify(1, Buffer.from('x'), sig));
  assert.throws(() => new Keyring(master(), records), /master key does not match/);
  assert.throws(() => unseal(seal(new Uint8Array(32), m), master()), /master key/);
});

test('keyring: rotation → new active key; the old one verifies until its retire time, then is retired', () => {
  const k = new Keyring(master(), []);
  k.bootstrap(0);
  const sig = k.sign(Buffer.from('m'));
  const { active } = k.rotate(1000, 500);
  assert.is(active.keyId, 2);
  assert.is(k.activeKeyId(), 2);
  assert.is(k.keyState(1, 1499), 'ok');
  assert.ok(k.verify(1, Buffer.from('m'), sig));
  assert.is(k.keyState(1, 1500), 'retired');
  assert.is(k.keyState(2, 10 ** 12), 'ok');
  assert.is(k.keyState(9, 0), 'unknown-key');
});

test.run();
