/**
 * The QVM graph JSON adapter: decides whether an already `JSON.parse`d value has the shape of a
 * QVM v0.1 program (docs/programs.md, rules 1 and 2 and the types of every node field) and maps it to
 * the internal `Program`. Layer: kernel (pure); imports only `kernel/` and node built-ins.
 *
 * Invariants: it never throws on any input — arrays where objects belong, numbers where strings
 * belong, null, deep junk, prototype keys (`__proto__`, `constructor`) — because it reads only own
 * properties and never recurses except into guards, whose depth and size are bounded. Every shape
 * fault becomes a violation; unknown fields (`description`) are ignored.
 *
 * Why a separate pass from the verifier: the verifier checks meaning on the one internal program
 * both formats produce; only this file sees JSON. It still returns a program when `program.nodes`
 * and the `resources` lists are arrays (of strings), so one round trip reports both kinds of
 * fault: a node with junk fields keeps its well-typed parts, and `mergeViolations` drops the
 * verifier's echo of a fault reported here. A node without a string id or with an unknown op is
 * left out of the program: the verifier could say nothing true about it.
 */
import { PROGRAM_NODES_MAX } from '../limits.js';
import {
  type Guard,
  OPCODES,
  type Opcode,
  type Program,
  type ProgramArgs,
  type ProgramNode,
  type Violation,
} from './ir.js';
import { ViolationList, quote } from './verify.js';

export const QVM_VERSION = '0.1';
export const IDENTIFIER_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Identifiers are names, not payloads: 128 characters is far beyond any real one. */
export const IDENTIFIER_CHARS_MAX = 128;
/** Compiled-in ceiling on nodes (`limits.ts`); a tenant's `limits.nodesMax` (rule 10) is lower. */
export { PROGRAM_NODES_MAX };
/** Compiled-in ceiling on every name list (`resources.vqs`, a node's `vqs`, ...). */
export const NAMES_PER_LIST_MAX = 1 << 16;
/** Guard nesting depth (a leaf at the top is depth 1): bounds the parser's recursion. */
export const GUARD_DEPTH_MAX = 16;
/** Guard terms (leaves and and/or nodes) per node: bounds the work on one guard. */
export const GUARD_TERMS_MAX = 256;
export const COUNTS_ORDER = 'events in resources.events order, first event leftmost';

const OPCODE_SET: ReadonlySet<string> = new Set(OPCODES);
const MASKS: ReadonlySet<string> = new Set(['I', 'X', 'Y', 'Z']);
const NUMBER_ARGS = ['theta', 'angle', 'n', 'fidelity'] as const;
const STRING_ARGS = ['profile', 'channel', 'semantic', 'tag'] as const;

type Json = Record<string, unknown>;

/**
 * Maps a parsed QVM graph to a `Program`, with every shape violation. `program` is null when the
 * top level has no usable `program.nodes` or `resources`; it may be non-null with violations.
 * Never throws.
 */
export function parseQvm(json: unknown): { program: Program | null; violations: Violation[] } {
  const out = new ViolationList();
  const program = parseTop(json, out);
  return { program, violations: out.finish() };
}

function parseTop(json: unknown, out: ViolationList): Program | null {
  if (!isRecord(json)) {
    out.add('', '', 1, `a QVM program must be a JSON object, got ${describe(json)}`);
    return null;
  }
  const version = own(json, 'version');
  if (version !== QVM_VERSION) {
    out.add('', 'version', 1, `version must be "${QVM_VERSION}", got ${describe(version)}`);
  }
  const resources = parseResources(own(json, 'resources'), out);
  const caps = own(json, 'caps');
  const declaredCaps = caps === undefined ? [] : (nameList(caps, 'caps', 1, '', out) ?? []);
  const rawNodes = nodeArray(own(json, 'program'), out);
  const nodes: ProgramNode[] = [];
  for (let i = 0; i < (rawNodes?.length ?? 0); i++) {
    const node = parseNode(rawNodes?.[i], i, out);
    if (node !== null) nodes.push(node);
  }
  if (resources === null || rawNodes === null) return null;
  return {
    format: 'qvm',
    qubits: resources.vqs,
    channels: resources.chs,
    events: resources.events,
    nodes,
    declaredCaps,
    countsOrder: COUNTS_ORDER,
  };
}

function nodeArray(program: unknown, out: ViolationList): unknown[] | null {
  if (!isRecord(program)) {
    out.add(
      '',
      'program',
      1,
      `program must be an object with a nodes array, got ${describe(program)}`,
    );
    return null;
  }
  const nodes = own(program, 'nodes');
  if (!Array.isArray(nodes) || nodes.length === 0) {
    const got = Array.isArray(nodes) ? 'an empty array' : describe(nodes);
    out.add('', 'program.nodes', 1, `program.nodes must be a non-empty array, got ${got}`);
    return null;
  }
  if (nodes.length > PROGRAM_NODES_MAX) {
    const text = `program.nodes has ${nodes.length} nodes; the kernel takes ${PROGRAM_NODES_MAX}`;
    out.add('', 'program.nodes', 10, text);
    return null;
  }
  return nodes;
}

/** Rule 1: `resources.vqs/chs/events` are arrays of unique identifiers; missing `chs` is empty. */
function parseResources(
  raw: unknown,
  out: ViolationList,
): { vqs: string[]; chs: string[]; events: string[] } | null {
  if (!isRecord(raw)) {
    out.add(
      '',
      'resources',
      1,
      `resources must be an object with vqs, chs and events arrays, got ${describe(raw)}`,
    );
    return null;
  }
  const chsRaw = own(raw, 'chs');
  const vqs = identifierList(own(raw, 'vqs'), 'resources.vqs', out);
  const chs = chsRaw === undefined ? [] : identifierList(chsRaw, 'resources.chs', out);
  const events = identifierList(own(raw, 'events'), 'resources.events', out);
  return vqs === null || chs === null || events === null ? null : { vqs, chs, events };
}

/**
 * A declared-name list: every entry an identifier, none repeated. A non-string entry makes the
 * list unusable (null: no program), because later paths into it (`resources.events[k]`) must
 * index the array the tenant wrote; a repeat or a non-identifier is reported and kept for the
 * same reason (the verifier works on sets, so a repeat changes nothing else).
 */
function identifierList(raw: unknown, path: string, out: ViolationList): string[] | null {
  const first = new Map<string, number>();
  return nameList(raw, path, 1, '', out, (name, i) => {
    if (!isIdentifier(name)) {
      const rule = `${IDENTIFIER_PATTERN.source}, at most ${IDENTIFIER_CHARS_MAX} characters`;
      out.add('', `${path}[${i}]`, 1, `${quote(name)} is not an identifier (${rule})`);
    }
    const j = first.get(name);
    if (j === undefined) first.set(name, i);
    else out.add('', `${path}[${i}]`, 1, `${quote(name)} is declared twice (first at [${j}])`);
  });
}

/**
 * One node. Fields are checked independently so one pass reports every fault; the node joins
 * the program only with a string id and a known op.
 */
function parseNode(raw: unknown, i: number, out: ViolationList): ProgramNode | null {
  const path = `program.nodes[${i}]`;
  if (!isRecord(raw)) {
    out.add('', path, 2, `a node must be an object, got ${describe(raw)}`);
    return null;
  }
  const id = own(raw, 'id');
  const nodeId = typeof id === 'string' ? id : '';
  if (typeof id !== 'string') {
    out.add('', `${path}.id`, 2, `node id must be an identifier string, got ${describe(id)}`);
  } else if (!isIdentifier(id)) {
    out.add(
      nodeId,
      `${path}.id`,
      2,
      `node id ${quote(id)} is not an identifier (${IDENTIFIER_PATTERN.source})`,
    );
  }
  const op = own(raw, 'op');
  if (!isOpcode(op)) {
    const got = typeof op === 'string' ? quote(op) : describe(op);
    out.add(nodeId, `${path}.op`, 2, `unknown op ${got}: see the opcode table in QVM.md §1`);
  }
  const list = (key: string) => {
    const v = own(raw, key);
    return v === undefined ? [] : (nameList(v, `${path}.${key}`, 6, nodeId, out) ?? []);
  };
  const qubits = list('vqs');
  const channels = list('chs');
  const inputs = list('inputs');
  const produces = list('produces');
  const args = parseArgs(own(raw, 'args'), `${path}.args`, nodeId, out);
  const caps = own(raw, 'caps');
  if (caps !== undefined) nameList(caps, `${path}.caps`, 8, nodeId, out);
  const guardRaw = own(raw, 'guard');
  const guard =
    guardRaw === undefined
      ? null
      : parseGuard(guardRaw, `${path}.guard`, 1, { terms: 0 }, nodeId, out);
  if (typeof id !== 'string' || !isOpcode(op)) return null;
  const node: ProgramNode = { id, op, qubits, channels, inputs, produces, args, source: path };
  if (guard !== null) node.guard = guard;
  return node;
}

/**
 * A list of names (declared, or named by a node). Any non-string entry voids the list (with a
 * violation per entry), so the verifier's paths `vqs[j]` index the array the tenant wrote.
 * Entries are read by index: a sparse array's holes are faults, not skipped.
 */
function nameList(
  raw: unknown,
  path: string,
  rule: number,
  nodeId: string,
  out: ViolationList,
  each: (name: string, i: number) => void = () => {},
): string[] | null {
  if (!Array.isArray(raw)) {
    out.add(nodeId, path, rule, `${path} must be an array of names, got ${describe(raw)}`);
    return null;
  }
  if (raw.length > NAMES_PER_LIST_MAX) {
    const text = `${path} has ${raw.length} entries; the kernel takes ${NAMES_PER_LIST_MAX}`;
    out.add(nodeId, path, 10, text);
    return null;
  }
  const names: string[] = [];
  for (let i = 0; i < raw.length; i++) {
    const name: unknown = raw[i];
    if (typeof name !== 'string') {
      out.add(nodeId, `${path}[${i}]`, rule, `must be a name string, got ${describe(name)}`);
      continue;
    }
    names.push(name);
    each(name, i);
  }
  return names.length === raw.length ? names : null;
}

const isNumber = (v: unknown): v is number => typeof v === 'number';
const isString = (v: unknown): v is string => typeof v === 'string';

/** The entries of `raw` among `keys` whose value is a `type`; any other value given is a violation. */
function typedArgs<K extends string, T>(
  raw: Json,
  keys: readonly K[],
  type: string,
  is: (v: unknown) => v is T,
  where: { path: string; nodeId: string; out: ViolationList },
): [K, T][] {
  const found: [K, T][] = [];
  for (const key of keys) {
    const v = own(raw, key);
    if (is(v)) {
      found.push([key, v]);
    } else if (v !== undefined) {
      const { path, nodeId, out } = where;
      out.add(nodeId, `${path}.${key}`, 6, `${key} must be a ${type}, got ${describe(v)}`);
    }
  }
  return found;
}

/** Rule 6 (types only): known keys typed, unknown keys ignored; the verifier checks the values. */
function parseArgs(raw: unknown, path: string, nodeId: string, out: ViolationList): ProgramArgs {
  const args: ProgramArgs = {};
  if (raw === undefined) return args;
  if (!isRecord(raw)) {
    out.add(nodeId, path, 6, `args must be an object, got ${describe(raw)}`);
    return args;
  }
  const where = { path, nodeId, out };
  for (const [key, v] of typedArgs(raw, NUMBER_ARGS, 'number', isNumber, where)) args[key] = v;
  for (const [key, v] of typedArgs(raw, STRING_ARGS, 'string', isString, where)) args[key] = v;
  // `pauli` is QMK's older name for `mask`; both may be given only if they agree.
  const mask = own(raw, 'mask');
  const pauli = own(raw, 'pauli');
  for (const [key, v] of [
    ['mask', mask],
    ['pauli', pauli],
  ] as const) {
    if (v === undefined) continue;
    if (typeof v === 'string' && MASKS.has(v)) {
      args.mask = v as NonNullable<ProgramArgs['mask']>;
    } else {
      out.add(nodeId, `${path}.${key}`, 6, `${key} must be one of I, X, Y, Z, got ${describe(v)}`);
    }
  }
  if (mask !== undefined && pauli !== undefined && mask !== pauli) {
    out.add(nodeId, `${path}.pauli`, 6, 'mask and its alias pauli are both given and differ');
  }
  return args;
}

/**
 * A guard: `{event, equals: 0|1}` or `{type: 'and'|'or', conditions: [guard, ...]}` (non-empty).
 * Recursion is at most `GUARD_DEPTH_MAX` deep and visits at most `GUARD_TERMS_MAX` terms.
 */
function parseGuard(
  raw: unknown,
  path: string,
  depth: number,
  budget: { terms: number },
  nodeId: string,
  out: ViolationList,
): Guard | null {
  budget.terms += 1;
  if (budget.terms > GUARD_TERMS_MAX) {
    out.add(nodeId, path, 6, `guard has more than ${GUARD_TERMS_MAX} terms`);
    return null;
  }
  if (depth > GUARD_DEPTH_MAX) {
    out.add(nodeId, path, 6, `guard is nested more than ${GUARD_DEPTH_MAX} deep`);
    return null;
  }
  if (!isRecord(raw)) {
    out.add(nodeId, path, 6, `a guard must be an object, got ${describe(raw)}`);
    return null;
  }
  const event = own(raw, 'event');
  const type = own(raw, 'type');
  if ((event === undefined) === (type === undefined)) {
    out.add(nodeId, path, 6, 'a guard has either event and equals, or type and conditions');
    return null;
  }
  if (event !== undefined) {
    const equals = own(raw, 'equals');
    if (typeof event !== 'string') {
      out.add(nodeId, `${path}.event`, 6, `event must be a name string, got ${describe(event)}`);
    }
    if (equals !== 0 && equals !== 1) {
      out.add(nodeId, `${path}.equals`, 6, `equals must be 0 or 1, got ${describe(equals)}`);
    }
    return typeof event === 'string' && (equals === 0 || equals === 1) ? { event, equals } : null;
  }
  if (type !== 'and' && type !== 'or') {
    out.add(nodeId, `${path}.type`, 6, `type must be "and" or "or", got ${describe(type)}`);
  }
  const raws = own(raw, 'conditions');
  if (!Array.isArray(raws) || raws.length === 0) {
    const got = Array.isArray(raws) ? 'an empty array' : describe(raws);
    out.add(
      nodeId,
      `${path}.conditions`,
      6,
      `conditions must be a non-empty array of guards, got ${got}`,
    );
    return null;
  }
  const conditions: Guard[] = [];
  for (let k = 0; k < raws.length && budget.terms <= GUARD_TERMS_MAX; k++) {
    const g = parseGuard(raws[k], `${path}.conditions[${k}]`, depth + 1, budget, nodeId, out);
    if (g !== null) conditions.push(g);
  }
  if (type !== 'and' && type !== 'or') return null;
  return conditions.length === raws.length ? { type, conditions } : null;
}

function isOpcode(v: unknown): v is Opcode {
  return typeof v === 'string' && OPCODE_SET.has(v);
}

function isRecord(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An own property only: `node.constructor` must not find `Object`, nor `__proto__` a prototype. */
function own(obj: Json, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

function isIdentifier(name: string): boolean {
  return name.length <= IDENTIFIER_CHARS_MAX && IDENTIFIER_PATTERN.test(name);
}

/** A value for a message, never by `String(v)`: a null-prototype object has no `toString`. */
function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${quote(v)}`;
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${v}`;
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v}`;
}
