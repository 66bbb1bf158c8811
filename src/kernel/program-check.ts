/**
 * Checking a program: parsing its text and verifying it, as one pure function of plain data, so
 * it can run on a thread of its own (`ProgramCheckPort`) with a time and memory budget, and give
 * the same answer inline. Layer: kernel (pure).
 *
 * Why it takes a snapshot of the firewall rather than asking it: rule 9 (joins across tenants
 * through channels) needs the channels between the tenants a program's bound qubits belong to,
 * and a thread of its own cannot read the kernel's tables; the snapshot holds exactly those
 * channels, as of the check. The kernel decides again when the job starts.
 */
import { type ChannelRecord, ChannelTable } from './channels.js';
import type { ProgramFormat } from './job-model.js';
import type { Program, ProgramNode, Violation } from './program/ir.js';
import { parseQasm } from './program/qasm.js';
import { parseQvm } from './program/qvm.js';
import {
  type ResourceEstimate,
  type VerifyContext,
  mergeViolations,
  verifyProgram,
} from './program/verify.js';

/** The channels rule 9 may consult, as of `nowMs`, and the names of the tenants involved. */
export interface FirewallSnapshot {
  nowMs: number;
  channels: ChannelRecord[];
  names: Record<string, string>;
}

/** Everything a program's check depends on, as data that crosses to a thread. */
export interface ProgramCheckRequest {
  format: ProgramFormat;
  source: string;
  /** Program qubit names bound to session qubits. */
  bound: string[];
  caps: string[];
  strict: boolean;
  limits: VerifyContext['limits'];
  /** The submitting tenant. */
  tenant: string;
  /** Bound names that are another tenant's qubit: its owner and the channel shared through. */
  foreign: [string, { tenant: string; channel: string }][];
  firewall: FirewallSnapshot;
  /** The job's shots (a checker that prepares the run estimates its work for them). */
  shots: number;
}

/** What a valid program's run will be: its sampling mode and its work for the shots. */
export interface RunEstimate {
  sampling: 'sampled' | 'per-shot';
  /** Amplitude updates the run needs for its shots (scheduling cost, inline routing). */
  work: number;
}

/** A valid program's run as the runner prepared it (`JobRunnerPort.prepare`). */
export interface PreparedRun extends RunEstimate {
  /** The runner's compiled plan, opaque to the kernel: handed back in `JobRunRequest.program`. */
  plan: unknown;
}

export interface ProgramCheckResult {
  program: Program | null;
  registers: { name: string; size: number }[] | null;
  /** The parser's and the verifier's violations, merged. */
  violations: Violation[];
  /** Null when the program did not parse. */
  estimate: ResourceEstimate | null;
  channelUses: Map<string, number>;
  /** The name behind each result key character (empty when the program did not parse). */
  keyEvents: string[];
  /**
   * Set by a checker thread for a valid program on no bound qubits (`ProgramCheckPort`), with
   * `program` null: the program does not cross back to the main thread (a megabyte of it would
   * cost tens of ms to receive, and again to send on); the job runs from its source on a pool
   * thread, which plans it there.
   */
  runEstimate?: RunEstimate;
}

/** Parses and verifies; never throws for anything in the request (violations are values). */
export function checkProgram(req: ProgramCheckRequest): ProgramCheckResult {
  const bound = req.bound.map((name) => ({ name }));
  const parsed = parseProgram(req.format, req.source, bound);
  if (parsed.program === null) {
    return { ...parsed, estimate: null, channelUses: new Map(), keyEvents: [] };
  }
  const table = new ChannelTable(req.firewall.channels);
  const { nowMs, names } = req.firewall;
  const verified = verifyProgram(parsed.program, {
    caps: req.caps,
    strict: req.strict,
    limits: req.limits,
    bound: req.bound,
    firewall: {
      tenant: req.tenant,
      foreign: new Map(req.foreign),
      decide: (tenants, preferred) =>
        table
          .decide(tenants, preferred, nowMs, (id) => names[id] ?? id)
          .map((c) => ({ id: c.id, usesLeft: c.maxUses - c.used })),
    },
  });
  return {
    program: parsed.program,
    registers: parsed.registers,
    violations: mergeViolations(parsed.violations, verified.violations),
    estimate: verified.estimate,
    channelUses: verified.channelUses,
    keyEvents: keyEvents(parsed.program),
  };
}

/** The name behind each key character: events in key order (a 1-event MEASURE_BELL takes two). */
export function keyEvents(program: Program): string[] {
  const widths = new Map<string, number>();
  for (const node of program.nodes) {
    if (node.op === 'MEASURE_BELL' && node.produces.length === 1) widths.set(node.produces[0]!, 2);
  }
  return program.events.flatMap((e) => (widths.get(e) === 2 ? [`${e}.m0`, `${e}.m1`] : [e]));
}

export function parseProgram(
  format: ProgramFormat,
  source: string,
  bound: readonly { name: string }[] = [],
): {
  program: Program | null;
  violations: Violation[];
  registers: { name: string; size: number }[] | null;
} {
  if (format === 'qasm') {
    const r = parseQasm(source);
    const program =
      r.program && bound.length > 0 ? withoutImplicitLifetime(r.program, bound) : r.program;
    return { program, violations: r.violations, registers: r.registers };
  }
  let json: unknown;
  try {
    json = JSON.parse(source);
  } catch (err) {
    return {
      program: null,
      registers: null,
      violations: [
        {
          node: '',
          field: 'program.source',
          rule: 1,
          message: `not valid JSON: ${(err as Error).message}`,
          severity: 'error',
        },
      ],
    };
  }
  const r = parseQvm(json);
  return { program: r.program, violations: r.violations, registers: null };
}

function withoutImplicitLifetime(p: Program, bound: readonly { name: string }[]): Program {
  const names = new Set(bound.map((b) => b.name));
  const nodes: ProgramNode[] = [];
  for (const node of p.nodes) {
    if (node.op !== 'ALLOC_LQ' && node.op !== 'FREE_LQ') {
      nodes.push(node);
      continue;
    }
    const qubits = node.qubits.filter((q) => !names.has(q));
    if (qubits.length === 0) continue;
    const args = node.op === 'ALLOC_LQ' ? { ...node.args, n: qubits.length } : node.args;
    nodes.push({ ...node, qubits, args });
  }
  return { ...p, nodes };
}
