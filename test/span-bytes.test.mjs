// encodeSpan (src/worker/span-bytes.ts): a sampled span becomes its OTLP bytes when it ends, and the
// request forktrace sends is assembled from those bytes. What a user checks: what the vendor
// receives is what upstream's serializer would have sent. For one span, and for any batch of at
// most one part, that is the same bytes, compared here for every kind of field a span can carry;
// and the request still decodes, in the project's receiver, to the span that was made.
//
// Not covered here: batches over one part (test/wire-order.test.mjs) and the way to the endpoint
// (the preload, crash and spool tests send through it).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { context, trace, SpanKind, SpanStatusCode, TraceFlags, createTraceState } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { TracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';

import { encodeSpan, serializeEncoded } from '../dist/worker/span-bytes.js';
import { decodeTraceRequest } from '../dist/tools/receiver.js';

function recorder(resourceAttributes = { 'service.name': 'span-bytes-test' }, schemaUrl) {
  const memory = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes(resourceAttributes, schemaUrl ? { schemaUrl } : undefined),
    spanProcessors: [new SimpleSpanProcessor({ exporter: memory })],
  });
  return { memory, provider };
}

const ours = (spans) => Buffer.from(serializeEncoded(spans.map(encodeSpan)));
const upstream = (spans) => Buffer.from(ProtobufTraceSerializer.serializeRequest(spans));

const REMOTE_PARENT = {
  traceId: '0af7651916cd43dd8448eb211c80319c',
  spanId: 'b7ad6b7169203331',
  traceFlags: TraceFlags.SAMPLED,
  isRemote: true,
  traceState: createTraceState('vendor=a1,other=b2'),
};

test('one span with every kind of field: the same bytes as upstream, and it decodes to what was made', async () => {
  const { memory, provider } = recorder({ 'service.name': 'span-bytes-test', 'process.pid': 4242, 'host.arch': ['amd64'] }, 'https://opentelemetry.io/schemas/1.30.0');
  const tracer = provider.getTracer('@example/scope', '1.2.3', { schemaUrl: 'https://opentelemetry.io/schemas/1.28.0' });
  const span = tracer.startSpan(
    'GET /café/:id',
    {
      kind: SpanKind.SERVER,
      attributes: {
        'http.request.method': 'GET',
        'url.path': '/café/' + 'x'.repeat(300), // a length of two varint bytes, and UTF-8
        'http.response.status_code': 200,
        'big.int': 2 ** 40 + 7,
        'negative.int': -42,
        'a.double': 0.25,
        'not.finite': Number.NaN,
        'a.bool': false,
        'strings': ['a', 'ü', ''],
        'numbers': [1, 2.5, -3],
        'bools': [true, false],
        'empty': '',
      },
      links: [
        { context: { traceId: 'ABCDEF0123456789abcdef0123456789', spanId: '0123456789ABCDEF', traceFlags: 0, isRemote: false } },
        { context: { ...REMOTE_PARENT, spanId: '1111111111111111' }, attributes: { 'link.reason': 'retry', n: 3 } },
      ],
    },
    trace.setSpanContext(context.active(), REMOTE_PARENT),
  );
  span.addEvent('exception', { 'exception.type': 'Error', 'exception.message': 'broke' });
  span.addEvent('bare');
  span.setStatus({ code: SpanStatusCode.ERROR, message: 'Error: broke' });
  span.end();
  const spans = memory.getFinishedSpans();

  assert.deepEqual(ours(spans), upstream(spans));

  const [decoded] = await decodeTraceRequest(ours(spans), 'application/x-protobuf', '');
  assert.equal(decoded.name, 'GET /café/:id');
  assert.equal(decoded.traceId, REMOTE_PARENT.traceId);
  assert.equal(decoded.parentSpanId, REMOTE_PARENT.spanId);
  assert.equal(decoded.spanId, spans[0].spanContext().spanId);
  assert.equal(decoded.attributes['url.path'], '/café/' + 'x'.repeat(300));
  assert.equal(decoded.attributes['big.int'], 2 ** 40 + 7);
  assert.equal(decoded.attributes['negative.int'], -42);
  assert.deepEqual(decoded.attributes.strings, ['a', 'ü', '']);
  assert.equal(decoded.resource['process.pid'], 4242);
  assert.equal(decoded.scope.name, '@example/scope');
});

test('start and end times: the same nanoseconds as upstream, across the range an HrTime takes', () => {
  const { memory, provider } = recorder();
  const tracer = provider.getTracer('times');
  // Seconds whose low 16 bits are all ones or zero, the year 2106 (2^32 s), and nanoseconds at
  // both ends, where a carry from the low 32 bits of the sum into the high ones is easy to lose.
  const seconds = [0, 1, 65535, 65536, 1_700_000_000, 1_798_000_000, 2 ** 32 - 1, 2 ** 33 + 12345];
  const nanos = [0, 1, 999_999_999, 500_000_000, 294_967_295];
  for (const s of seconds) for (const n of nanos) {
    tracer.startSpan(`${s}.${n}`, { startTime: [s, n] }).end([s + 1, 999_999_999 - n]);
  }
  for (let i = 0; i < 200; i++) {
    const s = Math.floor(Math.random() * 2 ** 33);
    const n = Math.floor(Math.random() * 1e9);
    tracer.startSpan(`random ${s}.${n}`, { startTime: [s, n] }).end([s, n]);
  }
  for (const span of memory.getFinishedSpans()) {
    assert.deepEqual(ours([span]), upstream([span]), span.name);
  }
});

test('a batch of spans from several scopes, none sampled out: the same bytes as upstream', () => {
  const { memory, provider } = recorder();
  const scopes = ['http', 'express', 'mysql2'].map((name) => provider.getTracer(`@opentelemetry/instrumentation-${name}`, '0.1.0'));
  for (let i = 0; i < 20; i++) {
    const root = scopes[0].startSpan(`GET /r${i}`, { kind: SpanKind.SERVER, attributes: { i } });
    const inRoot = trace.setSpan(context.active(), root);
    scopes[2].startSpan('SELECT', { kind: SpanKind.CLIENT }, inRoot).end();
    scopes[1].startSpan(`handler ${i}`, {}, inRoot).end();
    root.end();
  }
  const spans = memory.getFinishedSpans();
  assert.equal(spans.length, 60);
  assert.deepEqual(ours(spans), upstream(spans));
});

test('an encoded span holds only its bytes, resource and scope: the span object is free to go', () => {
  const { memory, provider } = recorder();
  provider.getTracer('held').startSpan('one', { attributes: { a: 'b' } }).end();
  const encoded = encodeSpan(memory.getFinishedSpans()[0]);
  assert.deepEqual(Object.keys(encoded).sort(), ['bytes', 'resource', 'scope']);
  assert.ok(Buffer.isBuffer(encoded.bytes));
  assert.equal(encoded.spanContext().traceFlags & TraceFlags.SAMPLED, TraceFlags.SAMPLED);
});

test('nothing to send: no body', () => {
  assert.equal(serializeEncoded([]), undefined);
});

test('a span that cannot be encoded: span.end() does not throw, the span is counted as dropped and the error reported', async () => {
  const { createRequire } = await import('node:module');
  const require = createRequire(import.meta.url);
  const { countingBatchProcessor, zeroExportStats } = require('../dist/worker/exporter.js');
  const { setGlobalErrorHandler, ExportResultCode } = require('@opentelemetry/core');
  const reported = [];
  setGlobalErrorHandler((e) => reported.push(String(e)));
  const exported = [];
  const exporter = { export: (spans, done) => { exported.push(...spans); done({ code: ExportResultCode.SUCCESS }); }, shutdown: () => Promise.resolve() };
  const stats = zeroExportStats();
  const processor = countingBatchProcessor(exporter, { maxExportBatchSize: 10, scheduledDelayMillis: 60_000, maxQueueSize: 100, exportTimeoutMillis: 5_000 }, stats, true);
  const tracer = new TracerProvider({ spanProcessors: [processor] }).getTracer('unencodable');
  const bad = tracer.startSpan('bad');
  Object.defineProperty(bad, 'name', { get() { throw new Error('this span has no readable name'); } });
  assert.doesNotThrow(() => bad.end());
  tracer.startSpan('good').end();
  await processor.forceFlush();
  assert.equal(stats.dropped, 1);
  assert.deepEqual(reported, ['Error: this span has no readable name']);
  assert.equal(exported.length, 1);
  const [decoded] = await decodeTraceRequest(Buffer.from(serializeEncoded(exported)), 'application/x-protobuf', '');
  assert.equal(decoded.name, 'good');
});
