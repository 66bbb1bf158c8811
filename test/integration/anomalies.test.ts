/**
 * Anomaly detection and response on a running daemon: a tenant probing the firewall (entangling
 * through a channel it has used up, again and again) is suspended once its refusals reach its
 * threshold within the window, with the reason shown to it; the anomaly is audited, listed by
 * `qmkctl anomalies list` and counted in metrics; an honest tenant with a few refusals of its own
 * is untouched, and its refusals are audited (bounded: one record for the first of a kind).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type Daemon,
  type Wire,
  adminAuditClient,
  adminClient,
  call,
  callError,
  removeStateDir,
  startDaemon,
} from '../support/daemon.js';
import { type Party, alloc, channel, closeParty, party, share } from '../support/parties.js';
import { runQmkctl } from '../support/qmkctl.js';

const THRESHOLD = 5;

const cnot = (p: Party, control: string, target: string) =>
  call(p.kernel, 'ApplyGates', { gates: [{ kind: 'GATE_KIND_CNOT', qubits: [control, target] }] });

test('firewall probing: suspended at the threshold, reason shown; an honest tenant untouched', async () => {
  let d: Daemon | null = null;
  const parties: Party[] = [];
  try {
    d = await startDaemon();
    const prober = await party(d, 'prober');
    const victim = await party(d, 'victim');
    const honest = await party(d, 'honest');
    parties.push(prober, victim, honest);
    const admin = adminClient(d);
    await call(admin, 'UpdateTenant', {
      tenant: 'prober',
      quota: { anomaly_firewall_refusals_max: THRESHOLD },
    });
    admin.close();

    // One channel use, spent on the first join; every later join across the two is refused.
    const ch = await channel(prober, victim, 1);
    const [b] = await alloc(victim);
    const shared = await share(victim, ch.channel_id, b!);
    const [a1, a2] = await alloc(prober, 2);
    await cnot(prober, a1!.handle, shared);
    for (let i = 0; i < THRESHOLD; i++) {
      const err = await callError(prober.kernel, 'ApplyGates', {
        gates: [{ kind: 'GATE_KIND_CNOT', qubits: [a2!.handle, shared] }],
      });
      assert.is(err.metadata.get('qmk-error-code')[0], 'CHANNEL_EXHAUSTED', err.details);
    }
    // The honest tenant: a few refusals of its own (unknown job ids), far below its threshold.
    for (let i = 0; i < 3; i++) {
      const err = await callError(honest.jobs, 'GetJob', { job_id: `job-${i}` });
      assert.is(err.metadata.get('qmk-error-code')[0], 'NOT_FOUND');
    }

    const suspended = await callError(prober.kernel, 'GetUsage', {});
    assert.is(suspended.code, 7, 'PERMISSION_DENIED');
    assert.is(suspended.metadata.get('qmk-error-code')[0], 'TENANT_SUSPENDED');
    assert.match(
      suspended.details,
      `anomaly firewall_probing: ${THRESHOLD} refusals in 60 s (threshold ${THRESHOLD})`,
    );
    // The honest tenant and the victim work on.
    const [h] = await alloc(honest);
    await call(honest.kernel, 'ApplyGates', {
      gates: [{ kind: 'GATE_KIND_H', qubits: [h!.handle] }],
    });
    await call(victim.kernel, 'GetUsage', {});

    // The anomaly: audited by the kernel, listed by qmkctl, counted in metrics.
    const auditor = adminAuditClient(d);
    const anomalies = await call<{ records: Wire[] }>(auditor, 'ListAuditRecords', {
      action: 'Anomaly',
      page_size: 100,
    });
    const suspendedBy = await call<{ records: Wire[] }>(auditor, 'ListAuditRecords', {
      action: 'SuspendTenant',
      page_size: 100,
    });
    const honestDenied = await call<{ records: Wire[] }>(auditor, 'ListAuditRecords', {
      tenant_id: honest.id,
      action: 'GetJob',
      page_size: 100,
    });
    auditor.close();
    assert.is(anomalies.records.length, 1, 'one anomaly, the prober’s');
    const record = anomalies.records[0]!;
    assert.is(record.actor, 'kernel');
    assert.is(record.target, prober.id);
    assert.equal(record.tenant_ids, [prober.id]);
    const detail = JSON.parse(record.detail_json);
    assert.equal(
      [detail.type, detail.severity, detail.count, detail.threshold, detail.response],
      ['firewall_probing', 'high', THRESHOLD, THRESHOLD, 'suspend'],
    );
    assert.is(suspendedBy.records.length, 1);
    assert.is(suspendedBy.records[0]!.actor, 'kernel');
    assert.is(suspendedBy.records[0]!.target, prober.id);
    // Three refusals of one kind in one window: one record now (the rest are summed later).
    assert.is(honestDenied.records.length, 1);
    assert.is(honestDenied.records[0]!.outcome, 'denied:NOT_FOUND');

    const listed = await runQmkctl(d.adminSocket, ['anomalies', 'list']);
    assert.is(listed.code, 0, listed.err);
    assert.match(listed.out, /SUBJECT\s+TYPE\s+SEVERITY\s+REFUSALS\s+RESPONSE/);
    assert.match(
      listed.out,
      new RegExp(
        `${prober.id}\\s+firewall_probing\\s+high\\s+${THRESHOLD}/${THRESHOLD} in 60 s\\s+suspend`,
      ),
    );
    assert.not.match(listed.out, honest.id);
    const shown = await runQmkctl(d.adminSocket, ['tenant', 'show', 'prober']);
    assert.match(shown.out, /^status\s+suspended \(reason: anomaly firewall_probing/im);

    const metrics = await (await fetch(d.metricsUrl)).text();
    assert.match(
      metrics,
      'qmk_anomalies_total{type="firewall_probing",severity="high",response="suspend"} 1',
    );

    // The operator resumes it; it works again.
    assert.is((await runQmkctl(d.adminSocket, ['tenant', 'resume', 'prober'])).code, 0);
    await call(prober.kernel, 'GetUsage', {});
  } finally {
    for (const p of parties) closeParty(p);
    if (d) {
      if (d.child.exitCode === null) await d.stop();
      removeStateDir(d.stateDir);
    }
  }
});

test.run();
