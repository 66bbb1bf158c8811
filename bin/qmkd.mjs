#!/usr/bin/env node
// qmkd launcher for `npx qmkd` and the installed bin: runs the compiled daemon when `npm run build`
// has produced it (production, as the systemd unit does), else the TypeScript source under tsx
// (development). The source runs in a child `node --import tsx` because the simulation pool's
// worker threads only load TypeScript when the flag is on the command line; signals are passed
// on and the child's exit status is this process's.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('../dist/src/main.js', import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', main, ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => {
    process.exitCode = code ?? (signal ? 128 : 1);
  });
}
