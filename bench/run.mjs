// npm run bench [-- options]
//
//   (no mode)            side-by-side comparison → BENCHMARKS.md "compare node<major>" block
//   --quick              a short comparison (1 round, 3 s); written only to .bench-out/
//   --outage             60 s healthy / receiver stopped / receiver blackholed → "outage node<major>" block
//   --scale              export ceiling, memory vs OTEL_BSP_MAX_QUEUE_SIZE, 1 vs 2 workers → "scale node<major>" block
//   --ladder             forktrace taken apart layer by layer (where the per-request cost goes) → "ladder node<major>" block
//   --profile[=config]   CPU profiles (node --cpu-prof) under load → .bench-out/profiles/, summary on stdout
//
//   --rounds N  --duration S  --warmup S  --connections C  --startups N
//   --configs a,b,c      among untraced, forktrace, forktrace-nolayers, handbuilt, auto, ddtrace, forktrace-baseline,
//                        and the lean floor (bench/floor.cjs): floor, floor-http, floor-nobind, floor-noexport, floor-unsampled
//   --variant 'name:K=V;K=V'  a forktrace variant with extra environment (repeatable);
//                        'name@base:K=V' the same of another configuration, e.g.
//                        'untraced-semi16@untraced:NODE_OPTIONS=--max-semi-space-size=16'
//   --baseline DIR       another forktrace build (e.g. .bench-out/baseline-dist) compared as forktrace-baseline
//   --baseline-ref REF   build git REF's src/ into .bench-out/baseline-REF/dist and use it as --baseline
//   --baseline-env 'K=V;K=V'  extra environment for the baseline (the same setting before and after)
//   --no-write           leave BENCHMARKS.md alone
//   --report FILE        re-render a saved .bench-out/compare-*.json into BENCHMARKS.md (no run)
//   --outage-seconds S   length of each outage phase (default 60)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_CONFIGS, LADDER_VARIANTS } from './configs.mjs';
import { runCompare } from './compare.mjs';
import { buildRef, machine, mysqlReachable, OUT, PINNED, ROOT } from './lib.mjs';
import { compareTable, header, replaceBlock, spanInventory, targetTable } from './report.mjs';

const argv = process.argv.slice(2);
const flag = (name) => argv.some((a) => a === `--${name}` || a.startsWith(`--${name}=`));
const value = (name, dflt) => {
  const i = argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return dflt;
  const a = argv[i];
  if (a.includes('=')) return a.slice(a.indexOf('=') + 1);
  return argv[i + 1] && !argv[i + 1].startsWith('--') ? argv[i + 1] : dflt;
};

const quick = flag('quick');
const ladder = flag('ladder');
const o = {
  rounds: Number(value('rounds', quick ? 1 : 3)),
  duration: Number(value('duration', quick ? 3 : 8)),
  warmup: Number(value('warmup', quick ? 1 : 2)),
  connections: Number(value('connections', 16)),
  startups: Number(value('startups', quick ? 3 : ladder ? 0 : 10)),
  configs: String(
    value(
      'configs',
      ladder ? 'untraced,forktrace,forktrace-nolayers,floor,floor-http,floor-unsampled' : DEFAULT_CONFIGS.join(','),
    ),
  ).split(','),
  baseline: value('baseline', undefined),
  baselineEnv: value('baseline-env', ''),
  outageSeconds: Number(value('outage-seconds', 60)),
  variants: [
    ...(ladder ? LADDER_VARIANTS : []),
    ...argv.flatMap((a, i) => (a === '--variant' ? [argv[i + 1]] : a.startsWith('--variant=') ? [a.slice(10)] : [])),
  ],
};
for (const v of o.variants) {
  const name = v.split(':')[0].split('@')[0];
  if (!o.configs.includes(name)) o.configs.push(name);
}
const baselineRef = value('baseline-ref', undefined);
if (baselineRef) o.baseline = buildRef(baselineRef);
if (o.baseline && !o.configs.includes('forktrace-baseline')) o.configs.push('forktrace-baseline');
const write = !flag('no-write') && (!quick || flag('write'));
const commandLine = `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`;
const BENCHMARKS = path.join(ROOT, 'BENCHMARKS.md');

function preflight() {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'register.js'))) throw new Error('dist/ is missing: run npm run build');
  fs.mkdirSync(OUT, { recursive: true });
  if (!PINNED) process.stderr.write('bench: taskset or a second core is missing; the app is not pinned\n');
}

/**
 * The BENCHMARKS.md block a run writes: one per kind and Node major line ("compare node24"), so a
 * run on another line never overwrites the primary line's figures.
 */
function blockName(kind, meta) {
  const major = /^v?(\d+)\./.exec(meta.node ?? process.version)?.[1] ?? 'unknown';
  return `${kind} node${major}`;
}

async function main() {
  preflight();
  if (!(await mysqlReachable())) {
    throw new Error(
      'MariaDB/MySQL is not reachable at 127.0.0.1:3306 (or MYSQL_URL): start it, e.g. ' +
        'start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd',
    );
  }
  const meta = { ...machine(), date: new Date().toISOString().replace(/\.\d+Z$/, 'Z') };
  const stamp = meta.date.replace(/[:]/g, '-');

  const saved = value('report', undefined);
  const savedJson = saved ? JSON.parse(fs.readFileSync(path.resolve(saved), 'utf8')) : undefined;
  if (saved && /(^|\/)(outage|scale)-[^/]*\.json$/.test(saved)) {
    // Re-render a saved --outage or --scale run.
    const kind = /outage-[^/]*$/.test(saved) ? 'outage' : 'scale';
    const { outageReport } = await import('./outage.mjs');
    const { scaleReport } = await import('./scale.mjs');
    const body = kind === 'outage' ? outageReport(savedJson.result) : scaleReport(savedJson.result);
    const md = `${header(savedJson.meta, savedJson.command ?? `npm run bench -- --${kind}`, savedJson.result.loads)}\n\n${body}`;
    process.stdout.write(md + '\n');
    if (write) replaceBlock(BENCHMARKS, blockName(kind, savedJson.meta), md);
    return;
  }
  if (flag('outage')) {
    const { runOutage, outageReport } = await import('./outage.mjs');
    const result = await runOutage(o);
    fs.writeFileSync(
      path.join(OUT, `outage-${stamp}.json`),
      JSON.stringify({ meta, o, command: commandLine, result }, null, 2),
    );
    const md = `${header(meta, commandLine, result.loads)}\n\n${outageReport(result)}`;
    process.stdout.write(md + '\n');
    if (write) replaceBlock(BENCHMARKS, blockName('outage', meta), md);
    return;
  }
  if (flag('scale')) {
    const { runScale, scaleReport } = await import('./scale.mjs');
    const result = await runScale({ ...o, quick });
    fs.writeFileSync(
      path.join(OUT, `scale-${stamp}.json`),
      JSON.stringify({ meta, o, command: commandLine, result }, null, 2),
    );
    const md = `${header(meta, commandLine, result.loads)}\n\n${scaleReport(result)}`;
    process.stdout.write(md + '\n');
    if (write) replaceBlock(BENCHMARKS, blockName('scale', meta), md);
    return;
  }
  if (flag('profile')) {
    const { runProfile } = await import('./profile.mjs');
    const which = value('profile', 'forktrace');
    process.stdout.write((await runProfile({ ...o, which: which === true ? 'forktrace' : which })) + '\n');
    return;
  }

  let result;
  let savedCommand;
  if (saved) {
    const j = savedJson;
    ({ result, command: savedCommand } = j);
    Object.assign(meta, j.meta);
    Object.assign(o, j.o);
  } else result = await runCompare(o);
  const command = saved ? (savedCommand ?? 'npm run bench') : commandLine;
  if (ladder) {
    fs.writeFileSync(path.join(OUT, `ladder-${stamp}.json`), JSON.stringify({ meta, o, command, result }, null, 2));
    const md = [
      header(meta, command, result.loads),
      '',
      `${o.rounds} rounds, alternated; ${o.duration} s per route, ${o.connections} connections. Median <sub>min–max</sub> **vs untraced**.`,
      '',
      compareTable(result, ['helloRps', 'dbRps', 'helloCpu', 'dbCpu', 'helloSpans', 'dbSpans']),
    ].join('\n');
    process.stdout.write(md + '\n');
    if (write) replaceBlock(BENCHMARKS, blockName('ladder', meta), md);
    return;
  }
  if (!saved)
    fs.writeFileSync(path.join(OUT, `compare-${stamp}.json`), JSON.stringify({ meta, o, command, result }, null, 2));
  const traced = ['forktrace', 'forktrace-nolayers', 'forktrace-1pct', 'forktrace-baseline', 'floor'].filter((n) =>
    o.configs.includes(n),
  );
  const md = [
    header(meta, command, result.loads),
    '',
    `${o.rounds} rounds, configurations alternated round by round; per round and configuration: start, 1 s idle, ` +
      `${o.warmup} s warm-up on each route, then ${o.duration} s of /hello and ${o.duration} s of /db with ` +
      `${o.connections} connections, then SIGTERM. Startup: ${o.startups} extra starts per configuration, alternated, ` +
      `plus the measured rounds, after one start of each forktrace build held until its preload wrote its code cache ` +
      `(as after a worker's first start). Cells: median <sub>min–max</sub> **vs untraced**.`,
    '',
    compareTable(result),
    '',
    '#### Targets',
    '',
    targetTable(result, traced),
    '',
    '#### Spans and attributes forktrace produced (defaults)',
    '',
    spanInventory(result, 'forktrace'),
    ...(o.configs.includes('ddtrace')
      ? [
          '',
          '#### Spans dd-trace produced (operation name; its `meta` tags)',
          '',
          spanInventory(result, 'ddtrace'),
        ]
      : []),
  ].join('\n');
  process.stdout.write(md + '\n');
  if (write) replaceBlock(BENCHMARKS, blockName('compare', meta), md);
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bench: ${e instanceof Error ? e.message : e}\n`);
    process.exit(1);
  },
);
