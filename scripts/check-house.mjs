#!/usr/bin/env node
// `npm run lint` step: the house rules that a compiler does not check. Layer: tooling.
// - No import circle between files of src/ (type-only imports count: a circle of types is still
//   two files that cannot be understood apart).
// - The layers point inward: src/kernel imports nothing from api/, store/, sim/, security/,
//   cli/ or main.
// - No file in src/ (generated code aside) is longer than SOURCE_LINES_MAX lines.
// - Every file in src/ opens with its header comment (`/**`: what it decides, its layer, why).
// - No class in src/ has more than CLASS_PUBLIC_MEMBERS_MAX public members (methods, properties
//   and accessors; a get/set pair counts once; the constructor does not count).
// Prints every finding and exits 1 if there is any.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

const SOURCE_LINES_MAX = 600;
const CLASS_PUBLIC_MEMBERS_MAX = 20;
const root = new URL('..', import.meta.url).pathname;
const src = join(root, 'src');

function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (name === 'generated') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

const files = walk(src);
const IMPORT =
  /(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)/g;
const edges = new Map();
const findings = [];
for (const file of files) {
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n').length;
  if (!text.startsWith('/**'))
    findings.push(`${relative(root, file)}: does not open with its header comment`);
  if (lines > SOURCE_LINES_MAX) {
    findings.push(`${relative(root, file)}: ${lines} lines (at most ${SOURCE_LINES_MAX})`);
  }
  const targets = new Set();
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2];
    const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
    if (existsSync(target)) targets.add(target);
  }
  edges.set(file, targets);
  const rel = relative(src, file);
  if (rel.startsWith('kernel/')) {
    for (const t of targets) {
      const to = relative(src, t);
      if (!to.startsWith('kernel/') && !to.startsWith('util/')) {
        findings.push(
          `${relative(root, file)} imports ${relative(root, t)}: kernel/ points inward`,
        );
      }
    }
  }
}

/** Public members of each class declared in `file`, by the TypeScript parser. */
function classSizes(file, text) {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const out = [];
  const visit = (node) => {
    if (ts.isClassDeclaration(node) || ts.isClassExpression(node)) {
      const names = new Set();
      for (const m of node.members) {
        if (ts.isConstructorDeclaration(m) || ts.isClassStaticBlockDeclaration(m)) continue;
        const mods = ts.getCombinedModifierFlags(m);
        if (mods & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) continue;
        if (m.name && ts.isPrivateIdentifier(m.name)) continue;
        names.add(m.name ? m.name.getText(sf) : `[${m.kind}]`);
      }
      out.push({ name: node.name?.text ?? '(anonymous)', members: names.size });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

for (const file of files) {
  for (const c of classSizes(file, readFileSync(file, 'utf8'))) {
    if (c.members > CLASS_PUBLIC_MEMBERS_MAX) {
      findings.push(
        `${relative(root, file)}: class ${c.name} has ${c.members} public members (at most ${CLASS_PUBLIC_MEMBERS_MAX})`,
      );
    }
  }
}

// Tarjan's strongly connected components: every component of more than one file is a circle.
let index = 0;
const stack = [];
const info = new Map();
function connect(v) {
  info.set(v, { index, low: index, on: true });
  index++;
  stack.push(v);
  for (const w of edges.get(v) ?? []) {
    if (!info.has(w)) {
      connect(w);
      info.get(v).low = Math.min(info.get(v).low, info.get(w).low);
    } else if (info.get(w).on) {
      info.get(v).low = Math.min(info.get(v).low, info.get(w).index);
    }
  }
  if (info.get(v).low === info.get(v).index) {
    const component = [];
    let w;
    do {
      w = stack.pop();
      info.get(w).on = false;
      component.push(relative(root, w));
    } while (w !== v);
    if (component.length > 1) findings.push(`import circle: ${component.sort().join(' <-> ')}`);
  }
}
for (const f of files) if (!info.has(f)) connect(f);

if (findings.length > 0) {
  for (const line of findings) console.log(line);
  process.exit(1);
}
console.log(
  `${files.length} files in src/: each with its header, no import circle, kernel/ points ` +
    `inward, none over ${SOURCE_LINES_MAX} lines, no class over ${CLASS_PUBLIC_MEMBERS_MAX} ` +
    'public members',
);
