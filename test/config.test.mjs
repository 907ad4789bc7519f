// resolveConfig: env parsing and precedence, as tables of input → expected result.
// Pure: no process.env is read (every case passes its own env) and no file is read (fake host).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { resolveConfig, redactConfig, messages, DEFAULT_ENDPOINT } = require('../dist/index.js');
const { readPm2 } = require('../dist/worker/pm2.js');

/** A host with the given package.json files and nothing else. */
function host(files = {}, extra = {}) {
  return { cwd: '/srv/app', entryScript: '/srv/app/server.js', readJson: (f) => files[f], ...extra };
}
const APP = { '/srv/app/package.json': { name: 'shop-api', version: '2.3.4' } };
const resolve = (env, options = {}, h = host(APP)) => resolveConfig(options, env, h);

test('defaults', () => {
  const c = resolve({});
  assert.equal(c.endpoint, 'http://localhost:4318/v1/traces');
  assert.equal(c.endpoint, DEFAULT_ENDPOINT);
  assert.equal(c.compression, 'gzip');
  assert.deepEqual(c.exporters, ['otlp']);
  assert.equal(c.sampler, 'parentbased_always_on');
  assert.deepEqual(c.batch, { scheduledDelayMillis: 5000, exportTimeoutMillis: 30000, maxQueueSize: 2048, maxExportBatchSize: 512 });
  assert.equal(c.timeoutMillis, 10000);
  assert.equal(c.logLevel, 'warn');
  assert.equal(c.shutdownTimeoutMillis, 1000);
  assert.equal(c.apiKeyHeader, 'x-api-key');
  assert.deepEqual(c.headers, {});
  assert.deepEqual(c.instrumentations, { http: true, express: true, mysql2: true });
  assert.equal(c.maskDbStatements, true);
  assert.deepEqual(c.expressLayers, ['request_handler']);
  assert.equal(c.instrumentPrimary, false);
  assert.equal(c.disabled, false);
});

test('service name, version and environment: options > env > package.json', () => {
  const cases = [
    // [env, options, expected name, version, environment, source of name]
    [{}, {}, 'shop-api', '2.3.4', undefined, 'package.json'],
    [{ OTEL_SERVICE_NAME: 'from-env' }, {}, 'from-env', '2.3.4', undefined, 'env'],
    [{ OTEL_SERVICE_NAME: 'from-env' }, { serviceName: 'from-option' }, 'from-option', '2.3.4', undefined, 'option'],
    [{ OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-attrs,service.version=9.9.9' }, {}, 'from-attrs', '9.9.9', undefined, 'env'],
    [{ OTEL_SERVICE_NAME: 'wins', OTEL_RESOURCE_ATTRIBUTES: 'service.name=loses' }, {}, 'wins', '2.3.4', undefined, 'env'],
    [{ NODE_ENV: 'production' }, {}, 'shop-api', '2.3.4', 'production', 'package.json'],
    [{ NODE_ENV: 'production', OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=staging' }, {}, 'shop-api', '2.3.4', 'staging', 'package.json'],
    [{ NODE_ENV: 'production' }, { environment: 'canary', serviceVersion: '1.0.0' }, 'shop-api', '1.0.0', 'canary', 'package.json'],
    [{ OTEL_SERVICE_NAME: '   ' }, {}, 'shop-api', '2.3.4', undefined, 'package.json'], // blank counts as unset
  ];
  for (const [env, options, name, version, environment, source] of cases) {
    const c = resolve(env, options);
    const label = JSON.stringify({ env, options });
    assert.equal(c.serviceName, name, label);
    assert.equal(c.serviceVersion, version, label);
    assert.equal(c.environment, environment, label);
    assert.equal(c.sources.serviceName, source, label);
    assert.ok(!c.serviceName.includes(environment ?? '\0'), 'the environment never goes into the service name');
    assert.equal(c.resourceAttributes['service.name'], undefined);
  }
});

test('service name fallbacks print one warning that says how to set it', () => {
  const fromPkg = resolve({});
  assert.deepEqual(fromPkg.warnings, [messages.serviceNameFallback('shop-api', '/srv/app/package.json')]);
  assert.match(fromPkg.warnings[0], /OTEL_SERVICE_NAME/);

  const none = resolve({}, {}, host({}));
  assert.equal(none.serviceName, 'unknown_service:node');
  assert.equal(none.warnings.length, 1);

  assert.deepEqual(resolve({ OTEL_SERVICE_NAME: 'x' }).warnings, []);
});

test("the app's package.json is found from the entry script, never from a library or pm2's wrapper", () => {
  const files = {
    '/srv/app/package.json': { name: 'shop-api' },
    '/usr/lib/node_modules/pm2/package.json': { name: 'pm2', version: '7.0.4' },
    '/usr/lib/node_modules/pm2/lib/package.json': { name: 'pm2-lib' },
    '/srv/other/package.json': { name: 'from-entry-dir' },
  };
  // pm2 cluster mode: argv[1] is ProcessContainer.js inside pm2's own package.
  const pm2Entry = host(files, { entryScript: '/usr/lib/node_modules/pm2/lib/ProcessContainer.js' });
  assert.equal(resolveConfig({}, {}, pm2Entry).serviceName, 'shop-api');
  // A script in a subfolder walks up to the app's package.json.
  assert.equal(resolveConfig({}, {}, host(files, { entryScript: '/srv/app/src/bin/www.js' })).serviceName, 'shop-api');
  // The entry's folder wins over the cwd.
  assert.equal(resolveConfig({}, {}, host(files, { entryScript: '/srv/other/index.js' })).serviceName, 'from-entry-dir');
  // pm2's app name and script win over the wrapper.
  const pm2 = host(files, { entryScript: '/usr/lib/node_modules/pm2/lib/ProcessContainer.js', pm2: { appName: 'web', cwd: '/srv/app', script: '/srv/app/server.js' } });
  const c = resolveConfig({}, {}, pm2);
  assert.equal(c.serviceName, 'web');
  assert.equal(c.sources.serviceName, 'pm2 app');
  assert.notEqual(c.serviceName, 'ProcessContainer');
});

test('endpoint per the OTLP exporter spec', () => {
  const cases = [
    [{}, 'http://localhost:4318/v1/traces', 'default'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otlp.example.com' }, 'https://otlp.example.com/v1/traces', 'env'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otlp.example.com/' }, 'https://otlp.example.com/v1/traces', 'env'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otlp.example.com/otlp' }, 'https://otlp.example.com/otlp/v1/traces', 'env'],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://t.example.com/custom/path' }, 'https://t.example.com/custom/path', 'env'],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://t.example.com/x', OTEL_EXPORTER_OTLP_ENDPOINT: 'https://g.example.com' }, 'https://t.example.com/x', 'env'],
  ];
  for (const [env, endpoint, source] of cases) {
    const c = resolve(env);
    assert.equal(c.endpoint, endpoint, JSON.stringify(env));
    assert.equal(c.sources.endpoint, source);
    assert.deepEqual(c.warnings.filter((w) => !w.startsWith('service.name')), []);
  }
  assert.equal(resolve({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://g.example.com' }, { endpoint: 'http://127.0.0.1:9/v1/traces' }).endpoint, 'http://127.0.0.1:9/v1/traces');
});

test('a bad endpoint warns, names the variable, never quotes the value, and falls back', () => {
  for (const [value, why] of [
    ['not a url with s3cr3t', /is not a URL/],
    ['ftp://user:s3cr3t@example.com/v1/traces', /unsupported scheme "ftp"/],
  ]) {
    const c = resolve({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: value, OTEL_SERVICE_NAME: 'x' });
    assert.equal(c.endpoint, DEFAULT_ENDPOINT);
    assert.equal(c.warnings.length, 1);
    assert.match(c.warnings[0], /^OTEL_EXPORTER_OTLP_TRACES_ENDPOINT /);
    assert.match(c.warnings[0], why);
    assert.ok(!c.warnings[0].includes('s3cr3t'));
  }
});

test('credentials in the endpoint URL become Basic auth and are kept out of the shown URL', () => {
  const c = resolve({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://tenant:pa%3Ass@otlp.example.com' });
  assert.equal(c.endpoint, 'https://otlp.example.com/v1/traces');
  assert.equal(c.headers.authorization, 'Basic ' + Buffer.from('tenant:pa:ss').toString('base64'));
  assert.ok(c.secrets.includes('pa:ss'));
  assert.ok(!JSON.stringify(redactConfig(c)).includes(Buffer.from('tenant:pa:ss').toString('base64')));
});

test('headers: parsed per spec, signal-specific wins, option wins over both', () => {
  const cases = [
    // [OTEL_EXPORTER_OTLP_HEADERS, expected headers, expected warning fragments]
    ['api-key=abc', { 'api-key': 'abc' }, []],
    ['a=b=c', { a: 'b=c' }, []], // split on the first '='
    ['k=hello%20world,x-id=%E2%9C%93', { k: 'hello world', 'x-id': '✓' }, []], // percent-decoded
    ['  k1 = v1 , k2=v2  ', { k1: 'v1', k2: 'v2' }, []], // trimmed
    ['k1=v1,,k2=v2', { k1: 'v1', k2: 'v2' }, []], // empty pairs ignored
    ['empty=,k=v', { k: 'v' }, ['header "empty" has an empty value']],
    ['x-api-key=ab%zz', { 'x-api-key': 'ab%zz' }, ['header "x-api-key" has a \'%\' that starts no percent-escape; sent as written']],
    ['novalue,k=v', { k: 'v' }, ['header "#1" has no \'=\'']],
    ['Authorization: Bearer s3cr3t,k=v', { k: 'v' }, ["header \"#1\" has no '=' (write key=value, not key: value)"]],
    ['=s3cr3t,k=v', { k: 'v' }, ['header "#1" has an empty name']],
    ['x-evil=a%0D%0AInjected: yes', {}, ['header "x-evil" has a line break or NUL in its value (header injection)']],
    ['bad name=v', {}, ['header "#1" has a name that is not a valid HTTP header name']],
  ];
  for (const [raw, expected, warnings] of cases) {
    const c = resolve({ OTEL_SERVICE_NAME: 'x', OTEL_EXPORTER_OTLP_HEADERS: raw });
    assert.deepEqual(c.headers, expected, raw);
    assert.equal(c.warnings.length, warnings.length, `${raw}: ${c.warnings.join(' | ')}`);
    warnings.forEach((w, i) => {
      assert.ok(c.warnings[i].startsWith('OTEL_EXPORTER_OTLP_HEADERS: ' + w), `${raw}: got "${c.warnings[i]}"`);
    });
    for (const w of c.warnings) {
      for (const secret of ['s3cr3t', 'ab%zz', 'Bearer', 'Injected']) assert.ok(!w.includes(secret), `warning quotes a value: ${w}`);
    }
  }
  const c = resolve(
    { OTEL_EXPORTER_OTLP_HEADERS: 'a=generic,b=generic', OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'B=signal,c=signal' },
    { headers: { C: 'option' } },
  );
  assert.deepEqual(c.headers, { a: 'generic', b: 'signal', c: 'option' });
  assert.equal(c.sources['headers.c'], 'option');
});

test('API key goes under the configured header', () => {
  assert.deepEqual(resolve({ FORKTRACE_API_KEY: 'k-123' }).headers, { 'x-api-key': 'k-123' });
  const mackerel = resolve({ FORKTRACE_API_KEY: 'k-123', FORKTRACE_API_KEY_HEADER: 'Mackerel-Api-Key' });
  assert.deepEqual(mackerel.headers, { 'mackerel-api-key': 'k-123' });
  const ls = resolve({}, { apiKey: 'tok', apiKeyHeader: 'lightstep-access-token' });
  assert.deepEqual(ls.headers, { 'lightstep-access-token': 'tok' });
  assert.equal(ls.hasApiKey, true);
  assert.ok(ls.secrets.includes('tok'));
  assert.deepEqual(redactConfig(ls).headers, { 'lightstep-access-token': '[REDACTED]' });
  const bad = resolve({ OTEL_SERVICE_NAME: 'x', FORKTRACE_API_KEY_HEADER: 'not a header' });
  assert.equal(bad.apiKeyHeader, 'x-api-key');
  assert.match(bad.warnings[0], /^FORKTRACE_API_KEY_HEADER=/);
});

test('enumerations and numbers: valid values, and one warning naming the variable and the accepted values', () => {
  const cases = [
    // [env, key, expected value, warning prefix or null]
    [{ OTEL_EXPORTER_OTLP_COMPRESSION: 'none' }, 'compression', 'none', null],
    [{ OTEL_EXPORTER_OTLP_COMPRESSION: 'none', OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'gzip' }, 'compression', 'gzip', null],
    [{ OTEL_EXPORTER_OTLP_COMPRESSION: 'brotli' }, 'compression', 'gzip', 'OTEL_EXPORTER_OTLP_COMPRESSION="brotli" is not supported; accepted: gzip, none. Using gzip.'],
    [{ OTEL_EXPORTER_OTLP_TIMEOUT: '2500' }, 'timeoutMillis', 2500, null],
    [{ OTEL_EXPORTER_OTLP_TIMEOUT: '100', OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '200' }, 'timeoutMillis', 200, null],
    [{ OTEL_EXPORTER_OTLP_TIMEOUT: 'soon' }, 'timeoutMillis', 10000, 'OTEL_EXPORTER_OTLP_TIMEOUT="soon"'],
    [{ OTEL_EXPORTER_OTLP_TIMEOUT: '-5' }, 'timeoutMillis', 10000, 'OTEL_EXPORTER_OTLP_TIMEOUT="-5"'],
    [{ OTEL_EXPORTER_OTLP_TIMEOUT: 'NaN' }, 'timeoutMillis', 10000, 'OTEL_EXPORTER_OTLP_TIMEOUT="NaN"'],
    [{ OTEL_EXPORTER_OTLP_TIMEOUT: '1e99' }, 'timeoutMillis', 10000, 'OTEL_EXPORTER_OTLP_TIMEOUT="1e99"'],
    [{ OTEL_TRACES_EXPORTER: 'console' }, 'exporters', ['console'], null],
    [{ OTEL_TRACES_EXPORTER: 'otlp, console' }, 'exporters', ['otlp', 'console'], null],
    [{ OTEL_TRACES_EXPORTER: 'none' }, 'exporters', ['none'], null],
    [{ OTEL_TRACES_EXPORTER: 'zipkin' }, 'exporters', ['otlp'], 'OTEL_TRACES_EXPORTER="zipkin" is not supported; accepted: otlp, console, none'],
    [{ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' }, 'samplerRatio', 0.25, null],
    [{ OTEL_TRACES_SAMPLER_ARG: '2' }, 'samplerRatio', 1, 'OTEL_TRACES_SAMPLER_ARG="2"'],
    [{ OTEL_TRACES_SAMPLER: 'sometimes' }, 'sampler', 'parentbased_always_on', 'OTEL_TRACES_SAMPLER="sometimes"'],
    [{ OTEL_LOG_LEVEL: 'DEBUG' }, 'logLevel', 'debug', null],
    [{ OTEL_LOG_LEVEL: 'loud' }, 'logLevel', 'warn', 'OTEL_LOG_LEVEL="loud"'],
    [{ OTEL_SDK_DISABLED: 'true' }, 'disabled', true, null],
    [{ OTEL_SDK_DISABLED: 'yes' }, 'disabled', false, 'OTEL_SDK_DISABLED="yes" is not supported; accepted: true, false'],
    [{ FORKTRACE_SHUTDOWN_TIMEOUT_MS: '700' }, 'shutdownTimeoutMillis', 700, null],
    [{ FORKTRACE_EXIT_DELIVERY: 'SPOOL' }, 'exitDelivery', 'spool', null],
    [{ FORKTRACE_EXIT_DELIVERY: 'later' }, 'exitDelivery', 'send', 'FORKTRACE_EXIT_DELIVERY="later" is not supported; accepted: send, spool, off. Using send.'],
    [{}, 'spoolDir', '/scratch/forktrace-spool-1000', null],
    [{ FORKTRACE_SPOOL_DIR: '/var/spool/app/' }, 'spoolDir', '/var/spool/app/', null],
    [{ FORKTRACE_SPOOL_DIR: 'None' }, 'spoolDir', undefined, null],
    [{ FORKTRACE_EXIT_DELIVERY: 'off' }, 'spoolDir', undefined, null],
    // A stop deadline of 0 leaves an exit no time: the config says the exit delivery is off, not `send`.
    [{ FORKTRACE_SHUTDOWN_TIMEOUT_MS: '0' }, 'exitDelivery', 'off', null],
    [{ FORKTRACE_SHUTDOWN_TIMEOUT_MS: '0', FORKTRACE_EXIT_DELIVERY: 'spool' }, 'exitDelivery', 'off', null],
    [{ FORKTRACE_SHUTDOWN_TIMEOUT_MS: '0' }, 'spoolDir', undefined, null],
    [{ FORKTRACE_SPOOL_DIR: 'spool' }, 'spoolDir', '/scratch/forktrace-spool-1000', 'FORKTRACE_SPOOL_DIR="spool" is not supported; accepted: an absolute path, or none. Using the default folder.'],
    [{}, 'cacheDir', '/scratch/forktrace-cache-1000', null],
    [{ FORKTRACE_CACHE_DIR: '/var/cache/app' }, 'cacheDir', '/var/cache/app', null],
    [{ FORKTRACE_CACHE_DIR: 'NONE' }, 'cacheDir', undefined, null],
    [{ FORKTRACE_CACHE_DIR: 'cache' }, 'cacheDir', '/scratch/forktrace-cache-1000', 'FORKTRACE_CACHE_DIR="cache" is not supported; accepted: an absolute path, or none. Using the default folder.'],
    [{}, 'expressPatch', 'forktrace', null],
    [{ FORKTRACE_EXPRESS_PATCH: 'UPSTREAM' }, 'expressPatch', 'upstream', null],
    [{ FORKTRACE_EXPRESS_PATCH: 'lean' }, 'expressPatch', 'forktrace', 'FORKTRACE_EXPRESS_PATCH="lean" is not supported; accepted: forktrace, upstream. Using forktrace.'],
    [{}, 'httpPatch', 'forktrace', null],
    [{ FORKTRACE_HTTP_PATCH: 'upstream' }, 'httpPatch', 'upstream', null],
    [{ FORKTRACE_HTTP_PATCH: 'fast' }, 'httpPatch', 'forktrace', 'FORKTRACE_HTTP_PATCH="fast" is not supported; accepted: forktrace, upstream. Using forktrace.'],
    [{ FORKTRACE_SPOOL_MAX_BYTES: '100000' }, 'spoolMaxBytes', 100000, null],
    [{ FORKTRACE_SPOOL_MAX_AGE_MS: '3600000' }, 'spoolMaxAgeMillis', 3600000, null],
    [{ FORKTRACE_SPOOL_MAX_BYTES: '100' }, 'spoolMaxBytes', 8388608, 'FORKTRACE_SPOOL_MAX_BYTES="100" is not supported; accepted: a whole number from 65536 to 1073741824'],
    [{ FORKTRACE_MASK_DB_STATEMENTS: 'false' }, 'maskDbStatements', false, null],
    [{ FORKTRACE_EXPRESS_LAYERS: 'none' }, 'expressLayers', [], null],
    [{ FORKTRACE_EXPRESS_LAYERS: 'router,middleware,request_handler' }, 'expressLayers', ['router', 'middleware', 'request_handler'], null],
    [{ FORKTRACE_INSTRUMENT_PRIMARY: 'true' }, 'instrumentPrimary', true, null],
    [{ OTEL_NODE_DISABLED_INSTRUMENTATIONS: 'mysql2' }, 'instrumentations', { http: true, express: true, mysql2: false }, null],
    [{ OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'http,@opentelemetry/instrumentation-express' }, 'instrumentations', { http: true, express: true, mysql2: false }, null],
    [{ OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'none' }, 'instrumentations', { http: false, express: false, mysql2: false }, null],
    [{ OTEL_NODE_DISABLED_INSTRUMENTATIONS: 'redis,mysql2' }, 'instrumentations', { http: true, express: true, mysql2: false }, 'OTEL_NODE_DISABLED_INSTRUMENTATIONS="redis" is not supported; accepted: http, express, mysql2. Using the known names only.'],
  ];
  for (const [env, key, expected, warning] of cases) {
    // The default spool folder: in the host's temporary folder, named after the user.
    const c = resolve({ OTEL_SERVICE_NAME: 'x', ...env }, {}, host(APP, { tmpdir: '/scratch', user: '1000' }));
    assert.deepEqual(c[key], expected, JSON.stringify(env));
    if (warning === null) assert.deepEqual(c.warnings, [], JSON.stringify(env));
    else {
      assert.equal(c.warnings.length, 1, JSON.stringify(env));
      assert.ok(c.warnings[0].startsWith(warning), `got: ${c.warnings[0]}`);
    }
  }
});

test('batch processor settings from OTEL_BSP_*; the batch never exceeds the queue', () => {
  const c = resolve({ OTEL_BSP_SCHEDULE_DELAY: '200', OTEL_BSP_EXPORT_TIMEOUT: '3000', OTEL_BSP_MAX_QUEUE_SIZE: '100', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '512' });
  assert.deepEqual(c.batch, { scheduledDelayMillis: 200, exportTimeoutMillis: 3000, maxQueueSize: 100, maxExportBatchSize: 100 });
  assert.deepEqual(resolve({}, { batch: { maxQueueSize: 10 } }).batch.maxExportBatchSize, 10);
});

test('excluded URLs: option strings and RegExps, or comma-separated regexes in FORKTRACE_EXCLUDED_URLS', () => {
  const env = resolve({ OTEL_SERVICE_NAME: 'x', FORKTRACE_EXCLUDED_URLS: '^/health$, ^/metrics' });
  assert.deepEqual(env.excludedUrls.map(String), ['/^\\/health$/', '/^\\/metrics/']);
  assert.deepEqual(env.warnings, []);
  const bad = resolve({ OTEL_SERVICE_NAME: 'x', FORKTRACE_EXCLUDED_URLS: '^/ok$,(' });
  assert.equal(bad.excludedUrls.length, 1);
  assert.match(bad.warnings[0], /^FORKTRACE_EXCLUDED_URLS="\(" is not supported; accepted: comma-separated regular expressions/);
  const opt = resolve({ FORKTRACE_EXCLUDED_URLS: '^/ignored' }, { excludedUrls: ['^/a$', /^\/b/] });
  assert.deepEqual(opt.excludedUrls.map(String), ['/^\\/a$/', '/^\\/b/']);
});

test('a wrong option throws a TypeError or RangeError naming it in backticks', () => {
  const cases = [
    [{ serviceName: 42 }, TypeError, /^`serviceName` must be a non-empty string/],
    [{ serviceName: '' }, TypeError, /^`serviceName`/],
    [{ compression: 'br' }, TypeError, /^`compression` must be one of "gzip", "none"/],
    [{ exporters: 'otlp' }, TypeError, /^`exporters` must be an array/],
    [{ exporters: ['jaeger'] }, TypeError, /^`exporters\[\]` must be one of/],
    [{ timeoutMillis: -1 }, RangeError, /^`timeoutMillis` must be between 1 and 600000; got -1/],
    [{ exitDelivery: 'later' }, TypeError, /^`exitDelivery` must be one of "send", "spool", "off"/],
    [{ spoolDir: 'relative/spool' }, TypeError, /^`spoolDir` must be an absolute path, or false for no spool/],
    [{ spoolMaxBytes: 10 }, RangeError, /^`spoolMaxBytes` must be between 65536 and 1073741824; got 10/],
    [{ timeoutMillis: Number.NaN }, TypeError, /^`timeoutMillis` must be a finite number/],
    [{ batch: { maxQueueSize: 1e12 } }, RangeError, /^`batch.maxQueueSize` must be between/],
    [{ samplerRatio: 1.5 }, RangeError, /^`samplerRatio`/],
    [{ endpoint: 'localhost:4318' }, TypeError, /^`endpoint` uses the unsupported scheme "localhost"/],
    [{ endpoint: 'nope' }, TypeError, /^`endpoint` is not a URL/],
    [{ headers: { 'x-k': 'a\r\nb' } }, TypeError, /^`headers`: the value of "x-k" contains a line break/],
    [{ headers: { 'bad name': 'v' } }, TypeError, /^`headers`: "bad name" is not a valid HTTP header name/],
    [{ excludedUrls: ['('] }, TypeError, /^`excludedUrls`: "\(" is not a valid regular expression/],
    [{ instrumentations: { redis: false } }, TypeError, /^`instrumentations.redis` is unknown/],
    [{ maskDbStatements: 'no' }, TypeError, /^`maskDbStatements` must be true or false/],
    ['fast', TypeError, /^`options` must be an object/],
  ];
  for (const [options, type, message] of cases) {
    assert.throws(() => resolveConfig(options, {}, host(APP)), (e) => e instanceof type && message.test(e.message), JSON.stringify(options));
  }
  assert.throws(() => resolveConfig({ apiKey: 's3cr3t\n' }, {}, host(APP)), (e) => !e.message.includes('s3cr3t'));
});

test('the redacted config shows no secret', () => {
  const c = resolve(
    { FORKTRACE_API_KEY: 'canary-key-1', OTEL_EXPORTER_OTLP_HEADERS: 'x-other=canary-hdr-2', OTEL_EXPORTER_OTLP_ENDPOINT: 'https://u:canary-pw-3@h.example.com' },
    { headers: { 'x-opt': 'canary-opt-4' } },
  );
  const shown = JSON.stringify(redactConfig(c));
  for (const s of ['canary-key-1', 'canary-hdr-2', 'canary-pw-3', 'canary-opt-4']) assert.ok(!shown.includes(s), s);
  assert.equal(redactConfig(c).secrets, undefined);
});

test('pm2: ecosystem env keys inside pm2_env are seen before pm2 applies them, and win as pm2 makes them win', () => {
  const pm2Env = {
    name: 'web',
    pm_cwd: '/srv/app',
    pm_exec_path: '/srv/app/server.js',
    pm_id: 3,
    NODE_APP_INSTANCE: 1,
    kill_timeout: 1600,
    // pm2 puts the ecosystem env both at the top level and under .env.
    OTEL_SERVICE_NAME: 'from-ecosystem',
    FORKTRACE_API_KEY: 'eco-key',
    UNRELATED: 'x',
    OTEL_BSP_SCHEDULE_DELAY: 300, // a number in the ecosystem file stays a number in pm2_env
    FORKTRACE_INSTRUMENT_PRIMARY: true,
    env: { OTEL_SERVICE_NAME: 'from-ecosystem', FORKTRACE_API_KEY: 'eco-key', UNRELATED: 'x' },
  };
  // The worker inherits the daemon's env: OTEL_SERVICE_NAME here is a stale value from when the
  // daemon was spawned; pm2 overwrites it with pm2_env's before the app runs.
  const info = readPm2({ pm2_env: JSON.stringify(pm2Env), OTEL_SERVICE_NAME: 'stale-daemon-env', OTEL_LOG_LEVEL: 'debug' });
  assert.equal(info.env.OTEL_SERVICE_NAME, 'from-ecosystem');
  assert.equal(info.env.FORKTRACE_API_KEY, 'eco-key');
  assert.equal(info.env.OTEL_LOG_LEVEL, 'debug', 'keys pm2_env lacks stay as they are');
  assert.equal(info.env.UNRELATED, undefined, 'only OTEL_*, FORKTRACE_* and NODE_ENV are merged');
  assert.equal(info.env.OTEL_BSP_SCHEDULE_DELAY, '300');
  assert.equal(info.env.FORKTRACE_INSTRUMENT_PRIMARY, 'true');
  assert.deepEqual([info.appName, info.cwd, info.script, info.instance, info.pmId, info.killTimeout], ['web', '/srv/app', '/srv/app/server.js', 1, 3, 1600]);
  const c = resolveConfig({}, info.env, host(APP, { pm2: info, pm2EnvKeys: info.envKeys }));
  assert.equal(c.serviceName, 'from-ecosystem');
  assert.equal(c.sources.serviceName, 'pm2 env');
  assert.equal(c.sources.logLevel, 'env');
  assert.equal(readPm2({}), undefined);
  assert.equal(readPm2({ pm2_env: '{not json' }).env.pm2_env, '{not json', 'unreadable pm2_env falls back to the real env');
});

// Metrics headers (README "Metrics" → "Where they go"). On the traces' origin, metrics go to the
// same vendor or Collector and send what the spans send; on another origin, the OTLP spec's
// layers only, so that one vendor's key never goes to another.
const PEM_HOST = host(APP, { readFile: () => '-----BEGIN CERTIFICATE-----\n' });
const VENDOR_A = {
  OTEL_SERVICE_NAME: 'x',
  OTEL_METRICS_EXPORTER: 'otlp',
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://otlp.a.example/v1/traces',
  OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-team=blue',
  OTEL_EXPORTER_OTLP_CERTIFICATE: '/srv/ca.pem',
  FORKTRACE_API_KEY: 'key-of-a',
};

test("metrics on the traces' origin inherit the traces' headers, API key and CA file", () => {
  const cases = [
    // [label, extra env, options, expected metrics endpoint]
    ['derived from the traces endpoint', {}, {}, 'https://otlp.a.example/v1/metrics'],
    ['metrics variable, same origin', { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'https://otlp.a.example/otlp/metrics' }, {}, 'https://otlp.a.example/otlp/metrics'],
    ['option, same origin', {}, { metrics: { endpoint: 'https://otlp.a.example:443/m' } }, 'https://otlp.a.example/m'],
    ['headers option too', {}, { headers: { 'x-opt': 'o' } }, 'https://otlp.a.example/v1/metrics'],
  ];
  for (const [label, env, options, endpoint] of cases) {
    const c = resolveConfig(options, { ...VENDOR_A, ...env }, PEM_HOST);
    assert.equal(c.metrics.endpoint, endpoint, label);
    assert.deepEqual(c.metrics.headers, c.headers, `${label}: the traces' headers, API key included`);
    assert.equal(c.metrics.headers['x-api-key'], 'key-of-a', label);
    assert.equal(c.metrics.certificateFile, '/srv/ca.pem', label);
  }
  // The traces URL's credentials too, when the metrics URL has none of its own.
  const basic = resolve({ OTEL_METRICS_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: 'https://u:p@otlp.a.example' }, { metrics: { endpoint: 'https://otlp.a.example/m' } });
  assert.equal(basic.metrics.headers.authorization, 'Basic ' + Buffer.from('u:p').toString('base64'));
});

test("metrics on another origin: no traces headers, no API key, no CA file; the generic and metrics headers only", () => {
  const generic = { OTEL_EXPORTER_OTLP_HEADERS: 'x-org=acme,x-team=generic' };
  const cases = [
    // [label, extra env, options, expected metrics headers]
    ['metrics variable', { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'https://metrics.b.example/v1/metrics' }, {}, {}],
    ['option', {}, { metrics: { endpoint: 'https://metrics.b.example/v1/metrics' } }, {}],
    ['same host, another port', { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'https://otlp.a.example:8443/v1/metrics' }, {}, {}],
    ['http, not https', { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://otlp.a.example/v1/metrics' }, {}, {}],
    ['generic endpoint, traces elsewhere', { OTEL_EXPORTER_OTLP_ENDPOINT: 'https://metrics.b.example', ...generic }, {}, { 'x-org': 'acme', 'x-team': 'generic' }],
    [
      'metrics headers and URL credentials',
      { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'https://b-user:b-pass@metrics.b.example/v1/metrics', OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'x-b-key=b1', ...generic },
      { metrics: { headers: { 'X-B-Extra': 'b2' } } },
      { authorization: 'Basic ' + Buffer.from('b-user:b-pass').toString('base64'), 'x-org': 'acme', 'x-team': 'generic', 'x-b-key': 'b1', 'x-b-extra': 'b2' },
    ],
  ];
  for (const [label, env, options, expected] of cases) {
    const c = resolveConfig({ headers: { 'x-opt': 'o' }, ...options }, { ...VENDOR_A, ...env }, PEM_HOST);
    assert.equal(c.headers['x-api-key'], 'key-of-a', `${label}: the spans keep the key`);
    assert.deepEqual(c.metrics.headers, expected, label);
    assert.ok(!Object.values(c.metrics.headers).includes('key-of-a'), `${label}: the API key is never sent to another origin`);
    assert.equal(c.metrics.certificateFile, undefined, `${label}: the system CAs`);
  }
});

test('a metrics header beats the API key of the same name (variable and option)', () => {
  const env = { ...VENDOR_A, OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'X-Api-Key=key-for-metrics' };
  const c = resolveConfig({}, env, PEM_HOST);
  assert.equal(c.headers['x-api-key'], 'key-of-a');
  assert.equal(c.metrics.headers['x-api-key'], 'key-for-metrics');
  assert.equal(c.metrics.headers['x-team'], 'blue');
  assert.equal(c.sources['metricsHeaders.x-api-key'], 'env');
  const o = resolveConfig({ metrics: { headers: { 'x-api-key': 'from-option' } } }, env, PEM_HOST);
  assert.equal(o.metrics.headers['x-api-key'], 'from-option');
  const header = resolveConfig({}, { ...env, FORKTRACE_API_KEY_HEADER: 'x-vendor-key', OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'x-vendor-key=m' }, PEM_HOST);
  assert.equal(header.headers['x-vendor-key'], 'key-of-a');
  assert.equal(header.metrics.headers['x-vendor-key'], 'm');
});
