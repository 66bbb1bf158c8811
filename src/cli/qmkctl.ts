/**
 * qmkctl: the operator CLI of qmkd. It manages tenants, API keys and signing keys and reads the
 * daemon's status through `AdminService` on the daemon's local admin unix socket.
 * Layer: cli. Imports only src/api/proto.ts (the wire contract) and libraries; it never reaches
 * into the kernel or the store, so everything it can do is exactly what the admin API allows.
 *
 * Why it is built this way:
 * - `main(argv, io)` returns the exit code instead of exiting, so tests run it in-process against
 *   a fake server and read what it printed; `bin/qmkctl.mjs` and direct execution wrap it.
 * - Every usage error is found before the first RPC (the client connects lazily on the first
 *   call), so a typo never half-runs a command and `tenant delete` without --yes sends nothing.
 * - Flags are parsed with node:util `parseArgs` in non-strict mode and checked here against the
 *   command's own flag list: that lets us name the offending flag and refuse flags that exist but
 *   mean nothing to the command, instead of silently ignoring them.
 * - `--json` prints the daemon's response untouched for scripts; the human form is aligned
 *   tables with enum prefixes stripped (TIER_PRO → pro).
 * - Exit codes: 0 success, 1 the daemon refused or could not be reached, 2 usage error.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import type { WireQuota } from '../api/convert.js';
import { loadGrpcObject } from '../api/proto.js';

/** Where output goes. Each call is one line or block of text without its trailing newline. */
export interface Io {
  out(s: string): void;
  err(s: string): void;
}

/** Every RPC gets this long; an admin call that takes longer means a wedged daemon. */
export const CALL_DEADLINE_MS = 10_000;

const UINT32_MAX = 0xffff_ffff;

export const USAGE = `qmkctl: operator CLI of the qmkd quantum-kernel daemon (via its admin socket)

Usage:
  qmkctl [--socket PATH] [--json] COMMAND [ARGS] [FLAGS]

Tenants (TENANT is a tenant id or name):
  tenant create NAME [--tier free|pro|enterprise] [--weight N] [--role ROLE ...]
                              create a tenant and its first API key (the key is shown once)
  tenant list                 list all tenants
  tenant show TENANT          show a tenant with its effective quota
  tenant update TENANT [--tier T] [--weight N] [QUOTA FLAGS]
                              change the tier, the weight or quota overrides
  tenant suspend TENANT [--reason TEXT]
  tenant resume TENANT
  tenant delete TENANT --yes  delete a tenant: closes its sessions, revokes its keys

API keys:
  key create TENANT [--role ROLE ...] [--label TEXT]
                              create an API key (the key is shown once)
  key list TENANT
  key revoke KEY_ID

Signing keys:
  signing-key rotate [--grace-seconds N] [--retire-previous-now]
                              make a new key active; the previous one verifies for the grace
                              period (0 or unset: the longest session lifetime)

Daemon and state:
  status                      version, uptime, load, free space and audit head of the daemon
  audit verify                re-hash the whole audit chain from its first record; exit 1 if it
                              does not verify
  backup PATH [--no-compact]  a hot, consistent copy of the state into the new directory PATH
                              (on the daemon's host): data file, data keys, marker; not the
                              master key. Start a daemon on PATH to restore it
  master-key rotate --new-key-file FILE
                              rewrap the data keys under the key in FILE (on the daemon's host);
                              replaces the development key file, else replace your key file
                              before the next start

Quota flags of tenant update (a flag not given leaves that quota as it is):
  --qubits-live-max N   --qubits-per-cluster-max N   --state-bytes-max N
  --sessions-max N      --session-ttl-seconds-max N  --gates-per-call-max N
  --jobs-queued-max N   --jobs-running-max N         --job-runtime-seconds-max N
  --program-nodes-max N --shots-per-job-max N
  --api-calls-per-minute N   --jobs-per-minute N   --allocations-per-minute N
  --measurements-per-second N --calls-in-flight-max N

Roles: tenant_admin, researcher, domain_scientist (repeat --role or separate with commas;
none given: tenant_admin). Weight 0 or unset: the tier's weight.

Global flags:
  --socket PATH   admin socket; default $QMK_ADMIN_SOCKET, else $QMK_STATE_DIR/admin.sock,
                  else ./.qmk-state/admin.sock
  --json          print the daemon's raw response as one JSON object
  -h, --help      print this help

Exit status: 0 success, 1 the daemon returned an error or could not be reached, 2 usage error.`;

// ---------------------------------------------------------------------------------------------
// Wire shapes. proto-loader decodes with defaults, enums as names and 64-bit ints as numbers
// (src/api/proto.ts); these mirror only the fields the human output reads. Unset message fields
// decode as null.

type Quota = WireQuota;

interface Tenant {
  tenant_id: string;
  name: string;
  tier: string;
  weight: number;
  status: string;
  suspend_reason: string;
  quota: Quota | null;
  created_at_unix_ms: number;
}

interface ApiKey {
  key_id: string;
  tenant_id: string;
  roles: string[];
  label: string;
  revoked: boolean;
  created_at_unix_ms: number;
}

interface SigningKey {
  key_id: number;
  public_key: string;
  active: boolean;
  created_at_unix_ms: number;
  retire_at_unix_ms: number;
  retired: boolean;
}

interface TenantResponse {
  tenant: Tenant | null;
}

interface CreateTenantResponse {
  tenant: Tenant | null;
  key: ApiKey | null;
  api_key: string;
}

interface ListTenantsResponse {
  tenants: Tenant[];
  next_page_token: string;
}

interface DeleteTenantResponse {
  sessions_closed: number;
  keys_revoked: number;
}

interface CreateApiKeyResponse {
  key: ApiKey | null;
  api_key: string;
}

interface RotateSigningKeyResponse {
  active: SigningKey | null;
  keys: SigningKey[];
}

interface VerifyAuditResponse {
  records: number;
  head_seq: number;
  head_hash: string;
  ok: boolean;
  broken_seq: number;
  reason: string;
}

interface BackupStateResponse {
  path: string;
  bytes: number;
  audit_seq: number;
}

interface RotateMasterKeyResponse {
  data_keys: number;
  key_file_replaced: string;
}

interface StatusResponse {
  version: string;
  started_at_unix_ms: number;
  engine: string;
  pool_threads: number;
  tenants: number;
  sessions: number;
  qubits: number;
  clusters: number;
  audit_seq: number;
  audit_head: string;
  signing_key_id: number;
  schema_version: number;
  state_dir: string;
  tenant_address: string;
  storage_free_bytes: number;
  storage_free_min_bytes: number;
}

// ---------------------------------------------------------------------------------------------
// Flags

/** Every flag any command takes; `parseArgs` needs the types to know which ones carry values. */
const FLAG_TYPES = {
  socket: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  tier: { type: 'string' },
  weight: { type: 'string' },
  role: { type: 'string', multiple: true },
  reason: { type: 'string' },
  yes: { type: 'boolean' },
  label: { type: 'string' },
  'qubits-live-max': { type: 'string' },
  'qubits-per-cluster-max': { type: 'string' },
  'state-bytes-max': { type: 'string' },
  'sessions-max': { type: 'string' },
  'session-ttl-seconds-max': { type: 'string' },
  'gates-per-call-max': { type: 'string' },
  'jobs-queued-max': { type: 'string' },
  'jobs-running-max': { type: 'string' },
  'job-runtime-seconds-max': { type: 'string' },
  'program-nodes-max': { type: 'string' },
  'shots-per-job-max': { type: 'string' },
  'api-calls-per-minute': { type: 'string' },
  'jobs-per-minute': { type: 'string' },
  'allocations-per-minute': { type: 'string' },
  'measurements-per-second': { type: 'string' },
  'calls-in-flight-max': { type: 'string' },
  'grace-seconds': { type: 'string' },
  'retire-previous-now': { type: 'boolean' },
  'no-compact': { type: 'boolean' },
  'new-key-file': { type: 'string' },
} as const;

type FlagName = keyof typeof FLAG_TYPES;

const GLOBAL_FLAGS: readonly FlagName[] = ['socket', 'json', 'help'];

/** Quota flags of `tenant update`, their Quota field and their largest value on the wire. */
const QUOTA_FLAGS: readonly (readonly [FlagName, keyof Quota, number])[] = [
  ['qubits-live-max', 'qubits_live_max', UINT32_MAX],
  ['qubits-per-cluster-max', 'qubits_per_cluster_max', UINT32_MAX],
  ['state-bytes-max', 'state_bytes_max', Number.MAX_SAFE_INTEGER],
  ['sessions-max', 'sessions_max', UINT32_MAX],
  ['session-ttl-seconds-max', 'session_ttl_seconds_max', UINT32_MAX],
  ['gates-per-call-max', 'gates_per_call_max', UINT32_MAX],
  ['jobs-queued-max', 'jobs_queued_max', UINT32_MAX],
  ['jobs-running-max', 'jobs_running_max', UINT32_MAX],
  ['job-runtime-seconds-max', 'job_runtime_seconds_max', UINT32_MAX],
  ['program-nodes-max', 'program_nodes_max', UINT32_MAX],
  ['shots-per-job-max', 'shots_per_job_max', UINT32_MAX],
  ['api-calls-per-minute', 'api_calls_per_minute', UINT32_MAX],
  ['jobs-per-minute', 'jobs_per_minute', UINT32_MAX],
  ['allocations-per-minute', 'allocations_per_minute', UINT32_MAX],
  ['measurements-per-second', 'measurements_per_second', UINT32_MAX],
  ['calls-in-flight-max', 'calls_in_flight_max', UINT32_MAX],
];

/** A mistake in the command line: reported on stderr with exit status 2, before any RPC. */
class UsageError extends Error {}

function isFlagName(name: string): name is FlagName {
  return Object.hasOwn(FLAG_TYPES, name);
}

/** The parsed command line: positionals and, per flag, every value given (booleans: ''). */
interface Parsed {
  positionals: string[];
  flags: Map<FlagName, { raw: string; values: string[] }>;
}

function parseCommandLine(argv: string[]): Parsed {
  // Non-strict so that unknown flags come back as tokens we can name in our own message.
  const { tokens } = parseArgs({
    args: argv,
    options: FLAG_TYPES,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const parsed: Parsed = { positionals: [], flags: new Map() };
  for (const token of tokens) {
    if (token.kind === 'positional') {
      parsed.positionals.push(token.value);
      continue;
    }
    if (token.kind === 'option-terminator') continue;
    const { name, rawName } = token;
    if (!isFlagName(name)) throw new UsageError(`unknown flag ${rawName}`);
    const spec: { type: 'string' | 'boolean' } = FLAG_TYPES[name];
    let value = '';
    if (spec.type === 'boolean') {
      if (token.value !== undefined) throw new UsageError(`flag ${rawName} takes no value`);
    } else {
      // parseArgs takes the next word as the value even when it is a flag; `--label --json`
      // almost always means a forgotten value, so refuse it unless written `--label=--json`.
      if (token.value === undefined || (!token.inlineValue && token.value.startsWith('-'))) {
        const hint = `write ${rawName}=VALUE if it starts with '-'`;
        throw new UsageError(`flag ${rawName} needs a value (${hint})`);
      }
      value = token.value;
    }
    const entry = parsed.flags.get(name) ?? { raw: rawName, values: [] };
    entry.values.push(value);
    parsed.flags.set(name, entry);
  }
  return parsed;
}

/** Read access to the flags of one command. Single-valued flags given twice are refused. */
class Flags {
  constructor(private readonly parsed: Parsed) {}

  has(name: FlagName): boolean {
    return this.parsed.flags.has(name);
  }

  str(name: FlagName): string | undefined {
    const entry = this.parsed.flags.get(name);
    if (entry === undefined) return undefined;
    if (entry.values.length > 1) throw new UsageError(`flag --${name} given more than once`);
    return entry.values[0];
  }

  all(name: FlagName): string[] {
    return this.parsed.flags.get(name)?.values ?? [];
  }

  /** A non-negative integer flag no larger than `max`; undefined when absent. */
  int(name: FlagName, max: number): number | undefined {
    const text = this.str(name);
    if (text === undefined) return undefined;
    const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(n) || n > max) {
      throw new UsageError(`flag --${name} wants an integer from 0 to ${max}, got '${text}'`);
    }
    return n;
  }
}

// ---------------------------------------------------------------------------------------------
// Enums and formatting

const TIERS = ['free', 'pro', 'enterprise'];
const ROLES = ['tenant_admin', 'researcher', 'domain_scientist'];

/** Accepts `pro`, `PRO` or `TIER_PRO` so operators can paste what --json printed. */
function parseTier(text: string): string {
  const tier = text.toLowerCase().replace(/^tier_/, '');
  if (!TIERS.includes(tier)) {
    throw new UsageError(`unknown tier '${text}' (expected one of: ${TIERS.join(', ')})`);
  }
  return `TIER_${tier.toUpperCase()}`;
}

/** Roles from repeated and comma-separated --role values; also accepts `tenant-admin`. */
function parseRoles(values: string[]): string[] {
  const roles: string[] = [];
  for (const part of values.flatMap((v) => v.split(','))) {
    const role = part
      .trim()
      .toLowerCase()
      .replaceAll('-', '_')
      .replace(/^role_/, '');
    if (!ROLES.includes(role)) {
      throw new UsageError(`unknown role '${part}' (expected one of: ${ROLES.join(', ')})`);
    }
    const wire = `ROLE_${role.toUpperCase()}`;
    if (!roles.includes(wire)) roles.push(wire);
  }
  return roles;
}

/** TIER_PRO → pro, TENANT_STATUS_SUSPENDED → suspended: the prefix is noise to an operator. */
export function enumLabel(value: string, prefix: string): string {
  return value.startsWith(prefix) ? value.slice(prefix.length).toLowerCase() : value.toLowerCase();
}

function time(ms: number): string {
  if (ms <= 0) return '-';
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** 93784000 → 1d 2h 3m: coarse on purpose, uptime is read at a glance. */
function duration(ms: number): string {
  const minutes = Math.max(0, Math.floor(ms / 60_000));
  const d = Math.floor(minutes / 1440);
  const h = Math.floor((minutes % 1440) / 60);
  const m = minutes % 60;
  if (d > 0) return `${d}d ${h}h ${m}m`;
  return h > 0 ? `${h}h ${m}m` : `${m}m`;
}

/** 1288490188 → 1.2GiB: one token, so status values stay in one aligned column. */
function compactBytes(n: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 'B';
  for (const u of units) {
    if (value < 1024) break;
    value /= 1024;
    unit = u;
  }
  return `${Number(value.toFixed(1))}${unit}`;
}

function bytes(n: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = '';
  for (const u of units) {
    if (value < 1024) break;
    value /= 1024;
    unit = u;
  }
  return unit === '' ? String(n) : `${n} (${Number(value.toFixed(1))} ${unit})`;
}

function padRows(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Header line plus rows, each column padded to its widest cell, two spaces between columns. */
export function formatTable(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  return padRows([headers, ...rows]);
}

/** `key  value` lines with the values aligned: the detail view of one object. */
function formatFields(fields: readonly (readonly [string, string])[]): string {
  return padRows(fields);
}

const TENANT_HEADERS = ['TENANT_ID', 'NAME', 'TIER', 'WEIGHT', 'STATUS', 'CREATED'];

function tenantRow(t: Tenant): string[] {
  return [
    t.tenant_id,
    t.name,
    enumLabel(t.tier, 'TIER_'),
    String(t.weight),
    enumLabel(t.status, 'TENANT_STATUS_'),
    time(t.created_at_unix_ms),
  ];
}

function tenantDetail(t: Tenant): string {
  const status = enumLabel(t.status, 'TENANT_STATUS_');
  const fields: [string, string][] = [
    ['tenant_id', t.tenant_id],
    ['name', t.name],
    ['tier', enumLabel(t.tier, 'TIER_')],
    ['weight', String(t.weight)],
    ['status', t.suspend_reason === '' ? status : `${status} (reason: ${t.suspend_reason})`],
    ['created', time(t.created_at_unix_ms)],
  ];
  if (t.quota !== null) {
    // Named after the `tenant update` flags so the operator sees which flag changes which limit.
    const q = t.quota;
    fields.push(
      ['quota', ''],
      ['  qubits-live-max', String(q.qubits_live_max)],
      ['  qubits-per-cluster-max', String(q.qubits_per_cluster_max)],
      ['  state-bytes-max', bytes(q.state_bytes_max)],
      ['  sessions-max', String(q.sessions_max)],
      ['  session-ttl-seconds-max', String(q.session_ttl_seconds_max)],
      ['  gates-per-call-max', String(q.gates_per_call_max)],
      ['  jobs-queued-max', String(q.jobs_queued_max)],
      ['  jobs-running-max', String(q.jobs_running_max)],
      ['  job-runtime-seconds-max', String(q.job_runtime_seconds_max)],
      ['  program-nodes-max', String(q.program_nodes_max)],
      ['  shots-per-job-max', String(q.shots_per_job_max)],
      ['  api-calls-per-minute', String(q.api_calls_per_minute)],
      ['  jobs-per-minute', String(q.jobs_per_minute)],
      ['  allocations-per-minute', String(q.allocations_per_minute)],
      ['  measurements-per-second', String(q.measurements_per_second)],
      ['  calls-in-flight-max', String(q.calls_in_flight_max)],
    );
  }
  return formatFields(fields);
}

const KEY_HEADERS = ['KEY_ID', 'TENANT_ID', 'ROLES', 'STATUS', 'LABEL', 'CREATED'];

function keyRow(k: ApiKey): string[] {
  return [
    k.key_id,
    k.tenant_id,
    k.roles.map((r) => enumLabel(r, 'ROLE_')).join(','),
    k.revoked ? 'revoked' : 'active',
    k.label === '' ? '-' : k.label,
    time(k.created_at_unix_ms),
  ];
}

/** The secret goes on a line of its own so it can be copied whole. */
function shownOnce(secret: string): string {
  return `\nAPI key (shown once — store it now; the daemon keeps only its hash):\n${secret}`;
}

function signingKeyState(k: SigningKey): string {
  if (k.retired) return 'retired';
  if (k.active) return 'active';
  return k.retire_at_unix_ms > 0 ? 'retiring' : 'verifying';
}

// ---------------------------------------------------------------------------------------------
// Commands

interface Ctx {
  args: string[];
  flags: Flags;
  /** Calls an AdminService method with the deadline; connects on first use. */
  call<T>(method: string, request: object): Promise<T>;
  /** Prints `response` as JSON under --json, else the human form `human()` renders. */
  show(response: unknown, human: () => string): void;
}

interface Command {
  /** Positional argument names, for usage errors. */
  args: readonly string[];
  flags: readonly FlagName[];
  run(ctx: Ctx): Promise<void>;
}

function arg(ctx: Ctx, i: number): string {
  const value = ctx.args[i];
  if (value === undefined) throw new Error(`argument ${i} missing after arity check`);
  return value;
}

function requireTenant<T extends { tenant: Tenant | null }>(res: T): Tenant {
  if (res.tenant === null) throw new Error('daemon answered without a tenant');
  return res.tenant;
}

async function showTenant(ctx: Ctx, method: string, request: object): Promise<void> {
  const res = await ctx.call<TenantResponse>(method, request);
  ctx.show(res, () => tenantDetail(requireTenant(res)));
}

const COMMANDS: Record<string, Command> = {
  'tenant create': {
    args: ['NAME'],
    flags: ['tier', 'weight', 'role'],
    async run(ctx) {
      const request: Record<string, unknown> = { name: arg(ctx, 0) };
      const tier = ctx.flags.str('tier');
      if (tier !== undefined) request.tier = parseTier(tier);
      const weight = ctx.flags.int('weight', UINT32_MAX);
      if (weight !== undefined) request.weight = weight;
      request.roles = parseRoles(ctx.flags.all('role'));
      const res = await ctx.call<CreateTenantResponse>('CreateTenant', request);
      ctx.show(res, () => {
        const parts = [formatTable(TENANT_HEADERS, [tenantRow(requireTenant(res))])];
        if (res.key !== null) parts.push('', formatTable(KEY_HEADERS, [keyRow(res.key)]));
        parts.push(shownOnce(res.api_key));
        return parts.join('\n');
      });
    },
  },
  'tenant list': {
    args: [],
    flags: [],
    async run(ctx) {
      // All pages, merged into one response, so --json stays one object and the table is whole.
      const tenants: Tenant[] = [];
      const seen = new Set<string>();
      let token = '';
      do {
        const res: ListTenantsResponse = await ctx.call('ListTenants', { page_token: token });
        tenants.push(...res.tenants);
        token = res.next_page_token;
        if (seen.has(token)) throw new Error(`daemon repeated page token '${token}'`);
        seen.add(token);
      } while (token !== '');
      const merged: ListTenantsResponse = { tenants, next_page_token: '' };
      ctx.show(merged, () => {
        if (tenants.length === 0) return 'no tenants';
        return formatTable(TENANT_HEADERS, tenants.map(tenantRow));
      });
    },
  },
  'tenant show': {
    args: ['TENANT'],
    flags: [],
    run: (ctx) => showTenant(ctx, 'GetTenant', { tenant: arg(ctx, 0) }),
  },
  'tenant update': {
    args: ['TENANT'],
    flags: ['tier', 'weight', ...QUOTA_FLAGS.map(([flag]) => flag)],
    async run(ctx) {
      const request: Record<string, unknown> = { tenant: arg(ctx, 0) };
      const tier = ctx.flags.str('tier');
      if (tier !== undefined) request.tier = parseTier(tier);
      const weight = ctx.flags.int('weight', UINT32_MAX);
      if (weight !== undefined) request.weight = weight;
      // The quota message is sent only when a quota flag is given, so the daemon can tell
      // "no quota change" (unset) from "these overrides" (set, zero fields = unchanged).
      const quota: Partial<Quota> = {};
      for (const [flag, field, max] of QUOTA_FLAGS) {
        const value = ctx.flags.int(flag, max);
        if (value !== undefined) quota[field] = value;
      }
      if (Object.keys(quota).length > 0) request.quota = quota;
      if (Object.keys(request).length === 1) {
        throw new UsageError('tenant update needs --tier, --weight or a quota flag');
      }
      await showTenant(ctx, 'UpdateTenant', request);
    },
  },
  'tenant suspend': {
    args: ['TENANT'],
    flags: ['reason'],
    run: (ctx) => {
      const request = { tenant: arg(ctx, 0), reason: ctx.flags.str('reason') ?? '' };
      return showTenant(ctx, 'SuspendTenant', request);
    },
  },
  'tenant resume': {
    args: ['TENANT'],
    flags: [],
    run: (ctx) => showTenant(ctx, 'ResumeTenant', { tenant: arg(ctx, 0) }),
  },
  'tenant delete': {
    args: ['TENANT'],
    flags: ['yes'],
    async run(ctx) {
      const tenant = arg(ctx, 0);
      // Deleting is irreversible and ends live sessions, so it must be asked for explicitly.
      if (!ctx.flags.has('yes')) {
        const why = 'this closes its sessions and revokes its API keys';
        throw new UsageError(`refusing to delete tenant '${tenant}' without --yes (${why})`);
      }
      const res = await ctx.call<DeleteTenantResponse>('DeleteTenant', { tenant });
      ctx.show(
        res,
        () =>
          `deleted tenant ${tenant}: ${res.sessions_closed} session(s) closed, ` +
          `${res.keys_revoked} key(s) revoked`,
      );
    },
  },
  'key create': {
    args: ['TENANT'],
    flags: ['role', 'label'],
    async run(ctx) {
      const request = {
        tenant: arg(ctx, 0),
        roles: parseRoles(ctx.flags.all('role')),
        label: ctx.flags.str('label') ?? '',
      };
      const res = await ctx.call<CreateApiKeyResponse>('CreateApiKey', request);
      ctx.show(res, () => {
        const parts = res.key === null ? [] : [formatTable(KEY_HEADERS, [keyRow(res.key)])];
        parts.push(shownOnce(res.api_key));
        return parts.join('\n');
      });
    },
  },
  'key list': {
    args: ['TENANT'],
    flags: [],
    async run(ctx) {
      const res = await ctx.call<{ keys: ApiKey[] }>('ListApiKeys', { tenant: arg(ctx, 0) });
      ctx.show(res, () =>
        res.keys.length === 0 ? 'no API keys' : formatTable(KEY_HEADERS, res.keys.map(keyRow)),
      );
    },
  },
  'key revoke': {
    args: ['KEY_ID'],
    flags: [],
    async run(ctx) {
      const res = await ctx.call<{ key: ApiKey | null }>('RevokeApiKey', { key_id: arg(ctx, 0) });
      ctx.show(res, () => {
        if (res.key === null) return `revoked key ${arg(ctx, 0)}`;
        return formatTable(KEY_HEADERS, [keyRow(res.key)]);
      });
    },
  },
  'signing-key rotate': {
    args: [],
    flags: ['grace-seconds', 'retire-previous-now'],
    async run(ctx) {
      const request = {
        grace_seconds: ctx.flags.int('grace-seconds', Number.MAX_SAFE_INTEGER) ?? 0,
        retire_previous_now: ctx.flags.has('retire-previous-now'),
      };
      if (request.grace_seconds > 0 && request.retire_previous_now) {
        throw new UsageError('--grace-seconds and --retire-previous-now contradict each other');
      }
      const res = await ctx.call<RotateSigningKeyResponse>('RotateSigningKey', request);
      ctx.show(res, () => {
        const rows = res.keys.map((k) => [
          String(k.key_id),
          signingKeyState(k),
          time(k.created_at_unix_ms),
          time(k.retire_at_unix_ms),
          k.public_key,
        ]);
        const active = res.active === null ? '-' : String(res.active.key_id);
        const table = formatTable(['KEY_ID', 'STATE', 'CREATED', 'RETIRE_AT', 'PUBLIC_KEY'], rows);
        return `active signing key: ${active}\n\n${table}`;
      });
    },
  },
  'audit verify': {
    args: [],
    flags: [],
    async run(ctx) {
      const r = await ctx.call<VerifyAuditResponse>('VerifyAudit', {});
      ctx.show(r, () =>
        formatFields([
          ['result', r.ok ? 'ok' : `BROKEN at seq ${r.broken_seq}: ${r.reason}`],
          ['records', String(r.records)],
          ['head_seq', String(r.head_seq)],
          ['head_hash', r.head_hash],
        ]),
      );
      if (!r.ok) throw new Error(`audit chain broken at seq ${r.broken_seq}: ${r.reason}`);
    },
  },
  backup: {
    args: ['PATH'],
    flags: ['no-compact'],
    async run(ctx) {
      const path = resolve(arg(ctx, 0));
      const r = await ctx.call<BackupStateResponse>('BackupState', {
        path,
        no_compact: ctx.flags.has('no-compact'),
      });
      ctx.show(r, () =>
        formatFields([
          ['path', r.path],
          ['bytes', bytes(r.bytes)],
          ['audit_seq', String(r.audit_seq)],
        ]),
      );
    },
  },
  'master-key rotate': {
    args: [],
    flags: ['new-key-file'],
    async run(ctx) {
      const file = ctx.flags.str('new-key-file');
      if (file === undefined) throw new UsageError('master-key rotate needs --new-key-file FILE');
      const r = await ctx.call<RotateMasterKeyResponse>('RotateMasterKey', {
        new_key_file: resolve(file),
      });
      ctx.show(r, () =>
        formatFields([
          ['data_keys', String(r.data_keys)],
          [
            'key_file',
            r.key_file_replaced === ''
              ? 'yours: replace it with the new key before the next start'
              : `${r.key_file_replaced} (replaced)`,
          ],
        ]),
      );
    },
  },
  status: {
    args: [],
    flags: [],
    async run(ctx) {
      const s = await ctx.call<StatusResponse>('GetStatus', {});
      ctx.show(s, () =>
        formatFields([
          ['version', s.version],
          [
            'started',
            s.started_at_unix_ms > 0
              ? `${time(s.started_at_unix_ms)} (up ${duration(Date.now() - s.started_at_unix_ms)})`
              : '-',
          ],
          ['engine', s.engine],
          ['pool_threads', String(s.pool_threads)],
          ['tenants', String(s.tenants)],
          ['sessions', String(s.sessions)],
          ['qubits', String(s.qubits)],
          ['clusters', String(s.clusters)],
          ['audit_seq', String(s.audit_seq)],
          ['audit_head', s.audit_head],
          ['signing_key_id', String(s.signing_key_id)],
          ['schema_version', String(s.schema_version)],
          ['state_dir', s.state_dir],
          ['storage_free', compactBytes(s.storage_free_bytes)],
          [
            'storage_free_min',
            s.storage_free_min_bytes > 0 ? compactBytes(s.storage_free_min_bytes) : 'off',
          ],
          ['tenant_address', s.tenant_address],
        ]),
      );
    },
  },
};

/** Commands with a subcommand word, so `tenant frob` is named whole in the error. */
const GROUPS = new Set(
  Object.keys(COMMANDS).flatMap((k) => {
    const [group, sub] = k.split(' ');
    return sub === undefined || group === undefined ? [] : [group];
  }),
);

// ---------------------------------------------------------------------------------------------
// Connection

/** --socket, else $QMK_ADMIN_SOCKET, else $QMK_STATE_DIR/admin.sock, else ./.qmk-state/…. */
export function resolveSocketPath(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
  cwd: string,
): string {
  // Empty values count as unset: `QMK_ADMIN_SOCKET= qmkctl status` should mean the default.
  if (flag !== undefined && flag !== '') return resolve(cwd, flag);
  if (env.QMK_ADMIN_SOCKET) return resolve(cwd, env.QMK_ADMIN_SOCKET);
  if (env.QMK_STATE_DIR) return resolve(cwd, env.QMK_STATE_DIR, 'admin.sock');
  return resolve(cwd, '.qmk-state', 'admin.sock');
}

/** Thrown when there is no daemon to talk to; the message names the socket path. */
class ConnectError extends Error {}

type UnaryMethod = (
  request: object,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, response?: unknown) => void,
) => grpc.ClientUnaryCall;

const NOT_RUNNING =
  'the daemon may not be running (start qmkd, or point --socket, ' +
  'QMK_ADMIN_SOCKET or QMK_STATE_DIR at its socket)';

/** A lazily connected AdminService client; `close()` lets the process exit. */
class Admin {
  private client: grpc.Client | undefined;

  constructor(readonly socketPath: string) {}

  call<T>(method: string, request: object): Promise<T> {
    const client = this.connect();
    const fn = (client as unknown as Record<string, UnaryMethod | undefined>)[method];
    if (typeof fn !== 'function') throw new Error(`AdminService has no method ${method}`);
    return new Promise<T>((resolvePromise, reject) => {
      const options: grpc.CallOptions = { deadline: Date.now() + CALL_DEADLINE_MS };
      fn.call(client, request, new grpc.Metadata(), options, (err, response) => {
        if (err) reject(err);
        else resolvePromise(response as T);
      });
    });
  }

  close(): void {
    this.client?.close();
  }

  private connect(): grpc.Client {
    if (this.client !== undefined) return this.client;
    // Checked up front because grpc's own message for a missing socket is an opaque UNAVAILABLE.
    let isSocket: boolean;
    try {
      isSocket = statSync(this.socketPath).isSocket();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new ConnectError(`no admin socket at ${this.socketPath}: ${NOT_RUNNING}`);
      }
      // EACCES and the like: the socket may well exist, so say what actually went wrong.
      throw new ConnectError(`cannot access ${this.socketPath}: ${(e as Error).message}`);
    }
    if (!isSocket) throw new ConnectError(`${this.socketPath} is not a socket`);
    const { AdminService } = loadGrpcObject();
    this.client = new AdminService(`unix:${this.socketPath}`, grpc.credentials.createInsecure());
    return this.client;
  }
}

function isServiceError(e: unknown): e is grpc.ServiceError {
  return (
    e instanceof Error &&
    typeof (e as Partial<grpc.ServiceError>).code === 'number' &&
    'details' in e
  );
}

// ---------------------------------------------------------------------------------------------
// Entry point

/** Runs one qmkctl command line (without `node` and the script) and returns the exit status. */
export async function main(argv: string[], io: Io): Promise<number> {
  let admin: Admin | undefined;
  try {
    const parsed = parseCommandLine(argv);
    const flags = new Flags(parsed);
    const [first, ...rest] = parsed.positionals;
    if (flags.has('help') || first === 'help') {
      io.out(USAGE);
      return 0;
    }
    if (first === undefined) {
      io.err(USAGE);
      return 2;
    }
    let name = first;
    let args = rest;
    if (GROUPS.has(first)) {
      const sub = rest[0];
      if (sub === undefined) throw new UsageError(`'${first}' needs a subcommand (see --help)`);
      name = `${first} ${sub}`;
      args = rest.slice(1);
    }
    const command = COMMANDS[name];
    if (command === undefined) throw new UsageError(`unknown command '${name}' (see --help)`);
    for (const [flag, { raw }] of parsed.flags) {
      if (!GLOBAL_FLAGS.includes(flag) && !command.flags.includes(flag)) {
        throw new UsageError(`flag ${raw} does not apply to '${name}'`);
      }
    }
    if (args.length < command.args.length) {
      const missing = command.args.slice(args.length).join(' ');
      throw new UsageError(`'${name}' needs ${missing}`);
    }
    if (args.length > command.args.length) {
      throw new UsageError(`unexpected argument '${args[command.args.length]}' to '${name}'`);
    }
    const socketPath = resolveSocketPath(flags.str('socket'), process.env, process.cwd());
    const json = flags.has('json');
    const connection = new Admin(socketPath);
    admin = connection;
    await command.run({
      args,
      flags,
      call: (method, request) => connection.call(method, request),
      show: (response, human) => io.out(json ? JSON.stringify(response, null, 2) : human()),
    });
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`error: ${e.message}`);
      return 2;
    }
    if (e instanceof ConnectError) {
      io.err(`error: ${e.message}`);
      return 1;
    }
    if (isServiceError(e)) {
      const code = grpc.status[e.code] ?? String(e.code);
      // grpc-js ends connection errors with an empty "Resolution note:"; it only adds noise.
      io.err(`error: ${code}: ${e.details.replace(/\s*Resolution note:\s*$/, '')}`);
      // UNAVAILABLE here nearly always means the socket exists but nobody answers (a stale
      // socket left by a crashed daemon, or no permission to it).
      if (e.code === grpc.status.UNAVAILABLE && admin !== undefined) {
        io.err(`cannot reach qmkd at ${admin.socketPath}: ${NOT_RUNNING}`);
      }
      return 1;
    }
    io.err(`error: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  } finally {
    admin?.close();
  }
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  process.exitCode = await main(process.argv.slice(2), {
    out: (s) => process.stdout.write(`${s}\n`),
    err: (s) => process.stderr.write(`${s}\n`),
  });
}
