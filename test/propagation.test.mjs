// Context across processes: a two-service hop over http (instrumented on both sides), and the
// manual inject/extract helpers over a carrier nothing instruments (a child process's IPC channel).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import {
  DIST,
  EXAMPLE,
  REGISTER_CJS,
  ROOT,
  byName,
  childrenOf,
  get,
  spawnNode,
  SERVER,
  CLIENT,
  INTERNAL,
  receiverForThisFile,
} from './helpers.mjs';


const receiver = receiverForThisFile();

const exportEnv = () => ({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '50', PORT: '0' });

test('two-service hop: B\'s server span is a child of A\'s client span, one trace', async () => {
  receiver.reset();
  const b = spawnNode(['--require', REGISTER_CJS, path.join(EXAMPLE, 'server.js')], {
    cwd: EXAMPLE,
    env: { ...exportEnv(), OTEL_SERVICE_NAME: 'inventory' },
  });
  const { listening: bPort } = await b.ready;
  const a = spawnNode(['--require', REGISTER_CJS, path.join(EXAMPLE, 'server.js')], {
    cwd: EXAMPLE,
    env: { ...exportEnv(), OTEL_SERVICE_NAME: 'storefront', DOWNSTREAM_URL: `http://127.0.0.1:${bPort}/hello` },
  });
  const { listening: aPort } = await a.ready;
  const r = await get(`http://127.0.0.1:${aPort}/hop`);
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).pid, b.pid, 'A answered with B\'s body');

  // Expected, one trace id throughout:
  //   storefront  GET /hop                       server
  //   storefront  └─ request handler - /hop      express
  //   storefront     └─ GET                      http client
  //   inventory         └─ GET /hello            server
  //   inventory            └─ request handler - /hello
  const spans = await receiver.waitFor((s) => byName(s, 'GET /hop').length === 1 && byName(s, 'GET /hello').length === 1 && byName(s, 'request handler - /hello').length === 1);
  const [hop] = byName(spans, 'GET /hop');
  assert.equal(hop.resource['service.name'], 'storefront');
  assert.equal(hop.kind, SERVER);
  const [handler] = childrenOf(spans, hop);
  assert.equal(handler.name, 'request handler - /hop');
  const [client] = childrenOf(spans, handler);
  assert.equal(client.kind, CLIENT);
  assert.equal(client.resource['service.name'], 'storefront');
  assert.equal(client.attributes['url.full'], `http://127.0.0.1:${bPort}/hello`);
  const [bServer] = childrenOf(spans, client);
  assert.ok(bServer, 'B\'s server span is a child of A\'s client span');
  assert.equal(bServer.name, 'GET /hello');
  assert.equal(bServer.kind, SERVER);
  assert.equal(bServer.resource['service.name'], 'inventory');
  assert.equal(bServer.resource['process.pid'], b.pid);
  assert.equal(childrenOf(spans, bServer)[0]?.name, 'request handler - /hello');
  assert.equal(new Set(spans.filter((s) => s.traceId === hop.traceId).map((s) => s.resource['service.name'])).size, 2);
});

test('manual inject/extract over a non-http carrier (IPC message): the consumer span joins the producer trace', async () => {
  receiver.reset();
  const producer = spawnNode([path.join(ROOT, 'test', 'fixtures', 'ipc-producer.js')], {
    cwd: ROOT,
    readyKey: 'reply',
    env: { ...exportEnv(), FORKTRACE_DIST: path.join(DIST, 'index.js') },
  });
  const sent = await new Promise((resolve, reject) => {
    const t = setInterval(() => {
      const line = producer.lines.find((l) => 'sent' in l);
      if (line) {
        clearInterval(t);
        resolve(line);
      }
    }, 10);
    producer.exited.then(() => {
      clearInterval(t);
      reject(new Error(`producer exited early: ${producer.stderr}`));
    });
  });
  assert.match(sent.sent.headers.traceparent, new RegExp(`^00-${sent.traceId}-[0-9a-f]{16}-01$`));
  const { reply } = await producer.ready;
  assert.deepEqual(reply, { done: 'resize-image' });
  assert.deepEqual(await producer.exited, { code: 0, signal: null });

  // Expected: producer "enqueue job" (root) → consumer "process job" (child, other process).
  const spans = await receiver.waitFor((s) => byName(s, 'enqueue job').length === 1 && byName(s, 'process job').length === 1);
  const [enqueue] = byName(spans, 'enqueue job');
  const [processJob] = byName(spans, 'process job');
  assert.equal(enqueue.traceId, sent.traceId);
  assert.equal(processJob.traceId, enqueue.traceId);
  assert.equal(processJob.parentSpanId, enqueue.spanId);
  assert.equal(processJob.kind, INTERNAL);
  assert.equal(processJob.attributes['job.name'], 'resize-image');
  assert.equal(enqueue.resource['service.name'], 'producer');
  assert.equal(processJob.resource['service.name'], 'consumer');
  assert.notEqual(enqueue.resource['process.pid'], processJob.resource['process.pid']);
});

test('withSpan: sync and async errors are recorded with ERROR status and re-thrown; values pass through', async () => {
  receiver.reset();
  const app = spawnNode([path.join(ROOT, 'test', 'fixtures', 'with-span.js')], {
    cwd: ROOT,
    readyKey: 'value',
    env: { ...exportEnv(), FORKTRACE_DIST: path.join(DIST, 'index.js') },
  });
  const seen = await app.ready;
  assert.deepEqual(seen, { sync: 'sync boom', async: 'TypeError: async boom', value: 42 });
  assert.deepEqual(await app.exited, { code: 0, signal: null });
  const spans = await receiver.waitFor((s) => s.length >= 4);
  for (const [name, message, type] of [
    ['sync fails', 'sync boom', 'Error'],
    ['async fails', 'async boom', 'TypeError'],
  ]) {
    const [s] = byName(spans, name);
    assert.deepEqual(s.status, { code: 2, message }, name);
    const ev = s.events.find((e) => e.name === 'exception');
    assert.equal(ev.attributes['exception.type'], type);
    assert.equal(ev.attributes['exception.message'], message);
  }
  const [ok] = byName(spans, 'async ok');
  const [child] = byName(spans, 'sync child');
  assert.equal(child.parentSpanId, ok.spanId);
  assert.equal(child.attributes['child.attr'], 'yes');
  assert.equal(ok.status.code, 0);
});
