/**
 * qmkctl's human output: enum labels, times, sizes, aligned tables and field lists, and the rows
 * of tenants, keys and signing keys. Layer: cli. `--json` bypasses all of it.
 */
import type { ApiKey__Output } from '../api/generated/qmk/v1/ApiKey.js';
import type { Role as WireRole } from '../api/generated/qmk/v1/Role.js';
import type { SigningKey__Output } from '../api/generated/qmk/v1/SigningKey.js';
import type { Tenant__Output } from '../api/generated/qmk/v1/Tenant.js';
import { QUOTA_FIELDS } from '../kernel/quota-fields.js';
import { UsageError, kebab } from './args.js';

export const TIERS = ['free', 'pro', 'enterprise'];
export const ROLES = ['tenant_admin', 'researcher', 'domain_scientist'];

/** Accepts `pro`, `PRO` or `TIER_PRO` so operators can paste what --json printed. */
export function parseTier(text: string): string {
  const tier = text.toLowerCase().replace(/^tier_/, '');
  if (!TIERS.includes(tier)) {
    throw new UsageError(`unknown tier '${text}' (expected one of: ${TIERS.join(', ')})`);
  }
  return `TIER_${tier.toUpperCase()}`;
}

/** Roles from repeated and comma-separated --role values; also accepts `tenant-admin`. */
export function parseRoles(values: string[]): WireRole[] {
  const roles: WireRole[] = [];
  for (const part of values.flatMap((v) => v.split(','))) {
    const role = part
      .trim()
      .toLowerCase()
      .replaceAll('-', '_')
      .replace(/^role_/, '');
    if (!ROLES.includes(role)) {
      throw new UsageError(`unknown role '${part}' (expected one of: ${ROLES.join(', ')})`);
    }
    const wire = `ROLE_${role.toUpperCase()}` as WireRole;
    if (!roles.includes(wire)) roles.push(wire);
  }
  return roles;
}

/** TIER_PRO → pro, TENANT_STATUS_SUSPENDED → suspended: the prefix is noise to an operator. */
export function enumLabel(value: string, prefix: string): string {
  return value.startsWith(prefix) ? value.slice(prefix.length).toLowerCase() : value.toLowerCase();
}

export function time(ms: number): string {
  if (ms <= 0) return '-';
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** 93784000 → 1d 2h 3m: coarse on purpose, uptime is read at a glance. */
export function duration(ms: number): string {
  const minutes = Math.max(0, Math.floor(ms / 60_000));
  const d = Math.floor(minutes / 1440);
  const h = Math.floor((minutes % 1440) / 60);
  const m = minutes % 60;
  if (d > 0) return `${d}d ${h}h ${m}m`;
  return h > 0 ? `${h}h ${m}m` : `${m}m`;
}

/** 1288490188 → 1.2GiB: one token, so status values stay in one aligned column. */
export function compactBytes(n: number): string {
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

export function bytes(n: number): string {
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

export function padRows(rows: readonly (readonly string[])[]): string {
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
export function formatFields(fields: readonly (readonly [string, string])[]): string {
  return padRows(fields);
}

export const TENANT_HEADERS = ['TENANT_ID', 'NAME', 'TIER', 'WEIGHT', 'STATUS', 'CREATED'];

export function tenantRow(t: Tenant__Output): string[] {
  return [
    t.tenant_id,
    t.name,
    enumLabel(t.tier, 'TIER_'),
    String(t.weight),
    enumLabel(t.status, 'TENANT_STATUS_'),
    time(t.created_at_unix_ms),
  ];
}

export function tenantDetail(t: Tenant__Output): string {
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
      ...QUOTA_FIELDS.map((f): [string, string] => [
        `  ${kebab(f.wire)}`,
        f.key === 'stateBytesMax' ? bytes(q[f.wire]) : String(q[f.wire]),
      ]),
    );
  }
  return formatFields(fields);
}

export const KEY_HEADERS = ['KEY_ID', 'TENANT_ID', 'ROLES', 'STATUS', 'LABEL', 'CREATED'];

export function keyRow(k: ApiKey__Output): string[] {
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
export function shownOnce(secret: string): string {
  return `\nAPI key (shown once — store it now; the daemon keeps only its hash):\n${secret}`;
}

export function signingKeyState(k: SigningKey__Output): string {
  if (k.retired) return 'retired';
  if (k.active) return 'active';
  return k.retire_at_unix_ms > 0 ? 'retiring' : 'verifying';
}
