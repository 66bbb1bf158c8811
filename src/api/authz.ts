/**
 * The one authorization table: for every RPC, who may call it. Layer: api.
 * A method without an entry is denied (the interceptor checks this table before any handler
 * runs); `test/api/registry.test.ts` fails when a method of a loaded service has no entry.
 */
import type { Role } from '../kernel/model.js';

export type AuthzEntry =
  | { principal: 'none' }
  | { principal: 'operator' }
  | { principal: 'tenant'; roles: readonly Role[] }
  /** Served on both listeners: the operator on the admin socket, tenants with these roles. */
  | { principal: 'tenant-or-operator'; roles: readonly Role[] };

/**
 * Roles ride on API keys. `tenant_admin` may do everything a tenant can, including consenting to
 * and ending channels on the tenant's behalf; `researcher` works with sessions, qubits, jobs and
 * approved channels; `domain_scientist` runs jobs only (simulator programs of at most
 * `ROLE_QUBITS_MAX.domain_scientist` qubits) and reads its usage.
 */
const ALL_ROLES: readonly Role[] = ['tenant_admin', 'researcher', 'domain_scientist'];
const BUILDERS: readonly Role[] = ['tenant_admin', 'researcher'];
const ADMINS: readonly Role[] = ['tenant_admin'];
const tenant = (roles: readonly Role[] = ALL_ROLES): AuthzEntry => ({ principal: 'tenant', roles });
const operator: AuthzEntry = { principal: 'operator' };
const both = (roles: readonly Role[] = ALL_ROLES): AuthzEntry => ({
  principal: 'tenant-or-operator',
  roles,
});
const none: AuthzEntry = { principal: 'none' };

const KERNEL = '/qmk.v1.KernelService/';
const ADMIN = '/qmk.v1.AdminService/';
const JOBS = '/qmk.v1.JobService/';
const CHANNELS = '/qmk.v1.ChannelService/';
const AUDIT = '/qmk.v1.AuditService/';

export const AUTHZ_TABLE: Readonly<Record<string, AuthzEntry>> = {
  [`${KERNEL}OpenSession`]: tenant(BUILDERS),
  [`${KERNEL}CloseSession`]: tenant(BUILDERS),
  [`${KERNEL}AllocateQubits`]: tenant(BUILDERS),
  [`${KERNEL}ReleaseQubits`]: tenant(BUILDERS),
  [`${KERNEL}ApplyGates`]: tenant(BUILDERS),
  [`${KERNEL}MeasureQubits`]: tenant(BUILDERS),
  [`${KERNEL}AttenuateHandle`]: tenant(BUILDERS),
  [`${KERNEL}GetUsage`]: tenant(),
  [`${JOBS}SubmitJob`]: tenant(),
  [`${JOBS}ValidateProgram`]: tenant(),
  [`${JOBS}GetJob`]: tenant(),
  [`${JOBS}WatchJob`]: tenant(),
  [`${JOBS}CancelJob`]: tenant(),
  [`${JOBS}ListJobs`]: tenant(),
  [`${JOBS}GetJobResult`]: tenant(),
  [`${CHANNELS}RequestChannel`]: tenant(ADMINS),
  [`${CHANNELS}ListChannelRequests`]: tenant(BUILDERS),
  [`${CHANNELS}RespondChannelRequest`]: tenant(ADMINS),
  [`${CHANNELS}GetChannel`]: tenant(BUILDERS),
  [`${CHANNELS}ListChannels`]: tenant(BUILDERS),
  [`${CHANNELS}RevokeChannel`]: tenant(ADMINS),
  [`${CHANNELS}ShareQubit`]: tenant(BUILDERS),
  [`${CHANNELS}GetSigningKeys`]: tenant(),
  // Heads and consistency proofs show sizes and hashes only; records and their proofs are a
  // tenant's own (the operator's: all).
  [`${AUDIT}GetTreeHead`]: both(),
  [`${AUDIT}GetConsistencyProof`]: both(),
  [`${AUDIT}ListAuditRecords`]: both(BUILDERS),
  [`${AUDIT}GetInclusionProof`]: both(BUILDERS),
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
  [`${ADMIN}ListSigningKeys`]: operator,
  [`${ADMIN}GetStatus`]: operator,
  [`${ADMIN}VerifyAudit`]: operator,
  [`${ADMIN}BackupState`]: operator,
  [`${ADMIN}RotateMasterKey`]: operator,
  [`${ADMIN}SignEvidence`]: operator,
  // Standard services: health for load balancers and systemd checks, reflection for grpcurl.
  '/grpc.health.v1.Health/Check': none,
  '/grpc.health.v1.Health/Watch': none,
  '/grpc.health.v1.Health/List': none,
  '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo': none,
  '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo': none,
};
