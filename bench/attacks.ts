/**
 * bench/attacks: the noisy tenant of bench/noisy-neighbour, one attack per run, in its own process
 * (as a neighbour on another machine is: its client work is not the daemon's). Each attack runs
 * for the given seconds from many concurrent loops that never back off, every call with a
 * deadline, then prints what the daemon answered (status codes with counts, latency of the
 * answers) as one JSON line. The modes:
 *   refused-calls    a free tenant far over its API rate: every call refused RESOURCE_EXHAUSTED
 *   oversized-gates  ApplyGates of 1,000,000 empty gates (2 MB, under the 4 MiB message limit)
 *   max-programs     SubmitJob of OpenQASM just under the 1 MiB source limit: half too many nodes
 *                    (refused after parsing), half valid (20,000 gates padded with comments)
 *   deep-guards      SubmitJob of QVM JSON just under 1 MiB whose nodes carry guards nested 16
 *                    deep (the limit), and programs one level deeper (refused)
 *   failed-auth      wrong API keys from one address (throttled after the burst)
 *   channel-spam     RequestChannel to the quiet tenant over and over (16 pending, then refused)
 *   heavy-sim        simulation at the tenant's quota: jobs of seconds of pool time, each loop
 *                    submitting and watching the next; what is left is cancelled at the end
 * Usage (run by the orchestrator): tsx bench/attacks.ts MODE ADDRESS API_KEY QUIET_TENANT_NAME SECONDS
 */
import * as grpc from '@grpc/grpc-js';
import { PROGRAM_SOURCE_BYTES_MAX } from '../src/kernel/limits.js';
import { GUARD_DEPTH_MAX } from '../src/kernel/program/qvm.js';
import {
  type AnyClient,
  call,
  channelClient,
  jobClient,
  kernelClient,
  watchJob,
} from '../test/support/daemon.js';
import { perShotQasm, qvm } from '../test/support/programs.js';

export const MODES = [
  'refused-calls',
  'oversized-gates',
  'max-programs',
  'deep-guards',
  'failed-auth',
  'channel-spam',
  'heavy-sim',
] as const;
export type Mode = (typeof MODES)[number];

/** The attacker's tier per mode: free where its own limits refuse it, pro where it has room. */
export const MODE_TIER: Record<Mode, string> = {
  'refused-calls': 'TIER_FREE',
  'oversized-gates': 'TIER_PRO',
  'max-programs': 'TIER_PRO',
  'deep-guards': 'TIER_PRO',
  'failed-auth': 'TIER_PRO',
  'channel-spam': 'TIER_PRO',
  'heavy-sim': 'TIER_PRO',
};

const DEADLINE_MS = 15_000;

export interface AttackReport {
  mode: Mode;
  calls: number;
  /** Status code name → count (OK included). */
  codes: Record<string, number>;
  /** Answer latency, ms. */
  p50: number;
  p99: number;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
}

/** A unary call with a deadline; resolves with the status code name (never rejects). */
function outcome(c: AnyClient, method: string, req: object): Promise<string> {
  return new Promise((resolve) => {
    (c[method] as (...a: unknown[]) => void).call(
      c,
      req,
      new grpc.Metadata(),
      { deadline: Date.now() + DEADLINE_MS },
      (err: grpc.ServiceError | null) => resolve(err ? grpc.status[err.code]! : 'OK'),
    );
  });
}

/** SubmitJob with a deadline: its status code name; an accepted job's id is added to `ids`. */
function submitOutcome(c: AnyClient, req: object, ids: Set<string>): Promise<string> {
  return new Promise((resolve) => {
    c.SubmitJob(
      req,
      new grpc.Metadata(),
      { deadline: Date.now() + DEADLINE_MS },
      (err: grpc.ServiceError | null, res: { job: { job_id: string } }) => {
        if (err) return resolve(grpc.status[err.code]!);
        ids.add(res.job.job_id);
        resolve('OK');
      },
    );
  });
}

/** `loops` loops calling `one` until the end; each answer's code and latency recorded. */
async function hammer(
  loops: number,
  seconds: number,
  one: (loop: number, n: number) => Promise<string>,
): Promise<{ codes: Record<string, number>; lat: number[] }> {
  const codes: Record<string, number> = {};
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: loops }, async (_, loop) => {
      for (let n = 0; performance.now() < end; n++) {
        const t0 = performance.now();
        const code = await one(loop, n);
        lat.push(performance.now() - t0);
        codes[code] = (codes[code] ?? 0) + 1;
      }
    }),
  );
  return { codes, lat };
}

/** An ApplyGates request of `n` empty gates, encoded by hand: field 1, length 0, n times. */
function emptyGatesMessage(n: number): Buffer {
  const b = Buffer.alloc(2 * n);
  for (let i = 0; i < n; i++) b[2 * i] = 0x0a;
  return b;
}

/** OpenQASM of `gates` single-qubit gates, padded with a comment to just under the limit. */
function bigQasm(gates: number): string {
  const head = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[8];\ncreg c[8];\n';
  const body = Array.from({ length: gates }, (_, i) => `h q[${i % 8}];\n`).join('');
  const tail = 'measure q -> c;\n';
  const used = head.length + body.length + tail.length;
  const room = PROGRAM_SOURCE_BYTES_MAX - 64 - used;
  if (room < 0) return head + body.slice(0, PROGRAM_SOURCE_BYTES_MAX - 64 - head.length) + tail;
  return `${head}// ${'x'.repeat(room)}\n${body}${tail}`;
}

/** A guard nested `depth` deep around one event. */
function nestedGuard(depth: number, event: string): object {
  let g: object = { event, equals: 1 };
  for (let i = 1; i < depth; i++) g = { type: i % 2 ? 'and' : 'or', conditions: [g] };
  return g;
}

/** QVM JSON just under the source limit: one measurement, then guarded X gates. */
function guardedQvm(depth: number): string {
  const node = { op: 'APPLY_X', vqs: ['a'], guard: nestedGuard(depth, 'm0') };
  const one = JSON.stringify({ id: 'n10000', ...node }).length + 1;
  const count = Math.min(9_000, Math.floor((PROGRAM_SOURCE_BYTES_MAX - 2_000) / one));
  const nodes = [{ op: 'MEASURE_Z', vqs: ['a'], produces: ['m0'] }, ...Array(count).fill(node)];
  return qvm(['a'], nodes, ['m0']);
}

/** The heavy job: per-shot simulation of 16 qubits, seconds of pool time. */
const HEAVY = {
  program: { format: 'PROGRAM_FORMAT_OPENQASM2', source: perShotQasm(16, 6, 5) },
  shots: 1500,
};

async function attack(
  mode: Mode,
  address: string,
  apiKey: string,
  quietTenant: string,
  seconds: number,
): Promise<AttackReport> {
  const d = { address };
  const kernel = kernelClient(d, apiKey);
  const jobs = jobClient(d, apiKey);
  const channels = channelClient(d, apiKey);
  let r: { codes: Record<string, number>; lat: number[] };
  // Jobs the attack got accepted: the attack ends by cancelling those not yet ended.
  const accepted = new Set<string>();
  /** 4 loops submitting the two sources in alternation, one shot each. */
  const submitting = (c: AnyClient, format: string, sources: [string, string]) =>
    hammer(4, seconds, (l, n) =>
      submitOutcome(c, { program: { format, source: sources[(l + n) % 2]! }, shots: 1 }, accepted),
    );
  switch (mode) {
    case 'refused-calls':
      // 32 loops: twice the tier's calls in flight, far past its 1,000 calls a minute.
      r = await hammer(32, seconds, (l) =>
        l % 2 ? outcome(kernel, 'GetUsage', {}) : outcome(jobs, 'ListJobs', { page_size: 1 }),
      );
      break;
    case 'oversized-gates': {
      const raw = new grpc.Client(address, grpc.credentials.createInsecure());
      const body = emptyGatesMessage(1_000_000);
      const md = new grpc.Metadata();
      md.set('authorization', `Bearer ${apiKey}`);
      r = await hammer(
        4,
        seconds,
        () =>
          new Promise((resolve) =>
            raw.makeUnaryRequest(
              '/qmk.v1.KernelService/ApplyGates',
              (b: Buffer) => b,
              (b: Buffer) => b,
              body,
              md,
              { deadline: Date.now() + DEADLINE_MS },
              (err) => resolve(err ? grpc.status[err.code]! : 'OK'),
            ),
          ),
      );
      raw.close();
      break;
    }
    case 'max-programs':
      // Half with too many nodes (refused after parsing), half valid (20,000 gates).
      r = await submitting(jobs, 'PROGRAM_FORMAT_OPENQASM2', [
        bigQasm(20_000 - 20),
        bigQasm(150_000),
      ]);
      break;
    case 'deep-guards':
      r = await submitting(jobs, 'PROGRAM_FORMAT_QVM_JSON', [
        guardedQvm(GUARD_DEPTH_MAX),
        guardedQvm(GUARD_DEPTH_MAX + 1),
      ]);
      break;
    case 'failed-auth': {
      const wrong = kernelClient(d, `qmk_${'A'.repeat(43)}`);
      r = await hammer(32, seconds, () => outcome(wrong, 'GetUsage', {}));
      wrong.close();
      break;
    }
    case 'channel-spam':
      r = await hammer(16, seconds, () =>
        outcome(channels, 'RequestChannel', {
          peer_tenant: quietTenant,
          max_entanglements: 1,
          expires_at_unix_ms: Date.now() + 3_600_000,
          purpose: 'spam',
        }),
      );
      break;
    case 'heavy-sim': {
      // The quota's running jobs plus as many queued, each loop waiting for its job to end.
      // At the end the jobs still queued or running are cancelled, which ends their watches.
      const ids = new Set<string>();
      const endAt = performance.now() + seconds * 1000;
      const stop = setTimeout(() => {
        for (const job_id of ids) void outcome(jobs, 'CancelJob', { job_id });
      }, seconds * 1000);
      r = await hammer(8, seconds, async () => {
        try {
          const { job } = await call<{ job: { job_id: string } }>(jobs, 'SubmitJob', HEAVY);
          ids.add(job.job_id);
          if (performance.now() >= endAt) void outcome(jobs, 'CancelJob', { job_id: job.job_id });
          await watchJob(jobs, job.job_id);
          ids.delete(job.job_id);
          return 'OK';
        } catch (err) {
          return grpc.status[(err as grpc.ServiceError).code]!;
        }
      });
      clearTimeout(stop);
      break;
    }
  }
  await Promise.all([...accepted].map((job_id) => outcome(jobs, 'CancelJob', { job_id })));
  for (const c of [kernel, jobs, channels]) c.close();
  return {
    mode,
    calls: r.lat.length,
    codes: r.codes,
    p50: pct(r.lat, 50),
    p99: pct(r.lat, 99),
  };
}

if (process.argv[1]?.endsWith('attacks.ts')) {
  const [mode, address, apiKey, quietTenant, seconds] = process.argv.slice(2);
  if (!MODES.includes(mode as Mode)) throw new Error(`unknown mode ${mode}`);
  console.log('attacking');
  const report = await attack(mode as Mode, address!, apiKey!, quietTenant!, Number(seconds));
  console.log(JSON.stringify(report));
}
