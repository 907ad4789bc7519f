// The Prometheus scrape response (src/worker/prometheus-text.ts), rendered in process from
// families as the metrics server will hand them over, and read back by Prometheus' own parsers:
// - the text format by `promtool check metrics` (parse and lint: it must exit 0 and say nothing);
// - OpenMetrics by the OpenMetrics parser of promtool's backfill (`promtool tsdb create-blocks-from
//   openmetrics`), then `promtool tsdb dump` for the series Prometheus stores. `check metrics`
//   cannot read OpenMetrics: its text-format parser fails on an exemplar ("expected integer as
//   timestamp, got #") and on `# TYPE target info` ("unknown metric type"), and without those its
//   lint reads `# TYPE x counter` + `x_total` as two families ("x_total no help text").
// Under CI=true a missing promtool (Debian package `prometheus`) fails these tests; elsewhere
// they are skipped with that reason.
// Not covered here: the HTTP server, the aggregation across workers, and a live Prometheus
// scraping both (the metrics server's own tests).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { render, contentType, negotiate, prometheusMessages } = require('../dist/worker/prometheus-text.js');

const promtoolMissing = spawnSync('promtool', ['--version']).error
  ? 'promtool is not installed (Debian: apt-get install prometheus)'
  : undefined;
const ci = process.env.CI === 'true';
/** Skips a promtool test where promtool is missing, except under CI=true, where it fails. */
const needsPromtool = { skip: promtoolMissing !== undefined && !ci ? promtoolMissing : false };
function assertPromtool() {
  if (promtoolMissing) assert.fail(`${promtoolMissing}, and CI=true: CI must prove the renders parse`);
}

/** `promtool check metrics` on a text-format render: its exit code and everything it printed. */
function promtoolCheck(text) {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/**
 * Parses an OpenMetrics render with Prometheus' OpenMetrics parser (promtool's backfill) and
 * returns the series it stored, as `promtool tsdb dump` prints them, less the timestamp.
 * Backfill wants a timestamp on every sample, so one is put after each sample's value; nothing
 * else of the render is changed.
 */
function parseOpenMetrics(text) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forktrace-om-'));
  try {
    const file = path.join(dir, 'scrape.om');
    fs.writeFileSync(file, text.split('\n').map((l) => (l === '' || l.startsWith('#') ? l : withTimestamp(l))).join('\n'));
    const blocks = path.join(dir, 'blocks');
    const r = spawnSync('promtool', ['tsdb', 'create-blocks-from', 'openmetrics', file, blocks], { encoding: 'utf8', timeout: 30_000 });
    if (r.status !== 0) return { status: r.status, output: `${r.stdout}${r.stderr}`, series: [] };
    fs.mkdirSync(path.join(blocks, 'wal'), { recursive: true }); // dump opens the DB, WAL included
    const d = spawnSync('promtool', ['tsdb', 'dump', blocks], { encoding: 'utf8', timeout: 30_000 });
    const series = d.stdout.split('\n').filter(Boolean).map((l) => l.replace(/ \d+$/, ''));
    return { status: d.status, output: d.stderr, series };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const TIMESTAMP = '1700000000';
function withTimestamp(line) {
  // The value ends at the first space after the name and the labels (whose quoted values may
  // hold spaces and braces).
  let i = 0;
  while (i < line.length && line[i] !== ' ' && line[i] !== '{') i++;
  if (line[i] === '{') {
    for (let quoted = false; ++i < line.length; ) {
      if (quoted && line[i] === '\\') i++;
      else if (line[i] === '"') quoted = !quoted;
      else if (!quoted && line[i] === '}') break;
    }
    i++;
  }
  const end = line.indexOf(' ', i + 1);
  return end === -1 ? `${line} ${TIMESTAMP}` : `${line.slice(0, end)} ${TIMESTAMP}${line.slice(end)}`;
}

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';
const exemplar = (value, timeUnixMs = 1700000000123) => ({ value, traceId: TRACE, spanId: SPAN, timeUnixMs });
const options = (format, extra = {}) => ({ format, namespace: '', exemplars: true, targetInfo: {}, ...extra });
const samples = (text) => text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
/** Renders one family with one series and returns its sample lines. */
const sampleLines = (family, opts = options('prometheus')) => samples(render([family], opts));

/**
 * What a server with forktrace metrics shows: two routes' request durations, a counter the app
 * keeps (with an exemplar), an up-down counter, and the resource as target_info.
 */
const FIXTURE = [
  {
    name: 'http.server.request.duration',
    description: 'Duration of HTTP server requests.',
    unit: 's',
    type: 'histogram',
    bounds: [0.005, 0.01, 0.1, 1, 10],
    series: [
      {
        attributes: { 'http.request.method': 'GET', 'http.route': '/users/:id', 'http.response.status_code': 200 },
        count: 4,
        sum: 0.621,
        bucketCounts: [1, 1, 0, 2, 0, 0],
        exemplars: [exemplar(0.004), undefined, undefined, exemplar(0.3, 1700000001500), undefined, undefined],
      },
      {
        attributes: { 'http.request.method': 'POST', 'http.route': '/orders', 'http.response.status_code': 500 },
        count: 1,
        sum: 12.5,
        bucketCounts: [0, 0, 0, 0, 0, 1],
      },
    ],
  },
  {
    name: 'app.jobs.processed',
    description: 'Jobs done by the "mail" queue \\ others.\nCounted when acknowledged.',
    unit: '{job}',
    type: 'counter',
    series: [{ attributes: { queue: 'mail', retried: false }, value: 1042, exemplars: [exemplar(1, 1700000002000)] }],
  },
  {
    name: 'app.queue.depth',
    description: 'Jobs waiting.',
    unit: '{job}',
    type: 'updowncounter',
    series: [{ attributes: { queue: 'mail' }, value: 7 }],
  },
];
const TARGET = { 'service.name': 'shop', 'service.instance.id': 'web-0', 'forktrace.worker.index': 0 };

const GET = 'http_request_method="GET",http_response_status_code="200",http_route="/users/:id"';
const POST = 'http_request_method="POST",http_response_status_code="500",http_route="/orders"';
const EX_4MS = ` # {trace_id="${TRACE}",span_id="${SPAN}"} 0.004 1700000000.123`;
const EX_300MS = ` # {trace_id="${TRACE}",span_id="${SPAN}"} 0.3 1700000001.500`;

test('names: the OpenTelemetry name, its unit as a word, the type suffix (table)', () => {
  const cases = [
    // [name, unit, type, namespace, the first sample's name]
    ['http.server.request.duration', 's', 'histogram', '', 'http_server_request_duration_seconds_bucket'],
    ['http.server.duration', 'ms', 'histogram', '', 'http_server_duration_milliseconds_bucket'],
    ['db.client.operation.duration', 's', 'histogram', 'shop', 'shop_db_client_operation_duration_seconds_bucket'],
    ['http.server.request.duration', 's', 'histogram', 'my-app', 'my_app_http_server_request_duration_seconds_bucket'],
    ['system.network.io', 'By', 'counter', '', 'system_network_io_bytes_total'],
    ['process.memory.usage', 'MiBy', 'updowncounter', '', 'process_memory_usage_mebibytes'],
    ['system.cpu.utilization', '1', 'gauge', '', 'system_cpu_utilization_ratio'],
    // `1` is a ratio only on a gauge; on an up-down counter or a counter it is a count.
    ['app.items', '1', 'updowncounter', '', 'app_items'],
    ['app.items.added', '1', 'counter', '', 'app_items_added_total'],
    ['http.server.active_requests', '{request}', 'updowncounter', '', 'http_server_active_requests'],
    ['network.throughput', 'By/s', 'gauge', '', 'network_throughput_bytes_per_second'],
    ['app.arrivals', '{request}/s', 'gauge', '', 'app_arrivals_per_second'],
    ['app.dropped', 'packets', 'counter', '', 'app_dropped_packets_total'],
    // Not duplicated when the name ends with it; added when the name only starts with it.
    ['app.latency_seconds', 's', 'histogram', '', 'app_latency_seconds_bucket'],
    ['seconds_before_deadline', 's', 'gauge', '', 'seconds_before_deadline_seconds'],
    ['app.requests_total', '', 'counter', '', 'app_requests_total'],
    ['app.cpu_total', 's', 'counter', '', 'app_cpu_seconds_total'],
    // Invalid characters become `_`, runs of `_` one, a leading digit gets `_` before it.
    ['app..weird--name!', '', 'counter', '', 'app_weird_name_total'],
    ['app/über.latency', 's', 'gauge', '', 'app_ber_latency_seconds'],
    ['5xx.responses', '', 'counter', '', '_5xx_responses_total'],
    ['job:rate.5m', '', 'gauge', '', 'job:rate_5m'],
  ];
  for (const [name, unit, type, namespace, expected] of cases) {
    const series =
      type === 'histogram' ? { attributes: {}, count: 0, sum: 0, bucketCounts: [0] } : { attributes: {}, value: 0 };
    const family = { name, description: 'd', unit, type, bounds: [], series: [series] };
    const [first] = sampleLines(family, options('prometheus', { namespace }));
    assert.equal(first.split(/[{ ]/)[0], expected, `${name} (${unit}, ${type})`);
  }
});

test('metadata: the text format names a counter after its sample, OpenMetrics after its family with a UNIT', () => {
  const family = { name: 'app.cpu.time', description: 'CPU time.', unit: 's', type: 'counter', series: [{ attributes: {}, value: 1.5 }] };
  assert.deepEqual(render([family], options('prometheus')).split('\n'), [
    '# HELP app_cpu_time_seconds_total CPU time.',
    '# TYPE app_cpu_time_seconds_total counter',
    'app_cpu_time_seconds_total 1.5',
    '',
  ]);
  assert.deepEqual(render([family], options('openmetrics')).split('\n'), [
    '# TYPE app_cpu_time_seconds counter',
    '# UNIT app_cpu_time_seconds seconds',
    '# HELP app_cpu_time_seconds CPU time.',
    'app_cpu_time_seconds_total 1.5',
    '# EOF',
    '',
  ]);
  // No UNIT line when the unit gives no suffix; no HELP line for an empty description.
  const count = { name: 'app.jobs', description: '', unit: '{job}', type: 'updowncounter', series: [{ attributes: {}, value: 2 }] };
  assert.deepEqual(render([count], options('openmetrics')).split('\n'), ['# TYPE app_jobs gauge', 'app_jobs 2', '# EOF', '']);
});

test('labels: attribute keys sanitized, values as written and escaped, sorted by name (table)', () => {
  const cases = [
    // [attributes, the label text]
    [{ 'http.route': '/users/:id' }, '{http_route="/users/:id"}'],
    [{ 'http.response.status_code': 200, ratio: 0.25, big: 12345678901 }, '{big="12345678901",http_response_status_code="200",ratio="0.25"}'],
    [{ 'cache.hit': true, retried: false }, '{cache_hit="true",retried="false"}'],
    [{ zone: 'b', app: 'a' }, '{app="a",zone="b"}'],
    [{ '0day': 'x', 'a..b': 'y' }, '{_0day="x",a_b="y"}'],
    // Backslash, double quote and newline are escaped; other characters are kept.
    [{ q: 'say "hi"\\n\nbye', utf: 'ünï cödé {}' }, '{q="say \\"hi\\"\\\\n\\nbye",utf="ünï cödé {}"}'],
    // Keys that become the same name share it, values joined with `;` in the keys' order.
    [{ 'a_b': 'second', 'a.b': 'first' }, '{a_b="first;second"}'],
    [{}, ''],
  ];
  for (const [attributes, expected] of cases) {
    const [line] = sampleLines({ name: 'g', description: 'd', unit: '', type: 'gauge', series: [{ attributes, value: 1 }] });
    assert.equal(line, `g${expected} 1`, JSON.stringify(attributes));
  }
});

test('numbers: values in full, infinities and NaN as both formats spell them, le as canonical floats', () => {
  const cases = [
    [1042, '1042'],
    [0.1, '0.1'],
    [-3.5, '-3.5'],
    [2 ** 70, '1180591620717411303424'],
    [1e-7, '1e-7'],
    [Infinity, '+Inf'],
    [-Infinity, '-Inf'],
    [NaN, 'NaN'],
  ];
  for (const [value, expected] of cases) {
    const [line] = sampleLines({ name: 'g', description: 'd', unit: '', type: 'gauge', series: [{ attributes: {}, value }] });
    assert.equal(line, `g ${expected}`);
  }
  // OpenMetrics' canonical rendering (Go's %g, `.0` on whole numbers), in both formats, so a
  // bucket is the same series whichever format Prometheus negotiated.
  const bounds = [0, 0.00001, 0.0001, 0.005, 0.25, 1, 2.5, 10, 100000, 1e6, 1.1e23];
  const les = ['0.0', '1e-05', '0.0001', '0.005', '0.25', '1.0', '2.5', '10.0', '100000.0', '1e+06', '1.1e+23', '+Inf'];
  const histogram = {
    name: 'h',
    description: 'd',
    unit: '',
    type: 'histogram',
    bounds,
    series: [{ attributes: {}, count: 0, sum: 0, bucketCounts: les.map(() => 0) }],
  };
  for (const format of ['prometheus', 'openmetrics']) {
    const got = sampleLines(histogram, options(format)).flatMap((l) => l.match(/le="([^"]*)"/)?.[1] ?? []);
    assert.deepEqual(got, les, format);
  }
});

test('text format: histogram, counter, gauge and target_info, line by line; promtool parses and lints it clean', needsPromtool, () => {
  assertPromtool();
  const text = render(FIXTURE, options('prometheus', { targetInfo: TARGET }));
  assert.deepEqual(text.split('\n'), [
    '# HELP target_info Target metadata',
    '# TYPE target_info gauge',
    'target_info{forktrace_worker_index="0",service_instance_id="web-0",service_name="shop"} 1',
    // The text format escapes backslash and newline in HELP, not the double quote.
    '# HELP app_jobs_processed_total Jobs done by the "mail" queue \\\\ others.\\nCounted when acknowledged.',
    '# TYPE app_jobs_processed_total counter',
    'app_jobs_processed_total{queue="mail",retried="false"} 1042',
    '# HELP app_queue_depth Jobs waiting.',
    '# TYPE app_queue_depth gauge',
    'app_queue_depth{queue="mail"} 7',
    '# HELP http_server_request_duration_seconds Duration of HTTP server requests.',
    '# TYPE http_server_request_duration_seconds histogram',
    // Cumulative: per-bucket counts 1, 1, 0, 2, 0 and 0 beyond 10 s.
    `http_server_request_duration_seconds_bucket{${GET},le="0.005"} 1`,
    `http_server_request_duration_seconds_bucket{${GET},le="0.01"} 2`,
    `http_server_request_duration_seconds_bucket{${GET},le="0.1"} 2`,
    `http_server_request_duration_seconds_bucket{${GET},le="1.0"} 4`,
    `http_server_request_duration_seconds_bucket{${GET},le="10.0"} 4`,
    `http_server_request_duration_seconds_bucket{${GET},le="+Inf"} 4`,
    `http_server_request_duration_seconds_sum{${GET}} 0.621`,
    `http_server_request_duration_seconds_count{${GET}} 4`,
    `http_server_request_duration_seconds_bucket{${POST},le="0.005"} 0`,
    `http_server_request_duration_seconds_bucket{${POST},le="0.01"} 0`,
    `http_server_request_duration_seconds_bucket{${POST},le="0.1"} 0`,
    `http_server_request_duration_seconds_bucket{${POST},le="1.0"} 0`,
    `http_server_request_duration_seconds_bucket{${POST},le="10.0"} 0`,
    `http_server_request_duration_seconds_bucket{${POST},le="+Inf"} 1`,
    `http_server_request_duration_seconds_sum{${POST}} 12.5`,
    `http_server_request_duration_seconds_count{${POST}} 1`,
    '',
  ]);
  assert.deepEqual(promtoolCheck(text), { status: 0, output: '' });
});

test('OpenMetrics: TYPE/UNIT/HELP, exemplars, target info and # EOF; Prometheus\' OpenMetrics parser stores the same series as the text format', needsPromtool, () => {
  assertPromtool();
  const om = render(FIXTURE, options('openmetrics', { targetInfo: TARGET }));
  const lines = om.split('\n');
  assert.deepEqual(lines.slice(0, 13), [
    '# TYPE target info',
    '# HELP target Target metadata',
    'target_info{forktrace_worker_index="0",service_instance_id="web-0",service_name="shop"} 1',
    '# TYPE app_jobs_processed counter',
    // OpenMetrics escapes the double quote in HELP too.
    '# HELP app_jobs_processed Jobs done by the \\"mail\\" queue \\\\ others.\\nCounted when acknowledged.',
    `app_jobs_processed_total{queue="mail",retried="false"} 1042 # {trace_id="${TRACE}",span_id="${SPAN}"} 1 1700000002.000`,
    '# TYPE app_queue_depth gauge',
    '# HELP app_queue_depth Jobs waiting.',
    'app_queue_depth{queue="mail"} 7',
    '# TYPE http_server_request_duration_seconds histogram',
    '# UNIT http_server_request_duration_seconds seconds',
    '# HELP http_server_request_duration_seconds Duration of HTTP server requests.',
    // A bucket without an exemplar of its own carries the one below it, as the spec requires.
    `http_server_request_duration_seconds_bucket{${GET},le="0.005"} 1${EX_4MS}`,
  ]);
  assert.ok(lines.includes(`http_server_request_duration_seconds_bucket{${GET},le="0.01"} 2${EX_4MS}`));
  assert.ok(lines.includes(`http_server_request_duration_seconds_bucket{${GET},le="1.0"} 4${EX_300MS}`));
  assert.ok(lines.includes(`http_server_request_duration_seconds_bucket{${GET},le="+Inf"} 4${EX_300MS}`));
  assert.ok(lines.includes(`http_server_request_duration_seconds_bucket{${POST},le="+Inf"} 1`));
  assert.deepEqual(lines.slice(-2), ['# EOF', '']);

  // The same samples in both formats, exemplars aside.
  const text = render(FIXTURE, options('prometheus', { targetInfo: TARGET }));
  assert.deepEqual(samples(om).map((l) => l.replace(/ # \{.*$/, '')), samples(text));

  const parsed = parseOpenMetrics(om);
  assert.equal(parsed.status, 0, parsed.output);
  assert.equal(parsed.series.length, samples(om).length);
  for (const stored of [
    '{__name__="target_info", forktrace_worker_index="0", service_instance_id="web-0", service_name="shop"} 1',
    '{__name__="app_jobs_processed_total", queue="mail", retried="false"} 1042',
    '{__name__="http_server_request_duration_seconds_bucket", http_request_method="GET", http_response_status_code="200", http_route="/users/:id", le="1.0"} 4',
    '{__name__="http_server_request_duration_seconds_count", http_request_method="POST", http_response_status_code="500", http_route="/orders"} 1',
  ]) {
    assert.ok(parsed.series.includes(stored), `${stored}\nnot in:\n${parsed.series.join('\n')}`);
  }
});

test('the checks can fail: promtool lints a counter without _total, the OpenMetrics parser refuses a wrong UNIT', needsPromtool, () => {
  assertPromtool();
  const lint = promtoolCheck('# HELP jobs Jobs.\n# TYPE jobs counter\njobs 1\n');
  assert.notEqual(lint.status, 0);
  assert.match(lint.output, /counter metrics should have "_total" suffix/);
  const parsed = parseOpenMetrics('# TYPE jobs counter\n# UNIT jobs seconds\njobs_total 1\n# EOF\n');
  assert.notEqual(parsed.status, 0);
  assert.match(parsed.output, /unit not a suffix of metric "jobs"/);
});

test('exemplars: only in OpenMetrics, only when enabled, only with valid ids, within their bucket', () => {
  const histogram = (exemplars) => ({
    name: 'lat',
    description: 'd',
    unit: 's',
    type: 'histogram',
    bounds: [0.1, 1],
    series: [{ attributes: {}, count: 3, sum: 1.6, bucketCounts: [1, 1, 1], exemplars }],
  });
  const exemplarsOf = (family, opts) =>
    sampleLines(family, opts)
      .filter((l) => l.includes('_bucket'))
      .map((l) => l.match(/ # \{.*\} (\S+) (\S+)$/)?.slice(1).join(' ') ?? '-');

  const family = histogram([exemplar(0.05), undefined, exemplar(7, 1700000009000)]);
  assert.deepEqual(exemplarsOf(family, options('openmetrics')), ['0.05 1700000000.123', '0.05 1700000000.123', '7 1700000009.000']);
  assert.deepEqual(exemplarsOf(family, options('openmetrics', { exemplars: false })), ['-', '-', '-']);
  assert.deepEqual(exemplarsOf(family, options('prometheus')), ['-', '-', '-']);

  // One above its bucket's bound is not rendered there (OpenMetrics forbids it); the one below
  // is carried instead.
  assert.deepEqual(exemplarsOf(histogram([exemplar(0.05), exemplar(5), undefined]), options('openmetrics')), [
    '0.05 1700000000.123',
    '0.05 1700000000.123',
    '0.05 1700000000.123',
  ]);
  // Ids that link to no trace: no exemplar.
  const bad = [
    { value: 0.05, traceId: '', spanId: SPAN, timeUnixMs: 1 },
    { value: 0.5, traceId: '0'.repeat(32), spanId: SPAN, timeUnixMs: 1 },
    { value: 2, traceId: TRACE.toUpperCase(), spanId: SPAN, timeUnixMs: 1 },
  ];
  assert.deepEqual(exemplarsOf(histogram(bad), options('openmetrics')), ['-', '-', '-']);

  // Counters carry exemplars?.[0]; gauges never do.
  const counter = { name: 'c', description: 'd', unit: '', type: 'counter', series: [{ attributes: {}, value: 3, exemplars: [exemplar(1)] }] };
  assert.deepEqual(sampleLines(counter, options('openmetrics')), [`c_total 3 # {trace_id="${TRACE}",span_id="${SPAN}"} 1 1700000000.123`]);
  assert.deepEqual(sampleLines(counter, options('prometheus')), ['c_total 3']);
  const gauge = { ...counter, type: 'gauge' };
  assert.deepEqual(sampleLines(gauge, options('openmetrics')), ['c 3']);
});

test('same Prometheus name: series merged under one TYPE; conflicts left out and told', () => {
  const problems = [];
  const opts = (format) => options(format, { onProblem: (p) => problems.push(p) });
  const hist = (name, unit, route, description = 'Request duration.') => ({
    name,
    description,
    unit,
    type: 'histogram',
    bounds: [1],
    series: [{ attributes: { 'http.route': route }, count: 1, sum: 0.5, bucketCounts: [1, 0] }],
  });
  const families = [
    // Merged: both are http_server_request_duration_seconds; series in the order of their names.
    hist('http_server_request_duration_seconds', '', '/b', 'Other words.'),
    hist('http.server.request.duration', 's', '/a'),
    // Same name, another type: the first by OpenTelemetry name stays.
    { name: 'app_jobs', description: 'd', unit: '', type: 'gauge', series: [{ attributes: {}, value: 1 }] },
    { name: 'app.jobs', description: 'd', unit: '', type: 'counter', series: [{ attributes: {}, value: 2 }] },
    // A gauge whose name is the histogram's _count sample.
    { name: 'http.server.request.duration.seconds.count', description: 'd', unit: '', type: 'gauge', series: [{ attributes: {}, value: 3 }] },
  ];
  const text = render(families, opts('prometheus'));
  assert.deepEqual(text.split('\n').filter((l) => l.startsWith('# TYPE')), [
    '# TYPE app_jobs_total counter',
    '# TYPE http_server_request_duration_seconds histogram',
  ]);
  assert.deepEqual(
    samples(text).filter((l) => l.includes('_count')),
    ['http_server_request_duration_seconds_count{http_route="/a"} 1', 'http_server_request_duration_seconds_count{http_route="/b"} 1'],
  );
  assert.ok(text.includes('# HELP http_server_request_duration_seconds Request duration.\n'));
  assert.deepEqual(problems, [
    {
      code: 'type-conflict',
      metric: 'app_jobs',
      text: prometheusMessages.typeConflict('app_jobs', 'app_jobs', 'gauge', 'app.jobs', 'counter'),
    },
    {
      code: 'help-conflict',
      metric: 'http_server_request_duration_seconds',
      text: prometheusMessages.helpConflict('http_server_request_duration_seconds', 'http.server.request.duration'),
    },
    {
      code: 'name-clash',
      metric: 'http_server_request_duration_seconds_count',
      text: prometheusMessages.nameClash(
        'http_server_request_duration_seconds_count',
        'http.server.request.duration.seconds.count',
        'http_server_request_duration_seconds_count',
      ),
    },
  ]);
  assert.match(problems[0].text, /"app_jobs" \(gauge\) is left out: "app.jobs" \(counter\) has the same Prometheus name/);

  // The same choices in OpenMetrics, where a second `# TYPE` for one name fails the whole scrape.
  problems.length = 0;
  const om = render([...families].reverse(), opts('openmetrics'));
  assert.deepEqual(om.split('\n').filter((l) => l.startsWith('# TYPE')), [
    '# TYPE app_jobs counter',
    '# TYPE http_server_request_duration_seconds histogram',
  ]);
  assert.deepEqual(problems.map((p) => p.code), ['type-conflict', 'help-conflict', 'name-clash']);

  // target_info is the resource's: an instrument of that name is left out while there is one.
  problems.length = 0;
  const own = { name: 'target.info', description: 'd', unit: '', type: 'gauge', series: [{ attributes: {}, value: 2 }] };
  assert.deepEqual(samples(render([own], opts('openmetrics'))), ['target_info 2']);
  assert.deepEqual(samples(render([own], options('openmetrics', { targetInfo: TARGET, onProblem: (p) => problems.push(p) }))), [
    'target_info{forktrace_worker_index="0",service_instance_id="web-0",service_name="shop"} 1',
  ]);
  assert.deepEqual(problems.map((p) => p.code), ['name-clash']);
});

test('bad series are left out and told; the rest of the scrape stands', () => {
  const problems = [];
  const families = [
    {
      name: 'lat',
      description: 'd',
      unit: 's',
      type: 'histogram',
      bounds: [0.1, 1],
      series: [
        { attributes: { route: '/ok' }, count: 1, sum: 0.05, bucketCounts: [1, 0, 0] },
        { attributes: { route: '/short' }, count: 1, sum: 0.05, bucketCounts: [1, 0] },
        // An attribute named le would be read as the bucket bound.
        { attributes: { route: '/le', le: 'x' }, count: 1, sum: 0.05, bucketCounts: [1, 0, 0] },
      ],
    },
    {
      name: 'hits',
      description: 'd',
      unit: '',
      type: 'counter',
      series: [{ attributes: { 'a.b': 1 } }, { attributes: { 'a.b': 1 }, value: 4 }, { attributes: { a_b: 1 }, value: 5 }],
    },
    { name: 'empty', description: 'd', unit: '', type: 'gauge', series: [] },
  ];
  const text = render(families, options('prometheus', { onProblem: (p) => problems.push(p) }));
  assert.deepEqual(samples(text).filter((l) => l.startsWith('hits') || l.includes('le="+Inf"')), [
    'hits_total{a_b="1"} 4',
    'lat_seconds_bucket{route="/ok",le="+Inf"} 1',
    'lat_seconds_bucket{route="/le",le="+Inf"} 1',
  ]);
  assert.ok(!text.includes('empty'), 'a family with no series has no TYPE line');
  assert.deepEqual(problems, [
    { code: 'bad-series', metric: 'hits', text: prometheusMessages.noValue('hits') },
    { code: 'duplicate-series', metric: 'hits', text: prometheusMessages.duplicateSeries('hits', 'a_b="1"') },
    { code: 'bad-series', metric: 'lat_seconds', text: prometheusMessages.bucketCounts('lat_seconds', 2, 2) },
    { code: 'reserved-label', metric: 'lat_seconds', text: prometheusMessages.reservedLabel('lat_seconds', 'le') },
  ]);
  assert.equal(problems[2].text, 'lat_seconds: a series has 2 bucket counts for 2 bounds (expected 3); it is left out.');
});

test('deterministic: the same scrape whatever order the families and attributes arrive in', () => {
  const shuffled = [FIXTURE[2], FIXTURE[0], FIXTURE[1]].map((f) => ({
    ...f,
    series: f.series.map((s) => ({ ...s, attributes: Object.fromEntries(Object.entries(s.attributes).reverse()) })),
  }));
  const target = Object.fromEntries(Object.entries(TARGET).reverse());
  for (const format of ['prometheus', 'openmetrics']) {
    assert.equal(
      render(shuffled, options(format, { targetInfo: target })),
      render(FIXTURE, options(format, { targetInfo: TARGET })),
      format,
    );
  }
  // Nothing to show: an empty text body; an OpenMetrics one still ends with # EOF.
  assert.equal(render([], options('prometheus')), '');
  assert.equal(render([], options('openmetrics')), '# EOF\n');
});

test('negotiation: what Prometheus asks for gets OpenMetrics; q-values count; else the text format', () => {
  const cases = [
    // Prometheus 2.42's Accept header, and the one it sends with native histograms enabled.
    ['application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1', 'openmetrics'],
    ['application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1', 'openmetrics'],
    ['application/openmetrics-text', 'openmetrics'],
    ['Application/OpenMetrics-Text; Version=1.0.0', 'openmetrics'],
    [undefined, 'prometheus'],
    ['', 'prometheus'],
    ['*/*', 'prometheus'],
    ['text/plain;version=0.0.4', 'prometheus'],
    ['text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'prometheus'],
    ['application/openmetrics-text;q=0,text/plain', 'prometheus'],
    ['text/plain;q=1,application/openmetrics-text;q=0.5', 'prometheus'],
    ['application/openmetrics-text;version=2.0.0,text/plain;q=0.5', 'prometheus'],
  ];
  for (const [accept, format] of cases) assert.equal(negotiate(accept), format, String(accept));
  assert.equal(contentType('prometheus'), 'text/plain; version=0.0.4; charset=utf-8');
  assert.equal(contentType('openmetrics'), 'application/openmetrics-text; version=1.0.0; charset=utf-8');
});
