// The preloads on the built output, against the example express + mysql2 app and the real MariaDB:
//   node --require dist/register.js examples/express-mysql2/server.js   (CommonJS)
//   node --import  dist/register.mjs examples/express-mysql2/server.mjs (ESM: express and mysql2
//                                                                         come in through `import`)
// Assertions are on what the project's receiver decoded from the real export requests.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import {
  EXAMPLE,
  REGISTER_CJS,
  REGISTER_ESM,
  byName,
  childrenOf,
  get,
  killStarted,
  mysqlReachable,
  spawnNode,
  SERVER,
  CLIENT,
} from './helpers.mjs';

const require = createRequire(import.meta.url);
const { startReceiver } = require('../dist/tools/receiver.js');

const CANARY = 'canary-key-5f3a9e1d';
let receiver;
let dbUp;
before(async () => {
  receiver = await startReceiver();
  dbUp = await mysqlReachable();
});
after(async () => {
  await killStarted();
  await receiver.close();
});

const VARIANTS = [
  { name: 'CJS --require', args: ['--require', REGISTER_CJS, path.join(EXAMPLE, 'server.js')] },
  { name: 'ESM --import', args: ['--import', REGISTER_ESM, path.join(EXAMPLE, 'server.mjs')] },
];

for (const variant of VARIANTS) {
  test(`${variant.name}: express + mysql2 span tree, resource, gzip and the API key header`, async (t) => {
    if (!dbUp) return t.skip('MySQL not reachable at MYSQL_URL');
    receiver.reset();
    const app = spawnNode(variant.args, {
      cwd: EXAMPLE,
      env: {
        PORT: '0',
        NODE_ENV: 'production',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url,
        FORKTRACE_API_KEY: CANARY,
        FORKTRACE_EXCLUDED_URLS: '^/health$',
        OTEL_BSP_SCHEDULE_DELAY: '50',
      },
    });
    const { listening: port } = await app.ready;
    const base = `http://127.0.0.1:${port}`;
    assert.equal((await get(`${base}/users/7?token=tok-123&page=2`)).status, 200);
    assert.equal((await get(`${base}/db`)).status, 200);
    assert.equal((await get(`${base}/health`)).status, 200);
    assert.equal((await get(`${base}/error`)).status, 500);

    const spans = await receiver.waitFor(
      (s) => byName(s, 'GET /users/:id').length === 1 && byName(s, 'GET /db').length === 1 && byName(s, 'GET /error').length === 1 && byName(s, 'SELECT').length >= 2,
    );
    // No SQL value of these requests reaches the wire.
    const statements = spans.map((x) => x.attributes['db.query.text']).filter((q) => q !== undefined);
    assert.deepEqual(statements.filter((q) => /42|private literal|user-|\b7\b/.test(q)), []);

    // Expected tree for /users/7, one trace:
    //   GET /users/:id                       server  (http.route=/users/:id)
    //   └─ request handler - /users/:id      express
    //      └─ SELECT                         mysql2 client, values masked
    const [server] = byName(spans, 'GET /users/:id');
    assert.equal(server.kind, SERVER);
    assert.equal(server.parentSpanId, '');
    assert.equal(server.attributes['http.route'], '/users/:id');
    assert.equal(server.attributes['http.request.method'], 'GET');
    assert.equal(server.attributes['http.response.status_code'], 200);
    assert.equal(server.attributes['url.query'], 'token=REDACTED&page=2', 'sensitive query values are redacted');
    const [handler] = childrenOf(spans, server);
    assert.ok(handler, 'the server span has an express child');
    assert.equal(handler.scope.name, '@opentelemetry/instrumentation-express');
    assert.equal(handler.name, 'request handler - /users/:id');
    const [query] = childrenOf(spans, handler);
    assert.ok(query, 'the express span has a mysql2 child');
    assert.equal(query.kind, CLIENT);
    assert.equal(query.attributes['db.system.name'], 'mysql');
    assert.equal(query.attributes['db.query.text'], 'SELECT ? AS id, CONCAT(?, ?) AS name');
    assert.equal(new Set([server, handler, query].map((s) => s.traceId)).size, 1);

    // /db runs SQL with literals in it: they are masked.
    const [dbServer] = byName(spans, 'GET /db');
    const dbQuery = spans.find((s) => s.traceId === dbServer.traceId && s.kind === CLIENT);
    assert.equal(dbQuery.attributes['db.query.text'], 'SELECT ? AS answer, ? AS note');

    // /error: the server span says so.
    const [errorSpan] = byName(spans, 'GET /error');
    assert.equal(errorSpan.attributes['http.response.status_code'], 500);
    assert.equal(errorSpan.status.code, 2);

    // The excluded URL produced no span at all.
    assert.equal(spans.filter((s) => String(s.attributes['url.path']).startsWith('/health') || s.name.includes('/health')).length, 0);

    // Resource: service from the app's package.json (the process runs from the example dir).
    const r = server.resource;
    assert.equal(r['service.name'], 'express-mysql2-example');
    assert.equal(r['service.version'], '1.2.3');
    assert.equal(r['deployment.environment.name'], 'production');
    assert.equal(r['host.name'], os.hostname());
    assert.equal(r['process.pid'], app.pid);
    assert.equal(r['process.runtime.name'], 'nodejs');
    assert.equal(r['process.runtime.version'], process.versions.node);
    assert.match(String(r['service.instance.id']), /^[0-9a-f-]{36}$/);
    assert.equal(r['forktrace.process_manager'], 'none');
    assert.equal(r['telemetry.sdk.language'], 'nodejs');

    // The requests: gzip protobuf with the API key header.
    const req = server.request;
    assert.equal(req.contentEncoding, 'gzip');
    assert.equal(req.contentType, 'application/x-protobuf');
    assert.equal(req.headers['x-api-key'], CANARY);
    assert.ok(req.wireBytes < req.bodyBytes, 'the body was compressed');

    // SIGTERM with no handler of the app's: the process ends by SIGTERM, as without forktrace.
    const { code, signal } = await app.kill('SIGTERM');
    assert.deepEqual({ code, signal }, { code: null, signal: 'SIGTERM' });

    // forktrace's stderr lines are exactly the service-name fallback warning and the status line
    // (the rest is express logging the /error route's exception).
    const lines = app.stderr.split('\n').filter((l) => l.startsWith('forktrace:'));
    assert.deepEqual(lines, [
      'forktrace: warning: service.name is "express-mysql2-example" (from ' + path.join(EXAMPLE, 'package.json') + '); set OTEL_SERVICE_NAME or the `serviceName` option to choose it.',
      `forktrace: tracing express-mysql2-example (pid ${app.pid}) to ${receiver.url} (gzip, key in x-api-key)`,
    ]);
    assert.ok(!app.stdout.includes(CANARY) && !app.stderr.includes(CANARY));
  });
}

test('console exporter: spans on stdout, the API key nowhere in stdout or stderr', async () => {
  const app = spawnNode(['--require', REGISTER_CJS, path.join(EXAMPLE, 'server.js')], {
    cwd: EXAMPLE,
    env: { PORT: '0', OTEL_SERVICE_NAME: 'console-app', OTEL_TRACES_EXPORTER: 'console', FORKTRACE_API_KEY: CANARY, OTEL_EXPORTER_OTLP_HEADERS: `x-extra=${CANARY}-2`, OTEL_BSP_SCHEDULE_DELAY: '50', OTEL_LOG_LEVEL: 'debug' },
  });
  const { listening: port } = await app.ready;
  await get(`http://127.0.0.1:${port}/hello`);
  await app.kill('SIGINT');
  assert.match(app.stdout, /name: 'GET \/hello'/);
  assert.match(app.stdout, /'service.name': 'console-app'/);
  assert.ok(!app.stdout.includes(CANARY), 'stdout has no key');
  assert.ok(!app.stderr.includes(CANARY), 'stderr (debug diag log included) has no key');
  assert.match(app.stderr, /forktrace: tracing console-app \(pid \d+\) to console/);
});

test('OTEL_SDK_DISABLED=true: the app works, one line says so, and nothing is sent', async () => {
  receiver.reset();
  const app = spawnNode(['--require', REGISTER_CJS, path.join(EXAMPLE, 'server.js')], {
    cwd: EXAMPLE,
    env: { PORT: '0', OTEL_SDK_DISABLED: 'true', OTEL_SERVICE_NAME: 'off', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '50' },
  });
  const { listening: port } = await app.ready;
  const r = await get(`http://127.0.0.1:${port}/hello`);
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).hello, 'world');
  await app.kill('SIGINT');
  assert.equal(app.stderr, 'forktrace: not instrumented: OTEL_SDK_DISABLED=true.\n');
  await new Promise((res) => setTimeout(res, 200));
  assert.equal(receiver.requests.length, 0);
});

test('express required before instrument(): one warning that names the fix', async () => {
  const script = `
    const express = require('express');
    require(${JSON.stringify(path.join(path.dirname(REGISTER_CJS), 'index.js'))}).instrument({ serviceName: 'late', exporters: ['none'] });
    process.stdout.write(JSON.stringify({ done: true }) + '\\n');
  `;
  const app = spawnNode(['-e', script], { cwd: EXAMPLE, readyKey: 'done' });
  await app.ready;
  await app.exited;
  const warnings = app.stderr.split('\n').filter((l) => l.includes('warning'));
  assert.deepEqual(warnings, [
    // pm2 resolves a bare --require from its daemon's cwd, hence require.resolve in the advice.
    "forktrace: warning: express was loaded before forktrace, so it is not traced. Load forktrace first: node --require forktrace/register app.js (ESM: --import forktrace/register); under pm2, node_args: ['--require', require.resolve('forktrace/register')] in ecosystem.config.js.",
  ]);
});

test('a broken preload environment prints one "not instrumented" line and the app still runs', async () => {
  // OTEL_TRACES_EXPORTER garbage is an operator error: one warning, then defaults; the app runs.
  const app = spawnNode(['--require', REGISTER_CJS, path.join(EXAMPLE, 'server.js')], {
    cwd: EXAMPLE,
    env: { PORT: '0', OTEL_SERVICE_NAME: 'x', OTEL_TRACES_EXPORTER: 'kafka', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:9/v1/traces' },
  });
  const { listening: port } = await app.ready;
  assert.equal((await get(`http://127.0.0.1:${port}/hello`)).status, 200);
  await app.kill('SIGINT');
  assert.match(app.stderr, /^forktrace: warning: OTEL_TRACES_EXPORTER="kafka" is not supported; accepted: otlp, console, none, or a comma list such as otlp,console\. Using otlp\.$/m);
});

test('express 4: the same server span name and http.route', async (t) => {
  // express 4 is installed as the alias `express4`; a fixture folder links it in as `express`, and
  // --preserve-symlinks keeps that path, so the instrumentation sees a module named express.
  const fs = await import('node:fs');
  const dir = path.join(EXAMPLE, '..', '..', 'test', 'fixtures', 'express4-app');
  fs.mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
  const link = path.join(dir, 'node_modules', 'express');
  if (!fs.existsSync(link)) fs.symlinkSync(path.join(EXAMPLE, '..', '..', 'node_modules', 'express4'), link, 'dir');
  t.after(() => fs.rmSync(path.join(dir, 'node_modules'), { recursive: true, force: true }));
  receiver.reset();
  const app = spawnNode(['--preserve-symlinks', '--require', REGISTER_CJS, path.join(dir, 'server.js')], {
    cwd: dir,
    env: { OTEL_SERVICE_NAME: 'e4', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '50' },
  });
  const { listening, express } = await app.ready;
  assert.match(express, /^4\./);
  assert.equal((await get(`http://127.0.0.1:${listening}/users/9`)).status, 200);
  const spans = await receiver.waitFor((s) => byName(s, 'GET /users/:id').length === 1 && s.length >= 2);
  const [server] = byName(spans, 'GET /users/:id');
  assert.equal(server.attributes['http.route'], '/users/:id');
  const [handler] = childrenOf(spans, server);
  assert.equal(handler.name, 'request handler - /users/:id');
  await app.kill('SIGINT');
});

test('an instrumentation turned off: OTEL_NODE_DISABLED_INSTRUMENTATIONS=mysql2 leaves no SQL spans', async (t) => {
  if (!dbUp) return t.skip('MySQL not reachable at MYSQL_URL');
  receiver.reset();
  const app = spawnNode(['--require', REGISTER_CJS, path.join(EXAMPLE, 'server.js')], {
    cwd: EXAMPLE,
    env: { PORT: '0', OTEL_SERVICE_NAME: 'no-sql', OTEL_NODE_DISABLED_INSTRUMENTATIONS: 'mysql2', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '50' },
  });
  const { listening: port } = await app.ready;
  assert.equal((await get(`http://127.0.0.1:${port}/users/3`)).status, 200);
  const spans = await receiver.waitFor((s) => byName(s, 'GET /users/:id').length === 1 && byName(s, 'request handler - /users/:id').length === 1);
  await app.kill('SIGINT');
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(receiver.spans.filter((s) => s.scope.name.includes('mysql2')), []);
  assert.equal(spans.length, 2);
});
