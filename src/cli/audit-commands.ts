/**
 * qmkctl's audit commands: the signed head, the listing, and proofs — each proof and head is
 * checked here, on the operator's side, not taken on the daemon's word: the head's Ed25519
 * signature against the daemon's signing keys, the payload against the head's fields, the
 * inclusion or consistency proof against the signed roots. Layer: cli.
 */
import { createPublicKey, verify } from 'node:crypto';
import type { AuditRecord__Output } from '../api/generated/qmk/v1/AuditRecord.js';
import type { SignedTreeHead__Output } from '../api/generated/qmk/v1/SignedTreeHead.js';
import { treeHeadPayload } from '../kernel/audit-log.js';
import { leafHash, verifyConsistency, verifyInclusion } from '../security/merkle.js';
import { UsageError } from './args.js';
import type { Command, Ctx } from './command.js';
import { formatFields, formatTable, time } from './format.js';

const UINT53 = Number.MAX_SAFE_INTEGER;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** A time flag: ISO 8601 (`2026-12-03T08:00:00Z`) or milliseconds since the epoch. */
function timeFlag(ctx: Ctx, name: 'since' | 'until'): number {
  const text = ctx.flags.str(name);
  if (text === undefined) return 0;
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw new UsageError(
      `flag --${name} wants an ISO 8601 time or epoch milliseconds, got '${text}'`,
    );
  }
  return ms;
}

/**
 * Checks a head: its payload says what its fields say, and a signing key of the daemon signed it.
 * Returns what failed, or null.
 */
export async function headProblem(
  ctx: Ctx,
  head: SignedTreeHead__Output | null,
): Promise<string | null> {
  if (head === null) return 'the daemon sent no tree head';
  const payload = treeHeadPayload(head.tree_size, head.root_hash, head.timestamp_unix_ms);
  if (!payload.equals(Buffer.from(head.signed_payload))) {
    return 'the signed payload does not match the head';
  }
  const { keys } = await ctx.call('ListSigningKeys', {});
  const key = keys.find((k) => k.key_id === head.key_id);
  if (key === undefined) return `signing key ${head.key_id} is not one of the daemon's keys`;
  const publicKey = createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: key.public_key },
    format: 'jwk',
  });
  return verify(null, payload, publicKey, Buffer.from(head.signature))
    ? null
    : `the signature does not verify with signing key ${head.key_id}`;
}

function headFields(head: SignedTreeHead__Output): [string, string][] {
  return [
    ['tree_size', String(head.tree_size)],
    ['root_hash', hex(head.root_hash)],
    ['timestamp', time(head.timestamp_unix_ms)],
    ['key_id', String(head.key_id)],
    ['signature', Buffer.from(head.signature).toString('base64')],
  ];
}

const RECORD_HEADERS = ['SEQ', 'TIME', 'ACTOR', 'ACTION', 'TARGET', 'OUTCOME', 'TENANTS'];

function recordRow(r: AuditRecord__Output): string[] {
  return [
    String(r.seq),
    time(r.time_unix_ms),
    r.actor,
    r.action,
    r.target.length > 40 ? `${r.target.slice(0, 39)}…` : r.target,
    r.outcome,
    r.tenant_ids.join(',') || '-',
  ];
}

/** Throws (exit 1) after printing when a check failed. */
function fail(problem: string | null, what: string): void {
  if (problem !== null) throw new Error(`${what}: ${problem}`);
}

export const AUDIT_COMMANDS: Record<string, Command> = {
  'audit verify': {
    args: [],
    flags: [],
    async run(ctx) {
      const r = await ctx.call('VerifyAudit', {});
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
  'audit head': {
    args: [],
    flags: ['size'],
    async run(ctx) {
      const { head } = await ctx.call('GetTreeHead', {
        tree_size: ctx.flags.int('size', UINT53) ?? 0,
      });
      const problem = await headProblem(ctx, head);
      ctx.show({ head, signature_valid: problem === null }, () =>
        formatFields([
          ...headFields(head!),
          [
            'signature_check',
            problem === null ? `valid (key ${head!.key_id})` : `FAILED: ${problem}`,
          ],
        ]),
      );
      fail(problem, 'tree head');
    },
  },
  'audit list': {
    args: [],
    flags: [
      'tenant',
      'actor',
      'action',
      'target',
      'since',
      'until',
      'limit',
      'newest-first',
      'page-token',
    ],
    async run(ctx) {
      const res = await ctx.call('ListAuditRecords', {
        since_unix_ms: timeFlag(ctx, 'since'),
        until_unix_ms: timeFlag(ctx, 'until'),
        actor: ctx.flags.str('actor') ?? '',
        action: ctx.flags.str('action') ?? '',
        target: ctx.flags.str('target') ?? '',
        tenant_id: ctx.flags.str('tenant') ?? '',
        newest_first: ctx.flags.has('newest-first'),
        page_size: ctx.flags.int('limit', 1000) ?? 0,
        page_token: ctx.flags.str('page-token') ?? '',
      });
      ctx.show(res, () => {
        const table =
          res.records.length === 0
            ? 'no records on this page'
            : formatTable(RECORD_HEADERS, res.records.map(recordRow));
        const more =
          res.next_page_token === '' ? '' : `\nmore: --page-token ${res.next_page_token}`;
        return `${table}\n(log size ${res.tree_size})${more}`;
      });
    },
  },
  'anomalies list': {
    args: [],
    flags: ['tenant', 'since', 'until', 'limit', 'page-token'],
    async run(ctx) {
      // Anomalies are audit records (action Anomaly, by the kernel): listed newest first.
      const res = await ctx.call('ListAuditRecords', {
        since_unix_ms: timeFlag(ctx, 'since'),
        until_unix_ms: timeFlag(ctx, 'until'),
        actor: 'kernel',
        action: 'Anomaly',
        target: '',
        tenant_id: ctx.flags.str('tenant') ?? '',
        newest_first: true,
        page_size: ctx.flags.int('limit', 1000) ?? 0,
        page_token: ctx.flags.str('page-token') ?? '',
      });
      ctx.show(res, () => {
        if (res.records.length === 0) return 'no anomalies recorded';
        const rows = res.records.map((r) => {
          const d = JSON.parse(r.detail_json || '{}') as Record<string, unknown>;
          return [
            String(r.seq),
            time(r.time_unix_ms),
            r.target,
            String(d.type ?? '-'),
            String(d.severity ?? '-'),
            `${d.count ?? '?'}/${d.threshold ?? '?'} in ${d.window_seconds ?? '?'} s`,
            String(d.response ?? '-'),
          ];
        });
        const table = formatTable(
          ['SEQ', 'TIME', 'SUBJECT', 'TYPE', 'SEVERITY', 'REFUSALS', 'RESPONSE'],
          rows,
        );
        const more =
          res.next_page_token === '' ? '' : `\nmore: --page-token ${res.next_page_token}`;
        return `${table}${more}`;
      });
    },
  },
  'audit prove': {
    args: ['SEQ'],
    flags: ['size'],
    async run(ctx) {
      const seq = Number(ctx.args[0]);
      if (!Number.isSafeInteger(seq) || seq < 1) {
        throw new UsageError(`SEQ wants a record number from 1, got '${ctx.args[0]}'`);
      }
      const res = await ctx.call('GetInclusionProof', {
        leaf_index: seq - 1,
        tree_size: ctx.flags.int('size', UINT53) ?? 0,
      });
      const head = res.head!;
      const record = res.record!;
      let problem = await headProblem(ctx, head);
      const leaf = leafHash(record.leaf_input);
      if (problem === null && !leaf.equals(Buffer.from(record.leaf_hash))) {
        problem = 'the leaf hash is not the hash of the record';
      }
      if (
        problem === null &&
        !verifyInclusion(seq - 1, head.tree_size, leaf, res.audit_path, head.root_hash)
      ) {
        problem = 'the audit path does not lead to the signed root';
      }
      ctx.show({ ...res, verified: problem === null }, () =>
        [
          formatTable(RECORD_HEADERS, [recordRow(record)]),
          '',
          formatFields([
            ...headFields(head),
            ['leaf_hash', hex(leaf)],
            ['audit_path', res.audit_path.map(hex).join('\n') || '(none: the only leaf)'],
            [
              'result',
              problem === null ? `record ${seq} is in the signed log` : `FAILED: ${problem}`,
            ],
          ]),
        ].join('\n'),
      );
      fail(problem, `inclusion of record ${seq}`);
    },
  },
  'audit prove-consistency': {
    args: ['OLD_SIZE'],
    flags: ['size'],
    async run(ctx) {
      const first = Number(ctx.args[0]);
      if (!Number.isSafeInteger(first) || first < 1) {
        throw new UsageError(`OLD_SIZE wants a tree size from 1, got '${ctx.args[0]}'`);
      }
      const res = await ctx.call('GetConsistencyProof', {
        first_tree_size: first,
        second_tree_size: ctx.flags.int('size', UINT53) ?? 0,
      });
      const a = res.first!;
      const b = res.second!;
      let problem = (await headProblem(ctx, a)) ?? (await headProblem(ctx, b));
      if (
        problem === null &&
        !verifyConsistency(a.tree_size, b.tree_size, res.proof, a.root_hash, b.root_hash)
      ) {
        problem = 'the proof does not join the two signed roots';
      }
      ctx.show({ ...res, verified: problem === null }, () =>
        formatFields([
          ['first', `${a.tree_size} records, root ${hex(a.root_hash)}`],
          ['second', `${b.tree_size} records, root ${hex(b.root_hash)}`],
          ['proof', res.proof.map(hex).join('\n') || '(none)'],
          [
            'result',
            problem === null
              ? `the log of ${a.tree_size} records is a prefix of the log of ${b.tree_size}`
              : `FAILED: ${problem}`,
          ],
        ]),
      );
      fail(problem, 'consistency');
    },
  },
};
