// Metrics (issue 14, OTLP part): the example app (express + mysql2) under the preload, and the
// same app in pm2 cluster mode, export to the project's receiver, which decodes the protobuf.
// The export interval is set to an hour, so every point asserted here was sent by a stop path,
// not by the timer; the test with a short interval checks the timer and the app's own counter.
//
// What a user checks: every request counted once, under the route its server span has; the
// database operations counted with their attributes; each worker its own series; nothing sent
// when metrics are off (the default).
//
// Not covered here: the console exporter's output format (upstream's); Prometheus
// (test/prometheus.test.mjs); a metrics endpoint that does not answer at a stop
// (test/signals.test.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as path from 'node:path';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { EXAMPLE, REGISTER_CJS, ROOT, freePort, get, mysqlReachable, receiverForThisFile, spawnNode } from './helpers.mjs';
import { startPm2 } from './pm2-helpers.mjs';

const require = createRequire(import.meta.url);
const { statusMessages } = require('../dist/worker/messages.js');

const receiver = receiverForThisFile();
const HOUR_MS = '3600000';
const SERVER_DURATION = 'http.server.request.duration';

/** The receiver's base URL: traces and metrics both derive their paths from it. */
const base = () => receiver.url.replace(/\/v1\/traces$/, '');

/**
 * The points of `name` as a backend would read them: for cumulative data, the latest point of each
 * series (worker × attribute set), since every export repeats the totals so far.
 */
function latest(points, name) {
  const series = new Map();
  for (const p of points.filter((x) => x.name === name)) {
    const key = `${p.resource['service.instance.id']}|${JSON.stringify(Object.entries(p.attributes).sort())}`;
    const seen = series.get(key);
    if (seen === undefined || p.timeUnixNano > seen.timeUnixNano) series.set(key, p);
  }
  return [...series.values()];
}
const countOf = (points) => points.reduce((n, p) => n + p.count, 0);

/** A downstream service for /hop, untraced, in this process. */
async function downstream() {
  const server = http.createServer((_req, res) => res.end('{"downstream":true}'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

test('the example app: every request and query counted once, under its route, delivered by the stop', async (t) => {
  if (!(await mysqlReachable())) return t.skip('MySQL is not reachable (MYSQL_URL)');
  receiver.reset();
  const down = await downstream();
  const app = spawnNode(['--require', REGISTER_CJS, path.join(EXAMPLE, 'server.js')], {
    cwd: EXAMPLE,
    env: {
      PORT: '0',
      OTEL_SERVICE_NAME: 'metrics-app',
      OTEL_EXPORTER_OTLP_ENDPOINT: base(),
      FORKTRACE_API_KEY: 'metrics-key-9f2c',
      OTEL_METRICS_EXPORTER: 'otlp',
      OTEL_METRIC_EXPORT_INTERVAL: HOUR_MS,
      DOWNSTREAM_URL: `http://127.0.0.1:${down.address().port}/hello`,
    },
  });
  const { listening: port } = await app.ready;
  const sent = { '/hello': 7, '/users/3': 3, '/db': 2, '/nope': 1, '/error': 1, '/hop': 1 };
  for (const [p, n] of Object.entries(sent)) for (let i = 0; i < n; i++) await get(`http://127.0.0.1:${port}${p}`);
  const exit = await app.kill('SIGTERM');
  down.close();
  // Without forktrace the app dies of the SIGTERM; with it, too, after the flush.
  assert.deepEqual(exit, { code: null, signal: 'SIGTERM' });

  const points = receiver.metrics;
  const server = latest(points, SERVER_DURATION);
  const byRoute = (route, status) =>
    countOf(server.filter((p) => p.attributes['http.route'] === route && p.attributes['http.response.status_code'] === status));
  assert.equal(byRoute('/hello', 200), 7);
  assert.equal(byRoute('/users/:id', 200), 3);
  assert.equal(byRoute('/db', 200), 2);
  assert.equal(byRoute('/hop', 200), 1);
  assert.equal(byRoute('/error', 500), 1);
  // A 404 matched no route: no http.route, as on its span.
  assert.equal(byRoute(undefined, 404), 1);
  assert.equal(countOf(server), 15, 'every request once');
  for (const p of server) {
    assert.equal(p.kind, 'histogram');
    assert.equal(p.unit, 's');
    assert.equal(p.temporality, 'cumulative');
    assert.equal(p.attributes['http.request.method'], 'GET');
    assert.equal(p.bucketCounts.reduce((a, b) => a + b, 0), p.count, 'the buckets hold every request');
    assert.ok(p.sum > 0 && p.max < 10, `durations in seconds: ${p.sum}`);
  }
  assert.equal(server.find((p) => p.attributes['http.response.status_code'] === 500).attributes['error.type'], '500');

  const client = latest(points, 'http.client.request.duration');
  assert.equal(countOf(client), 1, `the /hop call; the exporter’s own requests are not counted: ${JSON.stringify(client.map((p) => [p.attributes, p.count]))}`);
  assert.equal(client[0].attributes['server.address'], '127.0.0.1');

  const db = latest(points, 'db.client.operation.duration');
  assert.equal(countOf(db), 5, '3 /users/:id queries and 2 /db queries');
  for (const p of db) {
    assert.equal(p.unit, 's');
    assert.deepEqual(
      [p.attributes['db.system.name'], p.attributes['db.namespace'], p.attributes['db.operation.name']],
      ['mysql', 'test', 'SELECT'],
    );
    assert.equal(p.attributes['server.port'], 3306);
    assert.equal(p.scope.name, 'forktrace');
  }

  // Same worker identity as its spans, so a backend can join the two.
  const span = receiver.spans.find((s) => s.name === 'GET /hello');
  assert.ok(span, 'the spans arrived too');
  for (const p of points) {
    assert.equal(p.resource['service.name'], 'metrics-app');
    assert.equal(p.resource['service.instance.id'], span.resource['service.instance.id']);
  }
  const requests = receiver.requests.filter((r) => r.path === '/v1/metrics');
  assert.ok(requests.length >= 1);
  for (const r of requests) {
    assert.equal(r.status, 200);
    assert.equal(r.contentEncoding, 'gzip');
    assert.equal(r.headers['x-api-key'], 'metrics-key-9f2c');
  }
  const status = statusMessages.metricsTo(`${base()}/v1/metrics`, 3600000);
  assert.match(app.stderr, new RegExp(status.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  // express prints the /error route's exception itself; forktrace says nothing more.
  assert.doesNotMatch(app.stderr, /forktrace: (warning|error)|metrics-key-9f2c/);
});

test('a request that is not sampled: no span of its own, counted under its route beside a sampled one', async (t) => {
  if (!(await mysqlReachable())) return t.skip('MySQL is not reachable (MYSQL_URL)');
  receiver.reset();
  const app = spawnNode(['--require', REGISTER_CJS, path.join(EXAMPLE, 'server.js')], {
    cwd: EXAMPLE,
    env: {
      PORT: '0',
      OTEL_SERVICE_NAME: 'unsampled-app',
      OTEL_EXPORTER_OTLP_ENDPOINT: base(),
      OTEL_METRICS_EXPORTER: 'otlp',
      OTEL_METRIC_EXPORT_INTERVAL: HOUR_MS,
    },
  });
  const { listening: port } = await app.ready;
  // The default sampler follows the caller's decision: flags 00 is "not sampled".
  const caller = (sampled) => ({
    traceparent: `00-${sampled ? 'a1' : 'b2'}${'0'.repeat(29)}1-00f067aa0ba902b7-0${sampled ? 1 : 0}`,
  });
  for (let i = 0; i < 3; i++) await get(`http://127.0.0.1:${port}/users/${i}`, caller(false));
  await get(`http://127.0.0.1:${port}/hello`, caller(false));
  await get(`http://127.0.0.1:${port}/users/9`, caller(true));
  assert.deepEqual(await app.kill('SIGTERM'), { code: null, signal: 'SIGTERM' });

  const traceIds = new Set(receiver.spans.map((s) => s.traceId));
  assert.deepEqual([...traceIds], [`a1${'0'.repeat(29)}1`], 'only the sampled request has spans');
  assert.deepEqual(receiver.spans.map((s) => s.name).sort(), ['GET /users/:id', 'SELECT', 'request handler - /users/:id']);

  const server = latest(receiver.metrics, SERVER_DURATION);
  const byRoute = (route) => countOf(server.filter((p) => p.attributes['http.route'] === route));
  assert.equal(byRoute('/users/:id'), 4, 'three unsampled and one sampled');
  assert.equal(byRoute('/hello'), 1);
  assert.equal(countOf(server), 5, 'every request once');
  assert.equal(countOf(latest(receiver.metrics, 'db.client.operation.duration')), 4);
  assert.doesNotMatch(app.stderr, /forktrace: (warning|error)/);
});

test("the app's own counter through @opentelemetry/api, exported by the timer, delta when asked", async () => {
  receiver.reset();
  // The app never stops by itself: only the 300 ms timer can have sent what arrives.
  const script = `
    const { metrics } = require(${JSON.stringify(require.resolve('@opentelemetry/api'))});
    const orders = metrics.getMeter('shop').createCounter('shop.orders', { description: 'Orders placed' });
    orders.add(2, { 'payment.method': 'card' });
    orders.add(1, { 'payment.method': 'cash' });
    console.log(JSON.stringify({ listening: 0 }));
    setInterval(() => {}, 1000);
  `;
  const app = spawnNode(['--require', REGISTER_CJS, '-e', script], {
    env: {
      OTEL_SERVICE_NAME: 'shop',
      OTEL_EXPORTER_OTLP_ENDPOINT: base(),
      OTEL_METRICS_EXPORTER: 'otlp',
      OTEL_METRIC_EXPORT_INTERVAL: '300',
      OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'delta',
    },
  });
  await app.ready;
  const points = await receiver.waitForMetrics((ps) => ps.filter((p) => p.name === 'shop.orders').length >= 2, 10_000);
  await app.kill('SIGKILL');
  const first = points.filter((p) => p.name === 'shop.orders').slice(0, 2);
  const card = first.find((p) => p.attributes['payment.method'] === 'card');
  const cash = first.find((p) => p.attributes['payment.method'] === 'cash');
  assert.deepEqual([card?.value, cash?.value], [2, 1]);
  for (const p of first) {
    assert.deepEqual([p.kind, p.temporality, p.monotonic], ['sum', 'delta', true]);
    assert.equal(p.scope.name, 'shop');
  }
});

test('a crash and process.exit(): the metrics since the last export are sent from the exit, with the spans', async () => {
  for (const [how, path_, code] of [
    ['crash', '/crash', 1],
    ['exit', '/exit?code=3', 3],
  ]) {
    receiver.reset();
    const app = spawnNode(['--require', REGISTER_CJS, path.join(ROOT, 'test', 'fixtures', 'crash-app.js')], {
      env: {
        OTEL_SERVICE_NAME: `metrics-${how}`,
        OTEL_EXPORTER_OTLP_ENDPOINT: base(),
        OTEL_METRICS_EXPORTER: 'otlp',
        OTEL_METRIC_EXPORT_INTERVAL: HOUR_MS,
      },
    });
    const { listening: port } = await app.ready;
    for (let i = 0; i < 5; i++) await get(`http://127.0.0.1:${port}/hello`);
    await get(`http://127.0.0.1:${port}${path_}`).catch(() => undefined);
    const exit = await app.exited;
    assert.equal(exit.code, code, `${how}: the exit code is the app's own`);
    const hello = latest(receiver.metrics, SERVER_DURATION).filter((p) => p.attributes['http.route'] === '/hello');
    assert.equal(countOf(hello), 5, `${how}: the five requests before it`);
    // The /exit request itself is not counted: instrumentation-http records the duration on the
    // response's 'close', which comes after the 'finish' in which the app called process.exit().
    assert.doesNotMatch(app.stderr, /forktrace: warning/);
  }
});

test("an app's own SIGTERM handler calls process.exit() after the stop's flush: the exit sends only what was recorded since, and warns of nothing", async (t) => {
  // The stop's flush exports the totals; the exit that follows used to send them again (a
  // cumulative collection always has data), and, once the deadline was used up, to warn that
  // they were lost. Now an exit sends only what was recorded since the last successful export.
  const script = `
    const http = require('node:http');
    const server = http.createServer((req, res) => res.end('ok')).listen(0, '127.0.0.1', () =>
      process.stdout.write(JSON.stringify({ listening: server.address().port }) + '\\n'));
    process.on('SIGTERM', () => setTimeout(() => process.exit(0), Number(process.env.EXIT_AFTER_MS)));
  `;
  for (const [temporality, deadline, exitAfter, late] of [
    ['cumulative', 1000, 300, 0],
    ['delta', 1000, 300, 0],
    // The exit comes after the deadline: nothing left to send, so nothing to say either.
    ['cumulative', 400, 600, 0],
    // A request answered after the flush: the exit sends the new totals (delta: the one request).
    ['cumulative', 1000, 500, 1],
    ['delta', 1000, 500, 1],
  ]) {
    const label = `${temporality}, deadline ${deadline} ms, exit after ${exitAfter} ms, ${late} request(s) after the flush`;
    receiver.reset();
    const app = spawnNode(['--require', REGISTER_CJS, '-e', script], {
      env: {
        OTEL_SERVICE_NAME: 'own-exit',
        OTEL_EXPORTER_OTLP_ENDPOINT: base(),
        OTEL_METRICS_EXPORTER: 'otlp',
        OTEL_METRIC_EXPORT_INTERVAL: HOUR_MS,
        OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: temporality,
        FORKTRACE_SHUTDOWN_TIMEOUT_MS: String(deadline),
        EXIT_AFTER_MS: String(exitAfter),
      },
    });
    const { listening: port } = await app.ready;
    for (let i = 0; i < 4; i++) await get(`http://127.0.0.1:${port}/own`);
    app.child.kill('SIGTERM');
    if (late > 0) {
      await receiver.waitForMetrics((ps) => ps.some((p) => p.name === SERVER_DURATION));
      for (let i = 0; i < late; i++) await get(`http://127.0.0.1:${port}/own`);
    }
    assert.deepEqual(await app.exited, { code: 0, signal: null }, label);
    const requests = receiver.requests.filter((r) => r.path === '/v1/metrics');
    t.diagnostic(`${label}: ${requests.length} metrics request(s)`);
    assert.equal(requests.length, late > 0 ? 2 : 1, `${label}: the stop's flush${late > 0 ? ', then the exit' : ' only'}`);
    for (const r of requests) assert.equal(r.status, 200, label);
    const points = receiver.metrics.filter((p) => p.name === SERVER_DURATION);
    const total = temporality === 'delta' ? countOf(points) : countOf(latest(points, SERVER_DURATION));
    assert.equal(total, 4 + late, label);
    assert.doesNotMatch(app.stderr, /forktrace: warning/, label);
  }
});

test('a metrics-only app (OTEL_TRACES_EXPORTER=none): a crash sends the metrics from the exit, and a script that just ends flushes them on beforeExit', async () => {
  // The exit delivery used to be installed only with a span exporter, and beforeExit flushed only
  // when spans had ended: a metrics-only app lost what it recorded since the last export.
  receiver.reset();
  const crash = spawnNode(['--require', REGISTER_CJS, path.join(ROOT, 'test', 'fixtures', 'crash-app.js')], {
    env: {
      OTEL_SERVICE_NAME: 'metrics-only-crash',
      OTEL_TRACES_EXPORTER: 'none',
      OTEL_EXPORTER_OTLP_ENDPOINT: base(),
      OTEL_METRICS_EXPORTER: 'otlp',
      OTEL_METRIC_EXPORT_INTERVAL: HOUR_MS,
    },
  });
  const { listening: port } = await crash.ready;
  for (let i = 0; i < 5; i++) await get(`http://127.0.0.1:${port}/hello`);
  await get(`http://127.0.0.1:${port}/crash`).catch(() => undefined);
  assert.equal((await crash.exited).code, 1, 'the crash exit code is the app’s own');
  const hello = latest(receiver.metrics, SERVER_DURATION).filter((p) => p.attributes['http.route'] === '/hello');
  assert.equal(countOf(hello), 5, 'the five requests before the crash');
  assert.deepEqual(receiver.requests.filter((r) => r.path === '/v1/traces'), [], 'no spans: the traces exporter is none');
  assert.doesNotMatch(crash.stderr, /forktrace: warning/);

  // No span at all here, so only the metrics can make beforeExit flush; the exit delivery is off,
  // so only beforeExit can have sent them.
  receiver.reset();
  const script = `
    const { metrics } = require(${JSON.stringify(require.resolve('@opentelemetry/api'))});
    metrics.getMeter('job').createCounter('job.items').add(7);
    console.log(JSON.stringify({ listening: 0 }));
  `;
  const job = spawnNode(['--require', REGISTER_CJS, '-e', script], {
    env: {
      OTEL_SERVICE_NAME: 'metrics-only-job',
      OTEL_TRACES_EXPORTER: 'none',
      OTEL_EXPORTER_OTLP_ENDPOINT: base(),
      OTEL_METRICS_EXPORTER: 'otlp',
      OTEL_METRIC_EXPORT_INTERVAL: HOUR_MS,
      FORKTRACE_EXIT_DELIVERY: 'off',
    },
  });
  assert.deepEqual(await job.exited, { code: 0, signal: null });
  const items = receiver.metrics.filter((p) => p.name === 'job.items');
  assert.deepEqual(items.map((p) => p.value), [7], 'sent once, by the beforeExit flush');
  assert.doesNotMatch(job.stderr, /forktrace: warning/);
});

test('metrics are off by default: nothing is sent to /v1/metrics and the status line does not mention them', async () => {
  receiver.reset();
  const app = spawnNode(['--require', REGISTER_CJS, path.join(EXAMPLE, 'server.js')], {
    cwd: EXAMPLE,
    env: { OTEL_SERVICE_NAME: 'no-metrics', OTEL_EXPORTER_OTLP_ENDPOINT: base(), PORT: '0' },
  });
  const { listening: port } = await app.ready;
  await get(`http://127.0.0.1:${port}/hello`);
  await app.kill('SIGTERM');
  await receiver.waitFor((spans) => spans.length > 0);
  assert.deepEqual(
    receiver.requests.filter((r) => r.path === '/v1/metrics'),
    [],
  );
  assert.doesNotMatch(app.stderr, /metrics to/);
});

test('pm2 cluster mode: each worker its own series, and their sum is every request sent, after pm2 stop', async (t) => {
  if (!(await mysqlReachable())) return t.skip('MySQL is not reachable (MYSQL_URL)');
  receiver.reset();
  const pm2 = await startPm2();
  t.after(() => pm2.kill());
  const port = String(await freePort());
  await pm2.run(['start', path.join(ROOT, 'ecosystem.config.js')], {
    env: {
      PORT: port,
      OTEL_EXPORTER_OTLP_ENDPOINT: base(),
      OTEL_METRICS_EXPORTER: 'otlp',
      OTEL_METRIC_EXPORT_INTERVAL: HOUR_MS,
    },
  });
  // Until both workers have answered; each of these requests counts too.
  let sent = 0;
  const pids = new Set();
  const until = Date.now() + 20_000;
  while (pids.size < 2) {
    assert.ok(Date.now() < until, `both workers within 20 s; saw ${pids.size}`);
    const r = await get(`http://127.0.0.1:${port}/hello`).catch(() => undefined);
    if (r?.status === 200) {
      sent++;
      pids.add(JSON.parse(r.body).pid);
    } else await new Promise((res) => setTimeout(res, 100));
  }
  for (let i = 0; i < 40; i++) {
    await get(`http://127.0.0.1:${port}/hello`);
    sent++;
  }
  await pm2.run(['stop', 'forktrace-example']);
  const points = await receiver.waitForMetrics(
    (ps) => countOf(latest(ps, SERVER_DURATION)) >= sent && new Set(ps.map((p) => p.resource['process.pid'])).size >= 2,
    10_000,
  );
  const server = latest(points, SERVER_DURATION);
  assert.equal(countOf(server), sent, 'every request, once, across both workers');
  const workers = new Set(server.map((p) => p.resource['service.instance.id']));
  assert.equal(workers.size, 2, 'one series per worker');
  assert.deepEqual(new Set(server.map((p) => p.resource['process.pid'])), pids);
  assert.deepEqual(new Set(server.map((p) => p.resource['forktrace.worker.index'])), new Set([0, 1]));
});
