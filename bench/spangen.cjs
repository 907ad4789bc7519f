'use strict';
// A worker that only makes spans, for the export ceiling and the queue-memory runs of
// `npm run bench -- --scale`. Run with forktrace's preload. Each stdin line is a JSON step
// {"rate": spans per second, "seconds": n}; after each step it prints one JSON line:
// {"step": {...}, "stats": handle.stats(), "rss": bytes, "cpu": µs}.
// Each span carries the eleven attributes of an instrumentation-http server span.
const path = require('node:path');
const readline = require('node:readline');
const { trace, SpanKind } = require('@opentelemetry/api');
const { instrument } = require(path.join(__dirname, '..', 'dist', 'index.js'));

const handle = instrument();
const tracer = trace.getTracer('bench-spangen', '1.0.0');
let port = 40000;

function makeSpan() {
  const span = tracer.startSpan('GET /hello', {
    kind: SpanKind.SERVER,
    attributes: {
      'http.request.method': 'GET',
      'url.scheme': 'http',
      'url.path': '/hello',
      'server.address': '127.0.0.1',
      'server.port': 3000,
      'network.peer.address': '127.0.0.1',
      'network.peer.port': port++ & 0xffff,
      'client.address': '127.0.0.1',
      'network.protocol.version': '1.1',
      'http.route': '/hello',
    },
  });
  span.setAttribute('http.response.status_code', 200);
  span.end();
}

/** Makes spans at `rate` per second for `seconds`, in slices of at most 2 ms' worth, yielding to I/O (the exports) between. */
function step({ rate, seconds }) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    let made = 0;
    const tick = () => {
      const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
      if (elapsed >= seconds) return resolve({ rate, seconds: elapsed, made });
      const due = Math.min(Math.floor(rate * elapsed) - made, Math.ceil(rate / 500));
      for (let i = 0; i < due; i++) makeSpan();
      made += Math.max(0, due);
      // Sleep when nothing is due, so that the CPU figure is the spans' and the exports' cost.
      if (due > 0) setImmediate(tick);
      else setTimeout(tick, 1);
    };
    tick();
  });
}

process.stdout.write(JSON.stringify({ ready: process.pid }) + '\n');
readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  const cmd = JSON.parse(line);
  const cpu0 = process.cpuUsage();
  const s = cmd.rate > 0 ? await step(cmd) : { rate: 0, seconds: 0, made: 0 };
  if (cmd.flush) await handle.forceFlush();
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(
    JSON.stringify({ step: s, stats: handle.stats(), rss: process.memoryUsage().rss, cpu: cpu.user + cpu.system }) +
      '\n',
  );
});
