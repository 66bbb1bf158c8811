/**
 * The one registry of operating errors. Layer: kernel (pure; imports nothing).
 * Every refusal the kernel makes is a `KernelError` with a code from `ERROR_CODES`; `api/status.ts`
 * holds the only mapping to gRPC status codes (typed so the compiler makes it total), and
 * `docs/errors.md` documents every code (a test fails when the two drift).
 * Programmer errors are assertions, never KernelErrors: no tenant input may reach an assertion.
 */

export const ERROR_CODES = [
  'INVALID_ARGUMENT',
  'CREDENTIAL_MISSING',
  'CREDENTIAL_INVALID',
  'CREDENTIAL_REVOKED',
  'TENANT_SUSPENDED',
  'ROLE_FORBIDDEN',
  'HANDLE_INVALID',
  'HANDLE_EXPIRED',
  'HANDLE_KEY_UNKNOWN',
  'HANDLE_KEY_RETIRED',
  'HANDLE_WRONG_KIND',
  'RIGHTS_INSUFFICIENT',
  'RIGHTS_WIDEN',
  'CAP_MISSING',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'SESSION_EXPIRED',
  'QUBIT_NOT_FRESH',
  'PROGRAM_INVALID',
  'JOB_FINISHED',
  'JOB_NOT_DONE',
  'JOB_UNCANCELLABLE',
  'FIREWALL_NO_CHANNEL',
  'CHANNEL_NOT_APPROVED',
  'CHANNEL_EXPIRED',
  'CHANNEL_REVOKED',
  'CHANNEL_EXHAUSTED',
  'CHANNEL_WRONG_TENANTS',
  'CHANNEL_NOT_PENDING',
  'QUOTA_EXCEEDED',
  'LIMIT_EXCEEDED',
  'STORAGE_FULL',
  'STORAGE_FAILED',
  'UNAVAILABLE',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** The entanglement firewall's refusals: a join across tenants without a usable channel. */
export const FIREWALL_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'FIREWALL_NO_CHANNEL',
  'CHANNEL_NOT_APPROVED',
  'CHANNEL_EXPIRED',
  'CHANNEL_REVOKED',
  'CHANNEL_EXHAUSTED',
]);

/** A refusal's message is at most this long (longer ones are cut and marked). */
export const MESSAGE_CHARS_MAX = 512;

/** A client-supplied value is echoed in a message up to this many characters, then cut. */
export const ECHO_CHARS_MAX = 64;

/**
 * A client-supplied value as a message quotes it: JSON-quoted, and past `ECHO_CHARS_MAX`
 * characters cut, the cut marked by an ellipsis inside the quotes (`"abc…"`), so no input can
 * make a reply or a log line larger than its own limits.
 */
export function quote(value: string): string {
  const cut = value.length > ECHO_CHARS_MAX;
  return JSON.stringify(cut ? `${value.slice(0, ECHO_CHARS_MAX)}…` : value);
}

/** An operating error: a refusal with a closed code and a message that names the field or limit. */
export class KernelError extends Error {
  readonly code: ErrorCode;
  /** The request field (e.g. `gates[2].theta`) or limit (e.g. `qubits_per_cluster_max`) at fault. */
  readonly field: string | undefined;
  /** Every field at fault, for refusals that list several (a program's rule violations). */
  readonly fieldViolations: readonly FieldViolation[];
  /** For a rate limit: after how long the same call would pass (google.rpc.RetryInfo). */
  readonly retryDelayMs: number | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    field?: string,
    fieldViolations: readonly FieldViolation[] = [],
    retryDelayMs?: number,
  ) {
    // A refusal is an answer, not a fault: no stack trace is captured (measured: about 12 µs of
    // the main thread per refused call under a flood of them, for a trace nobody reads).
    const traceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    // The last guard against an echo that `quote` missed: no refusal outgrows its limit.
    super(
      message.length <= MESSAGE_CHARS_MAX
        ? message
        : `${message.slice(0, MESSAGE_CHARS_MAX)}… (cut)`,
    );
    Error.stackTraceLimit = traceLimit;
    this.name = 'KernelError';
    this.code = code;
    this.field = field;
    this.fieldViolations = fieldViolations;
    this.retryDelayMs = retryDelayMs;
  }
}

/** One field at fault; the api sends these as google.rpc.BadRequest field violations. */
export interface FieldViolation {
  field: string;
  description: string;
  /** A short machine-readable reason, e.g. `QVM_RULE_6`. */
  reason: string;
}

export function invalid(field: string, message: string): KernelError {
  return new KernelError('INVALID_ARGUMENT', `${field}: ${message}`, field);
}

/**
 * Checks a list's length against a fixed per-call limit: an empty list is INVALID_ARGUMENT
 * ("at least one `what` is required"), a longer one LIMIT_EXCEEDED.
 */
export function requireCount(field: string, what: string, length: number, max: number): void {
  if (length === 0) throw invalid(field, `at least one ${what} is required`);
  if (length > max) throw new KernelError('LIMIT_EXCEEDED', `${field}: more than ${max}`, field);
}
