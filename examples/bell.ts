/**
 * Example tenant client: opens a session, allocates two qubits, applies H and CNOT, measures both,
 * and repeats. Over 1000 repetitions `00` and `11` each appear about half the time; `01` and `10`
 * never do.
 *
 *   QMK_API_KEY=qmk_... npx tsx examples/bell.ts [--address 127.0.0.1:50051] [--repetitions 1000]
 */
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { loadGrpcObject } from '../src/api/proto.js';

const { values } = parseArgs({
  options: {
    address: { type: 'string', default: process.env.QMK_ADDRESS ?? '127.0.0.1:50051' },
    repetitions: { type: 'string', default: '1000' },
  },
});
const apiKey = process.env.QMK_API_KEY;
if (!apiKey) {
  console.error('set QMK_API_KEY to a tenant API key (npm start prints the dev tenant key once)');
  process.exit(2);
}

const { KernelService } = loadGrpcObject();
const client = new KernelService(values.address!, grpc.credentials.createInsecure());
const md = new grpc.Metadata();
md.set('authorization', `Bearer ${apiKey}`);

// biome-ignore lint/suspicious/noExplicitAny: generated client methods are untyped at run time
function rpc<T>(method: string, req: object): Promise<any & T> {
  return new Promise((resolve, reject) => {
    // biome-ignore lint/suspicious/noExplicitAny: as above
    (client as any)[method](req, md, (err: grpc.ServiceError | null, res: T) =>
      err ? reject(err) : resolve(res),
    );
  });
}

const session = await rpc<{ session_handle: string }>('OpenSession', {});
const counts: Record<string, number> = { '00': 0, '01': 0, '10': 0, '11': 0 };
const n = Number(values.repetitions);
for (let i = 0; i < n; i++) {
  const { qubits } = await rpc<{ qubits: { handle: string }[] }>('AllocateQubits', {
    session_handle: session.session_handle,
    count: 2,
  });
  const [a, b] = qubits.map((q: { handle: string }) => q.handle);
  await rpc('ApplyGates', {
    gates: [
      { kind: 'GATE_KIND_H', qubits: [a] },
      { kind: 'GATE_KIND_CNOT', qubits: [a, b] },
    ],
  });
  const { outcomes } = await rpc<{ outcomes: number[] }>('MeasureQubits', {
    measurements: [
      { qubit: a, basis: 'BASIS_Z' },
      { qubit: b, basis: 'BASIS_Z' },
    ],
  });
  counts[outcomes.join('')]!++;
  await rpc('ReleaseQubits', { qubit_handles: [a, b] });
}
await rpc('CloseSession', { session_handle: session.session_handle });
client.close();
console.log(`Bell pairs measured ${n} times:`);
for (const [k, v] of ['00', '01', '10', '11'].map((k) => [k, counts[k]!] as const))
  console.log(`  ${k}: ${v} (${((100 * v) / n).toFixed(1)} %)`);
