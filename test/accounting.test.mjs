// Accounting under a flapping endpoint: every span the app ends is either delivered or dropped,
// and the numbers agree with two outside counts: the requests the load generator got answered
// (each /hello ends exactly two spans: the server span and express's request handler span) and
// the spans the real receiver decoded.
//
//   node --require fixtures/net-recorder.cjs --require dist/register.js --require fixtures/fault-probe.cjs
//        examples/express-mysql2/server.js
//
// The endpoint is up 2 s / down 2 s (refusing connections) three times; scripts/soak.mjs runs
// the 30 s / 30 s version for 10 minutes. A small queue (OTEL_BSP_MAX_QUEUE_SIZE=40) makes the
// batch processor drop spans while an export waits out its retries, so both kinds of drop occur.
// Not covered: several exporters at once (`otlp,console` counts each span once per exporter).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { EXAMPLE, REGISTER_CJS, ROOT, killStarted, spawnNode } from './helpers.mjs';
import { load, probe, startFaultReceiver } from './fault-receiver.mjs';

const NET_RECORDER = path.join(ROOT, 'test', 'fixtures', 'net-recorder.cjs');
const PROBE = path.join(ROOT, 'test', 'fixtures', 'fault-probe.cjs');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

after(killStarted);

test('flapping endpoint (up 2 s / down 2 s ×3): ended = delivered + dropped exactly, matching the load and the receiver', async () => {
  const front = await startFaultReceiver();
  const app = spawnNode(['--require', NET_RECORDER, '--require', REGISTER_CJS, '--require', PROBE, path.join(EXAMPLE, 'server.js')], {
    cwd: EXAMPLE,
    env: {
      PORT: '0',
      OTEL_SERVICE_NAME: 'flap-app',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: front.url(),
      OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '1500',
      OTEL_BSP_SCHEDULE_DELAY: '100',
      OTEL_BSP_MAX_QUEUE_SIZE: '40',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '20',
    },
  });
  try {
    const { listening } = await app.ready;
    const probePort = app.lines.find((l) => 'probe' in l).probe;
    const traffic = load(`http://127.0.0.1:${listening}`, 20);
    for (let i = 0; i < 3; i++) {
      await sleep(2000);
      await front.down({ graceful: true });
      await sleep(2000);
      await front.up();
    }
    await sleep(1000);
    const served = await traffic.stop();
    assert.equal(served.ok, served.requests, 'every request was served');

    // Wait for the last retries to end: nothing pending.
    const deadline = Date.now() + 15000;
    let s;
    for (;;) {
      s = (await probe(probePort)).stats;
      if (s.pending === 0 && s.ended === served.requests * 2) break;
      assert.ok(Date.now() < deadline, `still pending: ${JSON.stringify(s)}`);
      await sleep(200);
    }

    // The accounting, exactly.
    assert.equal(s.ended, served.requests * 2, 'two spans per /hello');
    assert.equal(s.ended, s.delivered + s.dropped, JSON.stringify(s));
    assert.equal(s.dropped, s.failed + s.queueFull);
    assert.equal(s.exported, s.delivered + s.failed, 'every span handed to the exporter was settled');
    assert.ok(s.delivered > 0 && s.failed > 0 && s.queueFull > 0, `both kinds of drop happened: ${JSON.stringify(s)}`);

    // The receiver decoded exactly the delivered spans, each once.
    const ids = front.inner.spans.map((x) => x.spanId);
    assert.equal(new Set(ids).size, ids.length, 'no span arrived twice');
    assert.equal(ids.length, s.delivered);

    // Shutdown prints the totals, since something was dropped; the numbers are the same.
    const exit = await app.kill('SIGTERM');
    assert.deepEqual(exit, { code: null, signal: 'SIGTERM' });
    const lines = app.stderr.split('\n').filter((l) => l !== '');
    assert.deepEqual(lines.filter((l) => !l.startsWith('forktrace: ')), []);
    const summary = lines.filter((l) => l.includes('spans since start:'));
    assert.deepEqual(summary, [
      `forktrace: warning: spans since start: ${s.ended} ended, ${s.delivered} delivered, ${s.dropped} dropped (${s.failed} in failed exports, ${s.queueFull} on a full queue: OTEL_BSP_MAX_QUEUE_SIZE), 0 pending.`,
    ]);
    // One rate-limited line per cause, not one per failed batch.
    const failures = lines.filter((l) => l.includes('failed:'));
    const queue = lines.filter((l) => l.includes('span queue was full'));
    assert.ok(failures.length >= 1 && failures.length <= 3, failures.join('\n'));
    assert.ok(queue.length <= 1, queue.join('\n'));
    process.stdout.write(`# accounting ${JSON.stringify({ requests: served.requests, ...s, received: ids.length, warnings: failures.length + queue.length })}\n`);
  } finally {
    await app.kill('SIGKILL');
    await front.close();
  }
});
