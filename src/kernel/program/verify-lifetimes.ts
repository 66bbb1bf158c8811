/**
 * Rule 7 of the static verifier: linearity. Every qubit and channel is allocated before use,
 * used only while allocated, and released once; walked in program order, which every valid
 * schedule keeps per qubit. Guards make the walk conservative: a node under a guard may run, so
 * its qubits become "maybe live" or "maybe freed". Layer: kernel (pure).
 */

import type { ProgramNode } from './ir.js';
import {
  type Index,
  OP_SPECS,
  PROFILE_KEY_IDEAL,
  type VerifyContext,
  type ViolationList,
  physicalPerLogical,
  quote,
  saturatingAdd,
} from './verify-base.js';

// Rule 7: linearity, walked in program order (which every valid schedule keeps per qubit).

/** `maybe*` states come from a guarded ALLOC / FREE (or OPEN / CLOSE): it may not have run. */
type Life = 'unallocated' | 'live' | 'freed' | 'maybeLive' | 'maybeFreed';

interface Track {
  state: Life;
  /** The node (id, field) that set `state`, for messages and the leftover warning. */
  since: { node: string; field: string };
  /** Allocated (or RESET) and untouched since: what INJECT_T_STATE needs. */
  fresh: boolean;
  bound: boolean;
  physical: number;
  profile: string | null;
}

export interface Lifetimes {
  peakLive: number;
  /** The first node after which the live count exceeds `limits.qubitsLiveMax`. */
  liveOverAt: string | null;
  peakPhysical: number;
  physicalOverAt: string | null;
  byProfileAtPeak: Map<string, number>;
}

const counted = (s: Life) => s === 'live' || s === 'maybeLive' || s === 'maybeFreed';

/** Qubit words; channels reuse the walk with their own. */
const QUBIT_WORDS = { what: 'vq', open: 'ALLOC_LQ', close: 'FREE_LQ', held: 'allocated' };
const CHANNEL_WORDS = { what: 'channel', open: 'OPEN_CHAN', close: 'CLOSE_CHAN', held: 'open' };
type Words = typeof QUBIT_WORDS;

/** Live and physical counts over the walk, with their peaks and where a limit was first passed. */
class Ledger {
  live = 0;
  physical = 0;
  private readonly byProfile = new Map<string, number>();
  readonly result: Lifetimes;

  constructor(
    private readonly limits: VerifyContext['limits'],
    bound: number,
  ) {
    this.live = bound;
    this.result = {
      peakLive: bound,
      liveOverAt: null,
      peakPhysical: 0,
      physicalOverAt: null,
      byProfileAtPeak: new Map(),
    };
  }

  /** A qubit entered (+1) or left (-1) the live set. Bound qubits cost no new hardware. */
  move(t: Track, delta: 1 | -1): void {
    this.live += delta;
    if (t.bound || t.physical === 0) return;
    this.physical = saturatingAdd(this.physical, delta * t.physical);
    const key = t.profile ?? PROFILE_KEY_IDEAL;
    this.byProfile.set(key, (this.byProfile.get(key) ?? 0) + delta * t.physical);
  }

  /** After each node: record peaks and the first node past each limit. */
  settle(nodeId: string): void {
    const r = this.result;
    r.peakLive = Math.max(r.peakLive, this.live);
    if (this.live > this.limits.qubitsLiveMax && r.liveOverAt === null) r.liveOverAt = nodeId;
    if (this.physical > r.peakPhysical) {
      r.peakPhysical = this.physical;
      r.byProfileAtPeak = new Map([...this.byProfile].filter(([, v]) => v > 0));
    }
    if (this.physical > this.limits.physicalQubitsMax && r.physicalOverAt === null) {
      r.physicalOverAt = nodeId;
    }
  }
}

function newTrack(): Track {
  return {
    state: 'unallocated',
    since: { node: '', field: '' },
    fresh: false,
    bound: false,
    physical: 0,
    profile: null,
  };
}

export function checkLinearity(ix: Index, ctx: VerifyContext, out: ViolationList): Lifetimes {
  const qubits = new Map<string, Track>();
  const channels = new Map<string, Track>();
  for (const name of ix.qubits) qubits.set(name, newTrack());
  for (const name of ix.channels) channels.set(name, newTrack());
  let bound = 0;
  (ctx.bound ?? []).forEach((name, i) => {
    const t = qubits.get(name);
    if (t === undefined || t.bound) return; // undeclared (rule 3) or listed twice
    Object.assign(t, { state: 'live', since: { node: '', field: `bound[${i}]` }, bound: true });
    bound += 1;
  });
  const ledger = new Ledger(ctx.limits, bound);
  const reported = new Set<string>();
  const report: Report = (key, node, field, message) => {
    if (reported.has(key)) return; // one report per name and fault: the rest is the same cause
    reported.add(key);
    out.add(node.id, field, 7, message);
  };
  for (const node of ix.p.nodes) {
    const guarded = node.guard !== undefined;
    const spec = OP_SPECS[node.op];
    const seen = new Set<string>();
    // A list the op does not take (vqs on a fence, chs on a gate) is rule 6's alone.
    const vqs = spec.vqs[1] > 0 ? node.qubits : [];
    const chs = spec.chs[1] > 0 ? node.channels : [];
    vqs.forEach((name, j) => {
      const t = qubits.get(name);
      if (t === undefined || seen.has(name)) return; // undeclared (rule 3) or repeated (rule 6)
      seen.add(name);
      const before = counted(t.state);
      step(t, name, node, `${node.source}.vqs[${j}]`, guarded, QUBIT_WORDS, report);
      if (!before && counted(t.state)) {
        allocPhysical(t, node);
        ledger.move(t, 1);
      } else if (before && !counted(t.state)) {
        ledger.move(t, -1);
      }
    });
    seen.clear();
    chs.forEach((name, j) => {
      const t = channels.get(name);
      if (t === undefined || seen.has(name)) return;
      seen.add(name);
      step(t, name, node, `${node.source}.chs[${j}]`, guarded, CHANNEL_WORDS, report);
    });
    ledger.settle(node.id);
  }
  leftovers(qubits, QUBIT_WORDS, ctx.strict, out);
  leftovers(channels, CHANNEL_WORDS, ctx.strict, out);
  return ledger.result;
}

function allocPhysical(t: Track, node: ProgramNode): void {
  const profile = node.args.profile;
  if (profile === undefined) {
    t.physical = 1;
    t.profile = null;
    return;
  }
  // An invalid profile is rule 6's violation; it adds nothing to the physical count.
  const perLogical = physicalPerLogical(profile);
  t.physical = typeof perLogical === 'number' ? perLogical : 0;
  t.profile = profile;
}

type Report = (key: string, node: ProgramNode, field: string, message: string) => void;

/**
 * One name's step through one node. `open`/`close` are ALLOC_LQ/FREE_LQ (OPEN_CHAN/CLOSE_CHAN for
 * channels); every other op is a use. After a fault the state is kept, so one mistake is reported
 * once, not again at every later use.
 */
function step(
  t: Track,
  name: string,
  node: ProgramNode,
  field: string,
  guarded: boolean,
  w: Words,
  report: Report,
): void {
  const n = `${w.what} ${quote(name)}`;
  const by = t.since.node === '' ? 'by its binding' : `by node ${quote(t.since.node)}`;
  const key = (fault: string) => `${w.what}\u0000${fault}\u0000${name}`;
  if (node.op === w.open) {
    if (t.state === 'unallocated') {
      const state: Life = guarded ? 'maybeLive' : 'live';
      Object.assign(t, { state, since: { node: node.id, field }, fresh: true });
    } else if (t.state === 'freed') {
      report(key('reopen'), node, field, `${n} was released ${by}; a name is used once`);
    } else {
      const may = t.state === 'live' ? 'is' : 'may be';
      report(key('double'), node, field, `double ${w.open}: ${n} ${may} already ${w.held} ${by}`);
    }
    return;
  }
  const closing = node.op === w.close;
  const fault = faultFor(t.state, closing, w, node.op);
  if (fault !== null) {
    const text = fault.since ? `${fault.text} ${by}` : fault.text;
    report(key(`${closing ? 'close' : 'use'}-${t.state}`), node, field, `${n} ${text}`);
    return;
  }
  if (closing) {
    const state: Life = guarded ? 'maybeFreed' : 'freed';
    Object.assign(t, { state, since: { node: node.id, field }, fresh: false });
    return;
  }
  if (node.op === 'INJECT_T_STATE' && !t.fresh) {
    report(
      key('stale'),
      node,
      field,
      `INJECT_T_STATE needs a fresh ${n}: not ALLOC'd or RESET just before`,
    );
  }
  // RESET returns the qubit to |0>; under a guard it may not have, so freshness is only kept.
  t.fresh = node.op === 'RESET' ? t.fresh || !guarded : false;
}

/**
 * The linearity fault of using (or closing) a name in `state`, or null when it is live; `since`
 * says whether the message ends by naming the node that put it in that state.
 */
function faultFor(
  state: Life,
  closing: boolean,
  w: Words,
  op: string,
): { text: string; since: boolean } | null {
  const use = closing ? `released by ${w.close}` : `used by ${op}`;
  switch (state) {
    case 'live':
      return null;
    case 'unallocated':
      return { text: `is ${use} before ${w.open}`, since: false };
    case 'freed':
      return closing
        ? { text: `is released twice (double ${w.close}): already`, since: true }
        : { text: `is ${use} after ${w.close}`, since: true };
    case 'maybeLive':
      return { text: `may be ${use} before ${w.open}: guarded ${w.open}`, since: true };
    case 'maybeFreed':
      return { text: `may be ${use} after ${w.close}: guarded ${w.close}`, since: true };
  }
}

function leftovers(
  tracks: Map<string, Track>,
  w: Words,
  strict: boolean,
  out: ViolationList,
): void {
  for (const [name, t] of tracks) {
    if (t.bound || !counted(t.state)) continue;
    const may = t.state === 'live' ? 'is still' : 'may still be';
    out.add(
      t.since.node,
      t.since.field,
      7,
      `${w.what} ${quote(name)} ${may} ${w.held} at the end of the program; add ${w.close}`,
      strict ? 'error' : 'warning',
    );
  }
}
