// Correctness check for bench/floor.cjs (and, for comparison, any other bench configuration):
// starts an in-process receiver (dist/tools/receiver.js), the example app under the configuration,
// sends single requests, then concurrent /db requests (16 at a time against a pool of 4, so that
// getConnection queues), and checks the decoded spans: names, attributes, status, and that every
// query span is the child of its own request's server span.
//   node bench/floor-check.mjs [config=floor] [requests=400]
import * as http from 'node:http';
import { createRequire } from 'node:module';
import { allConfigs } from './configs.mjs';
import { sleep, spawnNode } from './lib.mjs';

const require = createRequire(import.meta.url);
const { startReceiver } = require('../dist/tools/receiver.js');
const name = process.argv[2] ?? 'floor';
const N = Number(process.argv[3] ?? 400);

const get = (url, headers = {}) =>
  new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body, headers: res.headers }));
    });
    req.on('error', reject);
  });

const receiver = await startReceiver({ port: 0 });
const config = allConfigs(receiver.url).find((c) => c.name === name);
if (!config) throw new Error(`unknown configuration ${name}`);
const app = spawnNode(config.args, { env: { PORT: '0', ...config.env, OTEL_BSP_SCHEDULE_DELAY: '200' } });
const { listening: port } = await app.ready;
const base = `http://127.0.0.1:${port}`;
const show = (s) => ({
  name: s.name,
  kind: s.kind,
  parent: s.parentSpanId || '(root)',
  status: s.status,
  attributes: s.attributes,
  scope: s.scope.name,
});
const out = {};
try {
  for (const route of ['/hello', '/db', '/users/7', '/error', '/nope?token=abc&x=1']) {
    receiver.reset();
    const r = await get(base + route);
    await receiver.waitFor((ss) => ss.some((s) => s.kind === 2), 5000);
    await sleep(300);
    out[route] = { status: r.status, spans: receiver.spans.map(show) };
  }
  // An incoming traceparent: the server span must join that trace.
  receiver.reset();
  const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  await get(base + '/db', { traceparent: tp });
  await receiver.waitFor((ss) => ss.some((s) => s.kind === 2), 5000);
  await sleep(300);
  out.traceparent = receiver.spans.map((s) => ({ name: s.name, traceId: s.traceId, parent: s.parentSpanId }));

  // Concurrency: N /db requests, 16 in flight.
  receiver.reset();
  let next = 0;
  const worker = async () => {
    while (next < N) {
      next++;
      await get(base + '/db');
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  await receiver.waitFor((ss) => ss.filter((s) => s.kind === 2).length >= N, 10000).catch(() => {});
  await sleep(500);
  const spans = receiver.spans;
  const servers = spans.filter((s) => s.kind === 2);
  const queries = spans.filter((s) => s.kind === 3);
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  let ok = 0;
  let orphan = 0;
  let wrongParent = 0;
  const perServer = new Map(servers.map((s) => [s.spanId, 0]));
  for (const q of queries) {
    // The query's parent is the server span, or (upstream) the express handler span under it.
    let p = byId.get(q.parentSpanId);
    while (p && p.kind !== 2) p = byId.get(p.parentSpanId);
    if (!q.parentSpanId) orphan++;
    else if (!p) wrongParent++;
    else {
      perServer.set(p.spanId, perServer.get(p.spanId) + 1);
      // A query ends before its request's response is sent.
      // (2 ms slack: the SDK derives each span's clock offset from Date.now(), millisecond precision.)
      const slack = 2_000_000n;
      if (q.endTimeUnixNano <= p.endTimeUnixNano + slack && q.startTimeUnixNano + slack >= p.startTimeUnixNano) ok++;
      else wrongParent++;
    }
  }
  const counts = {};
  for (const n of perServer.values()) counts[n] = (counts[n] ?? 0) + 1;
  out.concurrent = {
    requests: N,
    serverSpans: servers.length,
    querySpans: queries.length,
    queriesInsideTheirParent: ok,
    queriesOrphaned: orphan,
    queriesUnderAnotherOrEndedParent: wrongParent,
    serverSpansByQueryChildren: counts,
  };
} finally {
  await app.stop('SIGTERM', 5000);
  await receiver.close();
}
process.stdout.write(JSON.stringify(out, null, 1) + '\n');
if (app.stderr.trim()) process.stdout.write(`app stderr: ${app.stderr.slice(0, 2000)}\n`);
