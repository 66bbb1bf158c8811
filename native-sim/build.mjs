#!/usr/bin/env node
// Builds the native engine with node-gyp; run by `npm ci` / `npm install` (the root package's
// install script) and by hand with `node native-sim/build.mjs`. A failed build is not an install
// failure: the daemon then runs the JavaScript engine and says so in its start-up log. Set
// QMK_NATIVE_BUILD=0 to skip the build.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
  ];
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed as a package: npm's bundled copy is the usual one
  }
  return candidates.find((p) => p !== undefined && p !== '' && existsSync(p));
}

function main() {
  if (process.env.QMK_NATIVE_BUILD === '0') {
    console.log('native-sim: build skipped (QMK_NATIVE_BUILD=0); the JavaScript engine will run');
    return;
  }
  const gyp = nodeGyp();
  if (gyp === undefined) {
    console.warn('native-sim: node-gyp not found; the JavaScript engine will run');
    return;
  }
  const args = [gyp, 'rebuild'];
  // Build against the installed Node headers when there are some (no download needed).
  const nodedir = process.env.npm_config_nodedir || dirname(dirname(process.execPath));
  if (existsSync(join(nodedir, 'include/node/node.h'))) args.push(`--nodedir=${nodedir}`);
  const started = Date.now();
  const r = spawnSync(process.execPath, args, { cwd: here, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status === 0) {
    console.log(`native-sim: built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return;
  }
  const tail = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
  console.warn(`native-sim: build failed; the JavaScript engine will run\n${tail}`);
}

main();
