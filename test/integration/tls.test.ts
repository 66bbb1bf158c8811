/**
 * TLS and mutual TLS on the tenant listener, with a CA and certificates made here with openssl:
 * a TLS client works and a plaintext one does not; under mutual TLS a client without a
 * certificate and one whose certificate another CA signed are refused. A listener on an address
 * that is not loopback refuses to start without TLS unless explicitly allowed.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type Daemon,
  call,
  newTenant,
  removeStateDir,
  serviceClient,
  startDaemon,
  tempStateDir,
} from '../support/daemon.js';

const dir = mkdtempSync(join(tmpdir(), 'qmk-tls-'));
const file = (name: string) => join(dir, name);

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA: `<name>.key`, `<name>.crt`. */
function ca(name: string): void {
  openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    file(`${name}.key`),
    '-out',
    file(`${name}.crt`),
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
  );
}

/** A certificate for `name` signed by `caName`, for a server (SAN 127.0.0.1) or a client. */
function leaf(name: string, caName: string, usage: 'serverAuth' | 'clientAuth'): void {
  openssl(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    file(`${name}.key`),
    '-out',
    file(`${name}.csr`),
    '-subj',
    `/CN=${name}`,
  );
  const ext = file(`${name}.ext`);
  writeFileSync(
    ext,
    `extendedKeyUsage=${usage}\n${usage === 'serverAuth' ? 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' : ''}`,
  );
  openssl(
    'x509',
    '-req',
    '-in',
    file(`${name}.csr`),
    '-CA',
    file(`${caName}.crt`),
    '-CAkey',
    file(`${caName}.key`),
    '-CAcreateserial',
    '-out',
    file(`${name}.crt`),
    '-days',
    '2',
    '-extfile',
    ext,
  );
}

const pem = (name: string) => readFileSync(file(name));

/** A new tenant's API key (created on the admin socket, which TLS does not touch). */
async function tenantKey(d: Daemon, name: string): Promise<string> {
  const t = await newTenant(d, name);
  t.client.close();
  return t.apiKey;
}

test.before(() => {
  ca('ca');
  ca('other-ca');
  leaf('server', 'ca', 'serverAuth');
  leaf('client', 'ca', 'clientAuth');
  leaf('stranger', 'other-ca', 'clientAuth');
});

test.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

const TLS_ENV = { QMK_TLS_CERT: file('server.crt'), QMK_TLS_KEY: file('server.key') };

function tlsCreds(client?: 'client' | 'stranger'): grpc.ChannelCredentials {
  return client === undefined
    ? grpc.credentials.createSsl(pem('ca.crt'))
    : grpc.credentials.createSsl(pem('ca.crt'), pem(`${client}.key`), pem(`${client}.crt`));
}

/** GetUsage through `creds`: 'ok', or the status code it failed with. */
async function probe(d: Daemon, key: string, creds: grpc.ChannelCredentials): Promise<string> {
  // By name, as clients do: TLS sends no server name for an IP address.
  const address = `localhost:${d.address.slice(d.address.lastIndexOf(':') + 1)}`;
  const client = serviceClient({ address }, 'KernelService', key, creds);
  try {
    await call(client, 'GetUsage', {}, undefined);
    return 'ok';
  } catch (err) {
    return grpc.status[(err as grpc.ServiceError).code] ?? 'unknown';
  } finally {
    client.close();
  }
}

test('TLS: a TLS client works; a plaintext client does not', async () => {
  const d = await startDaemon(tempStateDir(), TLS_ENV);
  try {
    assert.match(d.output(), /"tls":"tls"/);
    const key = await tenantKey(d, 'tls-tenant');
    assert.is(await probe(d, key, tlsCreds()), 'ok');
    assert.is(await probe(d, key, grpc.credentials.createInsecure()), 'UNAVAILABLE');
  } finally {
    await d.stop();
    removeStateDir(d.stateDir);
  }
});

test('mutual TLS: a client certificate of the CA works; none, or one of another CA, is refused', async () => {
  const d = await startDaemon(tempStateDir(), { ...TLS_ENV, QMK_TLS_CLIENT_CA: file('ca.crt') });
  try {
    assert.match(d.output(), /"tls":"mutual"/);
    const key = await tenantKey(d, 'mtls-tenant');
    assert.is(await probe(d, key, tlsCreds('client')), 'ok');
    assert.is(await probe(d, key, tlsCreds()), 'UNAVAILABLE');
    assert.is(await probe(d, key, tlsCreds('stranger')), 'UNAVAILABLE');
    assert.is(await probe(d, key, grpc.credentials.createInsecure()), 'UNAVAILABLE');
  } finally {
    await d.stop();
    removeStateDir(d.stateDir);
  }
});

test('plaintext on an address that is not loopback refuses to start, unless allowed', async () => {
  const stateDir = tempStateDir();
  try {
    let refused = '';
    try {
      const d = await startDaemon(stateDir, { QMK_TEST_LISTEN: '0.0.0.0:0' });
      await d.stop();
    } catch (err) {
      refused = (err as Error).message;
    }
    assert.match(refused, /exited with 1 before listening/);
    assert.match(refused, /0\.0\.0\.0:0 is not a loopback address and TLS is not configured/);
    const d = await startDaemon(stateDir, {
      QMK_TEST_LISTEN: '0.0.0.0:0',
      QMK_ALLOW_INSECURE_LISTEN: '1',
    });
    await d.stop();
  } finally {
    removeStateDir(stateDir);
  }
});

test.run();
