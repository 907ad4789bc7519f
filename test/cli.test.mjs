// The `forktrace` bin (dist/cli/main.js), run as a subprocess the way a user runs it:
//   check  against the project's receiver and against real local servers that fail in each way
//          the issue lists (401, 404, 415, a gRPC-style HTTP/2-only port, closed port, DNS, TLS,
//          timeout, plain http with a key), redaction of a canary key, --pm2 with the root
//          ecosystem file, library versions;
//   tail   trees from a real two-service /hop (two preloaded apps) and from real upstream
//          exporters (--json, colour, late spans); one line per metrics export from the real
//          OTLPMetricExporter;
//   run    the example app with no forktrace import, traced through NODE_OPTIONS; NODE_OPTIONS
//          kept; exit code and signals passed through.
// Not covered: a real gRPC Collector on 4317 (an HTTP/2-only node:http2 server stands in: both
// send an HTTP/2 SETTINGS frame that an HTTP/1.1 client cannot parse), a real vendor endpoint,
// and a TTY (colour is checked through FORCE_COLOR/NO_COLOR).
import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { context, trace, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { TracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { EXAMPLE, REGISTER_CJS, ROOT, byName, cleanEnv, freePort, get, killStarted, spawnNode, tlsOtlpServer } from './helpers.mjs';

const require = createRequire(import.meta.url);
const { startReceiver } = require('../dist/tools/receiver.js');

const BIN = path.join(ROOT, 'dist', 'cli', 'main.js');
const ECOSYSTEM = path.join(ROOT, 'ecosystem.config.js');
const NET_RECORDER = path.join(ROOT, 'test', 'fixtures', 'net-recorder.cjs');
const SERVER_JS = path.join(EXAMPLE, 'server.js');
const SERVER_MJS = path.join(EXAMPLE, 'server.mjs');
const CANARY = 'canary-cli-4e8b1f0a93';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs the bin to completion: { code, signal, stdout, stderr }. */
function bin(args, { env = {}, cwd = ROOT, timeoutMs = 20_000, nodeArgs = [] } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, BIN, ...args], { cwd, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`forktrace ${args.join(' ')} did not finish in ${timeoutMs} ms; stdout: ${stdout}; stderr: ${stderr}`));
    }, timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** A local HTTP server answering every request with `status` (and `body`); closed after the file. */
const servers = [];
async function answering(status, body = '') {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(typeof body === 'function' ? body(req) : body);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  return `http://127.0.0.1:${server.address().port}`;
}

let receiver;
before(async () => {
  receiver = await startReceiver();
});
after(async () => {
  await killStarted();
  await receiver.close();
  for (const s of servers) {
    s.closeAllConnections?.();
    s.close();
  }
});
const receiverBase = () => receiver.url.replace(/\/v1\/traces$/, '');

describe('usage', () => {
  test('--help on every subcommand; wrong usage exits 2 and points at --help', async () => {
    for (const sub of ['check', 'tail', 'run']) {
      const r = await bin([sub, '--help']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^Usage: forktrace ${sub}`));
      assert.match(r.stdout, /Exit codes:/);
    }
    const top = await bin(['--help']);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /check[\s\S]*tail[\s\S]*run/);

    const none = await bin([]);
    assert.equal(none.code, 2);
    const unknown = await bin(['chekc']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "chekc"/);
    const badOption = await bin(['check', '--bogus']);
    assert.equal(badOption.code, 2);
    assert.match(badOption.stderr, /--bogus[\s\S]*See forktrace check --help/);
    const badPort = await bin(['tail', '--port', 'http']);
    assert.equal(badPort.code, 2);
    assert.match(badPort.stderr, /--port must be a whole number/);
    const noCommand = await bin(['run']);
    assert.equal(noCommand.code, 2);
    assert.match(noCommand.stderr, /no command given/);
  });
});

describe('check', () => {
  test('against the real receiver: one empty gzip protobuf export with the key; exit 0', async () => {
    receiver.reset();
    const r = await bin(['check', SERVER_JS], {
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiverBase(), FORKTRACE_API_KEY: CANARY, OTEL_SERVICE_NAME: 'checked-api' },
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`POST ${receiver.url} \\(one empty export\\) -> HTTP 200 in [\\d.]+ ms: ok`));
    assert.match(r.stdout, /OK: nothing wrong found\./);
    assert.match(r.stdout, /service\.name\s+checked-api\s+env\s+OTEL_SERVICE_NAME/);
    assert.match(r.stdout, /endpoint\s+http:\/\/127\.0\.0\.1:\d+\/v1\/traces\s+env\s+OTEL_EXPORTER_OTLP_ENDPOINT/);
    assert.match(r.stdout, /header x-api-key\s+\[REDACTED\]/);
    assert.match(r.stdout, /service\.version\s+1\.2\.3\s+package\.json/, 'the script given names the app package.json');
    // Libraries are resolved from the app's folder (examples/express-mysql2 → the repo's node_modules).
    assert.match(r.stdout, /express\s+5\.\d+\.\d+\s+supported \(>=4\.0\.0 <6\)/);
    assert.match(r.stdout, /mysql2\s+3\.\d+\.\d+\s+supported \(>=1\.4\.2 <4\)/);
    assert.ok(!r.stdout.includes(CANARY) && !r.stderr.includes(CANARY));

    // What the receiver decoded: exactly one request, no spans, as a worker's exporter sends it.
    assert.equal(receiver.requests.length, 1);
    const [req] = receiver.requests;
    assert.equal(req.status, 200);
    assert.equal(req.spanCount, 0);
    assert.equal(req.contentType, 'application/x-protobuf');
    assert.equal(req.contentEncoding, 'gzip');
    assert.equal(req.headers['x-api-key'], CANARY, 'the configured key header was sent');
  });

  test('--json: settings with sources, the export result and libraries as data', async () => {
    const r = await bin(['check', '--json', SERVER_JS], {
      env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_COMPRESSION: 'none' },
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.ok, true);
    assert.deepEqual(report.settings.endpoint, {
      value: receiver.url,
      source: 'env',
      variable: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
    });
    assert.deepEqual(report.settings.compression, { value: 'none', source: 'env', variable: 'OTEL_EXPORTER_OTLP_COMPRESSION' });
    assert.equal(report.settings.sampler.source, 'default');
    assert.equal(report.export.sent, true);
    assert.equal(report.export.status, 200);
    assert.equal(typeof report.export.latencyMs, 'number');
    assert.equal(report.export.diagnosis.kind, 'ok');
    const libs = Object.fromEntries(report.libraries.list.map((l) => [l.name, l]));
    assert.equal(libs.express.version, require('express/package.json').version);
    assert.equal(libs.express.supported, true);
    assert.equal(libs.mysql2.version, require('mysql2/package.json').version);
    assert.equal(libs.mysql2.supported, true);
    assert.equal(libs.http.supported, true);
    assert.deepEqual(report.problems, []);
  });

  test('a closed port: connection refused, exit 1', async () => {
    const port = await freePort();
    const r = await bin(['check'], { env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` } });
    assert.equal(r.code, 1);
    assert.match(r.stdout, new RegExp(`connection refused: nothing is listening at that host and port \\(127\\.0\\.0\\.1:${port}\\)`));
    assert.match(r.stdout, /1 problem found/);
  });

  test('HTTP 401: the key or its header name is wrong; the endpoint\'s words are shown, scrubbed', async () => {
    // An endpoint that echoes the key it got: the report must still not contain it.
    const url = await answering(401, (req) => `invalid key ${req.headers['x-api-key']}`);
    const r = await bin(['check'], { env: { OTEL_EXPORTER_OTLP_ENDPOINT: url, FORKTRACE_API_KEY: CANARY } });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /HTTP 401: the API key or its header name is wrong/);
    assert.match(r.stdout, /the endpoint said: invalid key \[REDACTED\]/);
    assert.ok(!r.stdout.includes(CANARY));
  });

  test('HTTP 404: names the URL tried and the fix, for a missing and for a doubled /v1/traces', async () => {
    const url = await answering(404, 'not found');
    const missing = await bin(['check'], { env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: url } });
    assert.equal(missing.code, 1);
    assert.match(missing.stdout, new RegExp(`HTTP 404: no OTLP traces endpoint at ${url}/ \\(the URL does not end in /v1/traces`));
    const doubled = await bin(['check'], { env: { OTEL_EXPORTER_OTLP_ENDPOINT: `${url}/v1/traces` } });
    assert.equal(doubled.code, 1);
    assert.match(doubled.stdout, new RegExp(`HTTP 404: no OTLP traces endpoint at ${url}/v1/traces/v1/traces \\(/v1/traces appears twice`));
  });

  test('HTTP 415: not an OTLP/HTTP protobuf endpoint, with the gRPC port hint', async () => {
    const url = await answering(415, '');
    const r = await bin(['check'], { env: { OTEL_EXPORTER_OTLP_ENDPOINT: url } });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /HTTP 415: the endpoint does not take OTLP\/HTTP protobuf \(is it a gRPC port such as 4317\?/);
  });

  test('an HTTP/2-only (gRPC-style) port: "is this the gRPC port 4317? OTLP/HTTP is 4318"', async () => {
    const h2 = http2.createServer();
    h2.listen(0, '127.0.0.1');
    await once(h2, 'listening');
    try {
      const r = await bin(['check'], { env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${h2.address().port}` } });
      assert.equal(r.code, 1);
      assert.match(r.stdout, /127\.0\.0\.1:\d+: the endpoint did not answer in HTTP\/1\.1 \(HPE_[A-Z_]+\): is this the gRPC port 4317\? OTLP\/HTTP is 4318/);
    } finally {
      h2.close();
    }
  });

  test('a host that does not resolve (.invalid): DNS diagnosis, exit 1', async () => {
    // The net recorder answers .invalid locally (RFC 6761), so no query leaves the machine.
    const r = await bin(['check'], {
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector.invalid:4318' },
      nodeArgs: ['--require', NET_RECORDER],
    });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /the host name does not resolve \(DNS\): "collector\.invalid"/);
  });

  test('an API key over plain http to another host: warned, and the check itself does not send it', async () => {
    const log = path.join(os.tmpdir(), `forktrace-cli-net-${process.pid}.jsonl`);
    try {
      // 192.0.2.1 is TEST-NET-1; the recorder logs every connect attempt, of which there must be none.
      const r = await bin(['check', '--timeout', '200'], {
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://192.0.2.1:4318', FORKTRACE_API_KEY: CANARY, NET_LOG_FILE: log },
        nodeArgs: ['--require', NET_RECORDER],
      });
      assert.equal(r.code, 1);
      assert.match(r.stdout, /x-api-key[^\n]*unencrypted[^\n]*192\.0\.2\.1/);
      assert.match(r.stdout, /not sent: it would carry the credentials unencrypted/);
      assert.ok(!r.stdout.includes(CANARY));
      const attempts = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter((l) => l.includes('192.0.2.1')) : [];
      assert.deepEqual(attempts, [], 'no connection to the remote host was attempted');

      // --no-send: the same warning, from the configuration alone.
      const quiet = await bin(['check', '--no-send'], {
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://192.0.2.1:4318', FORKTRACE_API_KEY: CANARY },
      });
      assert.equal(quiet.code, 1);
      assert.match(quiet.stdout, /unencrypted/);
      assert.match(quiet.stdout, /not sent \(--no-send\)/);
    } finally {
      fs.rmSync(log, { force: true });
    }
  });

  test('TLS: https to a plain http port fails the handshake; an untrusted certificate, then trusted via OTEL_EXPORTER_OTLP_CERTIFICATE', async (t) => {
    const plain = await bin(['check'], { env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiverBase().replace('http:', 'https:') } });
    assert.equal(plain.code, 1);
    assert.match(plain.stdout, /TLS failed/);

    const tls = await tlsOtlpServer(t, { san: 'IP:127.0.0.1' });
    if (tls === undefined) return t.skip('openssl is not available to make a certificate');
    const { certFile, endpoint } = tls;
    const untrusted = await bin(['check'], { env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint } });
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stdout, /TLS failed \(DEPTH_ZERO_SELF_SIGNED_CERT|TLS failed \(SELF_SIGNED/);
    const trusted = await bin(['check'], { env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_EXPORTER_OTLP_CERTIFICATE: certFile } });
    assert.equal(trusted.code, 0, trusted.stdout);
    assert.match(trusted.stdout, /HTTP 200 in [\d.]+ ms: ok/);
  });

  test('timeout: an endpoint that never answers', async () => {
    const hanging = await startReceiver({ respond: () => 'hang' });
    try {
      const r = await bin(['check', '--timeout', '300'], { env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: hanging.url } });
      assert.equal(r.code, 1);
      assert.match(r.stdout, /no answer within 300 ms from 127\.0\.0\.1:\d+/);
    } finally {
      await hanging.close();
    }
  });

  test('redaction: a canary in FORKTRACE_API_KEY, OTEL_EXPORTER_OTLP_HEADERS and URL userinfo never appears, text or JSON', async () => {
    const url = await answering(401, (req) => `rejected ${req.headers.authorization} ${req.headers['x-api-key']} ${req.headers['x-team']}`);
    const u = new URL(url);
    const env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://svc-user:${CANARY}-pass@${u.host}`,
      FORKTRACE_API_KEY: `${CANARY}-key`,
      OTEL_EXPORTER_OTLP_HEADERS: `x-team=${CANARY}-header,broken-pair`,
    };
    const basic = Buffer.from(`svc-user:${CANARY}-pass`).toString('base64');
    for (const args of [['check'], ['check', '--json'], ['check', '--no-send', '--json']]) {
      const r = await bin(args, { env });
      const all = r.stdout + r.stderr;
      assert.equal(r.code, 1);
      assert.ok(!all.includes(CANARY), `${args.join(' ')} printed the canary:\n${all}`);
      assert.ok(!all.includes(basic), `${args.join(' ')} printed the Basic credentials`);
      assert.ok(!all.includes('svc-user'), `${args.join(' ')} printed the URL user`);
      if (args.includes('--json')) {
        const report = JSON.parse(r.stdout);
        assert.equal(report.settings['headers.x-team'].value, '[REDACTED]');
        assert.equal(report.settings['headers.authorization'].source, 'endpoint URL');
        assert.equal(report.settings.endpoint.value, `${url}/v1/traces`);
        assert.ok(report.problems.some((p) => /OTEL_EXPORTER_OTLP_HEADERS: header "#2" has no '='/.test(p)));
      }
    }
  });

  test('--pm2 with the root ecosystem file: the app env is sourced from "pm2 env"', async () => {
    receiver.reset();
    // The ecosystem file reads these from the shell that runs pm2 (here: check) when loaded.
    const r = await bin(['check', '--pm2', ECOSYSTEM, '--json'], {
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiverBase(), EXAMPLE_API_KEY: CANARY, OTEL_BSP_SCHEDULE_DELAY: '700' },
      cwd: os.tmpdir(),
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.ok(!r.stdout.includes(CANARY));
    const report = JSON.parse(r.stdout);
    const app = require(ECOSYSTEM).apps[0];
    assert.deepEqual(report.target, {
      kind: 'pm2',
      file: ECOSYSTEM,
      app: app.name,
      cwd: app.cwd,
      script: path.join(app.cwd, app.script),
    });
    assert.deepEqual(report.settings.serviceName, { value: 'forktrace-example', source: 'pm2 env', variable: 'OTEL_SERVICE_NAME' });
    assert.deepEqual(report.settings.endpoint, { value: receiver.url, source: 'pm2 env', variable: 'OTEL_EXPORTER_OTLP_ENDPOINT' });
    assert.deepEqual(report.settings.environment, { value: 'production', source: 'pm2 env', variable: 'NODE_ENV' });
    assert.deepEqual(report.settings.excludedUrls, { value: ['/^\\/health$/'], source: 'pm2 env', variable: 'FORKTRACE_EXCLUDED_URLS' });
    assert.deepEqual(report.settings.apiKey, { value: 'set (sent in x-api-key)', source: 'pm2 env', variable: 'FORKTRACE_API_KEY' });
    // Not in the app's env block: from the shell, as the worker would also see it.
    assert.deepEqual(report.settings['batch.scheduledDelayMillis'], { value: 700, source: 'env', variable: 'OTEL_BSP_SCHEDULE_DELAY' });
    // service.version from the app's own package.json, found from pm2's script path.
    assert.deepEqual(report.settings.serviceVersion, { value: '1.2.3', source: 'package.json' });
    assert.equal(report.libraries.resolvedFrom, app.cwd);
    assert.equal(report.export.status, 200);
    assert.equal(receiver.requests.at(-1).headers['x-api-key'], CANARY);

    const text = await bin(['check', '--pm2', ECOSYSTEM], { env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiverBase() } });
    assert.equal(text.code, 0, text.stdout);
    assert.match(text.stdout, /pm2 app "forktrace-example" from /);
    assert.match(text.stdout, /service\.name\s+forktrace-example\s+pm2 env\s+OTEL_SERVICE_NAME/);

    const wrongApp = await bin(['check', '--pm2', ECOSYSTEM, '--app', 'nope']);
    assert.equal(wrongApp.code, 2);
    assert.match(wrongApp.stderr, /no app named "nope" in .*ecosystem\.config\.js; it has: "forktrace-example"/);
    const missing = await bin(['check', '--pm2', 'no-such-ecosystem.config.js']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /ecosystem file not found: .*no-such-ecosystem\.config\.js/);
  });

  test('--pm2: numbers and booleans in the app env apply, as pm2 applies them; a null is named (values never shown)', async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forktrace-cli-eco-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'ecosystem.config.js');
    fs.writeFileSync(
      file,
      `module.exports = { apps: [{ name: 'num', script: ${JSON.stringify(SERVER_JS)}, env: {
        OTEL_SERVICE_NAME: 'num', OTEL_BSP_SCHEDULE_DELAY: 300, FORKTRACE_MASK_DB_STATEMENTS: false, FORKTRACE_API_KEY: 987654321987, OTEL_LOG_LEVEL: null } }] };`,
    );
    const r = await bin(['check', '--pm2', file, '--no-send', '--json']);
    assert.equal(r.code, 1);
    const report = JSON.parse(r.stdout);
    assert.deepEqual(report.problems, [
      "OTEL_LOG_LEVEL in the app's env is null, which forktrace's preload does not read from pm2_env: the worker starts without it. Write the value as a string (in quotes).",
    ]);
    // What the worker runs with: pm2 keeps numbers and booleans in pm2_env and the preload reads
    // them as pm2 will write them into process.env.
    assert.deepEqual(report.settings.serviceName, { value: 'num', source: 'pm2 env', variable: 'OTEL_SERVICE_NAME' });
    assert.deepEqual(report.settings['batch.scheduledDelayMillis'], { value: 300, source: 'pm2 env', variable: 'OTEL_BSP_SCHEDULE_DELAY' });
    assert.equal(report.settings.maskDbStatements.value, false);
    assert.ok(!r.stdout.includes('987654321987'), 'a numeric API key is a secret too');
  });

  test('an unknown variable: its nearest known name, in the shell or in the pm2 env block; another signal\'s is only a note (issue 11)', async (t) => {
    const { checkMessages } = require('../dist/tools/check/messages.js');
    // In the shell: the key goes nowhere, and check says which name was meant, never the value.
    const shell = await bin(['check', '--no-send', '--json', SERVER_JS], {
      env: { OTEL_SERVICE_NAME: 'typo-app', FORKTRACE_APIKEY: CANARY, OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: 'http://127.0.0.1:9/x' },
    });
    assert.equal(shell.code, 1, shell.stdout + shell.stderr);
    const report = JSON.parse(shell.stdout);
    assert.deepEqual(report.problems, [checkMessages.misspeltVariable('FORKTRACE_APIKEY', '', 'FORKTRACE_API_KEY')]);
    assert.deepEqual(report.notes, [checkMessages.otherOtelVariable('OTEL_EXPORTER_OTLP_LOGS_ENDPOINT', '')]);
    assert.deepEqual(
      report.findings.filter((f) => f.code === 'unknown-variable').map((f) => [f.setting, f.severity]),
      [['apiKey', 'problem'], [undefined, 'note']],
    );
    assert.equal(report.settings.apiKey.value, 'not set', 'the worker would run without the key');
    assert.ok(!shell.stdout.includes(CANARY));

    // In an ecosystem file's env block: named as such; text output lists it among the problems.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forktrace-cli-typo-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'ecosystem.config.js');
    fs.writeFileSync(file, `module.exports = { apps: [{ name: 'typo', script: ${JSON.stringify(SERVER_JS)}, env: { OTEL_SERVICE_NAME: 'typo', OTEL_EXPORTER_OTLP_ENDPIONT: 'http://127.0.0.1:4318', FORKTRACE_DEBUG: 'true' } }] };`);
    const pm2 = await bin(['check', '--pm2', file, '--no-send']);
    assert.equal(pm2.code, 1, pm2.stdout + pm2.stderr);
    assert.ok(pm2.stdout.includes(`x ${checkMessages.misspeltVariable('OTEL_EXPORTER_OTLP_ENDPIONT', checkMessages.inPm2Env, 'OTEL_EXPORTER_OTLP_ENDPOINT')}`), pm2.stdout);
    assert.ok(pm2.stdout.includes(`x ${checkMessages.unknownForktraceVariable('FORKTRACE_DEBUG', checkMessages.inPm2Env)}`), pm2.stdout);
    assert.match(pm2.stdout, /2 problems found/);
  });

  test('libraries: an unsupported express version is a problem; a missing one is only listed', async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forktrace-cli-app-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'old-app', version: '0.0.1' }));
    fs.writeFileSync(path.join(dir, 'server.js'), '');
    fs.mkdirSync(path.join(dir, 'node_modules', 'express'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'node_modules', 'express', 'package.json'), JSON.stringify({ name: 'express', version: '3.21.2' }));
    const r = await bin(['check', '--no-send', '--json', path.join(dir, 'server.js')], { cwd: dir });
    assert.equal(r.code, 1);
    const report = JSON.parse(r.stdout);
    const libs = Object.fromEntries(report.libraries.list.map((l) => [l.name, l]));
    assert.deepEqual(
      { installed: libs.express.installed, version: libs.express.version, supported: libs.express.supported },
      { installed: true, version: '3.21.2', supported: false },
    );
    assert.equal(libs.mysql2.installed, false);
    assert.deepEqual(report.problems, ['express 3.21.2 is installed but the instrumentation supports >=4.0.0 <6: its spans will be missing.']);
    assert.deepEqual(report.settings.serviceName, { value: 'old-app', source: 'package.json' });
  });
});

/** Starts `forktrace tail` on a free port; resolves once it listens. */
async function startTail(args = [], env = {}) {
  const proc = spawnNode([BIN, 'tail', '--port', '0', ...args], { env, readyKey: '__never__' });
  for (let i = 0; i < 100 && !/receiving OTLP\/HTTP at /.test(proc.stderr); i++) await sleep(50);
  const m = /receiving OTLP\/HTTP at (http:\/\/127\.0\.0\.1:(\d+))\/v1\/traces/.exec(proc.stderr);
  assert.ok(m, `tail did not start: ${proc.stderr}`);
  return { proc, base: m[1] };
}

/** The printed trace blocks (separated by blank lines), each as its lines. */
function blocks(stdout) {
  return stdout
    .split(/\n\n+/)
    .map((b) => b.split('\n').filter((l) => l !== ''))
    .filter((b) => b.length > 0);
}

/** A tree line's depth: its prefix ("│  ", "   ", "├─ ", "└─ ") is three columns per level. */
function depthOf(line) {
  const m = /^([│├└─ ]*)/.exec(line);
  return m[1].length / 3;
}

describe('tail', () => {
  test('a real two-service /hop (two preloaded apps, separate processes and batches) prints as one tree', async () => {
    const { proc: tail, base } = await startTail(['--settle', '1500']);
    const common = { OTEL_EXPORTER_OTLP_ENDPOINT: base, PORT: '0' };
    // inventory exports after 50 ms, the api after 600 ms: the trace's spans reach tail in two
    // batches from two processes, about half a second apart.
    const inventory = spawnNode(['--require', REGISTER_CJS, SERVER_JS], {
      cwd: EXAMPLE,
      env: { ...common, OTEL_SERVICE_NAME: 'inventory', OTEL_BSP_SCHEDULE_DELAY: '50' },
    });
    const { listening: invPort, pid: invPid } = await inventory.ready;
    const api = spawnNode(['--require', REGISTER_CJS, SERVER_JS], {
      cwd: EXAMPLE,
      env: { ...common, OTEL_SERVICE_NAME: 'api', OTEL_BSP_SCHEDULE_DELAY: '600', DOWNSTREAM_URL: `http://127.0.0.1:${invPort}/hello` },
    });
    const { listening: apiPort, pid: apiPid } = await api.ready;
    assert.equal((await get(`http://127.0.0.1:${apiPort}/hop`)).status, 200);

    for (let i = 0; i < 100 && !blocks(tail.stdout).some((b) => b[0].includes('5 spans')); i++) await sleep(100);
    await tail.kill('SIGTERM');
    const exit = await tail.exited;
    assert.equal(exit.code, 0);
    assert.match(tail.stderr, /stopped \(SIGTERM\); 5 spans in 1 trace\./);

    // Expected, as one tree (ids and timings vary):
    //   trace <id>  5 spans, 2 services (api, inventory), …
    //   GET /hop                              … 200  [api pid A]
    //   └─ request handler - /hop             …      [api pid A]
    //      └─ GET                             … 200  http://127.0.0.1:P/hello  [api pid A]
    //         └─ GET /hello                   … 200  [inventory pid I]
    //            └─ request handler - /hello  …      [inventory pid I]
    const printed = blocks(tail.stdout);
    assert.equal(printed.length, 1, `one tree expected:\n${tail.stdout}`);
    const [head, ...rows] = printed[0];
    assert.match(head, /^trace [0-9a-f]{32} {2}5 spans, 2 services \(api, inventory\), /);
    const expected = [
      ['GET /hop', 0, `[api pid ${apiPid}]`],
      ['request handler - /hop', 1, `[api pid ${apiPid}]`],
      ['GET', 2, `[api pid ${apiPid}]`],
      ['GET /hello', 3, `[inventory pid ${invPid}]`],
      ['request handler - /hello', 4, `[inventory pid ${invPid}]`],
    ];
    assert.equal(rows.length, expected.length, rows.join('\n'));
    rows.forEach((line, i) => {
      const [name, depth, where] = expected[i];
      assert.equal(depthOf(line), depth, `depth of line ${i}: ${line}`);
      assert.equal(line.slice(depth * 3).split(/\s{2,}/)[0].trim(), name, line);
      assert.ok(line.includes(where), `${line} should say ${where}`);
      assert.ok(!line.includes('parent not received'), line);
    });
    assert.match(rows[0], / 200 /, 'the server span shows its status code');
    assert.match(rows[2], new RegExp(`http://127\\.0\\.0\\.1:${invPort}/hello`), 'the client span shows url.full');
    await Promise.all([inventory.kill(), api.kill()]);
  });

  test('--json and --save: one span per line; colour only when forced; a late span prints as "continued"', async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forktrace-cli-tail-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const saved = path.join(dir, 'spans.jsonl');
    const json = await startTail(['--json']);
    const trees = await startTail(['--settle', '300', '--save', saved], { FORCE_COLOR: '1' });
    const plain = await startTail(['--settle', '300'], { FORCE_COLOR: '1', NO_COLOR: '1' });

    // Two "services" with real upstream exporters: frontend (server + client), backend (server,
    // child of the client span), each its own provider and export request.
    const provider = (service, pid, worker, url) =>
      new TracerProvider({
        resource: resourceFromAttributes({ 'service.name': service, 'process.pid': pid, 'forktrace.worker.index': worker }),
        spanProcessors: [new SimpleSpanProcessor({ exporter: new OTLPTraceExporter({ url }) })],
      });
    const send = async (url) => {
      const front = provider('frontend', 1111, 0, url);
      const back = provider('backend', 2222, 1, url);
      const ft = front.getTracer('t');
      const root = ft.startSpan('GET /checkout', { kind: SpanKind.SERVER, attributes: { 'http.route': '/checkout', 'http.response.status_code': 500 } });
      const client = ft.startSpan('GET', { kind: SpanKind.CLIENT, attributes: { 'url.full': 'http://backend/stock' } }, trace.setSpan(context.active(), root));
      const server = back.getTracer('t').startSpan('GET /stock', { kind: SpanKind.SERVER }, trace.setSpan(context.active(), client));
      server.setStatus({ code: SpanStatusCode.ERROR, message: 'out of stock' });
      server.end();
      await back.forceFlush();
      client.end();
      await front.forceFlush();
      await sleep(450); // past the 300 ms settle: the root now arrives late
      root.end();
      await front.forceFlush();
      await Promise.all([front.shutdown(), back.shutdown()]);
      return root.spanContext().traceId;
    };
    const traceId = await send(`${json.base}/v1/traces`);
    await send(`${trees.base}/v1/traces`);
    await send(`${plain.base}/v1/traces`);
    await sleep(600);
    for (const x of [json, trees, plain]) {
      await x.proc.kill('SIGTERM');
      assert.equal((await x.proc.exited).code, 0);
    }

    const lines = json.proc.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.map((s) => [s.name, s.service, s.pid, s.workerIndex, s.kind]),
      [
        ['GET /stock', 'backend', 2222, 1, 'server'],
        ['GET', 'frontend', 1111, 0, 'client'],
        ['GET /checkout', 'frontend', 1111, 0, 'server'],
      ],
    );
    assert.ok(lines.every((s) => s.traceId === traceId));
    assert.equal(lines[0].parentSpanId, lines[1].spanId);
    assert.equal(lines[1].parentSpanId, lines[2].spanId);
    assert.deepEqual(lines[0].status, { code: 2, message: 'out of stock' });
    assert.equal(typeof lines[2].startTimeUnixNano, 'string');

    const savedLines = fs.readFileSync(saved, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(savedLines.map((s) => s.name), ['GET /stock', 'GET', 'GET /checkout']);

    // FORCE_COLOR colours; NO_COLOR wins over it.
    assert.ok(trees.proc.stdout.includes('\x1b['), 'FORCE_COLOR=1 gives ANSI colours');
    assert.ok(!plain.proc.stdout.includes('\x1b['), 'NO_COLOR wins over FORCE_COLOR');
    // The client and backend spans settle first; the root arrives after, as a continuation:
    //   trace <id>  2 spans, 2 services (frontend, backend), …
    //   GET            …   http://backend/stock  [frontend pid 1111 w0] (parent not received)
    //   └─ GET /stock  … ERROR  "out of stock"  [backend pid 2222 w1]
    //   trace (continued) <id>  1 span, 1 service (frontend), …
    //   GET /checkout  … route=… no: the name has it; 500  [frontend pid 1111 w0]
    const printed = blocks(plain.proc.stdout);
    assert.equal(printed.length, 2, plain.proc.stdout);
    assert.match(printed[0][0], /^trace [0-9a-f]{32} {2}2 spans, 2 services \(frontend, backend\)/);
    assert.match(printed[0][1], /^GET .*http:\/\/backend\/stock {2}\[frontend pid 1111 w0\] \(parent not received\)$/);
    assert.match(printed[0][2], /^└─ GET \/stock .*ERROR.*"out of stock" {2}\[backend pid 2222 w1\]$/);
    assert.match(printed[1][0], /^trace \(continued\) [0-9a-f]{32} {2}1 span, 1 service \(frontend\)/);
    assert.match(printed[1][1], /^GET \/checkout .* 500 {2}\[frontend pid 1111 w0\]$/);
  });

  test('metrics: one line per export, set apart from the trees; with --json on stderr, so stdout stays spans', async () => {
    const trees = await startTail(['--settle', '200']);
    const json = await startTail(['--json']);
    // A reader collected by hand, so each tail gets exactly one export from the real exporter.
    class HandReader extends MetricReader {
      async onShutdown() {}
      async onForceFlush() {}
    }
    const send = async (base) => {
      const reader = new HandReader();
      const meters = new MeterProvider({ resource: resourceFromAttributes({ 'service.name': 'api' }), readers: [reader] });
      const meter = meters.getMeter('t');
      const duration = meter.createHistogram('http.server.request.duration', { unit: 's' });
      for (const route of ['/a', '/b', '/c']) duration.record(0.1, { 'http.route': route });
      meter.createCounter('jobs').add(2);
      const { resourceMetrics } = await reader.collect();
      const exporter = new OTLPMetricExporter({ url: `${base}/v1/metrics` });
      const result = await new Promise((resolve) => exporter.export(resourceMetrics, resolve));
      assert.equal(result.code, 0, `metrics export failed: ${result.error}`);
      await Promise.all([exporter.shutdown(), meters.shutdown()]);
      const tracer = new TracerProvider({
        resource: resourceFromAttributes({ 'service.name': 'api', 'process.pid': 4242 }),
        spanProcessors: [new SimpleSpanProcessor({ exporter: new OTLPTraceExporter({ url: `${base}/v1/traces` }) })],
      });
      tracer.getTracer('t').startSpan('GET /a', { kind: SpanKind.SERVER }).end();
      await tracer.shutdown();
    };
    await send(trees.base);
    await send(json.base);
    for (let i = 0; i < 50 && !trees.proc.stdout.includes('trace '); i++) await sleep(100);
    for (const x of [trees, json]) {
      await x.proc.kill('SIGTERM');
      assert.equal((await x.proc.exited).code, 0);
    }

    //   metrics  api  4 points: http.server.request.duration (histogram, 3 series), jobs (sum, 1 series)
    //
    //   trace <id>  1 span, 1 service (api), …
    //   GET /a  …  [api pid 4242]
    const line = 'metrics  api  4 points: http.server.request.duration (histogram, 3 series), jobs (sum, 1 series)';
    const printed = blocks(trees.proc.stdout);
    assert.deepEqual(printed[0], [line], trees.proc.stdout);
    assert.equal(printed.length, 2, trees.proc.stdout);
    assert.match(printed[1][0], /^trace [0-9a-f]{32} {2}1 span, 1 service \(api\), /);
    assert.match(printed[1][1], /^GET \/a .*\[api pid 4242\]$/);
    assert.match(trees.proc.stderr, /stopped \(SIGTERM\); 1 span in 1 trace, 4 metric points\./);
    assert.match(trees.proc.stderr, /receiving OTLP\/HTTP at http:\/\/127\.0\.0\.1:\d+\/v1\/traces and http:\/\/127\.0\.0\.1:\d+\/v1\/metrics;/);

    const spans = json.proc.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(spans.map((s) => s.name), ['GET /a']);
    assert.ok(json.proc.stderr.includes(`\n${line}\n`), json.proc.stderr);
    assert.doesNotMatch(json.proc.stderr, /rejected a request/);
    assert.doesNotMatch(trees.proc.stderr, /rejected a request/);
  });

  test('a port in use: one clear line, exit 1', async () => {
    const { proc, base } = await startTail();
    const port = new URL(base).port;
    const second = await bin(['tail', '--port', port]);
    assert.equal(second.code, 1);
    assert.match(second.stderr, new RegExp(`cannot listen: port ${port} on 127\\.0\\.0\\.1 is in use`));
    await proc.kill('SIGINT');
    assert.equal((await proc.exited).code, 0);
  });
});

describe('run', () => {
  test('traces the example app (no forktrace import) through NODE_OPTIONS; SIGTERM reaches it and its spans are flushed', async () => {
    receiver.reset();
    // A 60 s batch delay: the spans can only arrive through the flush on the forwarded SIGTERM.
    const run = spawnNode([BIN, 'run', '--', process.execPath, 'server.js'], {
      cwd: EXAMPLE,
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiverBase(), OTEL_BSP_SCHEDULE_DELAY: '60000', PORT: '0' },
    });
    const { listening: port, pid: appPid } = await run.ready;
    assert.notEqual(appPid, run.pid, 'the app is a child of forktrace run');
    assert.equal((await get(`http://127.0.0.1:${port}/hello`)).status, 200);
    await sleep(200);
    assert.equal(byName(receiver.spans, 'GET /hello').length, 0, 'nothing exported before the stop');
    run.child.kill('SIGTERM');
    const exit = await run.exited;
    assert.equal(exit.signal, 'SIGTERM', 'forktrace run ends by the signal its command ended by');
    const spans = await receiver.waitFor((s) => byName(s, 'GET /hello').length === 1, 5000);
    const [server] = byName(spans, 'GET /hello');
    assert.equal(server.resource['process.pid'], appPid);
    assert.equal(server.resource['service.name'], 'express-mysql2-example');
    assert.match(run.stderr, new RegExp(`forktrace: tracing express-mysql2-example \\(pid ${appPid}\\)`));
  });

  test('--esm: the ESM app through --import; SIGINT is forwarded when stdin is not a terminal', async () => {
    receiver.reset();
    const run = spawnNode([BIN, 'run', '--esm', '--', process.execPath, SERVER_MJS], {
      cwd: EXAMPLE,
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiverBase(), OTEL_BSP_SCHEDULE_DELAY: '60000', PORT: '0' },
    });
    const { listening: port, pid: appPid } = await run.ready;
    assert.equal((await get(`http://127.0.0.1:${port}/hello`)).status, 200);
    run.child.kill('SIGINT');
    assert.equal((await run.exited).signal, 'SIGINT');
    const spans = await receiver.waitFor((s) => byName(s, 'GET /hello').length === 1, 5000);
    const [server] = byName(spans, 'GET /hello');
    assert.equal(server.resource['process.pid'], appPid);
    // express came in through `import`: only the ESM hook makes its handler span exist.
    assert.ok(spans.some((s) => s.name === 'request handler - /hello' && s.parentSpanId === server.spanId));
  });

  test('keeps the NODE_OPTIONS already set, quotes a path with spaces, passes the exit code through', async (t) => {
    // dist/ copied under a folder with a space, using the repo's node_modules.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forktrace cli run '));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.cpSync(path.join(ROOT, 'dist'), path.join(dir, 'dist'), { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
    const probe =
      "const s = globalThis[Symbol.for('forktrace.state')];" +
      "console.log(JSON.stringify({ nodeOptions: process.env.NODE_OPTIONS, maxHeaderSize: require('http').maxHeaderSize, traced: !!(s && s.handle.active) }));" +
      'process.exit(7)';
    const r = await new Promise((resolve) => {
      const child = spawn(process.execPath, [path.join(dir, 'dist', 'cli', 'main.js'), 'run', '--', process.execPath, '-e', probe], {
        env: cleanEnv({ NODE_OPTIONS: '--max-http-header-size=12345', OTEL_TRACES_EXPORTER: 'none', OTEL_SERVICE_NAME: 'probe' }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (c) => (stdout += c));
      child.once('exit', (code) => resolve({ code, stdout }));
    });
    assert.equal(r.code, 7, 'the exit code is passed through');
    const seen = JSON.parse(r.stdout);
    assert.equal(seen.nodeOptions, `--require "${path.join(dir, 'dist', 'register.js')}" --max-http-header-size=12345`);
    assert.equal(seen.maxHeaderSize, 12345, 'the user\'s NODE_OPTIONS still apply');
    assert.equal(seen.traced, true, 'the preload ran from the path with spaces');

    const missing = await bin(['run', '--', 'forktrace-no-such-command-xyz']);
    assert.equal(missing.code, 127);
    assert.match(missing.stderr, /forktrace-no-such-command-xyz: command not found/);
  });
});
