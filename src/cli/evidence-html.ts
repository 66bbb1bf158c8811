/**
 * The readable page of an evidence report (`qmkctl evidence`): one self-contained HTML file, no
 * script, no outside resource, every value escaped. Layer: cli. The JSON file beside it is what
 * is signed; this page shows the same report and says how to check the signature.
 */
import type { SignedEvidence } from './evidence-model.js';

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(v: unknown): string {
  return String(v).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

function table(headers: string[], rows: unknown[][]): string {
  const head = headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = rows
    .map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`)
    .join('\n');
  return `<table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

const list = (items: string[]) =>
  `<ul>${items.map((i) => `<li>${escapeHtml(i)}</li>`).join('')}</ul>`;

export function renderEvidenceHtml(s: SignedEvidence): string {
  const r = s.report;
  const passed = r.self_tests.filter((t) => t.passed).length;
  const tests = r.self_tests
    .map(
      (t) => `<section class="${t.passed ? 'pass' : 'fail'}">
<h3>${t.passed ? 'PASS' : 'FAIL'} — ${escapeHtml(t.id)}</h3>
<p>${escapeHtml(t.claim)}</p>
${list(t.observations)}
</section>`,
    )
    .join('\n');
  const quotaFields = Object.keys(Object.values(r.quotas)[0]?.quota ?? {});
  const tiers = Object.keys(r.quotas);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>qmkd isolation evidence — ${escapeHtml(r.generated_at)}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #bbb; padding: 0.2rem 0.5rem; text-align: left; font-size: 0.9rem; }
code, .mono { font-family: ui-monospace, monospace; word-break: break-all; }
section { border-left: 0.4rem solid; padding: 0.1rem 1rem; margin: 1rem 0; }
section.pass { border-color: #2a7; } section.fail { border-color: #c33; }
</style>
</head>
<body>
<h1>qmkd isolation evidence</h1>
<p>Generated ${escapeHtml(r.generated_at)} by <code>qmkctl evidence</code> against qmkd
${escapeHtml(r.daemon.version)}; ${passed} of ${r.self_tests.length} self-tests passed.</p>

<h2>Signature</h2>
${table(
  ['field', 'value'],
  [
    ['algorithm', s.signature.algorithm],
    ['kernel signing key', s.signature.key_id],
    ['report SHA-256', s.signature.report_sha256],
    ['signature (base64)', s.signature.signature],
  ],
)}
<p>The signature is Ed25519 over the bytes <code>qmk-evidence-v1</code>, a zero byte, and the
SHA-256 of the report's canonical JSON (the <code>report</code> object of the JSON file, keys
sorted). Check it with <code>qmkctl evidence verify FILE.json</code>, or against the public key
of the same id from <code>ChannelService.GetSigningKeys</code>.</p>

<h2>Claims</h2>
<h3>Supported by this evidence</h3>
${list(r.claims.supported)}
<h3>Not supported by this evidence</h3>
${list(r.claims.not_supported)}

<h2>Self-tests</h2>
<p>Run with two temporary tenants (${r.temporary_tenants.map((t) => escapeHtml(t.name)).join(', ')}),
created, exercised and deleted through the operator API; every step is in the audit log.</p>
${tests}

<h2>Audit log</h2>
${table(
  ['field', 'value'],
  [
    ['tree size (records)', r.audit.head.tree_size],
    ['root hash', r.audit.head.root_hash],
    ['head signed by key', r.audit.head.key_id],
    ['head signature', r.audit.head_signature_valid ? 'valid' : 'INVALID'],
    [
      'previous report',
      r.audit.previous === null
        ? 'none given'
        : `${r.audit.previous.report_sha256} (${r.audit.previous.tree_size} records, root ${r.audit.previous.root_hash})`,
    ],
    [
      'consistency proof',
      r.audit.consistency_verified === null
        ? '-'
        : `${r.audit.consistency_verified ? 'verified' : 'FAILED'}: ${r.audit.consistency_proof.join(' ') || '(empty)'}`,
    ],
  ],
)}

<h2>Daemon</h2>
${table(
  ['setting', 'value'],
  Object.entries(r.daemon).map(([k, v]) => [k, v]),
)}
<p>qmkctl ran on Node.js ${escapeHtml(r.qmkctl.node)}.</p>

<h2>Authorization table</h2>
${table(
  ['method', 'who', 'roles'],
  r.authorization.map((a) => [a.method, a.principal, a.roles.join(', ') || '-']),
)}

<h2>Tier quotas</h2>
${table(
  ['quota', ...tiers],
  [
    ['weight', ...tiers.map((t) => r.quotas[t]!.weight)],
    ['caps', ...tiers.map((t) => r.quotas[t]!.caps.join(', '))],
    ...quotaFields.map((f) => [f, ...tiers.map((t) => r.quotas[t]!.quota[f])]),
  ],
)}
</body>
</html>
`;
}
