// `forktrace check` against local servers that answer the way the real thing does, for the
// mistakes check used to pass or report as a bare status (issue 11, step 4):
//   answers that are not OTLP: a sign-in page served with 200, a proxy's HTML error page whose
//   title names the cause, redirects (which OTLP exporters do not follow);
//   pm2 app fields: kill_timeout below the flush deadline, a preload pm2 resolves from its
//   daemon's cwd, settings only in an env_<name> block without --env;
//   a TLS certificate for another host name, trusted or not; header values whose
//   percent-escapes are decoded before sending.
// Every check runs the built bin with a canary key, which must appear in no output line.
// Not covered: a real vendor's sign-in page or a real pm2 start (check reads the file only).
import { test, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { EXAMPLE, ROOT, cleanEnv, tlsOtlpServer } from './helpers.mjs';

const require = createRequire(import.meta.url);
const { checkMessages } = require('../dist/tools/check/messages.js');

const BIN = path.join(ROOT, 'dist', 'cli', 'main.js');
const SERVER_JS = path.join(EXAMPLE, 'server.js');
const REGISTER_ABS = path.join(ROOT, 'dist', 'register.js');
const CANARY = 'canary-checkdx-7c1d2e9b55';

/** Runs `forktrace check` to completion: { code, stdout, stderr }. */
function check(args, { env = {}, cwd = ROOT, timeoutMs = 20_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'check', ...args], { cwd, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`check ${args.join(' ')} did not finish; stdout: ${stdout}; stderr: ${stderr}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const servers = [];
/** A local server on 127.0.0.1 answering every request with `handler(req, res)`. */
async function serve(handler) {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => handler(req, res));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  return `http://127.0.0.1:${server.address().port}`;
}
after(() => {
  for (const s of servers) {
    s.closeAllConnections?.();
    s.close();
  }
});

function assertNoCanary(r) {
  assert.ok(!r.stdout.includes(CANARY) && !r.stderr.includes(CANARY), 'the canary key leaked');
}

describe('check: answers that are not OTLP are problems (issue 11)', () => {
  test('a sign-in page served with 200 (an SSO proxy in front of the endpoint): its title, exit 1', async () => {
    // What an auth proxy answers to any unauthenticated POST: 200 and a login form.
    const url = await serve((req, res) =>
      res
        .writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
        .end('<!DOCTYPE html><html><head>\n  <title>\n   Sign in &amp; continue · Acme SSO\n  </title></head><body><form></form></body></html>'),
    );
    const r = await check(['--json'], { env: { OTEL_EXPORTER_OTLP_ENDPOINT: url, FORKTRACE_API_KEY: CANARY } });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout);
    const text = checkMessages.htmlPage(200, 'Sign in & continue · Acme SSO');
    assert.deepEqual(report.problems, [checkMessages.exportFailed(`${url}/v1/traces`, text)]);
    assert.equal(report.findings.find((f) => f.severity === 'problem').code, 'export-not-otlp');
    assert.equal(report.export.otlp, false);
    assertNoCanary(r);
  });

  test('an HTML error page: its title (trimmed, one line, scrubbed) is shown, not discarded', async () => {
    // nginx-style 502 page whose title names the cause; a title that echoes the key is scrubbed.
    const url = await serve((req, res) =>
      res
        .writeHead(502, { 'content-type': 'text/html' })
        .end(`<html><head><title>502 Bad Gateway:\n upstream otel-collector:4318 refused (key ${req.headers['x-api-key']})</title></head><body><center>nginx</center></body></html>`),
    );
    const r = await check([], { env: { OTEL_EXPORTER_OTLP_ENDPOINT: url, FORKTRACE_API_KEY: CANARY } });
    assert.equal(r.code, 1, r.stdout);
    assert.ok(
      r.stdout.includes(`the page's title: "502 Bad Gateway: upstream otel-collector:4318 refused (key [REDACTED])"`),
      r.stdout,
    );
    assert.match(r.stdout, /HTTP 502: the endpoint is unavailable/);
    assertNoCanary(r);
  });

  test('redirects 301/302/307/308: the target without credentials or query, and the fix; exit 1', async () => {
    for (const status of [301, 302, 307, 308]) {
      // A redirect to https with the key in both user info and the query: neither may be shown.
      const url = await serve((req, res) =>
        res
          .writeHead(status, { location: `https://user:${CANARY}@otlp.example.test/v1/traces?api_key=${CANARY}` })
          .end(),
      );
      const r = await check(['--json'], { env: { OTEL_EXPORTER_OTLP_ENDPOINT: url, FORKTRACE_API_KEY: CANARY } });
      assert.equal(r.code, 1, r.stdout);
      const report = JSON.parse(r.stdout);
      assert.deepEqual(report.problems, [
        checkMessages.exportFailed(`${url}/v1/traces`, checkMessages.redirect(status, 'https://otlp.example.test/v1/traces', true)),
      ]);
      assert.equal(report.findings.find((f) => f.severity === 'problem').code, 'export-redirect');
      assertNoCanary(r);
    }
    // A relative Location, in text output: resolved against the URL asked.
    const url = await serve((req, res) => res.writeHead(308, { location: '/otlp/v1/traces' }).end());
    const r = await check([], { env: { OTEL_EXPORTER_OTLP_ENDPOINT: url } });
    assert.equal(r.code, 1);
    assert.ok(
      r.stdout.includes(
        `HTTP 308: the endpoint redirects to ${url}/otlp/v1/traces; OTLP exporters do not follow redirects, so every export fails: set OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=${url}/otlp/v1/traces`,
      ),
      r.stdout,
    );
  });

  test('an OTLP answer is still OK: protobuf 200 with an empty body', async () => {
    const url = await serve((req, res) => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end());
    const r = await check([], { env: { OTEL_EXPORTER_OTLP_ENDPOINT: url, OTEL_SERVICE_NAME: 'dx' } });
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /OK: nothing wrong found/);
  });
});

describe('check --pm2: the app fields that decide whether a worker starts, flushes and sees its settings (issue 11)', () => {
  /** Writes an ecosystem file with one clustered app, preloaded by absolute path unless `fields` (JS source) set node args. */
  function ecosystem(t, fields) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forktrace-checkdx-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'ecosystem.config.js');
    fs.writeFileSync(
      file,
      `module.exports = { apps: [{ name: 'dx', script: ${JSON.stringify(SERVER_JS)}, exec_mode: 'cluster', instances: 2, ` +
        `${/node_args|interpreter_args/.test(fields) ? '' : `node_args: ['--require', ${JSON.stringify(REGISTER_ABS)}], `}env: { OTEL_SERVICE_NAME: 'dx', FORKTRACE_API_KEY: ${JSON.stringify(CANARY)} }, ${fields} }] };`,
    );
    return file;
  }
  const byCode = (report, code) => report.findings.filter((f) => f.code === code);

  test('kill_timeout below the flush deadline plus a margin: a note with both numbers and the fix; the defaults pass', async (t) => {
    const short = await check(['--pm2', ecosystem(t, 'kill_timeout: 800'), '--no-send', '--json']);
    assert.equal(short.code, 0, short.stdout + short.stderr);
    const report = JSON.parse(short.stdout);
    assert.deepEqual(byCode(report, 'pm2-kill-timeout').map((f) => [f.severity, f.text]), [
      ['note', checkMessages.killTimeoutShort(800, false, 1000, 1500)],
    ]);
    assert.match(report.notes.join('\n'), /pm2 sends SIGKILL 800 ms after SIGINT \(the app's kill_timeout\), but forktrace may flush for up to 1000 ms/);
    assertNoCanary(short);

    // pm2's default 1600 ms against a raised flush deadline: the default is named as such.
    const raised = await check(['--pm2', ecosystem(t, ''), '--no-send', '--json'], {
      env: { FORKTRACE_SHUTDOWN_TIMEOUT_MS: '3000' },
    });
    // The deadline from the shell, which `pm2 start` passes on to the app as check does.
    const raisedReport = JSON.parse(raised.stdout);
    assert.deepEqual(byCode(raisedReport, 'pm2-kill-timeout').map((f) => f.text), [
      checkMessages.killTimeoutShort(1600, true, 3000, 3500),
    ]);

    const fine = await check(['--pm2', ecosystem(t, 'kill_timeout: 3000'), '--no-send', '--json']);
    assert.deepEqual(byCode(JSON.parse(fine.stdout), 'pm2-kill-timeout'), []);
  });

  test('a preload pm2 resolves from its daemon\'s cwd: a problem in cluster mode with the require.resolve fix', async (t) => {
    for (const [args, flag, specifier] of [
      ["['--require', 'forktrace/register']", '--require', 'forktrace/register'],
      ["'-r ./node_modules/forktrace/dist/register.js'", '--require', './node_modules/forktrace/dist/register.js'],
      ["['--import=forktrace/register']", '--import', 'forktrace/register'],
    ]) {
      const r = await check(['--pm2', ecosystem(t, `node_args: ${args}`), '--no-send', '--json']);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const report = JSON.parse(r.stdout);
      assert.deepEqual(report.problems, [checkMessages.preloadRelative(flag, specifier, true)]);
      assertNoCanary(r);
    }
    const text = checkMessages.preloadRelative('--require', 'forktrace/register', true);
    assert.ok(text.includes("node_args: ['--require', require.resolve('forktrace/register')]"), text);

    // interpreter_args (pm2's alias) in fork mode: only a note, since fork mode starts in the app's cwd.
    const fork = await check(['--pm2', ecosystem(t, "exec_mode: 'fork', interpreter_args: '--require forktrace/register'"), '--no-send', '--json']);
    assert.equal(fork.code, 0, fork.stdout);
    assert.deepEqual(byCode(JSON.parse(fork.stdout), 'pm2-preload-relative').map((f) => f.severity), ['note']);

    // An absolute path that does not exist (dist not built): the worker cannot start either.
    const missing = path.join(ROOT, 'dist', 'no-such-register.js');
    const gone = await check(['--pm2', ecosystem(t, `node_args: ['--require', ${JSON.stringify(missing)}]`), '--no-send', '--json']);
    assert.equal(gone.code, 1);
    assert.deepEqual(JSON.parse(gone.stdout).problems, [checkMessages.preloadMissing('--require', missing)]);
  });

  test('settings only in an env_<name> block without --env: a note naming the block and --env (names only); none with --env', async (t) => {
    const file = ecosystem(
      t,
      `env_production: { OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otlp.example.test', FORKTRACE_API_KEY: ${JSON.stringify(CANARY + '-prod')}, OTEL_SERVICE_NAME: 'dx-prod', NODE_ENV: 'production' }`,
    );
    const r = await check(['--pm2', file, '--no-send', '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout);
    // FORKTRACE_API_KEY and OTEL_SERVICE_NAME are also in env, so only the endpoint is missing.
    assert.deepEqual(byCode(report, 'pm2-env-block-not-merged').map((f) => f.text), [
      checkMessages.envBlockNotMerged(['OTEL_EXPORTER_OTLP_ENDPOINT'], 'production'),
    ]);
    assert.equal(
      checkMessages.envBlockNotMerged(['OTEL_EXPORTER_OTLP_ENDPOINT'], 'production'),
      'OTEL_EXPORTER_OTLP_ENDPOINT is set only in env_production, which pm2 applies only with --env production: as checked (no --env), the worker runs without it. Start with pm2 start <file> --env production (and check with --env production), or move it to env.',
    );
    assert.ok(!r.stdout.includes('otlp.example.test'), 'values are not shown');
    assertNoCanary(r);
    const text = await check(['--pm2', file, '--no-send']);
    assert.ok(text.stdout.includes(`  - ${checkMessages.envBlockNotMerged(['OTEL_EXPORTER_OTLP_ENDPOINT'], 'production')}`), text.stdout);

    const merged = await check(['--pm2', file, '--env', 'production', '--no-send', '--json']);
    assert.deepEqual(byCode(JSON.parse(merged.stdout), 'pm2-env-block-not-merged'), []);
    assertNoCanary(merged);
  });
});

describe('check: plain http to a TLS port, answered the way nginx answers it (issue 11)', () => {
  test('nginx\'s 400 "plain HTTP request was sent to HTTPS port" page: a TLS problem with the https:// fix, exit 1', async () => {
    // nginx does not fail the handshake of a plain-http client on its ssl port: it answers an HTTP
    // 400 with this page, so the mistake looked like a bad request, not like TLS.
    const page =
      '<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>\r\n<body>\r\n' +
      '<center><h1>400 Bad Request</h1></center>\r\n<center>The plain HTTP request was sent to HTTPS port</center>\r\n' +
      '<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';
    const url = await serve((req, res) =>
      res.writeHead(400, { server: 'nginx', 'content-type': 'text/html', connection: 'close' }).end(page),
    );
    const r = await check(['--json'], { env: { OTEL_EXPORTER_OTLP_ENDPOINT: url, FORKTRACE_API_KEY: CANARY } });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout);
    const host = new URL(url).host;
    assert.deepEqual(report.problems, [checkMessages.exportFailed(`${url}/v1/traces`, checkMessages.plainHttpToTlsPort(host))]);
    assert.equal(report.export.diagnosis.kind, 'tls');
    assert.match(report.problems[0], /speaks TLS and got plain http.*use https:\/\/ in the endpoint/);
    assertNoCanary(r);
  });
});

describe('check: a TLS certificate issued for another host name (issue 11)', () => {
  test('names the certificate\'s names (from its subjectAltName) instead of blaming the CA; trusted or not', async (t) => {
    // The usual mistake: the endpoint is reached by IP or an internal name, the certificate holds
    // the public name. The server here is 127.0.0.1 with a certificate for otlp.other.test.
    const tls = await tlsOtlpServer(t, { cn: 'otlp.other.test', san: 'DNS:otlp.other.test,DNS:*.other.test' });
    if (tls === undefined) return t.skip('openssl is not available to make a certificate');
    const { certFile, endpoint } = tls;
    const host = new URL(endpoint).host;

    // Its CA trusted (OTEL_EXPORTER_OTLP_CERTIFICATE): only the name is wrong.
    const trusted = await check([], { env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_EXPORTER_OTLP_CERTIFICATE: certFile, FORKTRACE_API_KEY: CANARY } });
    assert.equal(trusted.code, 1, trusted.stdout);
    const text = checkMessages.certOtherHost('ERR_TLS_CERT_ALTNAME_INVALID', host, ['otlp.other.test', '*.other.test'], false);
    assert.ok(trusted.stdout.includes(text), trusted.stdout);
    assert.doesNotMatch(trusted.stdout, /not trusted here/);

    // Not trusted either: both are said.
    const untrusted = await check([], { env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, FORKTRACE_API_KEY: CANARY } });
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stdout, /TLS failed \((DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN)\): the endpoint's certificate was issued for otlp\.other\.test, \*\.other\.test, not for 127\.0\.0\.1:\d+, and its CA is not trusted here either/);
    assert.equal(tls.requests(), 0, 'no request (so no key) went to a server whose certificate was refused');
    assertNoCanary(trusted);
    assertNoCanary(untrusted);
  });
});

describe('check: header values whose percent-encoding is likely wrong (issue 11)', () => {
  test('a key with a literal %2F is sent decoded and refused: the header is named, never its value', async () => {
    // The endpoint knows the key as the vendor printed it, '%2F' and all.
    const vendorKey = `${CANARY}%2Fz`;
    const url = await serve((req, res) =>
      req.headers['x-api-key'] === vendorKey
        ? res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end()
        : res.writeHead(401, { 'content-type': 'text/plain' }).end('bad key'),
    );
    const r = await check(['--json'], { env: { OTEL_EXPORTER_OTLP_ENDPOINT: url, OTEL_EXPORTER_OTLP_HEADERS: `x-api-key=${vendorKey}` } });
    assert.equal(r.code, 1, r.stdout);
    const report = JSON.parse(r.stdout);
    assert.match(report.problems.join('\n'), /HTTP 401/);
    assert.deepEqual(
      report.findings.filter((f) => f.code.startsWith('header-')).map((f) => [f.code, f.severity, f.text]),
      [['header-percent-decoded', 'note', checkMessages.headerPercentDecoded('x-api-key', 'OTEL_EXPORTER_OTLP_HEADERS')]],
    );
    assertNoCanary(r);

    // Written with %25 the key arrives intact: exit 0, with a note that escapes are still sent
    // (right here; the sign of a value encoded twice elsewhere).
    const fixed = await check([], {
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: url, OTEL_EXPORTER_OTLP_HEADERS: `x-api-key=${CANARY}%252Fz`, OTEL_SERVICE_NAME: 'dx' },
    });
    assert.equal(fixed.code, 0, fixed.stdout);
    assert.ok(fixed.stdout.includes(checkMessages.headerEncodedTwice('x-api-key', 'OTEL_EXPORTER_OTLP_HEADERS')), fixed.stdout);
    assertNoCanary(fixed);

    // No escape, no note.
    const plain = await check(['--no-send', '--json'], { env: { OTEL_EXPORTER_OTLP_TRACES_HEADERS: `x-api-key=${CANARY}` } });
    assert.deepEqual(JSON.parse(plain.stdout).findings.filter((f) => f.code.startsWith('header-')), []);
  });
});
