// Prometheus for forking servers (issue 14): one scrape endpoint per pm2 app or node:cluster that
// sums its workers, scraped by a real Prometheus server (Debian's `prometheus`, started here with
// its own config and storage in a temporary folder, on 127.0.0.1 only).
//
//   Prometheus (scrape every 1 s) ──▶ 127.0.0.1:<metrics port>/metrics
//                                      ├─ pm2 worker 0 ┐ either answers: it sums every worker's
//                                      └─ pm2 worker 1 ┘ file, dead workers' totals included
//
// What a user checks: sum(http_server_request_duration_seconds_count) is the number of requests
// sent, across a pm2 reload and a worker crash, and no series ever goes backwards (resets() = 0),
// so increase() loses nothing; exemplars lead to traces that exist; promtool accepts the output;
// a port in use is one warning and the app serves on.
//
// Not covered: a worker killed by SIGKILL (it loses at most its last second of counts, by design).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { REGISTER_CJS, ROOT, freePort, get, receiverForThisFile, spawnNode } from './helpers.mjs';
import { startPm2 } from './pm2-helpers.mjs';

const require = createRequire(import.meta.url);
const { statusMessages } = require('../dist/worker/messages.js');

const receiver = receiverForThisFile();
const APP = path.join(ROOT, 'test', 'fixtures', 'crash-app.js');
const COUNT = 'http_server_request_duration_seconds_count';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'forktrace-prom-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Whether Debian's prometheus and promtool are here; under CI=true their absence fails. */
function prometheusInstalled() {
  const ok = ['prometheus', 'promtool'].every((bin) => spawnSync(bin, ['--version']).status === 0);
  if (!ok && process.env.CI === 'true') throw new Error('prometheus/promtool missing and CI=true: .ci/run installs Debian\'s prometheus package');
  return ok;
}

/** A Prometheus server scraping `target` every second; resolves { query, exemplars, stop }. */
async function startPrometheus(target) {
  const dir = fs.mkdtempSync(path.join(tmp, 'server-'));
  const port = await freePort();
  fs.writeFileSync(
    path.join(dir, 'prometheus.yml'),
    [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 900ms',
      'scrape_configs:',
      '  - job_name: forktrace',
      `    static_configs: [{ targets: ['${target}'] }]`,
      '',
    ].join('\n'),
  );
  const child = spawn(
    'prometheus',
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--enable-feature=exemplar-storage',
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  const api = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  };
  after(stop);
  for (const end = Date.now() + 20_000; ; ) {
    const r = await get(`${api}/-/ready`).catch(() => undefined);
    if (r?.status === 200) break;
    if (Date.now() > end || child.exitCode !== null) throw new Error(`prometheus did not start: ${stderr}`);
    await new Promise((res) => setTimeout(res, 200));
  }
  const json = async (p) => {
    const r = await get(`${api}${p}`);
    assert.equal(r.status, 200, r.body);
    return JSON.parse(r.body).data;
  };
  return {
    /** The value of an instant query with one result, or undefined when there is none. */
    async query(promql) {
      const data = await json(`/api/v1/query?query=${encodeURIComponent(promql)}`);
      return data.result.length === 0 ? undefined : Number(data.result[0].value[1]);
    },
    async exemplars(promql, sinceSeconds) {
      const now = Date.now() / 1000;
      return json(`/api/v1/query_exemplars?query=${encodeURIComponent(promql)}&start=${now - sinceSeconds}&end=${now + 5}`);
    },
    stop,
  };
}

/** Polls `read` until it returns `want`; fails with the last value seen. */
async function until(read, want, what, ms = 20_000) {
  let last;
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 250))) {
    last = await read();
    if (last === want) return;
  }
  assert.fail(`${what}: wanted ${want}, last saw ${last}`);
}

test('pm2 cluster mode: one endpoint sums both workers, and a reload and a crash lose no count', async (t) => {
  if (!prometheusInstalled()) return t.skip('prometheus is not installed (apt-get install prometheus)');
  const pm2 = await startPm2();
  t.after(() => pm2.kill());
  const [port, metricsPort] = [await freePort(), await freePort()];
  const ecosystem = path.join(tmp, 'prom-app.config.js');
  const app = {
    name: 'prom-app',
    script: APP,
    exec_mode: 'cluster',
    instances: 2,
    node_args: ['--require', REGISTER_CJS],
    kill_timeout: 3000,
    env: {
      PORT: String(port),
      OTEL_SERVICE_NAME: 'prom-app',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url,
      OTEL_BSP_SCHEDULE_DELAY: '200',
      OTEL_METRICS_EXPORTER: 'prometheus',
      OTEL_EXPORTER_PROMETHEUS_HOST: '127.0.0.1',
      OTEL_EXPORTER_PROMETHEUS_PORT: String(metricsPort),
      FORKTRACE_PROMETHEUS_DIR: path.join(tmp, 'state'),
      FORKTRACE_PROMETHEUS_EXEMPLARS: 'true',
      FORKTRACE_SPOOL_DIR: path.join(tmp, 'spool'),
    },
  };
  fs.writeFileSync(ecosystem, `module.exports = ${JSON.stringify({ apps: [app] })};\n`);
  await pm2.run(['start', ecosystem]);
  const base = `http://127.0.0.1:${port}`;
  let sent = 0;
  const hello = async () => {
    const r = await get(`${base}/hello`);
    assert.equal(r.status, 200);
    sent++;
    return JSON.parse(r.body).pid;
  };
  // Until both workers answer (each of these requests counts as well).
  const pids = new Set();
  for (const end = Date.now() + 20_000; pids.size < 2; ) {
    assert.ok(Date.now() < end, 'both workers answer within 20 s');
    const pid = await hello().catch(() => undefined);
    if (pid) pids.add(pid);
    else await new Promise((r) => setTimeout(r, 100));
  }
  const prometheus = await startPrometheus(`127.0.0.1:${metricsPort}`);
  const total = () => prometheus.query(`sum(${COUNT}{http_route="/hello"})`);

  for (let i = 0; i < 30; i++) await hello();
  await until(total, sent, 'Prometheus sees every request before the reload');

  await pm2.run(['reload', 'prom-app']);
  for (let i = 0; i < 20; i++) await hello();
  // An uncaught exception: the worker dies without answering, pm2 starts another.
  await get(`${base}/crash`).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 1500));
  for (let i = 0; i < 10; i++) await hello();

  await until(total, sent, 'Prometheus sees every request after a reload and a crash');
  t.diagnostic(`requests sent ${sent} (30 before the reload, 20 after it, 10 after the crash, the rest warm-up); Prometheus: ${await total()}`);
  assert.equal(
    await prometheus.query(`max(resets(${COUNT}[10m]))`),
    0,
    'no series went backwards, so increase() counts every request',
  );
  const restarts = (await pm2.jlist()).filter((p) => p.name === 'prom-app').reduce((n, p) => n + p.pm2_env.restart_time, 0);
  assert.ok(restarts >= 1, 'pm2 restarted the crashed worker');

  // Exemplars: a bucket's latest sampled request, whose trace reached the receiver.
  const ex = await prometheus.exemplars(`${COUNT.replace('_count', '_bucket')}{http_route="/hello"}`, 600);
  const traceIds = ex.flatMap((s) => s.exemplars.map((e) => e.labels.trace_id));
  assert.ok(traceIds.length > 0, 'Prometheus stored exemplars');
  for (const id of traceIds) assert.match(id, /^[0-9a-f]{32}$/);
  await receiver.waitFor((spans) => spans.some((s) => traceIds.includes(s.traceId)));

  // What Prometheus parsed, promtool accepts too, and a scrape is not the app's traffic.
  const text = await get(`http://127.0.0.1:${metricsPort}/metrics`);
  assert.match(text.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  const check = spawnSync('promtool', ['check', 'metrics'], { input: text.body, encoding: 'utf8' });
  assert.equal(check.status, 0, `${check.stdout}${check.stderr}`);
  assert.match(text.body, /^target_info\{.*service_name="prom-app".*\} 1$/m);
  assert.ok(!receiver.spans.some((s) => String(s.attributes['url.path'] ?? '').startsWith('/metrics')), 'no span for a scrape');
  // Every series counted, not only /hello's: the scrapes (hundreds by now) added nothing.
  assert.equal(await prometheus.query(`sum(${COUNT})`), sent, 'no scrape in the request metrics');
});

test('node:cluster: the workers share the endpoint; the primary, which stands down, does not hold the port', async (t) => {
  const metricsPort = await freePort();
  const primary = spawnNode(['--require', REGISTER_CJS, path.join(ROOT, 'examples', 'cluster', 'primary.js')], {
    readyKey: 'worker',
    env: {
      PORT: '0',
      WORKERS: '2',
      OTEL_SERVICE_NAME: 'cluster-prom',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url,
      OTEL_METRICS_EXPORTER: 'prometheus',
      OTEL_EXPORTER_PROMETHEUS_HOST: '127.0.0.1',
      OTEL_EXPORTER_PROMETHEUS_PORT: String(metricsPort),
      FORKTRACE_PROMETHEUS_DIR: path.join(tmp, 'cluster-state'),
    },
  });
  t.after(() => primary.kill('SIGKILL'));
  await primary.ready;
  // Both workers started and wrote their files.
  const workerFiles = () => {
    try {
      return fs.readdirSync(path.join(tmp, 'cluster-state', String(metricsPort))).filter((f) => /^\d+-.*\.json$/.test(f)).length;
    } catch {
      return 0;
    }
  };
  await until(async () => workerFiles() >= 2, true, 'a file per worker', 15_000);
  const scrape = await get(`http://127.0.0.1:${metricsPort}/metrics`);
  assert.equal(scrape.status, 200);
  assert.match(scrape.body, /^target_info\{.*service_name="cluster-prom".*\} 1$/m);
  assert.doesNotMatch(primary.stderr, /cannot listen/);
});

test('a port in use: one warning naming it, and the app serves as without metrics', async () => {
  const blocker = net.createServer().listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  const busy = blocker.address().port;
  try {
    const app = spawnNode(['--require', REGISTER_CJS, APP], {
      env: {
        OTEL_SERVICE_NAME: 'busy-port',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url,
        OTEL_METRICS_EXPORTER: 'prometheus',
        OTEL_EXPORTER_PROMETHEUS_HOST: '127.0.0.1',
        OTEL_EXPORTER_PROMETHEUS_PORT: String(busy),
        FORKTRACE_PROMETHEUS_DIR: path.join(tmp, 'busy-state'),
      },
    });
    const { listening } = await app.ready;
    assert.equal((await get(`http://127.0.0.1:${listening}/hello`)).status, 200);
    await new Promise((r) => setTimeout(r, 200));
    await app.kill('SIGTERM');
    const warning = `forktrace: warning: ${statusMessages.prometheusListenFailed('127.0.0.1', busy, 'EADDRINUSE')}`;
    assert.equal(app.stderr.split('\n').filter((l) => l === warning).length, 1, app.stderr);
  } finally {
    blocker.close();
  }
});
