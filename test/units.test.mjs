// Pure functions, tested in process: no spawned app, no socket, no timer of the real clock.
// They import the built files (`npm run build`, as `npm test` does first). What the spawned tests
// show end to end (cli.test.mjs: check and tail as a user runs them) is not repeated here; these
// pin the cases that are slow or hard to provoke for real: each kind of probe failure, each form
// of version range, a trace whose parent never arrives, a span that arrives after its trace was
// printed.
import { mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { describeProbeError } = require('../dist/tools/check/diagnosis.js');
const { checkMessages } = require('../dist/tools/check/messages.js');
const { satisfies } = require('../dist/tools/check/libraries.js');
const { runCheck, unknownVariableFindings } = require('../dist/tools/check/run.js');
const { configMessages } = require('../dist/worker/messages.js');
const { editDistance, nearestKnown, unknownVariables } = require('../dist/tools/check/variables.js');
const { pm2EnvNotRead } = require('../dist/tools/check/pm2-app.js');
const { TraceAssembler } = require('../dist/tools/trace-assembler.js');
const { renderTrace, spanJson } = require('../dist/cli/tail.js');
const { statusLine } = require('../dist/worker/instrument.js');
const { isLoopbackHost, plainHttpOffHost, resolveConfig } = require('../dist/config/resolve.js');

const err = (code, message = code) => Object.assign(new Error(message), { code });

test('probe errors: each failure named with its fix, never a bare code', () => {
  const cases = [
    // [error, url, opts, kind, text]
    [err('ECONNREFUSED'), 'http://127.0.0.1:4318/v1/traces', {}, 'refused', 'connection refused: nothing is listening at that host and port (127.0.0.1:4318)'],
    [err('ENOTFOUND'), 'http://collector.invalid:4318/v1/traces', {}, 'dns', 'the host name does not resolve (DNS): "collector.invalid"'],
    [err('ETIMEDOUT'), 'http://10.1.2.3:4318/v1/traces', { timeoutMs: 300 }, 'timeout', checkMessages.timeout(300, '10.1.2.3:4318')],
    [err('ECONNRESET'), 'http://127.0.0.1:4317/v1/traces', {}, 'protocol', `the connection was reset by the other side: ${checkMessages.grpcHint}`],
    [err('ECONNRESET'), 'http://127.0.0.1:4318/v1/traces', {}, 'reset', 'the connection was reset by the other side'],
    [err('HPE_INVALID_CONSTANT'), 'http://127.0.0.1:4317/v1/traces', {}, 'protocol', `127.0.0.1:4317: the endpoint did not answer in HTTP/1.1 (HPE_INVALID_CONSTANT): is this the gRPC port 4317? OTLP/HTTP is 4318${checkMessages.tryPort4318}`],
    // A TLS handshake that never completed, with a code describeExportError does not know.
    [err('EWEIRD', 'socket hang up'), 'https://otlp.example.com/v1/traces', { tlsConnected: false }, 'tls', checkMessages.tlsFailed('EWEIRD')],
  ];
  for (const [error, url, opts, kind, text] of cases) {
    assert.deepEqual(describeProbeError(error, url, opts), { kind, text }, `${error.code} ${url}`);
  }
  // An untrusted certificate: describeExportError's own TLS text, which names the CA variable.
  const cert = describeProbeError(err('DEPTH_ZERO_SELF_SIGNED_CERT'), 'https://127.0.0.1:4318/v1/traces', { tlsConnected: false });
  assert.equal(cert.kind, 'tls');
  assert.match(cert.text, /OTEL_EXPORTER_OTLP_CERTIFICATE/);
  // A refused connection on https is not a TLS problem: no handshake ever started.
  assert.equal(describeProbeError(err('ECONNREFUSED'), 'https://127.0.0.1:4318/v1/traces', { tlsConnected: false }).kind, 'refused');
});

test('semver ranges as the instrumentations declare them; undefined for syntax not read', () => {
  const cases = [
    ['5.3.0', '>=4.0.0 <6', true],
    ['6.0.0', '>=4.0.0 <6', false],
    ['4.0.0', '>=4.0.0 <6', true],
    ['3.24.5', '>=1.4.2 <4', true],
    ['1.4.1', '>=1.4.2 <4', false],
    ['2.1.0', '^1.0.0 || >=2 <3', true], // an alternative this reader understands matches
    ['1.2.0', '^1.0.0', undefined],
    ['1.2.0', '~1.2', undefined],
    ['1.2.0', '1.x', undefined],
    ['1.2.0', '*', true],
    ['1.2.0', '', true],
    ['1.2.0', '=1.2.0', true],
    ['1.2.0', '1.2', true], // a partial version is padded with zeros
    ['v2.0.0', '>1', true],
    ['5.0.0-beta.1', '>=5', true], // prerelease tags are ignored
    ['not a version', '*', undefined],
    ['3.0.0', '<=2.9.9 || >3', false],
  ];
  for (const [version, range, expected] of cases) assert.equal(satisfies(version, range), expected, `${version} in ${range}`);
});

test("check's plain-http test is config's: loopback in every form, credentials named, never shown", () => {
  for (const h of ['localhost', 'api.localhost', '127.0.0.1', '127.9.9.9', '[::1]', '::1', '[::ffff:127.0.0.1]', '[::ffff:7f00:1]']) assert.ok(isLoopbackHost(h), h);
  for (const h of ['192.0.2.1', 'collector', '[::2]', 'localhost.example.com', '128.0.0.1']) assert.ok(!isLoopbackHost(h), h);
  assert.ok(plainHttpOffHost(new URL('http://192.0.2.1:4318')));
  assert.ok(!plainHttpOffHost(new URL('https://192.0.2.1:4318')));
  assert.ok(!plainHttpOffHost(new URL('http://[::1]:4318')));
  const host = { cwd: '/srv', readJson: () => undefined };
  const far = resolveConfig(undefined, { OTEL_SERVICE_NAME: 'x', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://192.0.2.1:4318', FORKTRACE_API_KEY: 'canary-unit-7' }, host);
  const plain = far.findings.find((f) => f.code === 'credentials-over-http');
  assert.equal(plain?.text, configMessages.credentialsOverHttp('http://192.0.2.1:4318/v1/traces', ['x-api-key']));
  assert.ok(!plain.text.includes('canary-unit-7'));
  assert.equal(plain.setting, 'headers');
  const near = resolveConfig(undefined, { OTEL_SERVICE_NAME: 'x', FORKTRACE_API_KEY: 'canary-unit-7' }, host);
  assert.equal(near.findings.find((f) => f.code === 'credentials-over-http'), undefined);
});

test('check: credentials and a far plain-http endpoint, but no OTLP exporter: nothing travels, so no plain-http problem', async () => {
  // check used to re-derive the plain-http test itself and raised it here although no span (and
  // no key) goes to the endpoint with OTEL_TRACES_EXPORTER=console.
  const env = { OTEL_SERVICE_NAME: 'x', OTEL_TRACES_EXPORTER: 'console', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://192.0.2.1:4318', FORKTRACE_API_KEY: 'canary-unit-9' };
  const { report } = await runCheck({ env, cwd: process.cwd(), send: false });
  const codes = report.findings.map((f) => f.code);
  assert.ok(codes.includes('no-otlp-exporter'), codes.join(','));
  assert.ok(!report.findings.some((f) => /unencrypted/.test(f.text)), JSON.stringify(report.findings));
  assert.ok(!JSON.stringify(report).includes('canary-unit-9'));
});

test('a pm2 env value the preload cannot read is named by its type, never shown', () => {
  assert.equal(pm2EnvNotRead('FORKTRACE_API_KEY', null), checkMessages.pm2EnvNotRead('FORKTRACE_API_KEY', 'null'));
  const text = pm2EnvNotRead('OTEL_EXPORTER_OTLP_HEADERS', { 'x-api-key': 'canary-unit-8' });
  assert.match(text, /^OTEL_EXPORTER_OTLP_HEADERS in the app's env is a object/);
  assert.ok(!text.includes('canary-unit-8'));
});

test("the status line: what is traced, as which process, to where", () => {
  const base = { serviceName: 'api', endpoint: 'https://otlp.example.com/v1/traces', compression: 'gzip', hasApiKey: false, apiKeyHeader: 'x-api-key' };
  const none = { processManager: 'none' };
  assert.equal(statusLine({ ...base, exporters: ['otlp'] }, none, 7), 'tracing api (pid 7) to https://otlp.example.com/v1/traces (gzip)');
  assert.equal(
    statusLine({ ...base, exporters: ['otlp', 'console'], hasApiKey: true }, { processManager: 'pm2', index: 2 }, 7),
    'tracing api (pid 7, pm2 worker 2) to https://otlp.example.com/v1/traces (gzip, key in x-api-key) + console',
  );
  assert.equal(statusLine({ ...base, exporters: ['none'] }, { processManager: 'node:cluster' }, 7), 'tracing api (pid 7, node:cluster worker ?) to nowhere (OTEL_TRACES_EXPORTER=none)');
  assert.equal(statusLine({ ...base, exporters: [] }, none, 7), 'tracing api (pid 7) to nowhere (FORKTRACE_REQUIRE_TLS)');
});

/** A decoded span as the receiver gives it; times in ms from a fixed origin. */
function span(o) {
  const t0 = 1_700_000_000_000_000_000n;
  const start = t0 + BigInt(Math.round(o.start * 1e6));
  const end = start + BigInt(Math.round(o.ms * 1e6));
  return {
    traceId: o.traceId ?? 'a'.repeat(32),
    spanId: o.id,
    parentSpanId: o.parent ?? '',
    name: o.name,
    kind: o.kind ?? 1,
    startTimeUnixNano: start,
    endTimeUnixNano: end,
    durationMs: o.ms,
    attributes: o.attributes ?? {},
    status: o.status ?? { code: 0, message: '' },
    events: o.events ?? [],
    links: [],
    resource: { 'service.name': o.service ?? 'api', 'process.pid': o.pid ?? 100, ...(o.worker === undefined ? {} : { 'forktrace.worker.index': o.worker }) },
    scope: { name: 'test', version: '1' },
  };
}

test('trace rendering: children under parents in start order, a waterfall, key attributes, where each ran', () => {
  // Expected tree (spans given out of order, as batches deliver them):
  //   GET /users/:id                 (server, 200)
  //   ├─ request handler - /users/:id
  //   └─ SELECT                      (client, ERROR "boom")
  const spans = [
    span({ id: '3'.repeat(16), parent: '1'.repeat(16), name: 'SELECT', kind: 3, start: 5, ms: 4, attributes: { 'db.query.text': 'SELECT * FROM users WHERE id = ?' }, status: { code: 2, message: 'boom' }, service: 'db-api', worker: 1 }),
    span({ id: '1'.repeat(16), name: 'GET /users/:id', kind: 2, start: 0, ms: 10, attributes: { 'http.route': '/users/:id', 'http.response.status_code': 200 } }),
    span({ id: '2'.repeat(16), parent: '1'.repeat(16), name: 'request handler - /users/:id', start: 1, ms: 2, attributes: { 'http.route': '/users/:id' } }),
  ];
  const lines = renderTrace(spans, { color: false }).trimEnd().split('\n');
  assert.equal(lines.length, 4);
  assert.equal(lines[0], `trace ${'a'.repeat(32)}  3 spans, 2 services (api, db-api), 10.0 ms`);
  assert.match(lines[1], /^GET \/users\/:id +10\.0 ms -\s+█{20} 200 {2}\[api pid 100\]$/);
  assert.match(lines[2], /^├─ request handler - \/users\/:id +2\.00 ms -\s+·{2}█{4}·{14} \[api pid 100\]$/, "no key attribute: one space before where it ran");
  assert.match(lines[3], /^└─ SELECT +4\.00 ms ERROR ·{10}█{8}·{2} SELECT \* FROM users WHERE id = \? {2}"boom" {2}\[db-api pid 100 w1\]$/);
  // The route is not repeated where the name already says it.
  assert.ok(!lines[1].includes('route='));
});

test('trace rendering: a span whose parent never arrived is a root, marked; a continuation says so', () => {
  const orphan = span({ id: '5'.repeat(16), parent: '9'.repeat(16), name: 'GET /stock', kind: 2, start: 0, ms: 1 });
  const out = renderTrace([orphan], { color: false, continued: true });
  assert.match(out, /^trace \(continued\) a{32} {2}1 span, 1 service \(api\), 1\.00 ms\n/);
  assert.match(out, /GET \/stock .* \[api pid 100\] \(parent not received\)\n$/);
  assert.equal(renderTrace([], { color: false }), '');
  // A span listed as its own parent is shown once, as a root, and the walk ends.
  const self = span({ id: '6'.repeat(16), parent: '6'.repeat(16), name: 'loop', start: 0, ms: 1 });
  assert.equal(renderTrace([self], { color: false }).trimEnd().split('\n').length, 2);
});

test('spanJson: one line, ids in hex, times as decimal strings', () => {
  const s = span({ id: '1'.repeat(16), name: 'GET /', kind: 2, start: 0, ms: 1.23456, worker: 0 });
  const j = JSON.parse(spanJson(s));
  assert.deepEqual([j.kind, j.durationMs, j.service, j.pid, j.workerIndex, typeof j.startTimeUnixNano], ['server', 1.235, 'api', 100, 0, 'string']);
});

test('trace assembler: a trace is handed over once it settles; a late span comes as a continuation', (t) => {
  mock.timers.enable({ apis: ['setTimeout'] });
  t.after(() => mock.timers.reset());
  const emitted = [];
  const a = new TraceAssembler(300, (spans, continued) => emitted.push([spans.map((s) => s.name), continued]));
  const A = 'a'.repeat(32);
  const B = 'b'.repeat(32);
  a.add([span({ traceId: A, id: '1'.repeat(16), name: 'a1', start: 0, ms: 1 })]);
  mock.timers.tick(200);
  a.add([span({ traceId: A, id: '2'.repeat(16), name: 'a2', start: 0, ms: 1 }), span({ traceId: B, id: '3'.repeat(16), name: 'b1', start: 0, ms: 1 })]);
  mock.timers.tick(299);
  assert.deepEqual(emitted, [], 'every new span of a trace restarts its wait');
  mock.timers.tick(1);
  assert.deepEqual(emitted, [[['a1', 'a2'], false], [['b1'], false]]);
  a.add([span({ traceId: A, id: '4'.repeat(16), name: 'a3', start: 0, ms: 1 })]);
  a.flush(); // on exit: now, without waiting
  assert.deepEqual(emitted.at(-1), [['a3'], true]);
  a.flush();
  assert.equal(emitted.length, 3, 'nothing pending is emitted twice');
});

test('unknown variables: the nearest known name for a typo, none for another signal or a stranger', () => {
  const cases = [
    ['OTEL_SERVICENAME', 'OTEL_SERVICE_NAME'], // a missing underscore
    ['OTEL_SERIVCE_NAME', 'OTEL_SERVICE_NAME'], // two letters swapped: one edit
    ['otel_service_name', 'OTEL_SERVICE_NAME'], // the case
    ['FORKTRACE_APIKEY', 'FORKTRACE_API_KEY'],
    ['OTEL_EXPORTER_OTLP_HEADER', 'OTEL_EXPORTER_OTLP_HEADERS'],
    ['OTEL_EXPORTER_OTLP_TRACE_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'],
    ['OTEL_EXPORTER_ENDPOINT', 'OTEL_EXPORTER_OTLP_ENDPOINT'], // a word left out
    ['OTEL_TRACES_SAMPLER_ARGS', 'OTEL_TRACES_SAMPLER_ARG'], // closest by letters among words apart
    ['FORKTRACE_SHUTDOWN_TIMEOUT', 'FORKTRACE_SHUTDOWN_TIMEOUT_MS'],
    ['OTEL_LOG_LEVELS', 'OTEL_LOG_LEVEL'],
    ['OTEL_LOGS_EXPORTER', undefined], // another signal's, not a typo of OTEL_TRACES_EXPORTER
    ['OTEL_EXPORTER_OTLP_LOGS_HEADERS', undefined],
    ['OTEL_EXPORTER_OTLP_LOGS_ENDPOINT', undefined],
    ['OTEL_METRIC_EXPORTER', 'OTEL_METRICS_EXPORTER'], // metrics are read now: a typo of theirs is one
    ['OTEL_EXPORTER_PROMETHEUS_PORTS', 'OTEL_EXPORTER_PROMETHEUS_PORT'],
    ['OTEL_PROPAGATORS', undefined],
    ['FORKTRACE_DEBUG', undefined],
  ];
  for (const [name, expected] of cases) assert.equal(nearestKnown(name), expected, name);
  assert.equal(editDistance('SERIVCE', 'SERVICE'), 1);
  assert.equal(editDistance('', 'ab'), 2);
  assert.deepEqual(
    unknownVariables(['PATH', 'NODE_ENV', 'OTEL_SERVICE_NAME', 'FORKTRACE_APIKEY', 'FORKTRACE_WORKER_INDEX', 'OTEL_EXPORTER_OTLP_PROTOCOL']),
    [{ name: 'FORKTRACE_APIKEY', nearest: 'FORKTRACE_API_KEY', setting: 'apiKey' }],
    'known names (the protocol and the cluster slot included) and other prefixes are left alone',
  );
  const findings = unknownVariableFindings(new Map([['FORKTRACE_APIKEY', 'pm2 env'], ['FORKTRACE_DEBUG', 'env'], ['OTEL_PROPAGATORS', 'env']]));
  assert.deepEqual(findings, [
    { code: 'unknown-variable', setting: 'apiKey', severity: 'problem', text: checkMessages.misspeltVariable('FORKTRACE_APIKEY', checkMessages.inPm2Env, 'FORKTRACE_API_KEY') },
    { code: 'unknown-variable', severity: 'problem', text: checkMessages.unknownForktraceVariable('FORKTRACE_DEBUG', '') },
    { code: 'unknown-variable', severity: 'note', text: checkMessages.otherOtelVariable('OTEL_PROPAGATORS', '') },
  ]);
});

// check's readers of what an endpoint or a pm2 file says (test/check-dx.test.mjs runs them end
// to end against real servers); the edge cases here.
const { htmlTitle, redirectTarget, certNames } = require('../dist/tools/check/diagnosis.js');
const { preloadsOf } = require('../dist/tools/check/pm2-app.js');
const { headerEncodingFindings } = require('../dist/tools/check/headers.js');

test('htmlTitle: the title of a page, entities decoded, on one line, bounded', () => {
  assert.equal(htmlTitle('<html><head><TITLE lang="en">\n  Sign in &amp; continue\n</TITLE>'), 'Sign in & continue');
  assert.equal(htmlTitle('<title></title>'), undefined);
  assert.equal(htmlTitle('<p>no title</p>'), undefined);
  const long = htmlTitle(`<title>${'x'.repeat(300)}</title>`);
  assert.equal(long.length, 100);
  assert.ok(long.endsWith('…'));
});

test('redirectTarget: resolved against the URL tried, without credentials or query', () => {
  assert.deepEqual(redirectTarget('/v1/traces', 'http://127.0.0.1:4318/old'), { url: 'http://127.0.0.1:4318/v1/traces', dropped: false });
  assert.deepEqual(redirectTarget('https://user:secret@otlp.example.test/v1/traces?token=abc#x', 'http://a/'), {
    url: 'https://otlp.example.test/v1/traces',
    dropped: true,
  });
  assert.equal(redirectTarget('http://[bad', 'not a url'), undefined);
});

test('certNames: the names a certificate was issued for, SAN first, at most five and a count', () => {
  assert.deepEqual(certNames({ subjectaltname: 'DNS:otlp.other.test, DNS:*.other.test, IP Address:10.0.0.1', subject: { CN: 'ignored' } }), [
    'otlp.other.test',
    '*.other.test',
    '10.0.0.1',
  ]);
  assert.deepEqual(certNames({ subject: { CN: 'only-cn.test' } }), ['only-cn.test']);
  assert.deepEqual(certNames({}), []);
  const many = certNames({ subjectaltname: Array.from({ length: 8 }, (_, i) => `DNS:h${i}.test`).join(', ') });
  assert.deepEqual(many, ['h0.test', 'h1.test', 'h2.test', 'h3.test', 'h4.test', '3 more']);
});

test('preloadsOf: every --require, -r and --import, spaced or with =', () => {
  assert.deepEqual(preloadsOf(['--max-old-space-size=512', '-r', 'a', '--require=b', '--import', 'c', '--import=d', '--require']), [
    { flag: '--require', specifier: 'a' },
    { flag: '--require', specifier: 'b' },
    { flag: '--import', specifier: 'c' },
    { flag: '--import', specifier: 'd' },
  ]);
  assert.deepEqual(preloadsOf([]), []);
});

test('headerEncodingFindings: a percent-escape in a header value is named, never its value', () => {
  const canary = 'canary%2Dunits%41';
  const findings = headerEncodingFindings({ OTEL_EXPORTER_OTLP_HEADERS: `x-api-key=${canary},x-team=plain` });
  assert.equal(findings.length, 1);
  assert.equal(findings[0].setting, 'headers');
  assert.ok(findings[0].text.includes('x-api-key') && findings[0].text.includes('OTEL_EXPORTER_OTLP_HEADERS'), findings[0].text);
  assert.ok(!findings[0].text.includes('canary'), 'the value is never shown');
  assert.deepEqual(headerEncodingFindings({ OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=plain' }), []);
  assert.deepEqual(headerEncodingFindings({}), []);
});
