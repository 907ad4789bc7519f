// The side-by-side comparison: every configuration, round by round in rotating order, on the
// same app, receiver and load generator.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { allConfigs } from './configs.mjs';
import { APP_CORE, cpuMicros, loadAverage, memory, runLoad, sleep, spawnNode, startReceiverProcess } from './lib.mjs';

const log = (...a) => process.stderr.write(a.join(' ') + '\n');

/** Starts the app under `config`; resolves { app, startupMs } once it printed its listening line. */
async function startApp(config, extraEnv = {}) {
  const app = spawnNode(config.args, { env: { PORT: '0', ...config.env, ...extraEnv }, cores: APP_CORE });
  const line = await app.ready;
  if (line.pid !== app.pid) throw new Error(`listening line from pid ${line.pid}, expected ${app.pid}`);
  return { app, port: line.listening, startupMs: line.ms };
}

/** One measured route: warm-up done by the caller; CPU read around the load run. */
async function measureRoute(app, port, route, o) {
  const cpu0 = cpuMicros(app.pid);
  const r = await runLoad({
    url: `http://127.0.0.1:${port}${route}`,
    duration: o.duration,
    connections: o.connections,
  });
  const cpu1 = cpuMicros(app.pid);
  if (r.non2xx > 0 || r.errors > 0) log(`  ! ${route}: ${r.non2xx} non-2xx, ${r.errors} errors`);
  return { ...r, cpuPerReq: (cpu1 - cpu0) / Math.max(1, r.responses) };
}

async function oneRun(config, receivers, o) {
  const receiver = config.agent === 'dd' ? receivers.dd : receivers.otlp;
  await receiver.reset();
  const { app, port, startupMs } = await startApp(config);
  await sleep(1000);
  const idle = memory(app.pid);
  const responses = { '/hello': 0, '/db': 0 };
  const warm = async (route, s) => {
    const w = await runLoad({ url: `http://127.0.0.1:${port}${route}`, duration: s, connections: o.connections });
    responses[route] += w.responses;
  };
  await warm('/hello', o.warmup);
  await warm('/db', o.warmup);
  const hello = await measureRoute(app, port, '/hello', o);
  responses['/hello'] += hello.responses;
  const db = await measureRoute(app, port, '/db', o);
  responses['/db'] += db.responses;
  const after = memory(app.pid);
  // SIGTERM: forktrace flushes and re-raises; the peers do what their own shutdown does.
  const stop = await app.stop('SIGTERM', 5000);
  await sleep(500);
  const rx = await receiver.reset();
  return {
    config: config.name,
    startupMs,
    idleRss: idle.rss,
    rssAfter: after.rss,
    hwm: after.hwm,
    hello,
    db,
    responses,
    stop,
    rx,
    stderr: app.stderr.slice(0, 4000),
  };
}

/** Spawn-to-listening, `n` starts per configuration, alternated. */
async function startups(configs, n) {
  const out = Object.fromEntries(configs.map((c) => [c.name, []]));
  for (let i = 0; i < n; i++) {
    const order = rotate(configs, i);
    for (const c of order) {
      const { app, startupMs } = await startApp(c);
      out[c.name].push(startupMs);
      await app.stop('SIGKILL', 2000);
    }
  }
  return out;
}

const rotate = (xs, k) => xs.map((_, i) => xs[(i + k) % xs.length]);

/**
 * The preload writes its V8 code cache WRITE_AFTER_MS after a start (src/code-cache.ts), and uses it
 * from the next start on, as a worker does after its first start in production. The starts
 * measured here are killed sooner, so one start of each forktrace build is held that long first.
 */
async function warmCodeCaches(configs) {
  const held = new Set();
  for (const c of configs) {
    const preload = c.preload[c.preload.length - 1];
    const cacheModule = preload && path.join(path.dirname(preload), 'code-cache.js');
    if (!preload?.endsWith('register.js') || held.has(preload) || !fs.existsSync(cacheModule)) continue;
    held.add(preload);
    const { WRITE_AFTER_MS } = (await import(cacheModule)).default;
    const { app } = await startApp(c);
    await sleep(WRITE_AFTER_MS + 1500);
    await app.stop('SIGTERM', 5000);
  }
  return held.size;
}

export async function runCompare(o) {
  const receiver = await startReceiverProcess();
  // dd-trace speaks msgpack to a Datadog agent: a stand-in of the bench's own, only when asked for.
  const wantsDd = o.configs.includes('ddtrace') || o.variants.some((v) => /^[^:]*@ddtrace:/.test(v));
  const dd = wantsDd ? await startReceiverProcess({ script: 'dd-agent.mjs' }) : undefined;
  const receivers = { otlp: receiver, dd };
  try {
    const configs = allConfigs(receiver.url, {
      baseline: o.baseline,
      baselineEnv: o.baselineEnv,
      variants: o.variants,
      ddAgentUrl: dd?.url,
    }).filter((c) => o.configs.includes(c.name));
    const loads = [`start ${loadAverage()}`];
    if (o.startups > 0 || o.rounds > 0) log(`code cache: ${await warmCodeCaches(configs)} preload build(s) started once to write it`);
    log(`startup: ${o.startups} starts × ${configs.length} configurations`);
    const starts = await startups(configs, o.startups);
    await receiver.reset();
    const runs = [];
    for (let round = 0; round < o.rounds; round++) {
      loads.push(`round ${round + 1}: ${loadAverage()}`);
      log(`round ${round + 1}/${o.rounds} (load ${loadAverage()})`);
      for (const c of rotate(configs, round)) {
        const r = await oneRun(c, receivers, o);
        r.round = round + 1;
        runs.push(r);
        starts[c.name].push(r.startupMs);
        log(
          `  ${c.name.padEnd(20)} /hello ${r.hello.rps.toFixed(0)} req/s ${r.hello.cpuPerReq.toFixed(0)} µs/req · ` +
            `/db ${r.db.rps.toFixed(0)} req/s ${r.db.cpuPerReq.toFixed(0)} µs/req · spans ${r.rx.spans} · ` +
            `start ${r.startupMs.toFixed(0)} ms · rss ${r.idleRss.toFixed(1)}→${r.rssAfter.toFixed(1)} MB · ` +
            `stop ${r.stop.killed ? 'KILLED after ' : ''}${r.stop.ms} ms`,
        );
        if (r.rx.otherPaths && Object.keys(r.rx.otherPaths).length)
          log(`  ${c.name}: asked the agent stand-in for ${JSON.stringify(r.rx.otherPaths)} (answered 404)`);
        // A decoder that broke would otherwise only show as fewer spans for that configuration.
        if (r.rx.decodeErrors) log(`  ${c.name}: ${r.rx.decodeErrors} payload(s) the agent stand-in could not decode`);
      }
    }
    loads.push(`end ${loadAverage()}`);
    return { configs: configs.map(({ name, label }) => ({ name, label })), starts, runs, loads };
  } finally {
    await receiver.close();
    await dd?.close();
  }
}
