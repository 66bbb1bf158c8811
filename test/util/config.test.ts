/**
 * The daemon's configuration: TLS settings from flags, environment or systemd credentials, and
 * the refusal of plaintext beyond loopback.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { anomalyResponses, isLoopback, loadConfig } from '../../src/config.js';

test('loopback: 127.0.0.0/8, ::1 and localhost are; anything else is not', () => {
  for (const a of ['127.0.0.1:1', '127.9.8.7:0', '[::1]:50051', 'localhost:1'])
    assert.ok(isLoopback(a), a);
  for (const a of ['0.0.0.0:1', '[::]:1', '10.0.0.1:50051', 'example.org:443', '128.0.0.1:1'])
    assert.not.ok(isLoopback(a), a);
});

test('plaintext beyond loopback is refused unless allowed', () => {
  assert.throws(() => loadConfig(['--listen', '0.0.0.0:50051'], {}), /not a loopback address/);
  const c = loadConfig(['--listen', '0.0.0.0:50051', '--allow-insecure-listen'], {});
  assert.is(c.allowInsecureListen, true);
  assert.is(loadConfig(['--listen', '0.0.0.0:1'], { QMK_ALLOW_INSECURE_LISTEN: '1' }).tls, null);
});

test('TLS: certificate and key go together; a client CA needs both', () => {
  assert.throws(() => loadConfig(['--tls-cert', 'c.pem'], {}), /tls-cert: needs --tls-key/);
  assert.throws(() => loadConfig(['--tls-key', 'k.pem'], {}), /tls-key: needs --tls-cert/);
  assert.throws(() => loadConfig(['--tls-client-ca', 'ca.pem'], {}), /tls-client-ca: needs/);
  const c = loadConfig(
    ['--tls-cert', '/x/c.pem', '--tls-key', '/x/k.pem', '--listen', '0.0.0.0:1'],
    {},
  );
  assert.equal(c.tls, { certFile: '/x/c.pem', keyFile: '/x/k.pem', clientCaFile: null });
});

test('TLS from systemd credentials when present', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qmk-cred-'));
  try {
    for (const name of ['tls-cert', 'tls-key', 'tls-client-ca'])
      writeFileSync(join(dir, name), 'x');
    const c = loadConfig([], { CREDENTIALS_DIRECTORY: dir });
    assert.equal(c.tls, {
      certFile: join(dir, 'tls-cert'),
      keyFile: join(dir, 'tls-key'),
      clientCaFile: join(dir, 'tls-client-ca'),
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('anomaly responses: TYPE=RESPONSE pairs; unknown names and auth throttling refused', () => {
  assert.equal(anomalyResponses(''), {});
  assert.equal(anomalyResponses('firewall_probing=record, rate_flooding=suspend'), {
    firewall_probing: 'record',
    rate_flooding: 'suspend',
  });
  assert.throws(
    () => anomalyResponses('firewall=suspend'),
    /"firewall=suspend" is not TYPE=RESPONSE/,
  );
  assert.throws(
    () => anomalyResponses('denial_probing=ban'),
    /responses: record, throttle, suspend/,
  );
  assert.throws(() => anomalyResponses('denial_probing'), /is not TYPE=RESPONSE/);
  assert.throws(
    () => anomalyResponses('auth_failures=suspend'),
    /auth_failures can only be recorded/,
  );
  const c = loadConfig(
    ['--anomaly-responses', 'quota_pressure=throttle', '--anomaly-throttle-seconds', '30'],
    {},
  );
  assert.equal(c.anomalyResponses, { quota_pressure: 'throttle' });
  assert.is(c.anomalyThrottleSeconds, 30);
  assert.is(loadConfig([], {}).anomalyThrottleSeconds, 300);
});

test.run();
