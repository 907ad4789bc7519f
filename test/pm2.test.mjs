// pm2 cluster mode, for real: the root ecosystem.config.js (and its ESM variant) started by
// node_modules/.bin/pm2 with a PM2_HOME of our own, from another directory (os.tmpdir()), the
// preload given by absolute path in node_args. The project's receiver decodes what the workers send.
//
//   pm2 daemon (cluster primary, cwd = tmpdir)
//   ├─ worker pm_id 0: node --require <abs>/dist/register.js …/pm2/lib/ProcessContainer.js → server.js
//   └─ worker pm_id 1: the same
//
// Each /hello gives a trace of two spans:
//   GET /hello                    server   (resource: the worker's pid, instance id, index)
//   └─ request handler - /hello   express
//
// Not covered here: pm2 fork mode (no ProcessContainer in the way; the preload path is the same as
// plain node) and mysql2 under pm2 CJS (the ESM test covers it when MariaDB is up;
// preload.test.mjs covers the CJS span tree).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { ROOT, SERVER, byName, childrenOf, freePort, get, mysqlReachable } from './helpers.mjs';
import { burst, startPm2, stopTimes, waitForWorkers } from './pm2-helpers.mjs';

const require = createRequire(import.meta.url);
const { startReceiver } = require('../dist/tools/receiver.js');
const { pm2Messages } = require('../dist/worker/messages.js');

const ECOSYSTEM = path.join(ROOT, 'ecosystem.config.js');
const ECOSYSTEM_ESM = path.join(ROOT, 'ecosystem.esm.config.js');
// Only the app names are read here; everything else comes from pm2 starting the files.
const APP = require(ECOSYSTEM).apps[0].name;
const APP_ESM = require(ECOSYSTEM_ESM).apps[0].name;
const DEADLINE_MS = 1000; // forktrace's default FORKTRACE_SHUTDOWN_TIMEOUT_MS
// A stop may take the deadline plus this, which keeps it under pm2's default kill_timeout (1600).
const MARGIN_MS = 500;

let receiver;
let pm2;
let dbUp;
before(async () => {
  receiver = await startReceiver();
  pm2 = await startPm2();
  dbUp = await mysqlReachable();
});
after(async () => {
  await pm2?.kill();
  await receiver?.close();
});

const endpointOf = (r) => r.url.replace(/\/v1\/traces$/, '');
const serverSpans = (spans, query) =>
  spans.filter((s) => s.kind === SERVER && s.name === 'GET /hello' && s.attributes['url.query'] === query);
/** `n` server spans for `query`, each with its express child: whole /hello traces. */
const whole = (spans, query, n) => {
  const servers = serverSpans(spans, query);
  return servers.length >= n && servers.every((x) => childrenOf(spans, x).length > 0);
};
const countBy = (items, key) => items.reduce((acc, x) => ((acc[key(x)] = (acc[key(x)] ?? 0) + 1), acc), {});

/**
 * `pm2 start <ecosystem>` from os.tmpdir() with `env` in the CLI's environment, then waits until
 * both workers answer. Returns the app's base URL.
 */
async function start(ecosystem, env) {
  const port = await freePort();
  await pm2.run(['start', ecosystem], { env: { PORT: String(port), ...env }, cwd: os.tmpdir() });
  const base = `http://127.0.0.1:${port}`;
  await waitForWorkers(`${base}/hello?warmup=1`, 2);
  return base;
}

/** The apps' pm2 records, by pm_id. */
async function workers(name) {
  return (await pm2.jlist()).filter((p) => p.name === name).sort((a, b) => a.pm_id - b.pm_id);
}

/** Waits for `pred` on the received spans; on timeout returns what arrived, for the assertions to report. */
async function settle(pred, ms = 5000) {
  return receiver.waitFor(pred, ms).catch(() => [...receiver.spans]);
}

test('root ecosystem file from another cwd: 2 workers, each its own pid, instance id and slot; ecosystem env and API key reach the preload; status lines in pm2.log and the error logs', async () => {
  receiver.reset();
  // The service name and key reach pm2 only under other names: the ecosystem file maps them to
  // OTEL_SERVICE_NAME and FORKTRACE_API_KEY in its `env` block, which pm2 applies to process.env
  // only after the preload ran. The CLI's environment (cleanEnv) has no OTEL_/FORKTRACE_ keys.
  const serviceName = `eco-env-${process.pid}`;
  const apiKey = `eco-key-${randomUUID()}`;
  const base = await start(ECOSYSTEM, {
    EXAMPLE_SERVICE_NAME: serviceName,
    EXAMPLE_API_KEY: apiKey,
    OTEL_EXPORTER_OTLP_ENDPOINT: endpointOf(receiver),
    OTEL_BSP_SCHEDULE_DELAY: '100',
  });
  try {
    const procs = await workers(APP);
    assert.equal(procs.length, 2);
    for (let i = 0; i < 10; i++) assert.equal((await get(`${base}/hello?case=identity`)).status, 200);
    const pids = procs.map((p) => p.pid);
    const spans = await settle((s) => whole(s, 'case=identity', 10) && pids.every((pid) => s.some((x) => x.resource['process.pid'] === pid)), 10_000);

    for (const p of procs) {
      assert.equal(p.pm2_env.exec_mode, 'cluster_mode');
      const mine = spans.filter((s) => s.resource['process.pid'] === p.pid);
      assert.ok(mine.length > 0, `spans from worker pm_id ${p.pm_id} (pid ${p.pid})`);
      const ids = new Set(mine.map((s) => s.resource['service.instance.id']));
      assert.equal(ids.size, 1, 'one service.instance.id per process');
      // The slot is pm2's NODE_APP_INSTANCE, which pm2 keeps across restarts and reloads.
      assert.deepEqual(new Set(mine.map((s) => s.resource['forktrace.worker.index'])), new Set([Number(p.pm2_env.NODE_APP_INSTANCE)]));
    }
    assert.equal(new Set(spans.map((s) => s.resource['service.instance.id'])).size, 2);
    assert.deepEqual([...new Set(spans.map((s) => s.resource['forktrace.worker.index']))].sort(), [0, 1]);
    assert.deepEqual(new Set(spans.map((s) => s.resource['process.pid'])), new Set(pids), 'no span from any other process');

    for (const s of spans) {
      assert.equal(s.resource['service.name'], serviceName, 'from the ecosystem env, read out of pm2_env');
      assert.equal(s.resource['forktrace.process_manager'], 'pm2');
      // The app's package.json, found from pm2's cwd although the preload ran in the daemon's.
      assert.equal(s.resource['service.version'], '1.2.3');
      assert.equal(s.resource['deployment.environment.name'], 'production', 'NODE_ENV from the ecosystem env');
    }
    assert.ok(!spans.some((s) => /ProcessContainer/.test(String(s.resource['service.name']))));
    // /hello: GET /hello → request handler - /hello, in the same worker.
    const [server] = serverSpans(spans, 'case=identity');
    const [handler] = childrenOf(spans, server);
    assert.equal(handler?.name, 'request handler - /hello');
    assert.equal(handler.resource['process.pid'], server.resource['process.pid']);

    const requests = new Set(spans.map((s) => s.request));
    for (const r of requests) assert.equal(r.headers['x-api-key'], apiKey, 'the ecosystem key is sent as x-api-key');

    // The status line: printed at preload time it lands in the daemon's pm2.log; printed again
    // once pm2 has taken stderr over, it lands in the app's own error log (`pm2 logs <app>`).
    const log = pm2.log();
    for (const p of procs) {
      const line = `forktrace: tracing ${serviceName} (pid ${p.pid}, pm2 worker ${p.pm2_env.NODE_APP_INSTANCE}) to ${receiver.url} (gzip, key in x-api-key)`;
      assert.equal(log.split('\n').filter((l) => l === line).length, 1, `once in pm2.log: ${line}`);
      const errorLog = fs.readFileSync(p.pm2_env.pm_err_log_path, 'utf8');
      assert.equal(errorLog.split('\n').filter((l) => l === line).length, 1, `once in ${p.pm2_env.pm_err_log_path}`);
      assert.ok(!errorLog.includes(apiKey));
    }
    assert.ok(!log.includes(apiKey), 'the key is in no log');
  } finally {
    await pm2.run(['delete', APP]).catch(() => undefined);
  }
});

// Burst, then stop (or reload) at once. A 5 s batch delay keeps up to a batch (512 spans) per
// worker queued when the stop comes: without the flush on SIGINT those spans die with the
// worker. The same run with FORKTRACE_SHUTDOWN_TIMEOUT_MS=0 (re-raise without waiting) shows
// that this test can fail.
for (const action of ['stop', 'reload']) {
  for (const deadline of [undefined, '0']) {
    const control = deadline === '0';
    test(`burst of 2000 requests then \`pm2 ${action}\`: ${control ? 'control, FORKTRACE_SHUTDOWN_TIMEOUT_MS=0: spans are lost' : 'every server span arrives'}`, async (t) => {
      receiver.reset();
      const run = `run=${action}-${control ? 'control' : 'flush'}`;
      const base = await start(ECOSYSTEM, {
        EXAMPLE_SERVICE_NAME: `burst-${action}`,
        OTEL_EXPORTER_OTLP_ENDPOINT: endpointOf(receiver),
        OTEL_BSP_SCHEDULE_DELAY: '5000',
        ...(control ? { FORKTRACE_SHUTDOWN_TIMEOUT_MS: deadline } : {}),
      });
      try {
        const before = await workers(APP);
        const load = await burst(`${base}/hello?${run}`, { total: 2000, concurrency: 32 });
        const beforeStop = serverSpans(receiver.spans, run).length;
        const offset = pm2.log().length;
        await pm2.run([action, APP]);
        const answered = load.ok;
        assert.equal(load.failed, 0);
        assert.equal(answered, 2000);
        // Only the ended spans that were still queued can be lost; there must have been some.
        assert.ok(beforeStop < answered, `${answered - beforeStop} server spans were still queued at ${action}`);

        const spans = await settle((s) => serverSpans(s, run).length >= answered, control ? 2000 : 5000);
        const got = serverSpans(spans, run);
        const lost = answered - got.length;
        t.diagnostic(`pm2 ${action}${control ? ' (deadline 0)' : ''}: ${answered} answered, ${answered - beforeStop} queued at ${action}, ${got.length} server spans received, ${lost} lost`);
        assert.equal(new Set(got.map((s) => s.spanId)).size, got.length, 'no span twice');
        if (control) {
          assert.ok(lost > 0, 'without the flush, queued spans die with the worker');
          return;
        }
        assert.equal(lost, 0);
        assert.deepEqual(countBy(got, (s) => s.resource['process.pid']), Object.fromEntries(Object.entries(load.byPid).map(([k, v]) => [Number(k), v])));
        assert.ok(!/SIGKILL/.test(pm2.log().slice(offset)), 'pm2 never had to SIGKILL');

        if (action === 'reload') {
          // New processes, new instance ids, the same slots.
          const now = await workers(APP);
          const oldPids = new Set(before.map((p) => p.pid));
          assert.ok(now.every((p) => !oldPids.has(p.pid)), 'every worker was replaced');
          await waitForWorkers(`${base}/hello?after=reload`, 2);
          const fresh = await settle((s) => now.every((p) => s.some((x) => x.resource['process.pid'] === p.pid)), 8000);
          for (const p of now) {
            const mine = fresh.filter((s) => s.resource['process.pid'] === p.pid);
            assert.ok(mine.length > 0, `spans from the new worker ${p.pm_id}`);
            assert.equal(mine[0].resource['forktrace.worker.index'], p.pm_id);
            assert.ok(!got.some((s) => s.resource['service.instance.id'] === mine[0].resource['service.instance.id']));
          }
        }
      } finally {
        await pm2.run(['delete', APP]).catch(() => undefined);
      }
    });
  }
}

// The endpoint down (nothing listens: connections refused, and upstream retries them) or
// blackholed (the request is read and never answered): `pm2 stop` must not need SIGKILL, and
// each worker ends within the flush deadline plus a margin, timed by pm2.log's own timestamps
// from "Stopping app" (just before pm2's SIGINT) to "exited".
for (const fault of ['down', 'blackholed']) {
  test(`endpoint ${fault}: \`pm2 stop\` completes within the deadline, without SIGKILL`, async (t) => {
    const hung = fault === 'blackholed' ? await startReceiver({ respond: () => 'hang' }) : undefined;
    const endpoint = hung ? endpointOf(hung) : `http://127.0.0.1:${await freePort()}`;
    const base = await start(ECOSYSTEM, {
      EXAMPLE_SERVICE_NAME: `endpoint-${fault}`,
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_BSP_SCHEDULE_DELAY: '5000',
    });
    try {
      const procs = await workers(APP);
      const load = await burst(`${base}/hello?fault=${fault}`, { total: 200, concurrency: 10 });
      assert.equal(load.ok, 200);
      const offset = pm2.log().length;
      await pm2.run(['stop', APP]);
      const log = pm2.log().slice(offset);
      const times = stopTimes(log, APP);
      t.diagnostic(`endpoint ${fault}: per-worker stop ${JSON.stringify(times)} ms (deadline ${DEADLINE_MS})`);
      assert.deepEqual(Object.keys(times).sort(), ['0', '1'], `both stops in pm2.log:\n${log}`);
      for (const [id, ms] of Object.entries(times)) assert.ok(ms <= DEADLINE_MS + MARGIN_MS, `worker ${id} took ${ms} ms`);
      assert.ok(!/SIGKILL/.test(log), `no SIGKILL:\n${log}`);
      // What the operator sees in `pm2 logs`: the spans that could not be sent, counted.
      for (const p of procs) {
        const errorLog = fs.readFileSync(p.pm2_env.pm_err_log_path, 'utf8');
        assert.match(errorLog, /forktrace: warning: SIGINT: \d+ span\(s\) not delivered within the 1000 ms stop deadline \(FORKTRACE_SHUTDOWN_TIMEOUT_MS\)/);
      }
    } finally {
      await pm2.run(['delete', APP]).catch(() => undefined);
      await hung?.close();
    }
  });
}

// `shutdown_with_message: true` (pm2's choice where signals are poor, e.g. Windows): pm2 stop
// sends process.send('shutdown') and no signal, then SIGKILLs after kill_timeout. The example
// app does not handle the message, so pm2 kills it; forktrace has flushed before that.
// The same app also renames NODE_APP_INSTANCE with `instance_var`: the slot still comes from it
// (in a full run of this file the daemon has handed out pm_ids past 1, so a pm_id fallback shows).
test("pm2 `shutdown_with_message`: the 'shutdown' message flushes the queued spans before pm2's SIGKILL; `instance_var` gives the slot", async (t) => {
  receiver.reset();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forktrace-eco-'));
  const ecosystem = path.join(dir, 'ecosystem.config.js');
  fs.writeFileSync(
    ecosystem,
    `const [app] = require(${JSON.stringify(ECOSYSTEM)}).apps;\n` +
      `module.exports = { apps: [{ ...app, name: 'forktrace-msg', shutdown_with_message: true, kill_timeout: 1500, instance_var: 'INSTANCE_ID' }] };\n`,
  );
  try {
    const base = await start(ecosystem, {
      EXAMPLE_SERVICE_NAME: 'msg-app',
      OTEL_EXPORTER_OTLP_ENDPOINT: endpointOf(receiver),
      OTEL_BSP_SCHEDULE_DELAY: '5000',
    });
    const load = await burst(`${base}/hello?case=msg`, { total: 200, concurrency: 8 });
    assert.equal(load.ok, 200);
    const procs = await workers('forktrace-msg');
    const offset = pm2.log().length;
    await pm2.run(['stop', 'forktrace-msg']);
    const log = pm2.log().slice(offset);
    const got = serverSpans((await settle((s) => serverSpans(s, 'case=msg').length >= load.ok)), 'case=msg');
    t.diagnostic(`shutdown message: ${load.ok} answered, ${got.length} server spans received; stop times ${JSON.stringify(stopTimes(log, 'forktrace-msg'))} ms`);
    assert.equal(got.length, load.ok);
    for (const p of procs) {
      const slots = new Set(got.filter((s) => s.resource['process.pid'] === p.pid).map((s) => s.resource['forktrace.worker.index']));
      assert.deepEqual(slots, new Set([p.pm2_env.INSTANCE_ID]), `pm_id ${p.pm_id}: the slot is INSTANCE_ID`);
    }
    assert.deepEqual(procs.map((p) => p.pm2_env.INSTANCE_ID).sort(), [0, 1]);
    assert.equal((log.match(/sending SIGKILL/g) ?? []).length, 2, 'the app ignored the message, so pm2 killed both workers');
  } finally {
    await pm2.run(['delete', 'forktrace-msg']).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// pm2 7's `trace: true` starts pm2's own OpenTelemetry SDK in every worker (it needs
// @opentelemetry/sdk-node, which this repo has as a dev dependency, so pm2 installs nothing).
// forktrace cannot undo it, so it says so once, where the preload's lines go: pm2.log.
test('pm2 `trace: true`: one warning that spans would be duplicated', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forktrace-eco-'));
  const ecosystem = path.join(dir, 'ecosystem.config.js');
  fs.writeFileSync(
    ecosystem,
    `const [app] = require(${JSON.stringify(ECOSYSTEM)}).apps;\n` +
      `module.exports = { apps: [{ ...app, name: 'forktrace-pm2-trace', instances: 1, trace: true }] };\n`,
  );
  try {
    const port = await freePort();
    const offset = pm2.log().length;
    await pm2.run(['start', ecosystem], { env: { PORT: String(port), OTEL_EXPORTER_OTLP_ENDPOINT: endpointOf(receiver) }, cwd: os.tmpdir() });
    await waitForWorkers(`http://127.0.0.1:${port}/hello?warmup=1`, 1);
    const [p] = await workers('forktrace-pm2-trace');
    const lines = pm2.log().slice(offset).split('\n');
    const warning = `forktrace: warning: ${pm2Messages.tracing}`;
    assert.equal(lines.filter((l) => l === warning).length, 1, lines.join('\n'));
    assert.ok(lines.includes(`forktrace: tracing forktrace-example (pid ${p.pid}, pm2 worker 0) to ${receiver.url} (gzip)`));
  } finally {
    await pm2.run(['delete', 'forktrace-pm2-trace']).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('ESM app under pm2 cluster with --import (ecosystem.esm.config.js): traced, named after the pm2 app', async (t) => {
  receiver.reset();
  const base = await start(ECOSYSTEM_ESM, {
    OTEL_EXPORTER_OTLP_ENDPOINT: endpointOf(receiver),
    OTEL_BSP_SCHEDULE_DELAY: '100',
  });
  try {
    const procs = await workers(APP_ESM);
    assert.equal(procs.length, 2);
    for (let i = 0; i < 6; i++) assert.equal((await get(`${base}/hello?case=esm`)).status, 200);
    if (dbUp) assert.equal((await get(`${base}/users/5`)).status, 200);
    const pids = procs.map((p) => p.pid);
    const spans = await settle(
      (s) =>
        whole(s, 'case=esm', 6) &&
        pids.every((pid) => s.some((x) => x.resource['process.pid'] === pid)) &&
        (!dbUp || byName(s, 'SELECT').length > 0),
      10_000,
    );
    assert.deepEqual(new Set(spans.map((s) => s.resource['process.pid'])), new Set(pids));
    assert.deepEqual([...new Set(spans.map((s) => s.resource['forktrace.worker.index']))].sort(), [0, 1]);
    // No OTEL_SERVICE_NAME in this ecosystem: the pm2 app's name, not "ProcessContainer".
    assert.ok(spans.every((s) => s.resource['service.name'] === APP_ESM));
    // express came in through `import`: its span is there only if the loader hook worked.
    //   GET /hello → request handler - /hello
    const [server] = serverSpans(spans, 'case=esm');
    const [handler] = childrenOf(spans, server);
    assert.equal(handler?.name, 'request handler - /hello');
    assert.equal(handler.scope.name, '@opentelemetry/instrumentation-express');
    if (dbUp) {
      //   GET /users/:id → request handler - /users/:id → SELECT (mysql2, imported)
      const [users] = byName(spans, 'GET /users/:id');
      const [usersHandler] = childrenOf(spans, users);
      const [select] = childrenOf(spans, usersHandler);
      assert.equal(select?.attributes['db.system.name'], 'mysql');
    } else {
      t.diagnostic('MySQL not reachable: the mysql2 part of this test was skipped');
    }
    const log = pm2.log();
    for (const p of procs) {
      assert.ok(log.includes(`forktrace: tracing ${APP_ESM} (pid ${p.pid}, pm2 worker ${p.pm2_env.NODE_APP_INSTANCE}) to ${receiver.url} (gzip)`));
    }
  } finally {
    await pm2.run(['delete', APP_ESM]).catch(() => undefined);
  }
});
