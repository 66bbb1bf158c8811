#!/usr/bin/env node
// qmkctl launcher: lets `npx qmkctl` (and the installed bin) run the TypeScript source directly.
// Registering tsx's ESM hooks here, rather than requiring `tsx` on the command line, keeps the
// bin a plain Node script. This shim calls `main` itself; the module's own direct-execution check
// compares against process.argv[1], which is this file, so `main` runs exactly once.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/qmkctl.ts');
// exitCode rather than process.exit(): stdout may still be flushing into a pipe.
process.exitCode = await main(process.argv.slice(2), {
  out: (s) => process.stdout.write(`${s}\n`),
  err: (s) => process.stderr.write(`${s}\n`),
});
