// CPU profiles (node --cpu-prof) of one configuration under load, or of startup, and a summary:
// self time by package and the functions that cost most. Profiles stay in .bench-out/profiles/.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { allConfigs } from './configs.mjs';
import { APP_CORE, OUT, runLoad, sleep, spawnNode, startReceiverProcess } from './lib.mjs';

/** Which package a profile frame belongs to. */
export function category(frame) {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const m = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//g);
  if (m) {
    const pkg = m[m.length - 1].replace(/^node_modules\//, '').replace(/\/$/, '');
    return pkg;
  }
  if (url.startsWith('node:'))
    return `node:${url.slice(5).split('/')[0] === 'internal' ? url.slice(14).split('/')[0] : url.slice(5)}`;
  if (url.includes('/dist/')) return 'forktrace';
  if (url.includes('/examples/')) return 'app';
  return url;
}

/** Self time by category and by function, and inclusive time under OpenTelemetry frames. */
export function summarize(file, top = 25) {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (let i = 0; i < prof.samples.length; i++) {
    const id = prof.samples[i];
    self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
  }
  let total = 0;
  let idle = 0;
  const cats = new Map();
  const fns = new Map();
  let inOtel = 0;
  const isOtel = (c) =>
    c.startsWith('@opentelemetry/') || c === 'forktrace' || c === 'import-in-the-middle' || c === 'dd-trace';
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (n.callFrame.functionName === '(idle)') {
      idle += us;
      continue;
    }
    total += us;
    const c = category(n.callFrame);
    cats.set(c, (cats.get(c) ?? 0) + us);
    const key = `${n.callFrame.functionName || '(anonymous)'} ${path.basename(n.callFrame.url)}:${n.callFrame.lineNumber + 1} [${c}]`;
    fns.set(key, (fns.get(key) ?? 0) + us);
    if (isOtel(c)) inOtel += us;
  }
  const pct = (us) => `${((100 * us) / total).toFixed(1)} %`;
  const lines = [
    `${path.relative(OUT, file)}: ${(total / 1e6).toFixed(2)} s busy, ${(idle / 1e6).toFixed(2)} s idle; ` +
      `${pct(inOtel)} of busy time in the tracer's own code (OpenTelemetry, forktrace or dd-trace)`,
    '',
    'self time by package:',
    ...[...cats.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 20)
      .map(([c, us]) => `  ${pct(us).padStart(7)}  ${c}`),
    '',
    'top functions (self):',
    ...[...fns.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([f, us]) => `  ${pct(us).padStart(7)}  ${f}`),
  ];
  return lines.join('\n');
}

/**
 * `which`: a configuration name, or `startup:<name>` to profile only the start to the listening
 * line (the app is then stopped at once).
 */
export async function runProfile(o) {
  const startupOnly = o.which.startsWith('startup:');
  const name = startupOnly ? o.which.slice(8) : o.which;
  const receiver = await startReceiverProcess();
  const dd = name === 'ddtrace' ? await startReceiverProcess({ script: 'dd-agent.mjs' }) : undefined;
  const dir = path.join(OUT, 'profiles', `${name}${startupOnly ? '-startup' : ''}-${Date.now()}`);
  fs.mkdirSync(dir, { recursive: true });
  try {
    const config = allConfigs(receiver.url, {
      baseline: o.baseline,
      baselineEnv: o.baselineEnv,
      variants: o.variants,
      ddAgentUrl: dd?.url,
    }).find((c) => c.name === name);
    if (!config) throw new Error(`unknown configuration ${name}`);
    const app = spawnNode(['--cpu-prof', `--cpu-prof-dir=${dir}`, ...config.args], {
      // The app's own SIGTERM handler lets Node exit normally, which is when the profile is written.
      env: { PORT: '0', EXAMPLE_EXIT_ON_SIGTERM: 'true', ...config.env },
      cores: APP_CORE,
    });
    const { listening: port } = await app.ready;
    if (!startupOnly) {
      for (const route of ['/hello', '/db']) {
        await runLoad({ url: `http://127.0.0.1:${port}${route}`, duration: o.warmup, connections: o.connections });
        await runLoad({ url: `http://127.0.0.1:${port}${route}`, duration: o.duration, connections: o.connections });
      }
    }
    await app.stop('SIGTERM', 10000);
    await sleep(200);
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
    if (files.length === 0) throw new Error(`no profile written in ${dir}; stderr: ${app.stderr}`);
    return files.map((f) => summarize(path.join(dir, f), startupOnly ? 40 : 30)).join('\n\n');
  } finally {
    await receiver.close();
    await dd?.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const f of process.argv.slice(2)) process.stdout.write(summarize(f) + '\n\n');
}
