// http.route and the server span's name, with the express handler span (the default) and without
// it (FORKTRACE_EXPRESS_LAYERS=none: instrumentation-express still sets the route on the server
// span through the request's RPC metadata, but makes no span).
// A user checks the same three things in both modes:
//   GET /api/items/7  → server span "GET /api/items/:id", http.route = /api/items/:id (nested router)
//   GET /plain        → "GET /plain", http.route = /plain
//   GET /missing      → 404, span "GET", no http.route (no route matched)
// Not covered: routes given as regular expressions or arrays.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { REGISTER_CJS, ROOT, get, receiverForThisFile, spawnNode, SERVER } from './helpers.mjs';
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
