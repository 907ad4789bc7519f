// No surprise network, and the transport rules.
//
// The app runs with a recording preload loaded first (fixtures/net-recorder.cjs): every
// Socket#connect, dns.lookup / resolve* / reverse and http(s).request is logged with its target.
//   node --require fixtures/net-recorder.cjs --require dist/register.js     examples/express-mysql2/server.js
//   node --require fixtures/net-recorder.cjs --import  dist/register.mjs    examples/express-mysql2/server.mjs
// Startup and idle must open no connection and make no DNS query at all (no resource detector,
// no cloud metadata probe, no version check); spans go only to the configured endpoint; the only
// other peer is MariaDB, when the app itself queries it.
//
// Transport: credentials to plain http on another machine warn by default and are refused with
// FORKTRACE_REQUIRE_TLS=true; OTEL_EXPORTER_OTLP_CERTIFICATE trusts a private CA (a self-signed
// certificate made with openssl in the test). Non-loopback hosts are `.invalid` names, which
// never resolve (the recorder answers them locally), so no packet leaves the machine.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { EXAMPLE, REGISTER_CJS, REGISTER_ESM, ROOT, get, killStarted, mysqlReachable, spawnNode } from './helpers.mjs';
import { selfSignedCert, startFaultReceiver } from './fault-receiver.mjs';

const require = createRequire(import.meta.url);
const { startReceiver } = require('../dist/tools/receiver.js');
const { resolveConfig, messages } = require('../dist/index.js');

const NET_RECORDER = path.join(ROOT, 'test', 'fixtures', 'net-recorder.cjs');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'forktrace-net-'));
const cert = selfSignedCert();
after(async () => {
  await killStarted();
  fs.rmSync(tmp, { recursive: true, force: true });
  if (cert) fs.rmSync(cert.dir, { recursive: true, force: true });
});

let n = 0;
/** Starts the example app under the recorder; `log()` reads what it has recorded so far. */
function recorded(variant, env) {
  const file = path.join(tmp, `net-${++n}.jsonl`);
  const args =
    variant === 'esm'
      ? ['--require', NET_RECORDER, '--import', REGISTER_ESM, path.join(EXAMPLE, 'server.mjs')]
      : ['--require', NET_RECORDER, '--require', REGISTER_CJS, path.join(EXAMPLE, 'server.js')];
  const app = spawnNode(args, { cwd: EXAMPLE, env: { PORT: '0', NET_LOG_FILE: file, ...env } });
  app.log = () =>
    network(fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
  return app;
}
// The app's own `listen('127.0.0.1')` goes through dns.lookup with an IP literal, which getaddrinfo
// answers without a query; such lookups are left out.
const network = (log) => log.filter((e) => !(e.kind === 'lookup' && net.isIP(e.host)));
const show = (log) => log.map((e) => `${e.kind} ${e.host ?? e.path}:${e.port ?? ''} from ${e.from?.[0] ?? '?'}`).join('\n');

for (const variant of ['cjs', 'esm']) {
  test(`${variant}: startup and idle touch no network; spans go only to the endpoint, SQL only to MariaDB`, async (t) => {
    const receiver = await startReceiver();
    t.after(() => receiver.close());
    const dbUp = await mysqlReachable();
    // `localhost`, so that the one DNS lookup allowed (toward the endpoint) shows up.
    const endpoint = `http://localhost:${receiver.port}/v1/traces`;
    const app = recorded(variant, { OTEL_SERVICE_NAME: `net-${variant}`, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: '100' });
    const { listening } = await app.ready;
    // Idle for many batch periods: nothing to send, so nothing opened.
    await sleep(1500);
    assert.deepEqual(app.log(), [], `startup and idle made no network call:\n${show(app.log())}`);

    await get(`http://127.0.0.1:${listening}/hello`);
    await receiver.waitFor((s) => s.some((x) => x.name === 'GET /hello'));
    const afterExport = app.log();
    assert.ok(afterExport.length > 0, 'the recorder sees the export');
    for (const e of afterExport) {
      if (e.kind === 'lookup') assert.equal(e.host, 'localhost', show([e]));
      else if (e.kind === 'connect') assert.ok(['localhost', '127.0.0.1', '::1'].includes(e.host) && e.port === receiver.port, show([e]));
      else if (e.kind.startsWith('http')) assert.ok(e.host === 'localhost' && Number(e.port) === receiver.port, show([e]));
      else assert.fail(`unexpected ${show([e])}`);
    }

    // Idle again: the keep-alive connection is reused, nothing new.
    await sleep(800);
    assert.equal(app.log().length, afterExport.length, show(app.log().slice(afterExport.length)));

    if (dbUp) {
      assert.equal((await get(`http://127.0.0.1:${listening}/db`)).status, 200);
      await receiver.waitFor((s) => s.some((x) => x.name === 'GET /db'));
      const db = new URL(process.env.MYSQL_URL || 'mysql://root@127.0.0.1:3306/test');
      const extra = app.log().slice(afterExport.length).filter((e) => e.kind === 'connect' && e.port !== receiver.port);
      assert.ok(extra.length >= 1, 'the app connected to MariaDB');
      for (const e of extra) assert.deepEqual([e.host, e.port], [db.hostname, Number(db.port || 3306)], show([e]));
    }
    await app.kill('SIGTERM');
  });
}

const FAR = 'http://collector.forktrace-test.invalid:4318/v1/traces';

test('credentials over plain http to another machine: a warning by default (loopback is fine), refused with FORKTRACE_REQUIRE_TLS=true', () => {
  const host = { cwd: '/srv', readJson: () => undefined, readFile: () => undefined };
  const warn = (env) => resolveConfig(undefined, { OTEL_SERVICE_NAME: 's', ...env }, host);
  const key = { FORKTRACE_API_KEY: 'k-123456' };

  let c = warn({ ...key, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: FAR });
  assert.deepEqual(c.warnings, [messages.credentialsOverHttp(FAR, ['x-api-key'])]);
  assert.deepEqual(c.exporters, ['otlp']);
  // Basic auth from userinfo and custom headers are credentials too.
  c = warn({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: FAR.replace('//', '//u:p@'), OTEL_EXPORTER_OTLP_HEADERS: 'x-team=t' });
  assert.deepEqual(c.warnings, [messages.credentialsOverHttp(FAR, ['authorization', 'x-team'])]);
  // No warning: https, loopback, or no credentials.
  for (const endpoint of [FAR.replace('http:', 'https:'), 'http://127.0.0.1:4318/v1/traces', 'http://localhost:4318/v1/traces', 'http://[::1]:4318/v1/traces']) {
    assert.deepEqual(warn({ ...key, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: endpoint }).warnings, [], endpoint);
  }
  assert.deepEqual(warn({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: FAR }).warnings, []);

  // Refused: no OTLP export at all (even without a key), one message; loopback still allowed.
  c = warn({ ...key, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: FAR, FORKTRACE_REQUIRE_TLS: 'true' });
  assert.deepEqual(c.warnings, [messages.tlsRequired(FAR)]);
  assert.deepEqual(c.exporters, []);
  c = warn({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: FAR, FORKTRACE_REQUIRE_TLS: 'true', OTEL_TRACES_EXPORTER: 'otlp,console' });
  assert.deepEqual(c.exporters, ['console']);
  c = warn({ ...key, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces', FORKTRACE_REQUIRE_TLS: 'true' });
  assert.deepEqual([c.warnings, c.exporters], [[], ['otlp']]);
});

test('the preload: the warning by default; with FORKTRACE_REQUIRE_TLS=true one message, no export, no lookup, no connection', async () => {
  for (const requireTls of [false, true]) {
    const app = recorded('cjs', {
      OTEL_SERVICE_NAME: 'tls-app',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: FAR,
      FORKTRACE_API_KEY: 'k-7d1e9f',
      OTEL_BSP_SCHEDULE_DELAY: '50',
      OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '500',
      ...(requireTls ? { FORKTRACE_REQUIRE_TLS: 'true' } : {}),
    });
    const { listening } = await app.ready;
    assert.equal((await get(`http://127.0.0.1:${listening}/hello`)).status, 200);
    await sleep(400);
    const log = app.log();
    await app.kill('SIGTERM');
    const lines = app.stderr.split('\n').filter(Boolean);
    if (requireTls) {
      assert.deepEqual(lines, [`forktrace: warning: ${messages.tlsRequired(FAR)}`, `forktrace: tracing tls-app (pid ${app.pid}) to nowhere (FORKTRACE_REQUIRE_TLS)`]);
      assert.deepEqual(log, [], `nothing was attempted:\n${show(log)}`);
    } else {
      assert.equal(lines[0], `forktrace: warning: ${messages.credentialsOverHttp(FAR, ['x-api-key'])}`);
      // The export was attempted (and failed on the .invalid name): the warning did not stop it.
      assert.ok(log.some((e) => e.kind === 'lookup' && e.host === 'collector.forktrace-test.invalid'));
      // Socket#connect was called with the name, which never resolved: no packet left.
      assert.ok(log.filter((e) => e.kind === 'connect').every((e) => e.host === 'collector.forktrace-test.invalid'), show(log));
    }
    assert.ok(!app.stderr.includes('k-7d1e9f'));
  }
});

test('OTEL_EXPORTER_OTLP_CERTIFICATE: a private CA is trusted; without it, one warning that names the setting', { skip: !cert && 'openssl not installed' }, async () => {
  const front = await startFaultReceiver({ tls: cert });
  try {
    // Without the CA: the self-signed certificate is not trusted.
    const base = { OTEL_SERVICE_NAME: 'ca-app', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: front.url('https'), OTEL_BSP_SCHEDULE_DELAY: '50' };
    let app = recorded('cjs', base);
    let { listening } = await app.ready;
    await get(`http://127.0.0.1:${listening}/hello`);
    await sleep(600);
    await app.kill('SIGTERM');
    assert.equal(front.inner.spans.length, 0);
    assert.match(app.stderr, /forktrace: warning: export to https:\/\/127\.0\.0\.1:\d+\/v1\/traces failed: TLS failed \((SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT)\): the endpoint's certificate is not trusted here\. If a private CA signed it, set OTEL_EXPORTER_OTLP_CERTIFICATE to the CA's PEM file/);

    // With it (the traces-specific variable wins over the generic one, which points nowhere).
    app = recorded('cjs', { ...base, OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE: cert.certFile, OTEL_EXPORTER_OTLP_CERTIFICATE: '/nonexistent.pem' });
    ({ listening } = await app.ready);
    await get(`http://127.0.0.1:${listening}/hello`);
    const spans = await front.inner.waitFor((s) => s.some((x) => x.name === 'GET /hello'));
    assert.equal(spans[0].resource['service.name'], 'ca-app');
    await app.kill('SIGTERM');
    assert.deepEqual(app.stderr.split('\n').filter((l) => l.includes('warning')), []);
  } finally {
    await front.close();
  }

  // A path that cannot be read, or a file without a certificate: one warning, system CAs used.
  const h = { cwd: '/srv', readJson: () => undefined, readFile: (f) => (f === '/srv/notpem.txt' ? 'hello' : undefined) };
  const env = (v) => ({ OTEL_SERVICE_NAME: 's', OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otlp.example', OTEL_EXPORTER_OTLP_CERTIFICATE: v });
  assert.deepEqual(resolveConfig(undefined, env('ca.pem'), h).warnings, [messages.certificateUnreadable('OTEL_EXPORTER_OTLP_CERTIFICATE', '/srv/ca.pem')]);
  assert.deepEqual(resolveConfig(undefined, env('notpem.txt'), h).warnings, [messages.certificateNotPem('OTEL_EXPORTER_OTLP_CERTIFICATE', '/srv/notpem.txt')]);
  const ok = resolveConfig(undefined, { ...env('/srv/ca.pem'), OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }, { ...h, readFile: () => '-----BEGIN CERTIFICATE-----\n' });
  assert.deepEqual([ok.certificateFile, ok.warnings], ['/srv/ca.pem', [messages.certificateUnused('OTEL_EXPORTER_OTLP_CERTIFICATE')]]);
});
