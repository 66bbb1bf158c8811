/**
 * Ended channels stay readable for the retention period, then the sweep deletes them (with an
 * audit record each); live ones are never swept. In-process with an injected clock.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CHANNEL_RETENTION_MS } from '../../src/kernel/channels.js';
import { kernelWithTenant } from '../support/fakes.js';

test('a rejected channel is kept for the retention period, then swept with an audit record; a live one stays', async () => {
  const { kernel, admin, principal, store, clock } = await kernelWithTenant('pro');
  const peer = await admin.createTenant('peer', 'pro', 0, []);
  const peerP = kernel.principals.authenticate(peer.apiKey);
  const far = clock.now + 20 * 24 * 3_600_000;
  const rejected = await kernel.firewall.request(principal, 'peer', 1, far, 'to reject');
  const live = await kernel.firewall.request(principal, 'peer', 1, far, 'to keep');
  await kernel.firewall.respond(peerP, rejected.id, false, 'no');
  await kernel.firewall.respond(peerP, live.id, true, '');

  clock.now += CHANNEL_RETENTION_MS - 1;
  assert.is(await kernel.firewall.sweepRetired(), 0, 'within retention: kept');
  assert.ok(kernel.firewall.get(principal.tenantId, rejected.id), 'still readable');

  clock.now += 1;
  const commitsBefore = store.commits.length;
  assert.is(await kernel.firewall.sweepRetired(), 1);
  const last = store.commits[store.commits.length - 1]!;
  assert.is(store.commits.length, commitsBefore + 1);
  assert.equal(last.records, [{ op: 'del', db: 'channels', key: rejected.id }]);
  assert.equal(
    last.audit.map((a) => [a.action, a.target]),
    [['RetireChannel', rejected.id]],
  );
  assert.throws(() => kernel.firewall.get(principal.tenantId, rejected.id), /no channel/);
  assert.ok(kernel.firewall.get(principal.tenantId, live.id), 'the live channel stays');
});

test.run();
