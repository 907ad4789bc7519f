// The preload's code cache (src/code-cache.ts): `node --require dist/register.js` on the example
// app, with FORKTRACE_CACHE_DIR set to a folder of this file's own.
//
// What a user checks: the first start writes one file, private to them, and the next starts use it
// (V8 accepted it: it is not written again); a broken cache file costs nothing but the cache, and
// is replaced; a folder others could write is refused with one warning naming the setting; traces
// arrive in every case. What it saves is a benchmark figure (BENCHMARKS.md), not asserted here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { EXAMPLE, REGISTER_CJS, get, receiverForThisFile, spawnNode, waitUntil } from './helpers.mjs';

const require = createRequire(import.meta.url);
const { WRITE_AFTER_MS, flagsOf } = require('../dist/code-cache.js');

const receiver = receiverForThisFile();

const helloSpans = () => receiver.spans.filter((s) => s.name === 'GET /hello').length;

/** Starts the example app traced with the cache in `dir`, answers one /hello, and returns the app. */
async function startApp(dir) {
  const app = spawnNode(['--require', REGISTER_CJS, path.join(EXAMPLE, 'server.js')], {
    cwd: EXAMPLE,
    env: { PORT: '0', OTEL_SERVICE_NAME: 'cache-app', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url, FORKTRACE_CACHE_DIR: dir },
  });
  const { listening: port } = await app.ready;
  app.spansBefore = helloSpans();
  assert.equal((await get(`http://127.0.0.1:${port}/hello`)).status, 200);
  return app;
}

/** Stops `app` and checks that its /hello trace arrived. */
async function stopAndCheckTrace(app) {
  assert.deepEqual(await app.kill('SIGTERM'), { code: null, signal: 'SIGTERM' });
  await waitUntil(() => helloSpans() > app.spansBefore, { what: 'the /hello span' });
  assert.doesNotMatch(app.stderr, /forktrace: (warning|error)/);
}

const cacheFiles = (dir) => fs.readdirSync(dir).filter((n) => n.endsWith('.v8cache'));
const tmpDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'forktrace-cache-test-'));

test('written once after the first start, private; used by the next start; a broken file is replaced', async (t) => {
  const parent = tmpDir();
  t.after(() => fs.rmSync(parent, { recursive: true, force: true }));
  const dir = path.join(parent, 'cache'); // made by forktrace

  const first = await startApp(dir);
  const [name] = await waitUntil(() => (cacheFiles(dir).length ? cacheFiles(dir) : undefined), {
    timeoutMs: WRITE_AFTER_MS + 10_000,
    what: 'the cache file',
  });
  await stopAndCheckTrace(first);
  const file = path.join(dir, name);
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(fs.readdirSync(dir), [name], 'one file, no temporary file left');

  // Accepted by V8: a rejected cache would be written again WRITE_AFTER_MS after the start.
  const written = fs.readFileSync(file);
  const mtime = fs.statSync(file).mtimeMs;
  const second = await startApp(dir);
  await new Promise((r) => setTimeout(r, WRITE_AFTER_MS + 1500));
  await stopAndCheckTrace(second);
  assert.equal(fs.statSync(file).mtimeMs, mtime, 'the second start used the file as it was');
  // Not a file of its own either (a start that looked for another name would have written one).
  assert.deepEqual(fs.readdirSync(dir), [name]);

  // A file V8 cannot use: the start goes on without it, and the file is written anew.
  fs.writeFileSync(file, Buffer.alloc(written.length, 0x5a));
  const third = await startApp(dir);
  await waitUntil(() => !fs.readFileSync(file).equals(Buffer.alloc(written.length, 0x5a)), {
    timeoutMs: WRITE_AFTER_MS + 10_000,
    what: 'the broken cache file to be replaced',
  });
  await stopAndCheckTrace(third);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
});

test('a folder others can write, or that is not this user’s, is refused with one warning; the app is traced', async (t) => {
  const dir = tmpDir();
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.chmodSync(dir, 0o777);
  const cases = [['writable by group and others', () => {}]];
  // As root, a folder of another user's can be made too.
  if (process.getuid?.() === 0) cases.push(['belongs to another user', () => fs.chownSync(dir, 65534, 65534)]);
  for (const [i, [problem, make]] of cases.entries()) {
    make();
    const app = await startApp(dir);
    // The first start lives past the moment a cache would be written, so that "nothing written"
    // below can fail; the second only needs its warning.
    if (i === 0) await new Promise((r) => setTimeout(r, WRITE_AFTER_MS + 1500));
    assert.deepEqual(await app.kill('SIGTERM'), { code: null, signal: 'SIGTERM' });
    const warnings = app.stderr.split('\n').filter((l) => l.startsWith('forktrace: warning:'));
    assert.equal(warnings.length, 1, app.stderr);
    assert.match(warnings[0], new RegExp(`code cache is off \\(.*${problem}.*\\); set FORKTRACE_CACHE_DIR`));
    assert.deepEqual(cacheFiles(dir), []);
  }
  await waitUntil(() => helloSpans() >= cases.length, {
    what: 'a /hello span from each start',
  });
});

test('the cache is shared by apps that differ only in what they preload or evaluate, not by other flags', () => {
  const a = flagsOf(['--require', '/x/dist/register.js', '--max-old-space-size=512'], '--import other.mjs');
  const b = flagsOf(['-r', 'register', '--max-old-space-size=512', '-e', 'code()'], '--require=y.js');
  assert.deepEqual(a, ['--max-old-space-size=512']);
  assert.deepEqual(b, a);
  assert.deepEqual(flagsOf(['--max-semi-space-size=16']), ['--max-semi-space-size=16']);
});
