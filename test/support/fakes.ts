/**
 * In-memory ports for kernel unit tests (the kernel's decisions, not the daemon: integration tests
 * use the real store and pool). The fake simulator records plans and answers measurements with 0.
 */
import { Admin } from '../../src/kernel/admin.js';
import { Kernel } from '../../src/kernel/kernel.js';
import type {
  AuditEvent,
  ExecPlan,
  OplogEntry,
  SimulatorPort,
  StorePort,
  StoreRecord,
} from '../../src/kernel/ports.js';
import { Keyring } from '../../src/security/keyring.js';
import { NodeCrypto } from '../../src/security/node-crypto.js';

export class MemoryStore implements StorePort {
  commits: { records: StoreRecord[]; audit: AuditEvent[]; oplog: OplogEntry[] }[] = [];
  /** While set, every commit fails with it and nothing is recorded (a full or failing disk). */
  failWith: Error | null = null;
  /** What `lowSpace` answers (below the watermark when set). */
  low: { freeBytes: number; minBytes: number } | null = null;
  async commit(records: StoreRecord[], audit: AuditEvent[], oplog: OplogEntry[] = []) {
    if (this.failWith) throw this.failWith;
    this.commits.push({ records, audit, oplog });
  }
  lowSpace() {
    return this.low;
  }
  shredded: string[] = [];
  shred(owner: string) {
    this.shredded.push(owner);
    return true;
  }
  auditHead() {
    return { seq: this.commits.length, hash: '' };
  }
  /** The latest committed put of a key (committed records only, as in LMDB). */
  read(db: string, key: string | number): unknown {
    for (let i = this.commits.length - 1; i >= 0; i--) {
      for (let j = this.commits[i]!.records.length - 1; j >= 0; j--) {
        const r = this.commits[i]!.records[j]!;
        if (r.db === db && r.key === key) return r.op === 'put' ? r.value : undefined;
      }
    }
    return undefined;
  }
}

export class RecordingSim implements SimulatorPort {
  readonly engine = 'fake';
  readonly threads = 0;
  plans: ExecPlan[] = [];
  created: number[] = [];
  dropped: number[] = [];
  create(c: { id: number }) {
    this.created.push(c.id);
  }
  async execute(plan: ExecPlan, done: (o: (0 | 1)[]) => Promise<void>) {
    this.plans.push(plan);
    const n = plan.ops.filter((o) => o.kind === 'measure' || o.name === 'RESET').length;
    await done(new Array(n).fill(0));
  }
  drop(id: number) {
    this.dropped.push(id);
  }
  async snapshot() {
    return [];
  }
  restore() {}
  async idle() {}
}

export class ManualClock {
  constructor(public now = 1_700_000_000_000) {}
  nowMs() {
    return this.now;
  }
}

export async function kernelWithTenant(tier = 'pro') {
  const crypto = new NodeCrypto();
  const keyring = new Keyring(crypto.secret(), []);
  keyring.bootstrap(Date.now());
  const store = new MemoryStore();
  const sim = new RecordingSim();
  const clock = new ManualClock();
  const kernel = new Kernel({ store, signer: keyring, sim, clock, crypto });
  const admin = new Admin(kernel, { clock, crypto, signer: keyring, store });
  const t = await admin.createTenant('tester', tier, 0, []);
  const principal = kernel.principals.authenticate(t.apiKey);
  const { handle: session } = await kernel.sessions.open(principal, [], 0);
  return {
    kernel,
    admin,
    store,
    sim,
    clock,
    keyring,
    principal,
    session,
    apiKey: t.apiKey,
    tenant: t.tenant,
  };
}
