#!/usr/bin/env node
// Soak: the example app (CJS preload) under moderate load for 10 minutes while its OTLP endpoint
// flaps (up 30 s / down 30 s, refusing connections). Samples the app's RSS and post-GC heap, and
// prints their slope after warm-up, then the span accounting once the endpoint is back:
// ended = delivered + dropped, ended = 2 × requests served, received = delivered.
//
//   npm run soak                                  # 10 min, 30 s / 30 s, ~50 req/s
//   npm run soak -- --minutes 2 --up 10 --down 10 # a quick version
//
// Exit code 1 when the accounting does not hold or a slope is above --max-slope (MB/min).
// Not part of `npm test`: it takes minutes by design.
import { parseArgs } from 'node:util';
import * as path from 'node:path';
import { EXAMPLE, REGISTER_CJS, ROOT, killStarted, mysqlReachable, spawnNode } from '../test/helpers.mjs';
import { load, probe, startFaultReceiver } from '../test/fault-receiver.mjs';

const { values: o } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    up: { type: 'string', default: '30' },
    down: { type: 'string', default: '30' },
    rps: { type: 'string', default: '50' },
    'warmup-minutes': { type: 'string' },
    'max-slope': { type: 'string', default: '1' },
  },
});
const minutes = Number(o.minutes);
const upMs = Number(o.up) * 1000;
const downMs = Number(o.down) * 1000;
const everyMs = Math.max(1, Math.round(1000 / Number(o.rps)));
const warmupMs = (o['warmup-minutes'] !== undefined ? Number(o['warmup-minutes']) : Math.min(2, minutes / 5)) * 60_000;
const maxSlope = Number(o['max-slope']);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (s) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);

/** Least-squares slope of (t ms, v bytes) pairs, in MB per minute. */
function slope(points) {
  const n = points.length;
  if (n < 3) return NaN;
  const mt = points.reduce((a, p) => a + p[0], 0) / n;
  const mv = points.reduce((a, p) => a + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [t, v] of points) {
    num += (t - mt) * (v - mv);
    den += (t - mt) ** 2;
  }
  return (num / den) * 60_000 / 1e6;
}

const front = await startFaultReceiver();
const app = spawnNode(
  ['--expose-gc', '--require', REGISTER_CJS, '--require', path.join(ROOT, 'test', 'fixtures', 'fault-probe.cjs'), path.join(EXAMPLE, 'server.js')],
  {
    cwd: EXAMPLE,
    env: { PORT: '0', OTEL_SERVICE_NAME: 'soak-app', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: front.url(), OTEL_BSP_SCHEDULE_DELAY: '1000' },
  },
);
let exitCode = 0;
try {
  const { listening } = await app.ready;
  const probePort = app.lines.find((l) => 'probe' in l).probe;
  const base = `http://127.0.0.1:${listening}`;
  const withDb = await mysqlReachable();
  log(`app pid ${app.pid} on ${base}, endpoint ${front.url()}; ${minutes} min, up ${upMs / 1000} s / down ${downMs / 1000} s, ~${o.rps} req/s to /hello${withDb ? ' and /users/:id (MariaDB)' : ''}`);

  // /hello only: each ends exactly two spans, which the accounting relies on. The DB route runs
  // alongside on its own counter.
  const traffic = load(base, everyMs);
  const dbTraffic = withDb ? load(base, 200, '/users/7') : undefined;

  const started = Date.now();
  const rss = [];
  const heap = [];
  let up = true;
  let nextFlip = started + upMs;
  let nextGc = started;
  while (Date.now() - started < minutes * 60_000) {
    const now = Date.now();
    if (now >= nextFlip) {
      if (up) await front.down({ graceful: true });
      else await front.up();
      up = !up;
      nextFlip = now + (up ? upMs : downMs);
      log(`endpoint ${up ? 'up' : 'down'}`);
    }
    const gc = now >= nextGc;
    const s = await probe(probePort, gc ? 'gc' : 'stats');
    rss.push([now - started, s.mem.rss]);
    if (gc) {
      heap.push([now - started, s.mem.heapUsed]);
      nextGc = now + 30_000;
      log(`rss ${(s.mem.rss / 1e6).toFixed(1)} MB, heap ${(s.mem.heapUsed / 1e6).toFixed(1)} MB, eld p99 ${s.eld.p99} ms; ended ${s.stats.ended}, delivered ${s.stats.delivered}, dropped ${s.stats.dropped} (failed ${s.stats.failed}, queue full ${s.stats.queueFull}), pending ${s.stats.pending}`);
      await probe(probePort, 'reset');
    }
    await sleep(5000);
  }
  if (!up) await front.up();
  const served = await traffic.stop();
  const db = dbTraffic ? await dbTraffic.stop() : undefined;
  log(`load stopped: ${served.ok}/${served.requests} /hello served (p99 ${served.p99} ms)${db ? `, ${db.ok}/${db.requests} /users/7` : ''}`);

  // Let the last retries end.
  let s;
  for (let i = 0; i < 120; i++) {
    s = (await probe(probePort)).stats;
    if (s.pending === 0) break;
    await sleep(500);
  }
  const after = rss.filter(([t]) => t >= warmupMs);
  const heapAfter = heap.filter(([t]) => t >= warmupMs);
  const rssSlope = slope(after);
  const heapSlope = slope(heapAfter);
  // RSS follows the flap (spans held while the endpoint is down, then sent), so a straight line
  // through every sample mostly measures where the run stopped in the cycle. The peak of each
  // whole cycle after warm-up is the number that would climb if memory leaked.
  const cycleMs = upMs + downMs;
  const peaks = new Map();
  for (const [t, v] of after) {
    const c = Math.floor(t / cycleMs);
    if ((c + 1) * cycleMs > minutes * 60_000) continue;
    peaks.set(c, Math.max(peaks.get(c) ?? 0, v));
  }
  const peakPoints = [...peaks].map(([c, v]) => [(c + 0.5) * cycleMs, v]);
  const peakSlope = slope(peakPoints);
  const received = new Set(front.inner.spans.map((x) => x.spanId)).size;
  const dbSpans = db ? db.ok * 3 : 0; // server span, request handler, SELECT
  const checks = {
    'ended = delivered + dropped': s.ended === s.delivered + s.dropped,
    'dropped = failed + queueFull': s.dropped === s.failed + s.queueFull,
    'ended = 2 × /hello + 3 × /users/7': s.ended === served.ok * 2 + dbSpans,
    'received = delivered': received === s.delivered,
    'every request served': served.ok === served.requests && (!db || db.ok === db.requests),
    [`RSS peak-per-cycle slope after warm-up ≤ ${maxSlope} MB/min`]: Number.isNaN(peakSlope) || peakSlope <= maxSlope,
    [`heap slope after warm-up ≤ ${maxSlope} MB/min`]: Number.isNaN(heapSlope) || heapSlope <= maxSlope,
  };
  log(`RSS after ${warmupMs / 60_000} min warm-up: ${(after[0]?.[1] / 1e6).toFixed(1)} → ${(after.at(-1)?.[1] / 1e6).toFixed(1)} MB, least-squares slope over all ${after.length} samples ${rssSlope.toFixed(3)} MB/min`);
  log(`RSS peak per ${cycleMs / 1000} s cycle: ${peakPoints.map(([, v]) => (v / 1e6).toFixed(1)).join(', ')} MB; slope ${peakSlope.toFixed(3)} MB/min`);
  log(`post-GC heap every 30 s after warm-up: ${heapAfter.map(([, v]) => (v / 1e6).toFixed(1)).join(', ')} MB; slope ${heapSlope.toFixed(3)} MB/min`);
  log(`accounting: ended ${s.ended} = delivered ${s.delivered} + dropped ${s.dropped} (failed ${s.failed}, queue full ${s.queueFull}); pending ${s.pending}; receiver decoded ${received}`);
  for (const [what, ok] of Object.entries(checks)) {
    log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
    if (!ok) exitCode = 1;
  }
  await app.kill('SIGTERM');
  const lines = app.stderr.split('\n').filter((l) => l.startsWith('forktrace: warning'));
  log(`forktrace warnings over the run: ${lines.length}`);
  for (const l of lines.slice(-6)) log(`  ${l}`);
  process.stdout.write(`${JSON.stringify({ soak: { minutes, upS: upMs / 1000, downS: downMs / 1000, requests: served.requests, dbRequests: db?.requests ?? 0, ...s, received, rssSlopeMBPerMin: +rssSlope.toFixed(3), rssPeakSlopeMBPerMin: +peakSlope.toFixed(3), heapSlopeMBPerMin: +heapSlope.toFixed(3), warnings: lines.length, pass: exitCode === 0 } })}\n`);
} finally {
  await killStarted();
  await front.close();
}
process.exit(exitCode);
