/**
 * Example tenant client for jobs: submits a program file (OpenQASM 2.0 `.qasm`, or QVM graph JSON
 * `.json`), follows it with WatchJob (queue position, then shots done) and prints the counts. A
 * program the verifier refuses prints every violation (google.rpc.BadRequest) and exits 1.
 *
 *   QMK_API_KEY=qmk_... npx tsx examples/job.ts program.qasm [--shots 1000] [--seed 42]
 *     [--address 127.0.0.1:50051]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { STATUS_DETAILS_KEY, decodeStatusDetails } from '../src/api/details.js';
import { loadGrpcObject } from '../src/api/proto.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    address: { type: 'string', default: process.env.QMK_ADDRESS ?? '127.0.0.1:50051' },
    shots: { type: 'string', default: '1000' },
    seed: { type: 'string', default: '' },
  },
});
const apiKey = process.env.QMK_API_KEY;
const file = positionals[0];
if (!apiKey || !file) {
  console.error(
    'usage: QMK_API_KEY=... npx tsx examples/job.ts <program.qasm|program.json> [--shots N] [--seed S]',
  );
  process.exit(2);
}

const { JobService } = loadGrpcObject();
const client = new JobService(values.address!, grpc.credentials.createInsecure());
const md = new grpc.Metadata();
md.set('authorization', `Bearer ${apiKey}`);

// biome-ignore lint/suspicious/noExplicitAny: generated client methods are untyped at run time
function rpc(method: string, req: object): Promise<any> {
  return new Promise((resolve, reject) => {
    // biome-ignore lint/suspicious/noExplicitAny: as above
    (client as any)[method](req, md, (err: grpc.ServiceError | null, res: unknown) =>
      err ? reject(err) : resolve(res),
    );
  });
}

const format = file.endsWith('.qasm') ? 'PROGRAM_FORMAT_OPENQASM2' : 'PROGRAM_FORMAT_QVM_JSON';
let submitted: { job: { job_id: string; seed: string } };
try {
  submitted = await rpc('SubmitJob', {
    program: { format, source: readFileSync(file, 'utf8') },
    shots: Number(values.shots),
    seed: values.seed,
  });
} catch (err) {
  const e = err as grpc.ServiceError;
  console.error(`refused: ${e.details}`);
  const raw = e.metadata?.get(STATUS_DETAILS_KEY)[0];
  if (raw)
    for (const v of decodeStatusDetails(raw as Buffer).badRequest)
      console.error(`  ${v.field}: ${v.description}`);
  client.close();
  process.exit(1);
}
const id = submitted.job.job_id;
console.log(`job ${id} (seed ${submitted.job.seed})`);

// biome-ignore lint/suspicious/noExplicitAny: decoded message
const last = await new Promise<any>((resolve, reject) => {
  // biome-ignore lint/suspicious/noExplicitAny: as above
  let job: any = null;
  // biome-ignore lint/suspicious/noExplicitAny: generated client methods are untyped at run time
  const stream = (client as any).WatchJob({ job_id: id }, md) as grpc.ClientReadableStream<{
    job: unknown;
  }>;
  // biome-ignore lint/suspicious/noExplicitAny: decoded message
  stream.on('data', (m: { job: any }) => {
    job = m.job;
    const where =
      job.state === 'JOB_STATE_QUEUED'
        ? ` position ${job.queue_position}`
        : ` ${job.shots_done}/${job.shots} shots`;
    console.log(`  ${job.state.replace('JOB_STATE_', '')}${where}`);
  });
  stream.on('error', reject);
  stream.on('end', () => resolve(job));
});
if (last.state !== 'JOB_STATE_DONE') {
  console.error(`job ended ${last.state}: ${last.reason}`);
  client.close();
  process.exit(1);
}
const r = await rpc('GetJobResult', { job_id: id });
client.close();
console.log(
  `counts (${r.bit_order}; ${r.sampling}, engine ${r.engine}, queued ${r.queue_ms} ms, ran ${r.run_ms} ms):`,
);
const total = Object.values(r.counts as Record<string, number>).reduce((a, b) => a + Number(b), 0);
for (const [key, n] of Object.entries(r.counts as Record<string, number>).sort()) {
  console.log(`  ${key || '(no events)'}: ${n} (${((100 * Number(n)) / total).toFixed(1)} %)`);
}
