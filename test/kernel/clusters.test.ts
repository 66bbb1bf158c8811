import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClusterGraph } from '../../src/kernel/clusters.js';
import type { GateName } from '../../src/kernel/gate-set.js';
import { groupByConnectivity, splitAfter } from '../../src/kernel/interactive.js';
import type { SimOp } from '../../src/kernel/ports.js';

const g = (name: GateName, ...qubits: string[]): SimOp => ({ kind: 'gate', name, qubits });
const m = (qubit: string): SimOp => ({ kind: 'measure', qubit, basis: 'Z', random: 0.5 });

function graphOf(...qs: string[]): ClusterGraph {
  const graph = new ClusterGraph();
  for (const q of qs) graph.add(graph.planCreate(q));
  return graph;
}

test('clusters: CNOT across two 1-qubit clusters → one merged cluster, parts in first-touch order', () => {
  const graph = graphOf('a', 'b');
  const plan = graph.plan([g('CNOT', 'b', 'a')], []);
  assert.equal(
    plan.parts.map((p) => p.qubits),
    [['b'], ['a']],
  );
  assert.equal(
    plan.results.map((r) => r.qubits),
    [['b', 'a']],
  );
  graph.apply(plan);
  assert.is(graph.size, 1);
  assert.is(graph.clusterOf('a'), graph.clusterOf('b'));
});

test('clusters: single-cluster plan without split → keeps its id', () => {
  const graph = graphOf('a');
  const id = graph.clusterOf('a').id;
  const plan = graph.plan([g('H', 'a'), m('a')], ['a']);
  assert.equal(plan.results, [{ id, qubits: ['a'] }]);
  assert.equal(plan.split, []);
});

test('clusters: measuring one qubit of three → rest cluster first, then the split qubit alone', () => {
  const graph = graphOf('a', 'b', 'c');
  graph.apply(graph.plan([g('TOFFOLI', 'a', 'b', 'c')], []));
  const plan = graph.plan([m('b')], ['b']);
  assert.equal(
    plan.results.map((r) => r.qubits),
    [['a', 'c'], ['b']],
  );
  graph.apply(plan);
  assert.is(graph.size, 2);
  assert.equal(graph.clusterOf('b').qubits, ['b']);
});

test('clusters: measuring every qubit of a cluster → no rest cluster, one per qubit', () => {
  const graph = graphOf('a', 'b');
  graph.apply(graph.plan([g('CNOT', 'a', 'b')], []));
  const plan = graph.plan([m('a'), m('b')], ['a', 'b']);
  assert.equal(
    plan.results.map((r) => r.qubits),
    [['a'], ['b']],
  );
});

test('groupByConnectivity: gates on disjoint qubits → separate groups; shared qubits → one group', () => {
  const ops = [g('H', 'a'), g('H', 'b'), g('CNOT', 'a', 'c'), g('X', 'd'), g('CNOT', 'c', 'd')];
  const groups = groupByConnectivity(ops, (q) => q);
  assert.is(groups.length, 2);
  assert.equal(
    groups[0]!.map((o) => (o as { name: string }).name),
    ['H', 'CNOT', 'X', 'CNOT'],
  );
  assert.equal(
    groups[1]!.map((o) => (o as { name: string }).name),
    ['H'],
  );
});

test('groupByConnectivity: qubits that share a cluster key → one group even without a shared gate', () => {
  const groups = groupByConnectivity([g('X', 'a'), g('X', 'b')], () => 'same');
  assert.is(groups.length, 1);
});

test('splitAfter: a qubit whose last op is a measurement or RESET → split; entangled after → not', () => {
  assert.equal(splitAfter([g('H', 'a'), m('a'), g('RESET', 'b'), m('c'), g('CNOT', 'c', 'a')]), [
    'b',
  ]);
  assert.equal(splitAfter([g('CNOT', 'a', 'b'), m('a'), m('b')]), ['a', 'b']);
});

test.run();
