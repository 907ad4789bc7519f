// node:cluster with the preload on the primary, for real:
//
//   node --require dist/register.js examples/cluster/primary.js
//   ├─ worker slot 0: server.js (inherits --require through execArgv), FORKTRACE_WORKER_INDEX=0
//   └─ worker slot 1: the same, FORKTRACE_WORKER_INDEX=1
//
// The primary stands down when it forks, so it sends nothing and no span is sent twice. Each
// /hello is one trace:
//   GET /hello                    server   (resource: the worker's pid, instance id, slot)
//   └─ request handler - /hello   express
//
// A 5 s batch delay keeps spans queued, so they can only arrive through a stop path: SIGTERM to
// one worker (flush, then it ends by SIGTERM and the primary replaces it in the same slot), then
// SIGTERM to the primary, which disconnects its workers (forktrace flushes on 'disconnect').
// Not covered: FORKTRACE_INSTRUMENT_PRIMARY=true (config.test.mjs covers the setting).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { REGISTER_CJS, ROOT, SERVER, childrenOf, freePort, spawnNode, receiverForThisFile } from './helpers.mjs';
import { burst } from './pm2-helpers.mjs';


const PRIMARY = path.join(ROOT, 'examples', 'cluster', 'primary.js');

const receiver = receiverForThisFile();

/** Resolves with the lines so far once `pred(lines)` holds; the app prints JSON lines. */
async function lines(app, pred, ms = 15_000) {
  const until = Date.now() + ms;
  while (!pred(app.lines)) {
    if (Date.now() > until) throw new Error(`timed out; stdout: ${app.stdout}\nstderr: ${app.stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return app.lines;
}

const servers = (spans, query) => spans.filter((s) => s.kind === SERVER && s.attributes['url.query'] === query);
const countBy = (items, key) => items.reduce((acc, x) => ((acc[key(x)] = (acc[key(x)] ?? 0) + 1), acc), {});
const numericKeys = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [Number(k), v]));

test('node:cluster, preload on the primary: the primary sends nothing, 2 workers send, nothing twice, slots survive a restart, every queued span is flushed', async () => {
  receiver.reset();
  const port = await freePort();
  const app = spawnNode(['--require', REGISTER_CJS, PRIMARY], {
    env: {
      PORT: String(port),
      OTEL_SERVICE_NAME: 'cluster-app',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url,
      OTEL_BSP_SCHEDULE_DELAY: '5000',
    },
    readyKey: 'worker',
  });
  const primaryPid = app.pid;
  await lines(app, (l) => l.filter((x) => 'listening' in x).length === 2);
  const slotPid = (slot) => app.lines.filter((x) => x.worker === slot).at(-1).pid;
  const [w0, w1] = [slotPid(0), slotPid(1)];
  const base = `http://127.0.0.1:${port}`;

  // Round 1: both workers serve.
  const first = await burst(`${base}/hello?round=1`, { total: 200, concurrency: 8 });
  assert.equal(first.ok, 200);
  assert.deepEqual(Object.keys(first.byPid).map(Number).sort(), [w0, w1].sort(), 'both workers answered');

  // SIGTERM to worker 0 alone: with no handler of the app's, forktrace flushes and the worker ends
  // by SIGTERM; the primary forks a replacement into slot 0.
  process.kill(w0, 'SIGTERM');
  const flushed = await receiver.waitFor((s) => servers(s, 'round=1').filter((x) => x.resource['process.pid'] === w0).length >= first.byPid[w0], 5000);
  await lines(app, (l) => l.filter((x) => x.worker === 0).length === 2 && l.some((x) => x.listening && x.pid === slotPid(0)));
  const w0b = slotPid(0);
  assert.notEqual(w0b, w0);
  assert.match(app.stderr, new RegExp(`primary: worker 0 \\(pid ${w0}\\) exited \\(SIGTERM\\); restarting it`));
  assert.equal(servers(flushed, 'round=1').filter((x) => x.resource['process.pid'] === w1).length, 0, "worker 1's spans are still queued (5 s batch delay)");

  // Round 2: until the new worker has answered some.
  let second = { ok: 0, failed: 0, byPid: {} };
  for (let i = 0; i < 10 && !second.byPid[w0b]; i++) {
    const more = await burst(`${base}/hello?round=2`, { total: 50, concurrency: 4 });
    second = { ok: second.ok + more.ok, failed: second.failed + more.failed, byPid: { ...second.byPid } };
    for (const [pid, n] of Object.entries(more.byPid)) second.byPid[pid] = (second.byPid[pid] ?? 0) + n;
  }
  assert.ok(second.byPid[w0b] > 0, 'the replacement worker serves');
  assert.equal(second.failed, 0);

  // SIGTERM to the primary: it disconnects the workers; their queued spans are flushed.
  process.kill(primaryPid, 'SIGTERM');
  const exit = await app.exited;
  assert.deepEqual(exit, { code: 0, signal: null }, 'the primary exits once its workers have');
  const spans = await receiver.waitFor(
    (s) => servers(s, 'round=1').length >= first.ok && servers(s, 'round=2').length >= second.ok,
    5000,
  );

  // Every answered request has exactly one server span, from the worker that answered it.
  assert.deepEqual(numericKeys(countBy(servers(spans, 'round=1'), (s) => s.resource['process.pid'])), numericKeys(first.byPid));
  assert.deepEqual(numericKeys(countBy(servers(spans, 'round=2'), (s) => s.resource['process.pid'])), numericKeys(second.byPid));
  // No span twice (a tracing primary would not duplicate spans, but a double start in a worker would).
  assert.equal(new Set(spans.map((s) => `${s.traceId}/${s.spanId}`)).size, spans.length);
  for (const s of servers(spans, 'round=1')) assert.equal(childrenOf(spans, s).length, 1, 'each server span has its express child');

  // The primary sent nothing.
  assert.ok(!spans.some((s) => s.resource['process.pid'] === primaryPid));
  const workerPids = new Set([w0, w1, w0b]);
  assert.deepEqual(new Set(spans.map((s) => s.resource['process.pid'])), workerPids);

  // Identity: one instance id per process, the slot from FORKTRACE_WORKER_INDEX (kept by the
  // replacement, whose cluster.worker.id is 3).
  const slotOfPid = { [w0]: 0, [w0b]: 0, [w1]: 1 };
  for (const pid of workerPids) {
    const mine = spans.filter((s) => s.resource['process.pid'] === pid);
    assert.equal(new Set(mine.map((s) => s.resource['service.instance.id'])).size, 1);
    assert.deepEqual(new Set(mine.map((s) => s.resource['forktrace.worker.index'])), new Set([slotOfPid[pid]]));
    assert.ok(mine.every((s) => s.resource['forktrace.process_manager'] === 'node:cluster' && s.resource['service.name'] === 'cluster-app'));
  }
  assert.equal(new Set(spans.map((s) => s.resource['service.instance.id'])).size, 3);

  // stderr: each worker one status line; the primary says once that it stood down.
  const stderr = app.stderr.split('\n');
  for (const pid of workerPids) {
    const status = stderr.filter((l) => l.startsWith('forktrace: tracing') && l.includes(`(pid ${pid},`));
    assert.deepEqual(status, [`forktrace: tracing cluster-app (pid ${pid}, node:cluster worker ${slotOfPid[pid]}) to ${receiver.url} (gzip)`]);
  }
  assert.equal(
    stderr.filter((l) => l.startsWith(`forktrace: pid ${primaryPid} is a node:cluster primary: tracing stopped here`)).length,
    1,
  );
  assert.deepEqual(stderr.filter((l) => l.includes('warning')), [], 'no warnings');
});
