/**
 * The metrics endpoint after a known sequence of calls: the gRPC counters under
 * go-grpc-prometheus's names count exactly those calls (refused ones included), the kernel's
 * counters and gauges agree with what happened, and `promtool check metrics` (Prometheus's own
 * linter, Debian package `prometheus`) accepts the exposition.
 */
import { spawnSync } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type Wire,
  adminAuditClient,
  adminClient,
  call,
  callError,
  jobClient,
  kernelClient,
  newTenant,
  removeStateDir,
  startDaemon,
  tempStateDir,
  watchJob,
} from '../support/daemon.js';
import { ghzQasm } from '../support/programs.js';

/** Samples of an exposition: `name{labels}` → value (labels as written, in order). */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/** The value of the sample of `name` whose labels include every one of `labels`. */
function value(s: Map<string, number>, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const hits = [...s].filter(([key]) => {
    const brace = key.indexOf('{');
    const n = brace < 0 ? key : key.slice(0, brace);
    return n === name && want.every((w) => key.includes(w));
  });
  assert.is(hits.length, 1, `one sample of ${name} ${want.join(',')}: ${hits.map((h) => h[0])}`);
  return hits[0]![1];
}

test('a scrape after known calls: gRPC and kernel counters, and promtool accepts it', async () => {
  const d = await startDaemon(tempStateDir());
  const t = await newTenant(d, 'measured');
  const jobs = jobClient(d, t.apiKey);
  const stranger = kernelClient(d, 'qmk_not-a-key');
  try {
    for (let i = 0; i < 3; i++) await call(t.client, 'OpenSession', {});
    for (let i = 0; i < 2; i++) {
      const e = await callError(jobs, 'GetJob', { job_id: `missing-${i}` });
      assert.is(e.code, grpc.status.NOT_FOUND);
    }
    const bad = await callError(stranger, 'GetUsage', {});
    assert.is(bad.code, grpc.status.UNAUTHENTICATED);
    const sub = await call<Wire>(jobs, 'SubmitJob', {
      program: { format: 'PROGRAM_FORMAT_OPENQASM2', source: ghzQasm(2) },
      shots: 50,
    });
    const updates = await watchJob(jobs, sub.job.job_id);
    const admin = adminClient(d);
    const st = await call<Wire>(admin, 'GetStatus', {});
    admin.close();
    // The status shows the audit tree the AuditService signs, and the pool's use.
    const auditor = adminAuditClient(d);
    const head = await call<Wire>(auditor, 'GetTreeHead', {});
    auditor.close();
    assert.is(Number(st.audit_tree_size), Number(head.head.tree_size));
    assert.is(st.audit_tree_root, Buffer.from(head.head.root_hash).toString('hex'));
    assert.is(st.pool_threads_busy, 0, 'no job running');
    assert.is(st.draining, false);

    const res = await fetch(d.metricsUrl);
    assert.is(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await res.text();
    const s = samples(text);
    const kernel = { grpc_service: 'qmk.v1.KernelService', grpc_type: 'unary' };
    assert.is(value(s, 'grpc_server_started_total', { ...kernel, grpc_method: 'OpenSession' }), 3);
    assert.is(
      value(s, 'grpc_server_handled_total', {
        ...kernel,
        grpc_method: 'OpenSession',
        grpc_code: 'OK',
      }),
      3,
    );
    assert.is(value(s, 'grpc_server_msg_received_total', { grpc_method: 'OpenSession' }), 3);
    assert.is(value(s, 'grpc_server_msg_sent_total', { grpc_method: 'OpenSession' }), 3);
    assert.is(value(s, 'grpc_server_handling_seconds_count', { grpc_method: 'OpenSession' }), 3);
    assert.is(
      value(s, 'grpc_server_handled_total', { grpc_method: 'GetJob', grpc_code: 'NOT_FOUND' }),
      2,
    );
    // Refused before any handler: counted all the same.
    assert.is(
      value(s, 'grpc_server_handled_total', {
        grpc_method: 'GetUsage',
        grpc_code: 'UNAUTHENTICATED',
      }),
      1,
    );
    assert.is(
      value(s, 'grpc_server_msg_sent_total', {
        grpc_method: 'WatchJob',
        grpc_type: 'server_stream',
      }),
      updates.length,
    );
    assert.is(value(s, 'qmk_refusals_total', { code: 'NOT_FOUND' }), 2);
    assert.is(value(s, 'qmk_refusals_total', { code: 'CREDENTIAL_INVALID' }), 1);
    assert.is(value(s, 'qmk_tenant_calls_total', { tenant: t.tenantId, outcome: 'refused' }), 2);
    // OpenSession ×3, SubmitJob, WatchJob (the scrape came after GetStatus on the admin socket).
    assert.is(value(s, 'qmk_tenant_calls_total', { tenant: t.tenantId, outcome: 'ok' }), 5);
    assert.is(value(s, 'qmk_jobs', { state: 'DONE' }), 1);
    assert.is(value(s, 'qmk_job_queue_depth'), 0);
    assert.is(value(s, 'qmk_tenant_jobs_finished_total', { tenant: t.tenantId, state: 'DONE' }), 1);
    assert.is(value(s, 'qmk_job_run_seconds_count'), 1);
    assert.is(value(s, 'qmk_audit_seq'), st.audit_seq);
    assert.ok(value(s, 'qmk_store_commit_batch_size_count') >= 1);
    assert.ok(value(s, 'qmk_store_commit_seconds_sum') > 0);
    assert.ok(value(s, 'qmk_storage_free_bytes') > 0);
    assert.is(value(s, 'qmk_pool_threads'), 3);
    assert.ok(value(s, 'process_resident_memory_bytes') > 0);

    const promtool = spawnSync('promtool', ['check', 'metrics'], {
      input: text,
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (promtool.error) {
      throw new Error(
        `promtool is needed (Debian package prometheus; .ci/run installs it): ${promtool.error.message}`,
      );
    }
    assert.is(promtool.status, 0, `promtool check metrics:\n${promtool.stdout}${promtool.stderr}`);
    const notFound = await fetch(d.metricsUrl.replace(/\/metrics$/, '/other'));
    assert.is(notFound.status, 404);
  } finally {
    for (const c of [t.client, jobs, stranger]) c.close();
    await d.stop();
    removeStateDir(d.stateDir);
  }
});

test('--metrics-listen off: no listener', async () => {
  const d = await startDaemon(tempStateDir(), { QMK_METRICS_LISTEN: 'off' });
  try {
    assert.is(d.metricsUrl, 'off');
  } finally {
    await d.stop();
    removeStateDir(d.stateDir);
  }
});

test.run();
