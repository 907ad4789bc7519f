// Outage under load: the same load against forktrace while its endpoint is healthy, stopped
// (nothing listens: connection refused) and blackholed (accepts, reads, never answers), each for
// `outageSeconds`, then healthy again. Reports throughput, p99 and RSS against the healthy run,
// the spans dropped (handle.stats()) and the warnings forktrace printed.
import * as path from 'node:path';
import { allConfigs } from './configs.mjs';
import {
  APP_CORE,
  BENCH,
  freePort,
  loadAverage,
  memory,
  runLoad,
  sleep,
  spawnNode,
  startReceiverProcess,
} from './lib.mjs';

const log = (...a) => process.stderr.write(a.join(' ') + '\n');
const PATHS = ['/hello', '/db'];
// Longer than the export timeout (10 s): an export already hanging on the blackholed endpoint
// holds the batch processor until it times out.
const RECOVERY_SECONDS = 12;

async function probe(app) {
  const from = app.lines.length;
  process.kill(app.pid, 'SIGUSR2');
  return (await app.waitLine('stats', 5000, from)).stats;
}

async function scenario(kind, o, port) {
  let receiver = await startReceiverProcess({ port });
  const config = allConfigs(receiver.url).find((c) => c.name === 'forktrace');
  const app = spawnNode(
    [config.preload[0], config.preload[1], '--require', path.join(BENCH, 'probe.cjs'), ...config.args.slice(2)],
    {
      env: { PORT: '0', ...config.env },
      cores: APP_CORE,
    },
  );
  const { listening } = await app.ready;
  const url = `http://127.0.0.1:${listening}`;
  await runLoad({ url, duration: 3, connections: o.connections, paths: PATHS });
  await sleep(500);
  const before = await probe(app);
  const rss0 = memory(app.pid).rss;
  if (kind === 'refused') await receiver.close();
  if (kind === 'blackholed') await receiver.mode('hang');
  const t0 = Date.now();
  // RSS every 5 s while the load runs.
  const rss = [];
  const sampler = setInterval(() => {
    try {
      rss.push(memory(app.pid).rss);
    } catch {
      // the app is gone; the load run will say so
    }
  }, 5000);
  const load = await runLoad({ url, duration: o.outageSeconds, connections: o.connections, paths: PATHS });
  clearInterval(sampler);
  const rss1 = memory(app.pid).rss;
  const during = await probe(app);
  const stderrDuring = app.stderr;
  // Recovery: the endpoint comes back; spans ended from now on must arrive.
  if (kind === 'refused') receiver = await startReceiverProcess({ port });
  if (kind === 'blackholed') await receiver.mode('normal');
  await receiver.reset();
  const rec = await runLoad({ url, duration: RECOVERY_SECONDS, connections: o.connections, paths: PATHS });
  const stop = await app.stop('SIGTERM', 5000);
  await sleep(500);
  const after = await receiver.reset();
  await receiver.close();
  const warnings = stderrDuring.split('\n').filter((l) => /warning/.test(l));
  return {
    kind,
    seconds: (Date.now() - t0) / 1000,
    rps: load.rps,
    p50: load.p50,
    p99: load.p99,
    errors: load.errors + load.non2xx,
    rss0,
    rss1,
    rssMax: Math.max(rss0, rss1, ...rss),
    before,
    during,
    recovery: {
      responses: rec.responses,
      spansReceived: after.spans,
      roots: Object.values(after.routes).reduce((a, r) => a + r.traces, 0),
    },
    stop,
    warnings,
  };
}

export async function runOutage(o) {
  const port = await freePort();
  const loads = [`start ${loadAverage()}`];
  const results = [];
  for (const kind of ['healthy', 'refused', 'blackholed']) {
    log(`outage: ${kind}, ${o.outageSeconds} s (load ${loadAverage()})`);
    loads.push(`${kind}: ${loadAverage()}`);
    const r = await scenario(kind, o, port);
    log(
      `  ${r.rps.toFixed(0)} req/s, p99 ${r.p99} ms, RSS ${r.rss0.toFixed(1)}→${r.rss1.toFixed(1)} MB, ` +
        `dropped ${r.during.dropped - r.before.dropped}, warnings ${r.warnings.length}`,
    );
    results.push(r);
  }
  loads.push(`end ${loadAverage()}`);
  return { results, loads, seconds: o.outageSeconds, connections: o.connections };
}

const fmt = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '–');

export function outageReport(result) {
  const healthy = result.results.find((r) => r.kind === 'healthy');
  const rows = [
    '| endpoint | req/s (vs healthy) | p99 ms (vs healthy) | RSS start → end (max), MB | RSS growth | spans ended | delivered | dropped (export failed / queue full) | warning lines | after recovery: traces received / responses |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of result.results) {
    const d = (k) => r.during[k] - r.before[k];
    const ratio = (x, y) => (r === healthy ? '' : ` (×${(x / y).toFixed(2)})`);
    rows.push(
      `| ${r.kind} | ${fmt(r.rps)}${ratio(r.rps, healthy.rps)} | ${fmt(r.p99, 1)}${ratio(r.p99, healthy.p99)} | ` +
        `${fmt(r.rss0, 1)} → ${fmt(r.rss1, 1)} (${fmt(r.rssMax, 1)}) | ${r.rss1 - r.rss0 >= 0 ? '+' : ''}${fmt(r.rss1 - r.rss0, 1)} | ` +
        `${d('ended')} | ${d('delivered')} | ${d('dropped')} (${d('failed')} / ${d('queueFull')}) | ${r.warnings.length} | ` +
        `${fmt(r.recovery.roots / Math.max(1, r.recovery.responses), 3)} |`,
    );
  }
  const lines = result.results
    .filter((r) => r.warnings.length)
    .map(
      (r) =>
        `- ${r.kind}:\n${r.warnings.map((w) => `  - \`${w.replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT')}\``).join('\n')}`,
    );
  return [
    `forktrace defaults, ${result.connections} connections alternating /hello and /db, ${result.seconds} s per endpoint state after 3 s of warm-up against a healthy endpoint; then ${RECOVERY_SECONDS} s with the endpoint back. Counts are over the ${result.seconds} s window (handle.stats()).`,
    '',
    ...rows,
    '',
    'Warnings printed during the window:',
    '',
    ...(lines.length ? lines : ['- none']),
  ].join('\n');
}
