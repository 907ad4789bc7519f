// Secrets: a canary set through every path (the `apiKey`/`headers`/`endpoint` options,
// FORKTRACE_API_KEY, OTEL_EXPORTER_OTLP_HEADERS, URL userinfo) is grepped for in everything
// forktrace can print: stdout, stderr, the debug diag log (OTEL_LOG_LEVEL=all), the console
// exporter, thrown error messages, an endpoint that echoes the key back in its error body, and
// `forktrace check` (text and --json). Each test first proves the canaries were in use: the
// receiver got them as headers.
//
// Not covered here: pm2 logs (the pm2 tests grep those), secrets inside span attributes the app
// itself records (forktrace redacts sensitive query values only; see preload.test.mjs).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { DIST, EXAMPLE, REGISTER_CJS, cleanEnv, get, killStarted, spawnNode } from './helpers.mjs';

const require = createRequire(import.meta.url);
const { startReceiver } = require('../dist/tools/receiver.js');

// Distinct canaries per path, so that a leak names its path.
const KEY_ENV = 'cnry-envkey-8f2b1c';
const HDR_ENV = 'cnry-hdr/v=al%ue'; // '=', '/' and '%' in a value: percent-encoded in the variable
const USER = 'cnry-user-51aa';
const PASS = 'cnry-p@ss:w/rd';
const KEY_OPT = 'cnry-optkey-77d0e4';
const HDR_OPT = 'cnry-opthdr-0c9e2a';
const PASS_OPT = 'cnry-optpass-3b6f';
const ALL = [KEY_ENV, HDR_ENV, USER, PASS, KEY_OPT, HDR_OPT, PASS_OPT];

/** Every form a canary could be printed in: as is, percent-encoded, in Basic auth base64. */
function forms(secrets, basics = []) {
  const out = new Set();
  for (const s of secrets) {
    out.add(s);
    out.add(encodeURIComponent(s));
  }
  for (const [u, p] of basics) out.add(Buffer.from(`${u}:${p}`).toString('base64'));
  return [...out];
}
const FORMS = forms(ALL, [[USER, PASS], ['u', PASS_OPT]]);

function assertNoSecret(text, where) {
  for (const f of FORMS) assert.ok(!text.includes(f), `${where} contains a secret (${f.slice(0, 9)}…)`);
  // Any piece of a canary at all.
  assert.ok(!/cnry-/.test(text), `${where} contains part of a secret: ${text.match(/.{0,40}cnry-.{0,20}/)?.[0]}`);
}

let receiver;
let answer; // what the receiver answers; undefined = accept
before(async () => {
  receiver = await startReceiver({ respond: () => answer });
});
after(async () => {
  await killStarted();
  await receiver.close();
});

function envSecrets(endpoint) {
  const u = new URL(endpoint);
  u.username = encodeURIComponent(USER);
  u.password = encodeURIComponent(PASS);
  return {
    FORKTRACE_API_KEY: KEY_ENV,
    OTEL_EXPORTER_OTLP_HEADERS: `x-tenant=${encodeURIComponent(HDR_ENV)}`,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: u.href,
  };
}

test('env paths: debug diag log, console exporter, export errors echoing the key: no secret on stdout or stderr', async () => {
  receiver.reset();
  // First an endpoint that rejects the key and quotes it back, then one that accepts.
  answer = { status: 401, body: `invalid key "${KEY_ENV}" for tenant ${HDR_ENV}` };
  const app = spawnNode(['--require', REGISTER_CJS, path.join(EXAMPLE, 'server.js')], {
    cwd: EXAMPLE,
    env: {
      PORT: '0',
      OTEL_SERVICE_NAME: 'secrets-env',
      OTEL_LOG_LEVEL: 'all',
      OTEL_TRACES_EXPORTER: 'otlp,console',
      OTEL_BSP_SCHEDULE_DELAY: '50',
      ...envSecrets(receiver.url),
    },
  });
  const { listening } = await app.ready;
  const base = `http://127.0.0.1:${listening}`;
  await get(`${base}/hello?token=${KEY_ENV}`);
  await receiver.waitFor(() => receiver.requests.some((r) => r.status === 401), 5000).catch(() => {});
  await receiver.waitFor(() => false, 300).catch(() => {});
  answer = undefined;
  await get(`${base}/hello`);
  await receiver.waitFor((s) => s.length > 0, 5000);
  await app.kill('SIGTERM');

  // The canaries were in use: the receiver got the key, the tenant header and Basic auth.
  const headers = receiver.requests.at(-1).headers;
  assert.equal(headers['x-api-key'], KEY_ENV);
  assert.equal(headers['x-tenant'], HDR_ENV);
  assert.equal(headers.authorization, `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}`);
  assert.ok(receiver.requests.some((r) => r.status === 401), 'the 401 was seen');

  // Something was printed at all: the debug log, the console exporter, the 401 warning.
  assert.match(app.stderr, /forktrace: debug: /);
  assert.match(app.stdout, /name: 'GET \/hello'/);
  assert.match(app.stderr, /HTTP 401: the API key or its header name is wrong.*the endpoint said: invalid key "\[REDACTED\]" for tenant \[REDACTED\]/);
  assertNoSecret(app.stdout, 'stdout');
  assertNoSecret(app.stderr, 'stderr');
});

test('option paths and thrown errors: no secret in the handle, the log, or any error message', async () => {
  receiver.reset();
  answer = undefined;
  const index = path.join(DIST, 'index.js');
  const u = new URL(receiver.url);
  u.username = 'u';
  u.password = encodeURIComponent(PASS_OPT);
  const script = `
    const ft = require(${JSON.stringify(index)});
    const errors = [];
    // Wrong options that carry the canaries: each throws; the message must not quote them.
    for (const bad of [
      { apiKey: ${JSON.stringify(KEY_OPT)} + '\\n' },
      { headers: { 'x-h': ${JSON.stringify(HDR_OPT)} + '\\r\\n' } },
      { headers: { 'x-h': ${JSON.stringify(HDR_OPT)}, 'bad name': 'v' } },
      { endpoint: 'ftp://u:' + ${JSON.stringify(PASS_OPT)} + '@h/' },
      { endpoint: 'http://u:' + ${JSON.stringify(PASS_OPT)} + '/x@h/' },
      { apiKeyHeader: ${JSON.stringify(KEY_OPT)} + ' ' },
    ]) {
      try { ft.resolveConfig(bad, {}, { cwd: '/', readJson: () => undefined }); errors.push('no throw'); } catch (e) { errors.push(String(e.stack)); }
    }
    const h = ft.instrument({
      serviceName: 'secrets-opt', apiKey: ${JSON.stringify(KEY_OPT)}, headers: { 'x-h': ${JSON.stringify(HDR_OPT)} },
      endpoint: ${JSON.stringify(u.href)}, exporters: ['otlp', 'console'], logLevel: 'all',
      batch: { scheduledDelayMillis: 50 },
    });
    const { trace } = require(${JSON.stringify(require.resolve('@opentelemetry/api'))});
    trace.getTracer('t').startActiveSpan('manual', (s) => { s.setAttribute('k', 'v'); s.end(); });
    h.forceFlush().then(async () => {
      const shown = { config: h.config, stats: h.stats(), errors };
      process.stdout.write(JSON.stringify(shown) + '\\n');
      await h.shutdown();
    });
  `;
  const child = spawn(process.execPath, ['-e', script], { cwd: EXAMPLE, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => (stdout += c));
  child.stderr.on('data', (c) => (stderr += c));
  const [code] = await once(child, 'exit');
  assert.equal(code, 0, stderr);

  const headers = receiver.requests.at(-1).headers;
  assert.equal(headers['x-api-key'], KEY_OPT);
  assert.equal(headers['x-h'], HDR_OPT);
  assert.equal(headers.authorization, `Basic ${Buffer.from(`u:${PASS_OPT}`).toString('base64')}`);
  const shown = JSON.parse(stdout.split('\n').find((l) => l.startsWith('{"config"')));
  assert.equal(shown.errors.length, 6);
  assert.ok(shown.errors.every((e) => /^(TypeError|RangeError): `/.test(e)), shown.errors.join('\n'));
  assert.match(stdout, /name: 'manual'/, 'the console exporter printed');
  assert.match(stderr, /forktrace: debug: /, 'the debug log printed');
  assertNoSecret(stdout, 'stdout (console exporter, handle.config, error messages)');
  assertNoSecret(stderr, 'stderr (debug diag log)');
});

const CLI = path.join(DIST, 'cli', 'main.js');

test('forktrace check, text and --json, against an endpoint that echoes the key: no secret', { skip: !fs.existsSync(CLI) && 'dist/cli/main.js not built' }, async () => {
  for (const json of [false, true]) {
    receiver.reset();
    answer = { status: 403, body: `forbidden: ${KEY_ENV} / ${HDR_ENV}` };
    const child = spawn(process.execPath, [CLI, 'check', ...(json ? ['--json'] : [])], {
      cwd: EXAMPLE,
      env: cleanEnv({ OTEL_SERVICE_NAME: 'secrets-check', ...envSecrets(receiver.url) }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    const [code] = await once(child, 'exit');
    assert.equal(code, 1, `check found the 403: ${out}`);
    assert.equal(receiver.requests.at(-1).headers['x-api-key'], KEY_ENV, 'check sent the key');
    assert.match(out, /403/);
    if (json) JSON.parse(out);
    assertNoSecret(out, `forktrace check${json ? ' --json' : ''}`);
  }
  answer = undefined;
});
