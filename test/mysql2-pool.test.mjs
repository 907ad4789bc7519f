// A busy mysql2 pool must not put a query span under another request. The example app's pool has
// 4 connections; 16 requests at a time make getConnection queue, and mysql2 then runs the queued
// callback when another request releases its connection, in that request's async context
// (src/worker/mysql2-pool.ts). Before the fix, 68–73 of 400 query spans sat under a request that had
// already answered, and a few requests showed 17–19 SELECT children.
//
// Expected, for every request of both routes, one trace each:
//   GET /db | GET /users/:id        server
//   └─ request handler - <route>    express
//      └─ SELECT                    mysql2 (callback API on a pooled connection | promise pool.query)
// Not covered: PoolCluster (it takes connections through the same Pool.getConnection).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { EXAMPLE, REGISTER_CJS, REGISTER_ESM, get, mysqlReachable, receiverForThisFile, spawnNode, SERVER, CLIENT } from './helpers.mjs';

const REQUESTS = 400;
const IN_FLIGHT = 16;

const receiver = receiverForThisFile();
let dbUp;
before(async () => {
  dbUp = await mysqlReachable();
});

for (const [name, args] of [
  ['CJS --require', ['--require', REGISTER_CJS, path.join(EXAMPLE, 'server.js')]],
  ['ESM --import', ['--import', REGISTER_ESM, path.join(EXAMPLE, 'server.mjs')]],
]) {
  test(`${name}: ${REQUESTS} requests, ${IN_FLIGHT} at a time on a pool of 4: every query span is in its own request's trace`, async (t) => {
    if (!dbUp) return t.skip('MySQL not reachable at MYSQL_URL');
    receiver.reset();
    const app = spawnNode(args, {
      cwd: EXAMPLE,
      env: { PORT: '0', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '100' },
    });
    const { listening: port } = await app.ready;
    // Half callback API (/db: pool.getConnection, then conn.query), half promise pool (/users/:id: pool.query).
    const paths = Array.from({ length: REQUESTS }, (_, i) => (i % 2 ? '/db' : `/users/${i}`));
    let next = 0;
    const worker = async () => {
      while (next < paths.length) {
        const r = await get(`http://127.0.0.1:${port}${paths[next++]}`);
        assert.equal(r.status, 200);
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));

    const spans = await receiver.waitFor(
      (s) => s.filter((x) => x.kind === SERVER).length >= REQUESTS && s.filter((x) => x.kind === CLIENT).length >= REQUESTS,
    );
    const servers = spans.filter((s) => s.kind === SERVER);
    const queries = spans.filter((s) => s.kind === CLIENT && s.name === 'SELECT');
    assert.equal(servers.length, REQUESTS);
    assert.equal(queries.length, REQUESTS);

    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const queriesPerServer = new Map(servers.map((s) => [s.spanId, 0]));
    const misplaced = [];
    for (const q of queries) {
      const handler = byId.get(q.parentSpanId);
      const server = handler && byId.get(handler.parentSpanId);
      // A request's query runs while the request is open (2 ms: span clocks are anchored to Date.now()).
      const late = server ? q.endTimeUnixNano - server.endTimeUnixNano : 0n;
      if (!server || server.kind !== SERVER || server.traceId !== q.traceId || late > 2_000_000n) {
        misplaced.push(
          !handler ? 'no parent' : server?.kind !== SERVER ? 'parent of parent is not a server span' : server.traceId !== q.traceId ? 'another trace' : `ended ${Number(late) / 1e6} ms after its request`,
        );
        continue;
      }
      queriesPerServer.set(server.spanId, queriesPerServer.get(server.spanId) + 1);
    }
    assert.deepEqual(misplaced, [], `${misplaced.length} query spans are not under handler → server of their own, still open request`);
    const counts = {};
    for (const n of queriesPerServer.values()) counts[n] = (counts[n] ?? 0) + 1;
    assert.deepEqual(counts, { 1: REQUESTS }, 'requests by number of SELECT spans under them');
    await app.kill('SIGTERM');
  });
}
