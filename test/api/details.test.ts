/**
 * The status-details trailer stays within what every gRPC client accepts: a long list of field
 * violations is cut to fit, its last entry counting what was left out; a short one is whole.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  STATUS_DETAILS_BYTES_MAX,
  decodeStatusDetails,
  statusDetails,
} from '../../src/api/details.js';

const violation = (i: number) => ({
  field: `n${i}: program.nodes[${i}].vqs[0]`,
  description: `vq "undeclared_qubit_with_a_long_name_${i}" is not declared in resources.vqs (rule 3)`,
  reason: 'QVM_RULE_3',
});

test('400 violations: cut to fit the bound, the last entry counts the rest', () => {
  const all = Array.from({ length: 400 }, (_, i) => violation(i));
  const bytes = statusDetails(3, 'program: 400 violation(s)', { badRequest: all });
  assert.ok(bytes.length <= STATUS_DETAILS_BYTES_MAX, `${bytes.length} bytes`);
  const d = decodeStatusDetails(bytes);
  const listed = d.badRequest.length - 1;
  assert.ok(listed > 10, `${listed} listed`);
  assert.equal(d.badRequest.slice(0, listed), all.slice(0, listed));
  const last = d.badRequest[listed]!;
  assert.is(last.reason, 'MORE_VIOLATIONS');
  assert.match(last.description, new RegExp(`^${400 - listed} more violation`));
});

test('a few violations travel whole', () => {
  const all = Array.from({ length: 5 }, (_, i) => violation(i));
  const d = decodeStatusDetails(statusDetails(3, 'program: 5 violation(s)', { badRequest: all }));
  assert.equal(d.badRequest, all);
});

test.run();
