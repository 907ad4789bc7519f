// The shape of src/: no import cycles, and the worker side never reaches into the tools side.
// Read from the TypeScript sources, not from dist/: a cycle over a type (`import type`) vanishes
// from the built JavaScript, yet it still ties two modules into one (issue 11 found two:
// config↔pm2 over `Env`, instrument→log→instrument over `SpanStats`).
//
//   src/index.ts, types.ts, register.ts|.mts, preload.ts, code-cache.ts, paths.ts   the public surface and entry points
//   src/private-dir.ts   per-user folders and files, loaded by the preload's first file (Node modules only)
//   src/config/    the settings table and resolveConfig (a worker's first step; check calls it too)
//   src/worker/    what runs inside every traced process
//   src/tools/     the receiver (tail, the tests) and check
//   src/cli/       the forktrace command
// Not covered: dynamic imports with a computed path (forktrace has none).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from './helpers.mjs';

const SRC = path.join(ROOT, 'src');

function sourceFiles(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return /\.m?ts$/.test(e.name) && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Every relative module a file names: import/export … from, require(), import(), typeof import(). */
function relativeImports(file) {
  const text = fs.readFileSync(file, 'utf8');
  const out = new Set();
  for (const re of [/\bfrom\s+'(\.[^']*)'/g, /\brequire\('(\.[^']*)'\)/g, /\bimport\('(\.[^']*)'\)/g]) {
    for (const m of text.matchAll(re)) out.add(m[1]);
  }
  return [...out].map((spec) => resolveSource(file, spec)).filter((f) => f !== undefined);
}

function resolveSource(from, spec) {
  const base = path.resolve(path.dirname(from), spec.replace(/\.m?js$/, ''));
  for (const candidate of [`${base}.ts`, `${base}.mts`, path.join(base, 'index.ts')]) {
    if (fs.existsSync(candidate)) return candidate;
  }
  // package.json from the CLI's --version, or a built file named by path: not a module of src/.
  return undefined;
}

const files = sourceFiles(SRC);
const graph = new Map(files.map((f) => [f, relativeImports(f)]));
const rel = (f) => path.relative(SRC, f);

test('no import cycles in src/, type-only imports included', () => {
  const cycles = [];
  const state = new Map(); // 1: on the current path, 2: done
  const stack = [];
  const visit = (f) => {
    state.set(f, 1);
    stack.push(f);
    for (const g of graph.get(f) ?? []) {
      if (state.get(g) === 1) cycles.push([...stack.slice(stack.indexOf(g)), g].map(rel).join(' -> '));
      else if (!state.has(g)) visit(g);
    }
    stack.pop();
    state.set(f, 2);
  };
  for (const f of files) if (!state.has(f)) visit(f);
  assert.deepEqual(cycles, []);
});

test('layers: worker and config never import tools or cli; tools never import cli', () => {
  const layer = (f) => rel(f).split(path.sep)[0];
  const forbidden = { config: ['tools', 'cli', 'worker'], worker: ['tools', 'cli'], tools: ['cli'] };
  const allowed = new Set([
    // Leaves of the worker side that config uses: header-list parsing and the message texts.
    'config -> worker/secrets.ts',
    'config -> worker/messages.ts',
  ]);
  const wrong = [];
  for (const [f, deps] of graph) {
    for (const d of deps) {
      const edge = `${layer(f)} -> ${rel(d)}`;
      if ((forbidden[layer(f)] ?? []).includes(layer(d)) && !allowed.has(edge)) wrong.push(`${rel(f)} -> ${rel(d)}`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('the walk sees the graph: known edges are found', () => {
  // Guards the regular expressions above: a walk that found nothing would pass both tests.
  const edges = new Set([...graph].flatMap(([f, deps]) => deps.map((d) => `${rel(f)} -> ${rel(d)}`)));
  for (const e of ['index.ts -> worker/instrument.ts', 'preload.ts -> worker/instrument.ts', 'register.ts -> code-cache.ts', 'cli/main.ts -> cli/check.ts']) {
    assert.ok(edges.has(e.split('/').join(path.sep)), e);
  }
  assert.ok(files.length > 30, `${files.length} source files`);
});
