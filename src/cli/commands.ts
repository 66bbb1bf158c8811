/**
 * qmkctl's commands: for each, its arguments, the flags it takes, and what it calls and prints.
 * Layer: cli. A command only calls the admin API (`Ctx.call`) and prints (`Ctx.show`).
 */
import { resolve } from 'node:path';
import type { ListTenantsResponse__Output } from '../api/generated/qmk/v1/ListTenantsResponse.js';
import type { Tenant__Output } from '../api/generated/qmk/v1/Tenant.js';
import type { WireQuota } from '../kernel/quota-fields.js';
import type { ReplyOf, RequestOf } from './admin-client.js';
import { QUOTA_FLAGS, UINT32_MAX, UsageError } from './args.js';
import { AUDIT_COMMANDS } from './audit-commands.js';
import type { Command, Ctx } from './command.js';
import { EVIDENCE_COMMANDS } from './evidence.js';
import {
  KEY_HEADERS,
  TENANT_HEADERS,
  bytes,
  compactBytes,
  duration,
  formatFields,
  formatTable,
  keyRow,
  parseRoles,
  parseTier,
  shownOnce,
  signingKeyState,
  tenantDetail,
  tenantRow,
  time,
} from './format.js';

function arg(ctx: Ctx, i: number): string {
  const value = ctx.args[i];
  if (value === undefined) throw new Error(`argument ${i} missing after arity check`);
  return value;
}

function requireTenant<T extends { tenant: Tenant__Output | null }>(res: T): Tenant__Output {
  if (res.tenant === null) throw new Error('daemon answered without a tenant');
  return res.tenant;
}

/** The methods whose reply is one tenant. */
type TenantMethod = 'GetTenant' | 'UpdateTenant' | 'SuspendTenant' | 'ResumeTenant';

/** The `--tier` and `--weight` flags as request fields, each only when given. */
function tierAndWeight(ctx: Ctx): { tier?: string; weight?: number } {
  const out: { tier?: string; weight?: number } = {};
  const tier = ctx.flags.str('tier');
  if (tier !== undefined) out.tier = parseTier(tier);
  const weight = ctx.flags.int('weight', UINT32_MAX);
  if (weight !== undefined) out.weight = weight;
  return out;
}

async function showTenant(
  ctx: Ctx,
  method: TenantMethod,
  request: RequestOf<TenantMethod>,
): Promise<void> {
  const res = await ctx.call(method, request);
  ctx.show(res, () => tenantDetail(requireTenant(res)));
}

/** The signing keys with their states, the active one named first. */
function signingKeyTable(keys: ReplyOf<'ListSigningKeys'>['keys']): string {
  const rows = keys.map((k) => [
    String(k.key_id),
    signingKeyState(k),
    time(k.created_at_unix_ms),
    time(k.retire_at_unix_ms),
    k.public_key,
  ]);
  const active = keys.find((k) => k.active)?.key_id;
  const table = formatTable(['KEY_ID', 'STATE', 'CREATED', 'RETIRE_AT', 'PUBLIC_KEY'], rows);
  return `active signing key: ${active ?? '-'}\n\n${table}`;
}

export const COMMANDS: Record<string, Command> = {
  ...AUDIT_COMMANDS,
  ...EVIDENCE_COMMANDS,
  'tenant create': {
    args: ['NAME'],
    flags: ['tier', 'weight', 'role'],
    async run(ctx) {
      const request: Record<string, unknown> = {
        name: arg(ctx, 0),
        ...tierAndWeight(ctx),
        roles: parseRoles(ctx.flags.all('role')),
      };
      const res = await ctx.call('CreateTenant', request);
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
      const tenants: Tenant__Output[] = [];
      const seen = new Set<string>();
      let token = '';
      do {
        const res: ListTenantsResponse__Output = await ctx.call('ListTenants', {
          page_token: token,
        });
        tenants.push(...res.tenants);
        token = res.next_page_token;
        if (seen.has(token)) throw new Error(`daemon repeated page token '${token}'`);
        seen.add(token);
      } while (token !== '');
      const merged: ListTenantsResponse__Output = { tenants, next_page_token: '' };
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
      const request: Record<string, unknown> = { tenant: arg(ctx, 0), ...tierAndWeight(ctx) };
      // The quota message is sent only when a quota flag is given, so the daemon can tell
      // "no quota change" (unset) from "these overrides" (set, zero fields = unchanged).
      const quota: Partial<WireQuota> = {};
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
      const res = await ctx.call('DeleteTenant', { tenant });
      ctx.show(
        res,
        () =>
          `deleted tenant ${tenant}: ${res.sessions_closed} session(s) closed, ` +
          `${res.keys_revoked} key(s) revoked, data key ${res.data_key_destroyed ? 'destroyed' : 'NOT destroyed'}`,
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
      const res = await ctx.call('CreateApiKey', request);
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
      const res = await ctx.call('ListApiKeys', { tenant: arg(ctx, 0) });
      ctx.show(res, () =>
        res.keys.length === 0 ? 'no API keys' : formatTable(KEY_HEADERS, res.keys.map(keyRow)),
      );
    },
  },
  'key revoke': {
    args: ['KEY_ID'],
    flags: [],
    async run(ctx) {
      const res = await ctx.call('RevokeApiKey', { key_id: arg(ctx, 0) });
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
      const res = await ctx.call('RotateSigningKey', request);
      ctx.show(res, () => signingKeyTable(res.keys));
    },
  },
  'signing-key list': {
    args: [],
    flags: [],
    async run(ctx) {
      const res = await ctx.call('ListSigningKeys', {});
      ctx.show(res, () => signingKeyTable(res.keys));
    },
  },
  backup: {
    args: ['PATH'],
    flags: ['no-compact'],
    async run(ctx) {
      const path = resolve(arg(ctx, 0));
      const r = await ctx.call('BackupState', {
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
      const r = await ctx.call('RotateMasterKey', {
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
      const s = await ctx.call('GetStatus', {});
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
          ['pool_threads_busy', String(s.pool_threads_busy)],
          ['pool_plans_queued', String(s.pool_plans_queued)],
          ['jobs_queued', String(s.jobs_queued)],
          ['jobs_running', String(s.jobs_running)],
          ['audit_seq', String(s.audit_seq)],
          ['audit_head', s.audit_head],
          ['audit_tree_size', String(s.audit_tree_size)],
          ['audit_tree_root', s.audit_tree_root === '' ? '-' : s.audit_tree_root],
          ['draining', s.draining ? 'yes' : 'no'],
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
export const GROUPS = new Set(
  Object.keys(COMMANDS).flatMap((k) => {
    const [group, sub] = k.split(' ');
    return sub === undefined || group === undefined ? [] : [group];
  }),
);
