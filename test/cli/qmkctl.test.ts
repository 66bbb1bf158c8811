/**
 * Unit tests of qmkctl (src/cli/qmkctl.ts). `main` runs in-process against a real grpc-js server
 * on a temporary unix socket whose AdminService is a small in-memory fake: that exercises the real
 * wire encoding (proto-loader on both sides) and the real connection path without needing the
 * daemon. The fake records every request so tests can assert what was sent, and that nothing was
 * sent when a usage error must stop the command first. The daemon's own admin behaviour is tested
 * by its integration tests, not here.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadGrpcObject } from '../../src/api/proto.js';
import { formatTable, main, resolveSocketPath } from '../../src/cli/qmkctl.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DIR = mkdtempSync(join(tmpdir(), 'qmkctl-'));
const SOCKET = join(DIR, 'admin.sock');
const CREATED_MS = Date.UTC(2025, 0, 2, 3, 4, 5);

// ---------------------------------------------------------------------------------------------
// In-memory fake of AdminService

interface Req {
  [field: string]: unknown;
}

interface Call {
  method: string;
  request: Req;
}

interface FakeTenant {
  tenant_id: string;
  name: string;
  tier: string;
  weight: number;
  status: string;
  suspend_reason: string;
  quota: Record<string, number>;
  created_at_unix_ms: number;
}

interface FakeKey {
  key_id: string;
  tenant_id: string;
  roles: string[];
  label: string;
  revoked: boolean;
  created_at_unix_ms: number;
}

const calls: Call[] = [];
let tenants = new Map<string, FakeTenant>();
let keys = new Map<string, FakeKey>();
let nextId = 1;

const DEFAULT_QUOTA = {
  qubits_live_max: 64,
  qubits_per_cluster_max: 20,
  state_bytes_max: 16 * 2 ** 20,
  sessions_max: 8,
  session_ttl_seconds_max: 3600,
  gates_per_call_max: 1024,
};

function reset(): void {
  calls.length = 0;
  tenants = new Map();
  keys = new Map();
  nextId = 1;
}

function notFound(what: string): Partial<grpc.StatusObject> {
  return { code: grpc.status.NOT_FOUND, details: `${what} not found` };
}

function findTenant(ref: unknown): FakeTenant | undefined {
  for (const t of tenants.values()) if (t.tenant_id === ref || t.name === ref) return t;
  return undefined;
}

function addTenant(name: string, tier = 'TIER_FREE'): FakeTenant {
  const t: FakeTenant = {
    tenant_id: `t-${nextId++}`,
    name,
    tier,
    weight: 1,
    status: 'TENANT_STATUS_ACTIVE',
    suspend_reason: '',
    quota: { ...DEFAULT_QUOTA },
    created_at_unix_ms: CREATED_MS,
  };
  tenants.set(t.tenant_id, t);
  return t;
}

function addKey(
  tenantId: string,
  roles: string[],
  label: string,
): {
  key: FakeKey;
  secret: string;
} {
  const key: FakeKey = {
    key_id: `k-${nextId++}`,
    tenant_id: tenantId,
    roles: roles.length === 0 ? ['ROLE_TENANT_ADMIN'] : roles,
    label,
    revoked: false,
    created_at_unix_ms: CREATED_MS,
  };
  keys.set(key.key_id, key);
  return { key, secret: `qmk_secret_${key.key_id}_Zx9` };
}

type Handler = (request: Req) => unknown;

/** Each method: record the request, then answer or fail with the status object thrown. */
const HANDLERS: Record<string, Handler> = {
  CreateTenant(r) {
    const tier = r.tier === 'TIER_UNSPECIFIED' ? 'TIER_FREE' : String(r.tier);
    const t = addTenant(String(r.name), tier);
    if (typeof r.weight === 'number' && r.weight > 0) t.weight = r.weight;
    const { key, secret } = addKey(t.tenant_id, r.roles as string[], '');
    return { tenant: t, key, api_key: secret };
  },
  GetTenant(r) {
    const t = findTenant(r.tenant);
    if (!t) throw notFound(`tenant ${String(r.tenant)}`);
    return { tenant: t };
  },
  ListTenants(r) {
    // Pages of two, so a listing of three tenants takes two calls.
    const all = [...tenants.values()];
    const start = r.page_token === '' ? 0 : Number(r.page_token);
    const next = start + 2 < all.length ? String(start + 2) : '';
    return { tenants: all.slice(start, start + 2), next_page_token: next };
  },
  UpdateTenant(r) {
    const t = findTenant(r.tenant);
    if (!t) throw notFound(`tenant ${String(r.tenant)}`);
    if (r.tier !== 'TIER_UNSPECIFIED') t.tier = String(r.tier);
    if (typeof r.weight === 'number' && r.weight > 0) t.weight = r.weight;
    const quota = r.quota as Record<string, number> | null;
    if (quota) for (const [k, v] of Object.entries(quota)) if (v > 0) t.quota[k] = v;
    return { tenant: t };
  },
  SuspendTenant(r) {
    const t = findTenant(r.tenant);
    if (!t) throw notFound(`tenant ${String(r.tenant)}`);
    t.status = 'TENANT_STATUS_SUSPENDED';
    t.suspend_reason = String(r.reason);
    return { tenant: t };
  },
  ResumeTenant(r) {
    const t = findTenant(r.tenant);
    if (!t) throw notFound(`tenant ${String(r.tenant)}`);
    t.status = 'TENANT_STATUS_ACTIVE';
    t.suspend_reason = '';
    return { tenant: t };
  },
  DeleteTenant(r) {
    const t = findTenant(r.tenant);
    if (!t) throw notFound(`tenant ${String(r.tenant)}`);
    tenants.delete(t.tenant_id);
    let revoked = 0;
    for (const k of keys.values()) if (k.tenant_id === t.tenant_id && !k.revoked) revoked++;
    return { sessions_closed: 3, keys_revoked: revoked, data_key_destroyed: true };
  },
  CreateApiKey(r) {
    const t = findTenant(r.tenant);
    if (!t) throw notFound(`tenant ${String(r.tenant)}`);
    const { key, secret } = addKey(t.tenant_id, r.roles as string[], String(r.label));
    return { key, api_key: secret };
  },
  ListApiKeys(r) {
    const t = findTenant(r.tenant);
    if (!t) throw notFound(`tenant ${String(r.tenant)}`);
    return { keys: [...keys.values()].filter((k) => k.tenant_id === t.tenant_id) };
  },
  RevokeApiKey(r) {
    const key = keys.get(String(r.key_id));
    if (!key) throw notFound(`key ${String(r.key_id)}`);
    key.revoked = true;
    return { key };
  },
  RotateSigningKey() {
    const old = {
      key_id: 1,
      public_key: 'b2xkLWtleQ',
      active: false,
      created_at_unix_ms: CREATED_MS,
      retire_at_unix_ms: CREATED_MS + 86_400_000,
      retired: false,
    };
    const active = {
      key_id: 2,
      public_key: 'bmV3LWtleQ',
      active: true,
      created_at_unix_ms: CREATED_MS + 1000,
      retire_at_unix_ms: 0,
      retired: false,
    };
    return { active, keys: [old, active] };
  },
  GetStatus() {
    return {
      version: '0.1.0',
      started_at_unix_ms: Date.now() - 3_720_000,
      engine: 'js',
      pool_threads: 4,
      tenants: tenants.size,
      sessions: 5,
      qubits: 12,
      clusters: 3,
      audit_seq: 42,
      audit_head: 'ab12cd',
      signing_key_id: 2,
      schema_version: 1,
      state_dir: '/var/lib/qmkd',
      tenant_address: '0.0.0.0:7443',
      storage_free_bytes: 3 * 1024 ** 3 + 200 * 1024 ** 2,
      storage_free_min_bytes: 64 * 1024 ** 2,
      pool_threads_busy: 3,
      audit_tree_size: 43,
      audit_tree_root: 'c0ffee',
      draining: true,
    };
  },
};

function implementation(): grpc.UntypedServiceImplementation {
  const impl: grpc.UntypedServiceImplementation = {};
  for (const [method, handler] of Object.entries(HANDLERS)) {
    impl[method] = (call: grpc.ServerUnaryCall<Req, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      calls.push({ method, request: call.request });
      try {
        cb(null, handler(call.request));
      } catch (e) {
        cb(e as Partial<grpc.StatusObject>);
      }
    };
  }
  return impl;
}

const server = new grpc.Server();

test.before(async () => {
  server.addService(loadGrpcObject().AdminService.service, implementation());
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix:${SOCKET}`, grpc.ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    );
  });
});

test.before.each(reset);

test.after(async () => {
  await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  rmSync(DIR, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Helpers

interface Result {
  code: number;
  out: string;
  err: string;
}

async function run(...argv: string[]): Promise<Result> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['--socket', SOCKET, ...argv], {
    out: (s) => out.push(s),
    err: (s) => err.push(s),
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

function lastRequest(method: string): Req {
  const found = calls.filter((c) => c.method === method).at(-1);
  assert.ok(found, `no ${method} call recorded`);
  return found.request;
}

/** Runs a Node script of the repo as a separate process (for the bin shim and direct runs). */
function spawnNode(args: string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, out, err }));
  });
}

// ---------------------------------------------------------------------------------------------
// Tests

test('help: --help or `help` → usage on stdout, exit 0, no call', async () => {
  for (const argv of [['--help'], ['help'], ['tenant', 'create', '-h']]) {
    const r = await run(...argv);
    assert.is(r.code, 0, argv.join(' '));
    assert.match(r.out, /^qmkctl: operator CLI/);
    assert.match(r.out, /tenant create NAME/);
    assert.match(r.out, /signing-key rotate/);
  }
  assert.is(calls.length, 0);
});

test('no command: empty argv → usage on stderr, exit 2', async () => {
  const r = await run();
  assert.is(r.code, 2);
  assert.is(r.out, '');
  assert.match(r.err, /Usage:/);
});

test('tenant create: human output → tenant table, key table, secret printed once', async () => {
  const r = await run(
    'tenant',
    'create',
    'acme',
    '--tier',
    'pro',
    '--weight',
    '4',
    '--role',
    'researcher',
    '--role',
    'domain_scientist',
  );
  assert.is(r.code, 0, r.err);
  const lines = r.out.split('\n');
  assert.match(lines[0] ?? '', /^TENANT_ID\s+NAME\s+TIER\s+WEIGHT\s+STATUS\s+CREATED$/);
  assert.match(lines[1] ?? '', /^t-1\s+acme\s+pro\s+4\s+active\s+2025-01-02T03:04:05Z$/);
  assert.match(r.out, /^KEY_ID\s+TENANT_ID\s+ROLES\s+STATUS\s+LABEL\s+CREATED$/m);
  assert.match(r.out, /^k-2\s+t-1\s+researcher,domain_scientist\s+active/m);
  assert.match(r.out, /shown once — store it now/);
  assert.is(count(r.out, 'qmk_secret_k-2_Zx9'), 1);
  assert.ok(!r.out.includes('TIER_') && !r.out.includes('ROLE_'), 'enum prefixes stripped');
  const req = lastRequest('CreateTenant');
  assert.equal(req, {
    name: 'acme',
    tier: 'TIER_PRO',
    weight: 4,
    roles: ['ROLE_RESEARCHER', 'ROLE_DOMAIN_SCIENTIST'],
  });
});

test('tenant create: no --tier/--role → tier left to the daemon, roles empty', async () => {
  const r = await run('tenant', 'create', 'lab');
  assert.is(r.code, 0, r.err);
  assert.equal(lastRequest('CreateTenant'), {
    name: 'lab',
    tier: 'TIER_UNSPECIFIED',
    weight: 0,
    roles: [],
  });
});

test('tenant create: --json before the command → one JSON object with all fields', async () => {
  const r = await run('--json', 'tenant', 'create', 'acme', '--tier', 'enterprise');
  assert.is(r.code, 0, r.err);
  const res = JSON.parse(r.out) as {
    tenant: { name: string; tier: string; quota: { sessions_max: number } };
    key: { key_id: string; roles: string[] };
    api_key: string;
  };
  assert.is(res.tenant.name, 'acme');
  assert.is(res.tenant.tier, 'TIER_ENTERPRISE');
  assert.is(res.tenant.quota.sessions_max, 8);
  assert.is(res.key.key_id, 'k-2');
  assert.equal(res.key.roles, ['ROLE_TENANT_ADMIN']);
  assert.is(res.api_key, 'qmk_secret_k-2_Zx9');
});

test('tenant list: three tenants over two pages → header and three aligned rows', async () => {
  addTenant('alpha', 'TIER_PRO');
  addTenant('beta-lab');
  addTenant('gamma', 'TIER_ENTERPRISE');
  const r = await run('tenant', 'list');
  assert.is(r.code, 0, r.err);
  const lines = r.out.split('\n');
  assert.is(lines.length, 4);
  const header = lines[0] ?? '';
  assert.match(header, /^TENANT_ID\s+NAME\s+TIER\s+WEIGHT\s+STATUS\s+CREATED$/);
  assert.match(lines[1] ?? '', /^t-1\s+alpha\s+pro\s+1\s+active/);
  assert.match(lines[2] ?? '', /^t-2\s+beta-lab\s+free\s+1\s+active/);
  assert.match(lines[3] ?? '', /^t-3\s+gamma\s+enterprise\s+1\s+active/);
  // Columns line up: each row's tier starts where the TIER header does.
  const tierAt = header.indexOf('TIER');
  assert.is(lines[3]?.indexOf('enterprise'), tierAt);
  assert.is(lines[1]?.indexOf('pro'), tierAt);
  assert.equal(
    calls.map((c) => c.request.page_token),
    ['', '2'],
  );
});

test('tenant list: --json → one object holding every page', async () => {
  addTenant('alpha');
  addTenant('beta');
  addTenant('gamma');
  const r = await run('tenant', 'list', '--json');
  assert.is(r.code, 0, r.err);
  const res = JSON.parse(r.out) as { tenants: { name: string }[]; next_page_token: string };
  assert.equal(
    res.tenants.map((t) => t.name),
    ['alpha', 'beta', 'gamma'],
  );
  assert.is(res.next_page_token, '');
});

test('tenant list: no tenants → "no tenants", exit 0', async () => {
  const r = await run('tenant', 'list');
  assert.is(r.code, 0, r.err);
  assert.is(r.out, 'no tenants');
});

test('tenant show: existing tenant → detail view with quota under flag names', async () => {
  addTenant('acme', 'TIER_PRO');
  const r = await run('tenant', 'show', 'acme');
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /^name\s+acme$/m);
  assert.match(r.out, /^tier\s+pro$/m);
  assert.match(r.out, /^ {2}sessions-max\s+8$/m);
  assert.match(r.out, /^ {2}state-bytes-max\s+16777216 \(16 MiB\)$/m);
  assert.equal(lastRequest('GetTenant'), { tenant: 'acme' });
});

test('tenant show: daemon answers NOT_FOUND → `error: NOT_FOUND: …`, exit 1', async () => {
  const r = await run('tenant', 'show', 'ghost');
  assert.is(r.code, 1);
  assert.is(r.out, '');
  assert.is(r.err, 'error: NOT_FOUND: tenant ghost not found');
});

test('tenant suspend: --reason → reason sent, status shown lowercase with reason', async () => {
  addTenant('acme');
  const r = await run('tenant', 'suspend', 'acme', '--reason', 'unpaid invoice');
  assert.is(r.code, 0, r.err);
  assert.equal(lastRequest('SuspendTenant'), { tenant: 'acme', reason: 'unpaid invoice' });
  assert.match(r.out, /^status\s+suspended \(reason: unpaid invoice\)$/m);
  const resumed = await run('tenant', 'resume', 'acme');
  assert.is(resumed.code, 0, resumed.err);
  assert.match(resumed.out, /^status\s+active$/m);
});

test('tenant delete: no --yes → exit 2, refusal on stderr, no call made', async () => {
  addTenant('acme');
  const r = await run('tenant', 'delete', 'acme');
  assert.is(r.code, 2);
  assert.match(r.err, /refusing to delete tenant 'acme' without --yes/);
  assert.is(calls.length, 0);
  assert.ok(findTenant('acme'));
});

test('tenant delete: --yes → DeleteTenant sent, summary printed, exit 0', async () => {
  const t = addTenant('acme');
  addKey(t.tenant_id, [], 'ci');
  const r = await run('tenant', 'delete', 'acme', '--yes');
  assert.is(r.code, 0, r.err);
  assert.equal(lastRequest('DeleteTenant'), { tenant: 'acme' });
  assert.is(
    r.out,
    'deleted tenant acme: 3 session(s) closed, 1 key(s) revoked, data key destroyed',
  );
});

test('tenant update: quota flags → the matching Quota fields, others zero', async () => {
  addTenant('acme');
  const r = await run(
    'tenant',
    'update',
    'acme',
    '--tier',
    'TIER_PRO',
    '--weight',
    '7',
    '--qubits-live-max',
    '32',
    '--qubits-per-cluster-max',
    '18',
    '--state-bytes-max',
    '4194304',
    '--sessions-max',
    '2',
    '--session-ttl-seconds-max',
    '600',
    '--gates-per-call-max',
    '256',
    '--jobs-queued-max',
    '50',
    '--jobs-running-max',
    '3',
    '--job-runtime-seconds-max',
    '90',
    '--program-nodes-max',
    '5000',
    '--shots-per-job-max',
    '20000',
    '--api-calls-per-minute',
    '600',
    '--jobs-per-minute',
    '30',
    '--allocations-per-minute',
    '50',
    '--measurements-per-second',
    '500',
    '--calls-in-flight-max',
    '9',
    '--anomaly-window-seconds',
    '120',
    '--anomaly-firewall-refusals-max',
    '4',
    '--anomaly-denials-max',
    '40',
    '--anomaly-quota-refusals-max',
    '400',
    '--anomaly-rate-refusals-max',
    '4000',
  );
  assert.is(r.code, 0, r.err);
  assert.equal(lastRequest('UpdateTenant'), {
    tenant: 'acme',
    tier: 'TIER_PRO',
    weight: 7,
    quota: {
      qubits_live_max: 32,
      qubits_per_cluster_max: 18,
      state_bytes_max: 4194304,
      sessions_max: 2,
      session_ttl_seconds_max: 600,
      gates_per_call_max: 256,
      jobs_queued_max: 50,
      jobs_running_max: 3,
      job_runtime_seconds_max: 90,
      program_nodes_max: 5000,
      shots_per_job_max: 20000,
      api_calls_per_minute: 600,
      jobs_per_minute: 30,
      allocations_per_minute: 50,
      measurements_per_second: 500,
      calls_in_flight_max: 9,
      anomaly_window_seconds: 120,
      anomaly_firewall_refusals_max: 4,
      anomaly_denials_max: 40,
      anomaly_quota_refusals_max: 400,
      anomaly_rate_refusals_max: 4000,
    },
  });
  const one = await run('tenant', 'update', 'acme', '--sessions-max', '3');
  assert.is(one.code, 0, one.err);
  assert.equal(lastRequest('UpdateTenant'), {
    tenant: 'acme',
    tier: 'TIER_UNSPECIFIED',
    weight: 0,
    quota: {
      qubits_live_max: 0,
      qubits_per_cluster_max: 0,
      state_bytes_max: 0,
      sessions_max: 3,
      session_ttl_seconds_max: 0,
      gates_per_call_max: 0,
      jobs_queued_max: 0,
      jobs_running_max: 0,
      job_runtime_seconds_max: 0,
      program_nodes_max: 0,
      shots_per_job_max: 0,
      api_calls_per_minute: 0,
      jobs_per_minute: 0,
      allocations_per_minute: 0,
      measurements_per_second: 0,
      calls_in_flight_max: 0,
      anomaly_window_seconds: 0,
      anomaly_firewall_refusals_max: 0,
      anomaly_denials_max: 0,
      anomaly_quota_refusals_max: 0,
      anomaly_rate_refusals_max: 0,
    },
  });
  assert.match(one.out, /^ {2}sessions-max\s+3$/m);
});

test('tenant update: only --weight → quota left unset on the wire', async () => {
  addTenant('acme');
  const r = await run('tenant', 'update', 'acme', '--weight', '9');
  assert.is(r.code, 0, r.err);
  assert.is(lastRequest('UpdateTenant').quota, null);
});

test('tenant update: no change flags → exit 2, no call', async () => {
  const r = await run('tenant', 'update', 'acme');
  assert.is(r.code, 2);
  assert.match(r.err, /needs --tier, --weight or a quota flag/);
  assert.is(calls.length, 0);
});

test('number flags: not a non-negative integer or too large → exit 2 naming the flag', async () => {
  const bad: string[][] = [
    ['tenant', 'update', 'acme', '--sessions-max', 'ten'],
    ['tenant', 'update', 'acme', '--sessions-max=-1'],
    ['tenant', 'update', 'acme', '--sessions-max', '4294967296'],
    ['tenant', 'create', 'acme', '--weight', '1.5'],
  ];
  for (const argv of bad) {
    const r = await run(...argv);
    assert.is(r.code, 2, argv.join(' '));
    assert.match(r.err, /--(sessions-max|weight) wants an integer/);
  }
  assert.is(calls.length, 0);
});

test('enum flags: unknown tier or role → exit 2 listing the valid ones, no call', async () => {
  const tier = await run('tenant', 'create', 'acme', '--tier', 'gold');
  assert.is(tier.code, 2);
  assert.match(tier.err, /unknown tier 'gold' \(expected one of: free, pro, enterprise\)/);
  const role = await run('key', 'create', 'acme', '--role', 'root');
  assert.is(role.code, 2);
  assert.match(role.err, /unknown role 'root'/);
  assert.is(calls.length, 0);
});

test('unknown command: `frobnicate` or `tenant frob` → exit 2 naming it', async () => {
  const top = await run('frobnicate');
  assert.is(top.code, 2);
  assert.match(top.err, /unknown command 'frobnicate'/);
  const sub = await run('tenant', 'frob', 'x');
  assert.is(sub.code, 2);
  assert.match(sub.err, /unknown command 'tenant frob'/);
  const bare = await run('key');
  assert.is(bare.code, 2);
  assert.match(bare.err, /'key' needs a subcommand/);
  assert.is(calls.length, 0);
});

test('unknown flag: --bogus → exit 2 naming it, no call', async () => {
  const r = await run('tenant', 'list', '--bogus');
  assert.is(r.code, 2);
  assert.is(r.err, 'error: unknown flag --bogus');
  assert.is(calls.length, 0);
});

test('flag of another command: `tenant list --yes` → exit 2 naming flag and command', async () => {
  const r = await run('tenant', 'list', '--yes');
  assert.is(r.code, 2);
  assert.match(r.err, /flag --yes does not apply to 'tenant list'/);
});

test('arguments: missing or extra positional → exit 2 naming it', async () => {
  const missing = await run('tenant', 'show');
  assert.is(missing.code, 2);
  assert.match(missing.err, /'tenant show' needs TENANT/);
  const extra = await run('status', 'now');
  assert.is(extra.code, 2);
  assert.match(extra.err, /unexpected argument 'now' to 'status'/);
});

test('string flag without value: `--label --json` → exit 2, not a label of "--json"', async () => {
  const r = await run('key', 'create', 'acme', '--label', '--json');
  assert.is(r.code, 2);
  assert.match(r.err, /flag --label needs a value/);
  assert.is(calls.length, 0);
});

test('key create: roles, label → key table, secret printed once', async () => {
  addTenant('acme');
  const r = await run(
    'key',
    'create',
    'acme',
    '--role',
    'researcher,tenant-admin',
    '--label',
    'ci',
  );
  assert.is(r.code, 0, r.err);
  assert.equal(lastRequest('CreateApiKey'), {
    tenant: 'acme',
    roles: ['ROLE_RESEARCHER', 'ROLE_TENANT_ADMIN'],
    label: 'ci',
  });
  assert.match(r.out, /^KEY_ID\s+TENANT_ID\s+ROLES\s+STATUS\s+LABEL\s+CREATED$/m);
  assert.match(r.out, /^k-2\s+t-1\s+researcher,tenant_admin\s+active\s+ci\s+/m);
  assert.match(r.out, /shown once — store it now/);
  assert.is(count(r.out, 'qmk_secret_k-2_Zx9'), 1);
});

test('key list and key revoke: keys of a tenant → table; revoked key shows revoked', async () => {
  const t = addTenant('acme');
  const { key } = addKey(t.tenant_id, ['ROLE_RESEARCHER'], 'notebook');
  addKey(t.tenant_id, [], '');
  const revoke = await run('key', 'revoke', key.key_id);
  assert.is(revoke.code, 0, revoke.err);
  assert.equal(lastRequest('RevokeApiKey'), { key_id: key.key_id });
  const list = await run('key', 'list', 'acme');
  assert.is(list.code, 0, list.err);
  const lines = list.out.split('\n');
  assert.is(lines.length, 3);
  assert.match(lines[1] ?? '', /^k-2\s+t-1\s+researcher\s+revoked\s+notebook/);
  assert.match(lines[2] ?? '', /^k-3\s+t-1\s+tenant_admin\s+active\s+-/);
});

test('signing-key rotate: flags → grace_seconds, retire_previous_now sent; keys', async () => {
  const r = await run('signing-key', 'rotate', '--grace-seconds', '600');
  assert.is(r.code, 0, r.err);
  assert.equal(lastRequest('RotateSigningKey'), { grace_seconds: 600, retire_previous_now: false });
  assert.match(r.out, /^active signing key: 2$/m);
  assert.match(r.out, /^1\s+retiring\s+2025-01-02T03:04:05Z\s+2025-01-03T03:04:05Z\s+b2xkLWtleQ$/m);
  assert.match(r.out, /^2\s+active\s+2025-01-02T03:04:06Z\s+-\s+bmV3LWtleQ$/m);
  const now = await run('signing-key', 'rotate', '--retire-previous-now');
  assert.is(now.code, 0, now.err);
  assert.equal(lastRequest('RotateSigningKey'), { grace_seconds: 0, retire_previous_now: true });
  const both = await run('signing-key', 'rotate', '--grace-seconds', '5', '--retire-previous-now');
  assert.is(both.code, 2);
});

test('status: daemon status → aligned key/value lines with uptime', async () => {
  const r = await run('status');
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /^version\s+0\.1\.0$/m);
  assert.match(r.out, /^started\s+\S+Z \(up 1h 2m\)$/m);
  assert.match(r.out, /^tenant_address\s+0\.0\.0\.0:7443$/m);
  assert.match(r.out, /^storage_free\s+3\.2GiB$/m);
  assert.match(r.out, /^storage_free_min\s+64MiB$/m);
  assert.match(r.out, /^pool_threads_busy\s+3$/m);
  assert.match(r.out, /^audit_tree_size\s+43$/m);
  assert.match(r.out, /^audit_tree_root\s+c0ffee$/m);
  assert.match(r.out, /^draining\s+yes$/m);
  const valueColumn = (line: string) => line.search(/\s\S+$/);
  const lines = r.out.split('\n').filter((l) => !l.startsWith('started'));
  assert.ok(
    lines.every((l) => valueColumn(l) === valueColumn(lines[0] ?? '')),
    'values aligned',
  );
});

test('missing socket: no file at --socket → exit 1 naming the path and the daemon', async () => {
  const missing = join(DIR, 'nope', 'admin.sock');
  const err: string[] = [];
  const io = { out: () => {}, err: (s: string) => err.push(s) };
  const code = await main(['--socket', missing, 'status'], io);
  assert.is(code, 1);
  const text = err.join('\n');
  assert.ok(text.includes(missing), text);
  assert.match(text, /daemon may not be running/);
});

test('resolveSocketPath: --socket, then QMK_ADMIN_SOCKET, then QMK_STATE_DIR, then ./.qmk-state', () => {
  const env = { QMK_ADMIN_SOCKET: '/run/a.sock', QMK_STATE_DIR: '/var/lib/qmk' };
  assert.is(resolveSocketPath('/x.sock', env, '/cwd'), '/x.sock');
  assert.is(resolveSocketPath('rel.sock', env, '/cwd'), '/cwd/rel.sock');
  assert.is(resolveSocketPath(undefined, env, '/cwd'), '/run/a.sock');
  assert.is(resolveSocketPath(undefined, { QMK_STATE_DIR: 'st' }, '/cwd'), '/cwd/st/admin.sock');
  assert.is(
    resolveSocketPath(undefined, { QMK_ADMIN_SOCKET: '' }, '/cwd'),
    '/cwd/.qmk-state/admin.sock',
  );
  assert.is(resolveSocketPath(undefined, {}, '/cwd'), '/cwd/.qmk-state/admin.sock');
});

test('formatTable: ragged widths → columns padded to the widest cell, no trailing spaces', () => {
  assert.is(
    formatTable(
      ['A', 'LONG_HEADER'],
      [
        ['wide-cell', 'x'],
        ['y', ''],
      ],
    ),
    'A          LONG_HEADER\nwide-cell  x\ny',
  );
});

test('bin shim: `node bin/qmkctl.mjs --help` → usage printed once, exit 0', async () => {
  const r = await spawnNode(['bin/qmkctl.mjs', '--help']);
  assert.is(r.code, 0, r.err);
  assert.is(count(r.out, 'Usage:'), 1);
});

test('bin shim: gRPC error through the real process → exit status 1 passed through', async () => {
  const r = await spawnNode(['bin/qmkctl.mjs', '--socket', SOCKET, 'tenant', 'show', 'ghost']);
  assert.is(r.code, 1);
  assert.is(r.err.trim(), 'error: NOT_FOUND: tenant ghost not found');
});

test('direct run: `node --import tsx src/cli/qmkctl.ts` bad flag → main runs once, exit 2', async () => {
  const r = await spawnNode(['--import', 'tsx', 'src/cli/qmkctl.ts', '--bogus']);
  assert.is(r.code, 2);
  assert.is(r.err.trim(), 'error: unknown flag --bogus');
});

test.run();
