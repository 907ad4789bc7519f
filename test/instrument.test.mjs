// instrument() itself, each case in its own Node process (it patches modules process-wide):
// idempotence, the handle it returns, OTEL_SDK_DISABLED, and wrong options.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { DIST, ROOT, killStarted, spawnNode } from './helpers.mjs';

after(killStarted);

const INDEX = JSON.stringify(path.join(DIST, 'index.js'));

/** Runs `body` (with `ft` = forktrace) in a fresh process and returns its `{result}` line. */
async function run(body, env = {}) {
  const script = `
    const ft = require(${INDEX});
    (async () => {
      const result = await (async () => { ${body} })();
      process.stdout.write(JSON.stringify({ result }) + '\\n');
    })().catch((e) => process.stdout.write(JSON.stringify({ result: { threw: e.constructor.name, message: e.message } }) + '\\n'));
  `;
  const p = spawnNode(['-e', script], { cwd: ROOT, readyKey: 'result', env: { OTEL_SERVICE_NAME: 'unit', OTEL_TRACES_EXPORTER: 'none', ...env } });
  const { result } = await p.ready;
  const exit = await p.exited;
  return { result, stderr: p.stderr, exit };
}

test('a second call returns the same handle; different options log one warning', async () => {
  const { result, stderr, exit } = await run(`
    const a = ft.instrument({ serviceName: 'first' });
    const b = ft.instrument({ serviceName: 'first' });
    const c = ft.instrument({ serviceName: 'second' });
    const d = ft.instrument();
    return { same: a === b && b === c && c === d, service: c.config.serviceName, active: a.active };
  `);
  assert.deepEqual(result, { same: true, service: 'first', active: true });
  assert.deepEqual(exit, { code: 0, signal: null });
  // OTEL_TRACES_EXPORTER=none (run's default here): the status line says spans go nowhere, and why.
  assert.ok(stderr.includes(`forktrace: tracing first (pid `) && stderr.includes(`) to nowhere (OTEL_TRACES_EXPORTER=none)\n`), stderr);
  const warnings = stderr.split('\n').filter((l) => l.includes('warning'));
  assert.deepEqual(warnings, [
    "forktrace: warning: instrument() was called again with different options; the first call's configuration stays in effect.",
  ]);
});

test('the handle: redacted config, stats, forceFlush and shutdown that never reject', async () => {
  const { result } = await run(
    `
    const h = ft.instrument({ apiKey: 'canary-abc-123', headers: { 'x-team': 'canary-team-456' } });
    const { trace } = require('@opentelemetry/api');
    trace.getTracer('t').startSpan('one').end();
    const before = h.stats();
    await h.forceFlush();
    await h.shutdown();
    await h.shutdown();
    return { json: JSON.stringify(h.config), headers: h.config.headers, before, active: h.active };
  `,
    { OTEL_TRACES_EXPORTER: 'console' },
  );
  assert.ok(!result.json.includes('canary'), 'no secret in handle.config');
  assert.deepEqual(result.headers, { 'x-api-key': '[REDACTED]', 'x-team': '[REDACTED]' });
  assert.equal(result.before.ended, 1);
  assert.equal(result.active, false);
});

test('OTEL_SDK_DISABLED=true: a no-op handle and one line', async () => {
  const { result, stderr } = await run(
    `
    const h = ft.instrument({ serviceName: 'x' });
    const { trace } = require('@opentelemetry/api');
    const span = trace.getTracer('t').startSpan('one');
    const recording = span.isRecording();
    span.end();
    await h.forceFlush();
    return { active: h.active, recording, stats: h.stats(), disabled: h.config.disabled };
  `,
    { OTEL_SDK_DISABLED: 'true' },
  );
  const { stats, ...rest } = result;
  assert.deepEqual(rest, { active: false, recording: false, disabled: true });
  assert.ok('ended' in stats && 'delivered' in stats, JSON.stringify(stats));
  assert.deepEqual(Object.values(stats).filter((v) => v !== 0), [], 'every count is 0');
  assert.equal(stderr, 'forktrace: not instrumented: OTEL_SDK_DISABLED=true.\n');
});

test('a wrong option throws (a programmer error) and nothing starts', async () => {
  const { result } = await run(`
    try { ft.instrument({ compression: 'brotli' }); } catch (e) { return { threw: e.constructor.name, message: e.message, after: ft.instrument().active }; }
  `);
  assert.deepEqual(result, { threw: 'TypeError', message: '`compression` must be one of "gzip", "none".', after: true });
});
