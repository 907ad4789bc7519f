// Metrics in the local OTLP/HTTP receiver (src/tools/receiver.ts): POST /v1/metrics, protobuf
// (plain, gzip) and OTLP/JSON. Bodies come from the real SDK and serializers: a MeterProvider of
// @opentelemetry/sdk-metrics read by hand, serialized by ProtobufMetricsSerializer /
// JsonMetricsSerializer of @opentelemetry/otlp-transformer, and once by the real
// OTLPMetricExporter posting on its own. Run after `npm run build`.
//
// The SDK records no exemplars and has no summary instrument, so those (and an exponential
// histogram, an int64 beyond 2^53) are encoded with protobufjs from upstream's own metrics.proto as
// dd-trace ships it, a schema text independent of the receiver's. Not covered here: the flags
// field (NO_RECORDED_VALUE), which the receiver does not report.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import zlib from 'node:zlib';

import { ValueType } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  MeterProvider,
  MetricReader,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { TracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import {
  JsonMetricsSerializer,
  ProtobufMetricsSerializer,
  ProtobufTraceSerializer,
} from '@opentelemetry/otlp-transformer';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';

import { startReceiver, decodeMetricsRequest } from '../dist/tools/receiver.js';
import { OTLP_PROTO_FILES } from '../dist/tools/otlp-proto.js';

const require = createRequire(import.meta.url);
const protobuf = require('protobufjs');

/** A reader the test collects from by hand, with the temporality asked for. */
class HandReader extends MetricReader {
  constructor(temporality) {
    super({ aggregationTemporalitySelector: () => temporality });
  }
  async onShutdown() {}
  async onForceFlush() {}
}

const RESOURCE = { 'service.name': 'metrics-test', 'service.instance.id': 'w3' };
const SCOPE = { name: 'forktrace-metrics-test', version: '2.0.0' };
const ORDERS = [0.05, 0.3, 0.3, 2.5];

/**
 * Records through every synchronous instrument kind the SDK has, on a provider with `reader`:
 *   jobs.done          counter (int)       queue=a: 3+4, queue=b: 1
 *   connections.open   up-down counter     5-2
 *   http.server.request.duration  histogram, bounds [0.1, 0.5, 1]
 *                      http.route=/orders: 0.05 0.3 0.3 2.5   http.route=/health: 0.7
 *   queue.depth        gauge               queue=a: 12
 */
function recordSample(reader) {
  const provider = new MeterProvider({ resource: resourceFromAttributes(RESOURCE), readers: [reader] });
  const meter = provider.getMeter(SCOPE.name, SCOPE.version);
  const jobs = meter.createCounter('jobs.done', { valueType: ValueType.INT, unit: '{job}', description: 'jobs finished' });
  jobs.add(3, { queue: 'a' });
  jobs.add(4, { queue: 'a' });
  jobs.add(1, { queue: 'b' });
  const open = meter.createUpDownCounter('connections.open');
  open.add(5);
  open.add(-2);
  const duration = meter.createHistogram('http.server.request.duration', {
    unit: 's',
    advice: { explicitBucketBoundaries: [0.1, 0.5, 1] },
  });
  for (const v of ORDERS) duration.record(v, { 'http.route': '/orders' });
  duration.record(0.7, { 'http.route': '/health' });
  meter.createGauge('queue.depth').record(12, { queue: 'a' });
  return { provider, jobs, duration };
}

async function collect(reader) {
  const { resourceMetrics, errors } = await reader.collect();
  assert.deepEqual(errors, []);
  return resourceMetrics;
}

/** A cumulative sample as the SDK collects it (ResourceMetrics). */
async function sampleMetrics(temporality = AggregationTemporality.CUMULATIVE) {
  const reader = new HandReader(temporality);
  const { provider } = recordSample(reader);
  const rm = await collect(reader);
  await provider.shutdown();
  return rm;
}

function point(points, name, attributes = {}) {
  const found = points.filter(
    (p) => p.name === name && JSON.stringify(p.attributes) === JSON.stringify(attributes),
  );
  assert.equal(found.length, 1, `one ${name} ${JSON.stringify(attributes)} in ${JSON.stringify(points.map((p) => [p.name, p.attributes]))}`);
  return found[0];
}

/** What a user checks of the sample, whichever encoding carried it. */
function assertSample(points, temporality) {
  assert.equal(points.length, 6, 'jobs.done ×2, connections.open, duration ×2, queue.depth');

  const a = point(points, 'jobs.done', { queue: 'a' });
  assert.equal(a.kind, 'sum');
  assert.equal(a.temporality, temporality);
  assert.equal(a.monotonic, true);
  assert.equal(a.value, 7);
  assert.equal(a.unit, '{job}');
  assert.equal(a.description, 'jobs finished');
  assert.equal(point(points, 'jobs.done', { queue: 'b' }).value, 1);

  const open = point(points, 'connections.open');
  assert.equal(open.kind, 'sum');
  assert.equal(open.monotonic, false, 'an up-down counter is a non-monotonic sum');
  assert.equal(open.value, 3);

  const orders = point(points, 'http.server.request.duration', { 'http.route': '/orders' });
  assert.equal(orders.kind, 'histogram');
  assert.equal(orders.temporality, temporality);
  assert.equal(orders.unit, 's');
  assert.equal(orders.count, 4);
  assert.equal(orders.sum, ORDERS.reduce((s, v) => s + v, 0));
  assert.equal(orders.min, 0.05);
  assert.equal(orders.max, 2.5);
  assert.deepEqual(orders.explicitBounds, [0.1, 0.5, 1]);
  // (-inf, 0.1] (0.1, 0.5] (0.5, 1] (1, +inf)
  assert.deepEqual(orders.bucketCounts, [1, 2, 0, 1]);
  assert.equal(orders.monotonic, undefined);
  const health = point(points, 'http.server.request.duration', { 'http.route': '/health' });
  assert.deepEqual([health.count, health.sum, health.min, health.max], [1, 0.7, 0.7, 0.7]);
  assert.deepEqual(health.bucketCounts, [0, 0, 1, 0]);

  const depth = point(points, 'queue.depth', { queue: 'a' });
  assert.equal(depth.kind, 'gauge');
  assert.equal(depth.value, 12);
  assert.equal(depth.temporality, undefined, 'a gauge has no temporality');

  for (const p of points) {
    assert.deepEqual(p.resource, RESOURCE);
    assert.deepEqual(p.scope, SCOPE);
    assert.deepEqual(p.exemplars, []);
    assert.equal(typeof p.timeUnixNano, 'bigint');
    assert.ok(p.timeUnixNano >= p.startTimeUnixNano, p.name);
    const ms = Number(p.timeUnixNano / 1_000_000n);
    assert.ok(Math.abs(Date.now() - ms) < 60_000, `${p.name} time ${ms} is not recent`);
  }
}

async function post(url, body, headers = {}, method = 'POST') {
  const res = await fetch(url, { method, body, headers });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

const PROTOBUF = { 'content-type': 'application/x-protobuf' };
const JSON_TYPE = { 'content-type': 'application/json' };

describe('decodeMetricsRequest on SDK output', () => {
  test('protobuf: counter, up-down counter, histogram with attributes, gauge; resource and scope', async () => {
    const body = Buffer.from(ProtobufMetricsSerializer.serializeRequest(await sampleMetrics()));
    assertSample(await decodeMetricsRequest(body, 'application/x-protobuf', ''), 'cumulative');
  });

  test('OTLP/JSON from JsonMetricsSerializer decodes to the same points', async () => {
    const rm = await sampleMetrics();
    const fromJson = await decodeMetricsRequest(
      Buffer.from(JsonMetricsSerializer.serializeRequest(rm)),
      'application/json',
      '',
    );
    assertSample(fromJson, 'cumulative');
    const fromProto = await decodeMetricsRequest(
      Buffer.from(ProtobufMetricsSerializer.serializeRequest(rm)),
      'application/x-protobuf',
      '',
    );
    assert.deepEqual(fromJson, fromProto);
  });

  test('delta and cumulative: a second collection carries only the new values, or the running total', async () => {
    for (const [temporality, expected] of [
      [AggregationTemporality.DELTA, { name: 'delta', jobs: 10, count: 1, sum: 0.2, bucketCounts: [0, 1, 0, 0] }],
      [AggregationTemporality.CUMULATIVE, { name: 'cumulative', jobs: 17, count: 5, sum: ORDERS.reduce((s, v) => s + v, 0) + 0.2, bucketCounts: [1, 3, 0, 1] }],
    ]) {
      const reader = new HandReader(temporality);
      const { provider, jobs: counter, duration } = recordSample(reader);
      const first = await collect(reader);
      assertSample(
        await decodeMetricsRequest(Buffer.from(ProtobufMetricsSerializer.serializeRequest(first)), 'application/x-protobuf', ''),
        expected.name,
      );
      counter.add(10, { queue: 'a' });
      duration.record(0.2, { 'http.route': '/orders' });
      const second = await decodeMetricsRequest(
        Buffer.from(ProtobufMetricsSerializer.serializeRequest(await collect(reader))),
        'application/x-protobuf',
        '',
      );
      await provider.shutdown();
      const jobs = point(second, 'jobs.done', { queue: 'a' });
      assert.equal(jobs.temporality, expected.name);
      assert.equal(jobs.value, expected.jobs, expected.name);
      const orders = point(second, 'http.server.request.duration', { 'http.route': '/orders' });
      assert.equal(orders.temporality, expected.name);
      assert.equal(orders.count, expected.count, expected.name);
      assert.equal(orders.sum, expected.sum, expected.name);
      assert.deepEqual(orders.bucketCounts, expected.bucketCounts, expected.name);
    }
  });

  test('rejects with the HTTP status to answer, naming the metrics request', async () => {
    await assert.rejects(decodeMetricsRequest(Buffer.from('x'), 'text/plain', ''), { statusCode: 415 });
    await assert.rejects(decodeMetricsRequest(Buffer.from('not a protobuf message'), 'application/x-protobuf', ''), {
      statusCode: 400,
      message: /^invalid protobuf ExportMetricsServiceRequest: /,
    });
    await assert.rejects(decodeMetricsRequest(Buffer.from('{"resourceMetrics": "nope"}'), 'application/json', ''), {
      statusCode: 400,
      message: /^invalid JSON ExportMetricsServiceRequest: /,
    });
    await assert.rejects(decodeMetricsRequest(Buffer.from('{}'), 'application/json', 'gzip'), { statusCode: 400 });
  });
});

describe('a running receiver, POST /v1/metrics', () => {
  let receiver;
  before(async () => {
    receiver = await startReceiver({ maxBodyBytes: 64 * 1024 });
  });
  after(() => receiver.close());

  test('metricsUrl sits beside url', () => {
    assert.equal(receiver.metricsUrl, `http://127.0.0.1:${receiver.port}/v1/metrics`);
    assert.equal(receiver.url, `http://127.0.0.1:${receiver.port}/v1/traces`);
  });

  test('protobuf with gzip: 200, an empty ExportMetricsServiceResponse, the points kept with their request', async () => {
    receiver.reset();
    const seen = [];
    const listener = (points, req) => seen.push({ points: points.length, pointCount: req.pointCount });
    receiver.on('metrics', listener);
    const raw = Buffer.from(ProtobufMetricsSerializer.serializeRequest(await sampleMetrics()));
    const res = await post(receiver.metricsUrl, zlib.gzipSync(raw), { ...PROTOBUF, 'content-encoding': 'gzip' });
    receiver.off('metrics', listener);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/x-protobuf');
    // Read by upstream's own response parser: full success has no partialSuccess.
    assert.deepEqual(ProtobufMetricsSerializer.deserializeResponse(res.body), {});

    const points = await receiver.waitForMetrics((p) => p.length === 6, 2000);
    assertSample(points, 'cumulative');
    const [req] = receiver.requests;
    assert.equal(receiver.requests.length, 1);
    assert.equal(req.path, '/v1/metrics');
    assert.equal(req.status, 200);
    assert.equal(req.contentEncoding, 'gzip');
    assert.equal(req.bodyBytes, raw.length);
    assert.ok(req.wireBytes < req.bodyBytes, `wire ${req.wireBytes} !< body ${req.bodyBytes}`);
    assert.equal(req.pointCount, 6);
    assert.equal(req.spanCount, 0);
    assert.ok(points.every((p) => p.request === req));
    assert.deepEqual(seen, [{ points: 6, pointCount: 6 }]);
    assert.equal(receiver.spans.length, 0);
  });

  test('OTLP/JSON, deflated: 200 with {}', async () => {
    receiver.reset();
    const body = Buffer.from(JsonMetricsSerializer.serializeRequest(await sampleMetrics(AggregationTemporality.DELTA)));
    const res = await post(receiver.metricsUrl, zlib.deflateSync(body), { ...JSON_TYPE, 'content-encoding': 'deflate' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.deepEqual(JSON.parse(res.body.toString()), {});
    assertSample(receiver.metrics, 'delta');
    assert.equal(receiver.requests[0].bodyBytes, body.length);
  });

  test('the real OTLPMetricExporter, pushed by a PeriodicExportingMetricReader, is received', async () => {
    receiver.reset();
    const reader = new PeriodicExportingMetricReader({
      exporter: new OTLPMetricExporter({ url: receiver.metricsUrl, headers: { 'x-api-key': 'metrics-key' } }),
      exportIntervalMillis: 60_000,
    });
    const { provider } = recordSample(reader);
    await provider.forceFlush();
    const points = await receiver.waitForMetrics((p) => p.some((x) => x.name === 'queue.depth'), 5000);
    await provider.shutdown();
    assertSample(points, 'cumulative');
    const { request } = points[0];
    assert.equal(request.headers['x-api-key'], 'metrics-key');
    assert.match(String(request.headers['user-agent']), /^OTel-OTLP-Exporter-JavaScript\//);
    assert.equal(request.contentType, 'application/x-protobuf');
  });

  test('a trace POST on the same receiver still decodes as spans, not metrics', async () => {
    receiver.reset();
    const memory = new InMemorySpanExporter();
    const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: memory })] });
    provider.getTracer('raw').startSpan('beside-metrics').end();
    await provider.forceFlush();
    const body = Buffer.from(ProtobufTraceSerializer.serializeRequest(memory.getFinishedSpans()));
    await provider.shutdown();
    const res = await post(receiver.url, body, PROTOBUF);
    assert.equal(res.status, 200);
    assert.deepEqual(ProtobufTraceSerializer.deserializeResponse(res.body), {});
    assert.deepEqual(receiver.spans.map((s) => s.name), ['beside-metrics']);
    assert.equal(receiver.metrics.length, 0);
    assert.equal(receiver.requests[0].spanCount, 1);
    assert.equal(receiver.requests[0].pointCount, 0);
  });

  test('400, 405, 413, 415 as for traces; 404 elsewhere names both paths', async () => {
    let res = await post(receiver.metricsUrl, Buffer.from('not a protobuf message'), PROTOBUF);
    assert.equal(res.status, 400);
    assert.match(res.body.toString(), /invalid protobuf ExportMetricsServiceRequest/);
    assert.equal(receiver.requests.at(-1).status, 400);

    res = await post(receiver.metricsUrl, '{"resourceMetrics": [', JSON_TYPE);
    assert.equal(res.status, 400);
    assert.match(res.body.toString(), /invalid JSON ExportMetricsServiceRequest/);

    res = await post(receiver.metricsUrl, Buffer.from('x'), { ...PROTOBUF, 'content-encoding': 'gzip' });
    assert.equal(res.status, 400);
    assert.match(res.body.toString(), /invalid gzip/);

    res = await post(receiver.metricsUrl, undefined, {}, 'GET');
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'POST');

    res = await post(receiver.metricsUrl, 'hello', { 'content-type': 'text/plain' });
    assert.equal(res.status, 415);
    res = await post(receiver.metricsUrl, '{}', { ...JSON_TYPE, 'content-encoding': 'br' });
    assert.equal(res.status, 415);

    res = await post(receiver.metricsUrl, Buffer.alloc(65 * 1024), PROTOBUF);
    assert.equal(res.status, 413);
    res = await post(receiver.metricsUrl, zlib.gzipSync(Buffer.alloc(1024 * 1024)), { ...PROTOBUF, 'content-encoding': 'gzip' });
    assert.equal(res.status, 413);

    res = await post(receiver.metricsUrl.replace('/v1/metrics', '/v1/logs'), '{}', JSON_TYPE);
    assert.equal(res.status, 404);
    assert.equal(res.body.toString(), 'not found: /v1/logs; OTLP traces go to POST /v1/traces, metrics to POST /v1/metrics\n');
  });
});

describe('waitForMetrics and reset', () => {
  test('rejects after its timeout naming the metrics and their point counts; reset() forgets points; close() rejects', async () => {
    const receiver = await startReceiver();
    try {
      const body = Buffer.from(ProtobufMetricsSerializer.serializeRequest(await sampleMetrics()));
      assert.equal((await post(receiver.metricsUrl, body, PROTOBUF)).status, 200);
      await assert.rejects(
        receiver.waitForMetrics((p) => p.some((x) => x.name === 'never'), 200),
        {
          message:
            'waitForMetrics timed out after 200 ms; received 6 metric point(s) in 1 request(s), points per metric: ' +
            '["jobs.done" (2), "connections.open" (1), "http.server.request.duration" (2), "queue.depth" (1)]',
        },
      );
      const got = await receiver.waitForMetrics((p) => p.length === 6, 200);
      receiver.reset();
      assert.equal(got.length, 6, 'a copy, not emptied by reset');
      assert.equal(receiver.metrics.length, 0);
      assert.equal(receiver.requests.length, 0);
      const pending = receiver.waitForMetrics(() => false, 5000);
      await receiver.close();
      await assert.rejects(pending, { message: 'receiver closed while waiting; received 0 metric point(s) in 0 request(s)' });
    } finally {
      await receiver.close();
    }
  });
});

// ---------------------------------------------------------------------------
// Upstream's metrics.proto, as dd-trace vendors it (opentelemetry-proto v1.7.0, the same fields as
// v1.11.0 for metrics): a second, independently written schema text.

const UPSTREAM_METRICS_SERVICE = 'dd-trace/packages/dd-trace/src/opentelemetry/otlp/metrics_service.proto';

function upstreamRoot() {
  let file;
  try {
    file = require.resolve(UPSTREAM_METRICS_SERVICE);
  } catch {
    assert.fail(`${UPSTREAM_METRICS_SERVICE} is gone (dd-trace is a devDependency): point this test at another copy of upstream's metrics.proto`);
  }
  return protobuf.loadSync(file);
}

function ourRoot() {
  const root = new protobuf.Root();
  for (const source of OTLP_PROTO_FILES) protobuf.parse(source, root);
  return root.resolveAll();
}

/** Every message and enum under `ns`, as comparable plain data: field numbers, types, labels, oneofs. */
function shape(ns) {
  const out = {};
  const walk = (obj) => {
    for (const child of obj.nestedArray ?? []) {
      if (child instanceof protobuf.Type) {
        out[child.fullName] = Object.fromEntries(
          child.fieldsArray.map((f) => [
            f.name,
            {
              id: f.id,
              type: f.resolvedType?.fullName ?? f.type,
              repeated: f.repeated,
              optional: Boolean(f.options?.proto3_optional),
              oneof: f.partOf && !f.options?.proto3_optional ? f.partOf.name : undefined,
            },
          ]),
        );
      } else if (child instanceof protobuf.Enum) {
        out[child.fullName] = { ...child.values };
      }
      if (child instanceof protobuf.Namespace) walk(child);
    }
  };
  walk(ns);
  return out;
}

describe('the schema against upstream', () => {
  test("every metrics message, field number, type and oneof of the receiver's schema is upstream's", () => {
    const upstream = upstreamRoot();
    upstream.resolveAll();
    const ours = ourRoot();
    for (const ns of ['opentelemetry.proto.metrics.v1', 'opentelemetry.proto.collector.metrics.v1']) {
      const theirs = shape(upstream.lookup(ns));
      // Left out on purpose (see src/tools/otlp-proto.ts): flags stays a plain uint32.
      delete theirs['.opentelemetry.proto.metrics.v1.DataPointFlags'];
      assert.deepEqual(shape(ours.lookup(ns)), theirs, ns);
    }
  });

  test('exemplars, int64 values beyond 2^53, exponential histograms and summaries, encoded from upstream\'s schema', async () => {
    const Request = upstreamRoot().lookupType('opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest');
    const traceId = Buffer.from('5b8efff798038103d269b633813fc60c', 'hex');
    const spanId = Buffer.from('eee19b7ec3c1b174', 'hex');
    const kv = (key, stringValue) => ({ key, value: { stringValue } });
    const message = Request.fromObject({
      resourceMetrics: [
        {
          resource: { attributes: [kv('service.name', 'hand')] },
          scopeMetrics: [
            {
              scope: { name: 'hand-meter', version: '9' },
              metrics: [
                {
                  name: 'latency',
                  histogram: {
                    aggregationTemporality: 1,
                    dataPoints: [
                      {
                        attributes: [kv('route', '/a')],
                        startTimeUnixNano: '1700000000000000000',
                        timeUnixNano: '1700000001000000000',
                        count: '2',
                        sum: 0, // an explicit zero sum, told apart from none
                        bucketCounts: ['1', '1'],
                        explicitBounds: [10],
                        exemplars: [
                          {
                            filteredAttributes: [kv('user', 'u1')],
                            timeUnixNano: '1700000000500000000',
                            asDouble: 12.5,
                            spanId,
                            traceId,
                          },
                        ],
                      },
                    ],
                  },
                },
                {
                  name: 'bytes',
                  sum: {
                    aggregationTemporality: 2,
                    isMonotonic: true,
                    dataPoints: [
                      {
                        timeUnixNano: '1700000001000000000',
                        asInt: '9007199254740993',
                        exemplars: [{ timeUnixNano: '1700000000700000000', asInt: '-5' }],
                      },
                    ],
                  },
                },
                {
                  name: 'sizes',
                  exponentialHistogram: {
                    aggregationTemporality: 2,
                    dataPoints: [
                      {
                        count: '6',
                        sum: 40,
                        scale: -1,
                        zeroCount: '1',
                        zeroThreshold: 0.001,
                        positive: { offset: -2, bucketCounts: ['2', '0', '3'] },
                        negative: { offset: 1, bucketCounts: [] },
                        min: 0,
                        max: 30,
                        exemplars: [{ asDouble: 30, traceId, spanId }],
                      },
                    ],
                  },
                },
                {
                  name: 'rpc.time',
                  summary: {
                    dataPoints: [
                      {
                        count: '4',
                        sum: 10,
                        quantileValues: [
                          { quantile: 0.5, value: 2 },
                          { quantile: 1, value: 5 },
                        ],
                      },
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
    });
    const points = await decodeMetricsRequest(
      Buffer.from(Request.encode(message).finish()),
      'application/x-protobuf',
      '',
    );
    assert.deepEqual(points.map((p) => [p.name, p.kind, p.temporality]), [
      ['latency', 'histogram', 'delta'],
      ['bytes', 'sum', 'cumulative'],
      ['sizes', 'exponentialHistogram', 'cumulative'],
      ['rpc.time', 'summary', undefined],
    ]);
    const [latency, bytes, sizes, summary] = points;
    assert.equal(latency.sum, 0);
    assert.equal(latency.min, undefined, 'min not sent: absent');
    assert.deepEqual(latency.exemplars, [
      {
        traceId: '5b8efff798038103d269b633813fc60c',
        spanId: 'eee19b7ec3c1b174',
        value: 12.5,
        timeUnixNano: 1_700_000_000_500_000_000n,
        attributes: { user: 'u1' },
      },
    ]);
    assert.equal(latency.startTimeUnixNano, 1_700_000_000_000_000_000n);
    assert.deepEqual(latency.resource, { 'service.name': 'hand' });
    assert.deepEqual(latency.scope, { name: 'hand-meter', version: '9' });

    assert.equal(bytes.value, 9007199254740993n, 'an int64 beyond 2^53 stays exact');
    assert.deepEqual(bytes.exemplars, [
      { traceId: '', spanId: '', value: -5, timeUnixNano: 1_700_000_000_700_000_000n, attributes: {} },
    ]);

    assert.equal(sizes.count, 6);
    assert.equal(sizes.sum, 40);
    assert.equal(sizes.scale, -1);
    assert.equal(sizes.zeroCount, 1);
    assert.equal(sizes.zeroThreshold, 0.001);
    assert.deepEqual(sizes.positive, { offset: -2, bucketCounts: [2, 0, 3] });
    assert.deepEqual(sizes.negative, { offset: 1, bucketCounts: [] });
    assert.equal(sizes.min, 0);
    assert.equal(sizes.max, 30);
    assert.equal(sizes.exemplars[0].traceId, '5b8efff798038103d269b633813fc60c');
    assert.equal(sizes.exemplars[0].value, 30);

    assert.equal(summary.count, 4);
    assert.equal(summary.sum, 10);
    assert.deepEqual(summary.quantiles, [
      { quantile: 0.5, value: 2 },
      { quantile: 1, value: 5 },
    ]);
  });

  test('OTLP/JSON exemplar ids are hex (upper case too), as span ids are', async () => {
    // Hand-written to the OTLP/JSON rules (ids hex, int64 as strings, enums as integers); the
    // SDK's JSON serializer cannot emit exemplars.
    const body = {
      resourceMetrics: [
        {
          scopeMetrics: [
            {
              metrics: [
                {
                  name: 'hits',
                  gauge: {
                    dataPoints: [
                      {
                        asInt: '41',
                        timeUnixNano: '1700000001000000000',
                        exemplars: [
                          {
                            traceId: '5B8EFFF798038103D269B633813FC60C',
                            spanId: 'EEE19B7EC3C1B174',
                            asDouble: 1.5,
                            filteredAttributes: [{ key: 'k', value: { intValue: '3' } }],
                          },
                        ],
                      },
                    ],
                  },
                },
                {
                  name: 'lat',
                  histogram: {
                    aggregationTemporality: 2,
                    data_points: [{ count: '1', exemplars: [{ trace_id: 'ab'.repeat(16), span_id: 'cd'.repeat(8), asInt: '7' }] }],
                  },
                },
              ],
            },
          ],
        },
      ],
    };
    const [hits, lat] = await decodeMetricsRequest(Buffer.from(JSON.stringify(body)), 'application/json', '');
    assert.equal(hits.value, 41);
    assert.deepEqual(hits.exemplars, [
      {
        traceId: '5b8efff798038103d269b633813fc60c',
        spanId: 'eee19b7ec3c1b174',
        value: 1.5,
        timeUnixNano: 0n,
        attributes: { k: 3 },
      },
    ]);
    assert.equal(lat.temporality, 'cumulative');
    assert.equal(lat.exemplars[0].traceId, 'ab'.repeat(16));
    assert.equal(lat.exemplars[0].spanId, 'cd'.repeat(8));
    assert.equal(lat.exemplars[0].value, 7);
  });
});
