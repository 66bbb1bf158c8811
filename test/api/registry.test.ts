/**
 * Registries that must stay total: every kernel error code is mapped to a gRPC status and
 * documented in docs/errors.md (and the doc names no other code); every method of every loaded
 * service has an authorization-table entry.
 */
import { readFileSync } from 'node:fs';
import { status } from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AUTHZ_TABLE } from '../../src/api/authz.js';
import { loadPackageDefinition } from '../../src/api/proto.js';
import { GRPC_STATUS } from '../../src/api/status.js';
import { ERROR_CODES } from '../../src/kernel/errors.js';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const documented = new Map(
  [...doc.matchAll(/^\| `([A-Z_]+)` \| ([A-Z_]+) \|/gm)].map((m) => [m[1]!, m[2]!]),
);

test('errors: every code is documented with the status it maps to', () => {
  for (const code of ERROR_CODES) {
    assert.ok(documented.has(code), `${code} missing from docs/errors.md`);
    assert.is(documented.get(code), status[GRPC_STATUS[code]], `${code} documented status`);
  }
});

test('errors: the doc names no code the registry lacks', () => {
  for (const code of documented.keys())
    assert.ok((ERROR_CODES as readonly string[]).includes(code), code);
});

test('authz: every method of every qmk service has an entry; no entry names a missing method', () => {
  const pkg = loadPackageDefinition();
  const paths: string[] = [];
  for (const [name, def] of Object.entries(pkg)) {
    if (!name.startsWith('qmk.') || !name.endsWith('Service')) continue;
    for (const m of Object.values(def as Record<string, { path: string }>)) paths.push(m.path);
  }
  assert.ok(paths.length >= 20, `found ${paths.length} methods`);
  for (const p of paths) assert.ok(AUTHZ_TABLE[p], `${p} has no authorization entry`);
  for (const p of Object.keys(AUTHZ_TABLE).filter((k) => k.startsWith('/qmk.'))) {
    assert.ok(paths.includes(p), `${p} is in the table but not in the protos`);
  }
});

test.run();
