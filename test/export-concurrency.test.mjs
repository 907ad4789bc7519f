// One export at a time, also while exports fail (src/worker/exporter.ts oneExportAtATime). What a user
// checks: an endpoint that keeps rejecting batches sees one request at a time from a worker, not
// a growing crowd of them holding batches of spans in memory (upstream's batch processor lets one
// more export start after each failure). Not covered: the refused and blackholed endpoints under
// HTTP load, which `npm run bench -- --outage` measures (BENCHMARKS.md).
//
//   worker (instrument(), 40 000 spans/s for 3 s) ──POST /v1/traces──▶ endpoint: 400 after 100 ms
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';

import { REGISTER_CJS, killStarted, spawnNode } from './helpers.mjs';

after(killStarted);

const MAKE_SPANS = `
const { trace } = require('@opentelemetry/api');
const tracer = trace.getTracer('export-concurrency-test');
const end = Date.now() + 3000;
(function loop() {
  for (let i = 0; i < 200; i++) tracer.startSpan('work').end();
  if (Date.now() < end) setTimeout(loop, 5);
  else process.stdout.write(JSON.stringify({ done: true }) + '\\n');
})();
`;

test('an endpoint that rejects every batch gets one export at a time', async () => {
  let inFlight = 0;
  let maxInFlight = 0;
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    req.resume();
    req.on('end', () =>
      setTimeout(() => {
        inFlight--;
        res.writeHead(400, { 'content-type': 'text/plain' });
        res.end('rejected by the test\n');
      }, 100),
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const worker = spawnNode(['--require', REGISTER_CJS, '-e', MAKE_SPANS], {
      readyKey: 'done',
      env: {
        OTEL_SERVICE_NAME: 'export-concurrency-test',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://127.0.0.1:${server.address().port}/v1/traces`,
      },
    });
    await worker.ready;
    await worker.kill('SIGKILL');
    // ~3 s of exports that each fail after 100 ms: enough failures that a leak would show.
    assert.ok(requests >= 10, `only ${requests} export requests arrived`);
    assert.equal(maxInFlight, 1, `${maxInFlight} exports were in flight at once (${requests} requests)`);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});
