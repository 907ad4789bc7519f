// Property-based tests (fast-check) of resolveConfig on arbitrary environments, and the bad-input
// zoo: each operator mistake gets one one-line warning naming the setting and the fix, and the
// app keeps running.
//
// Properties, on a fake host (no file is read):
//   1. resolveConfig never throws, whatever strings the environment holds;
//   2. every warning is one line (a value with a line break cannot forge a log line);
//   3. no secret (API key, header value, URL credentials) ever appears in a warning, in the
//      redacted config, or in the endpoint shown.
// Not covered here: options (a wrong option is a programmer error and throws by design; the
// table in config.test.mjs and the zoo below cover those).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { EXAMPLE, REGISTER_CJS, get, killStarted, spawnNode } from './helpers.mjs';

const require = createRequire(import.meta.url);
const { resolveConfig, redactConfig, messages } = require('../dist/index.js');

const host = { cwd: '/srv/app', entryScript: '/srv/app/server.js', readJson: () => undefined, readFile: () => undefined };

/** Every variable resolveConfig reads, so that generated environments hit real parsing paths. */
const VARIABLES = [
  'OTEL_SDK_DISABLED', 'OTEL_SERVICE_NAME', 'OTEL_RESOURCE_ATTRIBUTES', 'NODE_ENV',
  'OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_HEADERS',
  'OTEL_EXPORTER_OTLP_TRACES_HEADERS', 'FORKTRACE_API_KEY', 'FORKTRACE_API_KEY_HEADER',
  'OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_COMPRESSION',
  'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION', 'OTEL_EXPORTER_OTLP_TIMEOUT', 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT',
  'OTEL_EXPORTER_OTLP_CERTIFICATE', 'OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE', 'FORKTRACE_REQUIRE_TLS',
  'OTEL_TRACES_EXPORTER', 'OTEL_TRACES_SAMPLER', 'OTEL_TRACES_SAMPLER_ARG', 'OTEL_BSP_SCHEDULE_DELAY',
  'OTEL_BSP_EXPORT_TIMEOUT', 'OTEL_BSP_MAX_QUEUE_SIZE', 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 'OTEL_LOG_LEVEL',
  'FORKTRACE_EXCLUDED_URLS', 'OTEL_NODE_ENABLED_INSTRUMENTATIONS', 'OTEL_NODE_DISABLED_INSTRUMENTATIONS',
  'FORKTRACE_MASK_DB_STATEMENTS', 'FORKTRACE_EXPRESS_LAYERS', 'FORKTRACE_INSTRUMENT_PRIMARY',
  'FORKTRACE_SHUTDOWN_TIMEOUT_MS',
];

// Strings with everything parsers trip on: control characters, '%', '=', ',', quotes, unicode.
const nasty = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.stringMatching(/^[%=,:;@/ \r\n\t"'a-z0-9.-]{0,30}$/),
  fc.constantFrom('', ' ', 'http://', 'http://[::1', 'https://u:p@h:99999/x', '%zz', 'a=%', '-1', 'NaN', '1e309', '0x10', '(', 'true', 'otlp,,none'),
);
const urlish = fc.oneof(fc.webUrl({ withQueryParameters: true, withFragments: true }), fc.string({ maxLength: 30 }).map((s) => `http://${s}`), nasty);
const env = fc.dictionary(
  fc.oneof(fc.constantFrom(...VARIABLES), fc.string({ maxLength: 10 })),
  fc.oneof(nasty, urlish),
  { maxKeys: 12 },
);

test('resolveConfig never throws on any environment, and every warning is one line', () => {
  fc.assert(
    fc.property(env, (e) => {
      const c = resolveConfig(undefined, e, host);
      for (const w of c.warnings) assert.ok(!/[\r\n\u2028\u2029]/.test(w), `one line: ${JSON.stringify(w)}`);
      // The result is usable: a URL that parses, numbers in range.
      new URL(c.endpoint);
      assert.ok(c.timeoutMillis >= 1 && Number.isInteger(c.batch.maxQueueSize));
    }),
    { numRuns: 3000 },
  );
});

// A secret: a marker plus characters (no ',' or '=' where a header list would split them: per the
// spec those must be percent-encoded).
const MARK = 'Zq7S';
const secret = (chars) => fc.stringMatching(chars).map((s) => `${MARK}${s}`);
const keyLike = secret(/^[A-Za-z0-9_+/.~-]{3,24}$/);
const anyKey = secret(/^[^\r\n\0]{3,24}$/);
const headerName = fc.stringMatching(/^[a-z][a-z0-9-]{0,12}$/).filter((k) => !k.includes(MARK.toLowerCase()));
const pctEncoded = (s) => encodeURIComponent(s);

const secretsEnv = fc.record({
  apiKey: fc.option(anyKey, { nil: undefined }),
  headers: fc.array(fc.tuple(headerName, fc.oneof(keyLike, secret(/^[^,=]{3,20}$/)), fc.boolean()), { maxLength: 3 }),
  tracesHeaders: fc.array(fc.tuple(headerName, keyLike), { maxLength: 2 }),
  user: fc.option(keyLike, { nil: undefined }),
  pass: fc.option(anyKey, { nil: undefined }),
  rawUserinfo: fc.boolean(),
  generic: fc.boolean(),
  host: fc.constantFrom('127.0.0.1:4318', 'collector.example:4318', 'localhost', '[::1]:4318'),
  scheme: fc.constantFrom('http', 'https'),
  other: fc.dictionary(fc.constantFrom(...VARIABLES.filter((v) => !/HEADERS|API_KEY$|ENDPOINT/.test(v))), nasty, { maxKeys: 6 }),
});

test('no API key, header value or URL credential ever appears in a warning, the redacted config or the endpoint', () => {
  fc.assert(
    fc.property(secretsEnv, (g) => {
      const secrets = [];
      const e = { ...g.other };
      if (g.apiKey !== undefined) {
        e.FORKTRACE_API_KEY = g.apiKey;
        secrets.push(g.apiKey);
      }
      if (g.headers.length > 0) {
        // Half the values percent-encoded (as the spec asks), half written raw.
        e.OTEL_EXPORTER_OTLP_HEADERS = g.headers.map(([k, v, enc]) => `${k}=${enc ? pctEncoded(v) : v}`).join(',');
        secrets.push(...g.headers.map(([, v]) => v));
      }
      if (g.tracesHeaders.length > 0) {
        e.OTEL_EXPORTER_OTLP_TRACES_HEADERS = g.tracesHeaders.map(([k, v]) => `${k}=${pctEncoded(v)}`).join(',');
        secrets.push(...g.tracesHeaders.map(([, v]) => v));
      }
      let userinfo = '';
      if (g.user !== undefined || g.pass !== undefined) {
        const enc = g.rawUserinfo ? (s) => s : pctEncoded;
        userinfo = `${enc(g.user ?? '')}${g.pass !== undefined ? `:${enc(g.pass)}` : ''}@`;
        secrets.push(...[g.user, g.pass].filter((s) => s !== undefined));
      }
      const url = `${g.scheme}://${userinfo}${g.host}${g.generic ? '' : '/v1/traces'}`;
      e[g.generic ? 'OTEL_EXPORTER_OTLP_ENDPOINT' : 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'] = url;

      const c = resolveConfig(undefined, e, host);
      const shown = [...c.warnings, JSON.stringify(redactConfig(c)), c.endpoint].join('\n');
      for (const s of secrets) {
        assert.ok(!shown.includes(s), `secret ${JSON.stringify(s)} shown in:\n${shown}`);
        assert.ok(!shown.includes(pctEncoded(s)) || pctEncoded(s) === MARK, `encoded secret shown:\n${shown}`);
      }
      // Wherever a marker shows up it is one of ours, however mangled: never print it.
      assert.ok(!shown.includes(MARK), `a piece of a secret is shown:\n${shown}`);
    }),
    { numRuns: 3000 },
  );
});

// The zoo: each bad value → the exact warning (messages are exported for this), and the setting
// falls back. One line each; the value is quoted only where it cannot be a secret.
const ZOO = [
  [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, [messages.badEnvSecretValue('OTEL_EXPORTER_OTLP_ENDPOINT', 'uses the unsupported scheme "collector" (use http or https)', 'http://localhost:4318/v1/traces')]],
  [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'not a url' }, [messages.badEnvSecretValue('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'is not a URL (expected e.g. https://otlp.example.com/v1/traces)', 'http://localhost:4318/v1/traces')]],
  [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'grpc://collector:4317' }, [messages.badEnvSecretValue('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'uses the unsupported scheme "grpc" (use http or https)', 'http://localhost:4318/v1/traces')]],
  [{ OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=ab%zz' }, [messages.badPair('OTEL_EXPORTER_OTLP_HEADERS', 'header', 'x-api-key', "has a '%' that starts no percent-escape; sent as written (write %25 for a literal '%')")]],
  [{ OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=ab%0D%0AHost: evil' }, [messages.badPair('OTEL_EXPORTER_OTLP_HEADERS', 'header', 'x-api-key', 'has a line break or NUL in its value (header injection); skipped')]],
  [{ OTEL_EXPORTER_OTLP_HEADERS: '=value-without-key' }, [messages.badPair('OTEL_EXPORTER_OTLP_HEADERS', 'header', '#1', 'has an empty name; skipped')]],
  [{ OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key: abc' }, [messages.badPair('OTEL_EXPORTER_OTLP_HEADERS', 'header', '#1', "has no '=' (write key=value, not key: value); skipped")]],
  [{ OTEL_TRACES_EXPORTER: 'jaeger' }, [messages.badEnvValue('OTEL_TRACES_EXPORTER', 'jaeger', 'otlp, console, none, or a comma list such as otlp,console', 'otlp')]],
  [{ OTEL_TRACES_SAMPLER: 'sometimes' }, [messages.badEnvValue('OTEL_TRACES_SAMPLER', 'sometimes', 'always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio', 'parentbased_always_on')]],
  [{ OTEL_EXPORTER_OTLP_COMPRESSION: 'brotli' }, [messages.badEnvValue('OTEL_EXPORTER_OTLP_COMPRESSION', 'brotli', 'gzip, none', 'gzip')]],
  [{ OTEL_BSP_MAX_QUEUE_SIZE: '-5' }, [messages.badEnvValue('OTEL_BSP_MAX_QUEUE_SIZE', '-5', 'a whole number from 1 to 1000000', '2048')]],
  [{ OTEL_BSP_SCHEDULE_DELAY: 'NaN' }, [messages.badEnvValue('OTEL_BSP_SCHEDULE_DELAY', 'NaN', 'a whole number from 0 to 3600000', '5000')]],
  [{ OTEL_EXPORTER_OTLP_TIMEOUT: '1e309' }, [messages.badEnvValue('OTEL_EXPORTER_OTLP_TIMEOUT', '1e309', 'a whole number from 1 to 600000', '10000')]],
  [{ FORKTRACE_SHUTDOWN_TIMEOUT_MS: '99999999999' }, [messages.badEnvValue('FORKTRACE_SHUTDOWN_TIMEOUT_MS', '99999999999', 'a whole number from 0 to 60000', '1000')]],
  [{ OTEL_TRACES_SAMPLER_ARG: '1.5' }, [messages.badEnvValue('OTEL_TRACES_SAMPLER_ARG', '1.5', 'a number from 0 to 1', '1')]],
  [{ FORKTRACE_EXCLUDED_URLS: '^/health$,(unclosed' }, [messages.badEnvValue('FORKTRACE_EXCLUDED_URLS', '(unclosed', 'comma-separated regular expressions', 'no exclusion for this entry')]],
  [{ OTEL_TRACES_EXPORTER: 'otlp\nforktrace: tracing fake' }, [messages.badEnvValue('OTEL_TRACES_EXPORTER', 'otlp\\nforktrace: tracing fake', 'otlp, console, none, or a comma list such as otlp,console', 'otlp')]],
];

test('bad-input zoo: one warning each, naming the setting, the accepted values or the fix', () => {
  for (const [e, expected] of ZOO) {
    const c = resolveConfig(undefined, e, host);
    assert.deepEqual(c.warnings.filter((w) => !w.startsWith('service.name')), expected, JSON.stringify(e));
  }
});

test('bad-input zoo through the preload: the app serves, stderr has exactly the warnings', async (t) => {
  t.after(killStarted);
  // All at once (where two cases set the same variable, the later one stays).
  const e = Object.assign({}, ...ZOO.map(([x]) => x));
  const app = spawnNode(['--require', REGISTER_CJS, path.join(EXAMPLE, 'server.js')], {
    cwd: EXAMPLE,
    env: { PORT: '0', OTEL_SERVICE_NAME: 'zoo', ...e, OTEL_TRACES_EXPORTER: 'none,kafka' },
  });
  const { listening } = await app.ready;
  // /health is excluded by the zoo's FORKTRACE_EXCLUDED_URLS (its valid half): no span, so the
  // stop has nothing to send to the (absent) default endpoint.
  assert.equal((await get(`http://127.0.0.1:${listening}/health`)).status, 200);
  assert.equal((await get(`http://127.0.0.1:${listening}/health`)).body, 'ok');
  await app.kill('SIGTERM');
  const lines = app.stderr.split('\n').filter((l) => l !== '');
  const expected = resolveConfig(undefined, { ...e, OTEL_TRACES_EXPORTER: 'none,kafka', OTEL_SERVICE_NAME: 'zoo' }, host).warnings.map((w) => `forktrace: warning: ${w}`);
  assert.equal(expected.length, new Set(ZOO.map(([x]) => Object.keys(x)[0])).size, expected.join('\n'));
  assert.deepEqual(lines.slice(0, -1), expected);
  assert.match(lines.at(-1), /^forktrace: tracing zoo \(pid \d+\) to http:\/\/localhost:4318\/v1\/traces \(gzip\)$/);
});

const OPTION_NAMES = [
  'serviceName', 'serviceVersion', 'environment', 'resourceAttributes', 'endpoint', 'headers', 'apiKey',
  'apiKeyHeader', 'compression', 'timeoutMillis', 'exporters', 'sampler', 'samplerRatio', 'batch', 'logLevel',
  'excludedUrls', 'instrumentations', 'maskDbStatements', 'expressLayers', 'instrumentPrimary', 'shutdownTimeoutMillis',
  'exitDelivery', 'spoolDir', 'spoolMaxBytes', 'spoolMaxAgeMillis',
];

// Objects whose keys are arbitrary strings too: a key is quoted in the message.
const wrongOptions = fc.oneof(
  fc.dictionary(fc.constantFrom(...OPTION_NAMES), fc.anything({ maxDepth: 2 }), { maxKeys: 3 }),
  fc.record({
    headers: fc.dictionary(fc.string({ unit: 'binary', maxLength: 8 }), fc.oneof(fc.string({ unit: 'binary' }), fc.integer())),
  }),
  fc.record({ instrumentations: fc.dictionary(fc.string({ unit: 'binary', maxLength: 8 }), fc.anything({ maxDepth: 0 })) }),
  fc.record({ resourceAttributes: fc.dictionary(fc.string({ unit: 'binary', maxLength: 8 }), fc.anything({ maxDepth: 1 })) }),
  fc.record({ excludedUrls: fc.array(fc.oneof(fc.string({ unit: 'binary', maxLength: 8 }), fc.anything({ maxDepth: 0 })), { maxLength: 3 }) }),
);

test('options of the wrong type: always a TypeError or RangeError, one line, naming the option in backticks', () => {
  fc.assert(
    fc.property(wrongOptions, (options) => {
      try {
        resolveConfig(options, {}, host);
      } catch (e) {
        assert.ok(e instanceof TypeError || e instanceof RangeError, `${e?.constructor?.name}: ${e?.message}`);
        assert.ok(!/[\r\n]/.test(e.message), `one line: ${JSON.stringify(e.message)}`);
        assert.match(e.message, /^`[a-zA-Z]+/);
      }
    }),
    { numRuns: 3000 },
  );
});
