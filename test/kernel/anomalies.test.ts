/**
 * Anomaly detection (`kernel/anomalies.ts`) with an injected clock: sliding-window counts, which
 * refusals count toward which type, thresholds from the tenant's quota, the three responses
 * (record, throttle for a period, suspend with a reason), failed authentications per address,
 * and the bounded audit of refusals (first per window at once, the rest summed).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  AUTH_FAILURES_ANOMALY_MAX,
  Anomalies,
  type Anomaly,
  type AnomalyResponse,
  type AnomalyType,
  DEFAULT_ANOMALY_RESPONSES,
  REFUSAL_AUDIT_WINDOW_MS,
  THROTTLE_RATE_DIVISOR,
  WindowCount,
  anomalyTypeOf,
} from '../../src/kernel/anomalies.js';
import type { Principal, Tenant } from '../../src/kernel/model.js';
import type { AuditEvent } from '../../src/kernel/ports.js';

function tenant(id: string, overrides: Tenant['quotaOverrides'] = {}): Tenant {
  return {
    id,
    name: id,
    tier: 'pro',
    weight: 0,
    status: 'active',
    suspendReason: '',
    quotaOverrides: overrides,
    createdAtMs: 0,
  };
}

function setup(responses: Partial<Record<AnomalyType, AnomalyResponse>> = {}) {
  let now = 1_000_000;
  const events: AuditEvent[] = [];
  const anomalies: Anomaly[] = [];
  const suspended: [string, string][] = [];
  const tenants = new Map([
    ['t-probe', tenant('t-probe', { anomalyFirewallRefusalsMax: 5 })],
    ['t-honest', tenant('t-honest')],
  ]);
  const a = new Anomalies({
    clock: { nowMs: () => now },
    tenant: (id) => tenants.get(id),
    audit: (e) => events.push(...e),
    responses: { ...DEFAULT_ANOMALY_RESPONSES, ...responses },
    throttleMs: 60_000,
  });
  a.listeners.push((x) => anomalies.push(x));
  a.suspend = async (id, reason) => {
    suspended.push([id, reason]);
  };
  return {
    a,
    events,
    anomalies,
    suspended,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

const as = (id: string): Principal => ({
  kind: 'tenant',
  tenantId: id,
  keyId: 'k1',
  roles: ['tenant_admin'],
});
const firewall = (id: string) => ({
  principal: as(id),
  peer: '127.0.0.1',
  method: 'ApplyGates',
  code: 'FIREWALL_NO_CHANNEL',
  field: '',
});

test('WindowCount: counts within the window, forgets what slid out', () => {
  const c = new WindowCount();
  assert.is(c.add(0, 1000), 1);
  assert.is(c.add(500, 1000), 2);
  assert.is(c.add(950, 1000), 3);
  // At 1050 the slot of t=0 has slid out; 500 and 950 remain.
  assert.is(c.add(1050, 1000), 3);
  assert.is(c.add(5000, 1000), 1, 'everything earlier slid out');
  assert.ok(!c.idle(5500));
  assert.ok(c.idle(6100));
});

test('anomalyTypeOf: each refusal kind → its type; others and successes → none', () => {
  assert.is(anomalyTypeOf('FIREWALL_NO_CHANNEL', '', true), 'firewall_probing');
  assert.is(anomalyTypeOf('CHANNEL_REVOKED', '', true), 'firewall_probing');
  assert.is(anomalyTypeOf('NOT_FOUND', 'job_id', true), 'denial_probing');
  assert.is(anomalyTypeOf('RIGHTS_INSUFFICIENT', '', true), 'denial_probing');
  assert.is(anomalyTypeOf('CAP_MISSING', '', true), 'denial_probing');
  assert.is(anomalyTypeOf('QUOTA_EXCEEDED', 'api_calls_per_minute', true), 'rate_flooding');
  assert.is(anomalyTypeOf('QUOTA_EXCEEDED', 'calls_in_flight_max', true), 'rate_flooding');
  assert.is(anomalyTypeOf('QUOTA_EXCEEDED', 'sessions_max', true), 'quota_pressure');
  assert.is(anomalyTypeOf('LIMIT_EXCEEDED', 'program', true), 'quota_pressure');
  assert.is(anomalyTypeOf('CREDENTIAL_INVALID', '', false), 'auth_failures');
  assert.is(
    anomalyTypeOf('QUOTA_EXCEEDED', 'failed_authentications_per_minute', false),
    'auth_failures',
  );
  assert.is(anomalyTypeOf('PROGRAM_INVALID', '', true), null);
  assert.is(anomalyTypeOf('STORAGE_FULL', '', true), null);
  assert.is(anomalyTypeOf('INVALID_ARGUMENT', 'shots', true), null);
});

test('firewall probing: the Nth refusal in the window → one anomaly, suspended with the reason', () => {
  const s = setup();
  for (let i = 0; i < 4; i++) s.a.refused(firewall('t-probe'));
  assert.is(s.anomalies.length, 0, 'below the threshold of 5');
  s.a.refused(firewall('t-probe'));
  assert.is(s.anomalies.length, 1);
  const x = s.anomalies[0]!;
  assert.equal(
    [x.type, x.severity, x.tenantId, x.count, x.threshold, x.response],
    ['firewall_probing', 'high', 't-probe', 5, 5, 'suspend'],
  );
  assert.is(s.suspended.length, 1);
  assert.is(s.suspended[0]![0], 't-probe');
  assert.match(s.suspended[0]![1], 'anomaly firewall_probing: 5 refusals in 60 s');
  const record = s.events.find((e) => e.action === 'Anomaly')!;
  assert.is(record.actor, 'kernel');
  assert.is(record.target, 't-probe');
  assert.equal(record.tenants, ['t-probe']);
  assert.is((record.detail as { response: string }).response, 'suspend');
  // The honest tenant's refusals (fewer than its threshold) change nothing.
  for (let i = 0; i < 5; i++) s.a.refused(firewall('t-honest'));
  assert.is(s.anomalies.length, 1);
});

test('firewall probing: refusals spread wider than the window → no anomaly', () => {
  const s = setup();
  for (let i = 0; i < 20; i++) {
    s.a.refused(firewall('t-probe'));
    s.advance(16_000); // 4 refusals per minute, threshold 5 per minute
  }
  assert.is(s.anomalies.length, 0);
});

test('throttle: rates divided for the period, then back; the record says until when', () => {
  const s = setup({ firewall_probing: 'throttle' });
  assert.is(s.a.rateDivisor('t-probe'), 1);
  for (let i = 0; i < 5; i++) s.a.refused(firewall('t-probe'));
  assert.is(s.anomalies[0]!.response, 'throttle');
  assert.is(s.suspended.length, 0);
  assert.is(s.a.rateDivisor('t-probe'), THROTTLE_RATE_DIVISOR);
  assert.is(s.a.rateDivisor('t-honest'), 1);
  s.advance(59_999);
  assert.is(s.a.rateDivisor('t-probe'), THROTTLE_RATE_DIVISOR);
  s.advance(1);
  assert.is(s.a.rateDivisor('t-probe'), 1);
});

test('record: an anomaly and nothing else; the count starts afresh after it', () => {
  const s = setup({ firewall_probing: 'record' });
  for (let i = 0; i < 9; i++) s.a.refused(firewall('t-probe'));
  assert.is(s.anomalies.length, 1, 'the 6th–9th count toward the next one');
  s.a.refused(firewall('t-probe'));
  assert.is(s.anomalies.length, 2);
  assert.is(s.a.rateDivisor('t-probe'), 1);
  assert.is(s.suspended.length, 0);
});

test('failed authentications: counted per address, recorded only', () => {
  const s = setup({ firewall_probing: 'suspend' });
  const fail = (peer: string) =>
    s.a.refused({
      principal: null,
      peer,
      method: 'GetUsage',
      code: 'CREDENTIAL_INVALID',
      field: '',
    });
  for (let i = 0; i < AUTH_FAILURES_ANOMALY_MAX - 1; i++) fail('10.0.0.1');
  fail('10.0.0.2');
  assert.is(s.anomalies.length, 0);
  fail('10.0.0.1');
  assert.is(s.anomalies.length, 1);
  const x = s.anomalies[0]!;
  assert.equal(
    [x.type, x.tenantId, x.peer, x.response],
    ['auth_failures', null, '10.0.0.1', 'record'],
  );
  assert.is(s.events.find((e) => e.action === 'Anomaly')!.target, 'peer:10.0.0.1');
});

test('refusal audit: the first of a kind at once, the rest of its window summed in one record', () => {
  const s = setup();
  const notFound = {
    principal: as('t-honest'),
    peer: '127.0.0.1',
    method: 'GetJob',
    code: 'NOT_FOUND',
    field: 'job_id',
  };
  for (let i = 0; i < 7; i++) s.a.refused(notFound);
  const denied = () => s.events.filter((e) => e.outcome === 'denied:NOT_FOUND');
  assert.is(denied().length, 1, 'one record for 7 refusals so far');
  assert.equal(denied()[0]!.detail, { count: 1, window_seconds: REFUSAL_AUDIT_WINDOW_MS / 1000 });
  assert.is(denied()[0]!.actor, 't-honest/k1');
  assert.is(denied()[0]!.action, 'GetJob');
  s.a.sweep();
  assert.is(denied().length, 1, 'the window is still open');
  s.advance(REFUSAL_AUDIT_WINDOW_MS);
  s.a.sweep();
  assert.is(denied().length, 2);
  assert.is((denied()[1]!.detail as { count: number }).count, 6, 'the other 6, summed');
  // Firewall refusals are audited where they are decided, not here.
  s.a.refused(firewall('t-honest'));
  assert.is(s.events.filter((e) => e.outcome === 'denied:FIREWALL_NO_CHANNEL').length, 0);
});

test.run();
