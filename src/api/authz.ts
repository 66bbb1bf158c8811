/**
 * The one authorization table: for every RPC, who may call it. Layer: api.
 * A method without an entry is denied (the interceptor checks this table before any handler
 * runs); `test/api/authz.test.ts` fails when a method of a loaded service has no entry.
 */
import type { Role } from '../kernel/model.js';

export type AuthzEntry =
  | { principal: 'none' }
  | { principal: 'operator' }
  | { principal: 'tenant'; roles: readonly Role[] };

const ALL_ROLES: readonly Role[] = ['tenant_admin', 'researcher', 'domain_scientist'];
const tenant = (roles: readonly Role[] = ALL_ROLES): AuthzEntry => ({ principal: 'tenant', roles });
const operator: AuthzEntry = { principal: 'operator' };
const none: AuthzEntry = { principal: 'none' };

const KERNEL = '/qmk.v1.KernelService/';
const ADMIN = '/qmk.v1.AdminService/';
const JOBS = '/qmk.v1.JobService/';
const CHANNELS = '/qmk.v1.ChannelService/';

export const AUTHZ_TABLE: Readonly<Record<string, AuthzEntry>> = {
  [`${KERNEL}OpenSession`]: tenant(),
  [`${KERNEL}CloseSession`]: tenant(),
  [`${KERNEL}AllocateQubits`]: tenant(),
  [`${KERNEL}ReleaseQubits`]: tenant(),
  [`${KERNEL}ApplyGates`]: tenant(),
  [`${KERNEL}MeasureQubits`]: tenant(),
  [`${KERNEL}AttenuateHandle`]: tenant(),
  [`${KERNEL}GetUsage`]: tenant(),
  [`${JOBS}SubmitJob`]: tenant(),
  [`${JOBS}ValidateProgram`]: tenant(),
  [`${JOBS}GetJob`]: tenant(),
  [`${JOBS}WatchJob`]: tenant(),
  [`${JOBS}CancelJob`]: tenant(),
  [`${JOBS}ListJobs`]: tenant(),
  [`${JOBS}GetJobResult`]: tenant(),
  [`${CHANNELS}RequestChannel`]: tenant(),
  [`${CHANNELS}ListChannelRequests`]: tenant(),
  [`${CHANNELS}RespondChannelRequest`]: tenant(),
  [`${CHANNELS}GetChannel`]: tenant(),
  [`${CHANNELS}ListChannels`]: tenant(),
  [`${CHANNELS}RevokeChannel`]: tenant(),
  [`${CHANNELS}ShareQubit`]: tenant(),
  [`${CHANNELS}GetSigningKeys`]: tenant(),
  [`${ADMIN}CreateTenant`]: operator,
  [`${ADMIN}GetTenant`]: operator,
  [`${ADMIN}ListTenants`]: operator,
  [`${ADMIN}UpdateTenant`]: operator,
  [`${ADMIN}SuspendTenant`]: operator,
  [`${ADMIN}ResumeTenant`]: operator,
  [`${ADMIN}DeleteTenant`]: operator,
  [`${ADMIN}CreateApiKey`]: operator,
  [`${ADMIN}ListApiKeys`]: operator,
  [`${ADMIN}RevokeApiKey`]: operator,
  [`${ADMIN}RotateSigningKey`]: operator,
  [`${ADMIN}GetStatus`]: operator,
  // Standard services: health for load balancers and systemd checks, reflection for grpcurl.
  '/grpc.health.v1.Health/Check': none,
  '/grpc.health.v1.Health/Watch': none,
  '/grpc.health.v1.Health/List': none,
  '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo': none,
  '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo': none,
};
