// The fault matrix: the example app (CJS preload) serves /hello at a steady rate while its OTLP
// endpoint misbehaves, then recovers. Each case runs in its own process:
//   node --expose-gc --require fixtures/net-recorder.cjs --require dist/register.js
//        --require fixtures/fault-probe.cjs examples/express-mysql2/server.js
// The probe reports handle.stats(), event-loop delay and heap; the net recorder logs connection
// attempts and DNS lookups (the only way to count attempts that never reach a server).
// Attempts that do reach the server are counted there: upstream's retries re-send the same bytes,
// so requests grouped by body hash are exactly one export and its retries.
//
// What upstream does (otlp-exporter-base 0.223.0, retrying-transport.js, is-export-retryable.js,
// transport/http-transport-utils.js): 429/502/503/504, ECONNREFUSED, ECONNRESET, EPIPE,
// ETIMEDOUT, ENOTFOUND, EAI_AGAIN, ENETUNREACH, EHOSTUNREACH and a request timeout are retried,
// at most 5 times, after Retry-After when given (not capped by the 5 s backoff limit) or else after
// 1 s × 1.5ⁿ ±20 % (at most 5 s), and never when the retry would start after timeoutMillis from the
// first attempt. Everything else (500, 4xx but 429, TLS errors) is not retried.
//
// Not covered here: shutdown while the endpoint is down (the forking-servers tests), the ESM preload
// (same exporter code), and real DNS (`.invalid` is answered locally by the net recorder, as
// RFC 6761 asks of resolver libraries, so no query leaves the machine).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { EXAMPLE, REGISTER_CJS, ROOT, killStarted, spawnNode, waitUntil } from './helpers.mjs';
import { load, probe, selfSignedCert, startFaultReceiver } from './fault-receiver.mjs';

const NET_RECORDER = path.join(ROOT, 'test', 'fixtures', 'net-recorder.cjs');
const PROBE = path.join(ROOT, 'test', 'fixtures', 'fault-probe.cjs');
const SERVER = path.join(EXAMPLE, 'server.js');
const CANARY = 'canary-fault-7d41c0b2';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const cert = selfSignedCert();
after(async () => {
  await killStarted();
  if (cert) fs.rmSync(cert.dir, { recursive: true, force: true });
});

/**
 * Splits attempt timestamps into exports: a gap of `retryGapMs` or more is a retry, a shorter one
 * (the batch processor's 100 ms schedule) starts the next export.
 */
function groupByGap(times, retryGapMs = 600) {
  const groups = [];
  for (const t of times) {
    const g = groups[groups.length - 1];
    if (g && t - g[g.length - 1] >= retryGapMs) g.push(t);
    else groups.push([t]);
  }
  return groups;
}
const gaps = (g) => g.slice(1).map((t, i) => t - g[i]);

/**
 * Upstream's retry schedule (otlp-exporter-base retrying-transport.js): backoff 1 s × 1.5ⁿ, ±20 %
 * jitter, and a retry only if it starts before the export timeout. With a 4 s timeout that is 3
 * attempts, or 4 when all three jitters come out low (0.8 + 1.2 + 1.8 s < 4 s).
 */
function assertBackoffSchedule(g, timeoutMs, label) {
  assert.ok(g.length === 3 || g.length === 4, `${label}: ${g.length} attempts, gaps ${JSON.stringify(gaps(g))}`);
  const ranges = [
    [750, 1300],
    [1150, 1900],
    [1700, 2800],
  ];
  gaps(g).forEach((d, i) => assert.ok(d >= ranges[i][0] && d <= ranges[i][1], `${label}: backoff ${i + 1} was ${d} ms`));
  assert.ok(g[g.length - 1] - g[0] <= timeoutMs, `${label}: the last attempt started within the ${timeoutMs} ms timeout`);
}


/**
 * Runs one case: start the endpoint in its fault, the app, load for `faultMs`, measure, recover,
 * check that spans flow again, stop the app with SIGTERM.
 */
async function runCase(c) {
  const front = await startFaultReceiver();
  await c.fault(front);
  const endpoint = c.endpoint ? c.endpoint(front) : front.url();
  const app = spawnNode(['--expose-gc', '--require', NET_RECORDER, '--require', REGISTER_CJS, '--require', PROBE, SERVER], {
    cwd: EXAMPLE,
    env: {
      PORT: '0',
      OTEL_SERVICE_NAME: 'fault-app',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: endpoint,
      OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: String(c.timeoutMs),
      OTEL_BSP_SCHEDULE_DELAY: '100',
      FORKTRACE_API_KEY: CANARY,
      ...c.env,
    },
  });
  try {
    const { listening } = await app.ready;
    const probePort = app.lines.find((l) => 'probe' in l).probe;
    const base = `http://127.0.0.1:${listening}`;
    const start = await probe(probePort, 'gc');
    await probe(probePort, 'reset');

    const traffic = load(base);
    await sleep(c.faultMs ?? 3500);
    const during = await probe(probePort, 'gc');

    let recovered;
    const recoverAt = Date.now();
    if (c.recover) {
      await c.recover(front);
      const at = Date.now();
      recovered = await waitUntil(
        async () => {
          const s = await probe(probePort);
          const fresh = front.inner.spans.filter((x) => Number(x.startTimeUnixNano / 1_000_000n) >= at);
          return s.stats.delivered > during.stats.delivered && fresh.length > 0 ? { stats: s.stats, fresh: fresh.length, ms: Date.now() - at } : undefined;
        },
        // Each poll is a request to the app's probe: seldom enough not to load the app under test.
        { timeoutMs: c.recoverWithinMs ?? 8000, what: 'spans after recovery', everyMs: 100 },
      );
    }
    const served = await traffic.stop();
    const end = await probe(probePort, 'gc');
    const exit = await app.kill('SIGTERM');
    return { front, app, endpoint, start, during, end, served, recovered, recoverAt, exit };
  } finally {
    await app.kill('SIGKILL');
    await front.close();
  }
}

/** What every case must show, whatever the fault. */
function assertHealthy(r, { cause, warnings = 1 }) {
  const { served, during, start, end, app, exit } = r;
  // The app kept serving: every request answered 200, none slow.
  assert.equal(served.ok, served.requests, `all requests served: ${JSON.stringify(served.errors)}`);
  assert.ok(served.requests >= 100, `load ran (${served.requests} requests)`);
  assert.ok(served.p99 < 500, `request p99 ${served.p99} ms`);
  // The event loop was never blocked (resolution 10 ms: p99 near 10 ms on an idle loop).
  assert.ok(during.eld.p99 < 150, `event-loop delay p99 ${during.eld.p99} ms`);
  assert.ok(during.eld.max < 1000, `event-loop delay max ${during.eld.max} ms`);
  // Memory stayed bounded: the heap after a full GC grew by less than 20 MB.
  const grew = (end.mem.heapUsed - start.mem.heapUsed) / 1e6;
  assert.ok(grew < 20, `heap grew ${grew.toFixed(1)} MB`);
  // No crash: forktrace re-raised SIGTERM after its flush, as Node would have ended without it.
  assert.deepEqual(exit, { code: null, signal: 'SIGTERM' });
  // Nothing but forktrace's own lines on stderr: no unhandled rejection, no uncaught exception.
  const lines = app.stderr.split('\n').filter((l) => l !== '');
  assert.deepEqual(lines.filter((l) => !l.startsWith('forktrace: ')), [], 'only forktrace lines on stderr');
  // At most one warning about the failure, naming the endpoint (never credentials) and the cause.
  const failures = lines.filter((l) => l.includes('failed:'));
  assert.equal(failures.length, warnings, `export warnings:\n${failures.join('\n')}`);
  for (const w of failures) {
    assert.ok(w.includes(`export to ${r.endpoint} failed:`), w);
    assert.match(w, cause);
  }
  assert.ok(!app.stdout.includes(CANARY) && !app.stderr.includes(CANARY), 'the API key is printed nowhere');
}

const results = {};
after(() => {
  // One line per case for RELIABILITY.md.
  if (Object.keys(results).length > 0) process.stdout.write(`# fault results ${JSON.stringify(results)}\n`);
});

function summary(r, extra = {}) {
  return {
    served: `${r.served.ok}/${r.served.requests}`,
    reqP99: r.served.p99,
    eldP99: r.during.eld.p99,
    eldMax: r.during.eld.max,
    heapMB: +((r.end.mem.heapUsed - r.start.mem.heapUsed) / 1e6).toFixed(1),
    failed: r.during.stats.failed,
    recoveredMs: r.recovered?.ms,
    warning: r.app.stderr.split('\n').find((l) => l.includes('failed:'))?.replace(/^forktrace: warning: export to \S+ failed: /, ''),
    ...extra,
  };
}

test('connection refused: retried with backoff (3, at most 4, attempts within a 4 s timeout), dropped, counted; spans flow once it listens', async () => {
  const r = await runCase({
    timeoutMs: 4000,
    // An export with all its retries takes up to 0.1 + 1.2 + 1.8 s: leave room for one whole.
    faultMs: 4500,
    fault: (f) => f.down(),
    recover: (f) => f.up(),
  });
  assertHealthy(r, { cause: /connection refused/ });
  const connects = r.during.net.filter((e) => e.kind === 'connect' && e.port === r.front.port).map((e) => e.at);
  const groups = groupByGap(connects);
  const complete = groups.slice(0, -1);
  assert.ok(complete.length >= 1, `at least one export ran its retries: ${JSON.stringify(groups.map(gaps))}`);
  for (const g of complete) assertBackoffSchedule(g, 4000, 'refused');
  assert.ok(r.during.stats.failed > 0 && r.during.stats.delivered === 0);
  results.refused = summary(r, { attemptsPerExport: complete.map((g) => g.length), backoffMs: complete.map(gaps) });
});

test('blackhole (accepts, never answers): one attempt per export, timed out at OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, never blocks', async () => {
  const r = await runCase({
    timeoutMs: 1500,
    fault: (f) => f.setMode({ kind: 'hang' }),
    recover: (f) => f.setMode({ kind: 'ok' }),
  });
  assertHealthy(r, { cause: /no answer within 1500 ms \(OTEL_EXPORTER_OTLP_TIMEOUT\)/ });
  const hung = r.front.requests.filter((q) => q.mode === 'hang');
  assert.ok(hung.length >= 2);
  // A timed-out attempt is retryable upstream, but the first attempt used the whole timeout.
  for (const g of r.front.exports()) assert.equal(g.length, 1, 'no retry after a timeout');
  // One export at a time: consecutive hung requests are ≥ the timeout apart.
  for (const d of gaps(hung.map((q) => q.at))) assert.ok(d >= 1400, `exports ${d} ms apart`);
  results.blackhole = summary(r, { attempts: hung.length, apartMs: Math.min(...gaps(hung.map((q) => q.at))) });
});

test('slow endpoint (answers after 5 s): times out at 1.5 s, one attempt, the late answer is not waited for', async () => {
  const r = await runCase({
    timeoutMs: 1500,
    fault: (f) => f.setMode({ kind: 'slow', ms: 5000 }),
    recover: (f) => f.setMode({ kind: 'ok' }),
  });
  assertHealthy(r, { cause: /no answer within 1500 ms \(OTEL_EXPORTER_OTLP_TIMEOUT\)/ });
  for (const g of r.front.exports()) assert.equal(g.length, 1);
  const slow = r.front.requests.filter((q) => q.mode === 'slow');
  assert.ok(slow.length >= 2);
  assert.equal(slow.filter((q) => q.status !== 0).length, 0, 'no slow answer reached a waiting client');
  results.slow = summary(r, { attempts: slow.length });
});

test('slow drip (200, then one byte every 250 ms for 5 s): each attempt is cut at the 1.5 s timeout, not held for the whole drip', async () => {
  const r = await runCase({
    timeoutMs: 1500,
    fault: (f) => f.setMode({ kind: 'drip', ms: 5000, every: 250 }),
    recover: (f) => f.setMode({ kind: 'ok' }),
  });
  // forktrace's own per-attempt deadline cuts the request: a timeout, like the blackhole.
  assertHealthy(r, { cause: /no answer within 1500 ms \(OTEL_EXPORTER_OTLP_TIMEOUT\)/ });
  const drips = r.front.requests.filter((q) => q.mode === 'drip');
  assert.ok(drips.length >= 2, `${drips.length} drip requests`);
  // Upstream's idle timeout alone would hold each export for the whole 5 s drip.
  for (const d of gaps(drips.map((q) => q.at))) assert.ok(d >= 1400 && d < 2500, `exports ${d} ms apart`);
  results.drip = summary(r, { attempts: drips.length, apartMs: gaps(drips.map((q) => q.at)) });
});

test('500: not retried (one request per export), dropped with one warning', async () => {
  const r = await runCase({
    timeoutMs: 4000,
    fault: (f) => f.setMode({ kind: 'status', status: 500, body: 'internal error' }),
    recover: (f) => f.setMode({ kind: 'ok' }),
  });
  assertHealthy(r, { cause: /HTTP 500: the endpoint failed on its side/ });
  const groups = r.front.exports().filter((g) => g[0].mode === 'status');
  assert.ok(groups.length >= 3);
  for (const g of groups) assert.equal(g.length, 1, 'a 500 is not retried');
  results.http500 = summary(r, { exports: groups.length, attemptsPerExport: 1 });
});

test('503 with Retry-After: 1: retried after exactly the asked 1 s, 4 attempts within a 4 s timeout', async () => {
  const r = await runCase({
    timeoutMs: 4000,
    fault: (f) => f.setMode({ kind: 'status', status: 503, headers: { 'retry-after': '1' } }),
    recover: (f) => f.setMode({ kind: 'ok' }),
    faultMs: 4500,
  });
  assertHealthy(r, { cause: /HTTP 503.*Retry-After: 1/ });
  const groups = r.front.exports().filter((g) => g.every((q) => q.mode === 'status'));
  // An export still retrying at recovery ends with an `ok` attempt and is left out.
  const complete = groups;
  assert.ok(complete.length >= 1, JSON.stringify(groups.map((g) => g.length)));
  for (const g of complete) {
    assert.equal(g.length, 4, `attempts: t=0,1,2,3 s; ${JSON.stringify(groups.map((x) => gaps(x.map((q) => q.at))))}`);
    // No jitter: Retry-After replaces the backoff.
    for (const d of gaps(g.map((q) => q.at))) assert.ok(d >= 990 && d <= 1250, `retry after ${d} ms`);
  }
  results.http503RetryAfter1 = summary(r, { attemptsPerExport: complete.map((g) => g.length), retryMs: complete.map((g) => gaps(g.map((q) => q.at))) });
});

test('503 with Retry-After: 60 (past the timeout cap): given up at once, not retried', async () => {
  const r = await runCase({
    timeoutMs: 4000,
    fault: (f) => f.setMode({ kind: 'status', status: 503, headers: { 'retry-after': '60' } }),
    recover: (f) => f.setMode({ kind: 'ok' }),
  });
  assertHealthy(r, { cause: /HTTP 503.*Retry-After: 60.*timeout/ });
  const groups = r.front.exports().filter((g) => g[0].mode === 'status');
  assert.ok(groups.length >= 3);
  for (const g of groups) assert.equal(g.length, 1, 'a Retry-After past the deadline ends the export');
  results.http503RetryAfter60 = summary(r, { exports: groups.length, attemptsPerExport: 1 });
});

test('429 without Retry-After: retried with jittered backoff (1 s, 1.5 s, …), then dropped', async () => {
  const r = await runCase({
    timeoutMs: 4000,
    faultMs: 4500,
    fault: (f) => f.setMode({ kind: 'status', status: 429 }),
    recover: (f) => f.setMode({ kind: 'ok' }),
  });
  assertHealthy(r, { cause: /HTTP 429/ });
  const groups = r.front.exports().filter((g) => g.every((q) => q.mode === 'status'));
  const complete = groups.filter((g) => g.length >= 3);
  assert.ok(complete.length >= 1, JSON.stringify(groups.map((g) => g.length)));
  assert.ok(groups.every((g) => g.length <= 4));
  for (const g of complete) assertBackoffSchedule(g.map((q) => q.at), 4000, '429');
  results.http429 = summary(r, { attemptsPerExport: complete.map((g) => g.length), backoffMs: complete.map((g) => gaps(g.map((q) => q.at))) });
});

test('400 with an error body: not retried; the warning quotes the body, trimmed to one line', async () => {
  const body = 'invalid request:\n   resource attribute "service.name" must be a string\n\n' + 'x'.repeat(500);
  const r = await runCase({
    timeoutMs: 4000,
    fault: (f) => f.setMode({ kind: 'status', status: 400, body }),
    recover: (f) => f.setMode({ kind: 'ok' }),
  });
  assertHealthy(r, { cause: /HTTP 400; the endpoint said: invalid request: resource attribute "service.name" must be a string x+\. \d+ span\(s\) dropped/ });
  const w = r.app.stderr.split('\n').find((l) => l.includes('failed:'));
  assert.ok(!w.includes('x'.repeat(201)), 'the body is trimmed');
  for (const g of r.front.exports()) assert.equal(g.length, 1);
  results.http400 = summary(r);
});

test('401: not retried; the warning says the API key or its header is wrong, never the key', async () => {
  const r = await runCase({
    timeoutMs: 4000,
    fault: (f) => f.setMode({ kind: 'status', status: 401, body: `unknown key ${CANARY}` }),
    recover: (f) => f.setMode({ kind: 'ok' }),
  });
  // The endpoint echoed the key in its body: the warning shows the body with the key scrubbed.
  assertHealthy(r, { cause: /HTTP 401: the API key or its header name is wrong \(FORKTRACE_API_KEY.*the endpoint said: unknown key \[REDACTED\]/ });
  for (const g of r.front.exports()) assert.equal(g.length, 1);
  results.http401 = summary(r);
});

test('413: not retried; the warning says the batch is too large and names OTEL_BSP_MAX_EXPORT_BATCH_SIZE', async () => {
  const r = await runCase({
    timeoutMs: 4000,
    fault: (f) => f.setMode({ kind: 'status', status: 413 }),
    recover: (f) => f.setMode({ kind: 'ok' }),
  });
  assertHealthy(r, { cause: /HTTP 413: the batch is too large for the endpoint; lower OTEL_BSP_MAX_EXPORT_BATCH_SIZE/ });
  for (const g of r.front.exports()) assert.equal(g.length, 1);
  results.http413 = summary(r);
});

test('TLS against a plain-http port: a clear TLS error, not retried; spans flow once the port speaks TLS (custom CA)', { skip: !cert && 'openssl not installed' }, async () => {
  const r = await runCase({
    timeoutMs: 4000,
    fault: () => {},
    endpoint: (f) => f.url('https'),
    env: { OTEL_EXPORTER_OTLP_CERTIFICATE: cert?.certFile },
    recover: (f) => f.up(cert),
  });
  assertHealthy(r, { cause: /TLS failed \((EPROTO|ERR_SSL_WRONG_VERSION_NUMBER): wrong version number\): the port answers in plain http\. Use http:\/\/ in the endpoint, or the endpoint's TLS port/ });
  // The plain server saw connections (handshakes) but never a request.
  const plain = r.front.connections.filter((c) => !c.tls);
  assert.ok(plain.length >= 3);
  assert.equal(r.front.requests.filter((q) => q.at < r.recoverAt).length, 0);
  // One connection per export: gaps between handshakes are the 100 ms schedule, never a backoff.
  assert.ok(gaps(plain.map((c) => c.at)).every((d) => d < 600), 'not retried');
  results.tlsAgainstPlain = summary(r, { handshakes: plain.length });
});

test('unresolvable host (.invalid): a clear DNS error, retried like a network error, dropped', async () => {
  const host = 'otlp.forktrace-test.invalid';
  const r = await runCase({
    timeoutMs: 4000,
    faultMs: 4500,
    fault: () => {},
    endpoint: (f) => f.url('http', host),
  });
  assertHealthy(r, { cause: /the host name does not resolve \(DNS\)/ });
  const lookups = r.during.net.filter((e) => e.kind === 'lookup' && e.host === host).map((e) => e.at);
  const groups = groupByGap(lookups).slice(0, -1);
  assert.ok(groups.length >= 1);
  // ENOTFOUND is retried like a network error.
  for (const g of groups) assertBackoffSchedule(g, 4000, 'ENOTFOUND');
  assert.ok(r.during.stats.failed > 0);
  // No recovery: a .invalid name never resolves; the fix is the configuration.
  results.dns = summary(r, { attemptsPerExport: groups.map((g) => g.length) });
});
