'use strict';
// Where forktrace's startup goes: load with
//   node --require ./bench/require-times.cjs --require ./dist/register.js -e 0
// and it prints, at exit, the time spent loading each package (self time: the package's own
// module loading, compiling and top-level code, not that of the packages it requires), the
// number of modules, and the preload's total. The timing hook adds its own overhead.
const Module = require('node:module');
const path = require('node:path');

const original = Module._load;
const stack = [];
const selfByPackage = new Map();
const files = new Set();
let total = 0n;

function packageOf(file) {
  const m = /node_modules[\\/]((?:@[^\\/]+[\\/])?[^\\/]+)/.exec(file ?? '');
  if (m) return m[1].replace(/\\/g, '/');
  if (!file || !file.includes(path.sep)) return 'node: built-ins';
  return path.relative(process.cwd(), file).split(path.sep).slice(0, 2).join('/');
}

Module._load = function (request, parent, isMain) {
  let file;
  try {
    file = Module._resolveFilename(request, parent, isMain);
  } catch {
    file = request;
  }
  const t0 = process.hrtime.bigint();
  stack.push(0n);
  try {
    return original.apply(this, arguments);
  } finally {
    const dt = process.hrtime.bigint() - t0;
    const children = stack.pop();
    if (stack.length > 0) stack[stack.length - 1] += dt;
    else total += dt;
    const key = packageOf(file);
    selfByPackage.set(key, (selfByPackage.get(key) ?? 0n) + dt - children);
    if (file.includes(path.sep)) files.add(file);
  }
};

process.on('exit', () => {
  const ms = (ns) => (Number(ns) / 1e6).toFixed(1);
  const rows = [...selfByPackage].sort((a, b) => (b[1] > a[1] ? 1 : -1));
  const out = [`require() total ${ms(total)} ms, ${files.size} files`];
  for (const [pkg, ns] of rows.slice(0, 25)) out.push(`${ms(ns).padStart(7)} ms  ${pkg}`);
  process.stderr.write(out.join('\n') + '\n');
});
