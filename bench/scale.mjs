// How the cost grows: the span rate one worker can export before its queue drops, memory against
// OTEL_BSP_MAX_QUEUE_SIZE while the endpoint hangs, and the per-request cost with 1 and 2 workers.
import * as path from 'node:path';
import { allConfigs } from './configs.mjs';
import {
  APP_CORE,
  BENCH,
  cpuMicros,
  freePort,
  loadAverage,
  median,
  PINNED,
  runLoad,
  sleep,
  spawnNode,
  startReceiverProcess,
} from './lib.mjs';

const log = (...a) => process.stderr.write(a.join(' ') + '\n');
const RATES = [5000, 10000, 20000, 40000, 60000, 80000, 100000, 120000];

function forktraceEnv(receiver, extra = {}) {
  return { ...allConfigs(receiver.url).find((c) => c.name === 'forktrace').env, ...extra };
}

async function spangen(receiver, env) {
  const p = spawnNode(['--require', path.join(BENCH, '..', 'dist', 'register.js'), path.join(BENCH, 'spangen.cjs')], {
    env: forktraceEnv(receiver, env),
    cores: APP_CORE,
    readyKey: 'ready',
  });
  await p.ready;
  let seen = p.lines.length;
  return {
    p,
    async step(cmd) {
      const from = seen;
      p.send(JSON.stringify(cmd));
      const line = await p.waitLine('step', (cmd.seconds ?? 0) * 1000 + 30000, from);
      seen = p.lines.indexOf(line) + 1;
      return line;
    },
  };
}

/** Raises the span rate step by step until the queue drops or the worker cannot keep up. */
async function ceiling(o) {
  const receiver = await startReceiverProcess();
  await receiver.mode('fast');
  const gen = await spangen(receiver);
  const steps = [];
  let prev = (await gen.step({ rate: 0 })).stats;
  for (const rate of RATES) {
    const r = await gen.step({ rate, seconds: o.quick ? 2 : 4 });
    const d = (k) => r.stats[k] - prev[k];
    const row = {
      target: rate,
      achieved: r.step.made / r.step.seconds,
      ended: d('ended'),
      queueFull: d('queueFull'),
      failed: d('failed'),
      cpu: r.cpu / 1e6 / r.step.seconds,
      rssMB: r.rss / 2 ** 20,
    };
    steps.push(row);
    prev = r.stats;
    log(
      `  ${rate} spans/s target: made ${row.achieved.toFixed(0)}/s, queue-full drops ${row.queueFull}, CPU ${(row.cpu * 100).toFixed(0)} %`,
    );
    if (row.queueFull > 0 && row.achieved < rate * 0.9) break;
    if (row.queueFull > row.ended * 0.05) break;
  }
  await gen.p.stop('SIGTERM', 5000);
  await receiver.close();
  return steps;
}

/** RSS with the endpoint blackholed, after the queue has filled, per OTEL_BSP_MAX_QUEUE_SIZE. */
async function queueMemory() {
  const out = [];
  for (const size of [2048, 8192, 32768]) {
    const receiver = await startReceiverProcess();
    await receiver.mode('hang');
    const gen = await spangen(receiver, { OTEL_BSP_MAX_QUEUE_SIZE: String(size) });
    await sleep(1000);
    const idle = await gen.step({ rate: 0 });
    const rate = 20000;
    const filled = await gen.step({ rate, seconds: Math.ceil((size + 512) / rate) + 2 });
    const row = {
      size,
      idleMB: idle.rss / 2 ** 20,
      fullMB: filled.rss / 2 ** 20,
      pending: filled.stats.pending,
      queueFull: filled.stats.queueFull,
    };
    row.bytesPerQueued = ((row.fullMB - row.idleMB) * 2 ** 20) / Math.max(1, row.pending);
    out.push(row);
    log(`  queue ${size}: RSS ${row.idleMB.toFixed(1)} → ${row.fullMB.toFixed(1)} MB with ${row.pending} spans held`);
    await gen.p.stop('SIGKILL', 2000);
    await receiver.close();
  }
  return out;
}

/** /hello and /db through node:cluster with 1 and 2 workers, untraced and forktrace. */
async function workers(o) {
  const receiver = await startReceiverProcess();
  const out = [];
  const configs = allConfigs(receiver.url).filter((c) => c.name === 'untraced' || c.name === 'forktrace');
  for (let round = 0; round < (o.quick ? 1 : 2); round++) {
    for (const n of [1, 2]) {
      for (const c of round % 2 ? [...configs].reverse() : configs) {
        await receiver.reset();
        const port = await freePort();
        const app = spawnNode([...c.preload, path.join(BENCH, 'cluster.cjs')], {
          env: { ...c.env, PORT: String(port), BENCH_WORKERS: String(n) },
          // One worker keeps the app's core; two share both cores with the load generator.
          cores: n === 1 ? APP_CORE : PINNED ? '0,1' : undefined,
        });
        await app.ready;
        while (app.lines.filter((l) => 'listening' in l).length < n) await sleep(50);
        const pids = [app.pid, ...app.lines.filter((l) => 'listening' in l).map((l) => l.pid)];
        const url = `http://127.0.0.1:${port}`;
        const row = { config: c.name, workers: n, round };
        for (const route of ['/hello', '/db']) {
          await runLoad({ url: url + route, duration: o.warmup, connections: o.connections });
          const cpu0 = pids.reduce((a, p) => a + cpuMicros(p), 0);
          const r = await runLoad({ url: url + route, duration: o.duration, connections: o.connections });
          const cpu1 = pids.reduce((a, p) => a + cpuMicros(p), 0);
          row[route] = { rps: r.rps, p99: r.p99, cpuPerReq: (cpu1 - cpu0) / Math.max(1, r.responses) };
        }
        await app.stop('SIGTERM', 5000);
        await sleep(300);
        row.spans = (await receiver.reset()).spans;
        out.push(row);
        log(
          `  ${c.name} ×${n}: /hello ${row['/hello'].rps.toFixed(0)} req/s ${row['/hello'].cpuPerReq.toFixed(0)} µs/req, ` +
            `/db ${row['/db'].rps.toFixed(0)} req/s ${row['/db'].cpuPerReq.toFixed(0)} µs/req`,
        );
      }
    }
  }
  await receiver.close();
  return out;
}

export async function runScale(o) {
  const loads = [`start ${loadAverage()}`];
  log('scale: export ceiling (receiver answers without decoding)');
  const steps = await ceiling(o);
  loads.push(`queue memory: ${loadAverage()}`);
  log('scale: memory vs OTEL_BSP_MAX_QUEUE_SIZE (endpoint blackholed)');
  const queue = await queueMemory();
  loads.push(`workers: ${loadAverage()}`);
  log('scale: 1 and 2 workers (node:cluster)');
  const cluster = await workers(o);
  loads.push(`end ${loadAverage()}`);
  return { steps, queue, cluster, loads, o: { duration: o.duration, connections: o.connections } };
}

const fmt = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '–');

export function scaleReport(result) {
  const ok = result.steps.filter((s) => s.queueFull === 0);
  const best = ok.length ? ok[ok.length - 1] : undefined;
  const lines = [
    '#### Export ceiling: one worker that only makes spans (11 attributes each), receiver answering without decoding',
    '',
    '| target spans/s | made spans/s | dropped (queue full) | worker CPU | CPU µs per span |',
    '|---|---|---|---|---|',
    ...result.steps.map(
      (s) =>
        `| ${s.target} | ${fmt(s.achieved)} | ${s.queueFull} | ${fmt(s.cpu * 100)} % | ${fmt((s.cpu * 1e6) / s.achieved, 1)} |`,
    ),
    '',
    best
      ? `Highest rate with no drop: **${fmt(best.achieved)} spans/s** (default queue 2048, batch 512).`
      : 'Every step dropped spans.',
    '',
    '#### Memory vs `OTEL_BSP_MAX_QUEUE_SIZE`, endpoint blackholed, 20 000 spans/s until the queue is full',
    '',
    '| OTEL_BSP_MAX_QUEUE_SIZE | RSS idle, MB | RSS queue full, MB | spans held (queue + the hung export) | RSS growth per held span, bytes |',
    '|---|---|---|---|---|',
    ...result.queue.map(
      (q) => `| ${q.size} | ${fmt(q.idleMB, 1)} | ${fmt(q.fullMB, 1)} | ${q.pending} | ${fmt(q.bytesPerQueued)} |`,
    ),
    '',
    `#### Per-request cost with 1 and 2 workers (node:cluster), ${result.o.duration} s per route, ${result.o.connections} connections`,
    '',
    'CPU is summed over the primary and the workers. One worker runs on the app core; two workers share both cores with the load generator and receiver, so their req/s says little and CPU µs per request is the figure to read.',
    '',
    '| configuration | workers | /hello req/s | /hello CPU µs/req | /db req/s | /db CPU µs/req |',
    '|---|---|---|---|---|---|',
  ];
  const groups = new Map();
  for (const r of result.cluster) {
    const k = `${r.config}|${r.workers}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  for (const [k, rs] of groups) {
    const [config, n] = k.split('|');
    const m = (route, f) => median(rs.map((r) => r[route][f]));
    lines.push(
      `| ${config} | ${n} | ${fmt(m('/hello', 'rps'))} | ${fmt(m('/hello', 'cpuPerReq'))} | ${fmt(m('/db', 'rps'))} | ${fmt(m('/db', 'cpuPerReq'))} |`,
    );
  }
  return lines.join('\n');
}
