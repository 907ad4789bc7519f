// The settings table (src/config/settings.ts) and what is derived from it, in process: every
// row's default and source, one warning per bad variable, the option checks, check's settings
// report with its labels and variables, the list of known variables, and the README table.
// A new row is covered here without a test of its own for these; its own behaviour (what a
// valid value does) still wants a case in config.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { renderConfigTable, readmeTable, BEGIN, END } from '../scripts/config-table.mjs';

const require = createRequire(import.meta.url);
const { resolveConfig } = require('../dist/index.js');
const { SETTINGS, SETTING_ROWS, KNOWN_VARIABLES } = require('../dist/config/settings.js');
const { optionAt } = require('../dist/config/validate.js');
const { settingsReport, settingLabel } = require('../dist/tools/check/settings-report.js');
const { configMessages } = require('../dist/worker/messages.js');

const host = { cwd: '/srv/app', entryScript: '/srv/app/server.js', readJson: () => undefined, readFile: () => undefined, tmpdir: '/scratch', user: '1000' };
const resolve = (env, options) => resolveConfig(options, { OTEL_SERVICE_NAME: 'x', ...env }, host);
const regular = SETTING_ROWS.filter((s) => s.parser !== undefined);
// Where ResolvedConfig holds a regular setting: its option path, else its key.
const at = (config, s) => optionAt(config, s.option ?? s.key);

test('the table: unique keys and variables, every row labelled and documented', () => {
  assert.deepEqual(SETTING_ROWS.map((s) => s.key), Object.keys(SETTINGS));
  const options = SETTING_ROWS.filter((s) => s.option).map((s) => s.option);
  assert.equal(new Set(options).size, options.length);
  for (const s of SETTING_ROWS) {
    assert.ok(s.label && s.doc && /[.]$/.test(s.doc), `${s.key}: label and a one-line doc ending in a period`);
    assert.ok(!s.doc.includes('\n'), s.key);
    assert.ok(s.parser !== undefined || s.check !== undefined || s.option === undefined, `${s.key}: an option is checked`);
    for (const v of s.env) assert.match(v, /^(OTEL_|FORKTRACE_|NODE_ENV$)/, `${s.key}: ${v}`);
  }
  for (const v of ['OTEL_EXPORTER_OTLP_PROTOCOL', 'FORKTRACE_WORKER_INDEX', 'FORKTRACE_SPOOL_DIR']) assert.ok(KNOWN_VARIABLES.includes(v), v);
});

test('every regular setting: its default with source "default", and no warning, when nothing is set', () => {
  const c = resolve({});
  assert.deepEqual(c.warnings, []);
  for (const s of regular) {
    assert.equal(c.sources[s.key], 'default', s.key);
    if (s.secret) continue; // a secret is never in the config (the API key becomes a header)
    if (s.key === 'spoolDir' || s.key === 'cacheDir') continue; // undefined means "the default folder", resolved after
    assert.deepEqual(at(c, s), s.default, s.key);
  }
});

test('every regular setting: a bad variable gives one warning (code, setting, variable named) and the default', () => {
  for (const s of regular) {
    for (const name of s.env) {
      // Bad for every parser: not a number, boolean, name, path or list item, and holds a line break.
      const raw = 'nope\u01c2 no\nway';
      const c = resolve({ [name]: raw });
      assert.equal(c.findings.length, 1, `${name}: ${c.warnings.join(' | ')}`);
      const [f] = c.findings;
      assert.deepEqual([f.code, f.setting, f.severity], ['bad-value', s.key, 'problem'], name);
      assert.ok(f.text.startsWith(`${name}${s.secret ? ' ' : '='}`), f.text);
      assert.ok(!/[\r\n]/.test(f.text), 'one line');
      if (s.secret) assert.ok(!f.text.includes('nope'), `${name}: a secret's value is never quoted`);
      assert.equal(c.sources[s.key], 'default', name);
      assert.equal(c.variables[s.key], undefined, name);
      if (!s.secret && s.key !== 'spoolDir' && s.key !== 'cacheDir') assert.deepEqual(at(c, s), s.default, name);
    }
  }
});

test('every regular setting with an option: the option wins over the variable, and its source is "option"', () => {
  for (const s of regular.filter((r) => r.option !== undefined && r.default !== undefined)) {
    const [name] = s.env;
    const options = {};
    const parts = s.option.split('.');
    parts.slice(0, -1).reduce((o, p) => (o[p] ??= {}), options)[parts.at(-1)] = s.default;
    const c = resolve({ [name]: 'nope' }, options);
    assert.equal(c.sources[s.key], 'option', s.key);
    assert.deepEqual(c.warnings, [], `${s.key}: a variable the option overrides is not read`);
  }
});

test('every option row: a value of the wrong type throws a TypeError naming the option in backticks', () => {
  for (const s of SETTING_ROWS.filter((r) => r.option !== undefined)) {
    const options = {};
    const parts = s.option.split('.');
    parts.slice(0, -1).reduce((o, p) => (o[p] ??= {}), options)[parts.at(-1)] = Symbol('wrong');
    assert.throws(
      () => resolveConfig(options, {}, host),
      (e) => (e instanceof TypeError || e instanceof RangeError) && e.message.startsWith(`\`${s.option}`),
      s.option,
    );
  }
});

test('the variable a setting was read from: the first one set wins, and it is recorded', () => {
  const c = resolve({ OTEL_EXPORTER_OTLP_TIMEOUT: '100', OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '200', FORKTRACE_SPOOL_MAX_BYTES: '100000' });
  assert.equal(c.timeoutMillis, 200);
  assert.equal(c.variables.timeoutMillis, 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT');
  assert.equal(c.variables.spoolMaxBytes, 'FORKTRACE_SPOOL_MAX_BYTES');
  assert.equal(c.variables.serviceName, 'OTEL_SERVICE_NAME');
  // A variable the signal-specific one hides is not read at all, even when it is bad.
  const hidden = resolve({ OTEL_EXPORTER_OTLP_COMPRESSION: 'brotli', OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'none' });
  assert.deepEqual([hidden.compression, hidden.warnings], ['none', []]);
});

test('warnings are values, in table order, whatever order resolution met them in', () => {
  const c = resolve({
    FORKTRACE_SPOOL_MAX_AGE_MS: 'soon',
    OTEL_EXPORTER_OTLP_HEADERS: 'k',
    OTEL_RESOURCE_ATTRIBUTES: 'team',
    OTEL_SDK_DISABLED: 'maybe',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
  });
  assert.deepEqual(
    c.findings.map((f) => [f.code, f.setting]),
    [
      ['bad-value', 'disabled'],
      ['bad-pair', 'resourceAttributes'],
      ['protocol-unsupported', 'endpoint'],
      ['bad-pair', 'headers'],
      ['bad-value', 'spoolMaxAgeMillis'],
    ],
  );
  assert.deepEqual(c.warnings, c.findings.map((f) => f.text));
  // Word for word from the messages module: an attribute is named an attribute, a header a header.
  assert.equal(c.warnings[1], configMessages.badPair('OTEL_RESOURCE_ATTRIBUTES', 'attribute', '#1', "has no '=' (write key=value); skipped"));
  assert.equal(c.warnings[3], configMessages.badPair('OTEL_EXPORTER_OTLP_HEADERS', 'header', '#1', "has no '=' (write key=value); skipped"));
});

test('a fallback service name is a note, unknown_service a problem', () => {
  const pkg = resolveConfig({}, {}, { ...host, readJson: (f) => (f === '/srv/app/package.json' ? { name: 'shop' } : undefined) });
  assert.deepEqual(pkg.findings.map((f) => [f.code, f.severity]), [['service-name-fallback', 'note']]);
  const none = resolveConfig({}, {}, host);
  assert.deepEqual(none.findings.map((f) => [f.code, f.severity]), [['service-name-fallback', 'problem']]);
});

test("check's settings report: every row, in table order, labelled, with the variable that set it", () => {
  const c = resolve({
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
    FORKTRACE_API_KEY: 'canary-key-91',
    OTEL_EXPORTER_OTLP_HEADERS: 'x-team=canary-hdr-92',
    FORKTRACE_EXIT_DELIVERY: 'spool',
    FORKTRACE_SPOOL_DIR: '/var/spool/app',
    FORKTRACE_REQUIRE_TLS: 'false',
  });
  const report = settingsReport(c);
  const keys = Object.keys(report);
  const expected = SETTING_ROWS.flatMap((s) => (s.key === 'headers' ? ['headers.x-team', 'headers.x-api-key'] : [s.option ?? s.key]));
  assert.deepEqual(keys, expected);
  // The crash-delivery settings and the TLS ones have their variable now (issue 11).
  assert.deepEqual(report.exitDelivery, { value: 'spool', source: 'env', variable: 'FORKTRACE_EXIT_DELIVERY' });
  assert.deepEqual(report.spoolDir, { value: '/var/spool/app', source: 'env', variable: 'FORKTRACE_SPOOL_DIR' });
  assert.deepEqual(report.requireTls, { value: false, source: 'env', variable: 'FORKTRACE_REQUIRE_TLS' });
  assert.deepEqual(report.certificateFile, { value: null, source: 'default' });
  assert.deepEqual(report['batch.maxQueueSize'], { value: 2048, source: 'default' });
  assert.deepEqual(report.apiKey, { value: 'set (sent in x-api-key)', source: 'env', variable: 'FORKTRACE_API_KEY' });
  assert.deepEqual(report['headers.x-team'], { value: '[REDACTED]', source: 'env' });
  assert.deepEqual(report['headers.x-api-key'], { value: '[REDACTED]', source: 'env' });
  const shown = JSON.stringify(report);
  assert.ok(!shown.includes('canary-key-91') && !shown.includes('canary-hdr-92'));
  for (const k of keys) assert.notEqual(settingLabel(k), '', k);
  assert.equal(settingLabel('spoolMaxAgeMillis'), 'spool max age (ms)');
  assert.equal(settingLabel('certificateFile'), 'CA certificate file');
  assert.equal(settingLabel('headers.x-team'), 'header x-team');
  // Basic auth from the URL is reported as such.
  const basic = settingsReport(resolve({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://u:p@otlp.example.com' }));
  assert.deepEqual(basic['headers.authorization'], { value: '[REDACTED]', source: 'endpoint URL' });
});

test("check's settings report: a stop deadline of 0 shows the exit delivery off, set by the deadline's variable or option", () => {
  const fromEnv = settingsReport(resolve({ FORKTRACE_SHUTDOWN_TIMEOUT_MS: '0', FORKTRACE_EXIT_DELIVERY: 'send' }));
  assert.deepEqual(fromEnv.exitDelivery, { value: 'off', source: 'env', variable: 'FORKTRACE_SHUTDOWN_TIMEOUT_MS' });
  assert.deepEqual(fromEnv.spoolDir, { value: null, source: 'default' });
  const fromOption = settingsReport(resolve({}, { shutdownTimeoutMillis: 0, exitDelivery: 'spool' }));
  assert.deepEqual(fromOption.exitDelivery, { value: 'off', source: 'option' });
});

test('README: the configuration table is the one the settings table renders (npm run readme rewrites it)', () => {
  const inReadme = readmeTable();
  assert.ok(inReadme !== undefined, `README.md has the markers ${BEGIN} … ${END}`);
  assert.equal(inReadme, renderConfigTable(), 'README.md is out of date: run npm run readme');
});
