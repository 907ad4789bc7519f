// What the young generation does under the bench's load, per configuration: how much of what the
// app allocates survives a scavenge and is promoted to the old generation, how often V8 scavenges
// and for how long, and how big it lets the new space grow. Read from `node --trace-gc-nvp`.
//
//   node bench/gc.mjs [--duration S] [--baseline DIR] [--variant 'name:K=V' ...] untraced forktrace ...
//
// --baseline DIR: another forktrace build (its dist folder, as `npm run bench -- --baseline-ref` makes
// one), measured as the configuration forktrace-baseline.
//
// V8 grows the new space each time the bytes that survived scavenges since the last growth exceed
// its capacity, up to the maximum (on Node 24, 2 × 64 MB without pointer compression; Node 22:
// 2 × 16 MB), and shrinks it only at a GC that sees a low allocation rate, which an idle app does
// not run. So the survival rate is what decides the RSS after load. One run per configuration,
// printed only: survival and promotion rates are steady from run to run, timings are not.
import { allConfigs } from './configs.mjs';
import { APP_CORE, memory, runLoad, sleep, spawnNode, startReceiverProcess } from './lib.mjs';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv.splice(i, 2)[1] : dflt;
};
const duration = Number(opt('duration', 4));
const baseline = opt('baseline', undefined);
const variants = [];
for (let v = opt('variant'); v !== undefined; v = opt('variant')) variants.push(v);
const names = argv.length ? argv : ['untraced', 'forktrace'];
if (baseline && !names.includes('forktrace-baseline')) names.push('forktrace-baseline');
const ddWanted = names.includes('ddtrace') || variants.some((v) => /^[^:]*@ddtrace:/.test(v));

/** Totals over the scavenges in `nvp` that ran under load (the ones that saw more than 1 MB allocated). */
function scavenges(nvp) {
  const t = { n: 0, allocated: 0, survived: 0, promoted: 0, pauseMs: 0, capacity: 0 };
  for (const line of nvp.split('\n')) {
    if (!line.includes('gc=s ')) continue;
    const f = Object.fromEntries([...line.matchAll(/(\S+)=(\S+)/g)].map((m) => [m[1], Number(m[2])]));
    t.capacity = f.new_space_capacity;
    if (!(f.allocated > 2 ** 20)) continue;
    t.n++;
    t.allocated += f.allocated;
    t.survived += f.new_space_survived;
    t.promoted += f.promoted;
    t.pauseMs += f.pause;
  }
  return t;
}

async function one(config, receivers) {
  let nvp = '';
  const app = spawnNode(['--trace-gc-nvp', ...config.args], {
    env: { PORT: '0', ...config.env },
    cores: APP_CORE,
  });
  app.child.stdout.on('data', (c) => (nvp += c));
  const { listening: port } = await app.ready;
  const rx = config.agent === 'dd' ? receivers.dd : receivers.otlp;
  for (const route of ['/hello', '/db']) {
    await runLoad({ url: `http://127.0.0.1:${port}${route}`, duration: 1, connections: 16 });
  }
  // Only what follows the warm-up counts, scavenges as well as responses: the warm-up's
  // allocations over the measured responses made "KB allocated per request" a quarter too high.
  await sleep(100); // the warm-up's last trace lines, still in the pipe
  const measuredFrom = nvp.lastIndexOf('\n') + 1;
  let responses = 0;
  for (const route of ['/hello', '/db']) {
    responses += (await runLoad({ url: `http://127.0.0.1:${port}${route}`, duration, connections: 16 })).responses;
  }
  const rss = memory(app.pid).rss;
  await app.stop('SIGTERM', 5000);
  await sleep(200);
  await rx?.reset();
  const t = scavenges(nvp.slice(measuredFrom));
  const mb = (x) => (x / 2 ** 20).toFixed(0);
  const pct = (x) => `${((100 * x) / t.allocated).toFixed(1)} %`;
  return `| ${config.label} | ${t.n} | ${mb(t.allocated)} | ${(t.allocated / responses / 1024).toFixed(1)} | ${pct(t.survived)} | ${pct(t.promoted)} | ${t.pauseMs.toFixed(0)} | ${mb(t.capacity)} | ${rss.toFixed(0)} |`;
}

const otlp = await startReceiverProcess();
const dd = ddWanted ? await startReceiverProcess({ script: 'dd-agent.mjs' }) : undefined;
try {
  const all = allConfigs(otlp.url, { variants, ddAgentUrl: dd?.url, baseline });
  const wanted = [...names, ...variants.map((v) => v.split(':')[0].split('@')[0])];
  process.stdout.write(
    `Node ${process.version}; 1 s warm-up then ${duration} s on each of /hello and /db, 16 connections; ` +
      `scavenges under load.\n\n` +
      '| configuration | scavenges | allocated, MB | KB allocated per request | survived a scavenge | promoted | scavenge pauses, ms | semi-space at the end, MB | RSS after, MB |\n' +
      '|---|---|---|---|---|---|---|---|---|\n',
  );
  for (const name of wanted) {
    const config = all.find((c) => c.name === name);
    if (!config) throw new Error(`unknown configuration ${name}`);
    process.stdout.write((await one(config, { otlp, dd })) + '\n');
  }
} finally {
  await otlp.close();
  await dd?.close();
}
process.exit(0);
