#!/usr/bin/env node
// `npm run lint` step: every file a comment or doc names must exist. Layer: tooling.
// Scans src/, test/, bench/, docs/ and README.md for repository paths (src/…, test/…, docs/…,
// bench/…, scripts/…, native-sim/…, proto/…) and for bare file names in backticks
// (`ops.ts`, `qmkctl.ts`), and fails listing each one that names no file in the tree.
// Why: comments that point at moved or deleted files send a reader to nothing.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const SKIP = new Set(['node_modules', 'generated', 'build', 'dist', '.git', '.qmk-state']);

function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (SKIP.has(name)) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

const all = walk(root).map((p) => relative(root, p));
const names = new Set(all.map((p) => basename(p)));
const scanned = all
  .filter((p) => /^(src|test|bench|docs)\//.test(p) || p === 'README.md')
  .filter((p) => /\.(ts|mjs|md)$/.test(p));

const PATH =
  /(?<![\w/.-])((?:src|test|docs|bench|scripts|native-sim|proto)\/[A-Za-z0-9_./-]*[A-Za-z0-9_])/g;
const BARE = /`([A-Za-z0-9_-]+\.(?:ts|js|mjs|cc|h|proto|md))`/g;
/** A path names a file when it exists as written, as its TypeScript source, or with `.ts`. */
function exists(ref) {
  const p = join(root, ref);
  return existsSync(p) || existsSync(p.replace(/\.js$/, '.ts')) || existsSync(`${p}.ts`);
}

/** Names that are meant to be absent from the tree, each with the reason. */
const ALLOWED = new Map([
  ['bench/results', 'written by `npm run bench:sim` at run time (ignored by git)'],
  ['QVM.md', 'the name some refusal messages still cite for the program format (docs/programs.md)'],
]);

const missing = [];
for (const file of scanned) {
  // Import lines are checked by the compiler; prose and comments are what drift.
  const lines = readFileSync(join(root, file), 'utf8')
    .split('\n')
    .filter((l) => !/^\s*(import|export)\b.*from '/.test(l) && !/^\s*} from '/.test(l))
    .filter((l) => !/await import\(/.test(l));
  const text = lines.join('\n');
  for (const m of text.matchAll(PATH)) {
    const ref = m[1].replace(/[.:]+$/, '');
    if (!exists(ref) && !ALLOWED.has(ref)) missing.push(`${file}: ${ref}`);
  }
  for (const m of text.matchAll(BARE)) {
    const name = m[1];
    if (names.has(name) || names.has(name.replace(/\.js$/, '.ts')) || ALLOWED.has(name)) continue;
    missing.push(`${file}: ${name}`);
  }
}
if (missing.length > 0) {
  console.log('References to files that do not exist:');
  for (const line of missing) console.log(`  ${line}`);
  process.exit(1);
}
console.log(`${scanned.length} files: every referenced file exists`);
