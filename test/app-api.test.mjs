// The app's own @opentelemetry/api is honoured (issue 10, step 3). Every copy of the API shares one
// object of globals stamped with the version of the copy that created it, and a copy ignores a
// stamp older (minor) than itself: when forktrace stamped 1.9, an app on 1.10 got non-recording
// spans with an all-zero trace id, silently. forktrace now registers through the newest copy.
//
// Each case is a fixture app (test/fixtures/own-api, express + its own API copy in node_modules):
//   1.9.0   the real 1.9.0 (devDependency otel-api-1.9)       older than forktrace's: reads its stamp
//   1.10.0  the real 1.10.0, forktrace's own version           same
//   1.11.0  a copy of 1.10.0 stamped 1.11.0 (simulated)        newer: globals go through the app's copy
//   2.0.0   a copy of 1.10.0 stamped 2.0.0 (simulated)         another major: cannot work, one warning
// Each app's GET /work/:id gives, in one trace:
//   GET /work/:id                          server, http
//   └─ request handler - /work/:id         express
//      └─ manual outer                     the app's own API copy (startActiveSpan)
//         └─ manual inner                  the app's own API copy, parent from its context
// and the app answers with the traceparent its own propagator wrote.
// Run with --require and --import in plain node, and under pm2 cluster mode; then `forktrace check`.
// Not covered: a real 1.11 release (none exists yet), an app with several API copies at once.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { REGISTER_CJS, REGISTER_ESM, ROOT, SERVER, byName, childrenOf, cleanEnv, freePort, get, receiverForThisFile, spawnNode } from './helpers.mjs';
import { startPm2, waitForWorkers } from './pm2-helpers.mjs';

const require = createRequire(import.meta.url);
const { planGlobals } = require('../dist/worker/app-api.js');
const { apiMessages } = require('../dist/worker/messages.js');

const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'own-api');
const API_1_10 = path.join(ROOT, 'node_modules', '@opentelemetry', 'api');
const API_1_9 = path.join(ROOT, 'node_modules', 'otel-api-1.9');
const OWN = JSON.parse(fs.readFileSync(path.join(API_1_10, 'package.json'), 'utf8')).version;
const BIN = path.join(ROOT, 'dist', 'cli', 'main.js');

const receiver = receiverForThisFile();

// The version string of a built 1.x API lives in package.json, dist/version.{cjs,mjs} and, inlined
// by its bundler, in the registration check of dist/internal/global-utils.{cjs,mjs}.
const STAMPED_FILES = ['package.json', 'dist/version.cjs', 'dist/version.mjs', 'dist/internal/global-utils.cjs', 'dist/internal/global-utils.mjs'];

/** Copies the API package at `from` to `to`; with `stamp`, rewrites its version everywhere it is written. */
function copyApi(from, to, stamp) {
  fs.cpSync(from, to, { recursive: true });
  if (stamp === undefined) return;
  const version = JSON.parse(fs.readFileSync(path.join(from, 'package.json'), 'utf8')).version;
  const changed = [];
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(cjs|mjs|js|json)$/.test(e.name)) {
        const text = fs.readFileSync(p, 'utf8');
        const next = text.replaceAll(`"${version}"`, `"${stamp}"`);
        if (next !== text) {
          fs.writeFileSync(p, next);
          changed.push(path.relative(to, p));
        }
      }
    }
  };
  walk(to);
  // If upstream writes its version somewhere else, the simulation would be a half-1.10: say so.
  assert.deepEqual(changed.sort(), [...STAMPED_FILES].sort(), `the API ${version} writes its version in other files than before`);
}

const apps = new Map();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'forktrace-own-api-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A fixture app folder whose node_modules holds express and the API copy of `version`. */
function appWith(version) {
  if (apps.has(version)) return apps.get(version);
  const dir = path.join(tmp, `api-${version}`);
  fs.mkdirSync(path.join(dir, 'node_modules', '@opentelemetry'), { recursive: true });
  for (const f of ['server.js', 'server.mjs']) fs.copyFileSync(path.join(FIXTURE, f), path.join(dir, f));
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `own-api-${version}`, version: '1.0.0', private: true }));
  fs.symlinkSync(path.join(ROOT, 'node_modules', 'express'), path.join(dir, 'node_modules', 'express'), 'dir');
  const api = path.join(dir, 'node_modules', '@opentelemetry', 'api');
  if (version === '1.9.0') copyApi(API_1_9, api);
  else if (version === OWN) copyApi(API_1_10, api);
  else copyApi(API_1_10, api, version);
  assert.equal(JSON.parse(fs.readFileSync(path.join(api, 'package.json'), 'utf8')).version, version);
  apps.set(version, dir);
  return dir;
}

const PRELOADS = [
  { name: '--require', flag: ['--require', REGISTER_CJS], script: 'server.js', pm2Args: ['--require', REGISTER_CJS] },
  { name: '--import', flag: ['--import', REGISTER_ESM], script: 'server.mjs', pm2Args: ['--import', pathToFileURL(REGISTER_ESM).href] },
];
const KEPT = ['1.9.0', OWN, '1.11.0'];

/** The spans of one /work request of `service`, once all four arrived. */
async function workTrace(service, traceId) {
  const spans = await receiver.waitFor((s) => s.filter((x) => x.traceId === traceId && x.resource['service.name'] === service).length >= 4, 10_000);
  return spans.filter((x) => x.traceId === traceId);
}

/** Asserts the tree drawn at the top, and what the app's own copy saw. */
function assertManualTree(spans, answer) {
  const [server] = byName(spans, 'GET /work/:id');
  assert.ok(server, `a server span; got ${spans.map((s) => s.name).join(', ')}`);
  assert.equal(server.kind, SERVER);
  assert.equal(server.parentSpanId, '');
  const [handler] = childrenOf(spans, server);
  assert.equal(handler?.name, 'request handler - /work/:id');
  const [outer] = childrenOf(spans, handler);
  assert.equal(outer?.name, 'manual outer', 'the manual span is a child of the express handler span');
  assert.equal(outer.scope.name, 'own-api-app');
  assert.equal(outer.attributes['work.id'], answer.id);
  const [inner] = childrenOf(spans, outer);
  assert.equal(inner?.name, 'manual inner', "the app's copy's context made the outer span active");
  assert.equal(answer.recording, true);
  assert.equal(answer.traceparent, `00-${server.traceId}-${outer.spanId}-01`, "the app's copy's propagator is forktrace's");
}

for (const version of KEPT) {
  for (const preload of PRELOADS) {
    test(`app on @opentelemetry/api ${version}, ${preload.name}: manual spans recorded under the express handler span`, async () => {
      const dir = appWith(version);
      const service = `own-api-${version}-${preload.name.slice(2)}`;
      const app = spawnNode([...preload.flag, path.join(dir, preload.script)], {
        cwd: dir,
        env: { OTEL_SERVICE_NAME: service, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '50' },
      });
      const { listening: port, api } = await app.ready;
      // The app really loaded the copy next to it, not forktrace's.
      const loaded = api.startsWith('file:') ? fileURLToPath(api) : api;
      assert.ok(loaded.startsWith(path.join(fs.realpathSync(dir), 'node_modules', '@opentelemetry', 'api')), loaded);

      const res = await get(`http://127.0.0.1:${port}/work/${version}`);
      assert.equal(res.status, 200);
      const answer = { ...JSON.parse(res.body), id: version };
      assert.notEqual(answer.traceId, '0'.repeat(32), "the app's copy got a real span");
      assertManualTree(await workTrace(service, answer.traceId), answer);

      const { code, signal } = await app.kill('SIGTERM');
      assert.deepEqual({ code, signal }, { code: null, signal: 'SIGTERM' });
      // Nothing but the status line: a newer API is taken care of without a word at the default level.
      assert.equal(app.stderr, `forktrace: tracing ${service} (pid ${app.pid}) to ${receiver.url} (gzip)\n`);
    });
  }
}

for (const preload of PRELOADS) {
  test(`app on @opentelemetry/api 2.0.0 (another major), ${preload.name}: one warning naming both versions and the fix; forktrace's spans still flow`, async () => {
    const dir = appWith('2.0.0');
    const service = `own-api-2-${preload.name.slice(2)}`;
    const app = spawnNode([...preload.flag, path.join(dir, preload.script)], {
      cwd: dir,
      env: { OTEL_SERVICE_NAME: service, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '50' },
    });
    const { listening: port } = await app.ready;
    const res = await get(`http://127.0.0.1:${port}/work/two`);
    assert.equal(res.status, 200, 'the app runs');
    const answer = JSON.parse(res.body);
    assert.equal(answer.traceId, '0'.repeat(32));
    assert.equal(answer.traceparent, null);
    const spans = await receiver.waitFor((s) => s.filter((x) => x.resource['service.name'] === service).length >= 2, 10_000);
    const mine = spans.filter((x) => x.resource['service.name'] === service);
    const [server] = byName(mine, 'GET /work/:id');
    assert.equal(childrenOf(mine, server)[0]?.name, 'request handler - /work/:id');
    await app.kill('SIGTERM');
    assert.deepEqual(receiver.spans.filter((x) => x.resource['service.name'] === service && x.scope.name === 'own-api-app'), []);
    assert.equal(
      app.stderr,
      `forktrace: warning: ${apiMessages.notAccepted('2.0.0', OWN)}\nforktrace: tracing ${service} (pid ${app.pid}) to ${receiver.url} (gzip)\n`,
    );
    assert.match(app.stderr, new RegExp(`is 2\\.0\\.0, .*@opentelemetry/api ${OWN.replaceAll('.', '\\.')}\\).*npm install @opentelemetry/api@\\^${OWN.replaceAll('.', '\\.')}`));
  });
}

test('under pm2 cluster mode: every version, --require and --import, manual spans under the express handler span', async (t) => {
  const pm2 = await startPm2();
  t.after(() => pm2.kill());
  const eco = [];
  for (const version of KEPT) {
    for (const preload of PRELOADS) {
      const name = `own-api-${version}-${preload.name.slice(2)}`;
      const port = await freePort();
      eco.push({
        name,
        port,
        app: {
          name,
          script: preload.script,
          cwd: appWith(version),
          exec_mode: 'cluster',
          instances: 1,
          node_args: preload.pm2Args,
          env: { PORT: String(port), OTEL_SERVICE_NAME: name, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '50' },
        },
      });
    }
  }
  const file = path.join(tmp, 'own-api.config.js');
  fs.writeFileSync(file, `module.exports = ${JSON.stringify({ apps: eco.map((e) => e.app) }, null, 2)};\n`);
  // pm2's daemon cwd is elsewhere, and argv[1] of each worker is pm2's ProcessContainer: the app's
  // API copy is found from pm2's script path.
  await pm2.run(['start', file], { cwd: os.tmpdir(), timeoutMs: 60_000 });

  const procs = await pm2.jlist();
  for (const { name, port } of eco) {
    const base = `http://127.0.0.1:${port}`;
    await waitForWorkers(`${base}/work/warmup`, 1, 30_000);
    const res = await get(`${base}/work/${name}`);
    assert.equal(res.status, 200, name);
    const answer = { ...JSON.parse(res.body), id: name };
    const spans = await workTrace(name, answer.traceId);
    assertManualTree(spans, answer);
    const proc = procs.find((p) => p.name === name);
    assert.equal(proc.pm2_env.exec_mode, 'cluster_mode');
    assert.equal(spans[0].resource['forktrace.process_manager'], 'pm2');
    assert.equal(spans[0].resource['process.pid'], answer.pid);
  }
  // No warning in the daemon's log (where a preload's output goes before pm2 takes stderr over).
  assert.deepEqual(pm2.log().split('\n').filter((l) => /forktrace: (warning|error)/.test(l)), []);
});

const CHECK_TIMEOUT_MS = 20_000;

/** `forktrace check` to completion: { code, stdout, stderr }; one that does not end fails. */
function check(args, cwd) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'check', ...args], { cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (c) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c) => (stderr += c));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, CHECK_TIMEOUT_MS);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (timedOut) {
        reject(new Error(`forktrace check ${args.join(' ')} did not end within ${CHECK_TIMEOUT_MS} ms (killed); stdout: ${stdout}\nstderr: ${stderr}`));
      } else resolve({ code, stdout, stderr });
    });
  });
}

test("forktrace check: lists the app's @opentelemetry/api and whether its spans are kept", async () => {
  for (const version of [...KEPT, '2.0.0']) {
    const dir = appWith(version);
    const r = await check(['--no-send', '--json', path.join(dir, 'server.js')], dir);
    const { api, problems } = JSON.parse(r.stdout);
    const location = path.join(fs.realpathSync(dir), 'node_modules', '@opentelemetry', 'api');
    if (version === '2.0.0') {
      assert.equal(r.code, 1);
      assert.deepEqual(api, { forktrace: OWN, app: { version, location }, kept: false, text: apiMessages.notAccepted(version, OWN) });
      assert.deepEqual(problems, [apiMessages.notAccepted(version, OWN)]);
    } else {
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const text = version === '1.11.0' ? apiMessages.keptThroughApp(OWN) : apiMessages.kept(OWN);
      assert.deepEqual(api, { forktrace: OWN, app: { version, location }, kept: true, text });
    }
  }
  // As text: one row under Libraries, the problem spelled out below.
  const newer = await check(['--no-send', path.join(appWith('1.11.0'), 'server.js')], appWith('1.11.0'));
  assert.match(newer.stdout, new RegExp(`\\n  @opentelemetry/api  1\\.11\\.0 +spans kept \\(newer than forktrace's ${OWN.replaceAll('.', '\\.')}: `));
  const other = await check(['--no-send', path.join(appWith('2.0.0'), 'server.js')], appWith('2.0.0'));
  assert.match(other.stdout, /\n {2}@opentelemetry\/api {2}2\.0\.0 +spans NOT kept \(see below\)\n/);
  assert.ok(other.stdout.includes(`  x ${apiMessages.notAccepted('2.0.0', OWN)}`));
});

test('planGlobals: which copy registers the API globals, for the stamp forktrace put on them', () => {
  const app = (version) => ({ dir: '/app/node_modules/@opentelemetry/api', main: '/app/main.cjs', ...(version === undefined ? {} : { version }) });
  const cases = [
    // [stamp, globals created by forktrace, app's version ('none': no copy), expected]
    ['1.10.0', true, 'none', 'forktrace'],
    ['1.10.0', true, '1.9.0', 'forktrace'],
    ['1.10.0', true, '1.10.0', 'forktrace'],
    ['1.10.0', true, '1.10.7', 'forktrace'],
    ['1.10.0', true, '1.11.0', 'app'],
    ['1.10.0', true, '1.23.4', 'app'],
    // Globals someone else created before forktrace keep their stamp: warn rather than replace them.
    ['1.10.0', false, '1.11.0', 'warning'],
    ['1.10.0', true, '2.0.0', 'warning'],
    ['1.10.0', true, '0.18.1', 'warning'],
    // A prerelease reads only its own exact version, and forktrace's copy would not read its stamp.
    ['1.10.0', true, '1.11.0-rc.1', 'warning'],
    ['1.10.0', true, undefined, 'warning'],
  ];
  for (const [stamp, createdHere, version, expected] of cases) {
    const plan = planGlobals(stamp, createdHere, version === 'none' ? undefined : app(version));
    const got = plan.use === 'app' ? 'app' : plan.warning !== undefined ? 'warning' : 'forktrace';
    assert.equal(got, expected, `stamp ${stamp}, app ${version}, createdHere ${createdHere}`);
  }
  assert.equal(planGlobals('1.10.0', true, app(undefined)).warning, apiMessages.unreadable('/app/node_modules/@opentelemetry/api', '1.10.0'));
});
