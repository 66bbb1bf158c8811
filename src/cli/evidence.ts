/**
 * `qmkctl evidence`: an isolation evidence package, done as software. It runs the self-tests of
 * `evidence-tests.ts` against the live daemon with two temporary tenants (created, exercised and
 * deleted through the operator API, every step in the audit log), and writes a report — JSON and
 * a readable HTML page — with the build, the configuration, the authorization table, the tier
 * quotas, each self-test and what it saw, the audit log's signed head with a consistency proof
 * from the previous report's head, and the claims the evidence supports and those it does not.
 * The kernel signs the report's SHA-256 (`SignEvidence`), so anyone can check it later against
 * the daemon's signing keys (`qmkctl evidence verify FILE`). Layer: cli.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { AUTHZ_TABLE } from '../api/authz.js';
import { TIERS, TIER_DEFAULTS } from '../kernel/limits.js';
import { QUOTA_FIELDS } from '../kernel/quota-fields.js';
import { verifyConsistency } from '../security/merkle.js';
import { headProblem } from './audit-commands.js';
import type { Command, Ctx } from './command.js';
import { renderEvidenceHtml } from './evidence-html.js';
import {
  EVIDENCE_FORMAT,
  type EvidenceReport,
  type SignedEvidence,
  evidenceProblem,
  reportDigest,
} from './evidence-model.js';
import {
  type Pair,
  type SelfTest,
  TenantApi,
  channelUseLimit,
  crossTenantAccess,
  noEntanglementWithoutChannel,
  releasedStateZeroed,
  temporaryName,
} from './evidence-tests.js';

async function publicKeys(ctx: Ctx): Promise<Map<number, string>> {
  const { keys } = await ctx.call('ListSigningKeys', {});
  return new Map(keys.map((k) => [k.key_id, k.public_key]));
}

function credentials(ctx: Ctx): grpc.ChannelCredentials {
  const ca = ctx.flags.str('tls-ca');
  const cert = ctx.flags.str('tls-cert');
  const key = ctx.flags.str('tls-key');
  if (ca === undefined && cert === undefined && key === undefined)
    return grpc.credentials.createInsecure();
  const read = (f: string | undefined) => (f === undefined ? null : readFileSync(f));
  return grpc.credentials.createSsl(read(ca), read(key), read(cert));
}

/** The tenant API's address: the flag, else the daemon's (a wildcard bind reached on loopback). */
function tenantAddress(ctx: Ctx, fromStatus: string): string {
  const flag = ctx.flags.str('address');
  if (flag !== undefined) return flag;
  return fromStatus.replace(/^0\.0\.0\.0:/, '127.0.0.1:').replace(/^\[::\]:/, '[::1]:');
}

/** Runs one self-test; a test that could not be carried out fails with the reason. */
async function attempt(id: string, claim: string, run: () => Promise<SelfTest>): Promise<SelfTest> {
  try {
    return await run();
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    return { id, claim, passed: false, observations: [`could not be carried out: ${why}`] };
  }
}

const CLAIMS_NOT_SUPPORTED = [
  'Side channels between tenants (timing, cache, power) are not tested.',
  'Records in backups taken before a tenant was deleted still open with the data key those backups hold; the destruction of the key is as the daemon reports it (data_key_destroyed).',
  'The self-tests show the behaviour for two tenants at this moment; they do not prove it for every input or every tenant.',
  'A compromised host, Node.js runtime or operator is outside this evidence: the operator holds the admin socket and the master key.',
  'Correct quantum statistics and fairness under load are not part of this package (the conformance suite and bench:noisy-neighbour measure them).',
];

function claims(report: Omit<EvidenceReport, 'claims'>): EvidenceReport['claims'] {
  const supported: string[] = [];
  const notSupported = [...CLAIMS_NOT_SUPPORTED];
  for (const t of report.self_tests) {
    if (t.passed) supported.push(t.claim);
    else notSupported.unshift(`NOT SHOWN (self-test ${t.id} failed): ${t.claim}`);
  }
  if (report.audit.consistency_verified === true) {
    supported.push(
      `The audit log of ${report.audit.previous!.tree_size} records at the previous report is a prefix of today's ${report.audit.head.tree_size}: nothing in it was changed or removed since (consistency proof verified).`,
    );
  } else if (report.audit.previous === null) {
    notSupported.push(
      'That the audit log was only appended to before this report: no previous report was given.',
    );
  } else {
    notSupported.unshift(
      'NOT SHOWN: the consistency of the audit log with the previous report (the proof did not verify).',
    );
  }
  if (report.audit.head_signature_valid) {
    supported.push(
      `The kernel signing key ${report.audit.head.key_id} signed the audit log's head of ${report.audit.head.tree_size} records, and signs this report.`,
    );
  }
  return { supported, not_supported: notSupported };
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** `qmkctl evidence`: runs everything, writes the files, prints a summary; exit 1 if a test failed. */
export async function runEvidence(ctx: Ctx): Promise<void> {
  const status = await ctx.call('GetStatus', {});
  const keys = await publicKeys(ctx);
  const previous = readPrevious(ctx, keys);
  const names = { a: temporaryName('a'), b: temporaryName('b') };
  const created = [];
  for (const name of [names.a, names.b]) {
    const r = await ctx.call('CreateTenant', { name, tier: 'TIER_PRO', roles: [] });
    created.push({ name, id: r.tenant!.tenant_id, apiKey: r.api_key });
  }
  const [ta, tb] = created as [(typeof created)[0], (typeof created)[0]];
  const address = tenantAddress(ctx, status.tenant_address);
  const creds = credentials(ctx);
  const pair: Pair = {
    a: new TenantApi(address, creds, ta.apiKey),
    b: new TenantApi(address, creds, tb.apiKey),
    aId: ta.id,
    bId: tb.id,
    bName: tb.name,
  };
  const tests: SelfTest[] = [];
  const deleted = new Set<string>();
  try {
    tests.push(
      await attempt('cross_tenant_not_found', 'cross-tenant access answers NOT_FOUND', () =>
        crossTenantAccess(pair),
      ),
      await attempt('no_entanglement_without_channel', 'no entanglement without a channel', () =>
        noEntanglementWithoutChannel(pair),
      ),
      await attempt('channel_use_limit', 'a channel’s use limit holds', () =>
        channelUseLimit(pair),
      ),
      await attempt('released_state_zeroed', 'released state is zeroed', () =>
        releasedStateZeroed(pair),
      ),
    );
  } finally {
    // The tenants go whatever happened; the last self-test is their deletion.
    tests.push(
      await attempt('deleted_tenant_data_key', 'a deleted tenant’s data key is gone', async () => {
        const observations: string[] = [];
        let passed = true;
        for (const t of [tb, ta]) {
          const r = await ctx.call('DeleteTenant', { tenant: t.name });
          deleted.add(t.id);
          observations.push(
            `DeleteTenant ${t.name}: ${r.sessions_closed} sessions closed, ${r.keys_revoked} keys revoked, data key destroyed: ${r.data_key_destroyed}`,
          );
          passed &&= r.data_key_destroyed;
        }
        const after = await pair.a.outcome('KernelService', 'GetUsage', {});
        observations.push(`the deleted tenant’s API key afterwards: ${after}`);
        passed &&= after.startsWith('UNAUTHENTICATED/');
        return {
          id: 'deleted_tenant_data_key',
          claim:
            'Deleting a tenant revokes its keys at once and destroys its data key, so its sealed jobs, results and snapshots never open again',
          passed,
          observations,
        };
      }),
    );
    pair.a.close();
    pair.b.close();
  }

  const { head } = await ctx.call('GetTreeHead', { tree_size: 0 });
  const headProblemText = await headProblem(ctx, head);
  let proof: string[] = [];
  let consistent: boolean | null = null;
  if (previous !== null && head !== null) {
    const res = await ctx.call('GetConsistencyProof', {
      first_tree_size: previous.tree_size,
      second_tree_size: head.tree_size,
    });
    proof = res.proof.map(hex);
    consistent = verifyConsistency(
      previous.tree_size,
      head.tree_size,
      res.proof,
      Buffer.from(previous.root_hash, 'hex'),
      head.root_hash,
    );
  }
  const base: Omit<EvidenceReport, 'claims'> = {
    format: EVIDENCE_FORMAT,
    generated_at: new Date().toISOString(),
    daemon: {
      version: status.version,
      engine: status.engine,
      pool_threads: status.pool_threads,
      schema_version: status.schema_version,
      started_at_unix_ms: status.started_at_unix_ms,
      tenant_address: status.tenant_address,
      state_dir: status.state_dir,
      signing_key_id: status.signing_key_id,
      storage_free_min_bytes: status.storage_free_min_bytes,
      tenants: status.tenants,
    },
    qmkctl: { node: process.version },
    authorization: Object.entries(AUTHZ_TABLE).map(([method, e]) => ({
      method,
      principal: e.principal,
      roles: 'roles' in e ? [...e.roles] : [],
    })),
    quotas: Object.fromEntries(
      TIERS.map((tier) => {
        const d = TIER_DEFAULTS[tier];
        const quota = Object.fromEntries(QUOTA_FIELDS.map((f) => [f.wire, d.quota[f.key]]));
        return [tier, { weight: d.weight, caps: [...d.caps], quota }];
      }),
    ),
    self_tests: tests,
    temporary_tenants: created.map((t) => ({
      name: t.name,
      tenant_id: t.id,
      deleted: deleted.has(t.id),
    })),
    audit: {
      head: {
        tree_size: head?.tree_size ?? 0,
        root_hash: hex(head?.root_hash ?? Buffer.alloc(0)),
        timestamp_unix_ms: head?.timestamp_unix_ms ?? 0,
        key_id: head?.key_id ?? 0,
        signature: Buffer.from(head?.signature ?? Buffer.alloc(0)).toString('base64'),
      },
      head_signature_valid: headProblemText === null,
      previous,
      consistency_proof: proof,
      consistency_verified: consistent,
    },
  };
  const report: EvidenceReport = { ...base, claims: claims(base) };
  const digest = reportDigest(report);
  const s = await ctx.call('SignEvidence', { report_sha256: digest });
  const signed: SignedEvidence = {
    report,
    signature: {
      algorithm: 'Ed25519',
      key_id: s.key_id,
      report_sha256: hex(digest),
      signed_payload: Buffer.from(s.signed_payload).toString('base64'),
      signature: Buffer.from(s.signature).toString('base64'),
      signed_at_unix_ms: s.signed_at_unix_ms,
    },
  };
  const dir = resolve(ctx.flags.str('out') ?? '.');
  mkdirSync(dir, { recursive: true });
  const stem = `qmk-evidence-${report.generated_at.replace(/[:.]/g, '-')}`;
  const jsonFile = join(dir, `${stem}.json`);
  const htmlFile = join(dir, `${stem}.html`);
  writeFileSync(jsonFile, `${JSON.stringify(signed, null, 2)}\n`);
  writeFileSync(htmlFile, renderEvidenceHtml(signed));
  const failed = tests.filter((t) => !t.passed);
  ctx.show({ json: jsonFile, html: htmlFile, ...signed }, () =>
    [
      ...tests.map((t) => `${t.passed ? 'PASS' : 'FAIL'}  ${t.id}`),
      `audit head: ${report.audit.head.tree_size} records, signature ${report.audit.head_signature_valid ? 'valid' : 'INVALID'}`,
      previous === null
        ? 'consistency: no previous report given (--previous FILE)'
        : `consistency with the previous report (${previous.tree_size} records): ${consistent ? 'verified' : 'FAILED'}`,
      `signed by kernel key ${s.key_id}; report sha256 ${hex(digest)}`,
      `written: ${jsonFile}`,
      `         ${htmlFile}`,
    ].join('\n'),
  );
  if (failed.length > 0)
    throw new Error(`self-tests failed: ${failed.map((t) => t.id).join(', ')}`);
  if (headProblemText !== null) throw new Error(`audit head: ${headProblemText}`);
  if (consistent === false)
    throw new Error('the audit log is not consistent with the previous report');
}

/** --previous FILE: a signed report of this daemon; its audit head is where the proof starts. */
function readPrevious(
  ctx: Ctx,
  keys: ReadonlyMap<number, string>,
): EvidenceReport['audit']['previous'] {
  const file = ctx.flags.str('previous');
  if (file === undefined) return null;
  const signed = JSON.parse(readFileSync(file, 'utf8')) as SignedEvidence;
  const problem = evidenceProblem(signed, keys);
  if (problem !== null) throw new Error(`previous report ${file}: ${problem}`);
  return {
    report_sha256: signed.signature.report_sha256,
    tree_size: signed.report.audit.head.tree_size,
    root_hash: signed.report.audit.head.root_hash,
  };
}

/** `qmkctl evidence verify FILE`: the report's signature against the daemon's signing keys. */
export async function verifyEvidenceFile(ctx: Ctx, file: string): Promise<void> {
  const signed = JSON.parse(readFileSync(file, 'utf8')) as SignedEvidence;
  const problem = evidenceProblem(signed, await publicKeys(ctx));
  const passed = signed.report.self_tests.filter((t) => t.passed).length;
  ctx.show({ file, valid: problem === null, problem }, () =>
    [
      `report: ${file} (${signed.report.generated_at})`,
      `self-tests: ${passed} of ${signed.report.self_tests.length} passed`,
      problem === null
        ? `signature: valid (kernel key ${signed.signature.key_id}, sha256 ${signed.signature.report_sha256})`
        : `signature: FAILED: ${problem}`,
    ].join('\n'),
  );
  if (problem !== null) throw new Error(`evidence ${file}: ${problem}`);
}

export const EVIDENCE_COMMANDS: Record<string, Command> = {
  evidence: {
    args: [],
    flags: ['out', 'previous', 'address', 'tls-ca', 'tls-cert', 'tls-key'],
    run: runEvidence,
  },
  'evidence verify': {
    args: ['FILE'],
    flags: [],
    run: (ctx) => verifyEvidenceFile(ctx, ctx.args[0]!),
  },
};
