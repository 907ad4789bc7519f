// The package as a user gets it: what `npm pack` ships, and the README quick start run in a
// separate app folder that resolves `forktrace` through node_modules and the `exports` map.
// Not covered: installing from the registry (the package is not published); forktrace is linked
// into the app's node_modules instead, which exercises the same resolution.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { ROOT, get, killStarted, spawnNode, byName } from './helpers.mjs';

const require = createRequire(import.meta.url);
const { startReceiver } = require('../dist/tools/receiver.js');

let receiver;
let appDir;
before(async () => {
  receiver = await startReceiver();
  // A user's app: its own package.json, express from its node_modules, forktrace installed.
  appDir = fs.mkdtempSync(path.join(os.tmpdir(), 'forktrace-user-app-'));
  fs.writeFileSync(path.join(appDir, 'package.json'), JSON.stringify({ name: 'my-shop', version: '0.4.2' }));
  fs.mkdirSync(path.join(appDir, 'node_modules'));
  fs.symlinkSync(ROOT, path.join(appDir, 'node_modules', 'forktrace'), 'dir');
  fs.symlinkSync(path.join(ROOT, 'node_modules', 'express'), path.join(appDir, 'node_modules', 'express'), 'dir');
  // npm hoists forktrace's dependencies next to it; the app's own spans use this copy of the API.
  fs.mkdirSync(path.join(appDir, 'node_modules', '@opentelemetry'));
  fs.symlinkSync(path.join(ROOT, 'node_modules', '@opentelemetry', 'api'), path.join(appDir, 'node_modules', '@opentelemetry', 'api'), 'dir');
  const server = `
    const server = express().get('/hi', (_req, res) => res.send('hi')).listen(0, '127.0.0.1', () => {
      process.stdout.write(JSON.stringify({ listening: server.address().port }) + '\\n');
    });`;
  fs.writeFileSync(path.join(appDir, 'server.js'), `const express = require('express');${server}`);
  fs.writeFileSync(path.join(appDir, 'server.mjs'), `import express from 'express';${server}`);
  // The files the preload loaded from node_modules before the app's first line, and a route
  // whose span is made through the app's own @opentelemetry/api and forktrace's withSpan.
  fs.writeFileSync(
    path.join(appDir, 'own-spans.js'),
    `const preloaded = Object.keys(require.cache).filter((f) => f.includes('node_modules'));
    const nodeModules = process.moduleLoadList.filter((m) => /^NativeModule (worker_threads|internal\\/fs\\/promises)$/.test(m));
    const { trace } = require('@opentelemetry/api');
    const before = new Set(Object.keys(require.cache));
    const { withSpan } = require('forktrace');
    const byForktrace = Object.keys(require.cache).filter((f) => !before.has(f) && f.includes('node_modules'));
    const express = require('express');
    const server = express().get('/order', (_req, res) => {
      withSpan('price order', () => trace.getTracer('shop').startSpan('read cart').end());
      res.send('ok');
    }).listen(0, '127.0.0.1', () => {
      process.stdout.write(JSON.stringify({ listening: server.address().port, preloaded, nodeModules, byForktrace }) + '\\n');
    });`,
  );
  fs.symlinkSync(path.join(ROOT, 'node_modules', 'import-in-the-middle'), path.join(appDir, 'node_modules', 'import-in-the-middle'), 'dir');
  fs.writeFileSync(
    path.join(appDir, 'iitm-hook.mjs'),
    `import * as nodeModule from 'node:module';\nnodeModule.register('import-in-the-middle/hook.mjs', import.meta.url);\n`,
  );
  fs.writeFileSync(
    path.join(appDir, 'in-code.js'),
    `const { instrument } = require('forktrace');\nconst tracing = instrument({ serviceName: 'checkout-api' });\nconst express = require('express');${server}`,
  );
});
after(async () => {
  await killStarted();
  await receiver.close();
  fs.rmSync(appDir, { recursive: true, force: true });
});

test('npm pack ships dist (JS + types) and package.json, nothing else', () => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const files = JSON.parse(out)[0].files.map((f) => f.path);
  const unexpected = files.filter((f) => !/^dist\/.+\.(js|mjs|d\.ts|d\.mts)$/.test(f) && !['package.json', 'README.md', 'LICENSE'].includes(f));
  assert.deepEqual(unexpected, []);
  for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/register.js', 'dist/register.mjs', 'dist/register.d.ts']) {
    assert.ok(files.includes(f), `${f} is shipped`);
  }
  assert.ok(!files.some((f) => f.startsWith('test/') || f.startsWith('src/') || f.startsWith('examples/')));
});

// The preload is one bundled file (scripts/bundle.mjs), so that a worker's start does not
// resolve and compile ~240 module files. What a user checks: it still shares one tracer provider
// and one context with the app's own @opentelemetry/api and with `require('forktrace')`, which
// load from node_modules. In a CommonJS app it loads nothing from node_modules at all, and none of
// Node's worker_threads or promise file API (import-in-the-middle, which would load the first, only
// where an ESM loader can be registered: src/worker/esm-hook.ts). Expected tree:
//   GET /order → request handler - /order → price order → read cart
test('the bundled preload loads no file from node_modules in a CommonJS app, require(\'forktrace\') adds none, and both share context with the app\'s own API', async () => {
  receiver.reset();
  const app = spawnNode(['--require', 'forktrace/register', 'own-spans.js'], {
    cwd: appDir,
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`, OTEL_BSP_SCHEDULE_DELAY: '50' },
  });
  const { listening, preloaded, nodeModules, byForktrace } = await app.ready;
  // require('forktrace') next to the preload: the API only, no second SDK from node_modules.
  assert.deepEqual(byForktrace, []);
  assert.deepEqual(preloaded, [], 'the preload loaded files from node_modules');
  assert.deepEqual(nodeModules, [], 'the preload loaded Node modules an untraced app does not');
  assert.equal((await get(`http://127.0.0.1:${listening}/order`)).status, 200);
  const spans = await receiver.waitFor((s) => byName(s, 'read cart').length === 1 && byName(s, 'GET /order').length === 1);
  const [server] = byName(spans, 'GET /order');
  const [handler] = byName(spans, 'request handler - /order');
  const [price] = byName(spans, 'price order');
  const [cart] = byName(spans, 'read cart');
  assert.equal(handler.parentSpanId, server.spanId);
  assert.equal(price.parentSpanId, handler.spanId);
  assert.equal(cart.parentSpanId, price.spanId);
  assert.equal(cart.traceId, server.traceId);
  await app.kill('SIGINT');
});

for (const [label, args, service] of [
  ['node --require forktrace/register server.js', ['--require', 'forktrace/register', 'server.js'], 'my-shop'],
  ['node --import forktrace/register server.mjs', ['--import', 'forktrace/register', 'server.mjs'], 'my-shop'],
  ['instrument() on the first line', ['in-code.js'], 'checkout-api'],
  // An ESM app whose loader hook another preload registers: forktrace's CommonJS preload runs first
  // and must have hooked express by then (src/worker/esm-hook.ts).
  ['node --require forktrace/register --import ./iitm-hook.mjs server.mjs', ['--require', 'forktrace/register', '--import', './iitm-hook.mjs', 'server.mjs'], 'my-shop'],
]) {
  test(`README quick start: ${label}`, async () => {
    receiver.reset();
    const app = spawnNode(args, { cwd: appDir, env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`, OTEL_BSP_SCHEDULE_DELAY: '50' } });
    const { listening } = await app.ready;
    assert.equal((await get(`http://127.0.0.1:${listening}/hi`)).status, 200);
    const spans = await receiver.waitFor((s) => byName(s, 'GET /hi').length === 1);
    const [span] = byName(spans, 'GET /hi');
    assert.equal(span.resource['service.name'], service);
    assert.equal(span.attributes['http.route'], '/hi');
    if (service === 'my-shop') assert.equal(span.resource['service.version'], '0.4.2');
    await app.kill('SIGINT');
  });
}

test('the preload holds every semantic-conventions name its code reads, with upstream\'s values, and no other', () => {
  // scripts/bundle.mjs replaces the package's index (all 664 stable names) with the names the
  // bundled files mention. A name it missed would be `undefined` where an attribute key belongs.
  const text = fs.readFileSync(path.join(ROOT, 'dist', 'preload.js'), 'utf8');
  const start = text.indexOf('"semconv-used:@opentelemetry/semantic-conventions"(exports2) {');
  assert.ok(start > 0, 'the bundle has no trimmed semantic-conventions module');
  const module = text.slice(start, text.indexOf('\n  }\n', start));
  const defined = Object.fromEntries([...module.matchAll(/exports2\.(\w+) = ("[^"]*");/g)].map((m) => [m[1], JSON.parse(m[2])]));
  const upstream = require('@opentelemetry/semantic-conventions');
  const rest = text.slice(0, start) + text.slice(start + module.length);
  const read = new Set([...rest.matchAll(/\b[A-Z][A-Z0-9_]+\b/g)].map((m) => m[0]).filter((w) => typeof upstream[w] === 'string'));
  assert.ok(read.has('ATTR_HTTP_ROUTE') && read.has('ATTR_DB_QUERY_TEXT'), 'the scan of the bundle found none of the names it uses');
  assert.deepEqual(Object.keys(defined).sort(), [...read].sort());
  for (const [name, value] of Object.entries(defined)) assert.equal(value, upstream[name], name);
});
