// Tests for the local OTLP/HTTP trace receiver (src/tools/receiver.ts), fed by the
// real upstream OTLP exporters rather than hand-built fixtures wherever an
// exporter can produce the case. Run after `npx tsc -p tsconfig.json`.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import zlib from 'node:zlib';

import { context, trace, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { TracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';

import { startReceiver, decodeTraceRequest } from '../dist/tools/receiver.js';

// Compresses well, so a gzip export is clearly smaller on the wire than decoded.
const LONG_TEXT = 'forktrace '.repeat(200);

/**
 * Records a SERVER parent and a CLIENT child (with an event, a link and an
 * error status) through `exporter`, one request per span, and returns the
 * span contexts the SDK assigned so decoded ids can be checked against them.
 */
async function exportSampleTrace(exporter) {
  const provider = new TracerProvider({
    resource: resourceFromAttributes({
      'service.name': 'receiver-test',
      'deployment.environment.name': 'ci',
      'res.count': 3,
    }),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  const tracer = provider.getTracer('forktrace-receiver-test', '1.2.3');
  const linked = tracer.startSpan('linked');
  linked.end();
  const parent = tracer.startSpan('GET /orders', {
    kind: SpanKind.SERVER,
    attributes: {
      str: 'hello',
      int: 42,
      neg: -7,
      big: 2 ** 60,
      double: 1.5,
      bool: true,
      false: false,
      strs: ['a', 'b'],
      ints: [1, 2, 3],
      long: LONG_TEXT,
    },
  });
  const child = tracer.startSpan(
    'SELECT orders',
    {
      kind: SpanKind.CLIENT,
      links: [{ context: linked.spanContext(), attributes: { 'link.reason': 'batch' } }],
    },
    trace.setSpan(context.active(), parent),
  );
  child.addEvent('cache-miss', { 'cache.key': 'orders:1', attempt: 2 });
  child.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
  child.end();
  parent.end();
  await provider.forceFlush();
  await provider.shutdown();
  return { parent: parent.spanContext(), child: child.spanContext(), linked: linked.spanContext() };
}

function byName(spans, name) {
  const span = spans.find((s) => s.name === name);
  assert.ok(span, `no span named ${name} in ${JSON.stringify(spans.map((s) => s.name))}`);
  return span;
}

function assertSampleTrace(spans, ids) {
  const parent = byName(spans, 'GET /orders');
  const child = byName(spans, 'SELECT orders');

  assert.equal(parent.traceId, ids.parent.traceId);
  assert.match(parent.traceId, /^[0-9a-f]{32}$/);
  assert.equal(parent.spanId, ids.parent.spanId);
  assert.match(parent.spanId, /^[0-9a-f]{16}$/);
  assert.equal(parent.parentSpanId, '');
  assert.equal(child.traceId, parent.traceId);
  assert.equal(child.spanId, ids.child.spanId);
  assert.equal(child.parentSpanId, parent.spanId);

  assert.equal(parent.kind, 2, 'SERVER');
  assert.equal(child.kind, 3, 'CLIENT');
  assert.deepEqual(parent.attributes, {
    str: 'hello',
    int: 42,
    neg: -7,
    big: 2n ** 60n,
    double: 1.5,
    bool: true,
    false: false,
    strs: ['a', 'b'],
    ints: [1, 2, 3],
    long: LONG_TEXT,
  });
  assert.deepEqual(parent.status, { code: 0, message: '' });
  assert.deepEqual(child.status, { code: 2, message: 'boom' });

  assert.equal(child.events.length, 1);
  const [event] = child.events;
  assert.equal(event.name, 'cache-miss');
  assert.deepEqual(event.attributes, { 'cache.key': 'orders:1', attempt: 2 });
  assert.ok(event.timeUnixNano >= child.startTimeUnixNano && event.timeUnixNano <= child.endTimeUnixNano);

  assert.deepEqual(child.links, [
    {
      traceId: ids.linked.traceId,
      spanId: ids.linked.spanId,
      attributes: { 'link.reason': 'batch' },
    },
  ]);

  for (const span of [parent, child]) {
    assert.equal(typeof span.startTimeUnixNano, 'bigint');
    assert.ok(span.endTimeUnixNano >= span.startTimeUnixNano);
    // Wall-clock sanity: the span started within the last minute.
    const startMs = Number(span.startTimeUnixNano / 1_000_000n);
    assert.ok(Math.abs(Date.now() - startMs) < 60_000, `start ${startMs} is not recent`);
    assert.equal(span.durationMs, Number(span.endTimeUnixNano - span.startTimeUnixNano) / 1e6);
    assert.deepEqual(span.resource, {
      'service.name': 'receiver-test',
      'deployment.environment.name': 'ci',
      'res.count': 3,
    });
    assert.deepEqual(span.scope, { name: 'forktrace-receiver-test', version: '1.2.3' });
  }
  // SimpleSpanProcessor exports each span on its own, so they arrive in
  // separate requests (in no guaranteed order: exports run concurrently).
  assert.notEqual(child.request, parent.request);
}

async function post(url, body, headers = {}, method = 'POST') {
  const res = await fetch(url, { method, body, headers });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

describe('real exporters', () => {
  let receiver;
  before(async () => {
    receiver = await startReceiver();
  });
  after(() => receiver.close());

  test('listens on 127.0.0.1 with an ephemeral port', () => {
    assert.ok(receiver.port > 0);
    assert.equal(receiver.url, `http://127.0.0.1:${receiver.port}/v1/traces`);
  });

  test('exporter-trace-otlp-proto, uncompressed', async () => {
    receiver.reset();
    const ids = await exportSampleTrace(new ProtoExporter({ url: receiver.url, headers: { 'x-api-key': 'secret-1' } }));
    const spans = await receiver.waitFor((s) => s.length === 3, 5000);
    assertSampleTrace(spans, ids);
    assert.equal(receiver.requests.length, 3);
    for (const req of receiver.requests) {
      assert.equal(req.status, 200);
      assert.equal(req.path, '/v1/traces');
      assert.equal(req.contentType, 'application/x-protobuf');
      assert.equal(req.contentEncoding, '');
      assert.equal(req.headers['x-api-key'], 'secret-1');
      assert.match(String(req.headers['user-agent']), /^OTel-OTLP-Exporter-JavaScript\//);
      assert.equal(req.wireBytes, req.bodyBytes);
      assert.equal(req.spanCount, 1);
    }
  });

  test('exporter-trace-otlp-proto with gzip compression', async () => {
    receiver.reset();
    const ids = await exportSampleTrace(
      new ProtoExporter({
        url: receiver.url,
        compression: 'gzip',
        headers: { 'x-api-key': 'secret-2' },
      }),
    );
    const spans = await receiver.waitFor((s) => s.length === 3, 5000);
    assertSampleTrace(spans, ids);
    const parentReq = byName(spans, 'GET /orders').request;
    assert.equal(parentReq.contentEncoding, 'gzip');
    assert.equal(parentReq.headers['content-encoding'], 'gzip');
    assert.equal(parentReq.headers['x-api-key'], 'secret-2');
    assert.ok(parentReq.wireBytes < parentReq.bodyBytes, `wire ${parentReq.wireBytes} !< body ${parentReq.bodyBytes}`);
    assert.ok(parentReq.bodyBytes > LONG_TEXT.length);
  });

  test('exporter-trace-otlp-http (JSON), hex ids and int64 strings', async () => {
    receiver.reset();
    const ids = await exportSampleTrace(new JsonExporter({ url: receiver.url, headers: { 'x-api-key': 'secret-3' } }));
    const spans = await receiver.waitFor((s) => s.length === 3, 5000);
    assertSampleTrace(spans, ids);
    const req = byName(spans, 'SELECT orders').request;
    assert.equal(req.contentType, 'application/json');
    assert.equal(req.headers['x-api-key'], 'secret-3');
  });

  test('emits "spans" per request', async () => {
    receiver.reset();
    const seen = [];
    const listener = (spans, req) => seen.push({ names: spans.map((s) => s.name), spanCount: req.spanCount });
    receiver.on('spans', listener);
    try {
      await exportSampleTrace(new ProtoExporter({ url: receiver.url }));
    } finally {
      receiver.off('spans', listener);
    }
    seen.sort((a, b) => a.names[0].localeCompare(b.names[0]));
    assert.deepEqual(seen, [
      { names: ['GET /orders'], spanCount: 1 },
      { names: ['linked'], spanCount: 1 },
      { names: ['SELECT orders'], spanCount: 1 },
    ]);
  });
});

describe('HTTP protocol', () => {
  let receiver;
  before(async () => {
    receiver = await startReceiver({ maxBodyBytes: 64 * 1024 });
  });
  after(() => receiver.close());

  async function protobufRequestBody() {
    const memory = new InMemorySpanExporter();
    const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: memory })] });
    provider.getTracer('raw').startSpan('raw-span').end();
    await provider.forceFlush();
    const body = ProtobufTraceSerializer.serializeRequest(memory.getFinishedSpans());
    await provider.shutdown();
    return Buffer.from(body);
  }

  test('200 with a protobuf ExportTraceServiceResponse to a good protobuf request', async () => {
    receiver.reset();
    const res = await post(receiver.url, await protobufRequestBody(), {
      'content-type': 'application/x-protobuf',
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/x-protobuf');
    // Decoded by the upstream exporter's own response parser: full success has no partialSuccess.
    assert.deepEqual(ProtobufTraceSerializer.deserializeResponse(res.body), {});
    assert.deepEqual(
      receiver.spans.map((s) => s.name),
      ['raw-span'],
    );
  });

  test('200 with {} to a good JSON request, deflate accepted too', async () => {
    receiver.reset();
    const json = JSON.stringify({
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                {
                  traceId: '0af7651916cd43dd8448eb211c80319c',
                  spanId: 'b7ad6b7169203331',
                  name: 'deflated',
                },
              ],
            },
          ],
        },
      ],
    });
    const res = await post(receiver.url, zlib.deflateSync(json), {
      'content-type': 'application/json',
      'content-encoding': 'deflate',
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.deepEqual(JSON.parse(res.body.toString()), {});
    assert.equal(receiver.spans[0]?.name, 'deflated');
    assert.equal(receiver.spans[0]?.request.bodyBytes, Buffer.byteLength(json));
  });

  test('400 to an undecodable protobuf body', async () => {
    const res = await post(receiver.url, Buffer.from('not a protobuf message'), {
      'content-type': 'application/x-protobuf',
    });
    assert.equal(res.status, 400);
    assert.match(res.body.toString(), /invalid protobuf/);
  });

  test('400 to bad JSON and to JSON that is not a request', async () => {
    for (const body of ['{"resourceSpans": [', '[]', '{"resourceSpans": "nope"}']) {
      const res = await post(receiver.url, body, { 'content-type': 'application/json' });
      assert.equal(res.status, 400, body);
      assert.match(res.body.toString(), /invalid JSON/);
    }
  });

  test('400 to a gzip content-encoding on a body that is not gzip', async () => {
    const body = await protobufRequestBody();
    const res = await post(receiver.url, body, {
      'content-type': 'application/x-protobuf',
      'content-encoding': 'gzip',
    });
    assert.equal(res.status, 400);
    assert.match(res.body.toString(), /invalid gzip/);
    const last = receiver.requests.at(-1);
    assert.equal(last.status, 400);
    assert.equal(last.wireBytes, body.length);
    assert.match(last.error, /gzip/);
  });

  test('415 to an unknown content type or content encoding', async () => {
    let res = await post(receiver.url, 'hello', { 'content-type': 'text/plain' });
    assert.equal(res.status, 415);
    assert.match(res.body.toString(), /content-type/);
    res = await post(receiver.url, '{}', {
      'content-type': 'application/json',
      'content-encoding': 'br',
    });
    assert.equal(res.status, 415);
  });

  test('405 to GET on /v1/traces, 404 elsewhere', async () => {
    let res = await post(receiver.url, undefined, {}, 'GET');
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'POST');
    // /v1/metrics is taken (test/receiver-metrics.test.mjs); logs are not received.
    res = await post(receiver.url.replace('/v1/traces', '/v1/logs'), '{}', {
      'content-type': 'application/json',
    });
    assert.equal(res.status, 404);
  });

  test('413 to a body over the limit, as sent or once decompressed', async () => {
    let res = await post(receiver.url, Buffer.alloc(65 * 1024), {
      'content-type': 'application/x-protobuf',
    });
    assert.equal(res.status, 413);
    const bomb = zlib.gzipSync(Buffer.alloc(1024 * 1024));
    assert.ok(bomb.length < 64 * 1024);
    res = await post(receiver.url, bomb, {
      'content-type': 'application/x-protobuf',
      'content-encoding': 'gzip',
    });
    assert.equal(res.status, 413);
  });
});

test('importing the module does not load protobufjs', () => {
  const script = `require(${JSON.stringify(new URL('../dist/tools/receiver.js', import.meta.url).pathname)});
    process.stdout.write(String(Object.keys(require.cache).some((k) => k.includes('protobufjs'))));`;
  assert.equal(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }), 'false');
});

describe('decodeTraceRequest', () => {
  test('OTLP/JSON edge cases: upper-case hex, int64 strings, kvlist, bytes, empty values, unknown fields', async () => {
    const body = {
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'hand' } }] },
          scopeSpans: [
            {
              scope: { name: 'hand-scope' },
              spans: [
                {
                  traceId: '5B8EFFF798038103D269B633813FC60C',
                  spanId: 'EEE19B7EC3C1B174',
                  parentSpanId: '',
                  name: 'handmade',
                  kind: 5,
                  startTimeUnixNano: '1000000000',
                  endTimeUnixNano: 1500000000,
                  attributes: [
                    { key: 'unsafe', value: { intValue: '9007199254740993' } },
                    { key: 'safe', value: { intValue: '-12' } },
                    { key: 'zero', value: { intValue: 0 } },
                    { key: 'empty.str', value: { stringValue: '' } },
                    {
                      key: 'kv',
                      value: {
                        kvlistValue: { values: [{ key: 'a', value: { boolValue: false } }] },
                      },
                    },
                    { key: 'bytes', value: { bytesValue: Buffer.from('hi').toString('base64') } },
                    { key: 'nothing', value: {} },
                    { key: '__proto__', value: { stringValue: 'data, not a prototype' } },
                  ],
                  status: { code: 1 },
                  links: [{ traceId: 'AA'.repeat(16), spanId: 'bb'.repeat(8) }],
                  someFutureField: { x: 1 },
                },
              ],
            },
          ],
        },
      ],
    };
    const [span, ...rest] = await decodeTraceRequest(Buffer.from(JSON.stringify(body)), 'application/json', '');
    assert.equal(rest.length, 0);
    assert.equal(span.traceId, '5b8efff798038103d269b633813fc60c');
    assert.equal(span.spanId, 'eee19b7ec3c1b174');
    assert.equal(span.parentSpanId, '');
    assert.equal(span.kind, 5);
    assert.equal(span.startTimeUnixNano, 1_000_000_000n);
    assert.equal(span.durationMs, 500);
    assert.equal(span.attributes.unsafe, 9007199254740993n);
    assert.equal(span.attributes.safe, -12);
    assert.equal(span.attributes.zero, 0);
    assert.equal(span.attributes['empty.str'], '');
    assert.deepEqual(span.attributes.kv, { a: false });
    assert.deepEqual(Buffer.from(span.attributes.bytes), Buffer.from('hi'));
    assert.equal(span.attributes.nothing, null);
    assert.ok(Object.hasOwn(span.attributes, '__proto__'));
    assert.equal(Object.getPrototypeOf(span.attributes), Object.prototype);
    assert.deepEqual(span.status, { code: 1, message: '' });
    assert.deepEqual(span.links, [{ traceId: 'aa'.repeat(16), spanId: 'bb'.repeat(8), attributes: {} }]);
    assert.deepEqual(span.scope, { name: 'hand-scope', version: '' });
    assert.deepEqual(span.resource, { 'service.name': 'hand' });
  });

  test('rejects with the HTTP status to answer', async () => {
    await assert.rejects(decodeTraceRequest(Buffer.from('x'), 'text/plain', ''), {
      statusCode: 415,
    });
    await assert.rejects(decodeTraceRequest(Buffer.from('{'), 'application/json', ''), {
      statusCode: 400,
    });
    await assert.rejects(decodeTraceRequest(Buffer.from('{}'), 'application/json', 'gzip'), {
      statusCode: 400,
    });
  });
});

describe('waitFor', () => {
  test('rejects after its timeout, naming what it received', async () => {
    const receiver = await startReceiver();
    try {
      const json = JSON.stringify({
        resourceSpans: [
          {
            scopeSpans: [{ spans: [{ traceId: 'ab'.repeat(16), spanId: 'cd'.repeat(8), name: 'only-span' }] }],
          },
        ],
      });
      assert.equal((await post(receiver.url, json, { 'content-type': 'application/json' })).status, 200);
      const started = Date.now();
      await assert.rejects(
        receiver.waitFor((spans) => spans.some((s) => s.name === 'never'), 200),
        /timed out after 200 ms; received 1 span\(s\) in 1 request\(s\): \["only-span"\]/,
      );
      assert.ok(Date.now() - started < 2000);
      // Already satisfied: resolves at once with a copy.
      const got = await receiver.waitFor((spans) => spans.length === 1, 200);
      assert.equal(got[0].name, 'only-span');
      receiver.reset();
      assert.equal(got.length, 1);
      assert.equal(receiver.spans.length, 0);
      assert.equal(receiver.requests.length, 0);
    } finally {
      await receiver.close();
    }
  });
});

describe('respond hook', () => {
  test('a 503 answer is sent instead of decoding', async () => {
    const receiver = await startReceiver({
      respond: () => ({ status: 503, headers: { 'retry-after': '1' }, body: 'try later' }),
    });
    try {
      const res = await post(receiver.url, '{}', { 'content-type': 'application/json' });
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('retry-after'), '1');
      assert.equal(res.body.toString(), 'try later');
      assert.equal(receiver.spans.length, 0);
      assert.equal(receiver.requests.at(-1)?.status, 503);
    } finally {
      await receiver.close();
    }
  });

  test("'hang' leaves the request open and close() still resolves promptly", async () => {
    let hang = true;
    const receiver = await startReceiver({ respond: () => (hang ? 'hang' : undefined) });
    const arrived = new Promise((resolve) => receiver.on('request', resolve));
    const req = http.request(receiver.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
    });
    const outcome = new Promise((resolve) => {
      req.on('response', (res) => resolve(`answered ${res.statusCode}`));
      req.on('error', (err) => resolve(`error ${err.code ?? err.message}`));
    });
    req.end('{}');
    const recorded = await arrived;
    assert.equal(recorded.status, 0);
    const early = await Promise.race([outcome, new Promise((r) => setTimeout(() => r('still open'), 150))]);
    assert.equal(early, 'still open');
    hang = false;
    const closed = receiver.close().then(() => 'closed');
    let timer;
    const result = await Promise.race([
      closed,
      new Promise((r) => (timer = setTimeout(() => r('close() still pending'), 1000))),
    ]);
    clearTimeout(timer);
    if (result !== 'closed') {
      // Free the hung socket from the client side so the file can still exit.
      req.destroy();
      await closed;
    }
    assert.equal(result, 'closed');
    assert.match(await outcome, /^error /);
  });
});

describe('close()', () => {
  test('frees the port', async () => {
    const first = await startReceiver();
    const { port } = first;
    // A keep-alive connection must not hold the port either.
    assert.equal((await post(first.url, '{}', { 'content-type': 'application/json' })).status, 200);
    await first.close();
    const second = await startReceiver({ port });
    try {
      assert.equal(second.port, port);
      assert.equal((await post(second.url, '{}', { 'content-type': 'application/json' })).status, 200);
    } finally {
      await second.close();
    }
  });

  test('rejects pending waitFor calls', async () => {
    const receiver = await startReceiver();
    const pending = receiver.waitFor(() => false, 5000);
    await receiver.close();
    await assert.rejects(pending, /receiver closed while waiting; received 0 span\(s\)/);
  });
});
