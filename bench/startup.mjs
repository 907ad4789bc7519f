// Where forktrace's start goes: `node bench/startup.mjs [--starts N] [--baseline DIR]`.
//
// Starts the example app (examples/express-mysql2/server.js, pinned like the bench's app) N times
// under each configuration, alternated, and prints the medians (and minimums) of the CPU time to
// its listening line, the time to it, and RSS then, against the untraced app:
//   untraced;
//   forktrace with OTEL_SDK_DISABLED=true: the preload loads its code (from the code cache) and stops;
//   forktrace with OTEL_NODE_ENABLED_INSTRUMENTATIONS=none: tracing set up, no module hooked;
//   forktrace (defaults);
//   and the same three of the build in DIR (e.g. .bench-out/baseline-<ref>/dist), if given.
// Each forktrace build first runs once until its preload wrote its code cache, as after a
// worker's first start. Results on stdout only.
import * as path from 'node:path';
import { APP, APP_CORE, BENCH, machine, median, ROOT, sleep, spawnNode } from './lib.mjs';

const argv = process.argv.slice(2);
const value = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : dflt;
};
const STARTS = Number(value('starts', 20));
const baseline = value('baseline', undefined);

const PROBE = path.join(BENCH, 'startup-cpu.cjs');
const ENV = { PORT: '0', OTEL_SERVICE_NAME: 'startup-bench', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' };

function forktrace(dist, label) {
  const register = path.join(dist, 'register.js');
  return [
    { name: `${label}, OTEL_SDK_DISABLED=true`, register, env: { OTEL_SDK_DISABLED: 'true' } },
    { name: `${label}, no instrumentation`, register, env: { OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'none' } },
    { name: `${label} (defaults)`, register, env: {} },
  ];
}
const configs = [
  { name: 'untraced', env: {} },
  ...(baseline ? forktrace(path.resolve(baseline), 'baseline') : []),
  ...forktrace(path.join(ROOT, 'dist'), 'forktrace'),
];

async function start(c, holdMs = 0) {
  const args = ['--require', PROBE, ...(c.register ? ['--require', c.register] : []), APP];
  const app = spawnNode(args, { env: { ...ENV, ...c.env }, cores: APP_CORE, cwd: path.dirname(APP) });
  const listening = await app.ready;
  const probe = await app.waitLine('startupCpu');
  if (holdMs > 0) await sleep(holdMs);
  await app.stop('SIGKILL');
  return { ms: listening.ms, cpu: probe.startupCpu / 1000, rss: probe.rss / 1048576 };
}

// The preload writes its code cache 10 s after a start without one (src/code-cache.ts).
for (const register of new Set(configs.map((c) => c.register).filter(Boolean))) {
  await start({ register, env: {} }, 10_500);
}
const results = Object.fromEntries(configs.map((c) => [c.name, []]));
for (let i = 0; i < STARTS; i++) for (const c of configs) results[c.name].push(await start(c));

const m = machine();
console.log(
  `node bench/startup.mjs --starts ${STARTS}${baseline ? ` --baseline ${path.relative(ROOT, baseline)}` : ''} · ${new Date().toISOString().slice(0, 19)}Z · ${m.cores} cores (${m.model}), Node ${m.node}, forktrace ${m.forktrace}${APP_CORE ? `, app pinned to core ${APP_CORE}` : ''}\n`,
);
console.log('| configuration | CPU to listening, ms | time to listening, ms | RSS at listening, MB |');
console.log('|---|---|---|---|');
const base = results.untraced;
const cell = (rows, key, digits) => {
  const xs = rows.map((r) => r[key]);
  const med = median(xs);
  const d = med - median(base.map((r) => r[key]));
  const delta = rows === base ? '' : ` **${d >= 0 ? '+' : ''}${d.toFixed(digits)}**`;
  return `${med.toFixed(digits)} <sub>min ${Math.min(...xs).toFixed(digits)}</sub>${delta}`;
};
for (const c of configs) {
  const rows = results[c.name];
  console.log(`| ${c.name} | ${cell(rows, 'cpu', 0)} | ${cell(rows, 'ms', 0)} | ${cell(rows, 'rss', 1)} |`);
}
