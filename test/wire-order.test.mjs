// encodeSpan and serializeEncoded (src/worker/span-bytes.ts): each span encoded when it ends, and the
// OTLP protobuf body forktrace sends, in the order the spans ended, cut into parts of 64 spans so that
// gzip can reference a trace id it has just seen. What a user checks: every
// span arrives once, unchanged (name, ids, parent, attributes, scope, resource), and the body is
// smaller on the wire. Decoded by the project's receiver (real protobufjs), not by the encoder.
//
// The batch: 150 requests, each a trace of three spans from three instrumentation scopes
//
//   GET /db                      (server, scope instrumentation-http)
//   └── request handler - /db    (internal, scope instrumentation-express)
//       └── SELECT               (client, scope instrumentation-mysql2)
//
// Not covered here: the exporter's HTTP transport and gzip stream (preload and faults tests),
// batches of spans with different resources (one provider has one resource).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';

import { context, trace, SpanKind } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { TracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';

import { encodeSpan, GZIP_LEVEL, serializeEncoded } from '../dist/worker/span-bytes.js';
import { decodeTraceRequest } from '../dist/tools/receiver.js';

function batch(requests) {
  const memory = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'wire-order-test', 'process.pid': 4242 }),
    spanProcessors: [new SimpleSpanProcessor({ exporter: memory })],
  });
  const http = provider.getTracer('@opentelemetry/instrumentation-http', '0.301.0');
  const express = provider.getTracer('@opentelemetry/instrumentation-express', '0.72.0');
  const mysql = provider.getTracer('@opentelemetry/instrumentation-mysql2', '0.70.0');
  for (let i = 0; i < requests; i++) {
    const server = http.startSpan('GET /db', {
      kind: SpanKind.SERVER,
      // Roughly the attributes instrumentation-http records, so that the batch is as large as a
      // real one (about 100 KB, well past gzip's 32 KB window).
      attributes: {
        'http.request.method': 'GET',
        'http.route': '/db',
        'url.scheme': 'http',
        'url.path': '/db',
        'server.address': 'api.internal.example',
        'server.port': 8080,
        'network.peer.address': '10.1.2.3',
        'network.peer.port': 40000 + i,
        'client.address': '10.1.2.3',
        'network.protocol.version': '1.1',
        'user_agent.original': 'Mozilla/5.0 (X11; Linux x86_64) wire-order-test/1.0',
      },
    });
    const inServer = trace.setSpan(context.active(), server);
    const handler = express.startSpan(
      'request handler - /db',
      { attributes: { 'http.route': '/db', 'express.name': '/db', 'express.type': 'request_handler' } },
      inServer,
    );
    const query = mysql.startSpan(
      'SELECT',
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'db.system.name': 'mysql',
          'db.namespace': 'orders',
          'db.query.text': 'SELECT id, status, total FROM orders WHERE customer_id = ? ORDER BY created_at DESC',
          'server.address': 'db.internal.example',
          'server.port': 3306,
        },
      },
      trace.setSpan(inServer, handler),
    );
    query.end();
    handler.end();
    server.setAttribute('http.response.status_code', 200);
    server.end();
  }
  return memory.getFinishedSpans();
}

const serializeByEnd = (spans) => Buffer.from(serializeEncoded(spans.map(encodeSpan)));

const key = (s) => `${s.traceId}/${s.spanId}`;
const comparable = (s) => ({
  name: s.name,
  kind: s.kind,
  parentSpanId: s.parentSpanId,
  attributes: s.attributes,
  scope: s.scope,
  resource: s.resource,
  start: s.startTimeUnixNano,
  end: s.endTimeUnixNano,
});

test('every span arrives once and unchanged, each trace within one part, and the gzip body is smaller', async () => {
  const spans = batch(150);
  assert.equal(spans.length, 450);

  const ours = serializeByEnd(spans);
  const upstream = Buffer.from(ProtobufTraceSerializer.serializeRequest(spans));
  const decodedOurs = await decodeTraceRequest(ours, 'application/x-protobuf', '');
  const decodedUpstream = await decodeTraceRequest(upstream, 'application/x-protobuf', '');

  assert.equal(decodedOurs.length, 450);
  assert.equal(new Set(decodedOurs.map(key)).size, 450, 'no span twice');
  const expected = new Map(decodedUpstream.map((s) => [key(s), comparable(s)]));
  for (const s of decodedOurs) assert.deepEqual(comparable(s), expected.get(key(s)), `span ${s.name} ${key(s)}`);

  // Each trace's spans ended together, so they sit within a part of 64 spans: at most a part apart in the
  // body, where upstream's scope grouping puts them a third of the batch (150 spans) apart.
  const spread = (decoded) => {
    const at = new Map();
    decoded.forEach((s, i) => at.set(s.traceId, [...(at.get(s.traceId) ?? []), i]));
    return Math.max(...[...at.values()].map((is) => Math.max(...is) - Math.min(...is)));
  };
  assert.ok(spread(decodedUpstream) >= 300, `upstream spread ${spread(decodedUpstream)}`);
  assert.ok(spread(decodedOurs) < 66, `a trace's spans are ${spread(decodedOurs)} spans apart`);
  // Parent links survive: every child's parent is in the same trace.
  const byId = new Map(decodedOurs.map((s) => [s.spanId, s]));
  for (const s of decodedOurs) {
    if (s.name === 'GET /db') assert.equal(s.parentSpanId, '');
    else assert.equal(byId.get(s.parentSpanId)?.traceId, s.traceId, `parent of ${s.name}`);
  }

  // At the level the exporter sends.
  const gz = (b) => zlib.gzipSync(b, { level: GZIP_LEVEL }).length;
  assert.ok(
    gz(ours) < gz(upstream) * 0.9,
    `gzip body ${gz(ours)} bytes, upstream order ${gz(upstream)} bytes: expected at least 10 % smaller`,
  );
});

test('a batch of at most one part is upstream serialization byte for byte', () => {
  const spans = batch(20);
  assert.deepEqual(serializeByEnd(spans), Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)));
});
