/**
 * Loads the wire contract (`proto/qmk/v1/*.proto`) at run time with @grpc/proto-loader.
 * Layer: api (also used by the CLI, tests and benchmarks as clients). The .proto files are the source
 * of truth; nothing here restates them. Options are fixed in one place so every client and the
 * server decode the same way: enums as their names, 64-bit integers as JS numbers (all our 64-bit
 * fields are millisecond timestamps and byte counts far below 2^53), defaults filled in.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

/** The repository's proto/ folder, found upward from this module (src/ in development, dist/src/ built). */
function findProtoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'proto', 'qmk', 'v1', 'kernel.proto'))) return join(dir, 'proto');
    dir = dirname(dir);
  }
  throw new Error('cannot find proto/qmk/v1 above the qmkd installation');
}

export const PROTO_ROOT = findProtoRoot();
export const PROTO_FILES = [
  'qmk/v1/common.proto',
  'qmk/v1/kernel.proto',
  'qmk/v1/admin.proto',
  'qmk/v1/jobs.proto',
  'qmk/v1/channels.proto',
  'qmk/v1/audit.proto',
  // Error details travel in the `grpc-status-details-bin` trailer; loading them here puts them in
  // reflection, so clients can fetch the types they decode.
  'google/rpc/status.proto',
  'google/rpc/error_details.proto',
];

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  arrays: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

let cached: protoLoader.PackageDefinition | undefined;
let cachedRoot: protobuf.Root | undefined;

/** The same files as a protobufjs root, every type resolved (for walking and encoding messages). */
export function loadProtobufRoot(): protobuf.Root {
  if (!cachedRoot) {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) =>
      target.startsWith('google/protobuf/') ? target : join(PROTO_ROOT, target);
    root.loadSync(PROTO_FILES, { keepCase: true });
    root.resolveAll();
    cachedRoot = root;
  }
  return cachedRoot;
}

/** The package definition of all qmk.v1 services (cached: loading parses every file). */
export function loadPackageDefinition(): protoLoader.PackageDefinition {
  cached ??= protoLoader.loadSync(PROTO_FILES, LOADER_OPTIONS);
  return cached;
}

/** The grpc object tree; `qmk.v1.KernelService` etc. are client constructors with `.service`. */
export function loadGrpcObject(): QmkGrpc {
  const root = grpc.loadPackageDefinition(loadPackageDefinition()) as unknown as {
    qmk: { v1: QmkGrpc };
  };
  return root.qmk.v1;
}

export interface QmkGrpc {
  KernelService: grpc.ServiceClientConstructor;
  AdminService: grpc.ServiceClientConstructor;
  JobService: grpc.ServiceClientConstructor;
  ChannelService: grpc.ServiceClientConstructor;
  AuditService: grpc.ServiceClientConstructor;
}
