/**
 * A job's program, from the submitted text to what the scheduler and the runner need: format and
 * shot checks, bindings of session qubits, parsing (QVM JSON or OpenQASM 2.0), verification
 * against the tenant's quota and the firewall (every violation at once), the runner's work
 * estimate, and how a result's keys are spelled. Layer: kernel. Decides nothing about queues or
 * states: the job manager does.
 */
import { type ErrorCode, KernelError, invalid, quote } from './errors.js';
import { RIGHTS } from './handles.js';
import type { Binding, JobEstimate, ProgramFormat } from './job-model.js';
import type { Kernel } from './kernel.js';
import {
  PHYSICAL_QUBITS_PER_JOB_MAX,
  PROGRAM_CHECK_INLINE_BYTES_MAX,
  PROGRAM_SOURCE_BYTES_MAX,
  QUBITS_PER_CLUSTER_MAX,
  SEED_MAX,
  TIER_DEFAULTS,
  roleQubitsMax,
} from './limits.js';
import type { Quota } from './model.js';
import type { JobRunnerPort, ProgramCheckPort } from './ports.js';
import type { TenantPrincipal } from './principals.js';
import {
  type ProgramCheckRequest,
  checkProgram,
  keyEvents,
  parseProgram,
} from './program-check.js';
import type { Program, Violation } from './program/ir.js';
import { COUNTS_ORDER } from './program/qvm.js';

const SEED_PATTERN = /^[0-9]{1,20}$/;
export const QASM_BIT_ORDER =
  "Qiskit's: classical registers separated by spaces, the last-declared register leftmost, " +
  'the highest bit index leftmost within a register';

/** The bit order a result's keys are in, as GetJobResult states it. */
export function bitOrderOf(format: ProgramFormat): string {
  return format === 'qasm' ? QASM_BIT_ORDER : COUNTS_ORDER;
}

export interface Compiled {
  /**
   * The parsed program, kept only for a job on bound qubits (planned when it starts, on the
   * qubits as they are then); any other job needs only its plan.
   */
  program: Program | null;
  /**
   * The run's plan (`PreparedRun.plan`); null for a program checked off the main thread, which
   * runs from its source on a pool thread (never inline).
   */
  plan: unknown;
  /** The name behind each result key character. */
  keyEvents: string[];
  /** The runner's work estimate for the job's shots: cost, and inline routing. */
  work: number;
  /** Classical register sizes in key order (OpenQASM), for the spaces in result keys. */
  registers: { name: string; size: number }[] | null;
  /** Rule 9: channel uses the program's joins across tenants need. */
  channelUses: Map<string, number>;
}

/** A program to check and compile, with everything its verification depends on. */
export interface CompileRequest {
  format: ProgramFormat;
  source: string;
  shots: number;
  /** The tenant's quota, narrowed by the caller's role (`roleLimited`). */
  quota: Quota;
  tier: keyof typeof TIER_DEFAULTS;
  bindings: Binding[];
  strict: boolean;
  tenantId: string;
}

export class JobPrograms {
  constructor(
    private readonly k: Kernel,
    private readonly runner: JobRunnerPort,
    /** Checks programs larger than `PROGRAM_CHECK_INLINE_BYTES_MAX` off the main thread. */
    private readonly checker: ProgramCheckPort = { check: async (req) => checkProgram(req) },
  ) {}

  /**
   * Dry run: parses and verifies, never queues. Violations are returned, not thrown.
   * @throws INVALID_ARGUMENT (format, shots, bindings), handle errors
   */
  async validate(
    p: TenantPrincipal,
    format: string,
    source: string,
    shots: number,
    bindings: { name: string; handle: string }[],
    strict: boolean,
  ): Promise<{ violations: Violation[]; estimate: JobEstimate | null }> {
    const tenant = this.k.principals.tenantOf(p);
    const quota = this.k.principals.quotaOf(tenant);
    const f = checkFormat(format);
    checkShots(shots, quota);
    const bound = this.decodeBindings(p, bindings, shots);
    const r = await this.compile({
      format: f,
      source,
      shots,
      quota: roleLimited(quota, p),
      tier: tenant.tier,
      bindings: bound,
      strict,
      tenantId: tenant.id,
    });
    return { violations: r.violations, estimate: r.estimate };
  }

  async compile(req: CompileRequest): Promise<{
    compiled: Compiled | null;
    violations: Violation[];
    estimate: JobEstimate | null;
  }> {
    const { format, source, shots, quota, tier, bindings, strict, tenantId } = req;
    const bytes = Buffer.byteLength(source, 'utf8');
    if (bytes > PROGRAM_SOURCE_BYTES_MAX) {
      throw new KernelError(
        'LIMIT_EXCEEDED',
        `program.source: more than ${PROGRAM_SOURCE_BYTES_MAX} bytes`,
        'program.source',
      );
    }
    const own = bindings.filter((b) => b.channel === undefined);
    const foreign = bindings.flatMap((b) =>
      b.channel === undefined
        ? []
        : [
            [b.name, { tenant: b.owner!, channel: b.channel }] as [
              string,
              { tenant: string; channel: string },
            ],
          ],
    );
    const checkReq: ProgramCheckRequest = {
      format,
      source,
      bound: bindings.map((b) => b.name),
      caps: own.length > 0 ? this.boundCaps(own) : [...TIER_DEFAULTS[tier].caps],
      strict,
      limits: {
        nodesMax: quota.programNodesMax,
        qubitsLiveMax: quota.qubitsLiveMax,
        qubitsPerClusterMax: Math.min(quota.qubitsPerClusterMax, QUBITS_PER_CLUSTER_MAX),
        physicalQubitsMax: PHYSICAL_QUBITS_PER_JOB_MAX,
        stateBytesMax: quota.stateBytesMax,
      },
      tenant: tenantId,
      foreign,
      firewall: this.k.firewall.snapshot([tenantId, ...foreign.map(([, f]) => f.tenant)]),
      shots,
    };
    // Small programs are checked here: a thread hop would cost more than the check.
    const checked =
      bytes <= PROGRAM_CHECK_INLINE_BYTES_MAX
        ? checkProgram(checkReq)
        : await this.checker.check(checkReq);
    // A checker thread estimated the run and kept the program: the run plans it from the source.
    const estimated = checked.runEstimate;
    if (estimated) {
      return {
        compiled: {
          program: null,
          plan: null,
          keyEvents: checked.keyEvents,
          registers: checked.registers,
          work: estimated.work,
          channelUses: checked.channelUses,
        },
        violations: checked.violations,
        estimate: { ...checked.estimate!, sampling: estimated.sampling },
      };
    }
    const program = checked.program;
    if (program === null) return { compiled: null, violations: checked.violations, estimate: null };
    bindings.forEach((b, i) => {
      if (!program.qubits.includes(b.name)) {
        throw invalid(`bindings[${i}].name`, `${quote(b.name)} is not a qubit of the program`);
      }
      if (program.nodes.some((n) => n.op === 'FREE_LQ' && n.qubits.includes(b.name))) {
        throw invalid(
          `bindings[${i}].name`,
          `the program frees bound qubit ${quote(b.name)}; a job cannot release a session qubit (ReleaseQubits does)`,
        );
      }
    });
    const violations = checked.violations;
    const run = violations.some((v) => v.severity === 'error')
      ? null
      : this.runner.prepare(program, shots);
    return {
      compiled: {
        program: bindings.length > 0 ? program : null,
        plan: run?.plan ?? null,
        keyEvents: checked.keyEvents,
        registers: checked.registers,
        work: run?.work ?? 0,
        channelUses: checked.channelUses,
      },
      violations,
      estimate: { ...checked.estimate!, sampling: run?.sampling ?? '' },
    };
  }

  /** Compiles and throws every violation; a firewall refusal (rule 9) is audited first. */
  async compileChecked(
    p: TenantPrincipal,
    req: CompileRequest,
  ): Promise<{ compiled: Compiled; estimate: JobEstimate; warnings: Violation[] }> {
    const r = await this.compile(req);
    const errors = r.violations.filter((v) => v.severity === 'error');
    const firewall = errors.find((v) => v.rule === 9 && v.code !== undefined);
    if (firewall) {
      const err = new KernelError(
        firewall.code as ErrorCode,
        `${firewall.node}: ${firewall.message}`,
        'program',
      );
      await this.k.firewall.auditRefusal(p, 'SubmitJob', err);
    }
    if (r.compiled === null || r.estimate === null || errors.length > 0) {
      const shown = errors.length > 0 ? errors : r.violations;
      const first = shown[0];
      throw new KernelError(
        'PROGRAM_INVALID',
        `program: ${shown.length} violation(s)${first ? `; first: ${describe(first)}` : ''}`,
        'program',
        shown.map((v) => ({
          field: v.node === '' ? v.field : `${v.node}: ${v.field}`,
          description: describe(v),
          reason: v.rule === 0 ? 'QASM_SYNTAX' : `QVM_RULE_${v.rule}`,
        })),
      );
    }
    return {
      compiled: r.compiled,
      estimate: r.estimate,
      warnings: r.violations.filter((v) => v.severity === 'warning'),
    };
  }

  /** Bindings name the caller's session qubits by handle; they force a single shot. */
  decodeBindings(
    p: TenantPrincipal,
    bindings: { name: string; handle: string }[],
    shots: number,
  ): Binding[] {
    if (bindings.length === 0) return [];
    if (shots !== 1) {
      throw invalid(
        'shots',
        'must be 1 for a job with bindings: it acts on your persistent qubits, whose state cannot be copied (no-cloning), so it can run only once',
      );
    }
    const names = new Set<string>();
    const ids = new Set<string>();
    return bindings.map((b, i) => {
      if (names.has(b.name))
        throw invalid(`bindings[${i}].name`, `${quote(b.name)} is bound twice`);
      names.add(b.name);
      const field = `bindings[${i}].qubit_handle`;
      const c = this.k.handles.verify(p, b.handle, field, null, 0);
      // Another tenant's qubit shared through a channel: its program uses are rule 9's to check.
      const shared = c.kind === 'SHARED_VQ';
      if (!shared && c.kind !== 'VQ')
        throw new KernelError('HANDLE_WRONG_KIND', `${field}: expected a VQ handle`, field);
      const need = shared ? RIGHTS.RIGHT_LINK : RIGHTS.RIGHT_COMPUTE | RIGHTS.RIGHT_MEASURE;
      if ((c.rights & need) !== need)
        throw new KernelError('RIGHTS_INSUFFICIENT', `${field}: handle lacks the right`, field);
      if (ids.has(c.resourceId)) throw invalid(field, 'the same qubit is bound twice');
      ids.add(c.resourceId);
      return shared
        ? {
            name: b.name,
            qubitId: c.resourceId,
            channel: c.sessionId,
            owner: this.k.firewall.sharedOwner(c),
          }
        : { name: b.name, qubitId: c.resourceId };
    });
  }

  /** The caps of a bound job: those every bound qubit's session holds. */
  private boundCaps(bindings: { qubitId: string }[]): string[] {
    let caps: string[] | null = null;
    for (const b of bindings) {
      const q = this.k.table.qubit(b.qubitId)!;
      const held = this.k.table.session(q.sessionId)?.caps ?? [];
      caps = caps === null ? [...held] : caps.filter((c) => held.includes(c as never));
    }
    return caps ?? [];
  }

  /** A stored job's program compiled again after a restart, or null when it no longer verifies. */
  reload(rec: {
    format: ProgramFormat;
    source: string;
    shots: number;
    bindings: Binding[];
    channelUses?: Record<string, number>;
  }): Compiled | null {
    const parsed = parseProgram(rec.format, rec.source, rec.bindings);
    if (!parsed.program || parsed.violations.some((v) => v.severity !== 'warning')) return null;
    const run = this.runner.prepare(parsed.program, rec.shots);
    return {
      program: rec.bindings.length > 0 ? parsed.program : null,
      plan: run.plan,
      keyEvents: keyEvents(parsed.program),
      registers: parsed.registers,
      work: run.work,
      channelUses: new Map(Object.entries(rec.channelUses ?? {})),
    };
  }
}

/** The quota a program is verified against: the tenant's, narrowed by the key's role. */
export function roleLimited(quota: Quota, p: TenantPrincipal): Quota {
  const max = roleQubitsMax(p.roles);
  return {
    ...quota,
    qubitsLiveMax: Math.min(quota.qubitsLiveMax, max),
    qubitsPerClusterMax: Math.min(quota.qubitsPerClusterMax, max),
  };
}

export function checkFormat(format: string): ProgramFormat {
  if (format === 'QVM_JSON') return 'qvm';
  if (format === 'OPENQASM2') return 'qasm';
  throw invalid('program.format', 'must be PROGRAM_FORMAT_QVM_JSON or PROGRAM_FORMAT_OPENQASM2');
}

export function checkShots(shots: number, quota: Quota): void {
  if (!Number.isInteger(shots) || shots < 1) throw invalid('shots', 'must be at least 1');
  if (shots > quota.shotsPerJobMax) {
    throw new KernelError(
      'QUOTA_EXCEEDED',
      `shots_per_job_max: ${shots} shots > ${quota.shotsPerJobMax}`,
      'shots_per_job_max',
    );
  }
}

export function isUint64(s: string): boolean {
  return SEED_PATTERN.test(s) && BigInt(s) <= SEED_MAX;
}

export function describe(v: Violation): string {
  const where = [v.node, v.field].filter((x) => x !== '').join(' ');
  const code = v.code === undefined ? '' : `${v.code}: `;
  return `${where ? `${where}: ` : ''}${code}${v.message}${v.rule > 0 ? ` (rule ${v.rule})` : ''}`;
}

/** Inserts the spaces between OpenQASM registers into a key (QVM keys have none). */
export function spaceKey(key: string, registers: { size: number }[] | null): string {
  if (registers === null || registers.length < 2) return key;
  const parts: string[] = [];
  let at = 0;
  for (const r of registers) {
    parts.push(key.slice(at, at + r.size));
    at += r.size;
  }
  return parts.join(' ');
}

export function spaceKeys(
  counts: Record<string, number>,
  registers: { size: number }[] | null,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(counts)) out[spaceKey(k, registers)] = n;
  return out;
}
