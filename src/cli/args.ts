/**
 * qmkctl's command line: every flag, parsing with node:util `parseArgs`, and typed access to the
 * values. Layer: cli. A mistake here is a `UsageError`, found before any RPC.
 */
import { parseArgs } from 'node:util';
import { QUOTA_FIELDS, type QuotaWireName } from '../kernel/quota-fields.js';

/** The largest value of a uint32 wire field (weights, most limits). */
export const UINT32_MAX = 0xffff_ffff;

/** A wire name as a flag: `qubits_live_max` is `--qubits-live-max`. */
export type Kebab<S extends string> = S extends `${infer A}_${infer B}` ? `${A}-${Kebab<B>}` : S;
export type QuotaFlag = Kebab<QuotaWireName>;

export function kebab<S extends string>(s: S): Kebab<S> {
  return s.replaceAll('_', '-') as Kebab<S>;
}

/** One value-taking flag per quota field (`tenant update`), named after its wire field. */
export const QUOTA_FLAG_TYPES = Object.fromEntries(
  QUOTA_FIELDS.map((f) => [kebab(f.wire), { type: 'string' }]),
) as Record<QuotaFlag, { readonly type: 'string' }>;

/** Every flag any command takes; `parseArgs` needs the types to know which ones carry values. */
export const FLAG_TYPES = {
  socket: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  tier: { type: 'string' },
  weight: { type: 'string' },
  role: { type: 'string', multiple: true },
  reason: { type: 'string' },
  yes: { type: 'boolean' },
  label: { type: 'string' },
  ...QUOTA_FLAG_TYPES,
  'grace-seconds': { type: 'string' },
  'retire-previous-now': { type: 'boolean' },
  'no-compact': { type: 'boolean' },
  'new-key-file': { type: 'string' },
  // audit
  size: { type: 'string' },
  tenant: { type: 'string' },
  actor: { type: 'string' },
  action: { type: 'string' },
  target: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  limit: { type: 'string' },
  'newest-first': { type: 'boolean' },
  'page-token': { type: 'string' },
  // evidence
  out: { type: 'string' },
  previous: { type: 'string' },
  address: { type: 'string' },
  'tls-ca': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
} as const;

export type FlagName = keyof typeof FLAG_TYPES;

export const GLOBAL_FLAGS: readonly FlagName[] = ['socket', 'json', 'help'];

/** Quota flags of `tenant update`, their Quota field and their largest value on the wire. */
export const QUOTA_FLAGS: readonly (readonly [FlagName, QuotaWireName, number])[] =
  QUOTA_FIELDS.map((f) => [kebab(f.wire), f.wire, f.wireMax] as const);

/** A mistake in the command line: reported on stderr with exit status 2, before any RPC. */
export class UsageError extends Error {}

export function isFlagName(name: string): name is FlagName {
  return Object.hasOwn(FLAG_TYPES, name);
}

/** The parsed command line: positionals and, per flag, every value given (booleans: ''). */
export interface Parsed {
  positionals: string[];
  flags: Map<FlagName, { raw: string; values: string[] }>;
}

export function parseCommandLine(argv: string[]): Parsed {
  // Non-strict so that unknown flags come back as tokens we can name in our own message.
  const { tokens } = parseArgs({
    args: argv,
    options: FLAG_TYPES,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const parsed: Parsed = { positionals: [], flags: new Map() };
  for (const token of tokens) {
    if (token.kind === 'positional') {
      parsed.positionals.push(token.value);
      continue;
    }
    if (token.kind === 'option-terminator') continue;
    const { name, rawName } = token;
    if (!isFlagName(name)) throw new UsageError(`unknown flag ${rawName}`);
    const spec: { type: 'string' | 'boolean' } = FLAG_TYPES[name];
    let value = '';
    if (spec.type === 'boolean') {
      if (token.value !== undefined) throw new UsageError(`flag ${rawName} takes no value`);
    } else {
      // parseArgs takes the next word as the value even when it is a flag; `--label --json`
      // almost always means a forgotten value, so refuse it unless written `--label=--json`.
      if (token.value === undefined || (!token.inlineValue && token.value.startsWith('-'))) {
        const hint = `write ${rawName}=VALUE if it starts with '-'`;
        throw new UsageError(`flag ${rawName} needs a value (${hint})`);
      }
      value = token.value;
    }
    const entry = parsed.flags.get(name) ?? { raw: rawName, values: [] };
    entry.values.push(value);
    parsed.flags.set(name, entry);
  }
  return parsed;
}

/** Read access to the flags of one command. Single-valued flags given twice are refused. */
export class Flags {
  constructor(private readonly parsed: Parsed) {}

  has(name: FlagName): boolean {
    return this.parsed.flags.has(name);
  }

  str(name: FlagName): string | undefined {
    const entry = this.parsed.flags.get(name);
    if (entry === undefined) return undefined;
    if (entry.values.length > 1) throw new UsageError(`flag --${name} given more than once`);
    return entry.values[0];
  }

  all(name: FlagName): string[] {
    return this.parsed.flags.get(name)?.values ?? [];
  }

  /** A non-negative integer flag no larger than `max`; undefined when absent. */
  int(name: FlagName, max: number): number | undefined {
    const text = this.str(name);
    if (text === undefined) return undefined;
    const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(n) || n > max) {
      throw new UsageError(`flag --${name} wants an integer from 0 to ${max}, got '${text}'`);
    }
    return n;
  }
}
