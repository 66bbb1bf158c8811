/**
 * qmkctl: the operator CLI of qmkd. It manages tenants, API keys and signing keys and reads the
 * daemon's status through `AdminService` on the daemon's local admin unix socket.
 * Layer: cli. Imports the wire contract (src/api/proto.ts and the generated types), the quota
 * table (src/kernel/quota-fields.ts: pure data) and libraries; it never reaches into the
 * kernel's state or the store, so everything it can do is exactly what the admin API allows.
 * The modules: `args.ts` (flags), `commands.ts` (what each command does), `format.ts` (human
 * output), `admin-client.ts` (the socket and typed calls); this file is the entry point.
 *
 * Why it is built this way:
 * - `main(argv, io)` returns the exit code instead of exiting, so tests run it in-process against
 *   a fake server and read what it printed; `bin/qmkctl.mjs` and direct execution wrap it.
 * - Every usage error is found before the first RPC (the client connects lazily on the first
 *   call), so a typo never half-runs a command and `tenant delete` without --yes sends nothing.
 * - Flags are parsed with node:util `parseArgs` in non-strict mode and checked here against the
 *   command's own flag list: that lets us name the offending flag and refuse flags that exist but
 *   mean nothing to the command, instead of silently ignoring them.
 * - `--json` prints the daemon's response untouched for scripts; the human form is aligned
 *   tables with enum prefixes stripped (TIER_PRO → pro).
 * - Exit codes: 0 success, 1 the daemon refused or could not be reached, 2 usage error.
 */
import { pathToFileURL } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import {
  Admin,
  ConnectError,
  NOT_RUNNING,
  isServiceError,
  resolveSocketPath,
} from './admin-client.js';
import { Flags, GLOBAL_FLAGS, UsageError, parseCommandLine } from './args.js';
import { COMMANDS, GROUPS } from './commands.js';

export { CALL_DEADLINE_MS, resolveSocketPath } from './admin-client.js';
export { enumLabel, formatTable } from './format.js';

/** Where output goes. Each call is one line or block of text without its trailing newline. */
export interface Io {
  out(s: string): void;
  err(s: string): void;
}

export const USAGE = `qmkctl: operator CLI of the qmkd quantum-kernel daemon (via its admin socket)

Usage:
  qmkctl [--socket PATH] [--json] COMMAND [ARGS] [FLAGS]

Tenants (TENANT is a tenant id or name):
  tenant create NAME [--tier free|pro|enterprise] [--weight N] [--role ROLE ...]
                              create a tenant and its first API key (the key is shown once)
  tenant list                 list all tenants
  tenant show TENANT          show a tenant with its effective quota
  tenant update TENANT [--tier T] [--weight N] [QUOTA FLAGS]
                              change the tier, the weight or quota overrides
  tenant suspend TENANT [--reason TEXT]
  tenant resume TENANT
  tenant delete TENANT --yes  delete a tenant: closes its sessions, revokes its keys

API keys:
  key create TENANT [--role ROLE ...] [--label TEXT]
                              create an API key (the key is shown once)
  key list TENANT
  key revoke KEY_ID

Signing keys:
  signing-key rotate [--grace-seconds N] [--retire-previous-now]
                              make a new key active; the previous one verifies for the grace
                              period (0 or unset: the longest session lifetime)
  signing-key list            every signing key: active, in its grace period, or retired

Daemon and state:
  status                      version, uptime, queue, running jobs, pool threads busy, free
                              space, audit head and tree, and whether a stop has begun

Audit log (an RFC 6962 Merkle tree with signed heads; proofs are checked by qmkctl itself):
  audit head [--size N]       the signed tree head of the whole log (or of its first N records),
                              its signature checked with the daemon's signing keys
  audit list [--tenant ID] [--actor A] [--action X] [--target T] [--since TIME] [--until TIME]
             [--newest-first] [--limit N] [--page-token TOKEN]
                              records, oldest first; TIME is ISO 8601 or epoch milliseconds
  audit verify                re-hash the whole audit chain and its Merkle tree from the first
                              record; exit 1 naming the first record that does not verify
  audit prove SEQ [--size N]  prove record SEQ is in the signed log (inclusion proof)
  audit prove-consistency OLD_SIZE [--size N]
                              prove the log of OLD_SIZE records is a prefix of today's (or of
                              the first N records): nothing in it changed since
  anomalies list [--tenant ID] [--since TIME] [--until TIME] [--limit N] [--page-token T]
                              anomalies the kernel recorded (refusals past a tenant's
                              threshold), newest first: subject, type, severity, response
  evidence [--out DIR] [--previous FILE] [--address HOST:PORT]
           [--tls-ca FILE [--tls-cert FILE --tls-key FILE]]
                              isolation self-tests with two temporary tenants (created, probed,
                              deleted) and a report signed by the kernel key, JSON and HTML, in
                              DIR; --previous: a consistency proof of the audit log from that
                              report's head. Exit 1 if a self-test failed
  evidence verify FILE        check a report's signature against the daemon's signing keys
  backup PATH [--no-compact]  a hot, consistent copy of the state into the new directory PATH
                              (on the daemon's host): data file, data keys, marker; not the
                              master key. Start a daemon on PATH to restore it
  master-key rotate --new-key-file FILE
                              rewrap the data keys under the key in FILE (on the daemon's host);
                              replaces the development key file, else replace your key file
                              before the next start

Quota flags of tenant update (a flag not given leaves that quota as it is):
  --qubits-live-max N   --qubits-per-cluster-max N   --state-bytes-max N
  --sessions-max N      --session-ttl-seconds-max N  --gates-per-call-max N
  --jobs-queued-max N   --jobs-running-max N         --job-runtime-seconds-max N
  --program-nodes-max N --shots-per-job-max N
  --api-calls-per-minute N   --jobs-per-minute N   --allocations-per-minute N
  --measurements-per-second N --calls-in-flight-max N
  --anomaly-window-seconds N  --anomaly-firewall-refusals-max N  --anomaly-denials-max N
  --anomaly-quota-refusals-max N  --anomaly-rate-refusals-max N

Roles: tenant_admin, researcher, domain_scientist (repeat --role or separate with commas;
none given: tenant_admin). Weight 0 or unset: the tier's weight.

Global flags:
  --socket PATH   admin socket; default $QMK_ADMIN_SOCKET, else $QMK_STATE_DIR/admin.sock,
                  else ./.qmk-state/admin.sock
  --json          print the daemon's raw response as one JSON object
  -h, --help      print this help

Exit status: 0 success, 1 the daemon returned an error or could not be reached, 2 usage error.`;

/** Runs one qmkctl command line (without `node` and the script) and returns the exit status. */
export async function main(argv: string[], io: Io): Promise<number> {
  let admin: Admin | undefined;
  try {
    const parsed = parseCommandLine(argv);
    const flags = new Flags(parsed);
    const [first, ...rest] = parsed.positionals;
    if (flags.has('help') || first === 'help') {
      io.out(USAGE);
      return 0;
    }
    if (first === undefined) {
      io.err(USAGE);
      return 2;
    }
    let name = first;
    let args = rest;
    // A group's word alone is a command of its own where there is one (`evidence`).
    if (GROUPS.has(first) && !(rest[0] === undefined && COMMANDS[first] !== undefined)) {
      const sub = rest[0];
      if (sub === undefined) throw new UsageError(`'${first}' needs a subcommand (see --help)`);
      name = `${first} ${sub}`;
      args = rest.slice(1);
    }
    const command = COMMANDS[name];
    if (command === undefined) throw new UsageError(`unknown command '${name}' (see --help)`);
    for (const [flag, { raw }] of parsed.flags) {
      if (!GLOBAL_FLAGS.includes(flag) && !command.flags.includes(flag)) {
        throw new UsageError(`flag ${raw} does not apply to '${name}'`);
      }
    }
    if (args.length < command.args.length) {
      const missing = command.args.slice(args.length).join(' ');
      throw new UsageError(`'${name}' needs ${missing}`);
    }
    if (args.length > command.args.length) {
      throw new UsageError(`unexpected argument '${args[command.args.length]}' to '${name}'`);
    }
    const socketPath = resolveSocketPath(flags.str('socket'), process.env, process.cwd());
    const json = flags.has('json');
    const connection = new Admin(socketPath);
    admin = connection;
    await command.run({
      args,
      flags,
      call: (method, request) => connection.call(method, request),
      show: (response, human) => io.out(json ? JSON.stringify(response, null, 2) : human()),
    });
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`error: ${e.message}`);
      return 2;
    }
    if (e instanceof ConnectError) {
      io.err(`error: ${e.message}`);
      return 1;
    }
    if (isServiceError(e)) {
      const code = grpc.status[e.code] ?? String(e.code);
      // grpc-js ends connection errors with an empty "Resolution note:"; it only adds noise.
      io.err(`error: ${code}: ${e.details.replace(/\s*Resolution note:\s*$/, '')}`);
      // UNAVAILABLE here nearly always means the socket exists but nobody answers (a stale
      // socket left by a crashed daemon, or no permission to it).
      if (e.code === grpc.status.UNAVAILABLE && admin !== undefined) {
        io.err(`cannot reach qmkd at ${admin.socketPath}: ${NOT_RUNNING}`);
      }
      return 1;
    }
    io.err(`error: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  } finally {
    admin?.close();
  }
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  process.exitCode = await main(process.argv.slice(2), {
    out: (s) => process.stdout.write(`${s}\n`),
    err: (s) => process.stderr.write(`${s}\n`),
  });
}
