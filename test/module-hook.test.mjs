// forktrace's require hook (src/worker/module-hook.ts), which stands in for upstream's
// RequireInTheMiddleSingleton: its instrumentations get the same modules handed over, and a
// module none of them patches loads as it would without forktrace, without require-in-the-middle
// resolving its files again. Packages are made in a temporary node_modules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { REGISTER_CJS, cleanEnv } from './helpers.mjs';

const require = createRequire(import.meta.url);
const { NamedModulesHook, hookedRequire } = require('../dist/worker/module-hook.js');

/** A folder with node_modules/<name> packages of `files` (path → source). */
function tree(packages) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'forktrace-module-hook-'));
  for (const [name, files] of Object.entries(packages)) {
    for (const [file, source] of Object.entries(files)) {
      const at = path.join(root, 'node_modules', name, file);
      fs.mkdirSync(path.dirname(at), { recursive: true });
      fs.writeFileSync(at, source);
    }
  }
  return root;
}

const pkg = (name, main = 'index.js') => JSON.stringify({ name, version: '1.2.3', main });

test('a registered package: its main file and its own files are handed over, as upstream names them; an unregistered one is not', (t) => {
  const root = tree({
    hooked: {
      'package.json': pkg('hooked'),
      'index.js': "exports.inner = require('./lib/inner.js'); exports.other = require('other');",
      'lib/inner.js': 'module.exports = { inner: true };',
    },
    other: { 'package.json': pkg('other'), 'index.js': "module.exports = require('./more.js');", 'more.js': 'module.exports = 1;' },
    late: { 'package.json': pkg('late'), 'index.js': 'module.exports = { late: true };' },
  });
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const seen = [];
  const hook = new NamedModulesHook();
  hook.register('hooked', (exports, name, basedir) => {
    seen.push({ name: name.replace(/\\/g, '/'), basedir });
    return name === 'hooked' ? { ...exports, patched: true } : exports;
  });
  const core = [];
  hook.register('os', (exports, name, basedir) => {
    core.push({ name, basedir });
    return exports;
  });
  hook.start();
  const req = createRequire(path.join(root, 'app.js'));
  const loaded = req('hooked');
  req('os');
  assert.equal(loaded.patched, true, 'the exports the hook returned are what require returns');
  assert.deepEqual(
    seen.map((s) => s.name),
    ['hooked/lib/inner.js', 'hooked'],
    'the package file by its path inside the package, then the main file by the package name',
  );
  assert.ok(seen.every((s) => s.basedir === path.join(root, 'node_modules', 'hooked')));
  assert.deepEqual(core, [{ name: 'os', basedir: undefined }], 'a core module by its name, without a folder');
  assert.deepEqual(hook.moduleNames, ['hooked', 'os']);

  // Required again: handed over once only, as upstream's hook does.
  req('hooked');
  assert.equal(seen.length, 2, 'a module already handed over is not handed over again');
  // A name registered after the start (an instrumentation created later) is hooked from then on.
  const late = [];
  hook.register('late', (exports, name) => {
    late.push(name);
    return exports;
  });
  assert.deepEqual(req('late'), { late: true });
  assert.deepEqual(late, ['late']);
  assert.equal(seen.length, 2);
});

test('which requires may load a hooked file: the listed core modules and packages, and paths into or inside those packages', () => {
  const mayBe = hookedRequire(['http', 'express', '@scope/pkg']);
  const cases = [
    ['http', undefined, true],
    ['node:http', undefined, true],
    ['node:fs', undefined, false],
    ['fs/promises', undefined, false],
    ['express', undefined, true],
    ['express/lib/router', undefined, true],
    ['expressive', undefined, false],
    ['debug', undefined, false],
    ['@scope/pkg', undefined, true],
    ['@scope/pkg/sub/x.js', undefined, true],
    ['@scope/other', undefined, false],
    ['./lib/x.js', '/srv/app/node_modules/express/index.js', true],
    ['./lib/x.js', '/srv/app/node_modules/expressive/index.js', false],
    ['./lib/x.js', '/srv/app/server.js', false],
    ['../node_modules/express', '/srv/app/lib/a.js', true],
    ['/srv/app/node_modules/express/index.js', '/srv/app/server.js', true],
    ['./x', 'C:\\app\\node_modules\\@scope\\pkg\\index.js', true],
    ['C:\\app\\node_modules\\express\\index.js', undefined, true],
  ];
  for (const [id, filename, expected] of cases) {
    assert.equal(mayBe(id, filename === undefined ? undefined : { filename }), expected, `require(${JSON.stringify(id)}) from ${filename}`);
  }
});

test('under the preload, a package no instrumentation patches is resolved as often as without forktrace', (t) => {
  // require-in-the-middle resolved each file once more than Node does (and a package's main once
  // more per file): most of what tracing added to the example app's start on Node 24.
  const root = tree({
    plain: { 'package.json': pkg('plain'), 'index.js': "require('./a.js'); require('./b.js');", 'a.js': '', 'b.js': "require('dep');" },
    dep: { 'package.json': pkg('dep'), 'index.js': '' },
  });
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const count = `
    const Module = require('node:module');
    let n = 0;
    const original = Module._resolveFilename;
    Module._resolveFilename = function () { n++; return original.apply(this, arguments); };
    require('plain');
    process.stdout.write(JSON.stringify({ resolved: n }));
  `;
  const run = (args) => {
    const r = spawnSync(process.execPath, [...args, '-e', count], {
      cwd: root,
      env: cleanEnv({ OTEL_SERVICE_NAME: 'module-hook', OTEL_TRACES_EXPORTER: 'none' }),
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout).resolved;
  };
  const plain = run([]);
  const traced = run(['--require', REGISTER_CJS]);
  assert.equal(plain, 4, 'plain, a.js, b.js, dep');
  assert.equal(traced, plain);
});

test("under the preload, a hooked package's package.json is read once more than without forktrace, not once per file", () => {
  // Upstream reads a hooked package's package.json for its version on each file it is handed
  // (mysql2: about 100 files, twice as two instrumentations hook it). Node reads package.json
  // files through a reader of its own, and mysql2 requires its own once.
  const script = `
    const fs = require('node:fs');
    const original = fs.readFileSync;
    let reads = 0;
    fs.readFileSync = function (file) {
      if (typeof file === 'string' && /[\\\\/]mysql2[\\\\/]package\\.json$/.test(file)) reads++;
      return original.apply(this, arguments);
    };
    require('mysql2');
    process.stdout.write(JSON.stringify({ reads }));
  `;
  const run = (args) => {
    const r = spawnSync(process.execPath, [...args, '-e', script], {
      cwd: path.join(path.dirname(REGISTER_CJS), '..'),
      env: cleanEnv({ OTEL_SERVICE_NAME: 'module-hook', OTEL_TRACES_EXPORTER: 'none' }),
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout).reads;
  };
  const plain = run([]);
  assert.equal(run(['--require', REGISTER_CJS]), plain + 1);
});
