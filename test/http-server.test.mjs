// forktrace's handler of server requests (src/worker/http-server.ts, the default) against
// instrumentation-http's own (FORKTRACE_HTTP_PATCH=upstream), on one app with a route for each way
// a request can go: JSON in and out, a thrown error, a 5xx answer, a method the HTTP conventions do
// not name, no route, a body read by late listeners that then calls another server, an answer
// from outside the request's context, and callers that sent a sampled or an unsampled traceparent.
//
// What a user checks: the same spans (names, kinds, parents, attributes, statuses, events) and the
// same request-duration metrics from both, every request counted whether sampled or not; secrets
// in the query redacted; an unsampled request's call to another server carries the caller's trace
// and its "not sampled" flag, so that no service downstream starts a trace of its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import {
  CLIENT,
  PER_CONNECTION,
  REGISTER_CJS,
  ROOT,
  receiverForThisFile,
  send,
  spawnNode,
  traceShapes,
} from './helpers.mjs';

const APP = path.join(ROOT, 'test', 'fixtures', 'http-cases.js');
const receiver = receiverForThisFile();

const CALLER_TRACE = (byte) => `${byte}${'0'.repeat(29)}1`;
const caller = (traceId, sampled) => ({ traceparent: `00-${traceId}-00f067aa0ba902b7-0${sampled ? 1 : 0}` });
const SAMPLED_CALLER = CALLER_TRACE('a1');
const UNSAMPLED_CALLER = CALLER_TRACE('b2');
const JSON_BODY = { headers: { 'content-type': 'application/json' }, body: '{"a":1}' };

/** [path, request options, status]; each path is its own, so that each trace is found by it. */
const CASES = [
  ['/items/7?n=1', {}, 200],
  ['/items/7?n=2&token=abc&api_key=k1', { headers: { 'user-agent': 'curl/8.5.0' } }, 200],
  ['/items?n=3', { method: 'POST', ...JSON_BODY }, 201],
  ['/boom?n=4', {}, 500],
  ['/unavailable?n=5', {}, 503],
  ['/any?n=6', { method: 'PROPFIND' }, 200],
  ['/nowhere?n=7', {}, 404],
  ['/forward?n=8', { method: 'POST', body: 'x=1' }, 200],
  ['/items/9?n=9', { headers: caller(SAMPLED_CALLER, true) }, 200],
  ['/items/9?n=10', { headers: caller(UNSAMPLED_CALLER, false) }, 200],
  [
    '/items?n=11',
    { method: 'POST', ...JSON_BODY, headers: { ...JSON_BODY.headers, ...caller(UNSAMPLED_CALLER, false) } },
    201,
  ],
  ['/forward?n=12', { method: 'POST', body: 'x=2', headers: caller(UNSAMPLED_CALLER, false) }, 200],
  ['/later/13?n=13', {}, 200],
  ['/later/14?n=14', { headers: caller(UNSAMPLED_CALLER, false) }, 200],
];
const UNSAMPLED = CASES.filter(([, o]) => o.headers?.traceparent?.endsWith('-00')).length;
const FORWARDS = CASES.filter(([p]) => p.startsWith('/forward')).length;

/** `shapes` with the echo server's port, which differs from run to run, left out of its URLs. */
const withoutPorts = (shapes) =>
  Object.fromEntries(
    Object.entries(shapes).map(([k, lines]) => [
      k,
      lines.map((l) => l.replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:<port>')),
    ]),
  );

/** The latest point of each series of `name` from `service`, as "attributes count" lines. */
function durationSeries(points, name, service) {
  const series = new Map();
  for (const p of points) {
    if (p.name !== name || p.resource['service.name'] !== service) continue;
    const attrs = Object.entries(p.attributes)
      .filter(([k]) => !PER_CONNECTION.has(k))
      .sort(([a], [b]) => a.localeCompare(b));
    const key = JSON.stringify(attrs);
    const seen = series.get(key);
    if (seen === undefined || p.timeUnixNano > seen.timeUnixNano) series.set(key, p);
  }
  return [...series].map(([key, p]) => `${key} ${p.count}`).sort();
}

// With metrics on, an unsampled request is still measured (its route and its end); with metrics
// off (the default) forktrace's handler gives it only its context.
for (const metrics of [true, false]) {
  test(`forktrace's request handler makes the spans${metrics ? ' and metrics' : ''} upstream's does, sampled or not, metrics ${metrics ? 'on' : 'off'}`, async () => {
    receiver.reset();
    const base = receiver.url.replace(/\/v1\/traces$/, '');
    const runs = {};
    for (const patch of ['upstream', 'forktrace']) {
      const service = `http-${patch}`;
      const app = spawnNode(['--require', REGISTER_CJS, APP], {
        env: {
          OTEL_SERVICE_NAME: service,
          OTEL_EXPORTER_OTLP_ENDPOINT: base,
          ...(metrics ? { OTEL_METRICS_EXPORTER: 'otlp', OTEL_METRIC_EXPORT_INTERVAL: '3600000' } : {}),
          OTEL_BSP_SCHEDULE_DELAY: '50',
          FORKTRACE_HTTP_PATCH: patch,
        },
      });
      const { listening: port } = await app.ready;
      const answers = {};
      for (const [p, options, status] of CASES) {
        const answer = await send(`http://127.0.0.1:${port}${p}`, options);
        assert.equal(answer.status, status, `${patch} ${p}`);
        answers[p] = answer.body;
      }
      assert.deepEqual(await app.kill('SIGTERM'), { code: null, signal: 'SIGTERM' });
      assert.deepEqual(
        app.stderr.split('\n').filter((l) => /^forktrace: (warning|error)/.test(l)),
        [],
        app.stderr,
      );
      runs[patch] = {
        answers,
        shapes: withoutPorts(traceShapes(receiver.spans, service)),
        server: durationSeries(receiver.metrics, 'http.server.request.duration', service),
        client: durationSeries(receiver.metrics, 'http.client.request.duration', service),
        spans: receiver.spans.filter((s) => s.resource['service.name'] === service),
      };
    }
    const { forktrace, upstream } = runs;

    // What a user sees with forktrace's handler.
    assert.equal(Object.keys(forktrace.shapes).length, CASES.length - UNSAMPLED, 'one trace per sampled request');
    assert.ok(
      forktrace.spans.every((s) => s.traceId !== UNSAMPLED_CALLER),
      'nothing of the unsampled requests is exported',
    );
    assert.equal(
      forktrace.spans.filter((s) => s.traceId === SAMPLED_CALLER && s.parentSpanId === '00f067aa0ba902b7').length,
      1,
      "a sampled caller's request is its child",
    );
    const query = forktrace.spans.find((s) => s.attributes['url.query']?.startsWith('n=2'))?.attributes['url.query'];
    assert.equal(query, 'n=2&token=REDACTED&api_key=REDACTED');
    assert.match(forktrace.answers['/forward?n=12'], new RegExp(`^00-${UNSAMPLED_CALLER}-[0-9a-f]{16}-00$`));
    const forwarded = forktrace.spans.find((s) => s.kind === CLIENT && s.attributes['url.full']?.endsWith('/echo?x=1'));
    assert.ok(forwarded, 'the sampled forward made a client span');
    assert.equal(forktrace.answers['/forward?n=8'], `00-${forwarded.traceId}-${forwarded.spanId}-01`);
    // Answered outside the request's context: the route is still on the span and in the metric.
    const later = forktrace.spans.find((s) => s.attributes['url.path'] === '/later/13');
    assert.equal(later?.name, 'GET /later/:id');
    assert.equal(later.attributes['http.route'], '/later/:id');
    if (metrics) assert.ok(forktrace.server.some((line) => line.includes('"/later/:id"]') && line.endsWith(' 2')), forktrace.server.join('\n'));
    const counted = forktrace.server.reduce((n, line) => n + Number(line.split(' ').pop()), 0);
    assert.equal(
      counted,
      metrics ? CASES.length + FORWARDS : 0,
      'every request counted once, the echo server included',
    );

    // The same as upstream's.
    assert.deepEqual(forktrace.shapes, upstream.shapes);
    assert.deepEqual(forktrace.server, upstream.server);
    assert.deepEqual(forktrace.client, upstream.client);
    assert.match(upstream.answers['/forward?n=12'], new RegExp(`^00-${UNSAMPLED_CALLER}-[0-9a-f]{16}-00$`));
  });
}

// An app with a meter provider of its own, forktrace's metrics off: instrumentation-http records
// into the app's provider, so a request that is not sampled must still be counted under its route.
test("the app's own meter provider: requests that are not sampled are counted under their route", async () => {
  const script = `
    const { metrics } = require('@opentelemetry/api');
    const sdk = require('@opentelemetry/sdk-metrics');
    const reader = new sdk.PeriodicExportingMetricReader({
      exporter: new sdk.InMemoryMetricExporter(sdk.AggregationTemporality.CUMULATIVE),
      exportIntervalMillis: 3600000,
    });
    metrics.setGlobalMeterProvider(new sdk.MeterProvider({ readers: [reader] }));
    require(${JSON.stringify(path.join(ROOT, 'dist', 'index.js'))}).instrument({ serviceName: 'own-meter' });
    const express = require('express');
    const app = express();
    app.get('/items/:id', (req, res) => res.json({ id: req.params.id }));
    app.get('/report', async (_req, res) => {
      const { resourceMetrics } = await reader.collect();
      const points = resourceMetrics.scopeMetrics
        .flatMap((s) => s.metrics)
        .filter((m) => m.descriptor.name === 'http.server.request.duration')
        .flatMap((m) => m.dataPoints.map((p) => [p.attributes['http.route'], p.value.count]));
      res.json(points);
    });
    const server = app.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ listening: server.address().port })));
  `;
  const app = spawnNode(['-e', script], {
    env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url, OTEL_TRACES_SAMPLER: 'always_off' },
  });
  const { listening: port } = await app.ready;
  for (let i = 0; i < 3; i++) assert.equal((await send(`http://127.0.0.1:${port}/items/${i}`)).status, 200);
  const report = await send(`http://127.0.0.1:${port}/report`);
  assert.deepEqual(JSON.parse(report.body), [['/items/:id', 3]]);
  await app.kill('SIGTERM');
  assert.doesNotMatch(app.stderr, /forktrace: (warning|error)/);
});
