/**
 * What a qmkctl command is and what it gets to run with. Layer: cli.
 */
import type { AdminMethod, ReplyOf, RequestOf } from './admin-client.js';
import type { FlagName, Flags } from './args.js';

export interface Ctx {
  args: string[];
  flags: Flags;
  /** Calls an AdminService method with the deadline; connects on first use. */
  call<M extends AdminMethod>(method: M, request: RequestOf<M>): Promise<ReplyOf<M>>;
  /** Prints `response` as JSON under --json, else the human form `human()` renders. */
  show(response: unknown, human: () => string): void;
}

export interface Command {
  /** Positional argument names, for usage errors. */
  args: readonly string[];
  flags: readonly FlagName[];
  run(ctx: Ctx): Promise<void>;
}
