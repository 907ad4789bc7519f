// Shared by the bench modes: processes (spawned, pinned and killed only by their own pid), /proc
// readings, the receiver's side channel, the load generator and small statistics.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { cleanEnv } from '../test/helpers.mjs';

// The process and MariaDB helpers are the tests' own: one definition of a clean env, a free port
// and a reachable database.
export { cleanEnv, freePort, mysqlReachable, MYSQL_URL } from '../test/helpers.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BENCH = path.join(ROOT, 'bench');
export const OUT = path.join(ROOT, '.bench-out');
export const APP = path.join(ROOT, 'examples', 'express-mysql2', 'server.js');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const TASKSET = spawnSync('taskset', ['-c', '0', 'true']).status === 0;
export const CORES = os.cpus().length;
/** Whether the app gets a core of its own (taskset present and at least 2 cores). */
export const PINNED = TASKSET && CORES >= 2;
/** The app's core and the core of everything else (load generator, receiver). */
export const APP_CORE = PINNED ? '1' : undefined;
export const AUX_CORE = PINNED ? '0' : undefined;

/** [command, args] running `node ...args`, pinned to `cores` when pinning is possible. */
export function nodeCommand(args, cores) {
  return cores === undefined ? [process.execPath, args] : ['taskset', ['-c', cores, process.execPath, ...args]];
}

const started = new Set();
/** Kills (SIGKILL, by pid) every process this bench started that still runs. */
export function killAll() {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}
process.on('exit', killAll);
for (const s of ['SIGINT', 'SIGTERM']) {
  process.once(s, () => {
    killAll();
    process.exit(130);
  });
}

/**
 * Spawns `node ...args` (pinned to `cores`), collecting stdout JSON lines and stderr.
 * `ready` resolves with the first stdout JSON line holding `readyKey`, plus `ms` since spawn.
 */
export function spawnNode(args, { env = {}, cores, readyKey = 'listening', timeoutMs = 20000, cwd = ROOT, command } = {}) {
  // `command`: [program, args] to run instead of node (e.g. node under valgrind).
  const [cmd, argv] = command ?? nodeCommand(args, cores);
  const t0 = process.hrtime.bigint();
  const child = spawn(cmd, argv, { cwd, env: cleanEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
  started.add(child);
  let stderr = '';
  const lines = [];
  const listeners = new Set();
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c) => (stderr += c));
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    if (!line.startsWith('{')) return;
    let obj;
    try {
      obj = JSON.parse(line);
    } catch {
      return;
    }
    obj.ms = Number(process.hrtime.bigint() - t0) / 1e6;
    lines.push(obj);
    for (const l of [...listeners]) l(obj);
  });
  const exited = once(child, 'exit').then(([code, signal]) => {
    started.delete(child);
    return { code, signal };
  });
  /** Resolves with the next (or an already received) JSON line holding `key`. */
  const waitLine = (key, ms = timeoutMs, from = 0) =>
    new Promise((resolve, reject) => {
      const hit = lines.slice(from).find((o) => key in o);
      if (hit) return resolve(hit);
      const timer = setTimeout(() => {
        listeners.delete(l);
        reject(new Error(`no "${key}" line within ${ms} ms from ${args.join(' ')}; stderr: ${stderr.slice(-2000)}`));
      }, ms);
      const l = (obj) => {
        if (!(key in obj)) return;
        clearTimeout(timer);
        listeners.delete(l);
        resolve(obj);
      };
      listeners.add(l);
      exited.then(({ code, signal }) => {
        clearTimeout(timer);
        listeners.delete(l);
        reject(
          new Error(`${args.join(' ')} exited (${code ?? signal}) before "${key}"; stderr: ${stderr.slice(-2000)}`),
        );
      });
    });
  const ready = readyKey ? waitLine(readyKey) : Promise.resolve(undefined);
  ready.catch(() => {});
  return {
    child,
    pid: child.pid,
    ready,
    exited,
    lines,
    waitLine,
    get stderr() {
      return stderr;
    },
    send(line) {
      child.stdin.write(line + '\n');
    },
    /** Signals, then SIGKILLs after `graceMs`; resolves { code, signal, ms, killed }. */
    async stop(signal = 'SIGTERM', graceMs = 5000) {
      const t = Date.now();
      if (child.exitCode !== null || child.signalCode !== null) return { ...(await exited), ms: 0, killed: false };
      child.kill(signal);
      const timer = new Promise((r) => setTimeout(() => r('timeout'), graceMs));
      const first = await Promise.race([exited, timer]);
      if (first !== 'timeout') return { ...first, ms: Date.now() - t, killed: false };
      child.kill('SIGKILL');
      return { ...(await exited), ms: Date.now() - t, killed: true };
    },
  };
}

/**
 * The bench receiver (bench/receiver.mjs, OTLP) or the Datadog agent stand-in (bench/dd-agent.mjs)
 * in its own process, driven over stdin/stdout.
 */
export async function startReceiverProcess({ port = 0, script = 'receiver.mjs' } = {}) {
  const p = spawnNode([path.join(BENCH, script), String(port)], { cores: AUX_CORE, readyKey: 'url' });
  const { url } = await p.ready;
  let seen = p.lines.length;
  const command = async (cmd, key) => {
    const from = seen;
    p.send(cmd);
    const obj = await p.waitLine(key, 10000, from);
    seen = p.lines.indexOf(obj) + 1;
    return obj;
  };
  return {
    url,
    port: Number(new URL(url).port),
    pid: p.pid,
    stats: async () => (await command('stats', 'stats')).stats,
    reset: async () => (await command('reset', 'stats')).stats,
    mode: (m) => command(m, 'mode'),
    close: async () => {
      await command('close', 'closed').catch(() => {});
      await p.stop('SIGKILL', 1000);
    },
  };
}

/** Runs bench/load.mjs (autocannon) in its own process; resolves its JSON result. */
export async function runLoad({ url, duration, connections, paths, rate, amount }) {
  const p = spawnNode([path.join(BENCH, 'load.mjs'), JSON.stringify({ url, duration, connections, paths, rate, amount })], {
    cores: AUX_CORE,
    readyKey: 'responses',
    timeoutMs: ((duration ?? 600) + 30) * 1000,
  });
  const r = await p.ready;
  await p.exited;
  return r;
}

/** utime+stime of a process (all its threads), in microseconds. */
export function cpuMicros(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name, which may itself contain spaces.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]);
  return (ticks * 1e6) / CLK_TCK;
}
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** VmRSS and VmHWM of a process, in MB. */
export function memory(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number((s.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm')) ?? [])[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

export function median(xs) {
  const a = xs.filter((x) => Number.isFinite(x)).sort((x, y) => x - y);
  if (a.length === 0) return NaN;
  const m = a.length >> 1;
  return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2;
}
export const min = (xs) => Math.min(...xs.filter(Number.isFinite));
export const max = (xs) => Math.max(...xs.filter(Number.isFinite));

/** `uptime`'s load averages, to be recorded with each run. */
export function loadAverage() {
  return os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
}

/** The machine and versions, for the report header. */
export function machine() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = (cpuinfo.match(/^model name\s*:\s*(.*)$/m) ?? [])[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const version = (name) => {
    try {
      return JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
    } catch {
      return 'missing';
    }
  };
  const own = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  let commit = '';
  const git = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' });
  if (git.status === 0) commit = git.stdout.trim();
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'src'], {
    cwd: ROOT,
    encoding: 'utf8',
  }).stdout?.trim();
  return {
    cores: CORES,
    model: model.trim(),
    memGB: (os.totalmem() / 2 ** 30).toFixed(1),
    kernel: os.release(),
    node: process.version,
    pinned: PINNED,
    forktrace: `${own.version}${commit ? ` (${commit}${dirty ? ', src modified' : ''})` : ''}`,
    versions: Object.fromEntries(
      [
        '@opentelemetry/sdk-trace',
        '@opentelemetry/exporter-trace-otlp-proto',
        '@opentelemetry/instrumentation-http',
        '@opentelemetry/instrumentation-express',
        '@opentelemetry/instrumentation-mysql2',
        '@opentelemetry/sdk-node',
        '@opentelemetry/auto-instrumentations-node',
        'express',
        'mysql2',
        'autocannon',
        'dd-trace',
      ].map((n) => [n, version(n)]),
    ),
  };
}

/** Builds git `ref`'s src/ (and its bundle, if it had one) into .bench-out/baseline-REF/dist; returns that folder. */
export function buildRef(ref) {
  const dir = path.join(OUT, `baseline-${ref.replace(/[^\w.-]/g, '_')}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const sh = (cmd, args, opts = {}) => {
    const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', ...opts });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.stdout}`);
    return r.stdout;
  };
  const tar = path.join(dir, 'src.tar');
  sh('git', ['archive', '-o', tar, ref, 'src', 'tsconfig.json', 'package.json']);
  sh('tar', ['-xf', tar, '-C', dir]);
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  sh(process.execPath, [
    path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
    '-p',
    path.join(dir, 'tsconfig.json'),
  ]);
  // Built as that commit built it: with its bundled preload, if it had one.
  if (spawnSync('git', ['cat-file', '-e', `${ref}:scripts/bundle.mjs`], { cwd: ROOT }).status === 0) {
    fs.mkdirSync(path.join(dir, 'scripts'));
    fs.writeFileSync(path.join(dir, 'scripts', 'bundle.mjs'), sh('git', ['show', `${ref}:scripts/bundle.mjs`]));
    sh(process.execPath, [path.join(dir, 'scripts', 'bundle.mjs')]);
  }
  process.stderr.write(`baseline: ${ref} built into ${path.relative(ROOT, dir)}/dist\n`);
  return path.join(dir, 'dist');
}
