// http.route and the server span's name, with the express handler span (the default) and without
// it (FORKTRACE_EXPRESS_LAYERS=none: instrumentation-express still sets the route on the server
// span through the request's RPC metadata, but makes no span).
// A user checks the same three things in both modes:
//   GET /api/items/7  → server span "GET /api/items/:id", http.route = /api/items/:id (nested router)
//   GET /plain        → "GET /plain", http.route = /plain
//   GET /missing      → 404, span "GET", no http.route (no route matched)
// Routes of every other shape, express 4 and ESM: the second half of this file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { REGISTER_CJS, REGISTER_ESM, ROOT, get, receiverForThisFile, spawnNode, SERVER, traceShapes } from './helpers.mjs';
const APP = path.join(ROOT, 'test', 'fixtures', 'nested-routes.js');
const EXPRESS_SCOPE = '@opentelemetry/instrumentation-express';

const receiver = receiverForThisFile();

for (const [mode, env, expressSpans] of [
  ['defaults', {}, 1],
  ['FORKTRACE_EXPRESS_LAYERS=none', { FORKTRACE_EXPRESS_LAYERS: 'none' }, 0],
]) {
  test(`${mode}: http.route and span names, nested router included; ${expressSpans} express span per matched request`, async () => {
    receiver.reset();
    const app = spawnNode(['--require', REGISTER_CJS, APP], {
      env: { OTEL_SERVICE_NAME: 'routes', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '50', ...env },
    });
    const { listening: port } = await app.ready;
    const base = `http://127.0.0.1:${port}`;
    assert.equal((await get(`${base}/api/items/7`)).status, 200);
    assert.equal((await get(`${base}/plain`)).status, 200);
    assert.equal((await get(`${base}/missing`)).status, 404);

    const spans = await receiver.waitFor((s) => s.filter((x) => x.kind === SERVER).length === 3);
    const servers = spans.filter((s) => s.kind === SERVER);
    const byPath = Object.fromEntries(servers.map((s) => [s.attributes['url.path'], s]));
    assert.equal(byPath['/api/items/7'].name, 'GET /api/items/:id');
    assert.equal(byPath['/api/items/7'].attributes['http.route'], '/api/items/:id');
    assert.equal(byPath['/plain'].name, 'GET /plain');
    assert.equal(byPath['/plain'].attributes['http.route'], '/plain');
    assert.equal(byPath['/missing'].attributes['http.response.status_code'], 404);
    assert.equal(byPath['/missing'].attributes['http.route'], undefined);

    await app.kill('SIGTERM');
    const all = receiver.spans;
    const express = all.filter((s) => s.scope.name === EXPRESS_SCOPE);
    assert.equal(express.length, 2 * expressSpans, 'express spans: one handler span per matched request by default');
    assert.equal(app.stderr.includes('warning'), false, app.stderr);
  });
}

// Without express, forktrace leaves the RPC metadata alone: an app (or a framework) that names
// its routes there keeps them, a 404 on a matched route included. While express and its
// corrections were installed on every server request, that 404 lost its route.
//   GET /users/7    → 200, "GET /users/:id"
//   GET /users/404  → 404, "GET /users/:id"
//   GET /nowhere    → 404, "GET", no http.route
test('no express loaded: the route a plain http app writes itself stands, on a 404 too', async () => {
  receiver.reset();
  const app = spawnNode(['--require', REGISTER_CJS, path.join(ROOT, 'test', 'fixtures', 'own-router.js')], {
    env: { OTEL_SERVICE_NAME: 'own-router', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '50' },
  });
  const { listening: port } = await app.ready;
  const base = `http://127.0.0.1:${port}`;
  assert.equal((await get(`${base}/users/7`)).status, 200);
  assert.equal((await get(`${base}/users/404`)).status, 404);
  assert.equal((await get(`${base}/nowhere`)).status, 404);
  const isServer = (s) => s.kind === SERVER && s.resource['service.name'] === 'own-router';
  const spans = await receiver.waitFor((s) => s.filter(isServer).length === 3);
  const got = spans.filter(isServer).map((s) => [s.attributes['url.path'], s.attributes['http.route'], s.name]);
  assert.deepEqual(got.sort(), [
    ['/nowhere', undefined, 'GET'],
    ['/users/404', '/users/:id', 'GET /users/:id'],
    ['/users/7', '/users/:id', 'GET /users/:id'],
  ]);
  await app.kill('SIGTERM');
  assert.deepEqual(app.stderr.split('\n').filter((l) => l.startsWith('forktrace: warning')), [], app.stderr);
});

// http.route for every shape of express route, on express 5 (CommonJS and ESM) and express 4,
// with and without express spans. test/fixtures/route-cases.js mounts:
//   app ── get /                           GET /?utm_source=mail  → "GET /"
//       ├─ use /api ─ router ─ use /v1 ─ router ─ get /items/:id
//       │                                       └─ use /legacy ─ sub-app ─ get /orders/:n
//       ├─ use /admin ─ sub-app ─ get /users/:id
//       ├─ route /books/:isbn (get, put)
//       ├─ get ['/alias-a', '/alias-b/:x']       → "/alias-a,/alias-b/:x" (elements joined by ",")
//       ├─ get /^\/re\/(\d+)$/                    → "/^\/re\/(\d+)$/"      (the RegExp literal)
//       ├─ get /items/:id → next() ─┐
//       ├─ use renderData  ←────────┘  (responds with what the handler left in res.locals)
//       ├─ use router ─ use /posts ─ router ─ route /:id → next() ─┐   (json-server 0.17)
//       │            └─ use renderData  ←──────────────────────────┘
//       ├─ get /fail/:id (throws)
//       └─ error handler (4 arguments): 500
// The route is the template of the last route express matched, mount paths included; a request
// that matched none and got a 404 has none.
// Not covered: express 5's own path syntax ({/:opt}, /*splat), app.param, a sub-app mounted at a
// RegExp; a request no route matched but a path-mounted middleware answered (e.g. express.static
// at /static) keeps the mount path instrumentation-express reports.
const CASES = [
  // [path, status, http.route (undefined: none)]
  ['/', 200, '/'],
  // Upstream 0.72 (utils.ts getActualMatchedRoute) takes the root route only when originalUrl is
  // exactly '/', and originalUrl keeps the query string: no route, span "GET".
  ['/?utm_source=mail', 200, '/'],
  ['/api/v1/items/7', 200, '/api/v1/items/:id'],
  ['/api/v1/legacy/orders/3', 200, '/api/v1/legacy/orders/:n'],
  // With middleware layers ignored (forktrace's default), upstream drops a sub-app's mount path.
  ['/admin/users/4', 200, '/admin/users/:id'],
  ['/books/12', 200, '/books/:isbn'],
  ['/alias-b/3', 200, '/alias-a,/alias-b/:x'],
  ['/re/42', 200, '/^\\/re\\/(\\d+)$/'],
  // Upstream 0.72 (instrumentation.ts _applyPatch) lets every later layer overwrite the route:
  // the route-less renderData leaves none, and json-server's shape is reported as "/posts".
  ['/items/9', 200, '/items/:id'],
  ['/posts/3', 200, '/posts/:id'],
  ['/fail/5', 500, '/fail/:id'],
  ['/missing', 404, undefined],
  // Upstream reports the router the request went through: "/api".
  ['/api/nothing', 404, undefined],
];

const EXPRESS4_DIR = path.join(ROOT, 'test', 'fixtures', 'express4-routes');

/** express 4 is installed as `express4`; link it in as `express` for the fixture's folder. */
async function linkExpress4(t) {
  const fs = await import('node:fs');
  const link = path.join(EXPRESS4_DIR, 'node_modules', 'express');
  fs.mkdirSync(path.dirname(link), { recursive: true });
  if (!fs.existsSync(link)) fs.symlinkSync(path.join(ROOT, 'node_modules', 'express4'), link, 'dir');
  t.after(() => fs.rmSync(path.dirname(link), { recursive: true, force: true }));
}

const RUNS = [
  ['express 5', '5.', ['--require', REGISTER_CJS, path.join(ROOT, 'test', 'fixtures', 'route-cases.js')]],
  ['express 5, ESM', '5.', ['--import', REGISTER_ESM, path.join(ROOT, 'test', 'fixtures', 'route-cases.mjs')]],
  // --preserve-symlinks keeps the linked path, so the instrumentations see a module named express.
  ['express 4', '4.', ['--preserve-symlinks', '--require', REGISTER_CJS, path.join(EXPRESS4_DIR, 'server.js')]],
];

for (const [name, major, args] of RUNS) {
  for (const [mode, env] of [
    ['defaults', {}],
    ['FORKTRACE_EXPRESS_LAYERS=none', { FORKTRACE_EXPRESS_LAYERS: 'none' }],
  ]) {
    if (name.includes('ESM') && mode !== 'defaults') continue;
    test(`${name}, ${mode}: http.route and the server span name for every shape of route`, async (t) => {
      if (name === 'express 4') await linkExpress4(t);
      receiver.reset();
      const service = `routes-${major}${mode === 'defaults' ? 'd' : 'n'}${name.includes('ESM') ? 'm' : 'c'}`;
      const app = spawnNode(args, {
        env: { OTEL_SERVICE_NAME: service, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '50', ...env },
      });
      const { listening: port, express } = await app.ready;
      assert.ok(express.startsWith(major), `express ${express}`);
      for (const [p, status] of CASES) assert.equal((await get(`http://127.0.0.1:${port}${p}`)).status, status, p);

      const isServer = (s) => s.kind === SERVER && s.resource['service.name'] === service;
      const spans = await receiver.waitFor((s) => s.filter(isServer).length === CASES.length);
      const byUrl = new Map();
      for (const s of spans.filter(isServer)) {
        const q = s.attributes['url.query'];
        byUrl.set(s.attributes['url.path'] + (q ? `?${q}` : ''), s);
      }
      await t.test('upstream case 1: GET /?query on app.get("/")', () => {
        const span = byUrl.get('/?utm_source=mail');
        assert.equal(span.attributes['http.route'], '/');
        assert.equal(span.name, 'GET /');
      });
      await t.test('upstream case 2: a handler calls next() into a later middleware (json-server 0.17 too)', () => {
        for (const p of ['/items/9', '/posts/3']) {
          const [, , route] = CASES.find(([c]) => c === p);
          assert.equal(byUrl.get(p).attributes['http.route'], route, p);
          assert.equal(byUrl.get(p).name, `GET ${route}`, p);
        }
      });
      await t.test('every case', () => {
        const got = CASES.map(([p]) => [p, byUrl.get(p)?.attributes['http.route'], byUrl.get(p)?.name]);
        const want = CASES.map(([p, , route]) => [p, route, route === undefined ? 'GET' : `GET ${route}`]);
        assert.deepEqual(got, want);
      });
      await app.kill('SIGTERM');
      const expressSpans = receiver.spans.filter((s) => s.scope.name === EXPRESS_SCOPE && s.resource['service.name'] === service);
      if (mode === 'defaults') assert.ok(expressSpans.length > 0, 'express handler spans by default');
      else assert.equal(expressSpans.length, 0, 'no express span with FORKTRACE_EXPRESS_LAYERS=none');
      assert.deepEqual(app.stderr.split('\n').filter((l) => l.startsWith('forktrace: warning')), [], app.stderr);
    });
  }
}

// forktrace's express layer patch (src/worker/express-layer.ts, the default) against upstream's own
// (FORKTRACE_EXPRESS_PATCH=upstream) on every case above, with a span for every layer type: the
// same spans with the same names, kinds, parents, attributes, statuses and events, trace by trace.
// Timings, ids and the socket's own attributes (ports, addresses) are left out.
const ALL_LAYERS = { FORKTRACE_EXPRESS_LAYERS: 'request_handler,middleware,router' };

for (const [name, major, args] of RUNS.filter(([n]) => !n.includes('ESM'))) {
  test(`${name}: forktrace's express layer patch makes the spans upstream's does, every layer type, every case`, async (t) => {
    if (name === 'express 4') await linkExpress4(t);
    receiver.reset();
    const shapes = {};
    for (const patch of ['upstream', 'forktrace']) {
      const service = `parity-${major}${patch}`;
      const app = spawnNode(args, {
        env: {
          OTEL_SERVICE_NAME: service,
          OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url,
          OTEL_BSP_SCHEDULE_DELAY: '50',
          FORKTRACE_EXPRESS_PATCH: patch,
          ...ALL_LAYERS,
        },
      });
      const { listening: port } = await app.ready;
      for (const [p, status] of CASES) assert.equal((await get(`http://127.0.0.1:${port}${p}`)).status, status, p);
      await app.kill('SIGTERM');
      assert.deepEqual(app.stderr.split('\n').filter((l) => l.startsWith('forktrace: warning')), [], app.stderr);
      shapes[patch] = traceShapes(receiver.spans, service);
    }
    assert.equal(Object.keys(shapes.forktrace).length, CASES.length, 'one trace per request');
    const middleware = Object.values(shapes.forktrace).flat().filter((l) => l.includes('"express.type","middleware"'));
    assert.ok(middleware.length > 0, 'middleware spans were made');
    assert.deepEqual(shapes.forktrace, shapes.upstream);
  });
}
